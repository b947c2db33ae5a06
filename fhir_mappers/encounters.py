"""Encounter -> Visit.

``class`` is one Coding in R4, a list of CodeableConcepts in R5-style data, a word in DSTU2
exports ("ambulatory"), or missing. It is read to a v3 ActCode: v3 codes as they are, vendor codes
through the site's ``encounter_class_map`` (config/codes.yaml), and otherwise by their words
(``encounter_class_aliases``: the code, then the display). The site's class lists then say which
kind of visit it is; a class nobody can read is reported and the visit's kind is "unknown".

R5 spells the visit's days ``actualPeriod`` and a finished visit ``completed``; both are read.
A visit dated only by a month or a year counts on the first day of that period (the certain
lower bound; documented in the data-quality notes of the README).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from fhir_mappers.accessors import as_list, codings, get, text
from fhir_mappers.context import MappingContext
from fhir_mappers.record import Coding, Visit, VisitKind

_RTYPE = "Encounter"


def map_encounter(resource: Mapping[str, Any], ref: str, ctx: MappingContext) -> Visit | None:
    """An Encounter as a ``Visit`` (see the module docstring); None when entered-in-error.

    ``kind`` comes from the site's class lists (``ctx.codes.visit_kind``). ``prescriber_visit``
    is read from the encounter types for an outpatient visit (``type_says_prescriber``: True,
    False or None), False for other known kinds and None for an unknown class.
    ``is_current`` when ``ref`` is the hook's ``context.encounterId``. Never raises: an unread
    class or date is reported on ``ctx``.
    """
    status = ctx.string(resource.get("status"), _RTYPE, ref, "status")
    if status == "entered-in-error":
        return None
    period = resource.get("period")
    where = "period"
    if period is None and resource.get("actualPeriod") is not None:
        period, where = resource.get("actualPeriod"), "actualPeriod"
    start = ctx.date(get(period, "start"), _RTYPE, ref, f"{where}.start")
    end = ctx.date(get(period, "end"), _RTYPE, ref, f"{where}.end")
    type_codes = []
    type_words = []
    for concept in as_list(resource.get("type")):
        type_words.append(text(get(concept, "text")))
        for c in codings(concept):
            code = text(c.get("code"))
            type_words.append(text(c.get("display")))
            if code:
                type_codes.append(Coding(text(c.get("system")), code, text(c.get("display"))))
    class_code = _class_code(resource.get("class"), ctx)
    if not class_code and resource.get("class") is not None:
        ctx.issue(_RTYPE, ref, "class", "encounter class not mapped")
    kind = cast(VisitKind, ctx.codes.visit_kind(class_code))
    prescriber: bool | None = None
    if kind == "outpatient":
        key = (tuple(c.code for c in type_codes), " ".join(w for w in type_words if w))
        try:
            prescriber = ctx.visit_types[key]
        except KeyError:
            prescriber = ctx.visit_types[key] = ctx.codes.type_says_prescriber(*key)
    elif kind != "unknown":
        prescriber = False
    return Visit(
        ref=ref,
        status=status,
        class_code=class_code,
        start=start,
        end=end,
        type_codes=tuple(type_codes),
        kind=kind,
        prescriber_visit=prescriber,
        is_current=ctx.current_encounter is not None and ref == ctx.current_encounter,
    )


def _class_code(value: Any, ctx: MappingContext) -> str:
    """The v3 ActCode of ``Encounter.class`` in any of its shapes; "" when it cannot be read."""
    aliases = ctx.codes.encounter_class_aliases
    if isinstance(value, str):
        word = " ".join(value.lower().split())
        return aliases.get(word, value.strip().upper())
    words: list[str] = []
    for concept in as_list(value):  # R5: a list of CodeableConcepts; R4: one Coding
        for coding in codings(concept):
            system, code = text(coding.get("system")), text(coding.get("code"))
            if not code:
                continue
            mapped = ctx.codes.encounter_class_map.get((system, code))
            if mapped:
                return mapped
            if not system or system in ctx.codes.v3_class_systems:
                return aliases.get(code.lower(), code.upper())
            words.extend([code, text(coding.get("display"))])
        words.append(text(get(concept, "text")))
    for word in words:
        alias = aliases.get(" ".join(word.lower().split()))
        if alias:
            return alias
    return ""
