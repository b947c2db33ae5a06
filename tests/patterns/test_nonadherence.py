"""nonadherence: per-ingredient PDC < 0.80 (PQA), one long-lapsed fill, or a not-taken statement."""

from __future__ import annotations

import pytest

from cds_service.patterns.nonadherence import PATTERN_ID, detect
from fhir_mappers.record import Dispense, MedicationCourse, PatientRecord, Visit

from .builders import (
    BUPROPION,
    ESCITALOPRAM,
    LORAZEPAM,
    NOW,
    QUETIAPINE,
    SERTRALINE,
    course,
    days_ago,
    defaults,
    dispense,
    draft,
    visit,
    with_thresholds,
)

DEFAULTS = defaults(PATTERN_ID)
CURRENT_SERTRALINE = course(SERTRALINE, days_ago(400), mg=50)


def _record(
    dispenses: tuple[Dispense, ...],
    courses: tuple[MedicationCourse, ...] = (CURRENT_SERTRALINE,),
    visits: tuple[Visit, ...] = (),
) -> PatientRecord:
    return PatientRecord(courses=courses, dispenses=dispenses, visits=visits)


def _two_fills(second_supply: int) -> tuple[Dispense, ...]:
    """A 100-day period (first fill 99 days ago): 40 days, a 20-day gap, then `second_supply`."""
    return (
        dispense(SERTRALINE, days_ago(99), 40),
        dispense(SERTRALINE, days_ago(39), second_supply),
    )


