"""Abstention (issue 12 kind 4): a pattern that cannot judge the patient says so, and the
engine keeps that apart from findings; and the timeline helpers other patterns call for the
real-world kinds (renewals, the visit happening now, the step of a multi-step order)."""

from __future__ import annotations

from dataclasses import replace

from cds_service.patterns.abstention import NotEvaluable
from cds_service.patterns.engine import assess
from cds_service.patterns.nonadherence import PATTERN_ID, detect
from cds_service.patterns.timeline import dose_on, is_renewal, seen_days
from cds_service.settings import load_settings
from fhir_mappers.record import DoseStep, PatientRecord, Visit

from .builders import (
    NOW,
    QUETIAPINE,
    SERTRALINE,
    course,
    days_ago,
    defaults,
    dispense,
    draft,
    visit,
)

CURRENT = course(SERTRALINE, days_ago(400), mg=50)


def test_a_fill_without_supply_in_the_window_makes_nonadherence_not_evaluable() -> None:
    fills = (dispense(SERTRALINE, days_ago(99), 40), dispense(SERTRALINE, days_ago(39), None))
    result = detect(
        PatientRecord(courses=(CURRENT,), dispenses=fills), (), defaults(PATTERN_ID), NOW
    )
    assert isinstance(result, NotEvaluable)
    assert result.references == (fills[1].ref,)


def test_a_fill_without_supply_before_the_window_does_not_matter() -> None:
    fills = (
        dispense(SERTRALINE, days_ago(300), None),
        dispense(SERTRALINE, days_ago(99), 40),
        dispense(SERTRALINE, days_ago(39), 30),
    )
    result = detect(
        PatientRecord(courses=(CURRENT,), dispenses=fills), (), defaults(PATTERN_ID), NOW
    )
    assert not isinstance(result, NotEvaluable)
    assert result is not None  # 70 of 100 days covered: below 0.80


def test_a_fill_of_a_drug_no_longer_taken_does_not_matter() -> None:
    fills = (dispense(QUETIAPINE, days_ago(30), None),)
    result = detect(
        PatientRecord(courses=(CURRENT,), dispenses=fills), (), defaults(PATTERN_ID), NOW
    )
    assert result is None


def test_the_engine_collects_abstentions_apart_from_findings() -> None:
    patterns = load_settings().patterns
    fills = (dispense(SERTRALINE, days_ago(99), 40), dispense(SERTRALINE, days_ago(39), None))
    result = assess(PatientRecord(courses=(CURRENT,), dispenses=fills), (), patterns, NOW)
    assert result.findings == []
    assert [a.pattern_id for a in result.not_evaluable] == ["nonadherence"]


def test_order_hooks_judge_only_selected_drafts() -> None:
    patterns = load_settings().patterns
    unselected = replace(draft(SERTRALINE, 50), is_selected=False)
    assert assess(PatientRecord(), (unselected,), patterns, NOW, "order-select").findings == []


def test_a_renewal_is_the_same_ingredient_at_the_same_dose() -> None:
    record = PatientRecord(courses=(CURRENT,))
    assert is_renewal(draft(SERTRALINE, 50), record, NOW, continuation_gap_days=30)
    assert not is_renewal(draft(SERTRALINE, 100), record, NOW, continuation_gap_days=30)
    assert not is_renewal(draft(QUETIAPINE, 100), record, NOW, continuation_gap_days=30)
    stopped_long_ago = course(SERTRALINE, days_ago(400), mg=50, end=days_ago(60), status="stopped")
    assert not is_renewal(
        draft(SERTRALINE, 50),
        PatientRecord(courses=(stopped_long_ago,)),
        NOW,
        continuation_gap_days=30,
    )


def test_a_renewal_without_doses_needs_its_prior_prescription() -> None:
    current = replace(CURRENT, daily_dose_mg=None)
    record = PatientRecord(courses=(current,))
    assert not is_renewal(draft(SERTRALINE), record, NOW, continuation_gap_days=30)
    assert is_renewal(
        replace(draft(SERTRALINE), prior_prescription=current.ref),
        record,
        NOW,
        continuation_gap_days=30,
    )


def test_seen_days_count_today_when_a_visit_is_happening_now() -> None:
    earlier = visit(days_ago(40))
    now_open = replace(visit(NOW, status="in-progress"), end=None)
    assert seen_days(PatientRecord(visits=(earlier,)), NOW) == [days_ago(40)]
    assert seen_days(PatientRecord(visits=(earlier, now_open)), NOW) == [days_ago(40), NOW]
    with_context = PatientRecord(visits=(earlier,), current_encounter="Encounter/e-now")
    assert seen_days(with_context, NOW) == [days_ago(40), NOW]
    inpatient_now = replace(visit(NOW, class_code="IMP", status="in-progress"), end=None)
    assert seen_days(PatientRecord(visits=(inpatient_now,)), NOW) == []
    assert isinstance(now_open, Visit)


def test_dose_on_reads_the_step_in_effect() -> None:
    steps = (
        DoseStep(1, days_ago(20), days_ago(14), 25.0),
        DoseStep(2, days_ago(13), None, 50.0),
    )
    titration = replace(course(SERTRALINE, days_ago(20), mg=50), steps=steps)
    assert [dose_on(titration, days_ago(d)) for d in (25, 20, 14, 13, 0)] == [
        25.0,
        25.0,
        25.0,
        50.0,
        50.0,
    ]
