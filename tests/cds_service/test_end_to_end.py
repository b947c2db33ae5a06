"""Clinical vignettes through the real endpoints: mapper, patterns, policy, cards and audit.

Each test tells one story a prescriber would recognise and checks what they would see (the cards)
and what the service would remember (the audit rows).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cds_service.storage.audit.records import pseudonymize
from tests.cds_service.conftest import (
    draft_order,
    hook_body,
    intolerance,
    medication_request,
    service_url,
)
from tests.conftest import NOW

PID = "pat-vignette-7731"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def side_effect_history(pid: str = PID) -> list[dict[str, Any]]:
    """Side effects with drugs of three unrelated classes (SSRI, SGA, SNRI) in 14 months."""
    return [
        intolerance("ai-1", "sertraline", "nausea", patient=pid, onset_days_ago=400),
        intolerance("ai-2", "aripiprazole", "headache", patient=pid, onset_days_ago=250),
        intolerance("ai-3", "venlafaxine", "dizziness", patient=pid, onset_days_ago=90),
    ]


def two_antipsychotics(pid: str = PID) -> list[dict[str, Any]]:
    return [
        medication_request("mr-q", "quetiapine", patient=pid, authored_days_ago=120, dose_mg=100),
        medication_request("mr-r", "risperidone", patient=pid, authored_days_ago=100, dose_mg=2),
    ]


def mirtazapine_draft(pid: str = PID, dose_mg: float = 15) -> dict[str, Any]:
    return draft_order("draft-mirt-1", "mirtazapine", patient=pid, dose_mg=dose_mg)


def call(client: Any, hook: str, resources: Iterable[dict[str, Any]] = (),
         drafts: Iterable[dict[str, Any]] = (), **kwargs: Any) -> list[dict[str, Any]]:
    response = client.post(service_url(hook), json=hook_body(hook, PID, resources,
                                                              drafts=drafts, **kwargs))
    assert response.status_code == 200, response.get_data(as_text=True)
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    return cards


def audit_rows(app: Flask) -> list[dict[str, Any]]:
    audit = app.extensions["psychopharm"].audit
    audit.flush()
    return list(audit.query_cards())


def topics(cards: Iterable[dict[str, Any]]) -> list[str]:
    return [c["source"]["topic"]["code"] for c in cards]


def normalised(card: dict[str, Any]) -> Any:
    """The card with uuids replaced, for comparing cards as parsed JSON."""
    import json

    return json.loads(UUID.sub("<uuid>", json.dumps(card)))


def test_patient_without_psychotropics_gets_no_cards_and_no_audit_rows(
    app: Flask, client: Any
) -> None:
    metformin = medication_request("mr-1", "metformin", patient=PID, authored_days_ago=200)

    cards = call(client, "patient-view", [metformin])

    assert cards == []
    assert audit_rows(app) == []


def test_repeated_intolerance_at_order_sign_gives_one_card_with_its_evidence(
    app: Flask, client: Any
) -> None:
    cards = call(client, "order-sign", side_effect_history(), drafts=[mirtazapine_draft()])

    assert topics(cards) == ["repeated-intolerance"]
    card = cards[0]
    assert card["indicator"] == "info"
    assert len(card["summary"]) < 140
    for drug in ("sertraline", "aripiprazole", "venlafaxine"):
        assert drug in card["detail"]
    assert card["suggestions"] and card["overrideReasons"]
    subjects = [a["resource"].get("subject") or a["resource"].get("for")
                for s in card["suggestions"] for a in s["actions"]]
    assert {"reference": f"Patient/{PID}"} in subjects
    (row,) = audit_rows(app)
    assert (row["disposition"], row["shown"], row["card_uuid"]) == ("shown", True, card["uuid"])
    assert row["hook"] == "order-sign"
    assert row["service_id"] == "psychopharm-order-sign"
    assert set(row["evidence_refs"]) >= {"AllergyIntolerance/ai-1", "AllergyIntolerance/ai-3"}


def test_the_same_story_gives_the_same_card(client: Any) -> None:
    first = call(client, "order-sign", side_effect_history(), drafts=[mirtazapine_draft()])
    second = call(client, "order-sign", side_effect_history(), drafts=[mirtazapine_draft()])

    assert first[0]["uuid"] != second[0]["uuid"]
    assert normalised(first[0]) == normalised(second[0])


def test_a_non_psychotropic_draft_gets_no_cards(app: Flask, client: Any) -> None:
    metformin = draft_order("draft-met", "metformin", patient=PID, dose_mg=500)

    cards = call(client, "order-sign", side_effect_history(), drafts=[metformin])

    assert cards == []
    assert audit_rows(app) == []


def test_legacy_medication_prescribe_advises_like_order_sign(client: Any) -> None:
    cards = call(client, "medication-prescribe", side_effect_history(),
                 drafts=[mirtazapine_draft()])

    assert topics(cards) == ["repeated-intolerance"]


def test_silent_mode_records_the_card_but_shows_nothing(
    make_settings: Callable[..., Any], make_app: Callable[..., Flask]
) -> None:
    app = make_app(make_settings({"patterns": {"repeated-intolerance": {"mode": "silent"}}}))

    cards = call(app.test_client(), "order-sign", side_effect_history(),
                 drafts=[mirtazapine_draft()])

    assert cards == []
    (row,) = audit_rows(app)
    assert (row["pattern"], row["disposition"], row["shown"]) == (
        "repeated-intolerance", "silent", False)
    assert row["summary"]


def test_a_pattern_switched_off_leaves_no_trace(
    make_settings: Callable[..., Any], make_app: Callable[..., Flask]
) -> None:
    app = make_app(make_settings({"patterns": {"repeated-intolerance": {"mode": "off"}}}))

    cards = call(app.test_client(), "order-sign", side_effect_history(),
                 drafts=[mirtazapine_draft()])

    assert cards == []
    assert audit_rows(app) == []


def test_advice_shown_at_order_select_is_not_repeated_at_order_sign(
    app: Flask, client: Any
) -> None:
    at_select = call(client, "order-select", side_effect_history(), drafts=[mirtazapine_draft()])
    at_sign = call(client, "order-sign", side_effect_history(), drafts=[mirtazapine_draft()])
    changed_order = call(client, "order-sign", side_effect_history(),
                         drafts=[mirtazapine_draft(dose_mg=30)])

    assert topics(at_select) == ["repeated-intolerance"]
    assert at_sign == []
    assert topics(changed_order) == ["repeated-intolerance"]
    assert [r["disposition"] for r in audit_rows(app)] == ["shown", "deduplicated", "shown"]


def test_another_prescriber_signing_still_sees_the_advice(client: Any) -> None:
    call(client, "order-select", side_effect_history(), drafts=[mirtazapine_draft()])

    cards = call(client, "order-sign", side_effect_history(), drafts=[mirtazapine_draft()],
                 user="Practitioner/prac-other")

    assert topics(cards) == ["repeated-intolerance"]


def _override(client: Any, card_uuid: str, hook: str = "patient-view") -> None:
    stamp = (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    response = client.post(f"{service_url(hook)}/feedback", json={"feedback": [{
        "card": card_uuid, "outcome": "overridden", "outcomeTimestamp": stamp,
        "overrideReason": {"reason": {
            "system": "https://psychopharm-cds.org/fhir/CodeSystem/override-reason",
            "code": "already-discussed"}, "userComment": "Talked it through last week"},
    }]})
    assert response.get_json() == {"stored": 1}


def test_overridden_advice_is_suppressed_until_the_evidence_grows(
    app: Flask, client: Any
) -> None:
    history = side_effect_history()
    (card,) = call(client, "patient-view", history)
    audit_rows(app)  # flush: the override is matched against the stored card row
    _override(client, card["uuid"])

    same_evidence = call(client, "patient-view", history)
    one_more = intolerance("ai-4", "bupropion", "insomnia", patient=PID, onset_days_ago=20)
    grown_evidence = call(client, "patient-view", [*history, one_more])

    assert same_evidence == []
    assert topics(grown_evidence) == ["repeated-intolerance"]
    rows = audit_rows(app)
    assert [r["disposition"] for r in rows] == ["shown", "suppressed", "shown"]
    assert rows[0]["outcome"] == "overridden"
    assert rows[0]["override_code"] == "already-discussed"


def test_max_cards_keeps_the_highest_priority_and_records_the_rest(
    make_settings: Callable[..., Any], make_app: Callable[..., Flask]
) -> None:
    app = make_app(make_settings({"service": {"max_cards": 1}}))
    resources = [*side_effect_history(), *two_antipsychotics()]

    cards = call(app.test_client(), "patient-view", resources)

    assert topics(cards) == ["repeated-intolerance"]
    dispositions = {r["pattern"]: r["disposition"] for r in audit_rows(app)}
    assert dispositions == {"repeated-intolerance": "shown",
                            "psychotropic-polypharmacy": "capped"}


def test_both_patterns_are_shown_under_the_default_cap(client: Any) -> None:
    cards = call(client, "patient-view", [*side_effect_history(), *two_antipsychotics()])

    assert topics(cards) == ["repeated-intolerance", "psychotropic-polypharmacy"]


def test_audit_never_stores_the_raw_patient_id(
    app: Flask, client: Any, settings: Any, tmp_path: Path
) -> None:
    call(client, "order-select", side_effect_history(), drafts=[mirtazapine_draft()])
    call(client, "order-sign", side_effect_history(), drafts=[mirtazapine_draft()])
    (card,) = call(client, "patient-view", side_effect_history())
    _override(client, card["uuid"])

    rows = audit_rows(app)
    app.extensions["psychopharm"].close()
    database = (tmp_path / "audit.sqlite3").read_bytes()
    side_files = b"".join(p.read_bytes() for p in tmp_path.glob("audit.sqlite3-*"))

    assert len(rows) == 3
    assert {r["patient_key"] for r in rows} == {
        pseudonymize(PID, settings.storage.patient_key_secret)}
    assert PID.encode() not in database + side_files
    assert all(f"Patient/{rows[0]['patient_key']}" in r["card_json"] for r in rows)


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_sandbox_quirks_do_not_prevent_advice(client: Any, hook: str) -> None:
    """category as an object and no Bundle.type, as the CDS Hooks sandbox sends them."""
    draft = mirtazapine_draft()
    draft["category"] = draft["category"][0]

    cards = call(client, hook, side_effect_history(), drafts=[draft])

    assert topics(cards) == ["repeated-intolerance"]
