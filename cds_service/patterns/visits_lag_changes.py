"""visits-lag-changes: the regimen changes faster than the patient is seen.

Definition: no standard measure exists (psychotropic-domain.md §2.6). Anchors: HEDIS AMM best
practice of follow-up within 30 days to 6 weeks of a new antidepressant; Mintz's prescription to
see the patient more often instead of changing the drug (Psychodynamic Psychopharmacology, APA
Publishing 2022). Metric: psychotropic regimen changes in 90 days against completed outpatient or
virtual visits in the same window.

**When** at least ``min_changes`` psychotropic regimen changes (a start or restart, a stop with a
date, a daily-dose increase or decrease; the draft counts as a change dated today when it is one;
a renewal at the same dose is not a change) fall within the last ``window_days``, and either
fewer outpatient visits (``timeline.seen_days``: completed visits of an outpatient class in
config/codes.yaml, plus today when a visit is happening now, an in-progress encounter or the
hook's ``context.encounterId``) than changes took place in that window ("fewer_visits"), or
for some change the last completed outpatient visit on or before it was more than
``max_days_since_visit`` earlier, or there is none on record ("visit_gap").

**Unless** the change was made during an inpatient stay (a finished or in-progress encounter of
an inpatient class, config/codes.yaml, covering its date): inpatients are seen every day.

**Then** an ``info`` card: schedule a visit, and consider seeing the patient more often rather
than changing the regimen again. ``concerns_draft`` when the draft is itself a change. Override
reasons live in ``cards/wording/visits-lag-changes.yaml``.

**Thresholds** ``patterns.visits-lag-changes``: ``min_changes``, ``window_days``,
``max_days_since_visit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import dose_text, ordered_evidence, unique_refs
from cds_service.patterns.timeline import (
    RegimenEvent,
    dated_drafts,
    regimen_events,
    seen_days,
    taken_courses,
)
from fhir_mappers.record import DraftOrders, PatientRecord, Visit

PATTERN_ID = "visits-lag-changes"

_INPATIENT_STATUSES = frozenset({"finished", "completed", "in-progress"})


@dataclass(frozen=True, slots=True)
class Thresholds:
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_changes: int = 3
    window_days: int = 90
    max_days_since_visit: int = 90


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    since = now - timedelta(days=thresholds.window_days)
    courses = [*taken_courses(record), *dated_drafts(drafts, now)]
    changes = [
        e
        for e in regimen_events(courses, now)
        if since <= e.when <= now and not _excluded(e, record.visits, now)
    ]
    visit_days = seen_days(record, now)
    in_window = [d for d in visit_days if d >= since]
    trigger = _included(changes, in_window, visit_days, thresholds)
    if trigger is None:
        return None
    last_visit = visit_days[-1] if visit_days else None
    facts: dict[str, object] = {
        "change_count": len(changes),
        "visit_count": len(in_window),
        "window_days": thresholds.window_days,
        "days_since_last_visit": (now - last_visit).days if last_visit else None,
        "min_changes": thresholds.min_changes,
        "max_days_since_visit": thresholds.max_days_since_visit,
        "trigger": trigger,
        "last_visit": last_visit.isoformat() if last_visit else None,
    }
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(_evidence_item(e) for e in changes),
        facts=facts,
        evidence_keys=frozenset(_key(e) for e in changes),
        concerns_draft=any(e.course.is_draft for e in changes),
        references=unique_refs(e.course.ref for e in changes),
    )


def _included(
    changes: list[RegimenEvent],
    visits_in_window: list[date],
    visit_days: list[date],
    thresholds: Thresholds,
) -> str | None:
    """Which signal fires: "fewer_visits", "visit_gap", "both", or None."""
    if len(changes) < thresholds.min_changes:
        return None
    fewer_visits = len(visits_in_window) < len(changes)
    visit_gap = any(
        (gap := _days_since_visit(visit_days, c.when)) is None
        or gap > thresholds.max_days_since_visit
        for c in changes
    )
    if fewer_visits and visit_gap:
        return "both"
    if fewer_visits:
        return "fewer_visits"
    return "visit_gap" if visit_gap else None


def _excluded(change: RegimenEvent, visits: tuple[Visit, ...], now: date) -> bool:
    """A change made while the patient was in hospital."""
    for visit in visits:
        if not visit.is_inpatient or visit.status not in _INPATIENT_STATUSES:
            continue
        start = visit.start
        end = visit.end or (now if visit.status == "in-progress" else visit.start)
        if start is not None and end is not None and start <= change.when <= end:
            return True
    return False


def _days_since_visit(visit_days: list[date], when: date) -> int | None:
    """Days from the last completed outpatient visit on or before ``when``; None if none."""
    earlier = [d for d in visit_days if d <= when]
    return (when - earlier[-1]).days if earlier else None


def _key(change: RegimenEvent) -> str:
    prefix = "stop" if change.kind == "stop" else "change"
    return f"{prefix}:{change.course.ref}:{change.ingredient.name}"


def _evidence_item(change: RegimenEvent) -> EvidenceItem:
    if change.kind in ("dose_increase", "dose_decrease"):
        note = f"dose {dose_text(change.previous_dose)} -> {dose_text(change.dose)} mg/day"
    elif change.kind == "restart":
        note = f"restarted after {change.gap_days} days"
    else:
        note = "started" if change.kind == "start" else "stopped"
    if change.course.is_draft:
        note += " (draft order)"
    return EvidenceItem(change.course.ref, change.course.display, change.when, note)
