"""psychotropic-polypharmacy: a regimen that has grown to several concurrent psychotropics.

Definition: at least 2 distinct antipsychotic ingredients at once (antipsychotic polypharmacy:
HEDIS APC, Joint Commission HBIPS-5), or at least 5 distinct psychotropic ingredients at once
(psychotropic load; PQA Poly-CNS and Beers CNS polypharmacy use 3 CNS-active drugs in older adults).
Sources in psychotropic-domain.md §2.3. Lithium is a mood stabilizer (ATC N05AN) and never counts
as an antipsychotic.

**When** today's regimen plus the draft orders hold at least ``min_concurrent_antipsychotics``
distinct antipsychotic ingredients, or at least ``min_concurrent_psychotropics`` distinct
psychotropic ingredients. Today's regimen = orders that are active or on hold, and statements that
are active, that started by today and have not ended. A draft of an ingredient already in the
regimen replaces it (a dose change) and is not an extra agent.

**Unless** a course is taken as needed (PRN): HBIPS-5 counts routinely scheduled agents only, and
a PRN hypnotic or anxiolytic is not part of the standing regimen. The antipsychotic threshold is
not met by clozapine plus one other antipsychotic (clozapine augmentation, which HBIPS-5 lists as
an appropriate justification); the psychotropic count still applies.

**Then** an ``info`` card: review with the patient whether each agent still helps, and consider a
consultation (complex regimens may answer the prescriber's distress as much as the patient's).
``concerns_draft`` when a draft adds an ingredient that is counted. Override reasons live in
``cards/wording/psychotropic-polypharmacy.yaml`` (e.g. planned cross-taper).

**Thresholds** ``patterns.psychotropic-polypharmacy``: ``min_concurrent_antipsychotics``,
``min_concurrent_psychotropics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import ordered_evidence, unique_refs
from cds_service.patterns.timeline import (
    dated_drafts,
    is_current,
    psychotropic_names,
    taken_courses,
)
from fhir_mappers.record import DraftOrders, Ingredient, MedicationCourse, PatientRecord

PATTERN_ID = "psychotropic-polypharmacy"

_CLOZAPINE = "clozapine"


@dataclass(frozen=True, slots=True)
class Thresholds:
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_concurrent_antipsychotics: int = 2
    min_concurrent_psychotropics: int = 5


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    current = [c for c in taken_courses(record) if is_current(c, now) and not _excluded(c)]
    ordered = [d for d in dated_drafts(drafts, now) if not _excluded(d)]
    agents = _agents([*current, *ordered])
    antipsychotics = [n for n, (i, _) in agents.items() if i.drug_class == "antipsychotic"]
    trigger = _included(list(agents), antipsychotics, thresholds)
    if trigger is None:
        return None
    counted = antipsychotics if trigger == "antipsychotics" else list(agents)
    in_regimen = set(psychotropic_names(current))
    added_by_draft = [n for n in psychotropic_names(ordered) if n not in in_regimen]
    facts: dict[str, object] = {
        "psychotropic_count": len(agents),
        "antipsychotic_count": len(antipsychotics),
        "psychotropics": list(agents),
        "antipsychotics": antipsychotics,
        "min_concurrent_psychotropics": thresholds.min_concurrent_psychotropics,
        "min_concurrent_antipsychotics": thresholds.min_concurrent_antipsychotics,
        "trigger": trigger,
        "draft_ingredients": psychotropic_names(drafts),
        "added_by_draft": added_by_draft,
    }
    shown = [_evidence_item(agents[n]) for n in counted]
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(shown),
        facts=facts,
        evidence_keys=frozenset(f"agent:{n}" for n in counted),
        concerns_draft=any(n in counted for n in added_by_draft),
        indicator="info",
        references=unique_refs(c.ref for n in counted for c in agents[n][1]),
    )


def _included(
    psychotropics: list[str], antipsychotics: list[str], thresholds: Thresholds
) -> str | None:
    """Which threshold the regimen meets: "antipsychotics", "psychotropics", "both" or None."""
    by_antipsychotics = len(antipsychotics) >= thresholds.min_concurrent_antipsychotics and not (
        _is_clozapine_augmentation(antipsychotics)
    )
    by_psychotropics = len(psychotropics) >= thresholds.min_concurrent_psychotropics
    if by_antipsychotics and by_psychotropics:
        return "both"
    if by_antipsychotics:
        return "antipsychotics"
    return "psychotropics" if by_psychotropics else None


def _excluded(course: MedicationCourse) -> bool:
    """Courses that are not part of the standing regimen."""
    return course.is_prn or not course.is_psychotropic


def _is_clozapine_augmentation(antipsychotics: list[str]) -> bool:
    return len(antipsychotics) == 2 and _CLOZAPINE in antipsychotics


def _agents(
    courses: list[MedicationCourse],
) -> dict[str, tuple[Ingredient, list[MedicationCourse]]]:
    """Distinct psychotropic ingredients, each with its courses (drafts last), by first start."""
    ordered = sorted(courses, key=lambda c: (c.is_draft, c.start or date.min, c.ref))
    agents: dict[str, tuple[Ingredient, list[MedicationCourse]]] = {}
    for course in ordered:
        for ingredient in course.psychotropic_ingredients:
            agents.setdefault(ingredient.name, (ingredient, []))[1].append(course)
    return agents


def _evidence_item(agent: tuple[Ingredient, list[MedicationCourse]]) -> EvidenceItem:
    ingredient, courses = agent
    course = courses[-1]  # the draft when one replaces or adds it, else the latest course
    status = "draft order" if course.is_draft else "current"
    return EvidenceItem(
        ref=course.ref,
        label=course.display,
        when=course.start,
        note=f"{ingredient.subclass}, {status}",
    )
