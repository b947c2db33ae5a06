"""Through the hook endpoint: cards carry the timeline link only when the site set up the app."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Flask

from cds_service.settings import Settings
from tests.cds_service.conftest import hook_body, intolerance, service_url

PID = "pat-link-5521"
SMART = {
    "service": {"public_base_url": "https://cds.example.org"},
    "smart": {"client_id": "timeline-app", "session_secret": "k" * 40},
}


def _cards(app: Flask) -> list[dict[str, Any]]:
    resources = [
        intolerance("ai-1", "sertraline", "nausea", patient=PID, onset_days_ago=400),
        intolerance("ai-2", "aripiprazole", "headache", patient=PID, onset_days_ago=250),
        intolerance("ai-3", "venlafaxine", "dizziness", patient=PID, onset_days_ago=90),
    ]
    body = hook_body("patient-view", PID, resources)
    response = app.test_client().post(service_url("patient-view"), json=body)
    assert response.status_code == 200
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    assert cards, "the vignette should give a repeated-intolerance card"
    return cards


def test_cards_link_to_the_timeline_when_configured(
    make_app: Callable[..., Flask], make_settings: Callable[..., Settings]
) -> None:
    cards = _cards(make_app(make_settings(SMART)))
    for card in cards:
        [link] = [k for k in card["links"] if k["type"] == "smart"]
        assert link["url"] == "https://cds.example.org/app/launch"
        assert link["label"] == "Medication timeline"
        context = json.loads(link["appContext"])
        assert set(context) == {"pattern", "evidence"}
        assert context["pattern"] == card["source"]["topic"]["code"]
        assert PID not in link["appContext"] and "Patient/" not in link["appContext"]
    intolerance_card = next(
        c for c in cards if c["source"]["topic"]["code"] == "repeated-intolerance"
    )
    evidence = json.loads(
        next(k for k in intolerance_card["links"] if k["type"] == "smart")["appContext"]
    )["evidence"]
    assert set(evidence) == {
        "AllergyIntolerance/ai-1", "AllergyIntolerance/ai-2", "AllergyIntolerance/ai-3"
    }


def test_cards_are_unchanged_when_the_app_is_not_configured(
    make_app: Callable[..., Flask], settings: Settings
) -> None:
    for card in _cards(make_app(settings)):
        assert all(k["type"] != "smart" for k in card.get("links", ()))
        assert "appContext" not in json.dumps(card)
