"""Fixtures and row builders for the audit store tests (SQLite and PostgreSQL).

Loaded by the audit test modules with ``pytest_plugins``. Every test gets its own database:
a SQLite file in ``tmp_path``, or a fresh schema inside a PostgreSQL database created for the
test module (and dropped after it). PostgreSQL not answering is a failure, not a skip.

PYTEST_DONT_REWRITE: the test modules import the row builders before pytest loads this module
as a plugin, and it holds no assertions to rewrite.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from cds_service.settings import StorageSettings
from cds_service.storage.audit.records import CardRecord, FeedbackRecord, pseudonymize
from cds_service.storage.audit.store import SqlAuditStore
from tests.pg_support import throwaway_database

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
SECRET = "test-secret-for-patient-keys"
NOW = datetime(2025, 3, 4, 14, 30, 15, 123456, tzinfo=UTC)
PATIENT_KEY = pseudonymize("Patient/example-7b1", SECRET)
OTHER_PATIENT_KEY = pseudonymize("Patient/example-9c2", SECRET)


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database for this test module only; its URL."""
    with throwaway_database("pcds_test") as name:
        yield PG_URL.format(database=name)


def _pg_schema_url(pg_database: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = pg_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield f"{pg_database}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


@pytest.fixture(params=["sqlite", "postgres"])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty audit database URL per test, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.sqlite3'}"
        return
    yield from _pg_schema_url(request.getfixturevalue("pg_database"))


def storage(url: str, **overrides: Any) -> StorageSettings:
    values: dict[str, Any] = {
        "url": url,
        "patient_key_secret": SECRET,
        "queue_size": 1000,
        "flush_interval_s": 0.05,
    }
    values.update(overrides)
    return StorageSettings(**values)


@pytest.fixture
def store(audit_url: str) -> Iterator[SqlAuditStore]:
    audit = SqlAuditStore(storage(audit_url))
    try:
        yield audit
    finally:
        audit.close()


_CARD = CardRecord(
    time=NOW,
    hook="order-sign",
    hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    service_id="psychopharm-order-sign",
    pattern="repeated-intolerance",
    card_uuid="",
    shown=True,
    summary="Several medicines stopped for side effects: explore expectations and fears",
    indicator="info",
    evidence_refs=("AllergyIntolerance/ai-sertraline", "AllergyIntolerance/ai-venlafaxine"),
    evidence_keys=("ingredient:36437", "ingredient:39786", "ingredient:32937"),
    suggestion_uuids=("6f0c3f8e-6d9b-4b1e-9a53-2f3d3d1f7a10",),
    config_version="3f2a9c1d0b7e4a55",
    patient_key=PATIENT_KEY,
    practitioner="Practitioner/dr-lee",
    latency_ms=41.7,
    card_json='{"summary": "Several medicines stopped for side effects"}',
    disposition="shown",
)


def card(**changes: Any) -> CardRecord:
    """A realistic card row; each call gets a new card uuid unless one is given."""
    changes.setdefault("card_uuid", str(uuid.uuid4()))
    return replace(_CARD, **changes)


def feedback(card_uuid: str, **changes: Any) -> FeedbackRecord:
    """An override with a reason from the card's list (CDS Hooks 2.0 feedback)."""
    values: dict[str, Any] = {
        "card_uuid": card_uuid,
        "service_id": "psychopharm-order-sign",
        "outcome": "overridden",
        "accepted_suggestions": (),
        "override_code": "discussed-with-patient",
        "override_system": "https://psychopharm-cds.example.org/override-reasons",
        "override_display": "Already discussed with the patient",
        "override_comment": None,
        "outcome_time": NOW,
        "received_time": NOW,
    }
    values.update(changes)
    return FeedbackRecord(**values)
