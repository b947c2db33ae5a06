"""multiple-failed-trials: an adequate trial is >= its class's minimum number of days spent AT an
adequate dose (clinical-review.md; Sforzini 2022 for antidepressants, TRRIP/Howes 2017's 6 weeks
for antipsychotics). Days before a titration reaches the minimum effective dose, or after a
reduction below it, do not count, and the card describes the adequate days: the dose taken on
them and their weeks.

Minimum effective doses from config/ingredients.csv: sertraline 50, risperidone 2, aripiprazole
10 mg/day. Each story pairs the trial under test with a second failed trial (venlafaxine
150 mg/day for 11 weeks, stopped for lack of effect), so the card fires exactly when the trial
under test is adequate.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from cds_service.patterns.multiple_failed_trials import PATTERN_ID, detect
from fhir_mappers.record import DoseStep, MedicationCourse, PatientRecord, SymptomScore

from .builders import (
    ARIPIPRAZOLE,
    NOW,
    RISPERIDONE,
    SERTRALINE,
    VENLAFAXINE,
    course,
    days_ago,
    defaults,
    phq9,
    with_thresholds,
)

DEFAULTS = defaults(PATTERN_ID)

# Venlafaxine 150 mg/day for 11 weeks (days 300 -> 223), stopped for lack of effect.
VENLAFAXINE_FAILED = course(
    VENLAFAXINE,
    days_ago(300),
    mg=150,
    end=days_ago(223),
    status="stopped",
    stop_reason="lack_of_effect",
)


def _with_venlafaxine(
    *courses: MedicationCourse, scores: tuple[SymptomScore, ...] = ()
) -> PatientRecord:
    return PatientRecord(courses=(*courses, VENLAFAXINE_FAILED), scores=scores)


def _sertraline_trial(finding_trials: list[str]) -> str:
    (line,) = [t for t in finding_trials if t.startswith("sertraline")]
    return line


# --- a dose reduced below the minimum ------------------------------------------------------


def _reduced(days_at_100: int, *, back_to_100_days: int = 0) -> tuple[MedicationCourse, ...]:
    """Sertraline 100 mg/day from day 500 for ``days_at_100`` days, then 25 mg/day (a new order,
    as EHRs send a dose change) for 9 weeks; optionally back to 100 mg for some days. The last
    order is stopped for lack of effect."""
    first = course(SERTRALINE, days_ago(500), mg=100, end=days_ago(501 - days_at_100))
    reduced_from = 500 - days_at_100
    low_end = reduced_from - 63
    low = course(SERTRALINE, days_ago(reduced_from), mg=25, end=days_ago(low_end))
    if not back_to_100_days:
        return first, replace(low, status="stopped", stop_reason="lack_of_effect")
    again = course(
        SERTRALINE,
        days_ago(low_end),
        mg=100,
        end=days_ago(low_end - back_to_100_days),
        status="stopped",
        stop_reason="lack_of_effect",
    )
    return first, replace(low, status="completed"), again


@pytest.mark.parametrize(
    ("courses", "trial"),
    [
        pytest.param(_reduced(7), None, id="probe-1-week-at-100-then-9-weeks-at-25"),
        pytest.param(_reduced(27), None, id="near-miss-27-days-at-100"),
        pytest.param(
            _reduced(28),
            "sertraline 100 mg/day for 4 weeks: stopped for lack of effect",
            id="28-days-at-100-the-weeks-at-25-not-counted",
        ),
        pytest.param(_reduced(21, back_to_100_days=6), None, id="near-miss-21-plus-6-days-at-100"),
        pytest.param(
            _reduced(21, back_to_100_days=7),
            "sertraline 100 mg/day for 4 weeks: stopped for lack of effect",
            id="21-plus-7-days-at-100-around-a-reduction",
        ),
    ],
)
def test_days_after_a_reduction_below_the_minimum_do_not_count(
    courses: tuple[MedicationCourse, ...], trial: str | None
) -> None:
    finding = detect(_with_venlafaxine(*courses), (), DEFAULTS, NOW)

    if trial is None:
        assert finding is None
    else:
        assert finding is not None
        assert _sertraline_trial(finding.facts["trials"]) == trial


def test_the_card_gives_the_doses_taken_on_the_adequate_days() -> None:
    # 25 mg for 2 weeks (titration), 50 mg for 4 weeks, 200 mg for 2 weeks, then stopped.
    courses = (
        course(SERTRALINE, days_ago(500), mg=25, end=days_ago(487)),
        course(SERTRALINE, days_ago(486), mg=50, end=days_ago(459)),
        course(
            SERTRALINE,
            days_ago(458),
            mg=200,
            end=days_ago(444),
            status="stopped",
            stop_reason="lack_of_effect",
        ),
    )
    finding = detect(_with_venlafaxine(*courses), (), DEFAULTS, NOW)

    assert finding is not None
    assert _sertraline_trial(finding.facts["trials"]) == (
        "sertraline 50-200 mg/day for 6 weeks: stopped for lack of effect"
    )


# --- a multi-step order --------------------------------------------------------------------


def _titration(days_at_25: int, days_at_50: int) -> MedicationCourse:
    """One sertraline order from day 500: step 1 = 25 mg/day for ``days_at_25`` days, step 2 =
    50 mg/day (open), stopped for lack of effect ``days_at_50`` days after reaching 50 mg. As
    the mapper reads it: the course's dose is the last step's."""
    start = days_ago(500)
    step_two = days_ago(500 - days_at_25)
    return replace(
        course(
            SERTRALINE,
            start,
            mg=50,
            end=days_ago(500 - days_at_25 - days_at_50),
            status="stopped",
            stop_reason="lack_of_effect",
        ),
        steps=(
            DoseStep(sequence=1, start=start, end=days_ago(501 - days_at_25), daily_dose_mg=25),
            DoseStep(sequence=2, start=step_two, end=None, daily_dose_mg=50),
        ),
    )


@pytest.mark.parametrize(
    ("order", "trial"),
    [
        pytest.param(_titration(63, 7), None, id="probe-9-weeks-at-25-then-1-week-at-50"),
        pytest.param(_titration(63, 27), None, id="near-miss-27-days-at-50"),
        pytest.param(
            _titration(63, 28),
            "sertraline 50 mg/day for 4 weeks: stopped for lack of effect",
            id="28-days-at-50-the-weeks-at-25-not-counted",
        ),
    ],
)
def test_a_multi_step_order_counts_from_the_step_that_reaches_the_minimum(
    order: MedicationCourse, trial: str | None
) -> None:
    finding = detect(_with_venlafaxine(order), (), DEFAULTS, NOW)

    if trial is None:
        assert finding is None
    else:
        assert finding is not None
        assert _sertraline_trial(finding.facts["trials"]) == trial


@pytest.mark.parametrize(("score_days_at_50", "fires"), [(28, True), (27, False)])
def test_the_outcome_score_is_taken_after_the_minimum_at_an_adequate_dose(
    score_days_at_50: int, fires: bool
) -> None:
    # 25 mg for 8 weeks, then 50 mg for 5 weeks, stopped without a reason: only the PHQ-9 can
    # judge it, and a score from before 4 weeks at 50 mg says nothing of the trial's effect.
    order = replace(_titration(56, 35), stop_reason=None, status="completed")
    scores = (phq9(days_ago(503), 20), phq9(days_ago(500 - 56 - score_days_at_50), 18))
    finding = detect(_with_venlafaxine(order, scores=scores), (), DEFAULTS, NOW)

    assert (finding is not None) is fires
    if finding is not None:
        assert _sertraline_trial(finding.facts["trials"]) == (
            "sertraline 50 mg/day for 5 weeks: PHQ-9 from 20 to 18 at the end"
        )


# --- antipsychotics: >= 6 weeks (TRRIP) ----------------------------------------------------


def _antipsychotic_trials(days: int) -> PatientRecord:
    """Risperidone 2 mg/day, then aripiprazole 10 mg/day, each for ``days`` and stopped for lack
    of effect."""
    risperidone = course(
        RISPERIDONE,
        days_ago(400),
        mg=2,
        end=days_ago(400 - days),
        status="stopped",
        stop_reason="lack_of_effect",
    )
    aripiprazole = course(
        ARIPIPRAZOLE,
        days_ago(300),
        mg=10,
        end=days_ago(300 - days),
        status="stopped",
        stop_reason="lack_of_effect",
    )
    return PatientRecord(courses=(risperidone, aripiprazole))


@pytest.mark.parametrize(
    ("days", "fires"),
    [
        pytest.param(35, False, id="probe-5-weeks"),
        pytest.param(41, False, id="near-miss-41-days"),
        pytest.param(42, True, id="6-weeks"),
    ],
)
def test_an_antipsychotic_trial_lasts_at_least_six_weeks(days: int, fires: bool) -> None:
    finding = detect(_antipsychotic_trials(days), (), DEFAULTS, NOW)

    assert (finding is not None) is fires
    if finding is not None:
        assert finding.facts["trial_class"] == "antipsychotic"
        assert finding.facts["stopped_for_lack_of_effect"] is True  # the card says so
        assert finding.facts["trials"] == [
            "risperidone 2 mg/day for 6 weeks: stopped for lack of effect",
            "aripiprazole 10 mg/day for 6 weeks: stopped for lack of effect",
        ]


def test_the_per_class_minimum_comes_from_config() -> None:
    record = _antipsychotic_trials(35)
    assert DEFAULTS.trial_days("antipsychotic") == 42
    assert DEFAULTS.trial_days("antidepressant") == DEFAULTS.min_trial_days == 28
    assert detect(record, (), with_thresholds(PATTERN_ID, min_trial_days_by_class={}), NOW)
    longer = with_thresholds(PATTERN_ID, min_trial_days_by_class={"antipsychotic": 56})
    assert detect(_antipsychotic_trials(55), (), longer, NOW) is None
    assert detect(_antipsychotic_trials(56), (), longer, NOW)


def test_a_scored_class_with_a_longer_minimum_reaches_further_back() -> None:
    # Scores are what the pattern reads back in time: a class the PHQ-9 judges with a longer
    # minimum widens the reach; antipsychotics (judged by their stop) do not.
    assert sum(DEFAULTS.windows_days()) == 1095 + 28 + 30
    scored = with_thresholds(PATTERN_ID, min_trial_days_by_class={"antidepressant": 42})
    assert sum(scored.windows_days()) == 1095 + 42 + 30


# --- how the trials failed, for the card's wording -----------------------------------------


def test_the_finding_says_how_the_trials_failed() -> None:
    stops = detect(_antipsychotic_trials(42), (), DEFAULTS, NOW)
    assert stops is not None
    assert stops.facts["stopped_for_lack_of_effect"] is True
    assert stops.facts["scores_persisted"] is False

    # 28 days at 50 mg, judged by PHQ-9 (20 -> 18), with venlafaxine stopped for lack of effect.
    order = replace(_titration(56, 35), stop_reason=None, status="completed")
    scores = (phq9(days_ago(503), 20), phq9(days_ago(500 - 56 - 28), 18))
    both = detect(_with_venlafaxine(order, scores=scores), (), DEFAULTS, NOW)
    assert both is not None
    assert both.facts["stopped_for_lack_of_effect"] is True
    assert both.facts["scores_persisted"] is True

    venlafaxine_scored = replace(VENLAFAXINE_FAILED, stop_reason=None, status="completed")
    by_scores = detect(
        PatientRecord(
            courses=(order, venlafaxine_scored),
            scores=(*scores, phq9(days_ago(303), 19), phq9(days_ago(225), 17)),
        ),
        (),
        DEFAULTS,
        NOW,
    )
    assert by_scores is not None
    assert by_scores.facts["stopped_for_lack_of_effect"] is False
    assert by_scores.facts["scores_persisted"] is True
