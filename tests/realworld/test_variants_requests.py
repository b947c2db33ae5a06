"""How the request itself arrives: a required prefetch key whose search matched nothing and says
so with an informational OperationOutcome (``search.mode: outcome``), as Epic does ("4101:
Resource request returns no results."). That is an empty result, not a failed prefetch: the
call is answered, where before it was refused with 412."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.realworld.builders import day as days_ago
from tests.realworld.builders import intolerance, order, request
from tests.realworld.conftest import topics

PID = "rw-empty-search"


def _outcome_only(*severities: str | None) -> dict[str, Any]:
    """A searchset with no match and one outcome entry whose issues have these severities."""
    issues = [
        {"code": "informational", "diagnostics": "4101: Resource request returns no results.",
         **({"severity": s} if s is not None else {})}
        for s in severities
    ]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 0,
        "entry": [{
            "resource": {"resourceType": "OperationOutcome", "issue": issues},
            "search": {"mode": "outcome"},
        }],
    }


def _signing_with_empty_medications(*severities: str | None) -> dict[str, Any]:
    # Side effects with drugs of three unrelated classes (SSRI, SNRI, atypical antipsychotic)
    # in the last 24 months, and a new psychotropic being signed: repeated-intolerance's case.
    body = request(
        "order-sign",
        PID,
        [
            intolerance("ai-1", PID, "sertraline50", days_ago(300), "Nausea"),
            intolerance("ai-2", PID, "venlafaxine75", days_ago(200), "Headache"),
            intolerance("ai-3", PID, "quetiapine25", days_ago(100), "Dizziness"),
        ],
        drafts=[order("draft-1", PID, "fluoxetine20", authored=days_ago(0), status="draft")],
    )
    body["prefetch"]["medications"] = _outcome_only(*severities)
    return body


@pytest.mark.parametrize(
    "severities", [("information",), ("warning",), ("information", "warning")],
    ids=["information", "warning", "both"],
)
def test_a_search_that_matched_nothing_is_an_empty_result(
    post: Callable[[dict[str, Any]], Any], severities: tuple[str, ...]
) -> None:
    response = post(_signing_with_empty_medications(*severities))

    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert "repeated-intolerance" in topics(response)


@pytest.mark.parametrize(
    "severities", [("error",), ("fatal",), ("information", "error"), (None,)],
    ids=["error", "fatal", "information-and-error", "no-severity"],
)
def test_an_outcome_that_reports_a_failure_still_makes_the_key_unavailable(
    post: Callable[[dict[str, Any]], Any], severities: tuple[str | None, ...]
) -> None:
    # The required key then has no data and cannot be fetched (the test server is not on the
    # allow-list): 412, naming the key, as for any failed prefetch.
    response = post(_signing_with_empty_medications(*severities))

    assert response.status_code == 412
    assert "'medications' prefetched as a Bundle of OperationOutcomes" in response.get_data(
        as_text=True
    )
