"""nonadherence: a psychotropic that is prescribed may not be taken as prescribed.

Definition: proportion of days covered (PDC) below 0.80 over the measurement period, from fills
with a known days' supply, per ingredient (PQA PDC method, adopted by CMS Star ratings,
https://pqaalliance.org/assets/Measures/pdc-dr.js.txt; HEDIS SAA, "Adherence to Antipsychotic
Medications for Individuals With Schizophrenia", https://www.ncqa.org/hedis/measures/adherence-to-
antipsychotic-medications-for-individuals-with-schizophrenia/). Per ingredient, not per class, so a
refilled sertraline does not hide a bupropion that was never refilled. PQA asks for >= 2 fills; a
patient with one fill whose supply ran out long ago (a gap > 60 days is an interruption in
schizophrenia persistence studies, psychotropic-domain §2.5) is not hidden by that rule. Or a
MedicationStatement with status not-taken.

**When** for a psychotropic ingredient in today's standing regimen or being ordered, either
(a) at least ``min_dispenses`` fills of it in the last ``window_days`` and a PDC below
``pdc_below`` from the first fill to today (overlapping fills shifted forward; supply capped at
today; only completed dispenses with a known days' supply); or (b) exactly one fill in the window
whose supply ran out more than ``single_fill_lapsed_days`` before today; or (c) a not-taken
MedicationStatement names it (dated within the window, or undated: its status is the latest word).

**Not evaluable** (``NotEvaluable``, recorded in the audit, no card) when a completed fill of an
ingredient in use, handed over in the window, has no known days' supply, or has no date at all:
the days it would cover are unknown, not uncovered (``timeline.fills_without_supply``,
``pdc.undated_fills``).

**Unless** the ingredient is taken only as needed (PQA leaves PRN use out of PDC), the order is
stale (no renewal, fill or statement for ``stale_order_days``), or a later active
MedicationStatement says the not-taken ingredient is taken again. Days in hospital (ended
encounters, R4 ``finished`` or R5 ``completed``, or ongoing ones, of an inpatient class,
config/codes.yaml) leave the PDC period.

**Then** an ``info`` card: explore the patient's ambivalence and concerns about the medication
before changing it (Mintz, "Psychodynamic Psychopharmacology: Addressing the Underlying Causes of
Treatment Resistance", Psychiatric Times 2011); strongest at order-sign when the draft raises the
dose (``dose_increase_in_draft``). ``concerns_draft`` when a draft of that ingredient is being
ordered, or of its class (a switch or an addition in that class). Override reasons in
``cards/wording/nonadherence.yaml``.

**Thresholds** ``patterns.nonadherence``: ``pdc_below``, ``window_days``, ``min_dispenses``,
``single_fill_lapsed_days``, ``stale_order_days``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from cds_service.patterns.abstention import NotEvaluable
from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import months, ordered_evidence, unique_refs
from cds_service.patterns.pdc import (
    Coverage,
    is_countable,
    proportion_of_days_covered,
    undated_fills,
)
from cds_service.patterns.regimen import is_stale, signs_of_life
from cds_service.patterns.timeline import (
    dated_drafts,
    fills_without_supply,
    is_current,
    single_dose,
    taken_courses,
)
from fhir_mappers.record import (
    COMPLETED_VISIT_STATUSES,
    DraftOrders,
    MedicationCourse,
    PatientRecord,
    Visit,
)

PATTERN_ID = "nonadherence"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Values come from ``config/default.yaml`` (no defaults here: one source of numbers)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    pdc_below: float
    window_days: int
    min_dispenses: int
    single_fill_lapsed_days: int
    stale_order_days: int

    def windows_days(self) -> tuple[int, ...]:
        """The look-back windows this pattern reads, nested (their sum is its reach)."""
        return (self.window_days,)

    def visit_windows_days(self) -> tuple[int, ...]:
        """The windows over which this pattern reads visits (Encounters), nested; () when it
        reads none. Hospital stays within the days-covered window."""
        return (self.window_days,)


@dataclass(frozen=True, slots=True)
class _Adherence:
    ingredient: str
    drug_class: str
    coverage: Coverage | None  # set when the PDC (or the single lapsed fill) fires
    lapsed_days: int | None  # days since the single fill's supply ran out
    not_taken: tuple[MedicationCourse, ...]
    has_draft: bool
    dose_increase_in_draft: bool


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | NotEvaluable | None:
    """Nonadherence as of ``now`` (dates in days); None when it is not there, ``NotEvaluable``
    when a fill in the window has no known days' supply or a completed fill has no date."""
    signs = signs_of_life(record)
    regimen = [
        c
        for c in taken_courses(record)
        if is_current(c, now)
        and c.is_psychotropic
        and not is_stale(c, record, now, thresholds.stale_order_days, signs)
    ]
    ordered = [d for d in dated_drafts(drafts, now) if d.is_psychotropic]
    in_use = {i.name for c in [*regimen, *ordered] if not _excluded(c) for i in c.ingredients}
    since = now - timedelta(days=thresholds.window_days)
    unknown = fills_without_supply(record, in_use, since, now)
    undated = undated_fills(record.dispenses, in_use)
    if unknown or undated:
        reasons = []
        if unknown:
            reasons.append(
                f"{len(unknown)} fill(s) in the last {months(thresholds.window_days)} months have "
                "no days' supply and none could be derived"
            )
        if undated:
            reasons.append(
                f"{len(undated)} completed fill(s) have no date (neither handed over nor "
                "prepared), so the days they cover are unknown"
            )
        return NotEvaluable(
            PATTERN_ID, "; ".join(reasons), tuple(d.ref for d in [*unknown, *undated])
        )
    names = dict.fromkeys(
        i.name for c in [*regimen, *ordered] if not _excluded(c) for i in c.psychotropic_ingredients
    )
    found = [
        a
        for name in names
        if (a := _included(name, record, regimen, ordered, thresholds, now)) is not None
    ]
    if not found:
        return None
    # The ingredient being ordered comes first (that is the decision at hand), then the lowest PDC.
    best = min(found, key=lambda a: (not a.has_draft, a.coverage.pdc if a.coverage else 1.0))
    return _finding(best, thresholds)


