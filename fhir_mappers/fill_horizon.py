"""Which old fills (MedicationDispenses) no pattern can read, decided before mapping them.

A long history of a daily- or weekly-dispensed drug is mostly old fills. The patterns read a
psychotropic's fills in three ways only (``cds_service.patterns``):

- nonadherence counts the fills handed over inside its days-covered window (PQA PDC counts no
  supply carried in from before the window) and lists those without a days' supply there;
- multiple-failed-trials counts, for each trial, the fills of its ingredient handed over from the
  trial's episode start to its outcome;
- the stale-order test takes the latest day anything shows an ingredient in use: the order's own
  start, a later order's, or a fill (``regimen.signs_of_life``), so an old fill can only matter
  there when it is later than the start of a course of that ingredient, or when that course has
  no start at all.

So with the order horizon's ``cutoff`` (earlier than every window of every enabled pattern), a
fill handed over before it matters only when it is not earlier than the first day of a mapped
(kept) course with one of its ingredients, or when such a course is undated. Every other fill
before the cut-off is left unmapped: the first two readers never look before an episode's start
or the cut-off, and for the third the course's own start is later anyway.

The quick reading (``old_fill_day``) takes ``whenHandedOver`` only in the form the full mapping
reads as the same day (a full ISO day or dateTime, ``order_candidates.full_day``); a fill
without one is mapped in full, as without a horizon. A fill left out reports no
``MappingIssue`` but its medication's, which is read first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_mappers.medication_source import ResolvedMedication
from fhir_mappers.order_candidates import full_day
from fhir_mappers.record import MedicationCourse


@dataclass(slots=True)  # not frozen: built for every old fill of a long history
class OldFill:
    """A fill handed over before the cut-off: where it is in the inputs, its medication and the
    day the full mapping would give it."""

    position: int
    ref: str
    resource: Mapping[str, Any]
    medication: ResolvedMedication
    day: date


def old_fill_day(resource: Mapping[str, Any], cutoff: tuple[date, str]) -> date | None:
    """The hand-over day of a fill (``whenHandedOver`` as a full ISO day or dateTime) when it is
    before ``cutoff`` (the day, and the day as ISO text); None when it must be mapped in full."""
    handed_over = resource.get("whenHandedOver")
    if type(handed_over) is not str or not handed_over < cutoff[1]:
        return None  # most fills: too recent, told by one string comparison
    day = full_day(handed_over)
    return day if day is not None and day < cutoff[0] else None


def fills_to_map(old: list[OldFill], courses: Iterable[MedicationCourse]) -> list[OldFill]:
    """The old fills some pattern can read (see the module docstring), in their input order.

    ``courses`` are every course mapped in the call (the order horizon's dropped orders are not
    among them): an ingredient's first day is the earliest start of a course with it, and a
    course without a start keeps every fill of its ingredients.
    """
    first_day: dict[str, date] = {}
    for course in courses:
        start = course.start or date.min
        for ingredient in course.ingredients:
            seen = first_day.get(ingredient.name)
            if seen is None or start < seen:
                first_day[ingredient.name] = start
    return [
        fill
        for fill in old
        if any(
            (first := first_day.get(i.name)) is not None and fill.day >= first
            for i in fill.medication.ingredients
        )
    ]
