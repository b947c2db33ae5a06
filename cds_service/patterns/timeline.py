"""The psychotropic timeline every pattern reads: which courses count, and how the regimen changed.

One reading for all six patterns, so that a "start", a "stop" or a "dose change" means the same
thing on every card. Courses of one ingredient are grouped into episodes of continuous use: a dose
change usually arrives as a new MedicationRequest, and renewals often leave a short gap, so two
courses of the same ingredient at most ``continuation_gap_days`` apart are one episode (each
pattern passes the gap from its own thresholds in ``config/default.yaml``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from fhir_mappers.record import (
    Dispense,
    DraftOrders,
    Ingredient,
    MedicationCourse,
    PatientRecord,
    is_current,
    last_taken,
    was_taken,
)

# ``is_current`` and ``last_taken`` live with the record (the mapper's order horizon asks them
# too); the patterns import them from here, with the rest of the timeline.
__all__ = [
    "Episode",
    "RegimenEvent",
    "dated_drafts",
    "dose_on",
    "episode_events",
    "episodes",
    "fills_without_supply",
    "has_dated_stop",
    "is_current",
    "is_renewal",
    "last_taken",
    "psychotropic_names",
    "regimen_events",
    "seen_days",
    "single_dose",
    "taken_courses",
]

_ENDED_STATUSES = frozenset({"stopped", "completed"})
# Statuses that record a stop (not a completion as planned).
_STOPPED_STATUSES = frozenset({"stopped", "cancelled"})

EventKind = Literal["start", "restart", "dose_increase", "dose_decrease", "stop"]


def taken_courses(record: PatientRecord) -> tuple[MedicationCourse, ...]:
    """History courses that were prescribed or taken (not drafts, errors, cancelled, not-taken)."""
    return tuple(c for c in record.courses if was_taken(c))


def dated_drafts(drafts: DraftOrders, now: date) -> tuple[MedicationCourse, ...]:
    """Draft orders as if started today: authoredOn of a draft is when it was typed, not taken.
    A planned end on or after today (a bridge or cross-taper signed with its end, by
    ``boundsPeriod`` or ``boundsDuration``) is kept: the order ends as written. An end already
    past is no plan for an order not yet started, and is dropped (the draft reads as open)."""
    return tuple(
        replace(
            d, start=now, end=d.end if d.end is not None and d.end >= now else None, is_draft=True
        )
        for d in drafts
    )


def dose_on(course: MedicationCourse, day: date) -> float | None:
    """The daily dose in effect on ``day``: the step of a multi-step order that covers the day
    (before the first step: the first; after the last: the last), else the course's dose.
    Only for single-ingredient courses, like ``single_dose``."""
    if len(course.ingredients) != 1:
        return None
    if not course.steps:
        return course.daily_dose_mg
    chosen = course.steps[0]
    for step in course.steps:
        if step.start is not None and step.start <= day:
            chosen = step
    return chosen.daily_dose_mg


def is_renewal(
    draft: MedicationCourse, record: PatientRecord, now: date, *, continuation_gap_days: int
) -> bool:
    """The draft continues a current course at the same dose (a refill or renewal), so it is not
    a new agent: every psychotropic ingredient of the draft is in today's regimen (or was taken
    within ``continuation_gap_days``) and its daily dose is the same; where a dose is not known,
    a ``priorPrescription`` pointing at that course stands in for it."""
    ingredients = draft.psychotropic_ingredients
    if not ingredients:
        return False
    courses = taken_courses(record)
    for ingredient in ingredients:
        same = [
            c
            for c in courses
            if any(i.name == ingredient.name for i in c.psychotropic_ingredients)
            and (last := last_taken(c, now)) is not None
            and (now - last).days <= continuation_gap_days
            and (c.start is None or c.start <= now)
        ]
        if not same:
            return False
        latest = max(same, key=lambda c: (c.start or date.min, c.ref))
        draft_dose, current_dose = single_dose(draft), dose_on(latest, now)
        if draft_dose is not None and current_dose is not None:
            if abs(draft_dose - current_dose) > 1e-6:
                return False
        elif draft.prior_prescription not in {c.ref for c in same}:
            return False
    return True


def seen_days(record: PatientRecord, now: date) -> list[date]:
    """Days the patient was seen in an outpatient visit, up to today, sorted: completed
    outpatient visits, and today when a visit is happening now (an encounter in progress,
    arrived, triaged or on leave that began today, or the hook's ``context.encounterId``:
    ``Visit.is_happening``)."""
    days = {
        day
        for v in record.visits
        if v.is_completed_outpatient and (day := v.start or v.end) is not None and day <= now
    }
    ongoing = record.current_encounter is not None or any(
        v.is_happening(now) and not v.is_inpatient and v.kind != "emergency"
        for v in record.visits
    )
    if ongoing:
        days.add(now)
    return sorted(days)


def fills_without_supply(
    record: PatientRecord, names: Iterable[str], since: date, now: date
) -> list[Dispense]:
    """Completed fills of these ingredients handed over in [since, now] whose days' supply is
    unknown: a days-covered figure over them would count missing data as missed doses."""
    wanted = set(names)
    return [
        d
        for d in record.dispenses
        if d.status == "completed"
        and d.handed_over is not None
        and since <= d.handed_over <= now
        and d.days_supply is None
        and any(i.name in wanted for i in d.ingredients if i.is_psychotropic)
    ]


def has_dated_stop(course: MedicationCourse, now: date) -> bool:
    """The course carries an end date that has passed (a real stop, not an inferred one)."""
    if course.is_draft or course.end is None or course.end > now:
        return False
    return course.end < now or course.status in _ENDED_STATUSES


def single_dose(course: MedicationCourse) -> float | None:
    """The daily dose, only where it belongs to one ingredient (combination products have none)."""
    return course.daily_dose_mg if len(course.ingredients) == 1 else None


def psychotropic_names(courses: Iterable[MedicationCourse]) -> list[str]:
    """Distinct psychotropic ingredient names, in order of first appearance."""
    names: dict[str, None] = {}
    for course in courses:
        for ingredient in course.psychotropic_ingredients:
            names.setdefault(ingredient.name, None)
    return list(names)


@dataclass(frozen=True, slots=True)
class Episode:
    """Continuous use of one psychotropic ingredient: one or more courses with short gaps."""

    ingredient: Ingredient
    courses: tuple[MedicationCourse, ...]  # ordered by start
    start: date
    last_day: date  # last day known or presumed taken (today when still open)
    is_open: bool  # a course is current, or a draft continues it
    gap_before: int | None  # days since the previous episode of this ingredient ended
    previous_dose: float | None  # last known daily dose of the previous episode
    # The course that ran longest: its status and stop reason say how the episode ended.
    ending_course: MedicationCourse


@dataclass(frozen=True, slots=True)
class RegimenEvent:
    """A change of the psychotropic regimen, dated, with the course that made it."""

    kind: EventKind
    ingredient: Ingredient
    course: MedicationCourse
    when: date
    dose: float | None = None
    previous_dose: float | None = None
    gap_days: int | None = None  # for restarts: days since the ingredient was last taken


def episodes(
    courses: Iterable[MedicationCourse], now: date, *, continuation_gap_days: int
) -> list[Episode]:
    """Episodes of every psychotropic ingredient in dated courses, ordered by start.

    Courses of one ingredient at most ``continuation_gap_days`` apart are one episode. A pattern
    that needs both the episodes and their events cuts once and calls ``episode_events``.
    """
    by_ingredient: dict[str, list[tuple[Ingredient, MedicationCourse, date]]] = defaultdict(list)
    for course in courses:
        if course.start is None or course.start > now:
            continue
        for ingredient in course.psychotropic_ingredients:
            by_ingredient[ingredient.name].append((ingredient, course, course.start))
    result: list[Episode] = []
    for steps in by_ingredient.values():
        steps.sort(key=lambda s: (s[2], s[1].is_draft, s[1].ref))
        result.extend(_split_episodes(_split_doses_summed(steps), now, continuation_gap_days))
    result.sort(key=lambda e: (e.start, e.ingredient.name))
    return result


def _split_doses_summed(
    steps: list[tuple[Ingredient, MedicationCourse, date]],
) -> list[tuple[Ingredient, MedicationCourse, date]]:
    """One ingredient's dated courses (sorted by start) with a dose split over orders of one
    day read as one course: orders that start on the same day and end together (within a day),
    each scheduled, of this ingredient alone and of known dose (lithium 300 mg and 600 mg as two
    orders, renewed together) are taken together, so their daily doses add up (900 mg/day, then
    900 again: no change), where compared one after the other they would read as a fall and a
    rise. The first keeps its place and reference. Two such orders of the same product and dose
    may be one dose split in two (sertraline 50 mg morning and 50 mg at bedtime) or one order
    entered twice (a copy made at reconciliation): nothing kept of them tells which, so the daily
    dose is unknown (no change is read across it, and no trial is shown adequate by it). Drafts
    are summed by ``draft_plan`` instead."""
    if len(steps) < 2:
        return steps
    out: list[tuple[Ingredient, MedicationCourse, date]] = []
    for step in steps:
        if out and _taken_together(out[-1][1], step[1]):
            kept, course = out[-1][1], step[1]
            same = course.display == kept.display and course.daily_dose_mg == kept.daily_dose_mg
            total = None if same else (kept.daily_dose_mg or 0.0) + (course.daily_dose_mg or 0.0)
            summed = replace(kept, daily_dose_mg=total, schedule=None)
            out[-1] = (out[-1][0], summed, out[-1][2])
            continue
        out.append(step)
    return out


def _taken_together(first: MedicationCourse, other: MedicationCourse) -> bool:
    return (
        first.start == other.start
        and _end_together(first.end, other.end)
        and first.status == other.status
        and not first.is_draft
        and not other.is_draft
        and all(
            len(c.ingredients) == 1 and not c.is_prn and not c.steps
            and c.daily_dose_mg is not None and c.schedule is None
            for c in (first, other)
        )
    )


def _end_together(first: date | None, other: date | None) -> bool:
    # Both open, or both ending within a day of each other (one order's end written as the
    # last day taken, the other's as the day after).
    if first is None or other is None:
        return first is other
    return abs((first - other).days) <= 1


def _split_episodes(
    steps: list[tuple[Ingredient, MedicationCourse, date]], now: date, gap_days: int
) -> list[Episode]:
    # Per course, in one pass: whether it is current and its last day (``last_taken``, which
    # asks ``is_current`` too); then grouped into episodes.
    groups: list[list[tuple[MedicationCourse, date | None, bool]]] = []
    gaps: list[int | None] = []
    last_day: date | None = None
    for _, course, start in steps:
        gap = None if last_day is None else (start - last_day).days
        if gap is None or gap > gap_days:
            groups.append([])
            gaps.append(gap)
        current = is_current(course, now)
        taken = last_taken(course, now, current=current)
        groups[-1].append((course, taken, current))
        day = taken or start
        last_day = day if last_day is None else max(last_day, day)
    ingredient = steps[0][0]
    result: list[Episode] = []
    previous_dose: float | None = None
    for members, gap in zip(groups, gaps, strict=True):
        group = tuple(course for course, _, _ in members)
        ending, ending_last, _ = max(members, key=lambda m: (m[1] or now, m[0].start or now))
        result.append(
            Episode(
                ingredient=ingredient,
                courses=group,
                start=group[0].start or now,
                last_day=ending_last or now,
                is_open=any(current for _, _, current in members),
                gap_before=gap,
                previous_dose=previous_dose,
                ending_course=ending,
            )
        )
        for course in reversed(group):  # the last known dose carries over to the next episode
            dose = single_dose(course)
            if dose is not None:
                previous_dose = dose
                break
    return result


def regimen_events(
    courses: Iterable[MedicationCourse],
    now: date,
    *,
    continuation_gap_days: int,
    since: date | None = None,
) -> list[RegimenEvent]:
    """Starts, restarts, dose changes and dated stops of psychotropic ingredients, by date;
    with ``since``, events dated before it may be left out (see ``episode_events``)."""
    return episode_events(
        episodes(courses, now, continuation_gap_days=continuation_gap_days), now, since=since
    )


def episode_events(
    cut: Iterable[Episode], now: date, *, since: date | None = None
) -> list[RegimenEvent]:
    """``regimen_events`` of episodes already cut (``episodes``), by date.

    With ``since``, episodes with no day on or after it are passed over: every event of an
    episode is dated by its start, a course's start or its last day, so they could only give
    events before ``since`` (a caller that keeps only events from ``since`` on loses nothing).
    """
    events: list[RegimenEvent] = []
    for episode in cut:
        if since is not None and max(episode.last_day, _latest_start(episode)) < since:
            continue
        first = episode.courses[0]
        events.append(
            RegimenEvent(
                kind="start" if episode.gap_before is None else "restart",
                ingredient=episode.ingredient,
                course=first,
                when=episode.start,
                dose=single_dose(first),
                previous_dose=episode.previous_dose,
                gap_days=episode.gap_before,
            )
        )
        events.extend(_dose_changes(episode))
        ending = episode.ending_course
        # Use made only of single administrations given as planned (courses completed the day
        # they start: one injection each, ordered one at a time) has no stop on the last one's
        # day: a long-acting injectable acts for weeks after it, for an interval the orders do
        # not give (so such use never shows a dated stop). A recorded stop is one.
        if (
            not episode.is_open
            and has_dated_stop(ending, now)
            and not (
                ending.status not in _STOPPED_STATUSES
                and all(c.start is not None and c.end == c.start for c in episode.courses)
            )
        ):
            events.append(RegimenEvent("stop", episode.ingredient, ending, episode.last_day))
    events.sort(key=lambda e: (e.when, e.course.is_draft, e.ingredient.name))
    return events


def _latest_start(episode: Episode) -> date:
    # Courses are ordered by start; an end recorded before its start can leave a course's start
    # (a dose change's date) after the episode's last day.
    return episode.courses[-1].start or episode.start


def _dose_changes(episode: Episode) -> list[RegimenEvent]:
    # Each course is compared with the one before it: after a scheduled single-ingredient course
    # of unknown dose (a text-only sig, tablets of a product of unknown strength) the dose in
    # effect is unknown, so the next known dose is no known change ("50 mg, then 2 tablets,
    # then 100 mg" may have risen at the tablets, when is not known): missing, not evidence.
    # An as-needed order or a combination product beside the regimen says nothing of it.
    changes: list[RegimenEvent] = []
    last_dose = single_dose(episode.courses[0])
    for course in episode.courses[1:]:
        dose = single_dose(course)
        if dose is None:
            if len(course.ingredients) == 1 and not course.is_prn:
                last_dose = None
            continue
        if last_dose is not None and dose != last_dose:
            kind: EventKind = "dose_increase" if dose > last_dose else "dose_decrease"
            when = course.start or episode.start
            changes.append(RegimenEvent(kind, episode.ingredient, course, when, dose, last_dose))
        last_dose = dose
    return changes
