"""nonadherence: a psychotropic that is prescribed may not be taken as prescribed.

Definition: proportion of days covered (PDC) below 0.80 over the measurement period, with at least
2 fills, at class level (any ingredient of the class covers the day), per the PQA method adopted by
CMS Star ratings and HEDIS SAA (psychotropic-domain.md §2.5); or a MedicationStatement with status
not-taken (§3.2).

**When** for a psychotropic class (``Ingredient.drug_class``) that is in today's regimen or being
ordered, either the PDC over the last ``window_days`` is below ``pdc_below`` (the period starts at
the first fill in the window and ends today; at least ``min_dispenses`` fills of the class in the
window; overlapping fills shifted forward; supply capped at today; only completed dispenses with a
known days' supply), or a not-taken MedicationStatement names an ingredient of the class that is
prescribed or being ordered (dated within the window, or undated: its status is the latest word).

**Not evaluable** (``NotEvaluable``, recorded in the audit, no card) when a completed fill of an
ingredient in use, handed over in the window, has no known days' supply: the days it would cover
are unknown, not uncovered (``timeline.fills_without_supply``).

**Unless** the class is in the regimen only as needed (PRN; PQA leaves PRN use out of PDC), or a
later active MedicationStatement says the not-taken ingredient is taken again. Days in hospital
(finished or in-progress encounters of an inpatient class, config/codes.yaml) leave the PDC period.

**Then** an ``info`` card: explore the patient's ambivalence and concerns about the medication
before changing it; strongest at order-sign when the draft raises the dose
(``dose_increase_in_draft``), since the current dose may not be what is taken. ``concerns_draft``
when a draft of that class is being ordered. Override reasons live in
``cards/wording/nonadherence.yaml``.

**Thresholds** ``patterns.nonadherence``: ``pdc_below``, ``window_days``, ``min_dispenses``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from cds_service.patterns.abstention import NotEvaluable
from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import ordered_evidence, unique_refs
from cds_service.patterns.pdc import Coverage, proportion_of_days_covered
from cds_service.patterns.timeline import (
    dated_drafts,
    fills_without_supply,
    is_current,
    single_dose,
    taken_courses,
)
from fhir_mappers.record import DraftOrders, MedicationCourse, PatientRecord, Visit

PATTERN_ID = "nonadherence"

@dataclass(frozen=True, slots=True)
class Thresholds:
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    pdc_below: float = 0.80
    window_days: int = 180
    min_dispenses: int = 2


@dataclass(frozen=True, slots=True)
class _ClassAdherence:
    drug_class: str
    coverage: Coverage | None  # set only when the PDC is below the threshold
    dispense_count: int
    not_taken: tuple[MedicationCourse, ...]
    ingredients: tuple[str, ...]
    has_draft: bool
    dose_increase_in_draft: bool


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | NotEvaluable | None:
    regimen = [c for c in taken_courses(record) if is_current(c, now) and c.is_psychotropic]
    ordered = [d for d in dated_drafts(drafts, now) if d.is_psychotropic]
    in_use = {i.name for c in [*regimen, *ordered] if not _excluded(c) for i in c.ingredients}
    since = now - timedelta(days=thresholds.window_days)
    unknown = fills_without_supply(record, in_use, since, now)
    if unknown:
        return NotEvaluable(
            PATTERN_ID,
            f"{len(unknown)} fill(s) in the last {thresholds.window_days} days have no days' "
            "supply and none could be derived",
            tuple(d.ref for d in unknown),
        )
    classes = dict.fromkeys(
        i.drug_class
        for c in [*regimen, *ordered]
        if not _excluded(c)
        for i in c.psychotropic_ingredients
    )
    found = [
        a
        for cls in classes
        if (a := _included(cls, record, regimen, ordered, thresholds, now)) is not None
    ]
    if not found:
        return None
    # The class being ordered comes first (that is the decision at hand), then the lowest PDC.
    best = min(found, key=lambda a: (not a.has_draft, a.coverage.pdc if a.coverage else 1.0))
    return _finding(best, thresholds)


def _included(
    drug_class: str,
    record: PatientRecord,
    regimen: list[MedicationCourse],
    ordered: list[MedicationCourse],
    thresholds: Thresholds,
    now: date,
) -> _ClassAdherence | None:
    """PDC below the threshold, or a not-taken statement, for one class in use."""
    window_start = now - timedelta(days=thresholds.window_days)
    in_class = [
        d
        for d in record.dispenses
        if any(i.drug_class == drug_class for i in d.ingredients if i.is_psychotropic)
    ]
    coverage = proportion_of_days_covered(in_class, window_start, now, _hospital_days(record, now))
    fill_count = len(coverage.fills) if coverage else 0
    if coverage is None or fill_count < thresholds.min_dispenses:
        coverage = None
    elif coverage.pdc >= thresholds.pdc_below:
        coverage = None
    prescribed = {
        i.name
        for c in [*regimen, *ordered]
        for i in c.psychotropic_ingredients
        if i.drug_class == drug_class
    }
    not_taken = tuple(
        s
        for s in record.courses
        if s.source_type == "MedicationStatement"
        and s.status == "not-taken"
        and any(i.name in prescribed for i in s.psychotropic_ingredients)
        and (s.start is None or window_start <= s.start <= now)
        and not _taken_again(s, record)
    )
    if coverage is None and not not_taken:
        return None
    dispensed = [
        i.name
        for d in (coverage.fills if coverage else ())
        for i in d.ingredients
        if i.drug_class == drug_class
    ]
    class_drafts = [
        d for d in ordered if any(i.drug_class == drug_class for i in d.psychotropic_ingredients)
    ]
    return _ClassAdherence(
        drug_class=drug_class,
        coverage=coverage,
        dispense_count=fill_count,
        not_taken=not_taken,
        ingredients=tuple(dict.fromkeys([*sorted(prescribed), *dispensed])),
        has_draft=bool(class_drafts),
        dose_increase_in_draft=any(_raises_dose(d, regimen) for d in class_drafts),
    )


def _excluded(course: MedicationCourse) -> bool:
    """As-needed use is not a daily regimen, so its supply cannot be measured in days covered."""
    return course.is_prn and not course.is_draft


def _taken_again(statement: MedicationCourse, record: PatientRecord) -> bool:
    names = {i.name for i in statement.psychotropic_ingredients}
    return statement.start is not None and any(
        c.source_type == "MedicationStatement"
        and c.status == "active"
        and c.start is not None
        and c.start > statement.start
        and any(i.name in names for i in c.ingredients)
        for c in record.courses
    )


def _raises_dose(draft: MedicationCourse, regimen: list[MedicationCourse]) -> bool:
    dose = single_dose(draft)
    if dose is None:
        return False
    names = {i.name for i in draft.ingredients}
    same = sorted(
        (
            c
            for c in regimen
            if single_dose(c) is not None and any(i.name in names for i in c.ingredients)
        ),
        key=lambda c: c.start or date.min,
    )
    return bool(same) and dose > (single_dose(same[-1]) or 0)


def _hospital_days(record: PatientRecord, now: date) -> set[date]:
    days: set[date] = set()
    for visit in record.visits:
        if visit.is_inpatient and visit.start is not None:
            end = _stay_end(visit, now)
            days.update(
                visit.start + timedelta(days=i) for i in range((end - visit.start).days + 1)
            )
    return days


def _stay_end(visit: Visit, now: date) -> date:
    if visit.status == "in-progress":
        return now
    return visit.end if visit.status == "finished" and visit.end else visit.start or now


def _floor2(value: float) -> float:
    # Rounded down, so a card never shows a PDC equal to the threshold it fell below.
    return math.floor(value * 100 + 1e-9) / 100


def _finding(found: _ClassAdherence, thresholds: Thresholds) -> Finding:
    pdc = _floor2(found.coverage.pdc) if found.coverage else None
    fills = found.coverage.fills if found.coverage else ()
    evidence = [
        EvidenceItem(d.ref, d.display, d.handed_over, f"{d.days_supply or 0:g}-day supply")
        for d in fills
    ]
    if evidence and found.coverage is not None:
        last = evidence[-1]
        period = found.coverage.period_days
        evidence[-1] = EvidenceItem(
            last.ref, last.label, last.when, f"{last.note}; PDC {pdc:.2f} over {period} days"
        )
    evidence += [EvidenceItem(s.ref, s.display, s.start, "not taken") for s in found.not_taken]
    keys = {f"not-taken:{i.name}" for s in found.not_taken for i in s.psychotropic_ingredients}
    if found.coverage is not None:
        keys.add(f"pdc:{found.drug_class}")
    facts: dict[str, object] = {
        "pdc": pdc,
        "drug_class": found.drug_class,
        "ingredients": list(found.ingredients),
        "window_days": thresholds.window_days,
        "pdc_below": thresholds.pdc_below,
        "dispense_count": found.dispense_count,
        "not_taken": list(
            dict.fromkeys(i.name for s in found.not_taken for i in s.psychotropic_ingredients)
        ),
        "dose_increase_in_draft": found.dose_increase_in_draft,
        "period_start": found.coverage.period_start.isoformat() if found.coverage else None,
        "period_days": found.coverage.period_days if found.coverage else None,
    }
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(evidence),
        facts=facts,
        evidence_keys=frozenset(keys),
        concerns_draft=found.has_draft,
        references=unique_refs(item.ref for item in evidence),
    )
