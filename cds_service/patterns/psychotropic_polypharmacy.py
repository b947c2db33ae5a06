"""psychotropic-polypharmacy: several antipsychotics (or many psychotropics) planned together.

Definition: antipsychotic polypharmacy is >= 2 antipsychotics taken concurrently for >= 90
consecutive days: HEDIS APC, "Use of Multiple Concurrent Antipsychotics in Children &
Adolescents", a measure for ages 1-17 (https://www.medicaid.gov/state-overviews/scorecard/
use-multiple-antipsychotics-children/index.html), asked here of adults as well. Joint Commission
HBIPS-5 (https://manual.jointcommission.org/releases/TJC2023A1/MIF0120.html) counts routinely
scheduled antipsychotics only and accepts clozapine augmentation and a planned cross-taper as
justification. The psychotropic-load count (5 standing psychotropics at any age) is a LOCAL CHOICE:
no measure supports it (PQA Poly-CNS concerns adults >= 65 on >= 3 CNS-active drugs for >= 30
days). Lithium is a mood stabilizer (ATC N05AN) and never counts as an antipsychotic.

**When** a set of standing agents (today's regimen plus the draft orders) is planned to overlap for
at least ``min_overlap_days``: at least ``min_concurrent_antipsychotics`` distinct antipsychotic
ingredients, or at least ``min_concurrent_psychotropics`` distinct psychotropic ingredients. An
agent runs from its start to its planned end (dosage bounds, effective period); an order without
a planned end is taken to continue, so two open-ended antipsychotics overlap without limit. A
draft of an ingredient already in the regimen replaces it (a dose change), not an extra agent.

**Unless** an agent is taken as needed (PRN: never counted); its latest order is on hold
(``on-hold``, or re-sent on hold among the drafts: the prescriber paused it, so it is not taken
with the others, and nothing shows the two planned together); an active order has had no renewal,
fill or statement of its ingredient for more than ``stale_order_days`` (not current); the overlap
is shorter than ``min_overlap_days`` (a documented cross-taper: one order with a planned end); or
the antipsychotics are one of ``augmentation_exempt_ingredients`` plus one other (clozapine
augmentation; the psychotropic count still applies); or the history shows
``min_failed_monotherapies_justifying`` antipsychotics each tried and stopped for lack of effect
(HBIPS-5's failed monotherapies): a trial is standing use (not as needed) for at least
``failed_monotherapy_min_days`` (TRRIP's 6 weeks), courses at most ``continuation_gap_days``
apart being one trial.

**Then** an ``info`` card: review with the patient whether each agent still helps, and consider a
consultation (complex regimens may answer the prescriber's distress as much as the patient's:
Mintz, "Psychodynamic Psychopharmacology: Addressing the Underlying Causes of Treatment
Resistance", Psychiatric Times 2011). ``concerns_draft`` when a draft adds a counted ingredient.
Override reasons in ``cards/wording/psychotropic-polypharmacy.yaml`` (e.g. planned cross-taper).

**Thresholds** ``patterns.psychotropic-polypharmacy``: ``min_concurrent_antipsychotics``,
``min_overlap_days``, ``min_concurrent_psychotropics``, ``stale_order_days``,
``augmentation_exempt_ingredients``, ``min_failed_monotherapies_justifying``,
``failed_monotherapy_min_days``, ``continuation_gap_days``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import (
    MAX_EVIDENCE_ITEMS,
    daily_dose_label,
    ordered_evidence,
    unique_refs,
)
from cds_service.patterns.regimen import is_held, standing_regimen
from cds_service.patterns.timeline import (
    dated_drafts,
    episodes,
    psychotropic_names,
    single_dose,
    taken_courses,
)
from fhir_mappers.record import DraftOrders, Ingredient, MedicationCourse, PatientRecord

PATTERN_ID = "psychotropic-polypharmacy"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Values come from ``config/default.yaml`` (no defaults here: one source of numbers)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_concurrent_antipsychotics: int
    min_overlap_days: int
    min_concurrent_psychotropics: int
    stale_order_days: int
    augmentation_exempt_ingredients: tuple[str, ...]
    # HBIPS-5: a history of this many antipsychotics each stopped for lack of effect justifies
    # two antipsychotics (0: never).
    min_failed_monotherapies_justifying: int
    # A failed monotherapy is standing use for at least this many days (TRRIP: 6 weeks).
    failed_monotherapy_min_days: int
    # Courses of one ingredient at most this many days apart are one trial.
    continuation_gap_days: int

    def windows_days(self) -> tuple[int, ...]:
        """The look-back windows this pattern reads, nested (their sum is its reach)."""
        return (self.stale_order_days,)

    def visit_windows_days(self) -> tuple[int, ...]:
        """The windows over which this pattern reads visits (Encounters), nested; () when it
        reads none. It reads no visits."""
        return ()


@dataclass(frozen=True, slots=True)
class _Agent:
    ingredient: Ingredient
    course: MedicationCourse  # the draft when one replaces or adds it, else the latest course
    start: date
    planned_end: date | None  # None: no planned end, taken to continue


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    """Polypharmacy as of ``now`` (dates in days); None when it is not there."""
    current = _not_held(standing_regimen(record, now, thresholds.stale_order_days))
    ordered = [d for d in dated_drafts(drafts, now) if not _excluded(d)]
    agents = _agents([*current, *ordered], now)
    antipsychotics = _overlapping(
        [a for a in agents.values() if a.ingredient.drug_class == "antipsychotic"],
        thresholds.min_overlap_days,
    )
    psychotropics = _overlapping(list(agents.values()), thresholds.min_overlap_days)
    may_be_justified = (
        len(antipsychotics) >= thresholds.min_concurrent_antipsychotics
        and thresholds.min_failed_monotherapies_justifying > 0
    )
    failed = _failed_antipsychotics(record, now, thresholds) if may_be_justified else 0
    trigger = _included(psychotropics, antipsychotics, thresholds, failed)
    if trigger is None:
        return None
    counted = antipsychotics if trigger == "antipsychotics" else psychotropics
    in_regimen = set(psychotropic_names(current))
    added_by_draft = [n for n in psychotropic_names(ordered) if n not in in_regimen]
    facts: dict[str, object] = {
        "psychotropic_count": len(psychotropics),
        "antipsychotic_count": len(antipsychotics),
        "psychotropics": [a.ingredient.name for a in psychotropics],
        "antipsychotics": [a.ingredient.name for a in antipsychotics],
        "min_concurrent_psychotropics": thresholds.min_concurrent_psychotropics,
        "min_concurrent_antipsychotics": thresholds.min_concurrent_antipsychotics,
        "trigger": trigger,
        "draft_ingredients": psychotropic_names(drafts),
        "added_by_draft": added_by_draft,
        "in_apc_age_range": _in_apc_age_range(record.birth_date, now),
    }
    names = {a.ingredient.name for a in counted}
    evidence = _antipsychotics_kept(counted)
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=evidence,
        evidence_left_out=len(counted) - len(evidence),
        facts=facts,
        evidence_keys=frozenset(f"agent:{n}" for n in names),
        concerns_draft=any(n in names for n in added_by_draft),
        references=unique_refs(a.course.ref for a in counted),
    )


def _failed_antipsychotics(record: PatientRecord, now: date, thresholds: Thresholds) -> int:
    """How many antipsychotics the history shows tried and stopped for lack of effect:
    HBIPS-5's failed monotherapies. A trial is an episode of standing use (as-needed orders left
    out; courses at most ``continuation_gap_days`` apart are one episode) that has ended by
    ``now``, lasted at least ``failed_monotherapy_min_days`` from its first to its last day (both
    counted; TRRIP's adequate trial is >= 6 weeks), and whose last course has a dated end and a
    stop reason coded or worded as no response. An as-needed order, or a day's course stopped as
    "not working", was no trial. PHQ-9 says nothing about an antipsychotic's effect (TRRIP), and
    a stop for intolerance is no failure of effect, so neither counts."""
    standing = [c for c in taken_courses(record) if not c.is_prn]
    failed = {
        episode.ingredient.name
        for episode in episodes(
            standing, now, continuation_gap_days=thresholds.continuation_gap_days
        )
        if episode.ingredient.drug_class == "antipsychotic"
        and not episode.is_open
        and episode.ending_course.stop_reason == "lack_of_effect"
        and episode.ending_course.end is not None
        and episode.ending_course.end <= now
        and (episode.last_day - episode.start).days + 1 >= thresholds.failed_monotherapy_min_days
    }
    return len(failed)


def _not_held(regimen: list[MedicationCourse]) -> list[MedicationCourse]:
    """Today's regimen without what is on hold: an order on hold (``is_held``; one the ordering
    session re-sends on hold is put on hold by ``draft_plan.planned_record`` before any pattern
    reads the record), and every course of an ingredient whose latest order is so held (an
    older order or a statement of it does not bring it back: the prescriber's latest decision
    is the pause). A held drug is not being
    taken with the others. (Nonadherence reads a hold as the prescriber's decision too.)"""
    orders = sorted(
        (c for c in regimen if c.source_type == "MedicationRequest"),
        key=lambda c: (c.start or date.min, c.ref),
    )
    latest = {i.name: c for c in orders for i in c.psychotropic_ingredients}  # the last wins
    paused = {name for name, course in latest.items() if is_held(course)}
    return [
        c
        for c in regimen
        if not is_held(c)
        and not (c.psychotropic_ingredients and paused >= set(psychotropic_names([c])))
    ]


# HEDIS APC counts children and adolescents aged 1 to 17 (NCQA): its own population, where the
# card cites the measure as it is, not as a local choice.
_APC_AGES = range(1, 18)


def _in_apc_age_range(birth_date: date | None, now: date) -> bool:
    if birth_date is None:
        return False  # unknown age: the card does not claim the measure's population
    age = now.year - birth_date.year - ((now.month, now.day) < (birth_date.month, birth_date.day))
    return age in _APC_AGES


def _included(
    psychotropics: list[_Agent],
    antipsychotics: list[_Agent],
    thresholds: Thresholds,
    failed_antipsychotics: int,
) -> str | None:
    """Which threshold the regimen meets: "antipsychotics", "psychotropics", "both" or None.
    Two antipsychotics are justified (HBIPS-5) by clozapine augmentation or by a history of
    ``min_failed_monotherapies_justifying`` antipsychotics stopped for lack of effect."""
    names = [a.ingredient.name for a in antipsychotics]
    justified = (
        0 < thresholds.min_failed_monotherapies_justifying <= failed_antipsychotics
    ) or (len(names) == 2 and any(n in thresholds.augmentation_exempt_ingredients for n in names))
    by_antipsychotics = len(names) >= thresholds.min_concurrent_antipsychotics and not justified
    by_psychotropics = len(psychotropics) >= thresholds.min_concurrent_psychotropics
    if by_antipsychotics and by_psychotropics:
        return "both"
    if by_antipsychotics:
        return "antipsychotics"
    return "psychotropics" if by_psychotropics else None


def _excluded(course: MedicationCourse) -> bool:
    """Drafts that add nothing to the standing regimen: as-needed, non-psychotropic, or on hold
    (an order re-sent on hold pauses it; ``_not_held``)."""
    return course.is_prn or not course.is_psychotropic or is_held(course)


def _agents(courses: list[MedicationCourse], now: date) -> dict[str, _Agent]:
    """One agent per psychotropic ingredient: its earliest start, its latest course (a draft
    last), and that course's planned end. A statement (a medication reconciliation) says the
    drug is taken, not how long the prescriber plans it: after an order of the ingredient, a
    statement without an end leaves the order's planned end in place."""
    ordered = sorted(courses, key=lambda c: (c.is_draft, c.start or date.min, c.ref))
    same_agent = _same_agent(ordered)
    agents: dict[str, _Agent] = {}
    for course in ordered:
        for ingredient in course.psychotropic_ingredients:
            name = same_agent.get(ingredient.name, ingredient.name)
            if name != ingredient.name and name in {
                i.name for i in course.psychotropic_ingredients
            }:
                continue  # the product's other component of the subgroup stands for it
            start = course.start or now
            earlier = agents.get(name)
            if earlier is not None:
                start = min(start, earlier.start)
                if (
                    course.source_type == "MedicationStatement"
                    and course.end is None
                    and earlier.course.source_type != "MedicationStatement"
                ):
                    agents[name] = replace(earlier, start=start)
                    continue
            agents[name] = _Agent(ingredient, course, start, course.end)
    return agents


def _same_agent(courses: list[MedicationCourse]) -> dict[str, str]:
    """Ingredient name -> the name that stands for its agent: ingredients given together in
    one product and of one chemical subgroup (ATC-4: amphetamine and dextroamphetamine in mixed
    amphetamine salts) are one agent, named by the first in alphabetical order; wherever else
    they are given, they are that agent too. Components of different subgroups
    (olanzapine/fluoxetine) stay two agents."""
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.get(name, name) != name:
            name = parent[name]
        return name

    for course in courses:
        by_group: dict[str, list[str]] = {}
        for ingredient in course.psychotropic_ingredients:
            by_group.setdefault(ingredient.atc4, []).append(ingredient.name)
        for names in by_group.values():
            roots = sorted({root(n) for n in names})
            for other in roots[1:]:
                parent[other] = roots[0]
    return {name: root(name) for name in parent}


def _overlapping(agents: list[_Agent], min_overlap_days: int) -> list[_Agent]:
    """The largest set of agents that all run together for ``min_overlap_days`` or more.

    A set's common span starts at its latest start; so for each start ``s``, the agents begun by
    ``s`` and planned to run at least ``min_overlap_days`` days from it, both days counted (a
    planned end is the last day taken, as a FHIR Period's end is inclusive), run together that
    long: a course planned for 90 days from today overlaps an open one for 90 days.
    """
    best: list[_Agent] = []
    span = timedelta(days=min_overlap_days - 1)
    for s in sorted({a.start for a in agents}):
        together = [
            a
            for a in agents
            if a.start <= s and (a.planned_end is None or a.planned_end - s >= span)
        ]
        if len(together) > len(best):
            best = together
    return best


def _antipsychotics_kept(counted: list[_Agent]) -> tuple[EvidenceItem, ...]:
    """One evidence line per counted drug, oldest first, at most ``MAX_EVIDENCE_ITEMS``: when
    there are more, the antipsychotics are kept (what the antipsychotic threshold counts must
    never be among the lines a long list leaves out) and the most recent others fill the rest.
    Every counted drug is listed when they fit; the caller counts the ones left out
    (``Finding.evidence_left_out``), which the card adds to its "and N more in the record"."""
    antipsychotics = ordered_evidence(
        _evidence_item(a) for a in counted if a.ingredient.drug_class == "antipsychotic"
    )
    others = ordered_evidence(
        _evidence_item(a) for a in counted if a.ingredient.drug_class != "antipsychotic"
    )
    room = MAX_EVIDENCE_ITEMS - len(antipsychotics)
    # The most recent ``room`` others: all of them when fewer (a negative start would drop the
    # oldest of a short list), none when the antipsychotics fill the list.
    kept = others[max(0, len(others) - room) :] if room > 0 else ()
    return ordered_evidence((*antipsychotics, *kept))


def _evidence_item(agent: _Agent) -> EvidenceItem:
    status = "draft order" if agent.course.is_draft else agent.ingredient.subclass
    until = f", planned until {agent.planned_end.isoformat()}" if agent.planned_end else ""
    return EvidenceItem(
        ref=agent.course.ref,
        label=daily_dose_label(
            agent.ingredient.name, single_dose(agent.course), agent.course.schedule
        ),
        when=agent.start,
        note=f"{status}{until}",
    )
