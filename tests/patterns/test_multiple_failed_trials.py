"""multiple-failed-trials: >= 2 adequate trials of different agents, symptoms persisting against
the patient's own baseline (a fall of less than 50% and PHQ-9 still >= 10)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cds_service.patterns.multiple_failed_trials import PATTERN_ID, detect
from fhir_mappers.record import MedicationCourse, PatientRecord, StopReasonKind, SymptomScore

from .builders import (
    ARIPIPRAZOLE,
    BUPROPION,
    ESCITALOPRAM,
    LITHIUM,
    LORAZEPAM,
    MIRTAZAPINE,
    NOW,
    QUETIAPINE,
    RISPERIDONE,
    SERTRALINE,
    VENLAFAXINE,
    course,
    days_ago,
    defaults,
    dispense,
    draft,
    phq9,
    with_thresholds,
)

DEFAULTS = defaults(PATTERN_ID)

# Sertraline 150 mg/day for 10 weeks (days 400 -> 330): PHQ-9 20 at the start, 17 near the end.
SERTRALINE_TRIAL = (course(SERTRALINE, days_ago(400), mg=150, end=days_ago(330), status="stopped"),)
SERTRALINE_PHQ9 = (phq9(days_ago(405), 20), phq9(days_ago(332), 17))


def _record(
    courses: tuple[MedicationCourse, ...] = (),
    scores: tuple[SymptomScore, ...] = (),
    **other: object,
) -> PatientRecord:
    return PatientRecord(
        courses=SERTRALINE_TRIAL + courses,
        scores=SERTRALINE_PHQ9 + scores,
        **other,  # type: ignore[arg-type]
    )


def _escitalopram(
    days: int = 120, mg: float | None = 20, stop_reason: StopReasonKind | None = None
) -> MedicationCourse:
    """Escitalopram for `days`, stopped 200 days ago."""
    return course(
        ESCITALOPRAM,
        days_ago(200 + days),
        mg=mg,
        end=days_ago(200),
        status="stopped",
        stop_reason=stop_reason,
    )


def _venlafaxine_judged(
    baseline: float, outcome: float, baseline_days_before: int = 5
) -> PatientRecord:
    """Venlafaxine 150 mg/day for 12 weeks (days 300 -> 216), scored at start and end."""
    venlafaxine = course(VENLAFAXINE, days_ago(300), mg=150, end=days_ago(216), status="stopped")
    scores = (phq9(days_ago(300 + baseline_days_before), baseline), phq9(days_ago(218), outcome))
    return _record((venlafaxine,), scores)


def test_two_antidepressant_trials_fire() -> None:
    record = _record((_escitalopram(stop_reason="lack_of_effect"),))
    finding = detect(record, (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.indicator == "info"
    assert finding.facts["failed_trial_count"] == 2
    assert finding.facts["trial_class"] == "antidepressant"
    assert finding.facts["trials"] == [
        "sertraline 150 mg/day for 10 weeks: PHQ-9 from 20 to 17 at the end",
        "escitalopram 20 mg/day for 17 weeks: stopped for lack of effect",
    ]
    assert finding.facts["lookback_months"] == 36
    assert finding.facts["min_failed_trials"] == 2
    assert finding.facts["dose_unknown_ingredients"] == []
    assert finding.evidence_keys == {"trial:sertraline", "trial:escitalopram"}
    # one line per drug; the scores are part of the line, not lines of their own
    assert [e.label for e in finding.evidence] == finding.facts["trials"]
    assert finding.concerns_draft is False


@pytest.mark.parametrize(
    ("baseline", "outcome", "fires"),
    [
        pytest.param(26, 12, False, id="fell-54pct-still-12-is-a-response"),
        pytest.param(20, 10, False, id="fell-exactly-50pct-is-a-response"),
        pytest.param(20, 11, True, id="fell-45pct-and-11-persisted"),
        pytest.param(20, 9, False, id="below-10-at-the-end"),
        pytest.param(14, 10, True, id="exactly-10-at-the-end-persisted"),
    ],
)
def test_persistence_is_judged_against_the_baseline(
    baseline: float, outcome: float, fires: bool
) -> None:
    finding = detect(_venlafaxine_judged(baseline, outcome), (), DEFAULTS, NOW)
    assert (finding is not None) is fires


def test_response_fraction_comes_from_config() -> None:
    record = _venlafaxine_judged(26, 12)  # a 54% fall
    stricter = with_thresholds(PATTERN_ID, phq9_response_fall_fraction=0.6)
    assert detect(record, (), DEFAULTS, NOW) is None
    assert detect(record, (), stricter, NOW) is not None


def test_without_a_baseline_phq9_decides_nothing() -> None:
    assert detect(_venlafaxine_judged(20, 17, baseline_days_before=31), (), DEFAULTS, NOW) is None
    assert detect(_venlafaxine_judged(20, 17, baseline_days_before=30), (), DEFAULTS, NOW)


def test_phq9_does_not_judge_antipsychotic_trials() -> None:
    risperidone = course(RISPERIDONE, days_ago(500), mg=4, end=days_ago(400), status="stopped")
    quetiapine = course(QUETIAPINE, days_ago(390), mg=400, end=days_ago(300), status="stopped")
    scores = (
        phq9(days_ago(505), 22),
        phq9(days_ago(401), 21),
        phq9(days_ago(392), 21),
        phq9(days_ago(301), 20),
    )
    record = PatientRecord(courses=(risperidone, quetiapine), scores=scores)
    assert detect(record, (), DEFAULTS, NOW) is None

    stopped = PatientRecord(
        courses=(
            replace(risperidone, stop_reason="lack_of_effect"),
            replace(quetiapine, stop_reason="lack_of_effect"),
        )
    )
    finding = detect(stopped, (), DEFAULTS, NOW)
    assert finding is not None and finding.facts["trial_class"] == "antipsychotic"


def test_augmentation_while_symptoms_persist_counts() -> None:
    courses = (
        course(VENLAFAXINE, days_ago(200), mg=150),
        course(ARIPIPRAZOLE, days_ago(100), mg=5),
    )
    scores = (phq9(days_ago(203), 18), phq9(days_ago(95), 15))
    finding = detect(_record(courses, scores), (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.facts["trials"][-1] == (
        "venlafaxine 150 mg/day for 14 weeks: PHQ-9 from 18 to 15 when aripiprazole was added"
    )


@pytest.mark.parametrize(
    ("later", "counts"),
    [
        # A response (PHQ-9 8, a 56% fall from 18) after aripiprazole was added is the
        # combination's: venlafaxine alone still did not help enough.
        pytest.param(phq9(days_ago(30), 8), True, id="response-after-the-added-agent"),
        # The same response before aripiprazole: venlafaxine worked, no failed trial.
        pytest.param(phq9(days_ago(130), 8), False, id="response-before-the-added-agent"),
        # Remission needs no baseline: PHQ-9 4 before aripiprazole.
        pytest.param(phq9(days_ago(130), 4), False, id="remission-before-the-added-agent"),
    ],
)
def test_a_response_counts_only_before_the_outcome(later: SymptomScore, counts: bool) -> None:
    courses = (
        course(VENLAFAXINE, days_ago(200), mg=150),
        course(ARIPIPRAZOLE, days_ago(100), mg=5),
    )
    scores = (phq9(days_ago(203), 18), phq9(days_ago(95), 15), later)
    finding = detect(_record(courses, scores), (), DEFAULTS, NOW)

    # Sertraline's failed trial is the other one: the card needs venlafaxine's.
    assert (finding is not None) is counts
    if finding is not None:
        assert finding.facts["trials"][-1] == (
            "venlafaxine 150 mg/day for 14 weeks: PHQ-9 from 18 to 15 when aripiprazole was added"
        )


@pytest.mark.parametrize(
    ("added", "augments"),
    [
        pytest.param(course(QUETIAPINE, days_ago(100), mg=50), False, id="quetiapine-50-for-sleep"),
        pytest.param(course(QUETIAPINE, days_ago(100), mg=150), True, id="quetiapine-150"),
        pytest.param(course(MIRTAZAPINE, days_ago(100), mg=7.5), False, id="mirtazapine-7.5"),
        pytest.param(course(MIRTAZAPINE, days_ago(100), mg=15), True, id="mirtazapine-15"),
        pytest.param(course(ARIPIPRAZOLE, days_ago(100), mg=5, prn=True), False, id="as-needed"),
        # A dose not given (a text-only sig) is not known to be above the hypnotic dose.
        pytest.param(course(MIRTAZAPINE, days_ago(100), mg=None), False, id="mirtazapine-unknown"),
        pytest.param(course(ARIPIPRAZOLE, days_ago(100), mg=None), True, id="no-hypnotic-dose"),
    ],
)
def test_sleep_doses_are_not_augmentation(added: MedicationCourse, augments: bool) -> None:
    courses = (course(VENLAFAXINE, days_ago(200), mg=150), added)
    scores = (phq9(days_ago(203), 18), phq9(days_ago(95), 15))
    finding = detect(_record(courses, scores), (), DEFAULTS, NOW)
    assert (finding is not None) is augments


def test_the_order_being_signed_is_not_evidence_the_current_drug_failed() -> None:
    current = course(VENLAFAXINE, days_ago(90), mg=150)
    record = _record((current,), (phq9(days_ago(95), 18), phq9(days_ago(2), 16)))
    assert detect(record, (), DEFAULTS, NOW) is None
    for drafted in (draft(ARIPIPRAZOLE, 2), draft(BUPROPION, 150)):
        assert detect(record, (drafted,), DEFAULTS, NOW) is None


@pytest.mark.parametrize(
    ("drafts", "concerns"),
    [
        pytest.param((draft(LORAZEPAM, 1),), False, id="anxiolytic-draft"),
        pytest.param((draft(LITHIUM, 600),), True, id="lithium-augmentation-draft"),
        pytest.param((draft(ESCITALOPRAM, 10),), True, id="antidepressant-draft"),
        pytest.param((draft(None, 500),), False, id="metformin-draft"),
        # Quetiapine and mirtazapine at hypnotic doses (<= sleep_max_mg_per_day) treat sleep;
        # above, or with the dose unknown for an agent with no hypnotic use, they augment.
        pytest.param((draft(QUETIAPINE, 25),), False, id="quetiapine-25-at-bedtime"),
        pytest.param((draft(QUETIAPINE, 100),), False, id="quetiapine-at-the-hypnotic-maximum"),
        pytest.param((draft(QUETIAPINE, 150),), True, id="quetiapine-150-above-it"),
        pytest.param((draft(MIRTAZAPINE, None),), False, id="mirtazapine-dose-unknown"),
        pytest.param(
            (replace(draft(MIRTAZAPINE, 30), is_prn=True),), False, id="mirtazapine-as-needed"
        ),
        pytest.param((draft(ESCITALOPRAM, None),), True, id="escitalopram-dose-unknown"),
    ],
)
def test_concerns_draft(drafts: tuple[MedicationCourse, ...], concerns: bool) -> None:
    record = _record((_escitalopram(stop_reason="lack_of_effect"),))
    finding = detect(record, drafts, DEFAULTS, NOW)
    assert finding is not None
    assert finding.concerns_draft is concerns


@pytest.mark.parametrize(
    ("fills", "adequate"),
    [
        pytest.param((), True, id="no-dispensing-data"),
        pytest.param(tuple(range(300, 216, -30)), True, id="filled-every-30-days"),
        pytest.param((300, 240), False, id="two-fills-in-12-weeks"),
    ],
)
def test_adherence_during_the_trial_where_dispenses_exist(
    fills: tuple[int, ...], adequate: bool
) -> None:
    base = _venlafaxine_judged(20, 17)
    record = replace(base, dispenses=tuple(dispense(VENLAFAXINE, days_ago(d)) for d in fills))
    assert (detect(record, (), DEFAULTS, NOW) is not None) is adequate


def test_trial_of_exactly_28_days_is_adequate_and_27_is_not() -> None:
    assert detect(
        _record((_escitalopram(days=28, stop_reason="lack_of_effect"),)), (), DEFAULTS, NOW
    )
    assert (
        detect(_record((_escitalopram(days=27, stop_reason="lack_of_effect"),)), (), DEFAULTS, NOW)
        is None
    )


def test_dose_below_the_minimum_effective_dose_is_not_a_trial() -> None:
    record = _record((_escitalopram(mg=5, stop_reason="lack_of_effect"),))
    assert detect(record, (), DEFAULTS, NOW) is None


def test_an_unknown_dose_is_not_known_to_be_adequate() -> None:
    """A text-only sig ("take as directed") gives no dose: whether the trial reached the
    minimum effective dose is unknown, so it is no adequate trial (missing, not evidence)."""
    unknown = _record((_escitalopram(mg=None, stop_reason="lack_of_effect"),))
    assert detect(unknown, (), DEFAULTS, NOW) is None
    known = detect(_record((_escitalopram(stop_reason="lack_of_effect"),)), (), DEFAULTS, NOW)
    assert known is not None
    assert known.facts["trials"][-1].startswith("escitalopram 20 mg/day for 17 weeks")


def test_trial_stopped_for_intolerance_is_not_a_failure() -> None:
    assert detect(_record((_escitalopram(stop_reason="intolerance"),)), (), DEFAULTS, NOW) is None


def test_trial_ending_before_the_lookback_does_not_count() -> None:
    old = course(
        ESCITALOPRAM,
        days_ago(1300),
        mg=20,
        end=days_ago(1100),
        status="stopped",
        stop_reason="lack_of_effect",
    )
    assert detect(_record((old,)), (), DEFAULTS, NOW) is None
    assert detect(_record((old,)), (), with_thresholds(PATTERN_ID, lookback_days=1100), NOW)


def test_continuation_gap_comes_from_config() -> None:
    """Escitalopram 10 mg, a 40-day gap, then 20 mg for 20 days: one 80-day trial only when the
    site allows a 40-day gap; otherwise the second course alone is too short."""
    first = course(ESCITALOPRAM, days_ago(400), mg=10, end=days_ago(380), status="completed")
    second = course(
        ESCITALOPRAM,
        days_ago(340),
        mg=20,
        end=days_ago(320),
        status="stopped",
        stop_reason="lack_of_effect",
    )
    record = _record((first, second))
    assert detect(record, (), DEFAULTS, NOW) is None
    assert detect(record, (), with_thresholds(PATTERN_ID, continuation_gap_days=40), NOW)


def _two_month_long_trials(*outcome_days_into_trial: int) -> PatientRecord:
    """Sertraline 100 mg (days 200 -> 170), then escitalopram 10 mg (days 160 -> 130), each with a
    PHQ-9 of 20 on its first day and, for each number given, a PHQ-9 of 18 that many days in."""
    trials = (
        course(SERTRALINE, days_ago(200), mg=100, end=days_ago(170), status="stopped"),
        course(ESCITALOPRAM, days_ago(160), mg=10, end=days_ago(130), status="stopped"),
    )
    scores = [phq9(days_ago(200), 20), phq9(days_ago(160), 20)]
    for into in outcome_days_into_trial:
        scores += [phq9(days_ago(200 - into), 18), phq9(days_ago(160 - into), 18)]
    return PatientRecord(courses=trials, scores=tuple(sorted(scores, key=lambda s: s.when)))


def test_the_baseline_is_never_the_outcome() -> None:
    # A field case: the only scores were taken as each trial began. Nearest to each end (within
    # 30 days) is that same baseline; "PHQ-9 from 20 to 20" judges nothing.
    assert detect(_two_month_long_trials(), (), DEFAULTS, NOW) is None


@pytest.mark.parametrize(
    ("days_in", "fires"), [(28, True), (29, True), (27, False), (14, False)]
)
def test_the_outcome_is_scored_once_the_trial_has_run_its_minimum_length(
    days_in: int, fires: bool
) -> None:
    # min_trial_days 28: a score from week 2 or day 27 says nothing of the trial's effect.
    finding = detect(_two_month_long_trials(days_in), (), DEFAULTS, NOW)

    assert (finding is not None) is fires
    if finding is not None:
        assert all("PHQ-9 from 20 to 18" in e.label for e in finding.evidence)


@pytest.mark.parametrize(("last_score", "fires"), [(11, False), (12, True)])
def test_scores_decide_over_a_stop_reason_of_no_effect(last_score: float, fires: bool) -> None:
    """Escitalopram stopped as "ineffective": PHQ-9 from 22 to 11 is a fall by half, a response
    whatever the stop reason says (no second failed trial); to 12, a fall under half with the
    score still >= 10, a failed trial."""
    trial = _escitalopram(stop_reason="lack_of_effect")
    scores = (phq9(days_ago(325), 22), phq9(days_ago(205), last_score))
    finding = detect(_record((trial,), scores), (), DEFAULTS, NOW)
    assert (finding is not None) is fires
