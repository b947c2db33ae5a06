"""Fixtures for hostile-input, property, schemathesis and fault tests.

Requests come from the synthetic patient generator (realistic R4, dated relative to NOW), so the
tests start from traffic the service should answer with cards and then break it. PostgreSQL and
Redis are the shared servers on 127.0.0.1 (scripts/services.sh starts them): when they do not
answer, these fixtures fail, they never skip. Each PostgreSQL test gets its own database.
"""

from __future__ import annotations

import copy
import functools
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from cds_service.settings import load_settings
from cds_service.storage.audit.records import CardRecord, FeedbackRecord
from cds_service.synthetic.population import generate_patient, make_hook_request
from tests.conftest import NOW
from tests.pg_support import throwaway_database

REDIS_PORT = 6379
SERVICE_OF_HOOK = {
    "patient-view": "psychopharm-patient-view",
    "order-select": "psychopharm-order-select",
    "order-sign": "psychopharm-order-sign",
    "medication-prescribe": "psychopharm-medication-prescribe",
}
# Archetypes that fire a card at every hook and every seed under the default configuration.
CARD_ARCHETYPES = ("repeated_intolerance", "multiple_failed_trials")


def service_url(hook: str) -> str:
    return f"/cds-services/{SERVICE_OF_HOOK[hook]}"


@functools.lru_cache(maxsize=64)
def _patient_bundle(archetype: str, seed: int) -> dict[str, Any]:
    return generate_patient(random.Random(seed), NOW.date(), archetype, index=seed)


def hook_request(
    hook: str = "order-sign", archetype: str = "repeated_intolerance", seed: int = 1
) -> dict[str, Any]:
    """A complete, valid request (all prefetch keys but ``statements``) with a fresh hookInstance.

    The caller owns the result (a deep copy) and may break it at will.
    """
    body = make_hook_request(
        _patient_bundle(archetype, seed), hook, hook_instance=str(uuid.uuid4())
    )
    return copy.deepcopy(body)


def post_json(client: FlaskClient, url: str, body: Any, **kwargs: Any) -> Any:
    """POST a body serialised by the stdlib (the app's orjson refuses some hostile shapes)."""
    return client.post(
        url, data=json.dumps(body, ensure_ascii=False), content_type="application/json", **kwargs
    )


def error_code(response: Any) -> str:
    body = response.get_json()
    return str(body["issue"][0]["details"]["coding"][0]["code"])


def assert_valid_cards(response: Any) -> list[dict[str, Any]]:
    """A 200 whose body is ``{"cards": [...]}`` with well-formed cards; the cards."""
    assert response.status_code == 200, response.data[:500]
    body = response.get_json()
    assert set(body) == {"cards"}
    assert isinstance(body["cards"], list)
    for card in body["cards"]:
        assert card["indicator"] in ("info", "warning")
        assert isinstance(card["summary"], str) and 0 < len(card["summary"]) <= 140
        uuid.UUID(card["uuid"])
    cards: list[dict[str, Any]] = body["cards"]
    return cards


@pytest.fixture
def valid_request() -> Callable[..., dict[str, Any]]:
    return hook_request


class MemoryAuditStore:
    """An AuditStore that keeps rows in a list: for tests that check answers, not the log."""

    def __init__(self) -> None:
        self.cards: list[CardRecord] = []
        self.feedback: list[FeedbackRecord] = []
        self._lock = threading.Lock()

    def record_cards(self, rows: Sequence[CardRecord]) -> None:
        with self._lock:
            self.cards.extend(rows)

    def record_feedback(self, items: Sequence[FeedbackRecord]) -> int:
        with self._lock:
            self.feedback.extend(items)
        return len(items)

    def last_overrides(
        self, patient_key: str, patterns: Collection[str], since: datetime
    ) -> Mapping[str, frozenset[str]]:
        return {}

    def ping(self) -> bool:
        return True

    def flush(self, timeout_s: float = 5.0) -> None:
        return None

    def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def shared_app() -> Iterator[Flask]:
    """One app per module for tests that only look at responses: no database, no shared rows.

    Testing mode is on, so a detector that raises fails the test instead of being swallowed.
    Select->sign dedup is off: it is state by design, and would let one test's order-select
    call hide the next test's order-sign card for the same synthetic patient.
    """
    from cds_service.web.app import create_app

    settings = load_settings(overrides={"service": {"select_sign_dedup_minutes": 0}})
    app = create_app(settings, audit_store=MemoryAuditStore(), clock=lambda: NOW)
    app.testing = True
    yield app
    app.extensions["psychopharm"].close()


@pytest.fixture
def client(shared_app: Flask) -> FlaskClient:
    return shared_app.test_client()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test; its name. Dropped afterwards."""
    with throwaway_database("pcds_sec") as name:
        yield name


def pg_url(database: str, port: int = 5432) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}?connect_timeout=2"


@pytest.fixture
def redis_up() -> None:
    """Redis must answer: a down server is a failure of the environment, not a skip."""
    client = redis.Redis(host="127.0.0.1", port=REDIS_PORT, socket_timeout=2)
    try:
        assert client.ping(), "Redis at 127.0.0.1:6379 did not answer PING"
    finally:
        client.close()


class Signer:
    """A CDS client holding a P-384 key, trusted through a JWKS file."""

    def __init__(self, jwks_file: Path) -> None:
        self.issuer = "https://ehr.security-test.example"
        self.kid = "security-test-key"
        self.key = ec.generate_private_key(ec.SECP384R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "ES384"})
        jwks_file.write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
        self.jwks_file = jwks_file

    def header(self, path: str, base: str = "http://localhost") -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": base + path, "iat": now, "exp": now + 300,
                  "jti": str(uuid.uuid4())}
        token = jwt.encode(claims, self.key, algorithm="ES384",
                           headers={"kid": self.kid, "typ": "JWT"})
        return {"Authorization": f"Bearer {token}"}

    def trusted_client(self) -> dict[str, str]:
        return {"issuer": self.issuer, "jwks_file": str(self.jwks_file)}


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return Signer(tmp_path / "jwks.json")
