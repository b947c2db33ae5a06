"""visits-lag-changes: the regimen changes faster than a prescriber sees the patient.

Definition: no standard measure exists, and the threshold (3 changes in 90 days with fewer
prescriber visits) is a LOCAL CHOICE. The action is Mintz's first: more frequent visits rather
than a higher dose or another agent (D. Mintz, "Psychodynamic Psychopharmacology: Addressing the
Underlying Causes of Treatment Resistance", Psychiatric Times, September 2011,
https://www.austenriggs.org/resource/psychodynamic-psychopharmacology-addressing-underlying-
causes-treatment-resistance). HEDIS AMM today measures antidepressant continuation only; its former
follow-up-visit component is not cited (its current status could not be checked offline).

**When** at least ``min_changes`` psychotropic regimen changes (a start or restart, a stop with a
date, though not after use made only of single administrations, such as injections ordered one at
a time, a daily-dose increase or decrease; the draft counts as a change dated today when it is one;
a renewal at the same dose is not a change; courses at most ``continuation_gap_days`` apart are
continuous use) fall within the last ``window_days``, and either fewer review visits than changes
took place in that window ("fewer_visits"), or for some change the last review visit on or before
it was more than ``max_gap_since_visit_days`` earlier, or there is none ("visit_gap"). A review
visit is a completed outpatient visit where a prescriber could review the regimen: the mapper
classifies each Encounter by class and type from config/codes.yaml (``encounter_classes``,
``prescriber_visits``: psychiatry, behavioural health, primary care, office and follow-up visits,
a medication review; not a lab draw, an injection, a nurse visit, a refill or orders-only
encounter); an outpatient visit whose type says neither counts when ``count_untyped_visits`` is
true. A completed encounter whose class cannot be read counts when its type names a prescriber
visit (a missing class is missing, not evidence of no visit). A visit happening now (an open
encounter that began today, or the hook's ``context.encounterId``) counts for today unless its
class or type says it is no review (an emergency visit, a lab draw); the hook's encounter counts
when it is not on record, its kind being unknown. An encounter left open since an earlier day is
no visit today (a chart not closed).

**Not evaluable** (``NotEvaluable``, recorded in the audit, no card) when the card would fire
only because completed encounters of unreadable class, whose type says neither way, are not
counted: had they been review visits it would not fire (docs/encounter-classes.md).

**Unless** the change was made during an inpatient stay (an encounter of an inpatient class,
config/codes.yaml, that took place or is going on, ``Visit.is_stay``: R4 finished, R5 completed
or discharged, or in progress or on leave until today, covering its date): inpatients are seen
every day; or the change is to an as-needed medication; or the order was recorded from another
source (``reportedBoolean``/``reportedReference``: another health system's prescriber, whose
visits are not in this record).

**Then** an ``info`` card: schedule a visit, and consider seeing the patient more often rather
than changing the regimen again. ``concerns_draft`` when the draft is itself a change. Override
reasons in ``cards/wording/visits-lag-changes.yaml``.

**Thresholds** ``patterns.visits-lag-changes``: ``min_changes``, ``window_days``,
``max_gap_since_visit_days``, ``count_untyped_visits``, ``continuation_gap_days``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from cds_service.patterns.abstention import NotEvaluable, data_unavailable
from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import (
    daily_dose_label,
    dose_text,
    months,
    one_line_per_drug,
    ordered_evidence,
    unique_refs,
)
from cds_service.patterns.timeline import (
    RegimenEvent,
    dated_drafts,
    regimen_events,
    taken_courses,
)
from fhir_mappers.record import (
    COMPLETED_VISIT_STATUSES,
    CURRENT_VISIT_STATUSES,
    DraftOrders,
    PatientRecord,
    Visit,
)

PATTERN_ID = "visits-lag-changes"
# Visits and orders: a visit missing from partial data reads as no visit, and an order missing
# from it can make a continuing agent read as a new one.
_READS_ABSENCE_OF = ("Encounter", "MedicationRequest")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Values come from ``config/default.yaml`` (no defaults here: one source of numbers)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_changes: int
    window_days: int
    max_gap_since_visit_days: int
    count_untyped_visits: bool
    continuation_gap_days: int

    def windows_days(self) -> tuple[int, ...]:
        """The look-back windows this pattern reads, nested (their sum is its reach)."""
        return (self.window_days, self.max_gap_since_visit_days)

    def visit_windows_days(self) -> tuple[int, ...]:
        """The windows over which this pattern reads visits (Encounters), nested; () when it
        reads none. Visits counted in the window, and stays that hold a change; the last visit
        before a change may be older (the mapper keeps the latest review visits before any
        horizon)."""
        return (self.window_days, self.max_gap_since_visit_days)


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | NotEvaluable | None:
    """Visits lagging changes as of ``now`` (dates in days); None when it is not there,
    ``NotEvaluable`` when encounters of unreadable class could be the visits it finds missing."""
    since = now - timedelta(days=thresholds.window_days)
    courses = [c for c in [*taken_courses(record), *dated_drafts(drafts, now)] if not c.is_prn]
    gap = thresholds.continuation_gap_days
    changes = [
        e
        for e in regimen_events(courses, now, continuation_gap_days=gap, since=since)
        if since <= e.when <= now and not _excluded(e, record.visits, now)
    ]
    visit_days = review_days(record, thresholds, now)
    in_window = [d for d in visit_days if d >= since]
    trigger = _included(changes, in_window, visit_days, thresholds)
    if trigger is None:
        return None
    during = _maybe_in_hospital(changes, record.visits, visit_days, now)
    if during and _included(
        [c for c in changes if c not in during], in_window, visit_days, thresholds
    ) is None:
        return NotEvaluable(
            PATTERN_ID,
            reason=f"{len(during)} change(s) may have been made during a hospital stay whose end "
            "is not recorded: changes in hospital are not ones outpatient visits should follow",
            references=tuple(c.course.ref for c in during),
        )
    # Fewer visits than changes is read from the visits on record, and the changes from every
    # order: both must have arrived in full.
    unavailable = data_unavailable(PATTERN_ID, record.incomplete, _READS_ABSENCE_OF)
    if unavailable is not None:
        return unavailable
    unread = _unread_visits(record, thresholds, since, now)
    if unread:
        maybe = sorted(set(visit_days) | {day for _, day in unread})
        if _included(changes, [d for d in maybe if d >= since], maybe, thresholds) is None:
            return NotEvaluable(
                PATTERN_ID,
                reason=_unread_reason(unread),
                references=tuple(v.ref for v, _ in unread),
            )
    last_visit = visit_days[-1] if visit_days else None
    gaps = [_days_since_visit(visit_days, c.when) for c in changes]
    facts: dict[str, object] = {
        "change_count": len(changes),
        "visit_count": len(in_window),
        "window_months": months(thresholds.window_days),
        "days_since_last_visit": (now - last_visit).days if last_visit else None,
        "min_changes": thresholds.min_changes,
        "trigger": trigger,
        "last_visit": last_visit.isoformat() if last_visit else None,
        # The longest time from a change back to the visit before it (None: a change with no
        # visit before it): what a "visit_gap" card names as its reason.
        "longest_gap_days": None if None in gaps else max(g for g in gaps if g is not None),
    }
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(
            one_line_per_drug((e.ingredient.name, _evidence_item(e)) for e in changes)
        ),
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
        or gap > thresholds.max_gap_since_visit_days
        for c in changes
    )
    if fewer_visits and visit_gap:
        return "both"
    if fewer_visits:
        return "fewer_visits"
    return "visit_gap" if visit_gap else None


def is_review_visit(visit: Visit, thresholds: Thresholds) -> bool:
    """A completed visit where a prescriber could review the regimen (the mapper's class and
    type reading, config/codes.yaml): an outpatient one whose type says so, or says neither
    when ``count_untyped_visits``; one of unknown class only when its type says so."""
    return visit.status in COMPLETED_VISIT_STATUSES and visit.may_be_review(
        count_untyped=thresholds.count_untyped_visits
    )


def review_days(record: PatientRecord, thresholds: Thresholds, now: date) -> list[date]:
    """Days of review visits up to today, sorted; today too when a visit that may be a review
    is happening now (``_seen_now``)."""
    days = {
        day
        for v in record.visits
        if is_review_visit(v, thresholds) and (day := _visit_day(v)) is not None and day <= now
    }
    if _seen_now(record, thresholds, now):
        days.add(now)
    return sorted(days)


def _seen_now(record: PatientRecord, thresholds: Thresholds, now: date) -> bool:
    """A visit is happening now that may be a review: an open encounter that began today or
    the hook's own (``Visit.is_happening``) that would count by its class and type, or whose
    class and type are both unknown; or the hook's ``context.encounterId`` when it is not on
    record (its kind is unknown). An open emergency visit or lab draw is not one, nor is an
    encounter left open since an earlier day."""
    if record.current_encounter is not None and not any(v.is_current for v in record.visits):
        return True
    return any(
        v.is_happening(now)
        and (
            v.may_be_review(count_untyped=thresholds.count_untyped_visits)
            or (v.kind == "unknown" and v.prescriber_visit is None)
        )
        for v in record.visits
    )


def _unread_visits(
    record: PatientRecord, thresholds: Thresholds, since: date, now: date
) -> list[tuple[Visit, date]]:
    """Encounters that might be review visits the data do not show as such, on days that could
    change the finding (from ``max_gap_since_visit_days`` before the window up to today):
    completed ones of unreadable class whose type says neither way, at a site that counts
    untyped visits (had their class been read, they might be review visits); and ones whose
    status does not say whether they took place (``Visit.status_unknown``, or left open since an
    earlier day: arrived or in progress, never closed) but whose class and type make them review
    visits if they did."""
    earliest = since - timedelta(days=thresholds.max_gap_since_visit_days)
    count_untyped = thresholds.count_untyped_visits
    return [
        (v, day)
        for v in record.visits
        if (
            (
                count_untyped
                and v.kind == "unknown"
                and v.prescriber_visit is None
                and v.status in COMPLETED_VISIT_STATUSES
            )
            or (_uncertain(v, now) and v.may_be_review(count_untyped=count_untyped))
        )
        and (day := _visit_day(v)) is not None
        and earliest <= day <= now
    ]


def _uncertain(visit: Visit, now: date) -> bool:
    """Whether the encounter's status leaves open if it took place: not known, or open (arrived,
    in progress) since a day before ``now`` and not the visit happening today."""
    if visit.status_unknown:
        return True
    return (
        visit.status in CURRENT_VISIT_STATUSES
        and not visit.is_happening(now)
        and (day := _visit_day(visit)) is not None
        and day < now
    )


def _unread_reason(unread: list[tuple[Visit, date]]) -> str:
    unknown_status = sum(1 for v, _ in unread if v.status not in COMPLETED_VISIT_STATUSES)
    parts = []
    if len(unread) > unknown_status:
        parts.append(
            f"{len(unread) - unknown_status} completed encounter(s) of unreadable class whose "
            "type does not say whether a prescriber was seen"
        )
    if unknown_status:
        parts.append(
            f"{unknown_status} encounter(s) that would be review visits but whose status does "
            "not say whether they took place (unknown, or left open since an earlier day)"
        )
    return " and ".join(parts) + " could be the missing review visits"


def _excluded(change: RegimenEvent, visits: tuple[Visit, ...], now: date) -> bool:
    """A change recorded from another source (``MedicationCourse.reported``: an outside
    prescriber's order, whose visits this record cannot show), or made while the patient was in
    hospital."""
    if change.course.reported:
        return True
    for visit in visits:
        if not visit.is_stay:
            continue
        start = visit.start
        # A stay going on (in progress, on leave) runs to today; one that ended without an end
        # date counts its first day (``_maybe_in_hospital`` says what may follow).
        end = visit.end or (now if visit.is_ongoing else visit.start)
        if start is not None and end is not None and start <= change.when <= end:
            return True
    return False


def _maybe_in_hospital(
    changes: list[RegimenEvent], visits: tuple[Visit, ...], visit_days: list[date], now: date
) -> list[RegimenEvent]:
    """Changes that may have been made during a finished inpatient stay whose end is not
    recorded: after its start and before the first review visit after it (by then the patient
    was out), or today. ``_excluded`` reads such a stay as its first day only; what came after
    is unknown, not outpatient."""
    open_ended = [v.start for v in visits if v.ended_without_end and v.start is not None]
    maybe = []
    for change in changes:
        for start in open_ended:
            out_by = next((d for d in visit_days if d > start), now)
            if start < change.when <= out_by:
                maybe.append(change)
                break
    return maybe


def _visit_day(visit: Visit) -> date | None:
    return visit.start or visit.end


def _days_since_visit(visit_days: list[date], when: date) -> int | None:
    """Days from the last completed outpatient visit on or before ``when``; None if none."""
    earlier = [d for d in visit_days if d <= when]
    return (when - earlier[-1]).days if earlier else None


def _key(change: RegimenEvent) -> str:
    prefix = "stop" if change.kind == "stop" else "change"
    return f"{prefix}:{change.course.ref}:{change.ingredient.name}"


def _evidence_item(change: RegimenEvent) -> EvidenceItem:
    if change.kind in ("dose_increase", "dose_decrease"):
        direction = "up" if change.kind == "dose_increase" else "down"
        note = f"dose {direction} from {dose_text(change.previous_dose)} mg/day"
    elif change.kind == "restart":
        note = f"restarted after {months(change.gap_days or 0)} months"
    else:
        note = "started" if change.kind == "start" else "stopped"
    if change.course.is_draft:
        note += ", draft order"  # the card adds the date in brackets
    dose = None if change.kind == "stop" else change.dose
    schedule = None if change.kind == "stop" else change.course.schedule
    label = daily_dose_label(change.ingredient.name, dose, schedule)
    return EvidenceItem(change.course.ref, label, change.when, note)
