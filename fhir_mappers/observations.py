"""Observation -> SymptomScore (PHQ-9, GAD-7 totals) and Condition -> ConditionEntry.

A total score arrives as its own Observation (valueInteger, valueQuantity.value, or the
non-R4 valueDecimal some exports use) or as a component of the questionnaire panel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_mappers.accessors import as_list, codes, codings, concept_text, get, number, text
from fhir_mappers.codes import CodeLists, Instrument
from fhir_mappers.context import MappingContext
from fhir_mappers.record import Coding, ConditionEntry, SymptomScore

_DROPPED_STATUS = frozenset({"entered-in-error", "cancelled"})
_DROPPED_VERIFICATION = frozenset({"entered-in-error", "refuted"})


def map_observation(
    resource: Mapping[str, Any], ref: str, ctx: MappingContext
) -> SymptomScore | None:
    """A PHQ-9/GAD-7 total from an Observation (``ref`` ``"Observation/<id>"``), else None.

    The total is the Observation's own value when its ``code`` is a total-score LOINC of
    ``ctx.codes.score_codes``, or the matching ``component`` of a panel (``panel_codes``).
    None, silently, for any other Observation and for ``entered-in-error``/``cancelled`` ones;
    None with a ``MappingIssue`` for a total without a numeric value. ``when`` is the day of
    ``effectiveDateTime``, ``effectivePeriod.start``, ``effectiveInstant``, else ``issued``.
    Never raises on bad data: unreadable dates are reported on ``ctx`` and read as None.
    """
    rtype = "Observation"
    found = _score(resource, ctx)
    if found is None:
        return None  # not a score we use: nothing else of it is read (or reported)
    status = ctx.string(resource.get("status"), rtype, ref, "status")
    if status in _DROPPED_STATUS:
        return None
    instrument, loinc, value = found
    if value is None:
        ctx.issue(rtype, ref, "value[x]", f"{instrument} total without a numeric value")
        return None
    when = ctx.date(resource.get("effectiveDateTime"), rtype, ref, "effectiveDateTime")
    when = when or ctx.date(
        get(resource, "effectivePeriod", "start"), rtype, ref, "effectivePeriod"
    )
    when = when or ctx.date(resource.get("effectiveInstant"), rtype, ref, "effectiveInstant")
    when = when or ctx.date(resource.get("issued"), rtype, ref, "issued")
    return SymptomScore(ref=ref, instrument=instrument, loinc=loinc, value=value, when=when)


def names_a_score(resource: Mapping[str, Any], code_lists: CodeLists) -> bool:
    """Whether an Observation's ``code`` is a total-score or panel LOINC of ``code_lists``: the
    only Observations ``map_observation`` reads. ``mapper`` asks it before building anything
    for an Observation, since most of a chart's Observations are vitals and labs."""
    score_codes, panel_codes = code_lists.score_codes, code_lists.panel_codes
    for code in codes(resource.get("code")):
        if code in score_codes or code in panel_codes:
            return True
    return False


def map_condition(
    resource: Mapping[str, Any], ref: str, ctx: MappingContext
) -> ConditionEntry | None:
    """A Condition as a ``ConditionEntry``; None when its ``verificationStatus`` is refuted or
    entered-in-error. Reads R4 CodeableConcept and STU3 plain-code statuses; codings without a
    code are left out. Never raises: unreadable onset dates are reported on ``ctx``.
    """
    rtype = "Condition"
    verification = resource.get("verificationStatus")
    if (text(verification) or next(iter(codes(verification)), "")) in _DROPPED_VERIFICATION:
        return None
    clinical = resource.get("clinicalStatus")  # R4 CodeableConcept, STU3 plain code
    onset = ctx.date(resource.get("onsetDateTime"), rtype, ref, "onsetDateTime")
    onset = onset or ctx.date(get(resource, "onsetPeriod", "start"), rtype, ref, "onsetPeriod")
    return ConditionEntry(
        ref=ref,
        codes=tuple(
            Coding(text(c.get("system")), text(c.get("code")), text(c.get("display")))
            for c in codings(resource.get("code"))
            if text(c.get("code"))
        ),
        display=concept_text(resource.get("code")),
        clinical_status=text(clinical) or next(iter(codes(clinical)), ""),
        onset=onset,
    )


def _score(
    resource: Mapping[str, Any], ctx: MappingContext
) -> tuple[Instrument, str, float | None] | None:
    own_codes = codes(resource.get("code"))
    for code in own_codes:
        if code in ctx.codes.score_codes:
            return ctx.codes.score_codes[code], code, _value(resource)
    # A panel carries the total as one of its components.
    for code in own_codes:
        if code in ctx.codes.panel_codes:
            for component in as_list(resource.get("component")):
                for component_code in codes(get(component, "code")):
                    if component_code in ctx.codes.score_codes:
                        instrument = ctx.codes.score_codes[component_code]
                        return instrument, component_code, _value(component)
    return None


def _value(element: Any) -> float | None:
    for key in ("valueInteger", "valueDecimal"):
        value = number(get(element, key))
        if value is not None:
            return value
    return number(get(element, "valueQuantity", "value"))
