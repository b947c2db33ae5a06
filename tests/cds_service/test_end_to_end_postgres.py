"""The key end-to-end behaviours with the audit log on PostgreSQL, as production sites run it.

Hook calls go through the real endpoints with the hand-written fixtures (tests/fixtures/), and
what the service remembers is read back from PostgreSQL: a row per card (shown or silent),
suppression after an override until the evidence grows, order-select -> order-sign dedup,
idempotent feedback, an intact hash chain (``psychopharm-cds audit verify``), and no raw patient
id anywhere in the tables. The database is created for this module and dropped after it (see
tests/audit_support.py); each test works in its own fresh schema. PostgreSQL not answering on
127.0.0.1:5432 makes these tests fail, never skip.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from cds_service import cli
from tests.audit_support import _pg_schema_url
from tests.conftest import FIXTURES, NOW

pytest_plugins = ["tests.audit_support"]

SERVICE_OF_HOOK = {
    "patient-view": "psychopharm-patient-view",
    "order-select": "psychopharm-order-select",
    "order-sign": "psychopharm-order-sign",
}
INTOLERANCE_PV = "repeated-intolerance/positive-patient-view-three-classes.json"
INTOLERANCE_SIGN = "repeated-intolerance/positive-order-sign-draft-another-agent.json"
# Fires regimen-escalation and multiple-failed-trials at patient-view.
ESCALATION_PV = "regimen-escalation/positive-patient-view-three-escalations.json"


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A fresh, empty schema in this module's PostgreSQL database."""
    yield from _pg_schema_url(pg_database)


@pytest.fixture
def make_pg_app(
    make_settings: Callable[..., Any], make_app: Callable[..., Flask], pg_url: str
) -> Callable[..., Flask]:
    def make(patterns: dict[str, Any] | None = None) -> Flask:
        overrides: dict[str, Any] = {"storage": {"url": pg_url}}
        if patterns:
            overrides["patterns"] = patterns
        return make_app(make_settings(overrides))

    return make


def request_body(name: str, **changes: Any) -> dict[str, Any]:
    """A fixture request with a new hookInstance (every user action is a new hook call)."""
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    body["hookInstance"] = str(uuid.uuid4())
    body.update(changes)
    return body


def call(app: Flask, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = app.test_client().post(f"/cds-services/{SERVICE_OF_HOOK[body['hook']]}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    return cards


def topics(cards: list[dict[str, Any]]) -> list[str]:
    return [c["source"]["topic"]["code"] for c in cards]


def audit_rows(app: Flask) -> list[dict[str, Any]]:
    audit = app.extensions["psychopharm"].audit
    audit.flush()
    return list(audit.query_cards())


def override(app: Flask, card: dict[str, Any], hook: str = "patient-view") -> Any:
    """The clinician dismisses the card with the first reason it offers."""
    stamp = NOW.isoformat().replace("+00:00", "Z")  # the service clock stands at NOW
    reason = card["overrideReasons"][0]
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "outcomeTimestamp": stamp,
                "overrideReason": {
                    "reason": {"system": reason["system"], "code": reason["code"]},
                    "userComment": "Explored together at the last visit",
                },
            }
        ]
    }
    return app.test_client().post(f"/cds-services/{SERVICE_OF_HOOK[hook]}/feedback", json=body)


def with_new_intolerance(body: dict[str, Any]) -> dict[str, Any]:
    """The same chart once another intolerance is on the allergy list (quetiapine: drowsiness,
    weight gain; borrowed from another fixture and re-pointed to this patient)."""
    grown = copy.deepcopy(body)
    grown["hookInstance"] = str(uuid.uuid4())
    other = json.loads((FIXTURES / INTOLERANCE_SIGN).read_text(encoding="utf-8"))
    (entry,) = [
        e for e in other["prefetch"]["allergies"]["entry"] if e["resource"]["id"] == "ai-quetiapine"
    ]
    entry["resource"]["patient"] = {"reference": f"Patient/{body['context']['patientId']}"}
    allergies = grown["prefetch"]["allergies"]
    allergies["entry"].append(entry)
    allergies["total"] += 1
    return grown


