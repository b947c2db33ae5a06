"""regimen-escalation: new agents and higher doses following each other quickly.

Definition: at least 3 escalations within 180 days, where an escalation is a new psychotropic
ingredient started or a daily-dose increase of an ingredient compared with its previous course. No
standard measure exists (psychotropic-domain.md §6, "escalation: >= 3 dose increases/additions in
180 days, configurable"); the clinical reading is Mintz's: nonresponse may call for more frequent
appointments rather than a higher dose (Psychodynamic Psychopharmacology, APA Publishing 2022).

**When** at least ``min_escalations`` escalations fall within the last ``window_days`` (the draft,
dated today, counts when it is one). A new agent is the first course of an ingredient, or a restart
after the ingredient was not taken for more than ``window_days``: an agent taken within the window
before is familiar, so its restart is not new (it counts only if its dose is higher than before).
A dose increase compares a course's daily dose with the previous course of the same ingredient,
both known; a restart at a higher dose than before is also a dose increase.

**Unless** the increase only brings the ingredient up to its minimum effective dose
(``Ingredient.min_effective_mg_per_day``): that is titration towards a usual dose, not escalation
(a site that wants every increase counted sets ``count_titration_to_min_dose: true``). Dose
decreases, stops and renewals at the same dose never count.

**Then** an ``info`` card: before the next change, consider seeing the patient more often, and ask
what the patient and the prescriber hope the change will do. ``concerns_draft`` when the draft is
itself an escalation. Override reasons live in ``cards/wording/regimen-escalation.yaml``.

**Thresholds** ``patterns.regimen-escalation``: ``min_escalations``, ``window_days``,
``count_titration_to_min_dose``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import dose_text, ordered_evidence, unique_refs
from cds_service.patterns.timeline import (
    RegimenEvent,
    dated_drafts,
    psychotropic_names,
    regimen_events,
    taken_courses,
)
from fhir_mappers.record import DraftOrders, PatientRecord

PATTERN_ID = "regimen-escalation"

EscalationKind = Literal["new_agent", "dose_increase"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_escalations: int = 3
    window_days: int = 180
    count_titration_to_min_dose: bool = False


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    since = now - timedelta(days=thresholds.window_days)
    courses = [*taken_courses(record), *dated_drafts(drafts, now)]
    escalations: list[tuple[RegimenEvent, EscalationKind]] = []
    titration_steps = 0
    for event in regimen_events(courses, now):
        kind = _escalation_kind(event, thresholds) if since <= event.when <= now else None
        if kind is None:
            continue
        if _excluded(event, kind, thresholds):
            titration_steps += 1
            continue
        escalations.append((event, kind))
    if not _included(escalations, thresholds):
        return None
    facts: dict[str, object] = {
        "escalation_count": len(escalations),
        "window_days": thresholds.window_days,
        "min_escalations": thresholds.min_escalations,
        "new_agents": list(
            dict.fromkeys(e.ingredient.name for e, k in escalations if k == "new_agent")
        ),
        "dose_increases": [_increase_text(e) for e, k in escalations if k == "dose_increase"],
        "draft_ingredients": psychotropic_names(drafts),
        "titration_steps_not_counted": titration_steps,
    }
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(_evidence_item(e, k) for e, k in escalations),
        facts=facts,
        evidence_keys=frozenset(f"escalation:{e.course.ref}" for e, _ in escalations),
        concerns_draft=any(e.course.is_draft for e, _ in escalations),
        references=unique_refs(e.course.ref for e, _ in escalations),
    )


def _included(
    escalations: list[tuple[RegimenEvent, EscalationKind]], thresholds: Thresholds
) -> bool:
    """Enough escalations in the window."""
    return len(escalations) >= thresholds.min_escalations


def _excluded(event: RegimenEvent, kind: EscalationKind, thresholds: Thresholds) -> bool:
    """A dose increase that stays within the titration to the minimum effective dose."""
    floor = event.ingredient.min_effective_mg_per_day
    return (
        not thresholds.count_titration_to_min_dose
        and kind == "dose_increase"
        and floor is not None
        and event.dose is not None
        and event.dose <= floor
    )


def _escalation_kind(event: RegimenEvent, thresholds: Thresholds) -> EscalationKind | None:
    if event.kind == "start":
        return "new_agent"
    if event.kind == "restart" and (event.gap_days or 0) > thresholds.window_days:
        return "new_agent"
    if event.kind in ("restart", "dose_increase") and _is_higher(event):
        return "dose_increase"
    return None


def _is_higher(event: RegimenEvent) -> bool:
    return (
        event.dose is not None
        and event.previous_dose is not None
        and event.dose > event.previous_dose
    )


def _increase_text(event: RegimenEvent) -> str:
    before, after = dose_text(event.previous_dose), dose_text(event.dose)
    return f"{event.ingredient.name} {before} -> {after} mg/day"


def _evidence_item(event: RegimenEvent, kind: EscalationKind) -> EvidenceItem:
    if kind == "dose_increase":
        note = f"dose {dose_text(event.previous_dose)} -> {dose_text(event.dose)} mg/day"
    elif event.kind == "restart":
        note = f"restarted after {event.gap_days} days"
    else:
        note = "new agent"
    if event.course.is_draft:
        note += " (draft order)"
    return EvidenceItem(
        ref=event.course.ref, label=event.course.display, when=event.when, note=note
    )
