"""Which dated resources are too old for any pattern to read, decided before mapping them.

A record of years of history is mostly old visits and old questionnaire scores. The patterns
only look back a bounded time (their ``*_days`` thresholds), so the mapper may skip Encounters and
Observations that ended before a horizon the caller computes from those thresholds, without
changing any finding: it keeps the most recent review visits before the horizon (a completed
outpatient visit with a prescriber, and an untyped one when newer: ``mapper._last_review_visits``),
because "days since the last visit" reaches back as far as the record goes.

The test is a string comparison on the ISO date prefix (cheaper than parsing): a resource whose
dates are missing or not ISO-shaped is never skipped, so it is mapped (and reported) as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Statuses whose period is over: an encounter in progress may still cover today.
ENDED_STATUSES = frozenset({"finished", "cancelled", "entered-in-error"})
# One C call instead of slicing and three isdigit() calls: this runs for every old resource.
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").match


def before(value: Any, horizon_iso: str) -> bool:
    """A FHIR date/dateTime whose YYYY-MM-DD day is before ``horizon_iso``.

    Comparing the whole string is the same as comparing its day: a later time on the horizon's
    own day sorts after the bare day, so it is never "before".
    """
    return type(value) is str and value < horizon_iso and _ISO_DAY(value) is not None


def visit_day_key(start: Any, end: Any) -> str:
    """How the latest-visit search orders old Encounters: by the period's start, else its end
    (the visit's day as visits-lag-changes reads it); "" sorts an undated one last."""
    day = start or end
    return day if isinstance(day, str) else ""


def old_encounter_day(resource: Mapping[str, Any], horizon_iso: str) -> str | None:
    """For an ended Encounter whose period (end, else start) lies wholly before the horizon, its
    ``visit_day_key``; None for any other Encounter (not ended, no period, or not before, as
    when its end is written before a start that is not)."""
    status = resource.get("status")
    if type(status) is not str or status not in ENDED_STATUSES:
        return None
    period = resource.get("period")
    if type(period) is not dict:
        return None
    start, end = period.get("start"), period.get("end")
    if not before(start if end is None else end, horizon_iso):
        return None
    if isinstance(start, str) and not before(start, horizon_iso):
        return None  # an end before a recent start is a slip, not an old visit: mapped in full
    return visit_day_key(start, end)


def observation_before(resource: Mapping[str, Any], horizon_iso: str) -> bool:
    """An Observation effective (or, without an effective time, issued) before the horizon."""
    effective = resource.get("effectiveDateTime")
    if effective is None:
        period = resource.get("effectivePeriod")
        effective = period.get("start") if type(period) is dict else None
        if effective is None:
            effective = resource.get("effectiveInstant") or resource.get("issued")
    return before(effective, horizon_iso)
