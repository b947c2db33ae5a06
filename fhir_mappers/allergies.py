"""AllergyIntolerance -> IntoleranceEvent, with the allergy/intolerance call made from the data.

``type`` is often missing or wrong in EHR data, so the manifestations decide: any immune
manifestation (anaphylaxis, urticaria, angioedema) makes it an allergy; an "allergy" with no
manifestations stays an allergy; everything else (nausea, headache, dizziness...) is an
intolerance. Refuted and entered-in-error records are dropped, as are food and environment ones,
and records whose ``clinicalStatus`` is resolved or inactive: the reaction no longer describes
the patient (often after a tolerated rechallenge), so it is not evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from fhir_mappers.accessors import as_list, codes, codings, concept_text, get, text
from fhir_mappers.context import MappingContext
from fhir_mappers.record import Ingredient, IntoleranceEvent

_DROPPED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_DROPPED_CLINICAL = frozenset({"resolved", "inactive", "entered-in-error", "refuted"})
_RTYPE: Final = "AllergyIntolerance"


def map_allergy(
    resource: Mapping[str, Any], ref: str, ctx: MappingContext
) -> IntoleranceEvent | None:
    """An AllergyIntolerance as an ``IntoleranceEvent`` (see the module docstring for the
    allergy/intolerance call and what is dropped); None for a dropped record.

    ``ingredients`` are classified from ``code`` and each ``reaction.substance``; ``substance``
    is the first of those with a name that is not an allergy category; ``when`` is the day of
    onset, else ``recordedDate`` (STU3 ``assertedDate``). Never raises on bad data.
    """
    if _verification(resource.get("verificationStatus")).lower() in _DROPPED_VERIFICATION:
        return None
    if _verification(resource.get("clinicalStatus")).lower() in _DROPPED_CLINICAL:
        return None
    categories = [text(c) for c in as_list(resource.get("category"))]
    if any(categories) and "medication" not in categories:
        return None
    code = resource.get("code")
    substances = [code, *(get(r, "substance") for r in as_list(resource.get("reaction")))]
    ingredients: dict[str, Ingredient] = {}
    for concept in substances:
        for ingredient in ctx.table.classify(codings(concept), concept_text(concept)):
            ingredients.setdefault(ingredient.name, ingredient)
    named = [c for c in substances if concept_text(c) and not _type_from_code(codes(c), ctx)]
    substance = concept_text(named[0]) if named else concept_text(code)

    manifestations = [
        concept
        for reaction in as_list(resource.get("reaction"))
        for concept in as_list(get(reaction, "manifestation"))
    ]
    labels = tuple(label for label in (concept_text(m) for m in manifestations) if label)
    immune = any(ctx.codes.is_immune(codes(m), concept_text(m)) for m in manifestations)
    declared = ctx.string(resource.get("type"), _RTYPE, ref, "type")
    # Legacy C-CDA converters put the allergy category ("Drug allergy") into `code`.
    declared = declared or _type_from_code(codes(code), ctx)
    kind: Literal["allergy", "intolerance"] = (
        "allergy" if immune or (declared == "allergy" and not manifestations) else "intolerance"
    )

    onset = resource.get("onsetDateTime")
    when = ctx.date(onset, _RTYPE, ref, "onsetDateTime") or ctx.date(
        get(resource, "onsetPeriod", "start"), _RTYPE, ref, "onsetPeriod.start"
    )
    when = when or ctx.date(resource.get("recordedDate"), _RTYPE, ref, "recordedDate")
    when = when or ctx.date(resource.get("assertedDate"), _RTYPE, ref, "assertedDate")  # STU3
    reactions = as_list(resource.get("reaction"))
    descriptions = [text(get(r, "description")) for r in reactions]
    return IntoleranceEvent(
        ref=ref,
        origin=_RTYPE,
        substance=substance,
        ingredients=tuple(ingredients.values()),
        when=when,
        kind=kind,
        manifestations=labels,
        manifestation_codes=tuple(c for m in manifestations for c in codes(m)),
        reaction_text=" ".join(filter(None, [*labels, *descriptions])),
        criticality=ctx.string(resource.get("criticality"), _RTYPE, ref, "criticality"),
        severe=any(text(get(r, "severity")) == "severe" for r in reactions),
    )


def _verification(value: Any) -> str:
    # R4: CodeableConcept; STU3: a plain code.
    return text(value) or next(iter(codes(value)), "")


def _type_from_code(code_list: list[str], ctx: MappingContext) -> str:
    kinds = {ctx.codes.stop_reason_codes.get(code) for code in code_list}
    if "allergy" in kinds:
        return "allergy"
    return "intolerance" if "intolerance" in kinds else ""
