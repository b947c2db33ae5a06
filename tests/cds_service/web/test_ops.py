"""Liveness, readiness and metrics endpoints, on a minimal app holding the real pieces."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cds_service.runtime.metrics import Metrics
from cds_service.settings import Settings, StorageSettings
from cds_service.storage.audit.database import create_audit_engine
from cds_service.storage.audit.store import SqlAuditStore
from cds_service.storage.ttl_store import RedisTtlStore, SqlTtlStore
from cds_service.web import ops


@dataclass
class Services:
    settings: Settings | None
    audit: Any
    metrics: Metrics | None
    ttl: Any = None


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
    assert response.get_json() == {"status": "ready", "checks": {"audit_database": "ok"}}


def test_readyz_checks_the_shared_key_table_of_the_audit_database(sqlite_store: Any) -> None:
    services = Services(Settings(), sqlite_store, Metrics(), SqlTtlStore(sqlite_store.engine))
    response = make_client(services).get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"audit_database": "ok", "shared_store": "ok"}


def test_readyz_is_unavailable_without_the_shared_key_table(
    sqlite_store: Any, tmp_path: Path
) -> None:
    # A database that never ran migration 0003: jti replay cannot be checked.
    bare = create_audit_engine(f"sqlite:///{tmp_path / 'bare.sqlite3'}")
    services = Services(Settings(), sqlite_store, Metrics(), SqlTtlStore(bare))
    response = make_client(services).get("/readyz")
    bare.dispose()
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "reason": "shared store unavailable",
        "checks": {"audit_database": "ok", "shared_store": "unreachable"},
    }


@pytest.mark.redis
def test_readyz_checks_redis_when_configured(sqlite_store: Any) -> None:
    redis_store = RedisTtlStore("redis://127.0.0.1:6379/0")
    response = make_client(Services(Settings(), sqlite_store, Metrics(), redis_store)).get(
        "/readyz"
    )
    redis_store.close()
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"audit_database": "ok", "redis": "ok"}


def test_readyz_is_unavailable_when_redis_is_down(sqlite_store: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    redis_store = RedisTtlStore(f"redis://127.0.0.1:{closed}/0")
    response = make_client(Services(Settings(), sqlite_store, Metrics(), redis_store)).get(
        "/readyz"
    )
    redis_store.close()
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "reason": "redis unreachable",
        "checks": {"audit_database": "ok", "redis": "unreachable"},
    }


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
    assert response.get_json() == {
        "status": "unavailable",
        "reason": "audit store unreachable",
        "checks": {"audit_database": "unreachable"},
    }


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


def test_the_apps_readyz_reports_the_audit_database_and_its_shared_store(app: Flask) -> None:
    # No Redis configured: jti replay and dedup keys live in the audit database.
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "checks": {"audit_database": "ok", "shared_store": "ok"},
    }
