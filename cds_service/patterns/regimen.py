"""Today's regimen as the patterns read it: standing (not as-needed) agents, orders that are still
alive, the patient's indications, and whole-word matching of free text against configured words.

Pure: no clock or I/O; every number comes from the calling pattern's thresholds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from functools import lru_cache

from cds_service.patterns.timeline import is_current, taken_courses
from fhir_mappers.record import CURRENT_STATUSES, MedicationCourse, PatientRecord

_WORD = re.compile(r"[a-z0-9]+")


def padded_words(value: str) -> str:
    """Lower-case words joined by single spaces and padded, for whole-phrase search."""
    return " " + " ".join(_WORD.findall(value.lower())) + " "


def mentions_any(text: str, phrases: Iterable[str]) -> bool:
    """Whether ``text`` contains any phrase as whole words ("hives" never matches "archives")."""
    padded = padded_words(text)
    return any(p in padded for p in _padded_phrases(tuple(phrases)))


@lru_cache(maxsize=64)
def _padded_phrases(phrases: tuple[str, ...]) -> tuple[str, ...]:
    # A pattern's word lists are configuration, the same on every call: padded once. (Only the
    # lists are cached, never the chart's text.)
    return tuple(padded_words(p) for p in phrases if p.strip())


def last_sign_of_life(
    course: MedicationCourse, record: PatientRecord, signs: Mapping[str, date] | None = None
) -> date | None:
    """The latest date anything shows the course's ingredients in use: the order itself, a
    renewal or statement of the same ingredient, or a fill of it. ``signs`` is
    ``signs_of_life(record)``, passed by callers that ask about many courses."""
    signs = signs_of_life(record) if signs is None else signs
    dates = [course.start, *(signs.get(i.name) for i in course.ingredients)]
    known = [d for d in dates if d is not None]
    return max(known) if known else None


def signs_of_life(record: PatientRecord) -> dict[str, date]:
    """The latest start of a course, hand-over of a fill, or assertion of an active statement
    (``dateAsserted``: a medication reconciliation saying the drug is taken) of each ingredient
    (by name): one pass over the record, so that judging every order costs a lookup, not
    another pass."""
    latest: dict[str, date] = {}
    dated = [(c.start, c.ingredients) for c in record.courses]
    dated += [
        (c.asserted, c.ingredients)
        for c in record.courses
        if c.asserted is not None and c.status in CURRENT_STATUSES["MedicationStatement"]
    ]
    dated += [(d.handed_over, d.ingredients) for d in record.dispenses]
    for when, ingredients in dated:
        if when is None:
            continue
        for ingredient in ingredients:
            seen = latest.get(ingredient.name)
            if seen is None or when > seen:
                latest[ingredient.name] = when
    return latest


def is_stale(
    course: MedicationCourse,
    record: PatientRecord,
    now: date,
    stale_order_days: int,
    signs: Mapping[str, date] | None = None,
) -> bool:
    """An order still marked active with no renewal, fill or statement for ``stale_order_days``:
    EHRs rarely close old orders, so "active" alone does not make it today's regimen.
    ``signs`` is ``signs_of_life(record)``, passed by callers that ask about many courses."""
    if course.is_draft or course.end is not None:
        return False  # an order with a planned end says itself how long it runs
    seen = last_sign_of_life(course, record, signs)
    return seen is not None and (now - seen).days > stale_order_days


def standing_regimen(
    record: PatientRecord, now: date, stale_order_days: int
) -> list[MedicationCourse]:
    """Current psychotropic courses taken on a schedule (PRN left out), stale orders left out."""
    signs = signs_of_life(record)
    return [
        c
        for c in taken_courses(record)
        if is_current(c, now)
        and c.is_psychotropic
        and not c.is_prn
        and not is_stale(c, record, now, stale_order_days, signs)
    ]


def indications(
    record: PatientRecord, indication_codes: Mapping[str, Sequence[str]]
) -> frozenset[str]:
    """Indications ("bipolar", ...) whose configured codes or code prefixes match a condition
    that is not resolved or refuted."""
    found: set[str] = set()
    for condition in record.conditions:
        if condition.clinical_status in ("resolved", "inactive", "entered-in-error"):
            continue
        for coding in condition.codes:
            code = coding.code.upper()
            for indication, prefixes in indication_codes.items():
                if any(code.startswith(p.upper()) for p in prefixes):
                    found.add(indication)
    return frozenset(found)