def test_shown_and_silent_cards_each_leave_one_row(make_pg_app: Callable[..., Flask]) -> None:
    app = make_pg_app({"multiple-failed-trials": {"mode": "silent"}})

    cards = call(app, request_body(ESCALATION_PV))

    assert topics(cards) == ["regimen-escalation"]
    rows = {r["pattern"]: r for r in audit_rows(app)}
    assert set(rows) == {"regimen-escalation", "multiple-failed-trials"}
    shown, silent = rows["regimen-escalation"], rows["multiple-failed-trials"]
    assert (shown["disposition"], shown["shown"], shown["card_uuid"]) == (
        "shown",
        True,
        cards[0]["uuid"],
    )
    assert (silent["disposition"], silent["shown"]) == ("silent", False)
    assert silent["summary"] and silent["evidence_refs"]
    assert shown["hook"] == silent["hook"] == "patient-view"
    assert shown["service_id"] == "psychopharm-patient-view"
    assert shown["config_version"] == silent["config_version"] != ""


def test_an_override_suppresses_the_card_until_a_new_intolerance(
    make_pg_app: Callable[..., Flask],
) -> None:
    app = make_pg_app()
    body = request_body(INTOLERANCE_PV)
    (card,) = call(app, body)
    audit_rows(app)  # written before the feedback arrives, as in real traffic

    stored = override(app, card)
    same_evidence = call(app, request_body(INTOLERANCE_PV))
    grown_evidence = call(app, with_new_intolerance(body))

    assert stored.get_json() == {"stored": 1}
    assert same_evidence == []
    assert topics(grown_evidence) == ["repeated-intolerance"]
    rows = audit_rows(app)
    assert [r["disposition"] for r in rows] == ["shown", "suppressed", "shown"]
    assert rows[0]["outcome"] == "overridden"
    assert rows[0]["override_code"] == card["overrideReasons"][0]["code"]
    assert "AllergyIntolerance/ai-quetiapine" in rows[2]["evidence_refs"]


def test_advice_shown_at_order_select_is_not_repeated_at_order_sign(
    make_pg_app: Callable[..., Flask],
) -> None:
    app = make_pg_app()
    sign = request_body(INTOLERANCE_SIGN)
    select = request_body(INTOLERANCE_SIGN, hook="order-select")
    select["context"]["selections"] = ["MedicationRequest/draft-mirtazapine"]

    at_select = call(app, select)
    at_sign = call(app, sign)

    assert "repeated-intolerance" in topics(at_select)
    assert at_sign == []
    rows = audit_rows(app)
    assert {(r["hook"], r["disposition"]) for r in rows} == {
        ("order-select", "shown"),
        ("order-sign", "deduplicated"),
    }
    assert sorted(r["pattern"] for r in rows if r["hook"] == "order-sign") == sorted(
        topics(at_select)
    )


def test_feedback_sent_twice_is_stored_once(make_pg_app: Callable[..., Flask], pg_url: str) -> None:
    app = make_pg_app()
    (card,) = call(app, request_body(INTOLERANCE_PV))
    audit_rows(app)

    first, second = override(app, card), override(app, card)

    assert (first.status_code, first.get_json()) == (200, {"stored": 1})
    assert (second.status_code, second.get_json()) == (200, {"stored": 0})
    engine = create_engine(pg_url)
    try:
        with engine.connect() as connection:
            count = connection.scalar(text("SELECT count(*) FROM audit_feedback"))
    finally:
        engine.dispose()
    assert count == 1


def test_audit_verify_is_ok_after_a_session_and_no_raw_patient_id_is_stored(
    make_pg_app: Callable[..., Flask],
    pg_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = make_pg_app({"multiple-failed-trials": {"mode": "silent"}})
    call(app, request_body(ESCALATION_PV))
    (card,) = call(app, request_body(INTOLERANCE_PV))
    audit_rows(app)
    override(app, card)
    call(app, request_body(INTOLERANCE_PV))
    card_rows = len(audit_rows(app))
    app.extensions["psychopharm"].close()
    config = tmp_path / "site.yaml"
    config.write_text(f'storage:\n  url: "{pg_url}"\n', encoding="utf-8")

    exit_code = cli.main(["audit", "verify", "--config", str(config)])

    assert exit_code == cli.EXIT_OK
    assert capsys.readouterr().out == f"OK {card_rows + 1} rows\n"  # cards + one feedback
    engine = create_engine(pg_url)
    try:
        with engine.connect() as connection:
            stored = " ".join(
                row
                for table in ("audit_card", "audit_feedback")
                for row in connection.scalars(text(f"SELECT t::text FROM {table} t"))  # noqa: S608
            )
    finally:
        engine.dispose()
    assert card_rows == 4  # escalation shown + failed trials silent, shown, suppressed
    assert stored and "pt-ri-0101" not in stored and "pt-re-0101" not in stored
