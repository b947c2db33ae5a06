"""Dose steps written as separate draft orders, read as one multi-step order.

A taper or titration entered in one ordering session as one order per step ("sertraline 100 mg
until the 6th", "50 mg from the 7th", each with its own ``boundsPeriod``) is one plan, exactly as
the same steps written as ``Dosage.sequence`` lines of one order are: a course that starts on the
day of signing and changes dose on the days the steps say. Mapped one by one, every draft starts
on the day of signing (``medication_requests``), so the steps would read as doses taken together
and be summed (100 + 50 = an "increase" to 150 mg/day).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date

from fhir_mappers.record import DoseStep, MedicationCourse

# Draft statuses that prescribe (others stop, withdraw or void an order: never a step).
_PRESCRIBING = frozenset({"draft", "active", ""})


def merge_follow_on_steps(
    drafts: list[MedicationCourse], planned_starts: Mapping[str, date]
) -> list[MedicationCourse]:
    """``drafts`` with the drafts of one drug that follow one another merged into one course.

    ``planned_starts`` maps a draft's ``ref`` to its ``boundsPeriod.start`` (a day) where it has
    one. Drafts merge when each is a scheduled single-ingredient psychotropic order without
    steps of its own, at least one is planned to start after the day of signing, and each one
    ends (``end``, a day) before the next one's planned start: no two are taken on one day. The
    merged course is the earliest draft (its ``ref``, selected when any of them is) with one
    ``DoseStep`` per draft, the last step's dose and end. Drafts that overlap stay as they are.
    """
    groups: dict[str, list[MedicationCourse]] = {}
    for draft in drafts:
        if _steppable(draft):
            groups.setdefault(draft.ingredients[0].name, []).append(draft)
    merged: dict[str, MedicationCourse] = {}  # ref of the first draft -> the merged course
    absorbed: set[str] = set()
    for group in groups.values():
        if len(group) < 2:
            continue
        dated = sorted(group, key=lambda d: (_starts(d, planned_starts) or date.min, d.ref))
        starts = [_starts(d, planned_starts) for d in dated]
        if any(s is None for s in starts) or starts[-1] == starts[0]:
            continue
        follows = all(
            before.end is not None and (after_start := starts[i + 1]) is not None
            and before.end < after_start
            for i, before in enumerate(dated[:-1])
        )
        if not follows:
            continue
        steps = tuple(
            DoseStep(None, start, draft.end, draft.daily_dose_mg)
            for draft, start in zip(dated, starts, strict=True)
        )
        first, last = dated[0], dated[-1]
        merged[first.ref] = replace(
            first, end=last.end, daily_dose_mg=last.daily_dose_mg, steps=steps, schedule=None,
            is_selected=any(d.is_selected for d in group),
        )
        absorbed.update(d.ref for d in dated[1:])
    if not merged:
        return drafts
    return [merged.get(d.ref, d) for d in drafts if d.ref not in absorbed]


def _steppable(draft: MedicationCourse) -> bool:
    return (
        draft.status in _PRESCRIBING
        and len(draft.ingredients) == 1
        and draft.ingredients[0].is_psychotropic
        and not draft.is_prn
        and not draft.steps
    )


def _starts(draft: MedicationCourse, planned_starts: Mapping[str, date]) -> date | None:
    """The day the draft's dose begins: its planned start when later than signing."""
    planned = planned_starts.get(draft.ref)
    if draft.start is None:
        return planned
    return planned if planned is not None and planned > draft.start else draft.start
