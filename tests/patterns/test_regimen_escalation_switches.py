"""regimen-escalation: what a switch excuses, and what a dose "increase" compares.

One stop excuses one start of its class (the nearest within ``switch_window_days``); a stop with
no date is bounded by the course's last sign of life, never placed at a start months later; and a
daily dose is not compared across dose forms (oral tablets to a monthly injection).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from cds_service.patterns.regimen_escalation import PATTERN_ID, detect
from fhir_mappers.record import Dispense, MedicationCourse, PatientRecord

from .builders import (
    ARIPIPRAZOLE,
    BUPROPION,
    ESCITALOPRAM,
    LAMOTRIGINE,
    LITHIUM,
    LORAZEPAM,
    MIRTAZAPINE,
    NOW,
    SERTRALINE,
    VENLAFAXINE,
    course,
    days_ago,
    defaults,
    dispense,
    with_thresholds,
)

DEFAULTS = defaults(PATTERN_ID)
# The same rule, firing at one escalation, to read how each start was counted.
EVERY_ESCALATION = with_thresholds(PATTERN_ID, min_escalations=1)


def _record(*courses: MedicationCourse, fills: tuple[Dispense, ...] = ()) -> PatientRecord:
    return PatientRecord(courses=courses, dispenses=fills)


# --- one stop excuses one start ------------------------------------------------------------

SERTRALINE_STOPPED = course(
    SERTRALINE,
    days_ago(300),
    mg=100,
    end=days_ago(60),
    status="stopped",
    stop_reason="lack_of_effect",
)
VENLAFAXINE_AT_STOP = course(VENLAFAXINE, days_ago(60), mg=150)
MIRTAZAPINE_ADDED = course(MIRTAZAPINE, days_ago(58), mg=30)
LITHIUM_ADDED = course(LITHIUM, days_ago(20), mg=900)


def test_one_stop_and_two_starts_of_its_class_is_one_switch_and_one_addition() -> None:
    record = _record(
        SERTRALINE_STOPPED,
        VENLAFAXINE_AT_STOP,
        MIRTAZAPINE_ADDED,
        LITHIUM_ADDED,
        course(LORAZEPAM, days_ago(10), mg=1),
    )

    finding = detect(record, (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.facts["escalation_count"] == 3
    assert finding.facts["switches_not_counted"] == 1
    # venlafaxine started the day sertraline stopped: it is the replacement
    assert finding.facts["new_agents"] == ["mirtazapine", "lithium", "lorazepam"]


def test_near_miss_one_stop_two_starts_and_one_more_agent_is_two_escalations() -> None:
    """The field case: 2 escalations (min_escalations 3 - 1), not 1 escalation and 2 switches."""
    record = _record(SERTRALINE_STOPPED, VENLAFAXINE_AT_STOP, MIRTAZAPINE_ADDED, LITHIUM_ADDED)

    assert detect(record, (), DEFAULTS, NOW) is None
    finding = detect(record, (), EVERY_ESCALATION, NOW)
    assert finding is not None
    assert finding.facts["escalation_count"] == 2
    assert finding.facts["switches_not_counted"] == 1


def test_the_stop_pairs_with_the_nearest_start_whichever_came_first() -> None:
    """Venlafaxine 5 days after the stop, mirtazapine 2 days after: mirtazapine replaces."""
    record = _record(
        SERTRALINE_STOPPED,
        course(VENLAFAXINE, days_ago(55), mg=75),
        course(MIRTAZAPINE, days_ago(58), mg=15),
    )

    finding = detect(record, (), EVERY_ESCALATION, NOW)

    assert finding is not None
    assert finding.facts["new_agents"] == ["venlafaxine"]
    assert finding.facts["switches_not_counted"] == 1


def test_two_stops_excuse_two_of_three_starts() -> None:
    record = _record(
        SERTRALINE_STOPPED,
        course(ESCITALOPRAM, days_ago(200), mg=10, end=days_ago(59), status="stopped"),
        VENLAFAXINE_AT_STOP,
        MIRTAZAPINE_ADDED,
        course(BUPROPION, days_ago(57), mg=150),
    )

    finding = detect(record, (), EVERY_ESCALATION, NOW)

    assert finding is not None
    assert finding.facts["switches_not_counted"] == 2
    # sertraline (stopped first) takes venlafaxine, escitalopram the next nearest, mirtazapine
    assert finding.facts["new_agents"] == ["bupropion"]


# --- a stop with no date -------------------------------------------------------------------


def _undated_stop(bupropion_days_after_last_supply: int) -> PatientRecord:
    """Sertraline 50 mg, a completed order with no end, filled three times for 30 days (the
    last fill covers days 240 to 211 ago); bupropion started some days after that supply ran
    out; lamotrigine and lorazepam new."""
    last_supplied = 211
    return _record(
        course(SERTRALINE, days_ago(300), mg=50, status="completed"),
        course(BUPROPION, days_ago(last_supplied - bupropion_days_after_last_supply), mg=300),
        course(LAMOTRIGINE, days_ago(60), mg=100),
        course(LORAZEPAM, days_ago(20), mg=1),
        fills=tuple(dispense(SERTRALINE, days_ago(d), 30) for d in (300, 270, 240)),
    )


def test_an_undated_stop_is_no_switch_for_a_start_months_after_its_last_supply() -> None:
    finding = detect(_undated_stop(121), (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.facts["escalation_count"] == 3
    assert finding.facts["new_agents"] == ["bupropion", "lamotrigine", "lorazepam"]
    assert finding.facts["switches_not_counted"] == 0


def test_an_undated_stop_is_bounded_by_the_last_fills_supply() -> None:
    """Bupropion 30 days after the last fill ran out may replace sertraline; 31 days may not."""
    assert detect(_undated_stop(30), (), DEFAULTS, NOW) is None
    finding = detect(_undated_stop(31), (), DEFAULTS, NOW)
    assert finding is not None and "bupropion" in finding.facts["new_agents"]


def test_near_miss_undated_stop_then_a_late_start_and_one_more_agent() -> None:
    """Without lamotrigine: 2 escalations (min_escalations 3 - 1), none excused as a switch."""
    full = _undated_stop(121)
    record = replace(
        full, courses=tuple(c for c in full.courses if c.ingredients != (LAMOTRIGINE,))
    )

    assert detect(record, (), DEFAULTS, NOW) is None
    finding = detect(record, (), EVERY_ESCALATION, NOW)
    assert finding is not None
    assert finding.facts["escalation_count"] == 2
    assert finding.facts["switches_not_counted"] == 0


def test_a_renewal_is_a_sign_of_life_of_an_undated_stop() -> None:
    """Sertraline renewed monthly until 125 days ago (completed orders with no end, no fills):
    bupropion 100 days ago may replace it; after the first order alone (200 days ago) it may
    not."""
    renewals = tuple(
        course(SERTRALINE, days_ago(d), mg=50, status="completed") for d in (200, 175, 150, 125)
    )
    bupropion = course(BUPROPION, days_ago(100), mg=150)

    assert detect(_record(*renewals, bupropion), (), EVERY_ESCALATION, NOW) is None
    finding = detect(_record(renewals[0], bupropion), (), EVERY_ESCALATION, NOW)
    assert finding is not None and finding.facts["new_agents"] == ["bupropion"]


# --- dose forms ----------------------------------------------------------------------------

ORAL_ARIPIPRAZOLE = course(ARIPIPRAZOLE, days_ago(300), mg=10, end=days_ago(6), status="stopped")
# Abilify Maintena 400 mg every month, as the mapper reads it: 400 / 30 mg a day.
MONTHLY_INJECTION = replace(
    course(ARIPIPRAZOLE, days_ago(20), mg=13.333),
    display="2 ML aripiprazole 200 MG/ML Prefilled Syringe",
)
OTHERS = (course(SERTRALINE, days_ago(100), mg=50), course(LORAZEPAM, days_ago(60), mg=1))


def test_a_dose_is_compared_only_within_its_dose_form() -> None:
    """Oral 10 mg/day to 400 mg monthly is a conversion, not an increase (no card: 2
    escalations); 10 -> 15 mg tablets, or 300 -> 400 mg monthly, is an increase."""
    conversion = _record(ORAL_ARIPIPRAZOLE, MONTHLY_INJECTION, *OTHERS)
    assert detect(conversion, (), DEFAULTS, NOW) is None
    finding = detect(conversion, (), EVERY_ESCALATION, NOW)
    assert finding is not None and finding.facts["dose_increases"] == []

    oral_up = course(ARIPIPRAZOLE, days_ago(20), mg=15)
    finding = detect(_record(ORAL_ARIPIPRAZOLE, oral_up, *OTHERS), (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["dose_increases"] == ["aripiprazole from 10 to 15 mg/day"]

    monthly_300 = replace(
        course(ARIPIPRAZOLE, days_ago(120), mg=10, end=days_ago(21), status="completed"),
        display=MONTHLY_INJECTION.display,
    )
    finding = detect(_record(monthly_300, MONTHLY_INJECTION, *OTHERS), (), DEFAULTS, NOW)
    assert finding is not None
    assert len(finding.facts["dose_increases"]) == 1


@pytest.mark.parametrize(
    "display",
    [
        "aripiprazole 400 MG Injectable Suspension",
        "aripiprazole lauroxil 882 MG in 3.2 ML Extended-Release Injectable Suspension",
        "Abilify Maintena 400 MG Prolonged-release suspension for injection",
        "aripiprazole 400 MG Prefilled Syringe [Abilify Maintena]",
    ],
)
def test_injectable_forms_are_read_from_the_product_name(display: str) -> None:
    injection = replace(MONTHLY_INJECTION, display=display)
    finding = detect(_record(ORAL_ARIPIPRAZOLE, injection, *OTHERS), (), EVERY_ESCALATION, NOW)
    assert finding is not None and finding.facts["dose_increases"] == []


def test_injectable_words_come_from_config() -> None:
    no_words = with_thresholds(PATTERN_ID, injectable_form_words=())
    record = _record(ORAL_ARIPIPRAZOLE, MONTHLY_INJECTION, *OTHERS)
    assert detect(record, (), DEFAULTS, NOW) is None
    assert detect(record, (), no_words, NOW) is not None


def test_an_injection_shows_no_daily_average_as_its_dose() -> None:
    """Aripiprazole started as a monthly injection: not "aripiprazole 13.333 mg/day"."""
    first_injection = replace(MONTHLY_INJECTION, start=days_ago(40))
    finding = detect(_record(first_injection, *OTHERS), (), DEFAULTS, NOW)

    assert finding is not None
    labels = {e.ref: e.label for e in finding.evidence}
    assert labels[first_injection.ref] == "aripiprazole"
    assert "mg/day" not in labels[first_injection.ref]
