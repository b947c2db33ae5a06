"""regimen-escalation: >= 3 new agents or dose increases within 180 days."""

from __future__ import annotations

import pytest

from cds_service.patterns.regimen_escalation import PATTERN_ID, detect
from fhir_mappers.record import MedicationCourse, PatientRecord

from .builders import (
    ARIPIPRAZOLE,
    ESCITALOPRAM,
    LORAZEPAM,
    NOW,
    QUETIAPINE,
    SERTRALINE,
    course,
    days_ago,
    defaults,
    draft,
    with_thresholds,
)

DEFAULTS = defaults(PATTERN_ID)

# Sertraline at a steady dose for a year, then quetiapine added and raised, then lorazepam.
STEADY_SERTRALINE = course(SERTRALINE, days_ago(400), mg=100, end=days_ago(0))
QUETIAPINE_START = course(QUETIAPINE, days_ago(120), mg=100, end=days_ago(60), status="completed")
QUETIAPINE_UP = course(QUETIAPINE, days_ago(60), mg=300)
LORAZEPAM_START = course(LORAZEPAM, days_ago(20), mg=1)


def _record(*courses: MedicationCourse) -> PatientRecord:
    return PatientRecord(courses=courses)


def test_new_agents_and_a_dose_increase_fire() -> None:
    finding = detect(
        _record(STEADY_SERTRALINE, QUETIAPINE_START, QUETIAPINE_UP, LORAZEPAM_START),
        (),
        DEFAULTS,
        NOW,
    )

    assert finding is not None
    assert finding.indicator == "info"
    assert finding.facts["escalation_count"] == 3
    assert finding.facts["window_months"] == 6
    assert finding.facts["min_escalations"] == 3
    assert finding.facts["new_agents"] == ["quetiapine", "lorazepam"]
    assert finding.facts["dose_increases"] == ["quetiapine from 100 to 300 mg/day"]
    assert finding.facts["draft_ingredients"] == []
    assert finding.evidence_keys == {
        f"escalation:{QUETIAPINE_START.ref}",
        f"escalation:{QUETIAPINE_UP.ref}",
        f"escalation:{LORAZEPAM_START.ref}",
    }
    # one line per drug, with its daily dose
    assert [(e.label, e.note) for e in finding.evidence] == [
        ("quetiapine 300 mg/day", f"new agent {days_ago(120).isoformat()}; up from 100 mg/day"),
        ("lorazepam 1 mg/day", "new agent"),
    ]
    assert finding.concerns_draft is False


def test_draft_that_is_an_escalation_counts_and_concerns_the_draft() -> None:
    record = _record(STEADY_SERTRALINE, QUETIAPINE_START, QUETIAPINE_UP)
    finding = detect(record, (draft(ARIPIPRAZOLE, 5),), DEFAULTS, NOW)

    assert finding is not None
    assert finding.facts["escalation_count"] == 3
    assert finding.facts["draft_ingredients"] == ["aripiprazole"]
    assert finding.concerns_draft is True
    assert finding.evidence[-1].note == "new agent, draft order"
    assert finding.evidence[-1].when == NOW


def test_draft_dose_increase_counts() -> None:
    record = _record(STEADY_SERTRALINE, QUETIAPINE_START, LORAZEPAM_START)
    finding = detect(record, (draft(SERTRALINE, 200),), DEFAULTS, NOW)
    assert finding is not None
    assert "sertraline from 100 to 200 mg/day" in finding.facts["dose_increases"]
    assert finding.concerns_draft is True


def test_escalation_exactly_at_window_start_counts() -> None:
    first = course(ESCITALOPRAM, days_ago(180), mg=10)
    assert detect(_record(first, QUETIAPINE_START, LORAZEPAM_START), (), DEFAULTS, NOW)


