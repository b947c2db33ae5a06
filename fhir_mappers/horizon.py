"""Which dated resources are too old for any pattern to read, decided before mapping them.

A record of years of history is mostly old visits and old questionnaire scores. The patterns
only look back a bounded time (their ``*_days`` thresholds), so the mapper may skip Encounters and
Observations that ended before a horizon the caller computes from those thresholds, without
changing any finding: it keeps the most recent completed outpatient visit before the horizon,
because "days since the last visit" reaches back as far as the record goes.

The test is a string comparison on the ISO date prefix (cheaper than parsing): a resource whose
dates are missing or not ISO-shaped is never skipped, so it is mapped (and reported) as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Statuses whose period is over: an encounter in progress may still cover today.
_ENDED = frozenset({"finished", "cancelled", "entered-in-error"})


def _iso_day(value: Any) -> str | None:
    """The YYYY-MM-DD prefix of a FHIR date/dateTime, or None when it is not one."""
    if type(value) is not str or len(value) < 10 or value[4] != "-" or value[7] != "-":
        return None
    day = value[:10]
    return day if day[:4].isdigit() and day[5:7].isdigit() and day[8:10].isdigit() else None


def encounter_before(resource: Mapping[str, Any], horizon_iso: str) -> bool:
    """An ended Encounter whose period (end, else start) lies wholly before the horizon."""
    status = resource.get("status")
    if type(status) is not str or status not in _ENDED:
        return False
    period = resource.get("period")
    if type(period) is not dict:
        return False
    last = _iso_day(period.get("end")) if period.get("end") is not None else None
    last = last or (_iso_day(period.get("start")) if period.get("end") is None else None)
    return last is not None and last < horizon_iso


def observation_before(resource: Mapping[str, Any], horizon_iso: str) -> bool:
    """An Observation effective (or, without an effective time, issued) before the horizon."""
    effective = resource.get("effectiveDateTime")
    if effective is None:
        period = resource.get("effectivePeriod")
        effective = period.get("start") if type(period) is dict else None
    if effective is None:
        effective = resource.get("effectiveInstant") or resource.get("issued")
    day = _iso_day(effective)
    return day is not None and day < horizon_iso
