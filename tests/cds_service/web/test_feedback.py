"""Feedback (checklist §H): the sandbox's two bodies are stored; bad items are named precisely."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask

from cds_service.errors import RequestError
from cds_service.web.feedback import parse_feedback, parse_timestamp
from tests.cds_service.conftest import JwtIssuer
from tests.cds_service.web.test_errors import assert_error
from tests.conftest import NOW

FEEDBACK = "/cds-services/psychopharm-order-sign/feedback"


def test_sandbox_accepted_feedback_parses(load_fixture: Callable[[str], Any]) -> None:
    (record,) = parse_feedback(load_fixture("requests/feedback-accepted.json"),
                               "psychopharm-order-sign", NOW)

    assert record.card_uuid == "4f0b6c2a-8d57-4a53-9a53-1b6f0d5e2c11"
    assert record.outcome == "accepted"
    assert record.accepted_suggestions == ("7d3e9a10-52c4-4f0b-a8e1-0c9d2b7f6e33",)
    assert record.outcome_time == datetime(2026, 11, 22, 8, 36, 18, 445000, tzinfo=UTC)
    assert record.received_time == NOW
    assert record.override_code is None


def test_sandbox_overridden_feedback_without_display_parses(
    load_fixture: Callable[[str], Any],
) -> None:
    (record,) = parse_feedback(load_fixture("requests/feedback-overridden.json"),
                               "psychopharm-order-sign", NOW)

    assert record.outcome == "overridden"
    assert (record.override_code, record.override_system) == ("r1", "http://example.org/override")
    assert record.override_display is None
    assert record.accepted_suggestions == ()


def test_override_with_only_a_comment_is_kept() -> None:
    body = {"feedback": [{"card": "c1", "outcome": "overridden",
                          "outcomeTimestamp": "2026-06-15T10:00:00Z",
                          "overrideReason": {"userComment": "Discussed at the last visit"}}]}

    (record,) = parse_feedback(body, "s", NOW)

    assert record.override_comment == "Discussed at the last visit"
    assert record.override_code is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1985-04-12T23:20:50.52Z", datetime(1985, 4, 12, 23, 20, 50, 520000, tzinfo=UTC)),
        ("1996-12-19T16:39:57-08:00", datetime(1996, 12, 20, 0, 39, 57, tzinfo=UTC)),
        ("2026-06-15T10:00:00.123456789Z", datetime(2026, 6, 15, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-06-15T10:00:00", None),  # no time zone
        ("2026-06-15", None),
        ("yesterday", None),
        ("2026-13-45T10:00:00Z", None),
    ],
)
def test_outcome_timestamps_are_rfc3339_in_utc(value: str, expected: datetime | None) -> None:
    assert parse_timestamp(value) == expected


VALID = {"card": "c1", "outcome": "accepted", "acceptedSuggestions": [{"id": "s1"}],
         "outcomeTimestamp": "2026-06-15T10:00:00Z"}


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({**VALID, "card": None}, "feedback[1].card"),
        ({**VALID, "card": 5}, "feedback[1].card"),
        ({**VALID, "outcome": "ignored"}, "feedback[1].outcome"),
        ({k: v for k, v in VALID.items() if k != "acceptedSuggestions"},
         "feedback[1].acceptedSuggestions"),
        ({**VALID, "acceptedSuggestions": []}, "feedback[1].acceptedSuggestions"),
        ({**VALID, "acceptedSuggestions": [{"uuid": "s1"}]},
         "feedback[1].acceptedSuggestions[0].id"),
        ({**VALID, "outcomeTimestamp": "2026-06-15 10:00"}, "feedback[1].outcomeTimestamp"),
        ({**VALID, "outcome": "overridden", "overrideReason": {}}, "feedback[1].overrideReason"),
        ({**VALID, "outcome": "overridden", "overrideReason": {"reason": {"code": "x"}}},
         "feedback[1].overrideReason.reason.system"),
        ({**VALID, "outcome": "overridden", "overrideReason": {"reason": "already-discussed"}},
         "feedback[1].overrideReason.reason"),
    ],
)
def test_invalid_items_are_named_by_index_and_field(item: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestError) as excinfo:
        parse_feedback({"feedback": [VALID, item]}, "s", NOW)

    assert excinfo.value.message.startswith(field + ":")


@pytest.mark.parametrize("body", [{}, {"feedback": []}, {"feedback": {"card": "c1"}}])
def test_feedback_must_be_a_non_empty_array(body: dict[str, Any]) -> None:
    with pytest.raises(RequestError):
        parse_feedback(body, "s", NOW)


def test_feedback_is_stored_once_even_when_sent_twice(
    app: Flask, load_fixture: Callable[[str], Any]
) -> None:
    client = app.test_client()
    body = load_fixture("requests/feedback-overridden.json")

    first = client.post(FEEDBACK, json=body)
    second = client.post(FEEDBACK, json=body)

    assert first.status_code == 200
    assert first.get_json() == {"stored": 1}
    assert second.get_json() == {"stored": 0}


def test_both_sandbox_bodies_are_stored(client: Any, load_fixture: Callable[[str], Any]) -> None:
    accepted = client.post(FEEDBACK, json=load_fixture("requests/feedback-accepted.json"))
    overridden = client.post(FEEDBACK, json=load_fixture("requests/feedback-overridden.json"))

    assert accepted.get_json() == {"stored": 1}
    assert overridden.get_json() == {"stored": 1}


def test_invalid_feedback_over_http_is_400_naming_the_item(client: Any) -> None:
    response = client.post(FEEDBACK, json={"feedback": [{**VALID, "outcome": "maybe"}]})

    assert_error(response, 400, "invalid-field")
    assert "feedback[0].outcome" in response.get_json()["issue"][0]["details"]["text"]


def test_feedback_needs_the_client_jwt_when_required(
    make_app: Callable[..., Flask], jwt_settings: Any, test_issuer: JwtIssuer,
    load_fixture: Callable[[str], Any],
) -> None:
    client = make_app(jwt_settings).test_client()
    body = load_fixture("requests/feedback-accepted.json")

    without = client.post(FEEDBACK, json=body)
    with_token = client.post(FEEDBACK, json=body, headers=test_issuer.header(FEEDBACK))

    assert_error(without, 401, "unauthorized")
    assert with_token.status_code == 200