def test_gaps_in_supply_fire() -> None:
    fills = tuple(dispense(SERTRALINE, days_ago(d), 30) for d in (170, 110, 50))
    finding = detect(_record(fills), (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.indicator == "info"
    assert finding.facts["pdc"] == 0.52  # 90 of 171 days covered
    assert finding.facts["drug_class"] == "antidepressant"
    assert finding.facts["ingredient"] == "sertraline"
    assert finding.facts["window_months"] == 6
    assert finding.facts["dispense_count"] == 3
    assert finding.facts["not_taken"] is False
    assert finding.facts["dose_increase_in_draft"] is False
    assert [(e.label, e.note) for e in finding.evidence] == [
        ("sertraline", "3 fills, 52% of days covered; last fill")
    ]
    assert finding.evidence_keys == {"pdc:sertraline"}
    assert finding.concerns_draft is False


def test_pdc_0_79_fires_and_0_80_does_not() -> None:
    finding = detect(_record(_two_fills(39)), (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["pdc"] == 0.79
    assert detect(_record(_two_fills(40)), (), DEFAULTS, NOW) is None


@pytest.mark.parametrize(
    ("record", "drafts"),
    [
        pytest.param(
            _record((dispense(SERTRALINE, days_ago(90), 30),)), (), id="one-fill-lapsed-60-days"
        ),
        pytest.param(
            _record(
                (dispense(SERTRALINE, days_ago(89), 60), dispense(SERTRALINE, days_ago(59), 30))
            ),
            (),
            id="early-refill-shifted-forward",
        ),
        pytest.param(
            _record(
                (dispense(SERTRALINE, days_ago(99), 60), dispense(ESCITALOPRAM, days_ago(39), 40))
            ),
            (),
            id="switch-within-class-covers-days",
        ),
        pytest.param(
            _record(
                (
                    dispense(SERTRALINE, days_ago(400), 30),
                    dispense(SERTRALINE, days_ago(300), 30),
                    dispense(SERTRALINE, days_ago(60), 90),
                )
            ),
            (),
            id="old-gaps-before-window",
        ),
        pytest.param(
            _record(
                (
                    dispense(SERTRALINE, days_ago(99), 40),
                    dispense(SERTRALINE, days_ago(39), 39, status="cancelled"),
                )
            ),
            (),
            id="second-fill-not-completed-leaves-one",
        ),
        pytest.param(
            _record(
                _two_fills(20),
                courses=(
                    course(SERTRALINE, days_ago(400), mg=50, end=days_ago(30), status="stopped"),
                ),
            ),
            (),
            id="class-no-longer-prescribed",
        ),
        pytest.param(
            _record(
                tuple(dispense(LORAZEPAM, days_ago(d), 10) for d in (150, 90)),
                courses=(course(LORAZEPAM, days_ago(200), mg=1, prn=True),),
            ),
            (),
            id="prn-only-class",
        ),
    ],
)
def test_near_misses_and_pqa_rules(record: PatientRecord, drafts: tuple) -> None:
    assert detect(record, drafts, DEFAULTS, NOW) is None


def test_supply_is_capped_at_today() -> None:
    # 40 + a 200-day fill 39 days ago: the surplus beyond today does not fill the earlier gap.
    finding = detect(_record(_two_fills(200)), (), with_thresholds(PATTERN_ID, pdc_below=0.81), NOW)
    assert finding is not None
    assert finding.facts["pdc"] == 0.80


def test_hospital_days_leave_the_period() -> None:
    stay = visit(days_ago(59), class_code="IMP", end=days_ago(40))  # the 20-day gap
    assert detect(_record(_two_fills(39), visits=(stay,)), (), DEFAULTS, NOW) is None


def test_not_taken_statement_fires_without_pdc() -> None:
    statement = course(
        SERTRALINE, days_ago(30), mg=50, status="not-taken", source="MedicationStatement"
    )
    # An order of this year: a not-taken statement is no sign of use, so it would not keep a
    # 400-day-old order in today's regimen (regimen.signs_of_life).
    ordered = course(SERTRALINE, days_ago(100), mg=50)
    finding = detect(_record((), courses=(ordered, statement)), (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.facts["pdc"] is None
    assert finding.facts["not_taken"] is True
    assert finding.facts["drug_class"] == "antidepressant"
    assert finding.evidence_keys == {"not-taken:sertraline"}
    assert finding.evidence[-1].note == "recorded as not taken"


@pytest.mark.parametrize(
    "courses",
    [
        pytest.param(
            (
                CURRENT_SERTRALINE,
                course(SERTRALINE, days_ago(60), status="not-taken", source="MedicationStatement"),
                course(SERTRALINE, days_ago(20), status="active", source="MedicationStatement"),
            ),
            id="taken-again-later",
        ),
        pytest.param(
            (
                CURRENT_SERTRALINE,
                course(QUETIAPINE, days_ago(30), status="not-taken", source="MedicationStatement"),
            ),
            id="not-taken-drug-not-prescribed",
        ),
        pytest.param(
            (
                CURRENT_SERTRALINE,
                course(SERTRALINE, days_ago(400), status="not-taken", source="MedicationStatement"),
            ),
            id="not-taken-before-window",
        ),
    ],
)
def test_not_taken_statements_that_do_not_count(courses: tuple[MedicationCourse, ...]) -> None:
    assert detect(_record((), courses=courses), (), DEFAULTS, NOW) is None


def test_draft_raising_the_dose_is_flagged() -> None:
    finding = detect(_record(_two_fills(20)), (draft(SERTRALINE, 100),), DEFAULTS, NOW)
    assert finding is not None
    assert finding.concerns_draft is True
    assert finding.facts["dose_increase_in_draft"] is True


def test_draft_same_dose_concerns_but_is_no_increase() -> None:
    finding = detect(_record(_two_fills(20)), (draft(ESCITALOPRAM, 10),), DEFAULTS, NOW)
    assert finding is not None
    assert finding.concerns_draft is True
    assert finding.facts["dose_increase_in_draft"] is False
    assert finding.facts["ingredient"] == "sertraline"


def test_draft_of_another_class_does_not_concern() -> None:
    finding = detect(_record(_two_fills(20)), (draft(QUETIAPINE, 50),), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["drug_class"] == "antidepressant"
    assert finding.concerns_draft is False


def test_class_being_ordered_is_reported_first() -> None:
    fills = (*_two_fills(20), *(dispense(QUETIAPINE, days_ago(d), 30) for d in (120, 30)))
    courses = (CURRENT_SERTRALINE, course(QUETIAPINE, days_ago(300), mg=100))
    finding = detect(_record(fills, courses=courses), (draft(QUETIAPINE, 200),), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["drug_class"] == "antipsychotic"
    assert finding.facts["dose_increase_in_draft"] is True


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(PatientRecord(), id="empty-record"),
        pytest.param(
            PatientRecord(courses=(course(None, days_ago(300), mg=1000),)),
            id="non-psychotropic-only",
        ),
    ],
)
def test_negatives(record: PatientRecord) -> None:
    assert detect(record, (draft(None, 1000),), DEFAULTS, NOW) is None


# --- One long-lapsed fill; PDC per ingredient ----------------------------------------------


def test_one_90_day_fill_long_run_out_is_detected() -> None:
    """A 90-day fill 170 days ago ran out 80 days ago: the two-fills rule must not hide it."""
    finding = detect(_record((dispense(SERTRALINE, days_ago(170), 90),)), (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["days_since_supply_ran_out"] == 80
    assert finding.evidence[0].note == "90-day fill, supply ran out 80 days ago; last fill"


def test_one_fill_lapsed_61_days_fires_and_60_does_not() -> None:
    assert detect(_record((dispense(SERTRALINE, days_ago(151), 90),)), (), DEFAULTS, NOW)
    assert detect(_record((dispense(SERTRALINE, days_ago(150), 90),)), (), DEFAULTS, NOW) is None
    later = with_thresholds(PATTERN_ID, single_fill_lapsed_days=61)
    assert detect(_record((dispense(SERTRALINE, days_ago(151), 90),)), (), later, NOW) is None


def test_refilled_sertraline_does_not_hide_a_bupropion_never_refilled() -> None:
    courses = (CURRENT_SERTRALINE, course(BUPROPION, days_ago(160), mg=300))
    fills = (
        *(dispense(SERTRALINE, days_ago(d), 30) for d in (150, 120, 90, 60, 30)),
        dispense(BUPROPION, days_ago(160), 30),
        dispense(BUPROPION, days_ago(40), 30),
    )
    finding = detect(_record(fills, courses=courses), (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["ingredient"] == "bupropion"
    assert finding.evidence_keys == {"pdc:bupropion"}


def test_days_in_hospital_leave_the_period_but_an_office_visit_does_not() -> None:
    """A 40-day admission (an inpatient class, config/codes.yaml) explains the gap."""
    fills = (dispense(SERTRALINE, days_ago(99), 40), dispense(SERTRALINE, days_ago(19), 19))
    stay = visit(days_ago(59), class_code="IMP", end=days_ago(20))
    office = visit(days_ago(59), class_code="AMB", end=days_ago(20))
    assert detect(_record(fills, visits=(stay,)), (), DEFAULTS, NOW) is None
    assert detect(_record(fills, visits=(office,)), (), DEFAULTS, NOW) is not None
