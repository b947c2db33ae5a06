"""regimen-escalation: >= 3 new agents or dose increases within 180 days."""

from __future__ import annotations

import pytest

from cds_service.patterns.regimen_escalation import Thresholds, detect
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
    draft,
)

DEFAULTS = Thresholds()

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
    assert finding.facts["window_days"] == 180
    assert finding.facts["min_escalations"] == 3
    assert finding.facts["new_agents"] == ["quetiapine", "lorazepam"]
    assert finding.facts["dose_increases"] == ["quetiapine 100 -> 300 mg/day"]
    assert finding.facts["draft_ingredients"] == []
    assert finding.evidence_keys == {
        f"escalation:{QUETIAPINE_START.ref}",
        f"escalation:{QUETIAPINE_UP.ref}",
        f"escalation:{LORAZEPAM_START.ref}",
    }
    assert [e.note for e in finding.evidence] == [
        "new agent",
        "dose 100 -> 300 mg/day",
        "new agent",
    ]
    assert finding.concerns_draft is False


def test_draft_that_is_an_escalation_counts_and_concerns_the_draft() -> None:
    record = _record(STEADY_SERTRALINE, QUETIAPINE_START, QUETIAPINE_UP)
    finding = detect(record, (draft(ARIPIPRAZOLE, 5),), DEFAULTS, NOW)

    assert finding is not None
    assert finding.facts["escalation_count"] == 3
    assert finding.facts["draft_ingredients"] == ["aripiprazole"]
    assert finding.concerns_draft is True
    assert finding.evidence[-1].note == "new agent (draft order)"
    assert finding.evidence[-1].when == NOW


def test_draft_dose_increase_counts() -> None:
    record = _record(STEADY_SERTRALINE, QUETIAPINE_START, LORAZEPAM_START)
    finding = detect(record, (draft(SERTRALINE, 200),), DEFAULTS, NOW)
    assert finding is not None
    assert "sertraline 100 -> 200 mg/day" in finding.facts["dose_increases"]
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
    assert finding.facts["dose_increases"] == ["sertraline 50 -> 100 mg/day"]
    assert finding.facts["titration_steps_not_counted"] == 1


def test_a_site_can_count_titration_steps_too() -> None:
    titration = _record(
        course(SERTRALINE, days_ago(150), mg=25, end=days_ago(140)),
        course(SERTRALINE, days_ago(140), mg=50),
        LORAZEPAM_START,
    )
    counting = Thresholds(count_titration_to_min_dose=True)

    assert detect(titration, (), DEFAULTS, NOW) is None
    finding = detect(titration, (), counting, NOW)
    assert finding is not None
    assert finding.facts["dose_increases"] == ["sertraline 25 -> 50 mg/day"]
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
        assert finding.facts["dose_increases"] == ["sertraline 100 -> 150 mg/day"]


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