def _included(
    name: str,
    record: PatientRecord,
    regimen: list[MedicationCourse],
    ordered: list[MedicationCourse],
    thresholds: Thresholds,
    now: date,
) -> _Adherence | None:
    """PDC below the threshold, a single long-lapsed fill, or a not-taken statement."""
    window_start = now - timedelta(days=thresholds.window_days)
    fills = [d for d in record.dispenses if any(i.name == name for i in d.ingredients)]
    away = _hospital_days(record, now)
    coverage = proportion_of_days_covered(fills, window_start, now, away)
    fill_count = len(coverage.fills) if coverage else 0
    lapsed: int | None = None
    if coverage is None:
        pass
    elif fill_count >= thresholds.min_dispenses:
        coverage = coverage if coverage.pdc < thresholds.pdc_below else None
    elif fill_count == 1:
        lapsed = _days_lapsed(coverage, now)
        if lapsed is None or lapsed <= thresholds.single_fill_lapsed_days:
            coverage, lapsed = None, None
    else:
        coverage = None
    not_taken = tuple(
        s
        for s in record.courses
        if s.source_type == "MedicationStatement"
        and s.status == "not-taken"
        and any(i.name == name for i in s.psychotropic_ingredients)
        and (s.start is None or window_start <= s.start <= now)
        and not _taken_again(s, record)
    )
    if coverage is None and not not_taken:
        return None
    with_name = [c for c in [*regimen, *ordered] if any(i.name == name for i in c.ingredients)]
    drafts = [c for c in with_name if c.is_draft]
    drug_class = next(i.drug_class for c in with_name for i in c.ingredients if i.name == name)
    # A draft of the same class (a switch or an addition) is the decision this finding informs.
    same_class = [d for d in ordered if any(i.drug_class == drug_class for i in d.ingredients)]
    return _Adherence(
        ingredient=name,
        drug_class=drug_class,
        coverage=coverage,
        lapsed_days=lapsed,
        not_taken=not_taken,
        has_draft=bool(same_class),
        dose_increase_in_draft=any(_raises_dose(d, regimen) for d in drafts),
    )


