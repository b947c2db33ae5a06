"""What the drafts of a hook call change in the record, before any pattern reads it.

``context.draftOrders`` holds every unsigned order of the ordering session (CDS Hooks 2.0,
order-select and order-sign), not only new prescriptions:

- an order re-sent with ``status`` stopped, cancelled or completed is a discontinuation: when
  it is an order of the history (same ``Type/id``), that course ends today; otherwise it
  prescribes nothing;
- a draft whose ``priorPrescription`` names an order of the history replaces it (R4: "the
  order being replaced by this one"): that order ends the day the draft starts (today);
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

from fhir_mappers.record import NON_ORDER_INTENTS, DraftOrders, MedicationCourse, PatientRecord

# Draft statuses that stop (or withdraw) an order instead of prescribing one.
ENDING_STATUSES = frozenset({"stopped", "cancelled", "completed"})
_NOT_ORDERS = frozenset({"entered-in-error"})


def planned_record(
    record: PatientRecord, drafts: DraftOrders, now: date
) -> tuple[PatientRecord, DraftOrders]:
    """The record with the history orders the drafts discontinue or replace ended at ``now``
    (a ``date``), and the drafts that prescribe something (see the module docstring)."""
    ending: set[str] = set()
    prescribing: list[MedicationCourse] = []
    for draft in drafts:
        if draft.status in ENDING_STATUSES:
            ending.add(draft.ref)
            continue
        if draft.status in _NOT_ORDERS or draft.intent in NON_ORDER_INTENTS:
            continue
        if draft.prior_prescription:
            ending.add(draft.prior_prescription)
        prescribing.append(draft)
    prescribing = _together(prescribing)
    if len(prescribing) == len(drafts) and not ending:
        return record, drafts
    if not ending:
        return record, tuple(prescribing)
    courses = tuple(
        _ended(course, now) if course.ref in ending else course for course in record.courses
    )
    return replace(record, courses=courses), tuple(prescribing)


def _ended(course: MedicationCourse, now: date) -> MedicationCourse:
    """The course planned to end today, unless it has ended already or starts later."""
    if course.is_draft or course.start is None or course.start > now:
        return course
    if course.end is not None and course.end <= now:
        return course
    return replace(course, end=now)


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
