"""Record builders for pattern tests: realistic ingredients, courses and events, dated as days
before NOW so that each test reads as a clinical story.

Ingredient codes (RxNorm IN, ATC) are the verified rows of psychotropic-domain.md §1.3; minimum
effective doses are from §2.1 (antidepressants) and Leucht 2014 (antipsychotics, §2.7).
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from cds_service.loaders import load_code_lists
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

SERTRALINE = Ingredient("sertraline", "36437", "N06AB06", "antidepressant", "SSRI", True, 50)
ESCITALOPRAM = Ingredient("escitalopram", "321988", "N06AB10", "antidepressant", "SSRI", True, 10)
FLUOXETINE = Ingredient("fluoxetine", "4493", "N06AB03", "antidepressant", "SSRI", True, 20)
VENLAFAXINE = Ingredient("venlafaxine", "39786", "N06AX16", "antidepressant", "SNRI", True, 75)
BUPROPION = Ingredient(
    "bupropion", "42347", "N06AX12", "antidepressant", "other antidepressant", True, 300
)
MIRTAZAPINE = Ingredient(
    "mirtazapine", "15996", "N06AX11", "antidepressant", "other antidepressant", True, 15
)
QUETIAPINE = Ingredient("quetiapine", "51272", "N05AH04", "antipsychotic", "SGA", True, 150)
ARIPIPRAZOLE = Ingredient("aripiprazole", "89013", "N05AX12", "antipsychotic", "SGA", True, 10)
RISPERIDONE = Ingredient("risperidone", "35636", "N05AX08", "antipsychotic", "SGA", True, 2)
CLOZAPINE = Ingredient("clozapine", "2626", "N05AH02", "antipsychotic", "SGA", True, 300)
HALOPERIDOL = Ingredient("haloperidol", "5093", "N05AD01", "antipsychotic", "FGA", True, 4)
LITHIUM = Ingredient("lithium", "6448", "N05AN01", "mood_stabilizer", "lithium", True)
LAMOTRIGINE = Ingredient(
    "lamotrigine", "28439", "N03AX09", "mood_stabilizer", "anticonvulsant", True
)
LORAZEPAM = Ingredient(
    "lorazepam", "6470", "N05BA06", "anxiolytic_hypnotic", "BZD anxiolytic", True
)
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
