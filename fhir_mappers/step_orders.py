"""Dose steps written as separate orders, read as one multi-step order.

A taper or titration entered at one visit as one order per step ("lamotrigine 25 mg for two
weeks", "50 mg from the 15th", "100 mg from the 29th", each with its own ``boundsPeriod``) is one
plan, exactly as the same steps written as ``Dosage.sequence`` lines of one order are: one course
whose dose changes on the days the steps say, one prescribing decision. Read one by one, the
orders are a start and a run of dose changes; drafts of one session, which all start on the day
of signing (``medication_requests``), would even read as doses taken together and be summed
(100 + 50 mg, an "increase" to 150 mg/day, for a taper).

``merge_step_orders`` finds them: orders of one drug written together (the drafts of one session;
history orders authored on the same day), each scheduled, of one psychotropic ingredient and no
steps of its own, that follow one another (each ends on or before the day the next begins) with
at least one beginning later than the others.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from dataclasses import replace
from datetime import date, timedelta

from fhir_mappers.record import DoseStep, MedicationCourse


def merge_step_orders(
    courses: list[MedicationCourse],
    written_together: Mapping[str, Hashable],
    starts: Mapping[str, date],
    statuses: Collection[str],
    *,
    open_steps: bool = False,
) -> list[MedicationCourse]:
    """``courses`` with each plan of step orders merged into one course (see the module).

    ``written_together`` maps a course's ``ref`` to what it was written with (the same value for
    orders of one session or one day); courses not in it stay as they are. ``starts`` gives a
    course's first day where it differs from ``course.start`` (a draft's ``boundsPeriod.start``
    after the day of signing). ``statuses`` are the statuses a step may have. The merged course is
    the last step (its status, end, stop reason) starting with the first, with one ``DoseStep``
    per order and the last step's dose; it takes the first step's place, and is selected
    (order-select) when any step is. With ``open_steps`` (the drafts of one session), orders
    that start on different days are steps even where an earlier one has no end, or ends after
    the next begins ("200 mg nightly", "300 mg nightly from the 7th"): each runs until the day
    before the next, as a titration written that way is meant; summed, they would read as one
    dose of 500 mg/day taken from today.
    """
    groups: dict[tuple[str, Hashable], list[MedicationCourse]] = {}
    for course in courses:
        key = written_together.get(course.ref)
        if key is not None and _steppable(course, statuses):
            groups.setdefault((course.ingredients[0].name, key), []).append(course)
    merged: dict[str, MedicationCourse] = {}  # ref of the first step -> the plan
    absorbed: set[str] = set()
    for group in groups.values():
        if len(group) < 2:
            continue
        firsts: dict[str, date] = {}
        for course in group:
            first = starts.get(course.ref, course.start)
            if first is not None:
                firsts[course.ref] = first
        if len(firsts) < len(group):
            continue  # a step of unknown start: where it falls in the plan is not known
        dated = sorted(group, key=lambda c: (firsts[c.ref], c.ref))
        days = [firsts[c.ref] for c in dated]
        follows = all(
            before.end is not None and before.end <= after
            for before, after in zip(dated, days[1:], strict=False)
        )
        distinct = all(before < after for before, after in zip(days, days[1:], strict=False))
        if days[0] == days[-1] or not (follows or (open_steps and distinct)):
            continue
        ends = [
            course.end if follows or nxt is None or (course.end is not None and course.end < nxt)
            else nxt - timedelta(days=1)
            for course, nxt in zip(dated, [*days[1:], None], strict=True)
        ]
        steps = tuple(
            DoseStep(None, day, end, course.daily_dose_mg)
            for course, day, end in zip(dated, days, ends, strict=True)
        )
        merged[dated[0].ref] = replace(
            dated[-1], start=days[0], steps=steps, schedule=None,
            is_selected=any(c.is_selected for c in group),
        )
        absorbed.update(c.ref for c in dated[1:])
    if not merged:
        return courses
    return [merged.get(c.ref, c) for c in courses if c.ref not in absorbed]


def _steppable(course: MedicationCourse, statuses: Collection[str]) -> bool:
    return (
        course.status in statuses
        and len(course.ingredients) == 1
        and course.ingredients[0].is_psychotropic
        and not course.is_prn
        and not course.steps
    )
