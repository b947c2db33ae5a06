"""repeated-intolerance: side effects with several unrelated psychotropic medications.

Definition: intolerance to at least 3 psychotropic ingredients from at least 2 ATC level-4 groups
within 24 months. Source: multiple drug intolerance syndrome, >= 3 unrelated drug classes (Macy &
Ho, Ann Allergy Asthma Immunol 2012;108:88; Omer et al., Drug Saf 2014;37:1037), adapted to
psychotropics in psychotropic-domain.md §2.8; expectation (nocebo) effects: Colloca & Miller,
Psychosom Med 2011;73:598; Mintz, Psychodynamic Psychopharmacology, APA Publishing 2022.

**When** intolerance evidence (``record.intolerances`` of kind "intolerance": AllergyIntolerance of
type intolerance or with non-immune reactions, and orders or statements stopped for an adverse
effect) dated within ``lookback_days`` before today names at least ``min_distinct_ingredients``
distinct psychotropic ingredients spanning at least ``min_distinct_classes`` ATC level-4 groups
(``Ingredient.atc4``, e.g. N06AB SSRIs vs N06AX other antidepressants).

**Unless** (per piece of evidence): a true allergy (kind "allergy"), a non-psychotropic drug, an
undated record (it cannot be placed in the window), or an ingredient the patient is taking again
today on a course started after the event (the rechallenge is tolerated, so it is not evidence of
intolerance any more).

**Then** an ``info`` card: before the next agent, explore the patient's experiences, expectations
and fears about medication; choose it together and titrate slowly. ``concerns_draft`` when a
psychotropic draft order is being placed (another agent is being started); a renewal of a current
course at the same dose (``timeline.is_renewal``) is not another agent. Override reasons live in
``cards/wording/repeated-intolerance.yaml`` (e.g. already explored with the patient).

**Thresholds** ``patterns.repeated-intolerance``: ``min_distinct_ingredients``,
``min_distinct_classes``, ``lookback_days``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import months, ordered_evidence, unique_refs
from cds_service.patterns.timeline import (
    is_current,
    is_renewal,
    psychotropic_names,
    taken_courses,
)
from fhir_mappers.record import DraftOrders, Ingredient, IntoleranceEvent, PatientRecord

PATTERN_ID = "repeated-intolerance"


@dataclass(frozen=True, slots=True)
class Thresholds:
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_distinct_ingredients: int = 3
    min_distinct_classes: int = 2
    lookback_days: int = 730


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    counted: dict[str, tuple[Ingredient, list[IntoleranceEvent]]] = {}
    for event in sorted(_intolerances_in_window(record, thresholds, now), key=_event_date):
        for ingredient in event.ingredients:
            if _excluded(event, ingredient, record, now):
                continue
            counted.setdefault(ingredient.name, (ingredient, []))[1].append(event)
    ingredients = [ingredient for ingredient, _ in counted.values()]
    if not _included(ingredients, thresholds):
        return None
    events = list(dict.fromkeys(e for _, evs in counted.values() for e in evs))
    events.sort(key=_event_date)
    facts: dict[str, object] = {
        "ingredient_count": len(ingredients),
        "class_count": len({i.atc4 for i in ingredients}),
        "ingredients": [i.name for i in ingredients],
        "classes": list(dict.fromkeys(i.subclass for i in ingredients)),
        "atc_groups": list(dict.fromkeys(i.atc4 for i in ingredients)),
        "lookback_days": thresholds.lookback_days,
        "window_months": months(thresholds.lookback_days),
        "min_distinct_ingredients": thresholds.min_distinct_ingredients,
        "min_distinct_classes": thresholds.min_distinct_classes,
        "draft_ingredients": psychotropic_names(drafts),
    }
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(_evidence_item(e) for e in events),
        facts=facts,
        evidence_keys=frozenset(f"ingredient:{i.name}" for i in ingredients),
        concerns_draft=any(d.is_psychotropic and not is_renewal(d, record, now) for d in drafts),
        references=unique_refs(e.ref for e in events),
    )


def _included(ingredients: list[Ingredient], thresholds: Thresholds) -> bool:
    """Intolerance to enough distinct psychotropic ingredients, from enough ATC-4 groups."""
    return (
        len(ingredients) >= thresholds.min_distinct_ingredients
        and len({i.atc4 for i in ingredients}) >= thresholds.min_distinct_classes
    )


def _excluded(
    event: IntoleranceEvent, ingredient: Ingredient, record: PatientRecord, now: date
) -> bool:
    """Evidence that does not speak to intolerance of this psychotropic ingredient."""
    if event.kind != "intolerance" or not ingredient.is_psychotropic:
        return True
    return _is_taken_again(ingredient, event, record, now)


def _is_taken_again(
    ingredient: Ingredient, event: IntoleranceEvent, record: PatientRecord, now: date
) -> bool:
    if event.when is None:
        return False
    return any(
        is_current(course, now)
        and course.start is not None
        and course.start > event.when
        and any(i.name == ingredient.name for i in course.ingredients)
        for course in taken_courses(record)
    )


def _intolerances_in_window(
    record: PatientRecord, thresholds: Thresholds, now: date
) -> list[IntoleranceEvent]:
    earliest = now - timedelta(days=thresholds.lookback_days)
    return [e for e in record.intolerances if e.when is not None and earliest <= e.when <= now]


def _event_date(event: IntoleranceEvent) -> date:
    return event.when or date.min


def _evidence_item(event: IntoleranceEvent) -> EvidenceItem:
    reactions = ", ".join(m.lower() for m in event.manifestations)
    if event.origin == "AllergyIntolerance":
        note = f"intolerance: {reactions}" if reactions else "intolerance recorded"
    else:
        note = f"stopped: intolerance ({reactions})" if reactions else "stopped: intolerance"
    return EvidenceItem(ref=event.ref, label=event.substance, when=event.when, note=note)