@pytest.mark.parametrize(
    ("courses", "drafts"),
    [
        pytest.param(
            (STEADY_SERTRALINE, QUETIAPINE_START, QUETIAPINE_UP), (), id="two-escalations"
        ),
        pytest.param(
            (course(ESCITALOPRAM, days_ago(181), mg=10), QUETIAPINE_START, LORAZEPAM_START),
            (),
            id="third-one-day-outside-window",
        ),
        pytest.param(
            (STEADY_SERTRALINE, QUETIAPINE_START, QUETIAPINE_UP),
            (draft(SERTRALINE, 100),),
            id="draft-renews-same-dose",
        ),
        pytest.param(
            (STEADY_SERTRALINE, QUETIAPINE_START, QUETIAPINE_UP),
            (draft(QUETIAPINE, 200),),
            id="draft-lowers-dose",
        ),
        pytest.param(
            (STEADY_SERTRALINE, QUETIAPINE_START, QUETIAPINE_UP),
            (draft(None, 1000),),
            id="draft-non-psychotropic",
        ),
        pytest.param(
            (
                course(SERTRALINE, days_ago(150), mg=25, end=days_ago(140)),
                course(SERTRALINE, days_ago(140), mg=50),
                LORAZEPAM_START,
            ),
            (),
            id="titration-up-to-minimum-dose",
        ),
    ],
)
def test_near_misses_do_not_fire(
    courses: tuple[MedicationCourse, ...], drafts: tuple[MedicationCourse, ...]
) -> None:
    assert detect(_record(*courses), drafts, DEFAULTS, NOW) is None


def test_titration_is_reported_but_not_counted() -> None:
    record = _record(
        course(SERTRALINE, days_ago(150), mg=25, end=days_ago(140)),
        course(SERTRALINE, days_ago(140), mg=50, end=days_ago(100)),
        course(SERTRALINE, days_ago(100), mg=100),
        LORAZEPAM_START,
    )
    finding = detect(record, (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["escalation_count"] == 3
    assert finding.facts["dose_increases"] == ["sertraline from 50 to 100 mg/day"]
    assert finding.facts["titration_steps_not_counted"] == 1


def test_a_site_can_count_titration_steps_too() -> None:
    titration = _record(
        course(SERTRALINE, days_ago(150), mg=25, end=days_ago(140)),
        course(SERTRALINE, days_ago(140), mg=50),
        LORAZEPAM_START,
    )
    counting = with_thresholds(PATTERN_ID, count_titration_steps=True)

    assert detect(titration, (), DEFAULTS, NOW) is None
    finding = detect(titration, (), counting, NOW)
    assert finding is not None
    assert finding.facts["dose_increases"] == ["sertraline from 25 to 50 mg/day"]
    assert finding.facts["titration_steps_not_counted"] == 0


def _restart_record(last_taken_days_before_restart: int, restart_mg: float) -> PatientRecord:
    """Sertraline restarted 40 days ago; escitalopram and quetiapine started in the window."""
    restart_day = 40
    stopped = restart_day + last_taken_days_before_restart
    return _record(
        course(
            SERTRALINE, days_ago(stopped + 300), mg=100, end=days_ago(stopped), status="stopped"
        ),
        course(SERTRALINE, days_ago(restart_day), mg=restart_mg),
        course(ESCITALOPRAM, days_ago(170), mg=10),
        QUETIAPINE_START,
    )


@pytest.mark.parametrize(
    ("gap_days", "restart_mg", "fires", "kind"),
    [
        pytest.param(60, 100, False, None, id="restart-taken-60-days-before-is-not-new"),
        pytest.param(180, 100, False, None, id="restart-taken-180-days-before-is-not-new"),
        pytest.param(181, 100, True, "new_agent", id="restart-after-181-days-is-new"),
        pytest.param(60, 150, True, "dose_increase", id="restart-at-higher-dose"),
    ],
)
def test_restart_of_a_familiar_agent(
    gap_days: int, restart_mg: float, fires: bool, kind: str | None
) -> None:
    finding = detect(_restart_record(gap_days, restart_mg), (), DEFAULTS, NOW)
    assert (finding is not None) is fires
    if finding is not None and kind == "new_agent":
        assert "sertraline" in finding.facts["new_agents"]
    if finding is not None and kind == "dose_increase":
        assert finding.facts["dose_increases"] == ["sertraline from 100 to 150 mg/day"]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(PatientRecord(), id="empty-record"),
        pytest.param(
            _record(*(course(None, days_ago(d), mg=500) for d in (100, 50, 10))),
            id="non-psychotropic-starts",
        ),
        pytest.param(
            _record(
                course(SERTRALINE, days_ago(100), mg=100, status="cancelled"),
                course(QUETIAPINE, days_ago(50), mg=100, status="entered-in-error"),
                course(LORAZEPAM, days_ago(10), mg=1, intent="proposal"),
            ),
            id="never-taken-orders",
        ),
    ],
)
def test_negatives(record: PatientRecord) -> None:
    assert detect(record, (), DEFAULTS, NOW) is None


