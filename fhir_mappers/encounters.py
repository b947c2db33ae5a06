"""Encounter -> Visit.

``class`` is one Coding in R4, a list of CodeableConcepts in R5-style data, a word in DSTU2
exports ("ambulatory"), or missing. It is read to a v3 ActCode: v3 codes as they are, vendor codes
through the site's ``encounter_class_map`` (config/codes.yaml), and otherwise by their words
(``encounter_class_aliases``, found as whole words or phrases in the code, then the display,
then ``class.text``: "Telehealth Visit" is VR, "Inpatient Psychiatry" IMP). The site's class
lists then say which kind of visit it is; a class nobody can read is reported and the visit's
kind is "unknown". Whether a prescriber was seen is read from ``Encounter.type`` for an
outpatient visit and for one of unknown class too: a missing class is missing, not evidence that
the encounter was no visit (docs/encounter-classes.md). An encounter of unknown class is a stay
(kind inpatient) when it carries an admission's details (R4 ``hospitalization``, R5
``admission``) or its type names one (``inpatient_encounter_types``, config/codes.yaml).

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
    is read from the encounter types for an outpatient visit and for an unknown class
    (``type_says_prescriber``: True, False or None), and is False for the other known kinds
    (inpatient, emergency, other).
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
    if kind == "unknown" and _says_admitted(resource, type_codes, type_words, ctx):
        kind = "inpatient"
    prescriber: bool | None = None
    if kind in ("outpatient", "unknown"):
        key = (tuple(c.code for c in type_codes), " ".join(w for w in type_words if w))
        try:
            prescriber = ctx.visit_types[key]
        except KeyError:
            prescriber = ctx.visit_types[key] = ctx.codes.type_says_prescriber(*key)
    else:
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


def _says_admitted(
    resource: Mapping[str, Any], type_codes: list[Coding], type_words: list[str],
    ctx: MappingContext,
) -> bool:
    """An encounter of unreadable class that is a stay in hospital all the same: it carries the
    details of an admission (R4 ``hospitalization``, R5 ``admission``, not empty), or its type
    names one (``CodeLists.type_says_inpatient``: "Inpatient Psychiatry Admission")."""
    if any(resource.get(key) for key in ("hospitalization", "admission")):
        return True
    return ctx.codes.type_says_inpatient(
        (c.code for c in type_codes), " ".join(w for w in type_words if w)
    )


def _class_code(value: Any, ctx: MappingContext) -> str:
    """The v3 ActCode of ``Encounter.class`` in any of its shapes; "" when it cannot be read.

    A v3 code (or a code with no system) is an ActCode as it is, after an exact alias ("amb",
    "ambulatory"), when it is a class of the site's lists (``CodeLists.is_class``); any other
    code is read as a vendor code: only when it is an alias as a whole; a display, a ``text`` or
    a DSTU2 word by the alias phrases it contains (``CodeLists.class_from_words``). What reads
    to no known class is "" (reported as "encounter class not mapped"; the kind is unknown)."""
    aliases = ctx.codes.encounter_class_aliases
    if isinstance(value, str):
        word = " ".join(value.lower().split())
        act = aliases.get(word) or ctx.codes.class_from_words(value) or value.strip().upper()
        return act if ctx.codes.is_class(act) else ""
    codes: list[str] = []
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
                act = aliases.get(code.lower(), code.upper())
                if ctx.codes.is_class(act):
                    return act
                # Not a class we know ("CLINIC-7" sent without its system): a site's code,
                # read like one of an unmapped system, by its words.
            codes.append(code)
            words.append(text(coding.get("display")))
        words.append(text(get(concept, "text")))
    # A code is a token ("CLINIC-7" is a site's code, not the word clinic); a display or text is
    # free text, read by the alias phrases inside it.
    for code in codes:
        alias = aliases.get(" ".join(code.lower().split()))
        if alias:
            return alias
    for word in words:
        alias = ctx.codes.class_from_words(word) if word else ""
        if alias:
            return alias
    return ""
