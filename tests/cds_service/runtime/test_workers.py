"""`psychopharm-cds serve --workers 2` as a real subprocess, with JWTs required and no Redis.

Two gunicorn workers each hold their own memory; what must be shared between them (the JWT
``jti`` replay store, the select->sign de-duplication, the metrics) is checked here through HTTP,
one call after another, each on a fresh connection, so that either worker may take it (a
concurrent burst tends to be accepted by one worker whole). That both did is read
from the metrics directory, where prometheus_client keeps each worker's counts in files named by
its pid.

Clinical dates are relative to the real today: the server runs on the wall clock.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from bench.servers import Server, children, free_port, service_command
from tests.cds_service.conftest import JwtIssuer, draft_order, hook_body, intolerance
from tests.conftest import NOW

pytestmark = pytest.mark.slow

PID = "pat-workers-4410"
SELECT = "/cds-services/psychopharm-order-select"
SIGN = "/cds-services/psychopharm-order-sign"
VIEW = "/cds-services/psychopharm-patient-view"
BURST = 8
START_TIMEOUT_S = 60.0  # a wait limit, not a timing assertion


@dataclass
class Service:
    server: Server
    base: str
    issuer: JwtIssuer
    log_path: Path

    def post(self, path: str, body: dict[str, Any], token: str | None = None) -> Any:
        token = token or self.issuer.token(self.base + path)
        # A new connection per call (no Session), so that either worker may accept it.
        return requests.post(self.base + path, json=body, timeout=30,
                             headers={"Authorization": f"Bearer {token}"})

    def metrics_dir(self) -> Path:
        match = re.search(r'multiprocess mode, directory ([^\s"]+)', self.log_path.read_text())
        assert match, self.log_path.read_text()
        return Path(match.group(1))

    def workers_that_answered(self) -> set[int]:
        """Pids of the workers whose own counters (hook calls, errors) are above zero."""
        answered = set()
        for path in self.metrics_dir().glob("counter_*.db"):
            counted = sum(
                s.value
                for family in MultiProcessCollector.merge([str(path)], accumulate=True)
                for s in family.samples
                if s.name in ("psychopharm_hook_calls_total", "psychopharm_errors_total")
            )
            if counted > 0:
                answered.add(int(path.stem.rsplit("_", 1)[1]))
        assert self.server.proc is not None
        return answered & set(children(self.server.proc.pid))


def days_ago(days: int) -> int:
    """The ``days_ago`` for the NOW-based fixture builders that lands ``days`` before today."""
    return days + (NOW.date() - datetime.now(UTC).date()).days


def side_effect_history() -> list[dict[str, Any]]:
    """Intolerance to drugs of three unrelated classes (SSRI, SGA, SNRI) in 14 months."""
    return [
        intolerance("ai-1", "sertraline", "nausea", patient=PID, onset_days_ago=days_ago(400)),
        intolerance("ai-2", "aripiprazole", "headache", patient=PID, onset_days_ago=days_ago(250)),
        intolerance("ai-3", "venlafaxine", "dizziness", patient=PID, onset_days_ago=days_ago(90)),
    ]


def order_body(hook: str, dose_mg: float = 15) -> dict[str, Any]:
    draft = draft_order("draft-mirt-1", "mirtazapine", patient=PID, dose_mg=dose_mg)
    return hook_body(hook, PID, side_effect_history(), drafts=[draft])


def topics(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["source"]["topic"]["code"] for c in response.json()["cards"]]


def error_code(response: Any) -> str:
    code: str = response.json()["issue"][0]["details"]["coding"][0]["code"]
    return code


def hook_calls_total(base: str) -> float:
    text = requests.get(base + "/metrics", timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "psychopharm_hook_calls_total"
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    work = tmp_path_factory.mktemp("workers")
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "workers-key-1", "use": "sig", "alg": "ES384"})
    jwks = work / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
    issuer = JwtIssuer("https://ehr.workers.example", "workers-key-1", key, jwks)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = work / "site.yaml"
    config.write_text(yaml.safe_dump({
        "service": {"public_base_url": base},
        "auth": {"require_jwt": True,
                 "trusted_clients": [{"issuer": issuer.issuer, "jwks_file": str(jwks)}]},
        "storage": {"url": f"sqlite:///{work / 'audit.sqlite3'}",
                    "patient_key_secret": "workers-test-site-secret-42"},
    }), encoding="utf-8")
    log_path = work / "serve.log"
    server = Server("service", service_command(port, config, workers=2), port, "/readyz",
                    log_path).start()
    try:
        # Ready once one worker answers; wait for the second to have loaded the app too.
        deadline = time.monotonic() + START_TIMEOUT_S
        while log_path.read_text().count("service ready") < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        yield Service(server, base, issuer, log_path)
    finally:
        server.stop()


# Which worker accepts a connection is the kernel's choice: on a busy machine one worker may
# take a whole burst. Tests that need both to have answered send more, up to this long.
BOTH_WORKERS_TIMEOUT_S = 60


def test_a_token_replayed_to_both_workers_is_accepted_once(service: Service) -> None:
    body = hook_body("patient-view", PID)
    deadline = time.monotonic() + BOTH_WORKERS_TIMEOUT_S
    rounds = 0
    while rounds < 3 or len(service.workers_that_answered()) < 2:
        assert time.monotonic() < deadline, "one worker took every connection"
        token = service.issuer.token(service.base + VIEW)

        responses = [service.post(VIEW, body, token) for _ in range(BURST)]

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [401] * (BURST - 1)
        assert {error_code(r) for r in responses if r.status_code == 401} == {"unauthorized"}
        rounds += 1
    # Refused as replays (the body does not say why; the log does), by both workers (each
    # counted a call or an auth error).
    log = service.log_path.read_text()
    assert log.count('"reason": "replayed-token"') == rounds * (BURST - 1)


def test_advice_shown_at_select_is_not_repeated_at_sign_on_either_worker(
    service: Service,
) -> None:
    assert topics(service.post(SELECT, order_body("order-select"))) == ["repeated-intolerance"]

    signs = [service.post(SIGN, order_body("order-sign")) for _ in range(BURST)]

    assert [topics(r) for r in signs] == [[]] * BURST
    # The sign would have carried the card: a changed order (another dose) still gets it.
    changed = service.post(SIGN, order_body("order-sign", dose_mg=30))
    assert topics(changed) == ["repeated-intolerance"]


def test_metrics_total_the_calls_of_every_worker(service: Service) -> None:
    before = hook_calls_total(service.base)
    body = hook_body("patient-view", PID)

    calls = [service.post(VIEW, body) for _ in range(10)]
    deadline = time.monotonic() + BOTH_WORKERS_TIMEOUT_S
    while len(service.workers_that_answered()) < 2:  # see BOTH_WORKERS_TIMEOUT_S
        assert time.monotonic() < deadline, "one worker took every connection"
        calls.append(service.post(VIEW, body))
    assert [r.status_code for r in calls] == [200] * len(calls)
    scrapes = [hook_calls_total(service.base) for _ in range(BURST)]

    assert scrapes == [before + len(calls)] * BURST


def test_stopping_the_server_removes_its_metrics_directory(service: Service) -> None:
    directory = service.metrics_dir()
    assert directory.is_dir()

    assert service.server.stop() == 0

    assert not directory.exists()
    assert "Traceback" not in service.log_path.read_text()