# --- PRN additions, switches, labelled titration by indication, the restart window ------------

from dataclasses import replace  # noqa: E402

from fhir_mappers.record import Coding, ConditionEntry  # noqa: E402

from .builders import LAMOTRIGINE, LITHIUM, VENLAFAXINE  # noqa: E402


def test_prn_addition_is_not_an_escalation() -> None:
    prn_lorazepam = replace(LORAZEPAM_START, is_prn=True)
    record = _record(STEADY_SERTRALINE, QUETIAPINE_START, QUETIAPINE_UP, prn_lorazepam)
    assert detect(record, (), DEFAULTS, NOW) is None


def _switch(days_between_stop_and_start: int) -> PatientRecord:
    """Sertraline stopped, venlafaxine started some days later; quetiapine added and raised."""
    stop = 50
    return _record(
        course(SERTRALINE, days_ago(300), mg=100, end=days_ago(stop), status="stopped"),
        course(VENLAFAXINE, days_ago(stop - days_between_stop_and_start), mg=75),
        QUETIAPINE_START,
        QUETIAPINE_UP,
    )


def test_same_class_switch_within_the_window_is_not_an_added_agent() -> None:
    assert detect(_switch(30), (), DEFAULTS, NOW) is None


def test_start_31_days_after_the_stop_is_a_new_agent() -> None:
    finding = detect(_switch(31), (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["new_agents"] == ["quetiapine", "venlafaxine"]


def test_switch_window_comes_from_config() -> None:
    assert detect(_switch(30), (), with_thresholds(PATTERN_ID, switch_window_days=29), NOW)


def test_draft_replacing_a_tapering_order_is_a_switch() -> None:
    record = _record(
        course(SERTRALINE, days_ago(300), mg=100, end=days_ago(-14)),
        QUETIAPINE_START,
        QUETIAPINE_UP,
    )
    finding = detect(record, (draft(VENLAFAXINE, 75),), DEFAULTS, NOW)
    assert finding is None


def test_a_different_class_started_at_a_stop_is_an_added_agent() -> None:
    record = _record(
        course(SERTRALINE, days_ago(300), mg=100, end=days_ago(50), status="stopped"),
        course(ARIPIPRAZOLE, days_ago(45), mg=5),
        QUETIAPINE_START,
        QUETIAPINE_UP,
    )
    finding = detect(record, (), DEFAULTS, NOW)
    assert finding is not None and "aripiprazole" in finding.facts["new_agents"]


def _bipolar(*courses: MedicationCourse) -> PatientRecord:
    condition = ConditionEntry(
        "Condition/1",
        (Coding("http://hl7.org/fhir/sid/icd-10-cm", "F31.4", "Bipolar"),),
        "Bipolar disorder, current episode depressed, severe",
        "active",
        days_ago(900),
    )
    return PatientRecord(courses=courses, conditions=(condition,))


def test_quetiapine_to_300_is_titration_in_bipolar_depression() -> None:
    """The label's bipolar-depression dose is 300 mg/day; 150 mg/day is a schizophrenia start."""
    courses = (STEADY_SERTRALINE, QUETIAPINE_START, QUETIAPINE_UP, LORAZEPAM_START)
    assert detect(_record(*courses), (), DEFAULTS, NOW) is not None
    assert detect(_bipolar(*courses), (), DEFAULTS, NOW) is None


def test_quetiapine_above_the_bipolar_target_is_an_escalation() -> None:
    up = replace(QUETIAPINE_UP, daily_dose_mg=400)
    finding = detect(
        _bipolar(STEADY_SERTRALINE, QUETIAPINE_START, up, LORAZEPAM_START), (), DEFAULTS, NOW
    )
    assert finding is not None and finding.facts["dose_increases"] == [
        "quetiapine from 100 to 400 mg/day"
    ]


def test_lamotrigine_label_schedule_is_titration() -> None:
    steps = [(160, 25), (146, 50), (132, 100), (118, 200)]
    courses = [
        course(LAMOTRIGINE, days_ago(start), mg=mg, end=days_ago(start - 14)) for start, mg in steps
    ]
    record = _record(*courses, course(ARIPIPRAZOLE, days_ago(60), mg=5))
    assert detect(record, (), DEFAULTS, NOW) is None  # two new agents; the steps are titration
    finding = detect(record, (), with_thresholds(PATTERN_ID, count_titration_steps=True), NOW)
    assert finding is not None and len(finding.facts["dose_increases"]) == 3


def test_lamotrigine_above_its_target_is_an_escalation() -> None:
    courses = (
        course(LAMOTRIGINE, days_ago(160), mg=200, end=days_ago(100)),
        course(LAMOTRIGINE, days_ago(100), mg=300),
        LORAZEPAM_START,
        course(ARIPIPRAZOLE, days_ago(60), mg=5),
    )
    finding = detect(_record(*courses), (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["dose_increases"] == ["lamotrigine from 200 to 300 mg/day"]


def test_lithium_is_titrated_to_a_level_so_its_increases_are_titration() -> None:
    courses = (
        course(LITHIUM, days_ago(170), mg=600, end=days_ago(120)),
        course(LITHIUM, days_ago(120), mg=900, end=days_ago(60)),
        course(LITHIUM, days_ago(60), mg=1200),
        LORAZEPAM_START,
    )
    finding = detect(_record(*courses), (), DEFAULTS, NOW)
    assert finding is None


def test_restart_window_is_its_own_setting() -> None:
    """Sertraline restarted 200 days after it was last taken: new at 180 days, familiar at 200."""
    record = _record(
        course(SERTRALINE, days_ago(600), mg=100, end=days_ago(240), status="stopped"),
        course(SERTRALINE, days_ago(40), mg=100),
        course(ESCITALOPRAM, days_ago(100), mg=10),
        course(ARIPIPRAZOLE, days_ago(20), mg=5),
    )
    finding = detect(record, (), DEFAULTS, NOW)
    assert finding is not None and "sertraline" in finding.facts["new_agents"]
    longer = with_thresholds(PATTERN_ID, restart_as_new_after_days=200)
    assert detect(record, (), longer, NOW) is None


@pytest.mark.parametrize(
    ("code", "titration"),
    [("83225003", True), ("371596008", True), ("13746004", True), ("35489007", False)],
    ids=["snomed-bipolar-ii", "snomed-bipolar-i", "snomed-bipolar", "snomed-depression"],
)
def test_bipolar_coded_in_snomed_is_read_as_the_indication(code: str, titration: bool) -> None:
    condition = ConditionEntry(
        "Condition/1", (Coding("http://snomed.info/sct", code, ""),), "", "active", days_ago(900)
    )
    courses = (STEADY_SERTRALINE, QUETIAPINE_START, QUETIAPINE_UP, LORAZEPAM_START)
    record = PatientRecord(courses=courses, conditions=(condition,))
    assert (detect(record, (), DEFAULTS, NOW) is None) is titration
