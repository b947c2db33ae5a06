"""Feedback strings stored in bounded audit columns are refused, by name, when they do not fit.

The limits are the columns' (``models.max_lengths(FEEDBACK)``): PostgreSQL refuses a longer
value and fails the whole insert, so the client gets a 400 it can act on instead of a 500.
Unbounded (Text) fields take any length.
"""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.errors import RequestError
from cds_service.storage.audit.models import FEEDBACK, max_lengths
from cds_service.web.feedback import parse_feedback
from tests.conftest import NOW

LIMITS = max_lengths(FEEDBACK)
SYSTEM = "https://psychopharm-cds.org/fhir/CodeSystem/override-reason"


def item(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "card": "4f0b6c2a-8d57-4a53-9a53-1b6f0d5e2c11",
        "outcome": "overridden",
        "outcomeTimestamp": "2026-06-15T10:00:00Z",
        "overrideReason": {
            "reason": {"code": "discussed-with-patient", "system": SYSTEM},
            "userComment": "Discussed at the last visit",
        },
    }
    value.update(changes)
    return value


def reason(code: str = "discussed-with-patient", system: str = SYSTEM) -> dict[str, Any]:
    return {"reason": {"code": code, "system": system}}


def refusal(*items: dict[str, Any]) -> RequestError:
    with pytest.raises(RequestError) as excinfo:
        parse_feedback({"feedback": list(items)}, "psychopharm-order-sign", NOW)
    return excinfo.value


@pytest.mark.parametrize(
    ("changes", "field", "column"),
    [
        pytest.param({"card": "c" * 65}, "card", "card_uuid", id="card"),
        pytest.param(
            {"card": "Side effects with medications from several unrelated classes: explore"},
            "card", "card_uuid", id="card-is-the-summary",
        ),
        pytest.param({"overrideReason": reason(code="x" * 129)},
                     "overrideReason.reason.code", "override_code", id="reason-code"),
        pytest.param({"overrideReason": reason(system="https://x.org/" + "s" * 250)},
                     "overrideReason.reason.system", "override_system", id="reason-system"),
    ],
)
def test_a_string_longer_than_its_column_is_refused_by_name(
    changes: dict[str, Any], field: str, column: str
) -> None:
    error = refusal(item(), item(**changes))

    assert (error.status, error.code) == (400, "invalid-field")
    assert error.message == (
        f"feedback[1].{field}: must be at most {LIMITS[column]} characters "
        "(the audit log stores no more)"
    )


def test_strings_that_just_fit_their_columns_are_kept() -> None:
    code, system = "x" * LIMITS["override_code"], "s" * LIMITS["override_system"]

    (record,) = parse_feedback(
        {"feedback": [item(card="c" * LIMITS["card_uuid"], overrideReason=reason(code, system))]},
        "psychopharm-order-sign", NOW,
    )

    assert (len(record.card_uuid), record.override_code, record.override_system) == (
        LIMITS["card_uuid"], code, system
    )


def test_unbounded_fields_take_any_length() -> None:
    comment, display, suggestion = "c" * 20_000, "d" * 5_000, "s" * 1_000
    body = {"feedback": [
        item(overrideReason={"reason": {"code": "r1", "system": SYSTEM, "display": display},
                             "userComment": comment}),
        item(outcome="accepted", overrideReason=None, acceptedSuggestions=[{"id": suggestion}]),
    ]}

    overridden, accepted = parse_feedback(body, "psychopharm-order-sign", NOW)

    assert (overridden.override_comment, overridden.override_display) == (comment, display)
    assert accepted.accepted_suggestions == (suggestion,)
