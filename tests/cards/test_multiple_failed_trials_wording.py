"""The multiple-failed-trials card says how the trials failed: "compared with how the patient
started" only when every trial was judged against a baseline PHQ-9; a stop for lack of effect
measured no baseline (antipsychotic trials are judged by their stop alone)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from cards.builder import build_card
from cards.wording import Wording
from cds_service.patterns.base import Finding

BASELINE = "compared with how the patient started"


def _detail(finding: Finding, wording: Mapping[str, Wording]) -> str:
    card = build_card(
        finding,
        wording[finding.pattern_id],
        patient_ref="Patient/pat-1",
        practitioner_ref="Practitioner/prac-7",
        encounter_ref="Encounter/enc-3",
    )
    return str(card["detail"])


@pytest.mark.parametrize(
    ("scores", "stops", "said", "not_said"),
    [
        pytest.param(True, False, BASELINE, "stopped", id="all-judged-by-phq9"),
        pytest.param(
            False,
            True,
            "were stopped because they did not help enough",
            "how the patient started",
            id="all-stopped-for-lack-of-effect",
        ),
        pytest.param(
            True,
            True,
            "symptoms stayed close to how the patient started, or the medication was stopped "
            "for lack of effect",
            BASELINE,
            id="both-kinds",
        ),
    ],
)
def test_the_why_matches_how_the_trials_failed(
    wording: Mapping[str, Wording],
    make_finding: Callable[..., Finding],
    scores: bool,
    stops: bool,
    said: str,
    not_said: str,
) -> None:
    finding = make_finding(
        "multiple-failed-trials",
        scores_persisted=scores,
        stopped_for_lack_of_effect=stops,
        trial_class="antipsychotic" if not scores else "antidepressant",
    )
    detail = _detail(finding, wording)
    assert said in detail
    assert not_said not in detail
