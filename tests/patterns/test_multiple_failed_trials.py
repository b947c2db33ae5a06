"""multiple-failed-trials: >= 2 adequate trials of different agents with symptoms persisting."""

from __future__ import annotations

import pytest

from cds_service.patterns.multiple_failed_trials import PATTERN_ID, detect
from fhir_mappers.record import MedicationCourse, PatientRecord, StopReasonKind, SymptomScore

from .builders import (
    defaults,
    with_thresholds,
    ARIPIPRAZOLE,
    ESCITALOPRAM,
    LITHIUM,
    LORAZEPAM,
    NOW,
    QUETIAPINE,
    RISPERIDONE,
    SERTRALINE,
    VENLAFAXINE,
    course,
    days_ago,
    draft,
    phq9,
)

DEFAULTS = defaults(PATTERN_ID)

# Sertraline 150 mg for 10 weeks, stopped with PHQ-9 17 two days before the end.
SERTRALINE_TRIAL = (course(SERTRALINE, days_ago(400), mg=150, end=days_ago(330), status="stopped"),)
SERTRALINE_PHQ9 = (phq9(days_ago(332), 17),)


def _record(
    courses: tuple[MedicationCourse, ...], scores: tuple[SymptomScore, ...] = ()
) -> PatientRecord:
    return PatientRecord(courses=SERTRALINE_TRIAL + courses, scores=SERTRALINE_PHQ9 + scores)


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


