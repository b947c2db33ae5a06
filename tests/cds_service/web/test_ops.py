"""Liveness, readiness and metrics endpoints, on a minimal app holding the real pieces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cds_service.runtime.metrics import Metrics
from cds_service.settings import Settings, StorageSettings
from cds_service.storage.audit.store import SqlAuditStore
from cds_service.web import ops


@dataclass
class Services:
    settings: Settings | None
    audit: Any
    metrics: Metrics | None


class RaisingAudit:
    """Only ping() is used by /readyz; a store whose driver raises must still yield 503."""

    def ping(self) -> bool:
        raise RuntimeError("driver exploded")


def make_client(services: Services | None) -> Any:
    app = Flask(__name__)
    if services is not None:
        app.extensions["psychopharm"] = services
    app.register_blueprint(ops.bp)
    return app.test_client()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Any:
    store = SqlAuditStore(StorageSettings(url=f"sqlite:///{tmp_path / 'audit.sqlite3'}"))
    yield store
    store.close()


def test_healthz_answers_while_the_process_runs() -> None:
    response = make_client(None).get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ready_with_settings_and_a_reachable_audit_store(sqlite_store: Any) -> None:
    response = make_client(Services(Settings(), sqlite_store, Metrics())).get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_readyz_is_unavailable_when_the_audit_database_is_down() -> None:
    # A closed port: the database is configured but does not answer.
    store = SqlAuditStore(
        StorageSettings(url="postgresql+psycopg://postgres@127.0.0.1:9/test"), migrate=False
    )
    try:
        response = make_client(Services(Settings(), store, Metrics())).get("/readyz")
    finally:
        store.close()
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "reason": "audit store unreachable"}


def test_readyz_is_unavailable_when_ping_raises() -> None:
    response = make_client(Services(Settings(), RaisingAudit(), Metrics())).get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["reason"] == "audit store unreachable"


@pytest.mark.parametrize(
    "services",
    [None, Services(None, RaisingAudit(), None)],
    ids=["no-services", "no-settings"],
)
def test_readyz_is_unavailable_before_settings_are_loaded(services: Services | None) -> None:
    response = make_client(services).get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "reason": "settings not loaded"}


def test_metrics_serves_the_observed_series(sqlite_store: Any) -> None:
    metrics = Metrics()
    metrics.observe_call("psychopharm-order-sign", "order-sign", 200, 0.02)
    response = make_client(Services(Settings(), sqlite_store, metrics)).get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    assert (
        'psychopharm_hook_calls_total{hook="order-sign",service="psychopharm-order-sign",'
        'status="200"} 1.0' in response.get_data(as_text=True)
    )


def test_probe_answers_are_not_cached(sqlite_store: Any) -> None:
    client = make_client(Services(Settings(), sqlite_store, Metrics()))
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).headers["Cache-Control"] == "no-store"
