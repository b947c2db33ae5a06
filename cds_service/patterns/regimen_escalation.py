"""regimen-escalation: new agents and higher doses following each other quickly.

Definition: no standard measure exists; an escalation is a new standing psychotropic agent or a
daily-dose increase beyond the ingredient's labelled titration. The threshold (3 in 6 months) is a
LOCAL CHOICE (psychotropic-domain.md §6: "no standard; configurable"). The clinical reading is
Mintz's: nonresponse may call for more frequent appointments rather than a higher dose (D. Mintz,
"Psychodynamic Psychopharmacology: Addressing the Underlying Causes of Treatment Resistance",
Psychiatric Times, September 2011, https://www.austenriggs.org/resource/psychodynamic-
psychopharmacology-addressing-underlying-causes-treatment-resistance). Titration figures:
shared/reference/clinical-review.md (lamotrigine's label schedule, lithium to a serum level,
quetiapine 300 mg/day in bipolar depression), per ingredient in config/ingredients.csv.

**When** at least ``min_escalations`` escalations fall within the last ``window_days`` (the draft,
dated today, counts when it is one). A new agent is the first course of an ingredient, or a
restart after more than ``restart_as_new_after_days`` without it; a dose increase compares a
course's daily dose with the previous known dose of the same ingredient (courses at most
``continuation_gap_days`` apart are continuous use).

**Unless** the course is taken as needed (PRN additions are not the standing regimen); the new
agent replaces one of the same class stopped (or planned to stop) within ``switch_window_days``
of its start (a switch, not an added agent); or the increase stays within the ingredient's
labelled titration target for the patient's indications (``Ingredient.titration_target``;
indications from conditions matching ``indication_codes``; "level" = lithium, titrated to a
serum level), unless ``count_titration_steps`` is true. Active orders with no sign of use for
``stale_order_days`` do not continue an episode. Decreases, stops and same-dose renewals never
count.

**Then** an ``info`` card: before the next change, consider seeing the patient more often, and ask
what the patient and the prescriber hope the change will do. ``concerns_draft`` when the draft is
itself an escalation. Override reasons in ``cards/wording/regimen-escalation.yaml``.

**Thresholds** ``patterns.regimen-escalation``: ``min_escalations``, ``window_days``,
``restart_as_new_after_days``, ``switch_window_days``, ``continuation_gap_days``,
``count_titration_steps``, ``indication_codes``, ``stale_order_days``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import (
    daily_dose_label,
    dose_text,
    months,
    one_line_per_drug,
    ordered_evidence,
    unique_refs,
)
from cds_service.patterns.regimen import indications, is_stale, signs_of_life
from cds_service.patterns.timeline import (
    Episode,
    RegimenEvent,
    dated_drafts,
    episode_events,
    episodes,
    psychotropic_names,
    taken_courses,
)
from fhir_mappers.record import DraftOrders, MedicationCourse, PatientRecord

PATTERN_ID = "regimen-escalation"

EscalationKind = Literal["new_agent", "dose_increase"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Values come from ``config/default.yaml`` (no defaults here: one source of numbers)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_escalations: int
    window_days: int
    restart_as_new_after_days: int
    switch_window_days: int
    continuation_gap_days: int
    count_titration_steps: bool
    indication_codes: Mapping[str, tuple[str, ...]]
    stale_order_days: int

    def windows_days(self) -> tuple[int, ...]:
        """The look-back windows this pattern reads, nested (their sum is its reach)."""
        return (self.window_days, self.restart_as_new_after_days)

    def visit_windows_days(self) -> tuple[int, ...]:
        """The windows over which this pattern reads visits (Encounters), nested; () when it
        reads none. It reads no visits."""
        return ()


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    """Escalation as of ``now`` (dates in days); None when it is not there."""
    since = now - timedelta(days=thresholds.window_days)
    signs = signs_of_life(record)
    courses = [
        c
        for c in [*taken_courses(record), *dated_drafts(drafts, now)]
        if not c.is_prn and not is_stale(c, record, now, thresholds.stale_order_days, signs)
    ]
    gap = thresholds.continuation_gap_days
    all_episodes = episodes(courses, now, continuation_gap_days=gap)
    treated_for = indications(record, thresholds.indication_codes)
    escalations: list[tuple[RegimenEvent, EscalationKind]] = []
    titration_steps = switches = 0
    for event in episode_events(all_episodes, now, since=since):
        kind = _escalation_kind(event, thresholds) if since <= event.when <= now else None
        if kind is None:
            continue
        if kind == "new_agent" and _is_switch(event, all_episodes, thresholds, now):
            switches += 1
            continue
        if _excluded(event, kind, thresholds, treated_for):
            titration_steps += 1
            continue
        escalations.append((event, kind))
    if not _included(escalations, thresholds):
        return None
    facts: dict[str, object] = {
        "escalation_count": len(escalations),
        "window_months": months(thresholds.window_days),
        "min_escalations": thresholds.min_escalations,
        "new_agents": list(
            dict.fromkeys(e.ingredient.name for e, k in escalations if k == "new_agent")
        ),
        "dose_increases": [_increase_text(e) for e, k in escalations if k == "dose_increase"],
        "draft_ingredients": psychotropic_names(drafts),
        "titration_steps_not_counted": titration_steps,
        "switches_not_counted": switches,
    }
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(
            one_line_per_drug((e.ingredient.name, _evidence_item(e, k)) for e, k in escalations)
        ),
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


def _excluded(
    event: RegimenEvent,
    kind: EscalationKind,
    thresholds: Thresholds,
    treated_for: frozenset[str],
) -> bool:
    """A dose increase that stays within the ingredient's labelled titration."""
    if thresholds.count_titration_steps or kind != "dose_increase" or event.dose is None:
        return False
    target = event.ingredient.titration_target(treated_for)
    return target is not None and event.dose <= target


