"""repeated-intolerance: >= 3 psychotropic ingredients across >= 2 ATC-4 groups in 24 months."""

from __future__ import annotations

import pytest

from cds_service.patterns.repeated_intolerance import Thresholds, detect
from fhir_mappers.record import PatientRecord

from .builders import (
    ESCITALOPRAM,
    FLUOXETINE,
    LORAZEPAM,
    NOW,
    QUETIAPINE,
    SERTRALINE,
    VENLAFAXINE,
    course,
    days_ago,
    draft,
    intolerance,
)

DEFAULTS = Thresholds()


def _three_classes(oldest_days: int = 600) -> PatientRecord:
    """Nausea on sertraline, then venlafaxine stopped for dizziness, then quetiapine."""
    return PatientRecord(
        intolerances=(
            intolerance(SERTRALINE, days_ago(oldest_days), manifestations=("Nausea", "Headache")),
            intolerance(
                VENLAFAXINE,
                days_ago(300),
                origin="MedicationRequest",
                manifestations=("Dizziness",),
            ),
            intolerance(QUETIAPINE, days_ago(90), manifestations=("Drowsy",)),
        )
    )


def test_three_ingredients_across_classes_fires() -> None:
    finding = detect(_three_classes(), (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.pattern_id == "repeated-intolerance"
    assert finding.indicator == "info"
    assert finding.facts["ingredient_count"] == 3
    assert finding.facts["class_count"] == 3
    assert finding.facts["ingredients"] == ["sertraline", "venlafaxine", "quetiapine"]
    assert finding.facts["classes"] == ["SSRI", "SNRI", "SGA"]
    assert finding.facts["lookback_days"] == 730
    assert finding.facts["window_months"] == 24
    assert finding.facts["min_distinct_ingredients"] == 3
    assert finding.facts["min_distinct_classes"] == 2
    assert finding.facts["draft_ingredients"] == []
    assert finding.evidence_keys == {
        "ingredient:sertraline",
        "ingredient:venlafaxine",
        "ingredient:quetiapine",
    }
    notes = [e.note for e in finding.evidence]
    assert notes == [
        "intolerance: nausea, headache",
        "stopped: intolerance (dizziness)",
        "intolerance: drowsy",
    ]
    assert [e.when for e in finding.evidence] == sorted(e.when for e in finding.evidence)
    assert len(finding.references) == 3
    assert finding.concerns_draft is False


def test_two_ssris_and_an_snri_are_two_classes() -> None:
    record = PatientRecord(
        intolerances=(
            intolerance(SERTRALINE, days_ago(400)),
            intolerance(ESCITALOPRAM, days_ago(200)),
            intolerance(VENLAFAXINE, days_ago(20)),
        )
    )
    finding = detect(record, (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["class_count"] == 2


def test_oldest_event_exactly_at_lookback_still_counts() -> None:
    assert detect(_three_classes(oldest_days=730), (), DEFAULTS, NOW) is not None


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(
            PatientRecord(
                intolerances=(
                    intolerance(SERTRALINE, days_ago(100)),
                    intolerance(QUETIAPINE, days_ago(50)),
                )
            ),
            id="two-ingredients",
        ),
        pytest.param(
            PatientRecord(
                intolerances=(
                    intolerance(SERTRALINE, days_ago(300)),
                    intolerance(ESCITALOPRAM, days_ago(200)),
                    intolerance(FLUOXETINE, days_ago(100)),
                )
            ),
            id="three-ssris-one-class",
        ),
        pytest.param(_three_classes(oldest_days=760), id="oldest-at-25-months"),
        pytest.param(_three_classes(oldest_days=731), id="oldest-one-day-past-lookback"),
        pytest.param(
            PatientRecord(
                intolerances=(
                    intolerance(SERTRALINE, days_ago(100)),
                    intolerance(SERTRALINE, days_ago(80)),
                    intolerance(QUETIAPINE, days_ago(50)),
                )
            ),
            id="same-ingredient-twice",
        ),
    ],
)
def test_near_misses_do_not_fire(record: PatientRecord) -> None:
    assert detect(record, (), DEFAULTS, NOW) is None


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(PatientRecord(), id="empty-record"),
        pytest.param(
            PatientRecord(
                intolerances=tuple(
                    intolerance(i, days_ago(100), kind="allergy", manifestations=("Urticaria",))
                    for i in (SERTRALINE, VENLAFAXINE, QUETIAPINE)
                )
            ),
            id="allergies-only",
        ),
        pytest.param(
            PatientRecord(
                intolerances=(
                    intolerance(None, days_ago(300)),
                    intolerance(None, days_ago(200)),
                    intolerance(SERTRALINE, days_ago(100)),
                    intolerance(QUETIAPINE, days_ago(50)),
                )
            ),
            id="non-psychotropic-drugs-do-not-count",
        ),
        pytest.param(
            PatientRecord(
                intolerances=(
                    intolerance(SERTRALINE, None),
                    intolerance(VENLAFAXINE, days_ago(200)),
                    intolerance(QUETIAPINE, days_ago(50)),
                )
            ),
            id="undated-event-cannot-be-placed",
        ),
        pytest.param(
            PatientRecord(
                intolerances=(
                    intolerance(SERTRALINE, days_ago(300)),
                    intolerance(VENLAFAXINE, days_ago(200)),
                    intolerance(QUETIAPINE, days_ago(400)),
                ),
                courses=(course(SERTRALINE, days_ago(120), mg=50),),
            ),
            id="sertraline-taken-again-now",
        ),
    ],
)
def test_negatives_do_not_fire(record: PatientRecord) -> None:
    assert detect(record, (), DEFAULTS, NOW) is None


def test_rechallenge_that_ended_still_counts() -> None:
    record = PatientRecord(
        intolerances=_three_classes().intolerances,
        courses=(course(SERTRALINE, days_ago(200), mg=25, end=days_ago(190), status="stopped"),),
    )
    assert detect(record, (), DEFAULTS, NOW) is not None


@pytest.mark.parametrize(
    ("drafts", "concerns", "names"),
    [
        pytest.param((draft(LORAZEPAM, 1),), True, ["lorazepam"], id="psychotropic-draft"),
        pytest.param((draft(None, 1000),), False, [], id="metformin-draft"),
        pytest.param((), False, [], id="no-draft"),
    ],
)
def test_concerns_draft_when_another_psychotropic_is_ordered(
    drafts: tuple, concerns: bool, names: list[str]
) -> None:
    finding = detect(_three_classes(), drafts, DEFAULTS, NOW)
    assert finding is not None
    assert finding.concerns_draft is concerns
    assert finding.facts["draft_ingredients"] == names


def test_site_thresholds_are_used() -> None:
    record = PatientRecord(
        intolerances=(intolerance(SERTRALINE, days_ago(100)), intolerance(QUETIAPINE, days_ago(50)))
    )
    strict = Thresholds(min_distinct_ingredients=2, min_distinct_classes=2, lookback_days=365)
    finding = detect(record, (), strict, NOW)
    assert finding is not None
    assert finding.facts["window_months"] == 12
