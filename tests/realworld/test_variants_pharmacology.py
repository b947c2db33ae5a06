"""Side effects that are a drug's objective, expected pharmacology (akathisia with aripiprazole,
tremor and hypothyroidism with lithium, weight gain, a low sodium) are not what nocebo framing
fits (clinical-review.md): such a record is not counted toward repeated intolerance, while a
record with a vague, subjective reaction is. The card's evidence shows the reaction as recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.realworld.builders import day, intolerance, order, request
from tests.realworld.conftest import topics

Post = Callable[[dict[str, Any]], Any]
RI = "repeated-intolerance"


def _three(pid: str, third: str) -> list[dict[str, Any]]:
    """Sertraline (nausea), venlafaxine (headache), and quetiapine with ``third``: three ATC-4
    classes if the third counts."""
    return [
        intolerance("ai-1", pid, "sertraline50", day(300), "Nausea"),
        intolerance("ai-2", pid, "venlafaxine75", day(200), "Headache"),
        intolerance("ai-3", pid, "quetiapine100", day(100), third),
    ]


@pytest.mark.parametrize(
    ("third", "fires"),
    [
        ("Sedation", True),
        ("Dizziness", True),
        ("Akathisia", False),
        ("Weight gain", False),
        ("Tremor", False),
        ("Erectile dysfunction", False),
        ("Hyperprolactinaemia", False),
    ],
)
def test_a_drugs_expected_pharmacology_is_no_nocebo_evidence(
    post: Post, third: str, fires: bool
) -> None:
    pid = f"pharm-{third.lower().replace(' ', '-')}"
    assert (RI in topics(post(request("patient-view", pid, _three(pid, third))))) is fires


def test_a_record_with_a_subjective_reaction_beside_a_pharmacological_one_counts(
    post: Post,
) -> None:
    pid = "pharm-mixed"
    resources = _three(pid, "Drowsy")
    resources[2]["reaction"][0]["manifestation"].append({"text": "Weight gain"})
    assert RI in topics(post(request("patient-view", pid, resources)))


def _stopped(rid: str, pid: str, product: str, days_ago: int, reason: str) -> dict[str, Any]:
    return order(
        rid, pid, product, authored=day(days_ago + 30), status="stopped",
        statusReason={"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason",
            "code": "sintol", "display": "Suspected intolerance",
        }], "text": reason},
        dosageInstruction=[{"timing": {"repeat": {"boundsPeriod": {
            "start": day(days_ago + 30), "end": day(days_ago)}}}}],
    )


@pytest.mark.parametrize(("reason", "fires"), [("Na 128, confused", False),
                                               ("Felt dizzy and tired", True)])
def test_a_stop_for_a_laboratory_value_is_no_nocebo_evidence(
    post: Post, reason: str, fires: bool
) -> None:
    pid = f"pharm-stop-{fires}"
    resources = [*_three(pid, "Nausea")[:2], _stopped("mr-li", pid, "quetiapine100", 60, reason)]
    assert (RI in topics(post(request("patient-view", pid, resources)))) is fires


def test_the_evidence_line_shows_the_reaction_a_stop_recorded(post: Post) -> None:
    pid = "pharm-evidence"
    resources = [*_three(pid, "Nausea")[:2],
                 _stopped("mr-q", pid, "quetiapine100", 60, "Felt dizzy and tired")]
    (card,) = [c for c in post(request("patient-view", pid, resources)).get_json()["cards"]
               if c["source"]["topic"]["code"] == RI]
    assert "felt dizzy and tired" in card["detail"]


@pytest.mark.parametrize(
    "third",
    ["SIADH", "Thrombocytopenia", "QTc 520 ms on ECG", "Elevated CK", "Low platelet count",
     "Suicidal thoughts", "Worsening SI", "Induced hypomania"],
)
def test_an_objective_finding_in_other_words_is_no_nocebo_evidence(post: Post, third: str) -> None:
    # Objective or dangerous reactions never fit nocebo framing (clinical-review.md), however
    # they are worded.
    pid = "pharm-objective-" + "".join(ch for ch in third.lower() if ch.isalnum())
    assert RI not in topics(post(request("patient-view", pid, _three(pid, third))))


def _stopped_saying(rid: str, pid: str, product: str, days_ago: int, reason: str
                    ) -> dict[str, Any]:
    """An order stopped ``days_ago`` with a reason given as text only."""
    resource = _stopped(rid, pid, product, days_ago, reason)
    resource["statusReason"] = {"text": reason}
    return resource


@pytest.mark.parametrize(
    ("reason", "fires"),
    [
        ("Not effective; no side effects", False),
        ("Switched to aripiprazole - patient denies side effects", False),
        ("Adverse reaction: ANC 0.8", False),
        ("Side effects - felt foggy", True),
    ],
)
def test_a_stop_that_says_there_were_no_side_effects_is_no_intolerance(
    post: Post, reason: str, fires: bool
) -> None:
    pid = "pharm-said-" + "".join(ch for ch in reason.lower() if ch.isalnum())[:24]
    resources = [*_three(pid, "Nausea")[:2],
                 _stopped_saying("mr-q", pid, "quetiapine100", 60, reason)]
    assert (RI in topics(post(request("patient-view", pid, resources)))) is fires
