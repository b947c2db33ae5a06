"""AllergyIntolerance -> IntoleranceEvent, with the allergy/intolerance call made from the data.

``type`` is often missing in EHR data, so an immune manifestation (anaphylaxis, urticaria,
angioedema: ``codes.yaml`` ``immune_manifestations``) makes any record an allergy; a record the
clinician typed ``allergy`` stays an allergy, and one with neither is an intolerance. Whether an
allergy-typed record with only nocebo-shaped reactions (nausea, headache) still reads as
intolerance evidence is the pattern's call (``patterns.repeated-intolerance``), not the mapper's.
Refuted and entered-in-error records are dropped, as are food and environment ones, and records
whose ``clinicalStatus`` is resolved or inactive: the reaction no longer describes the patient
(often after a tolerated rechallenge), so it is not evidence. A status is read from every coding
(the HL7 code when there is one: Epic sends its own OID coding first) and from its text.

``when`` is the day the reaction last happened as far as the record says: the latest of its
onset (``onsetDateTime``, ``onsetPeriod.start``, a date-shaped ``onsetString``), each
``reaction.onset`` (when that manifestation showed) and ``lastOccurrence``, each read as the
first day of the period it names; ``recordedDate`` (STU3 ``assertedDate``) only when the record
gives no onset at all. The day a reaction is recorded is no day it happened: a reaction of
"2024" entered last month is dated 2024-01-01, so imprecision never pulls it into a look-back
window (docs/real-world-data.md, Dates). An onset in a form that names no day here
(``onsetAge``: the patient's birth date is not known to this mapper; ``onsetRange``;
"childhood") leaves the record undated rather than dated by its recent ``recordedDate``: a
reaction at age 20 re-entered last month is not recent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Final, Literal

from fhir_mappers.accessors import as_list, codes, codings, concept_text, get, parse_date, text
from fhir_mappers.context import MappingContext
from fhir_mappers.record import Ingredient, IntoleranceEvent

_DROPPED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_DROPPED_CLINICAL = frozenset({"resolved", "inactive", "entered-in-error", "refuted"})
_RTYPE: Final = "AllergyIntolerance"
# The code systems of clinicalStatus/verificationStatus (R4, and the STU3 URLs some exports keep).
_STATUS_SYSTEMS = frozenset(
    {
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
        "http://hl7.org/fhir/allergy-clinical-status",
        "http://hl7.org/fhir/allergy-verification-status",
    }
)
# Onset elements that name no day this mapper can compute (see the module docstring).
_UNDATED_ONSETS = ("onsetAge", "onsetRange", "onsetString", "onsetPeriod")


def map_allergy(
    resource: Mapping[str, Any], ref: str, ctx: MappingContext
) -> IntoleranceEvent | None:
    """An AllergyIntolerance as an ``IntoleranceEvent`` (see the module docstring for the
    allergy/intolerance call and what is dropped); None for a dropped record.

    ``ingredients`` are classified from ``code`` and each ``reaction.substance``; ``substance``
    is the first of those with a name that is not an allergy category; ``when`` is the last day
    the reaction happened (onset, ``reaction.onset`` or ``lastOccurrence``), ``recordedDate`` (STU3
    ``assertedDate``) only when no onset is given, None when the onset names no day. Never
    raises on bad data.
    """
    if _DROPPED_VERIFICATION.intersection(_statuses(resource.get("verificationStatus"))):
        return None
    if _DROPPED_CLINICAL.intersection(_statuses(resource.get("clinicalStatus"))):
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
        "allergy" if immune or declared.lower() == "allergy" else "intolerance"
    )

    reactions = as_list(resource.get("reaction"))
    descriptions = [text(get(r, "description")) for r in reactions]
    return IntoleranceEvent(
        ref=ref,
        origin=_RTYPE,
        substance=substance,
        ingredients=tuple(ingredients.values()),
        when=_reaction_day(resource, ref, ctx),
        kind=kind,
        manifestations=labels,
        manifestation_codes=tuple(c for m in manifestations for c in codes(m)),
        reaction_text=" ".join(filter(None, [*labels, *descriptions])),
        # Codes are lower case in FHIR, but EHRs send "High" and "Severe": read leniently.
        criticality=ctx.string(resource.get("criticality"), _RTYPE, ref, "criticality").lower(),
        severe=any(text(get(r, "severity")).lower() == "severe" for r in reactions),
        unnamed_manifestations=sum(1 for m in manifestations if not concept_text(m)),
    )


def _statuses(value: Any) -> set[str]:
    """Every status a clinicalStatus/verificationStatus states, as HL7 codes ("entered-in-error").

    R4 sends a CodeableConcept, STU3 a plain code. When an HL7 coding is present it decides, in
    whatever position (Epic sends a local OID coding first); otherwise every other coding's code
    and display and the concept's text are read ({"text": "Resolved"}).
    """
    if isinstance(value, str):
        return {_status_word(value)}
    found = codings(value)
    hl7 = [text(c.get("code")) for c in found if text(c.get("system")) in _STATUS_SYSTEMS]
    if any(hl7):
        return {_status_word(w) for w in hl7 if w}
    words = [text(c.get(key)) for c in found for key in ("code", "display")]
    words += [text(get(concept, "text")) for concept in as_list(value)]
    return {_status_word(w) for w in words if w}


def _status_word(value: str) -> str:
    # "Entered in Error", "ENTERED_IN_ERROR" -> "entered-in-error"
    return "-".join(value.strip().lower().replace("_", " ").split())


def _reaction_day(resource: Mapping[str, Any], ref: str, ctx: MappingContext) -> date | None:
    """The last day the record says the reaction happened (see the module docstring)."""
    onset = (
        ctx.date(resource.get("onsetDateTime"), _RTYPE, ref, "onsetDateTime")
        or ctx.date(get(resource, "onsetPeriod", "start"), _RTYPE, ref, "onsetPeriod.start")
        or parse_date(text(resource.get("onsetString")))
    )
    last = ctx.date(resource.get("lastOccurrence"), _RTYPE, ref, "lastOccurrence")
    # Each reaction's own onset (R4 reaction.onset) dates the reaction too, before recordedDate.
    reacted = [
        ctx.date(get(reaction, "onset"), _RTYPE, ref, f"reaction[{index}].onset")
        for index, reaction in enumerate(as_list(resource.get("reaction")))
    ]
    known = [d for d in (onset, last, *reacted) if d is not None]
    if known:
        return max(known)
    undated = [name for name in _UNDATED_ONSETS if resource.get(name) is not None]
    if undated:
        ctx.issue(_RTYPE, ref, undated[0], "onset names no day; record left undated")
        return None
    recorded = ctx.date(resource.get("recordedDate"), _RTYPE, ref, "recordedDate")
    return recorded or ctx.date(resource.get("assertedDate"), _RTYPE, ref, "assertedDate")  # STU3


def _type_from_code(code_list: list[str], ctx: MappingContext) -> str:
    kinds = {ctx.codes.stop_reason_codes.get(code) for code in code_list}
    if "allergy" in kinds:
        return "allergy"
    return "intolerance" if "intolerance" in kinds else ""
