"""Record builders for pattern tests: realistic ingredients, courses and events, dated as days
before NOW so that each test reads as a clinical story.

Ingredients are the rows of config/ingredients.csv (codes, minimum effective doses, titration
targets and hypnotic doses with their sources there).
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date, timedelta
from typing import Any

from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.settings import load_settings
from fhir_mappers.record import (
    Coding,
    Dispense,
    Ingredient,
    IntoleranceEvent,
    MedicationCourse,
    StopReasonKind,
    SymptomScore,
    Visit,
)

NOW = date(2026, 6, 15)  # the same day as tests/conftest.py NOW

_TABLE = load_ingredient_table()


def _row(name: str) -> Ingredient:
    """The ingredient exactly as config/ingredients.csv has it (codes, doses, titration)."""
    ingredient = _TABLE.get(name)
    assert ingredient is not None, name
    return ingredient


SERTRALINE = _row("sertraline")
ESCITALOPRAM = _row("escitalopram")
FLUOXETINE = _row("fluoxetine")
VENLAFAXINE = _row("venlafaxine")
BUPROPION = _row("bupropion")
MIRTAZAPINE = _row("mirtazapine")
QUETIAPINE = _row("quetiapine")
ARIPIPRAZOLE = _row("aripiprazole")
RISPERIDONE = _row("risperidone")
CLOZAPINE = _row("clozapine")
HALOPERIDOL = _row("haloperidol")
LITHIUM = _row("lithium")
LAMOTRIGINE = _row("lamotrigine")
LORAZEPAM = _row("lorazepam")
METFORMIN = None  # a non-psychotropic drug: the mapper gives it no ingredients

_FORMS = {
    "sertraline": "Oral Tablet",
    "lithium": "Extended Release Oral Tablet",
    "venlafaxine": "24 HR Extended Release Oral Capsule",
}
_ids = itertools.count(1)

CODES = load_code_lists()


def days_ago(n: int) -> date:
    return NOW - timedelta(days=n)


def _ref(resource_type: str) -> str:
    return f"{resource_type}/{next(_ids)}"


def display(ingredient: Ingredient | None, mg: float | None = None) -> str:
    """An RxNorm SCD-style display: "sertraline 50 MG Oral Tablet"."""
    if ingredient is None:
        return "metformin hydrochloride 500 MG Oral Tablet"
    strength = f" {mg:g} MG" if mg is not None else ""
    return f"{ingredient.name}{strength} {_FORMS.get(ingredient.name, 'Oral Tablet')}"


def course(
    ingredient: Ingredient | None,
    start: date | None,
    *,
    mg: float | None = None,
    end: date | None = None,
    status: str = "active",
    source: str = "MedicationRequest",
    stop_reason: StopReasonKind | None = None,
    prn: bool = False,
    intent: str | None = None,
    ref: str | None = None,
) -> MedicationCourse:
    """A MedicationRequest (or Statement) with a daily dose in mg (one tablet a day)."""
    reasons: tuple[Coding, ...] = ()
    if stop_reason == "intolerance":
        reasons = (Coding("http://snomed.info/sct", "407563006", "Treatment not tolerated"),)
    elif stop_reason == "lack_of_effect":
        reasons = (Coding("http://snomed.info/sct", "266721009", "No response to treatment"),)
    is_request = source == "MedicationRequest"
    return MedicationCourse(
        ref=ref or _ref(source),
        source_type="MedicationRequest" if is_request else "MedicationStatement",
        display=display(ingredient, mg),
        ingredients=(ingredient,) if ingredient else (),
        status=status,
        intent=intent if intent is not None else ("order" if is_request else ""),
        start=start,
        end=end,
        daily_dose_mg=mg,
        status_reasons=reasons,
        stop_reason=stop_reason,
        requester="Practitioner/psych-1",
        is_prn=prn,
    )


def draft(
    ingredient: Ingredient | None, mg: float | None = None, ref: str = "MedicationRequest/draft-1"
) -> MedicationCourse:
    """A draft order from the hook's draftOrders (authoredOn today, not yet signed)."""
    return MedicationCourse(
        ref=ref,
        source_type="MedicationRequest",
        display=display(ingredient, mg),
        ingredients=(ingredient,) if ingredient else (),
        status="draft",
        intent="order",
        start=NOW,
        end=None,
        daily_dose_mg=mg,
        is_draft=True,
    )


def intolerance(
    ingredient: Ingredient | None,
    when: date | None,
    *,
    kind: str = "intolerance",
    origin: str = "AllergyIntolerance",
    manifestations: tuple[str, ...] = ("Nausea",),
) -> IntoleranceEvent:
    return IntoleranceEvent(
        ref=_ref(origin),
        origin=origin,  # type: ignore[arg-type]
        substance=display(ingredient) if ingredient else "metformin",
        ingredients=(ingredient,) if ingredient else (),
        when=when,
        kind=kind,  # type: ignore[arg-type]
        manifestations=manifestations,
    )


def visit(
    when: date, *, class_code: str = "AMB", status: str = "finished", end: date | None = None
) -> Visit:
    kind = CODES.visit_kind(class_code)  # as the mapper reads the class
    return Visit(
        ref=_ref("Encounter"),
        status=status,
        class_code=class_code,
        start=when,
        end=end or when,
        type_codes=(Coding("http://www.ama-assn.org/go/cpt", "99214", "Office visit"),),
        kind=kind,  # type: ignore[arg-type]
        prescriber_visit=kind == "outpatient",
    )


def dispense(
    ingredient: Ingredient,
    when: date,
    days_supply: float | None = 30,
    *,
    status: str = "completed",
) -> Dispense:
    return Dispense(
        ref=_ref("MedicationDispense"),
        display=display(ingredient, ingredient.min_effective_mg_per_day),
        ingredients=(ingredient,),
        status=status,
        handed_over=when,
        days_supply=days_supply,
        quantity=days_supply,
    )


def phq9(when: date, value: float) -> SymptomScore:
    return SymptomScore(
        ref=_ref("Observation"), instrument="PHQ-9", loinc="44261-6", value=value, when=when
    )


def defaults(pattern_id: str) -> Any:
    """The pattern's thresholds exactly as config/default.yaml sets them (no numbers in tests)."""
    return _DEFAULT_PATTERNS[pattern_id].thresholds


def with_thresholds(pattern_id: str, **changes: Any) -> Any:
    """The default thresholds with some values changed, as a site file would."""
    return dataclasses.replace(defaults(pattern_id), **changes)


_DEFAULT_PATTERNS = load_settings().patterns
