"""Requests shaped like real EHR traffic (issue 12), run with the service clock at 2026-11-30.

The cases in tests/fixtures/realworld/ (copied from shared/cases/realworld, with their answers in
expected.json) are dated relative to that day; the variants in this package build more of each
kind with the same clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cds_service.settings import Settings
from fhir_mappers import CodeLists, IngredientTable

CASES_NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
REALWORLD = Path(__file__).parents[1] / "fixtures" / "realworld"
SERVICE = {
    "patient-view": "psychopharm-patient-view",
    "order-select": "psychopharm-order-select",
    "order-sign": "psychopharm-order-sign",
}


@pytest.fixture
def rw_app(make_settings: Callable[..., Settings]) -> Iterator[Flask]:
    from cds_service.web.app import create_app

    app = create_app(make_settings(), clock=lambda: CASES_NOW)
    app.testing = True
    yield app
    app.extensions["psychopharm"].close()


@pytest.fixture
def post(rw_app: Flask) -> Callable[[dict[str, Any]], Any]:
    client = rw_app.test_client()

    def call(body: dict[str, Any]) -> Any:
        return client.post(f"/cds-services/{SERVICE[body['hook']]}", json=body)

    return call


def topics(response: Any) -> list[str]:
    return [c["source"]["topic"]["code"] for c in response.get_json()["cards"]]


def audit_rows(app: Flask) -> list[dict[str, Any]]:
    audit = app.extensions["psychopharm"].audit
    audit.flush()
    return list(audit.query_cards())


@pytest.fixture(scope="session")
def table() -> IngredientTable:
    return IngredientTable.load()


@pytest.fixture(scope="session")
def codes() -> CodeLists:
    return CodeLists.load()
