"""The quick test of ``fhir_mappers.order_horizon``: is an order plain, closed and old?

A candidate may be left unmapped (``order_horizon.plan_drops`` decides). The test reads the
order's dates as the course mapping does (``medication_requests``), but only in the forms it can
bound for sure: full ISO days or dateTimes, a single Dosage line with a ``boundsPeriod``, an end
date. Anything else (partial or unreadable dates, dose steps, other bounds, an open order, a
stop for intolerance, a combination product) is not a candidate and is mapped in full, as
without a horizon. Most orders of a long history fail on one string comparison (too recent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from fhir_mappers.accessors import as_list, codes, concept_text
from fhir_mappers.context import MappingContext
from fhir_mappers.medication_source import ResolvedMedication

_INTOLERANCE_KINDS = frozenset({"intolerance", "allergy"})
_BOUNDS_OTHER_THAN_PERIOD = ("boundsDuration", "boundsRange")
# A subset of the forms ``accessors.parse_period`` reads as one day (tests hold the two equal).
_ISO_DAY_OR_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"
).fullmatch


@dataclass(slots=True)  # not frozen: a frozen __init__ costs more than the rest of the test
class Candidate:
    """An order that may be left unmapped: where it is in the inputs, its medication and
    ingredient (name and class) and the start and end days the full mapping would give it."""

    position: int
    ref: str
    resource: Mapping[str, Any]
    rtype: str
    medication: ResolvedMedication
    ingredient: str
    drug_class: str
    start: date
    end: date


def candidate(
    resource: Mapping[str, Any],
    ref: str,
    rtype: str,
    position: int,
    ctx: MappingContext,
    cutoff: tuple[date, str],
    memo: dict[bytes, bool],
    medication: ResolvedMedication,
) -> Candidate | None:
    """The order as a ``Candidate`` when it is a plain, closed order of one psychotropic
    (``medication``: its ``resolve_medication``, read by the caller) before ``cutoff`` (the day,
    and the day as ISO text); None when it must be mapped in full. Reports no issue: an order
    that is not a candidate is mapped (and its problems reported) as without a horizon."""
    # Cheapest first: most orders of a long history are not of one psychotropic or fail on a
    # string comparison of one date.
    if len(medication.ingredients) != 1 or not medication.ingredients[0].is_psychotropic:
        return None
    try:
        days = _plain_closed_days(resource, rtype, ctx, cutoff, memo)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError, ArithmeticError):
        return None  # odd data: the full mapping reads (and reports) it
    if days is None:
        return None
    ingredient = medication.ingredients[0]
    return Candidate(
        position, ref, resource, rtype, medication, ingredient.name, ingredient.drug_class,
        *days,
    )


def _plain_closed_days(
    resource: Mapping[str, Any],
    rtype: str,
    ctx: MappingContext,
    cutoff: tuple[date, str],
    memo: dict[bytes, bool],
) -> tuple[date, date] | None:
    """(start, end) of a plain, closed order whose dates all lie before the cut-off."""
    cutoff_day, cutoff_iso = cutoff
    if rtype == "MedicationStatement":
        if not _before(_field(resource.get("effectivePeriod"), "end"), cutoff_iso):
            return None
    else:
        authored = resource.get("authoredOn", resource.get("dateWritten"))
        if authored is not None and not _before(authored, cutoff_iso):
            return None
    read = (
        _statement_reading(resource, cutoff_day)
        if rtype == "MedicationStatement"
        else _request_reading(resource, cutoff_day)
    )
    if read is None:
        return None
    start, end, reasons = read
    if start is None or end is None or end < start:
        return None
    if type(resource.get("status")) is not str:
        return None
    if _stopped_for_intolerance(reasons, ctx, memo):
        return None
    return start, end


_Reading = tuple[date | None, date | None, tuple[Any, Any]]


def _statement_reading(resource: Mapping[str, Any], cutoff_day: date) -> _Reading | None:
    """(start, end, stop reasons) of a plain MedicationStatement all of whose dates are full
    days before the cut-off; None otherwise."""
    if not _single_line_bounds(resource.get("dosage"))[0]:
        return None
    period = resource.get("effectivePeriod")
    dated = (
        resource.get("effectiveDateTime"),
        _field(period, "start"),
        _field(period, "end"),
        resource.get("dateAsserted"),
    )
    days = _days(dated, cutoff_day)
    if days is None:
        return None
    reasons = (resource.get("statusReason"), resource.get("reasonNotTaken"))
    return days[0] or days[1], days[2], reasons


def _request_reading(resource: Mapping[str, Any], cutoff_day: date) -> _Reading | None:
    """(start, end, stop reasons) of a plain, ended MedicationRequest all of whose dates are
    full days before the cut-off; None otherwise."""
    plain, bounds = _single_line_bounds(resource.get("dosageInstruction"))
    if not plain:
        return None
    bounds_start, bounds_end = _field(bounds, "start"), _field(bounds, "end")
    ended = resource.get("dateEnded")
    if bounds_end is None and ended is None:
        return None
    validity = _field(resource.get("dispenseRequest"), "validityPeriod")
    days = _days((
        resource.get("authoredOn", resource.get("dateWritten")),
        bounds_start,
        bounds_end,
        ended,
        resource.get("dateWritten"),
        _field(validity, "start"),
        _field(validity, "end"),
    ), cutoff_day)
    if days is None:
        return None
    reasons = (resource.get("statusReason"), resource.get("reasonEnded"))
    authored, planned = days[0], days[1]
    # As ``medication_requests``: a later bounds start is when treatment begins.
    later = authored is None or (planned is not None and planned > authored)
    start = planned if later else authored
    return start, days[2] or days[3], reasons


def _field(value: Any, name: str) -> Any:
    if value is None:
        return None
    if type(value) is not dict:
        raise TypeError("not an object")  # not a candidate: mapped (and reported) in full
    return value.get(name)


def _before(value: Any, cutoff_iso: str) -> bool:
    """A string that sorts before the cut-off's ISO day: a quick test, not yet a date."""
    return type(value) is str and value < cutoff_iso


