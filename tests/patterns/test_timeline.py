"""The shared timeline: which courses count, episodes of continuous use, and regimen events."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.patterns.timeline import (
    dated_drafts,
    episodes,
    is_current,
    regimen_events,
    taken_courses,
)
from fhir_mappers.record import MedicationCourse, PatientRecord

from .builders import LORAZEPAM, NOW, QUETIAPINE, SERTRALINE, course, days_ago, draft


@pytest.mark.parametrize(
    ("kept", "status", "intent", "source"),
    [
        pytest.param(True, "active", "order", "MedicationRequest", id="active-order"),
        pytest.param(True, "completed", "order", "MedicationRequest", id="completed-order"),
        pytest.param(True, "stopped", "", "MedicationStatement", id="stopped-statement"),
        pytest.param(False, "entered-in-error", "order", "MedicationRequest", id="error"),
        pytest.param(False, "cancelled", "order", "MedicationRequest", id="cancelled"),
        pytest.param(False, "draft", "order", "MedicationRequest", id="unsigned-draft"),
        pytest.param(False, "not-taken", "", "MedicationStatement", id="not-taken"),
        pytest.param(False, "active", "proposal", "MedicationRequest", id="proposal"),
    ],
)
def test_taken_courses(kept: bool, status: str, intent: str, source: str) -> None:
    c = course(SERTRALINE, days_ago(10), mg=50, status=status, intent=intent, source=source)
    assert (c in taken_courses(PatientRecord(courses=(c,)))) is kept


@pytest.mark.parametrize(
    ("current", "c"),
    [
        pytest.param(True, course(SERTRALINE, days_ago(10)), id="active-open"),
        pytest.param(True, course(SERTRALINE, days_ago(10), end=NOW), id="ends-today"),
        pytest.param(True, course(SERTRALINE, days_ago(10), status="on-hold"), id="on-hold"),
        pytest.param(False, course(SERTRALINE, days_ago(10), end=days_ago(1)), id="ended"),
        pytest.param(False, course(SERTRALINE, days_ago(-3)), id="starts-later"),
        pytest.param(
            False,
            course(SERTRALINE, days_ago(10), status="on-hold", source="MedicationStatement"),
            id="statement-on-hold",
        ),
        pytest.param(False, course(SERTRALINE, days_ago(10), status="completed"), id="completed"),
    ],
)
def test_is_current(current: bool, c: MedicationCourse) -> None:
    assert is_current(c, NOW) is current


def test_drafts_are_dated_today() -> None:
    authored_last_week = replace(draft(SERTRALINE, 50), start=days_ago(7))
    (dated,) = dated_drafts((authored_last_week,), NOW)
    assert dated.start == NOW and dated.is_draft


def test_courses_with_short_gaps_are_one_episode() -> None:
    courses = (
        course(SERTRALINE, days_ago(300), mg=50, end=days_ago(200), status="completed"),
        course(SERTRALINE, days_ago(170), mg=100, end=days_ago(100), status="completed"),
        course(SERTRALINE, days_ago(60), mg=100),
    )
    found = episodes(courses, NOW, continuation_gap_days=30)
    assert [(e.start, len(e.courses), e.gap_before) for e in found] == [
        (days_ago(300), 2, None),
        (days_ago(60), 1, 40),
    ]
    assert found[1].previous_dose == 100
    assert found[1].is_open and not found[0].is_open


def test_regimen_events_tell_the_story() -> None:
    courses = (
        course(SERTRALINE, days_ago(300), mg=50, end=days_ago(200), status="completed"),
        course(SERTRALINE, days_ago(200), mg=100, end=days_ago(100), status="stopped"),
        course(QUETIAPINE, days_ago(90), mg=50, end=days_ago(60), status="completed"),
        course(QUETIAPINE, days_ago(60), mg=25),
        course(LORAZEPAM, days_ago(30), mg=1, status="completed"),  # no end date: no dated stop
    )
    events = regimen_events(
        [*courses, *dated_drafts((draft(SERTRALINE, 50),), NOW)], NOW, continuation_gap_days=30
    )
    assert [(e.kind, e.ingredient.name, (NOW - e.when).days) for e in events] == [
        ("start", "sertraline", 300),
        ("dose_increase", "sertraline", 200),
        ("stop", "sertraline", 100),
        ("start", "quetiapine", 90),
        ("dose_decrease", "quetiapine", 60),
        ("start", "lorazepam", 30),
        ("restart", "sertraline", 0),
    ]
    assert events[-1].gap_days == 100
    assert events[-1].course.is_draft


def test_non_psychotropic_and_undated_courses_make_no_events() -> None:
    courses = (course(None, days_ago(10), mg=500), course(SERTRALINE, None, mg=50))
    assert regimen_events(courses, NOW, continuation_gap_days=30) == []


_HISTORY = st.lists(
    st.tuples(
        st.sampled_from([SERTRALINE, QUETIAPINE, LORAZEPAM]),
        st.integers(min_value=0, max_value=900),  # start, days ago
        st.one_of(st.none(), st.integers(min_value=-60, max_value=400)),  # length (< 0: bad data)
        st.sampled_from([None, 25.0, 50.0, 100.0]),
        st.sampled_from(["active", "completed", "stopped"]),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(_HISTORY, st.integers(min_value=0, max_value=900))
def test_events_from_since_on_are_the_same_when_older_episodes_are_passed_over(
    history: list[tuple[Any, int, int | None, float | None, str]], since_days_ago: int
) -> None:
    courses = [
        course(
            ingredient,
            days_ago(start),
            mg=mg,
            end=None if length is None else days_ago(start - length),
            status=status,
        )
        for ingredient, start, length, mg, status in history
    ]
    since = days_ago(since_days_ago)
    everything = regimen_events(courses, NOW, continuation_gap_days=30)
    passed_over = regimen_events(courses, NOW, continuation_gap_days=30, since=since)
    assert [e for e in passed_over if e.when >= since] == [
        e for e in everything if e.when >= since
    ]


def _increases(middle: MedicationCourse) -> list[tuple[str, float | None, float | None]]:
    """Quetiapine 100 mg/day, then ``middle``, then 300 mg/day: the dose events."""
    courses = (
        course(QUETIAPINE, days_ago(120), mg=100, end=days_ago(91), status="completed"),
        middle,
        course(QUETIAPINE, days_ago(60), mg=300),
    )
    return [(e.kind, e.previous_dose, e.dose)
            for e in regimen_events(courses, NOW, continuation_gap_days=30)
            if e.kind.startswith("dose")]


def test_after_a_scheduled_course_of_unknown_dose_the_next_dose_is_no_known_change() -> None:
    unknown = course(QUETIAPINE, days_ago(90), mg=None, end=days_ago(61), status="completed")
    assert _increases(unknown) == []


@pytest.mark.parametrize(
    "middle",
    [
        pytest.param(course(QUETIAPINE, days_ago(90), mg=None, end=days_ago(61), prn=True,
                            status="completed"), id="as-needed-unknown-dose"),
        pytest.param(replace(course(QUETIAPINE, days_ago(90), mg=None, end=days_ago(61),
                                    status="completed"),
                             ingredients=(QUETIAPINE, SERTRALINE)), id="combination"),
    ],
)
def test_an_as_needed_or_combination_course_between_does_not_hide_an_increase(
    middle: MedicationCourse,
) -> None:
    assert _increases(middle) == [("dose_increase", 100, 300)]


@pytest.mark.parametrize(("status", "stopped"), [("completed", False), ("stopped", True)])
def test_single_administrations_show_no_stop_unless_one_is_recorded(
    status: str, stopped: bool
) -> None:
    """Injections given one a month, each its own one-day order: no stop after the last,
    which acts for weeks; a one-day course recorded as stopped is a stop."""
    shots = [course(QUETIAPINE, days_ago(d), mg=100, end=days_ago(d), status="completed")
             for d in (75, 45)]
    shots.append(course(QUETIAPINE, days_ago(15), mg=100, end=days_ago(15), status=status))
    kinds = [e.kind for e in regimen_events(shots, NOW, continuation_gap_days=30)]
    assert ("stop" in kinds) is stopped