def test_two_antidepressant_trials_fire() -> None:
    record = _record((_escitalopram(stop_reason="lack_of_effect"),))
    finding = detect(record, (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.indicator == "info"
    assert finding.facts["failed_trial_count"] == 2
    assert finding.facts["trial_class"] == "antidepressant"
    assert finding.facts["trials"] == [
        "sertraline 150 mg/day for 10 weeks, PHQ-9 17 at end",
        "escitalopram 20 mg/day for 17 weeks, stopped: lack of effect",
    ]
    assert finding.facts["lookback_days"] == 1095
    assert finding.facts["lookback_months"] == 36
    assert finding.facts["min_failed_trials"] == 2
    assert finding.facts["min_trial_days"] == 28
    assert finding.facts["phq9_persisting_min"] == 10
    assert finding.facts["dose_unknown_trials"] == 0
    assert finding.evidence_keys == {"trial:sertraline", "trial:escitalopram"}
    assert [e.note for e in finding.evidence] == [
        "PHQ-9 17",
        "PHQ-9 17 at end",
        "stopped: lack of effect",
    ]
    assert finding.concerns_draft is False


def test_augmentation_while_symptoms_persist_counts() -> None:
    courses = (
        course(VENLAFAXINE, days_ago(200), mg=150),
        course(ARIPIPRAZOLE, days_ago(100), mg=5),
    )
    finding = detect(_record(courses, (phq9(days_ago(95), 15),)), (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.facts["trials"][-1] == (
        "venlafaxine 150 mg/day for 14 weeks, PHQ-9 15 when aripiprazole was added"
    )


def test_draft_augmenting_agent_completes_the_pattern() -> None:
    record = _record((course(VENLAFAXINE, days_ago(90), mg=150),), (phq9(days_ago(10), 16),))
    assert detect(record, (), DEFAULTS, NOW) is None

    finding = detect(record, (draft(ARIPIPRAZOLE, 2),), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["failed_trial_count"] == 2
    assert finding.concerns_draft is True


@pytest.mark.parametrize(
    ("drafts", "concerns"),
    [
        pytest.param((draft(LORAZEPAM, 1),), False, id="anxiolytic-draft"),
        pytest.param((draft(LITHIUM, 600),), True, id="lithium-augmentation-draft"),
        pytest.param((draft(ESCITALOPRAM, 10),), True, id="antidepressant-draft"),
        pytest.param((draft(None, 500),), False, id="metformin-draft"),
    ],
)
def test_concerns_draft(drafts: tuple[MedicationCourse, ...], concerns: bool) -> None:
    record = _record((_escitalopram(stop_reason="lack_of_effect"),))
    finding = detect(record, drafts, DEFAULTS, NOW)
    assert finding is not None
    assert finding.concerns_draft is concerns


def test_trial_of_exactly_28_days_is_adequate() -> None:
    record = _record((_escitalopram(days=28),), (phq9(days_ago(200), 14),))
    assert detect(record, (), DEFAULTS, NOW) is not None


def test_phq9_of_exactly_10_counts() -> None:
    record = _record((_escitalopram(),), (phq9(days_ago(195), 10),))
    assert detect(record, (), DEFAULTS, NOW) is not None


def test_unknown_dose_counts_on_duration_and_says_so() -> None:
    record = _record((_escitalopram(mg=None),), (phq9(days_ago(190), 19),))
    finding = detect(record, (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["dose_unknown_trials"] == 1
    assert finding.facts["trials"][-1] == (
        "escitalopram (dose not recorded) for 17 weeks, PHQ-9 19 at end"
    )


@pytest.mark.parametrize(
    ("courses", "scores"),
    [
        pytest.param((_escitalopram(days=27),), (phq9(days_ago(200), 14),), id="trial-of-27-days"),
        pytest.param((_escitalopram(mg=5),), (phq9(days_ago(200), 14),), id="dose-below-minimum"),
        pytest.param((_escitalopram(),), (phq9(days_ago(195), 9),), id="phq9-9-at-end"),
        pytest.param((_escitalopram(),), (phq9(days_ago(165), 18),), id="phq9-35-days-after-end"),
        pytest.param(
            (_escitalopram(),),
            (phq9(days_ago(210), 18), phq9(days_ago(198), 6)),
            id="closest-phq9-shows-improvement",
        ),
        pytest.param(
            (_escitalopram(stop_reason="intolerance"),),
            (phq9(days_ago(200), 18),),
            id="stopped-for-intolerance",
        ),
        pytest.param(
            (course(VENLAFAXINE, days_ago(90), mg=150),),
            (phq9(days_ago(10), 16),),
            id="second-trial-still-running",
        ),
        pytest.param(
            (course(VENLAFAXINE, days_ago(200), mg=150), course(LORAZEPAM, days_ago(100), mg=1)),
            (phq9(days_ago(95), 15),),
            id="anxiolytic-is-not-augmentation",
        ),
        pytest.param(
            (
                course(
                    QUETIAPINE,
                    days_ago(300),
                    mg=300,
                    end=days_ago(200),
                    status="stopped",
                    stop_reason="lack_of_effect",
                ),
            ),
            (),
            id="one-antidepressant-one-antipsychotic",
        ),
    ],
)
def test_near_misses_do_not_fire(
    courses: tuple[MedicationCourse, ...], scores: tuple[SymptomScore, ...]
) -> None:
    assert detect(_record(courses, scores), (), DEFAULTS, NOW) is None


def test_dose_changes_of_one_ingredient_are_one_trial() -> None:
    record = PatientRecord(
        courses=(
            course(SERTRALINE, days_ago(400), mg=50, end=days_ago(355), status="completed"),
            course(SERTRALINE, days_ago(355), mg=100, end=days_ago(310), status="completed"),
            course(SERTRALINE, days_ago(310), mg=150, end=days_ago(250), status="stopped"),
        ),
        scores=(phq9(days_ago(356), 18), phq9(days_ago(311), 17), phq9(days_ago(251), 16)),
    )
    assert detect(record, (), DEFAULTS, NOW) is None
    finding = detect(record, (), with_thresholds(PATTERN_ID, min_failed_trials=1), NOW)
    assert finding is not None
    assert finding.facts["trials"] == ["sertraline 150 mg/day for 21 weeks, PHQ-9 16 at end"]


def test_two_trials_of_the_same_ingredient_count_once() -> None:
    record = PatientRecord(
        courses=(
            course(SERTRALINE, days_ago(700), mg=100, end=days_ago(600), status="stopped"),
            course(SERTRALINE, days_ago(300), mg=150, end=days_ago(200), status="stopped"),
        ),
        scores=(phq9(days_ago(600), 15), phq9(days_ago(200), 15)),
    )
    assert detect(record, (), DEFAULTS, NOW) is None


def test_trial_ending_before_the_lookback_does_not_count() -> None:
    old = course(
        ESCITALOPRAM,
        days_ago(1200),
        mg=20,
        end=days_ago(1096),
        status="stopped",
        stop_reason="lack_of_effect",
    )
    assert detect(_record((old,)), (), DEFAULTS, NOW) is None
    inside = course(
        ESCITALOPRAM,
        days_ago(1200),
        mg=20,
        end=days_ago(1095),
        status="stopped",
        stop_reason="lack_of_effect",
    )
    assert detect(_record((inside,)), (), DEFAULTS, NOW) is not None


def test_antipsychotic_trials_are_counted_separately() -> None:
    record = PatientRecord(
        courses=(
            course(
                QUETIAPINE,
                days_ago(500),
                mg=300,
                end=days_ago(300),
                status="stopped",
                stop_reason="lack_of_effect",
            ),
            course(
                RISPERIDONE,
                days_ago(290),
                mg=4,
                end=days_ago(150),
                status="stopped",
                stop_reason="lack_of_effect",
            ),
        )
    )
    finding = detect(record, (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["trial_class"] == "antipsychotic"
    assert (
        detect(record, (), with_thresholds(PATTERN_ID, trial_classes=("antidepressant",)), NOW)
        is None
    )


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(PatientRecord(), id="empty-record"),
        pytest.param(
            PatientRecord(
                courses=(
                    course(
                        None,
                        days_ago(300),
                        mg=1000,
                        end=days_ago(200),
                        status="stopped",
                        stop_reason="lack_of_effect",
                    ),
                    course(
                        None,
                        days_ago(190),
                        mg=1000,
                        end=days_ago(100),
                        status="stopped",
                        stop_reason="lack_of_effect",
                    ),
                )
            ),
            id="non-psychotropic-drugs",
        ),
    ],
)
def test_negatives(record: PatientRecord) -> None:
    assert detect(record, (), DEFAULTS, NOW) is None


def test_stops_without_an_end_date_run_until_the_switch() -> None:
    """R4 exports often mark an order stopped without an end date: the next agent dates the end."""
    sertraline = course(
        SERTRALINE, days_ago(400), mg=150, status="stopped", stop_reason="lack_of_effect"
    )
    escitalopram = course(
        ESCITALOPRAM, days_ago(330), mg=20, status="stopped", stop_reason="lack_of_effect"
    )
    venlafaxine = course(VENLAFAXINE, days_ago(200), mg=150)

    finding = detect(
        PatientRecord(courses=(sertraline, escitalopram, venlafaxine)), (), DEFAULTS, NOW
    )
    assert finding is not None
    assert finding.facts["trials"] == [
        "sertraline 150 mg/day for 10 weeks, stopped: lack of effect",
        "escitalopram 20 mg/day for 18 weeks, stopped: lack of effect",
    ]
    # Without a later agent the last stop cannot be dated, so its duration is unknown.
    assert detect(PatientRecord(courses=(sertraline, escitalopram)), (), DEFAULTS, NOW) is None
