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
from hypothesis import HealthCheck, given, settings
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


# Operations are listed at run time (the schema comes from the app, built in a fixture): the
# lazy ``schemathesis.pytest.from_fixture`` loader does not work with pytest 9.
OPERATIONS = [
    ("GET", "/cds-services"),
    *[("POST", f"/cds-services/psychopharm-{hook}{suffix}")
      for hook in ("patient-view", "order-select", "order-sign", "medication-prescribe")
      for suffix in ("", "/feedback")],
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/admin/config"),
]


@pytest.fixture(scope="module")
def api_schema(shared_app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", shared_app)


def test_the_description_lists_every_operation(api_schema: Any) -> None:
    listed = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert listed == set(OPERATIONS)


# Schema-breaking input exists only for operations that take some (a body or a header).
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or method == "POST" or path == "/admin/config"
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES,
                         ids=[f"{m} {p} {mode.value}" for m, p, mode in CASES])
def test_every_documented_operation_conforms(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=20,
        deadline=2000,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    check()
