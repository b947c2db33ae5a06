"""What the drafts of a hook call change in the record, before any pattern reads it.

``context.draftOrders`` holds every unsigned order of the ordering session (CDS Hooks 2.0,
order-select and order-sign), not only new prescriptions:

- an order re-sent with ``status`` stopped, cancelled or completed is a discontinuation: when
  it is an order of the history (same ``Type/id``), that course ends today; otherwise it
  prescribes nothing;
- a draft whose ``priorPrescription`` names an order of the history replaces it (R4: "the
  order being replaced by this one"): that order ends the day the draft starts (today);
- a course the session ends (either way) is a recorded stop: its status becomes ``stopped``
  when it was still in force, so timelines read a dated stop today, as for a stop on record;
- an order re-sent with ``status`` on-hold is a pause: when it is an order of the history (same
  ``Type/id``), that course is on hold (status ``on-hold``, not ended), as an order on hold in
  the history is; the on-hold draft itself prescribes nothing;
- a draft that is entered-in-error, or only a ``proposal`` or an ``option``, is not being
  prescribed and is left out.

So a switch written as "stop risperidone, start aripiprazole" reads as a switch, not as two
antipsychotics. This holds for the unselected drafts of order-select too: they are the plan the
selection belongs to.

Pure: no clock or I/O.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from fhir_mappers.record import (
    CURRENT_STATUSES,
    NON_ORDER_INTENTS,
    DraftOrders,
    MedicationCourse,
    PatientRecord,
)

# Draft statuses that stop (or withdraw) an order instead of prescribing one.
ENDING_STATUSES = frozenset({"stopped", "cancelled", "completed"})
# R4 MedicationRequest.status of an order paused by its prescriber: in force, not taken now.
HOLD_STATUS = "on-hold"
# The status a course ended by the session gets: a stop decided today, as recorded (R4).
_STOPPED = "stopped"
_NOT_ORDERS = frozenset({"entered-in-error"})


def planned_record(
    record: PatientRecord, drafts: DraftOrders, now: date
) -> tuple[PatientRecord, DraftOrders]:
    """The record with the history orders the drafts discontinue or replace stopped at ``now``
    (a ``date``) and those they re-send on hold put on hold, and the drafts that prescribe
    something (see the module docstring)."""
    ending: set[str] = set()
    holding: set[str] = set()
    prescribing: list[MedicationCourse] = []
    for draft in drafts:
        status = draft.status.lower()
        if status in ENDING_STATUSES:
            ending.add(draft.ref)
            continue
        if status == HOLD_STATUS:
            holding.add(draft.ref)
            continue
        if draft.status in _NOT_ORDERS or draft.intent in NON_ORDER_INTENTS:
            continue
        if draft.prior_prescription:
            ending.add(draft.prior_prescription)
        prescribing.append(draft)
    prescribing = _together(prescribing)
    if len(prescribing) == len(drafts) and not ending and not holding:
        return record, drafts
    if not ending and not holding:
        return record, tuple(prescribing)
    courses = tuple(
        _ended(course, now) if course.ref in ending
        else _held(course, now) if course.ref in holding
        else course
        for course in record.courses
    )
    return replace(record, courses=courses), tuple(prescribing)


def _in_force(course: MedicationCourse) -> bool:
    return course.status.lower() in CURRENT_STATUSES.get(course.source_type, frozenset())


def _ended(course: MedicationCourse, now: date) -> MedicationCourse:
    """The course planned to end today, unless it has ended already or starts later. An order
    still in force becomes ``stopped``: the session's stop is a dated stop like one on record
    (a course left "active" with an end today would read as an inferred end, not a change)."""
    if course.is_draft or course.start is None or course.start > now:
        return course
    if course.end is not None and course.end <= now:
        return course
    status = _STOPPED if _in_force(course) else course.status
    return replace(course, end=now, status=status)


def _held(course: MedicationCourse, now: date) -> MedicationCourse:
    """The course paused today (status ``on-hold``, its dates unchanged), unless it is no longer
    in force or has ended already: a hold does not revive a stopped order."""
    if course.is_draft or not _in_force(course):
        return course
    if course.end is not None and course.end < now:
        return course
    return replace(course, status=HOLD_STATUS)


def _together(drafts: list[MedicationCourse]) -> list[MedicationCourse]:
    """Scheduled drafts of one single-ingredient drug signed together (olanzapine 5 mg and 10 mg
    tablets, both nightly) are one order of their summed daily dose: 15 mg/day of one new agent,
    not a new agent and an increase. The first keeps its place, and is selected (order-select)
    when any of them is; as-needed drafts, drafts in dose steps and drafts of several
    ingredients stay as they are."""
    groups: dict[str, list[MedicationCourse]] = {}
    for draft in drafts:
        if _summable(draft):
            groups.setdefault(draft.ingredients[0].name, []).append(draft)
    out: list[MedicationCourse] = []
    for draft in drafts:
        group = groups.get(draft.ingredients[0].name) if _summable(draft) else None
        if group is None or len(group) == 1:
            out.append(draft)
        elif draft is group[0]:
            doses = [d.daily_dose_mg for d in group]
            total = None if None in doses else sum(d or 0.0 for d in doses)
            out.append(replace(
                draft, daily_dose_mg=total, schedule=None,
                is_selected=any(d.is_selected for d in group),
            ))
    return out


def _summable(draft: MedicationCourse) -> bool:
    return (
        len(draft.ingredients) == 1
        and draft.ingredients[0].is_psychotropic
        and not draft.is_prn
        and not draft.steps
    )
