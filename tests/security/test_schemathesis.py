"""Schemathesis against the service's own ``/openapi.json``, in process (WSGI).

Every documented operation is called with requests generated from the schema, both fitting it
(positive) and breaking it (negative), and each response is checked: never a 5xx, a status the
description lists, a body that matches the documented schema and content type. A failure here
means either a bug in the service or a wrong description; fix whichever is wrong.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]


@pytest.fixture
def api_schema(shared_app: Flask) -> Any:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", shared_app)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=25
    )
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=2000,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_documented_operation_conforms(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)
