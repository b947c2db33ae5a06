"""Encounter -> Visit.

``class`` is one Coding in R4, a list of CodeableConcepts in R5-style data, a word in DSTU2
exports ("ambulatory"), or missing; all are read to a v3 ActCode where possible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_mappers.accessors import as_list, codings, get, text
from fhir_mappers.context import MappingContext
from fhir_mappers.record import Coding, Visit

_RTYPE = "Encounter"


def map_encounter(resource: Mapping[str, Any], ref: str, ctx: MappingContext) -> Visit | None:
    status = ctx.string(resource.get("status"), _RTYPE, ref, "status")
    if status == "entered-in-error":
        return None
    period = resource.get("period")
    start = ctx.date(get(period, "start"), _RTYPE, ref, "period.start")
    end = ctx.date(get(period, "end"), _RTYPE, ref, "period.end")
    type_codes = []
    for concept in as_list(resource.get("type")):
        for c in codings(concept):
            code = text(c.get("code"))
            if code:
                type_codes.append(Coding(text(c.get("system")), code, text(c.get("display"))))
    return Visit(
        ref=ref,
        status=status,
        class_code=_class_code(resource.get("class"), ctx),
        start=start,
        end=end,
        type_codes=tuple(type_codes),
    )


def _class_code(value: Any, ctx: MappingContext) -> str:
    if isinstance(value, str):
        return ctx.codes.encounter_class_aliases.get(value.strip().lower(), value.strip().upper())
    for coding in codings(value):
        code = text(coding.get("code"))
        if code:
            return ctx.codes.encounter_class_aliases.get(code.lower(), code.upper())
    return ""