def _days(values: tuple[Any, ...], cutoff: date) -> list[date | None] | None:
    """Each value as the day ``parse_date`` reads (None where absent); None unless every value
    present is a string naming one full day before ``cutoff``."""
    days: list[date | None] = []
    for value in values:
        if value is None:
            days.append(None)
            continue
        day = full_day(value)
        if day is None or day >= cutoff:
            return None
        days.append(day)
    return days


def full_day(value: Any) -> date | None:
    """The day of an ISO date or dateTime string ("2019-05-06", "2019-05-06T10:00:00+02:00"),
    as ``accessors.parse_date`` reads it; None for anything else (partial dates, other forms),
    which ``parse_date`` might still read: such orders are simply mapped in full."""
    if type(value) is not str:
        return None
    # A plain day, the commonest form: the C parser accepts exactly the ASCII "YYYY-MM-DD" the
    # pattern would (dashes at 4 and 7 leave none of its other forms), without the regex.
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    if _ISO_DAY_OR_TIME(value) is None:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _single_line_bounds(dosages: Any) -> tuple[bool, Mapping[str, Any] | None]:
    """(plain, the ``boundsPeriod`` of the only Dosage line or None). Not plain: several lines
    (dose steps), a line, timing or bounds that is not an object, or bounds of another form."""
    lines = as_list(dosages)
    if not lines:
        return True, None
    if len(lines) != 1 or type(lines[0]) is not dict:
        return False, None
    timing = lines[0].get("timing")
    if timing is None:
        return True, None
    if type(timing) is not dict:
        return False, None
    repeat = timing.get("repeat")
    if repeat is None:
        return True, None
    if type(repeat) is not dict or any(k in repeat for k in _BOUNDS_OTHER_THAN_PERIOD):
        return False, None
    bounds = repeat.get("boundsPeriod")
    if bounds is not None and type(bounds) is not dict:
        return False, None
    return True, bounds


def _stopped_for_intolerance(
    reasons: tuple[Any, Any], ctx: MappingContext, memo: dict[bytes, bool]
) -> bool:
    """The stop reasons read as the full mapping reads them, whatever the status (remembered
    per distinct reasons for the call: a long history repeats a few)."""
    if reasons[0] is None and reasons[1] is None:
        return False
    key = orjson.dumps(reasons)
    found = memo.get(key)
    if found is None:
        concepts = [c for r in reasons for c in as_list(r)]
        reason_text = " ".join(filter(None, (concept_text(c) for c in concepts)))
        found = ctx.codes.stop_reason(codes(concepts), reason_text) in _INTOLERANCE_KINDS
        memo[key] = found
    return found
