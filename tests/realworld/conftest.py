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

from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.settings import Settings, load_settings
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


@pytest.fixture(scope="module")
def shared_rw_app() -> Iterator[Flask]:
    """One app per module for tests that only look at responses (audit rows in memory).

    Select->sign dedup is off: it is state by design, and one test's order-select card would
    hide the next test's order-sign card for the same synthetic patient.
    """
    from cds_service.web.app import create_app
    from tests.security.conftest import MemoryAuditStore

    settings = load_settings(overrides={"service": {"select_sign_dedup_minutes": 0}})
    app = create_app(settings, audit_store=MemoryAuditStore(), clock=lambda: CASES_NOW)
    app.testing = True
    yield app
    app.extensions["psychopharm"].close()


def _poster(app: Flask) -> Callable[[dict[str, Any]], Any]:
    client = app.test_client()

    def call(body: dict[str, Any]) -> Any:
        return client.post(f"/cds-services/{SERVICE[body['hook']]}", json=body)

    return call


@pytest.fixture
def post(shared_rw_app: Flask) -> Callable[[dict[str, Any]], Any]:
    """POST a hook request to the shared app; the response is what the test looks at."""
    return _poster(shared_rw_app)


@pytest.fixture
def audited_post(rw_app: Flask) -> Callable[[dict[str, Any]], Any]:
    """POST to ``rw_app``, whose own SQLite audit store the test then reads."""
    return _poster(rw_app)


def topics(response: Any) -> list[str]:
    return [c["source"]["topic"]["code"] for c in response.get_json()["cards"]]


def audit_rows(app: Flask) -> list[dict[str, Any]]:
    audit = app.extensions["psychopharm"].audit
    audit.flush()
    return list(audit.query_cards())


@pytest.fixture(scope="session")
def table() -> IngredientTable:
    return load_ingredient_table()


@pytest.fixture(scope="session")
def codes() -> CodeLists:
    return load_code_lists()