def _days_lapsed(coverage: Coverage, now: date) -> int | None:
    fill = coverage.fills[0]
    if fill.handed_over is None or not is_countable(fill):
        return None
    ran_out = fill.handed_over + timedelta(days=round(fill.days_supply or 0))
    return (now - ran_out).days


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
    """Days in hospital, left out of the days-covered period: those of every inpatient stay
    except one that did not take place (``_NO_STAY``: planned, cancelled, entered in error)."""
    days: set[date] = set()
    for visit in record.visits:
        if visit.is_inpatient and visit.start is not None and visit.status not in _NO_STAY:
            end = _stay_end(visit, now)
            days.update(
                visit.start + timedelta(days=i) for i in range((end - visit.start).days + 1)
            )
    return days


def _stay_end(visit: Visit, now: date) -> date:
    """The last day in hospital: today while the stay goes on (``Visit.is_ongoing``: in
    progress, arrived, on leave), its end once it has ended (R4 ``finished``, R5 ``completed``:
    ``COMPLETED_VISIT_STATUSES``), else only its first day."""
    if visit.is_ongoing:
        return now
    ended = visit.status in COMPLETED_VISIT_STATUSES
    return visit.end if ended and visit.end else visit.start or now


# Encounter statuses of a stay that did not take place: its days are no hospital days.
_NO_STAY = frozenset({"planned", "cancelled", "entered-in-error"})


def _floor2(value: float) -> float:
    # Rounded down, so a card never shows a PDC equal to the threshold it fell below.
    return math.floor(value * 100 + 1e-9) / 100


def _finding(found: _Adherence, thresholds: Thresholds) -> Finding:
    coverage = found.coverage
    pdc = _floor2(coverage.pdc) if coverage else None
    fills = coverage.fills if coverage else ()
    if fills and coverage is not None:
        last = fills[-1]
        supply = f"{len(fills)} fills" if len(fills) > 1 else f"{last.days_supply or 0:g}-day fill"
        gist = (
            f"{supply}; supply ran out {found.lapsed_days} days ago"
            if found.lapsed_days is not None
            else f"{supply}; {round((pdc or 0) * 100)}% of days covered"
        )
        evidence = [EvidenceItem(last.ref, found.ingredient, last.handed_over, gist)]
    else:
        evidence = []
    evidence += [
        EvidenceItem(s.ref, found.ingredient, s.start, "recorded as not taken")
        for s in found.not_taken[-1:]
    ]
    keys = {f"not-taken:{found.ingredient}" for _ in found.not_taken}
    if coverage is not None:
        keys.add(f"pdc:{found.ingredient}")
    facts: dict[str, object] = {
        "pdc": pdc,
        "pdc_percent": round(pdc * 100) if pdc is not None else None,
        "ingredient": found.ingredient,
        "drug_class": found.drug_class,
        "window_months": months(thresholds.window_days),
        "dispense_count": len(fills),
        "days_since_supply_ran_out": found.lapsed_days,
        "not_taken": bool(found.not_taken),
        "dose_increase_in_draft": found.dose_increase_in_draft,
        "period_start": coverage.period_start.isoformat() if coverage else None,
        "period_days": coverage.period_days if coverage else None,
    }
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(evidence),
        facts=facts,
        evidence_keys=frozenset(keys),
        concerns_draft=found.has_draft,
        references=unique_refs(
            [d.ref for d in fills] + [s.ref for s in found.not_taken] + [e.ref for e in evidence]
        ),
    )
