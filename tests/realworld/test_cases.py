"""The requests from the field (shared/cases/realworld) as end-to-end tests: each file through the
Flask test client with the clock at 2026-11-30, checked against expected.json (status, topics
that must and must not fire)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.realworld.conftest import REALWORLD, topics

EXPECTED = json.loads((REALWORLD / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", EXPECTED, ids=[c["file"].removesuffix(".json") for c in EXPECTED])
def test_field_case_gets_the_right_answer(
    case: dict[str, Any], post: Callable[[dict[str, Any]], Any]
) -> None:
    body = json.loads((REALWORLD / case["file"]).read_text(encoding="utf-8"))
    assert body["hook"] == case["hook"]

    response = post(body)

    expected = case["expected"]
    assert response.status_code == expected["status"], response.get_data(as_text=True)[:500]
    fired = topics(response)
    for topic in expected["must_fire"]:
        assert topic in fired
    for topic in expected["must_not_fire"]:
        assert topic not in fired
