"""GET /openapi.json documents the ids and lengths the validators enforce."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.cds_service.web.test_openapi import _schema

SIGN = "/cds-services/psychopharm-order-sign"


@pytest.fixture
def spec(client: Any) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").get_json()
    return document


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("patientId", "pat1", True),
        ("patientId", "Patient/pat1", True),
        ("patientId", "a" * 64, True),
        ("patientId", "a" * 65, False),
        ("patientId", "Patient/Patient/pat1", False),
        ("patientId", "pat1?_id=pat2", False),
        ("patientId", "Patient/..", False),
        ("encounterId", "Encounter/enc-1", True),
        ("encounterId", "Patient/enc-1", False),
        ("userId", "Practitioner/" + "p" * 243, True),
        ("userId", "Practitioner/" + "p" * 244, False),
    ],
)
def test_context_ids_and_lengths_are_documented(
    spec: dict[str, Any], load_fixture: Callable[[str], Any], field: str, value: str, valid: bool
) -> None:
    body = load_fixture("requests/order-sign-sandbox.json")
    body["context"][field] = value

    assert _schema(spec, SIGN, "request").is_valid(body) is valid


@pytest.mark.parametrize(("length", "valid"), [(64, True), (65, False)])
def test_feedback_card_length_is_documented(
    spec: dict[str, Any], length: int, valid: bool
) -> None:
    item = {"card": "c" * length, "outcome": "overridden",
            "outcomeTimestamp": "2026-06-15T10:00:00Z"}

    assert _schema(spec, SIGN + "/feedback", "request").is_valid({"feedback": [item]}) is valid
