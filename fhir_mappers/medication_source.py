"""Find out which medication an order, statement or dispense is about.

``medicationCodeableConcept`` is read directly; ``medicationReference`` is followed to a contained
``#id`` Medication or to a "Medication/x" fetched separately (EHRs that only send inline
Medications are common). Both ``Medication.code`` and
``Medication.ingredient[].itemCodeableConcept`` classify, so a combination product keeps all of its
ingredients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from fhir_mappers.accessors import (
    as_list,
    codings,
    concept_text,
    get,
    quantity_unit,
    quantity_value,
    reference,
    relative_reference,
    text,
)
from fhir_mappers.context import MappingContext
from fhir_mappers.medications import RXNORM_SYSTEMS, concentration_mg_per_ml, strength_mg
from fhir_mappers.record import Ingredient

_MG = {"mg": 1.0, "g": 1000.0, "mcg": 0.001, "ug": 0.001}


@dataclass(frozen=True, slots=True)
class ResolvedMedication:
    """What a medication[x] names: its display text, the psychotropic (or other tabled)
    ingredient families it contains (``()`` when none is recognised), and for a
    single-ingredient product its strength in mg per unit or concentration in mg/mL."""

    display: str
    ingredients: tuple[Ingredient, ...]
    strength_mg: float | None = None  # per tablet/capsule, single-ingredient products only
    concentration_mg_per_ml: float | None = None  # single-ingredient liquids only
    # The product's form beyond its display: ``Medication.form`` and the product table's name
    # of an RxNorm code ("... Prefilled Syringe"), for a code sent with no display.
    form: str = ""

    @property
    def is_psychotropic(self) -> bool:
        """Whether any ingredient counts as psychotropic: the medications the patterns read."""
        # A loop, not any(): asked of every medication resource, and a generator costs more.
        for ingredient in self.ingredients:
            if ingredient.is_psychotropic:
                return True
        return False


UNKNOWN = ResolvedMedication(display="", ingredients=())


def medication_reference(resource: Mapping[str, Any]) -> str | None:
    """The medication reference: R4 ``medicationReference`` or R5 ``medication.reference``."""
    return reference(resource.get("medicationReference")) or reference(
        get(resource, "medication", "reference")
    )


def resolve_medication(
    resource: Mapping[str, Any], ctx: MappingContext, resource_type: str, ref: str
) -> ResolvedMedication:
    """The medication of a MedicationRequest/Statement/Dispense: R4 ``medicationCodeableConcept``
    or R5 ``medication.concept`` (classified once per distinct concept per call), else R4
    ``medicationReference`` / R5 ``medication.reference`` resolved to a contained ``#id``, a
    Medication among the inputs or fetched, or a Bundle ``fullUrl``. ``UNKNOWN`` when there is
    none. Never raises: a missing medication, a concept that is not one, a reference that cannot
    be resolved and an RxNorm code that names nothing known become ``MappingIssue``s on ``ctx``.
    """
    concept = resource.get("medicationCodeableConcept") or get(resource, "medication", "concept")
    if type(concept) is not dict:  # the usual R4 concept skips these checks (every order)
        if isinstance(concept, str):
            # Seen in hand-built exports: the drug name where a CodeableConcept belongs.
            ctx.issue(resource_type, ref, "medicationCodeableConcept", "text instead of a concept")
            concept = {"text": concept}
        elif concept is not None and not isinstance(concept, Mapping | list):
            ctx.issue(resource_type, ref, "medicationCodeableConcept", "not a CodeableConcept")
            return UNKNOWN
    if concept is not None:
        resolved, problem = _classified(concept, ctx)
        # An empty concept ({"coding": []}) next to a reference names nothing: the reference does.
        if resolved.ingredients or resolved.display or medication_reference(resource) is None:
            if problem is not None:
                ctx.issue(resource_type, ref, "medication[x]", problem)
            return resolved
    literal = medication_reference(resource)
    label = text(get(resource, "medicationReference", "display")) or text(
        get(resource, "medication", "reference", "display")
    )
    if literal is None:
        if label:  # a Reference may be a display alone (R4): the drug named in words
            ctx.issue(resource_type, ref, "medicationReference", "a display with no reference")
            return _classified({"text": label}, ctx)[0]
        ctx.issue(resource_type, ref, "medication[x]", "no medication")
        return UNKNOWN
    medication = _dereference(literal, resource, ctx)
    if medication is None:
        ctx.issue(resource_type, ref, "medicationReference", "medication not available")
        # Its display still names the drug, and its strength, as a concept's text would.
        return _classified({"text": label}, ctx)[0] if label else UNKNOWN
    resolved = from_medication_resource(medication, ctx, fallback_display=label)
    concepts = [medication.get("code")] + [
        get(item, "itemCodeableConcept") for item in as_list(medication.get("ingredient"))
    ]
    problem = _problem(resolved, concepts, ctx)
    if problem is not None:
        ctx.issue(resource_type, ref, "medication[x]", problem)
    return resolved


def _classified(
    concept: Mapping[str, Any] | list[Any], ctx: MappingContext
) -> tuple[ResolvedMedication, str | None]:
    """What one ``medicationCodeableConcept`` names, and the problem to report with it (see
    ``_problem``), worked out once per distinct concept per call: a history names the same few
    products again and again, so for every other order the classification (non-psychotropic or
    not) is one serialisation and one lookup."""
    try:
        key = orjson.dumps(concept)
    except TypeError:  # not plain JSON (a Mapping built by a caller): no memo
        key = None
    found: tuple[ResolvedMedication, str | None] | None = (
        ctx.concepts.get(key) if key is not None else None
    )
    if found is None:
        resolved = _from_concepts(concept_text(concept), [concept], (), ctx)
        found = (resolved, _problem(resolved, [concept], ctx))
        if key is not None:
            ctx.concepts[key] = found
    return found


def _problem(
    resolved: ResolvedMedication, concepts: list[Any], ctx: MappingContext
) -> str | None:
    """An RxNorm code that names nothing we know: with no name to classify by, the medication
    would otherwise vanish without a trace ("unrecognised RxNorm code"); a psychotropic
    recognised by its name whose product code is in neither table is a gap the site can fill
    ("RxNorm code not in the product table"). Other medications are not ours to list."""
    if any(i.is_psychotropic for i in resolved.ingredients):
        rxnorm = [
            text(c.get("code"))
            for concept in concepts
            for c in codings(concept)
            if text(c.get("system")) in RXNORM_SYSTEMS and text(c.get("code"))
        ]
        if rxnorm and not any(
            code in ctx.table.by_rxcui or code in ctx.table.products for code in rxnorm
        ):
            return "RxNorm code not in the product table"
        return None
    if resolved.ingredients or resolved.display:
        return None
    for concept in concepts:
        for coding in codings(concept):
            system, code = text(coding.get("system")), text(coding.get("code"))
            if system in RXNORM_SYSTEMS and code and not text(coding.get("display")):
                return "unrecognised RxNorm code"
    return None


def from_medication_resource(
    medication: Mapping[str, Any], ctx: MappingContext, fallback_display: str = ""
) -> ResolvedMedication:
    """A Medication resource classified from its ``code`` and its ingredients'
    ``itemCodeableConcept`` (R5 ``item.concept``), with ingredient ``strength`` (a Ratio) read
    as mg per unit or mg/mL; ``fallback_display`` when ``code`` has no text."""
    code = medication.get("code")
    items = [
        get(item, "itemCodeableConcept") or get(item, "item", "concept")
        for item in as_list(medication.get("ingredient"))
    ]
    display = concept_text(code) or fallback_display
    strengths = [get(item, "strength") for item in as_list(medication.get("ingredient"))]
    form = medication.get("form")
    words = [concept_text(form)] + [text(c.get("display")) for c in codings(form)]
    return _from_concepts(
        display, [code, *items], strengths, ctx, form=" ".join(dict.fromkeys(filter(None, words)))
    )


def _from_concepts(
    display: str, concepts: list[Any], strengths: Any, ctx: MappingContext, form: str = ""
) -> ResolvedMedication:
    found: dict[str, Ingredient] = {}
    for concept in concepts:
        if concept is None:
            continue
        for ingredient in ctx.table.classify(codings(concept), concept_text(concept)):
            found.setdefault(ingredient.name, ingredient)
    ingredients = tuple(found.values())
    if any(i.is_psychotropic for i in ingredients):
        form = " ".join(filter(None, (form, *_product_names(concepts, ctx))))
    if len(ingredients) != 1:
        return ResolvedMedication(display, ingredients, form=form)
    labels = [display] + [text(c.get("display")) for con in concepts for c in codings(con)]
    from_labels = (strength_mg(label) for label in labels if label)
    strength = (
        _ratio_strength(strengths)
        or next((s for s in from_labels if s is not None), None)
        or _product_strength(concepts, ctx)
    )
    concentration = next(
        (c for c in (concentration_mg_per_ml(label) for label in labels if label) if c), None
    )
    return ResolvedMedication(display, ingredients, strength, concentration, form)


def _product_names(concepts: list[Any], ctx: MappingContext) -> list[str]:
    """The product table's names (config/rxnorm_products.csv) of the RxNorm codes in
    ``concepts``: what a bare product code says of its form (a prefilled syringe)."""
    return [
        name
        for concept in concepts
        for coding in codings(concept)
        if text(coding.get("system")) in RXNORM_SYSTEMS
        and (name := ctx.table.product_names.get(text(coding.get("code")), ""))
    ]


def _product_strength(concepts: list[Any], ctx: MappingContext) -> float | None:
    """mg per unit from the product table (config/rxnorm_products.csv), for a bare SCD/SBD code."""
    for concept in concepts:
        for coding in codings(concept):
            if text(coding.get("system")) in RXNORM_SYSTEMS:
                found = ctx.table.product_strength_mg(text(coding.get("code")))
                if found is not None:
                    return found
    return None


def _ratio_strength(strengths: Any) -> float | None:
    """mg per unit from a single ``Medication.ingredient.strength`` Ratio ("50 mg / 1 TAB")."""
    ratios = [s for s in as_list(strengths) if s is not None]
    if len(ratios) != 1:
        return None
    numerator, denominator = get(ratios[0], "numerator"), get(ratios[0], "denominator")
    amount = quantity_value(numerator)
    factor = _MG.get(quantity_unit(numerator).lower())
    per = quantity_value(denominator) if denominator is not None else 1.0
    if amount is None or factor is None or not per or quantity_unit(denominator).lower() == "ml":
        return None
    return amount * factor / per


def _dereference(
    literal: str, resource: Mapping[str, Any], ctx: MappingContext
) -> Mapping[str, Any] | None:
    contained = _contained(literal, resource)
    if contained is not None or literal.startswith("#"):
        return contained
    key = ctx.resolve(literal) or relative_reference(literal)
    return ctx.medications.get(key) if key else None


def _contained(literal: str, resource: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The contained resource a reference names: "#med1" for ``id`` "med1", as R4 writes it,
    and the two slips exports make, a bare "med1" for it (no other resource can be meant by a
    reference without a type) and an ``id`` written "#med1"."""
    if "/" in literal or ":" in literal:
        return None
    wanted = literal.removeprefix("#")
    for contained in as_list(resource.get("contained")):
        if isinstance(contained, Mapping) and contained.get("id") in (wanted, f"#{wanted}"):
            return contained
    return None
