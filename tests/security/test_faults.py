"""Faults: the audit database, the replay store or the FHIR server going away mid-run.

Documented outcomes (see bench/LOADTEST.md):
- PostgreSQL unreachable: hook calls still answer with cards; card rows wait in the writer's
  bounded queue and are written when the database returns (nothing lost). When the queue is full,
  further rows are dropped, counted in ``stats()["dropped"]`` and logged at ERROR. ``/readyz``
  is 503 while the database is unreachable.
- Redis unreachable with ``require_jwt``: calls fail closed with 401 (logged as
  ``replay-store-unavailable``), because a token whose ``jti`` cannot be checked could be a replay.
- FHIR server timing out: a required key gives 412 within the call budget, an optional key gives
  200 with fewer cards; the worker is free for the next call.

The servers are cut with a loopback TCP proxy, so the shared PostgreSQL and Redis keep running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from flask import Flask
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cds_service.settings import Settings
from tests.security.conftest import (
    Signer,
    assert_valid_cards,
    error_code,
    pg_url,
    post_json,
    service_url,
)
from tests.security.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SIGN = service_url("order-sign")
VIEW = service_url("patient-view")


def _wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll a condition (a background thread's progress); False when it never became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _rows_by_uuid(database: str) -> dict[str, list[bool]]:
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={database} connect_timeout=5"
    with psycopg.connect(dsn) as connection:
        rows = connection.execute("SELECT card_uuid, shown FROM audit_card").fetchall()
    found: dict[str, list[bool]] = {}
    for card_uuid, shown in rows:
        found.setdefault(card_uuid, []).append(shown)
    return found


@pytest.fixture
def pg_proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 5432) as proxy:
        yield proxy


@pytest.fixture
def pg_app(
    make_app: Callable[..., Flask],
    make_settings: Callable[..., Settings],
    pg_database: str,
    pg_proxy: TcpProxy,
) -> Callable[..., Flask]:
    def make(**storage: Any) -> Flask:
        return make_app(make_settings({
            "service": {"select_sign_dedup_minutes": 0},
            "storage": {"url": pg_url(pg_database, pg_proxy.port), "flush_interval_s": 0.05,
                        **storage},
        }))

    return make


def _cards(client: Any, valid_request: Callable[..., dict[str, Any]], seed: int) -> list[str]:
    body = valid_request("order-sign", "repeated_intolerance", seed)
    cards = assert_valid_cards(post_json(client, SIGN, body))
    assert cards, "the repeated-intolerance patient should get a card"
    return [c["uuid"] for c in cards]


def test_postgres_outage_buffers_rows_and_writes_them_when_it_returns(
    pg_app: Callable[..., Flask],
    pg_proxy: TcpProxy,
    pg_database: str,
    valid_request: Callable[..., dict[str, Any]],
) -> None:
    app = pg_app()
    client = app.test_client()
    audit = app.extensions["psychopharm"].audit
    sent = _cards(client, valid_request, 1)
    audit.flush(10.0)
    assert client.get("/readyz").status_code == 200
    written_before = audit.stats()["written"]

    pg_proxy.cut()
    assert client.get("/readyz").status_code == 503
    during = [u for seed in range(2, 8) for u in _cards(client, valid_request, seed)]
    assert _wait_until(lambda: audit.stats()["write_errors"] > 0), audit.stats()
    stats = audit.stats()
    assert stats["written"] == written_before
    assert stats["queued"] == len(during)
    assert stats["dropped"] == 0

    pg_proxy.restore()
    audit.flush(20.0)
    assert audit.stats()["queued"] == 0
    assert client.get("/readyz").status_code == 200
    rows = _rows_by_uuid(pg_database)
    for card_uuid in sent + during:
        assert rows.get(card_uuid) == [True], card_uuid
    assert audit.stats()["dropped"] == 0


def test_full_audit_queue_counts_and_logs_the_loss(
    pg_app: Callable[..., Flask],
    pg_proxy: TcpProxy,
    pg_database: str,
    valid_request: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = pg_app(queue_size=3)
    client = app.test_client()
    audit = app.extensions["psychopharm"].audit

    pg_proxy.cut()
    sent = [u for seed in range(1, 7) for u in _cards(client, valid_request, seed)]
    assert len(sent) > 3
    stats = audit.stats()
    assert stats["dropped"] == len(sent) - 3
    assert stats["queued"] == 3
    alarms = [r for r in caplog.records
              if r.levelno == logging.ERROR and "audit queue full" in r.getMessage()]
    assert alarms, "a dropped audit row must be logged at ERROR"

    pg_proxy.restore()
    audit.flush(20.0)
    rows = _rows_by_uuid(pg_database)
    assert [u for u in sent if u in rows] == sent[:3]
    assert audit.stats()["written"] == 3


@pytest.fixture
def redis_proxy(redis_up: None) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 6379) as proxy:
        yield proxy


def test_redis_outage_fails_closed_for_jwt_and_recovers(
    make_app: Callable[..., Flask],
    make_settings: Callable[..., Settings],
    redis_proxy: TcpProxy,
    signer: Signer,
    valid_request: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(make_settings({
        "auth": {"require_jwt": True, "trusted_clients": [signer.trusted_client()]},
        "cache": {"redis_url": f"redis://127.0.0.1:{redis_proxy.port}/0"},
    }))
    client = app.test_client()

    def call() -> Any:
        return post_json(client, SIGN, valid_request(), headers=signer.header(SIGN))

    assert_valid_cards(call())

    redis_proxy.cut()
    for _ in range(3):
        response = call()
        assert response.status_code == 401
        assert error_code(response) == "unauthorized"
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("replay store unavailable" in m for m in logged)
    assert any("code=replay-store-unavailable" in m for m in logged)

    redis_proxy.restore()
    assert _wait_until(lambda: call().status_code == 200, timeout_s=5.0)
    assert_valid_cards(call())


class SlowFhirServer:
    """A FHIR server whose reads hang until released (or 10 s), like a stuck backend."""

    def __init__(self, httpserver: HTTPServer) -> None:
        self.release = threading.Event()
        self.calls = 0
        self.base = httpserver.url_for("/fhir").rstrip("/")
        httpserver.expect_request("/fhir/Observation").respond_with_handler(self._hang)
        httpserver.expect_request("/fhir/MedicationRequest").respond_with_handler(self._hang)
        httpserver.expect_request("/fhir/MedicationStatement").respond_with_handler(self._empty)

    def _hang(self, request: Request) -> Response:
        self.calls += 1
        self.release.wait(10)
        return Response('{"resourceType": "Bundle", "type": "searchset"}',
                        content_type="application/fhir+json")

    def _empty(self, request: Request) -> Response:
        return Response('{"resourceType": "Bundle", "type": "searchset", "entry": []}',
                        content_type="application/fhir+json")


@pytest.fixture
def slow_fhir(httpserver: HTTPServer) -> Iterator[SlowFhirServer]:
    server = SlowFhirServer(httpserver)
    try:
        yield server
    finally:
        server.release.set()


@pytest.fixture
def fhir_client(
    make_app: Callable[..., Flask], make_settings: Callable[..., Settings],
    slow_fhir: SlowFhirServer,
) -> Any:
    app = make_app(make_settings({"fhir": {
        "allowed_servers": [slow_fhir.base], "timeout_s": 0.5, "call_budget_s": 1.0,
    }}))
    return app.test_client()


def _timed_post(client: Any, body: dict[str, Any]) -> tuple[Any, float]:
    started = time.monotonic()
    response = post_json(client, SIGN, body)
    return response, time.monotonic() - started


def test_fhir_timeout_on_a_required_key_is_412_within_the_budget(
    fhir_client: Any, slow_fhir: SlowFhirServer, valid_request: Callable[..., dict[str, Any]]
) -> None:
    body = valid_request()
    body["fhirServer"] = slow_fhir.base
    del body["prefetch"]["medications"]
    response, elapsed = _timed_post(fhir_client, body)
    assert response.status_code == 412
    assert error_code(response) == "prefetch-unavailable"
    assert "medications" in response.get_json()["issue"][0]["details"]["text"]
    assert slow_fhir.calls >= 1
    # The server hangs for 10 s: answering well before that means the budget (1 s) held.
    assert elapsed < 5.0


def test_fhir_timeout_on_an_optional_key_gives_fewer_cards_and_frees_the_worker(
    fhir_client: Any, slow_fhir: SlowFhirServer, valid_request: Callable[..., dict[str, Any]]
) -> None:
    def request() -> dict[str, Any]:
        body = valid_request("order-sign", "multiple_failed_trials", 3)
        body["fhirServer"] = slow_fhir.base
        return body

    complete = assert_valid_cards(post_json(fhir_client, SIGN, request()))
    assert "multiple-failed-trials" in [c["source"]["topic"]["code"] for c in complete]

    partial = request()
    del partial["prefetch"]["observations"]  # the PHQ-9 scores; their read hangs
    response, elapsed = _timed_post(fhir_client, partial)
    cards = assert_valid_cards(response)
    assert "multiple-failed-trials" not in [c["source"]["topic"]["code"] for c in cards]
    assert len(cards) < len(complete)
    assert elapsed < 5.0

    # The hung read does not hold the worker: the next call is answered in full.
    again = request()
    response, elapsed = _timed_post(fhir_client, again)
    assert [c["source"]["topic"]["code"] for c in assert_valid_cards(response)] == [
        c["source"]["topic"]["code"] for c in complete
    ]
    assert elapsed < 5.0