def _escalation_kind(event: RegimenEvent, thresholds: Thresholds) -> EscalationKind | None:
    if event.kind == "start":
        return "new_agent"
    if event.kind == "restart" and (event.gap_days or 0) > thresholds.restart_as_new_after_days:
        return "new_agent"
    if event.kind in ("restart", "dose_increase") and _is_higher(event):
        return "dose_increase"
    return None


def _is_switch(
    event: RegimenEvent, all_episodes: Sequence[Episode], thresholds: Thresholds, now: date
) -> bool:
    """Another agent of the same class ended (or is planned to end) near this start."""
    for other in all_episodes:
        if (
            other.ingredient.name == event.ingredient.name
            or other.ingredient.drug_class != event.ingredient.drug_class
            or other.start >= event.when
        ):
            continue
        end = _end_of(other, all_episodes, now)
        if end is not None and abs((end - event.when).days) <= thresholds.switch_window_days:
            return True
    return False


def _end_of(episode: Episode, all_episodes: Sequence[Episode], now: date) -> date | None:
    """When the episode ended or is planned to end; None while it runs without a planned end.

    A stop without a date (common in R4 exports) is placed at the next start of its class."""
    planned = episode.ending_course.end
    if planned is not None:
        return planned
    if episode.is_open:
        return None
    later = [
        o.start
        for o in all_episodes
        if o.ingredient.drug_class == episode.ingredient.drug_class
        and o.ingredient.name != episode.ingredient.name
        and o.start > episode.last_day
    ]
    return min(later, default=episode.last_day)


def _is_higher(event: RegimenEvent) -> bool:
    return (
        event.dose is not None
        and event.previous_dose is not None
        and event.dose > event.previous_dose
    )


def _increase_text(event: RegimenEvent) -> str:
    before, after = dose_text(event.previous_dose), dose_text(event.dose)
    return f"{event.ingredient.name} from {before} to {after} mg/day"


def _evidence_item(event: RegimenEvent, kind: EscalationKind) -> EvidenceItem:
    course: MedicationCourse = event.course
    if kind == "dose_increase":
        note = f"up from {dose_text(event.previous_dose)} mg/day"
    elif event.kind == "restart":
        note = f"restarted after {months(event.gap_days or 0)} months"
    else:
        note = "new agent"
    if course.is_draft:
        note += " (draft order)"
    return EvidenceItem(
        ref=course.ref,
        label=daily_dose_label(event.ingredient.name, event.dose),
        when=event.when,
        note=note,
    )
