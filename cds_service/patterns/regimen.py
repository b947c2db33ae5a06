"""Today's regimen as the patterns read it: standing (not as-needed) agents, orders that are still
alive, the patient's indications, and whole-word matching of free text against configured words.

Pure: no clock or I/O; every number comes from the calling pattern's thresholds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Protocol

from cds_service.patterns.timeline import is_current, taken_courses
from fhir_mappers.record import (
    CURRENT_STATUSES,
    Dispense,
    Ingredient,
    MedicationCourse,
    PatientRecord,
    was_taken,
)

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


@dataclass(frozen=True, slots=True)
class SignsOfLife:
    """What the record says of each ingredient's use (by ingredient name), read in one pass
    (``signs_of_life``) so that judging every order costs lookups, not another pass.

    ``latest``: the latest day anything shows it in use. ``stops``: (day recorded, day ended)
    of each course that was taken and has ended (stopped or completed, with an end date), the
    day recorded being its ``dateAsserted``, else its start."""

    latest: Mapping[str, date]
    stops: Mapping[str, tuple[tuple[date, date], ...]]

    def get(self, name: str) -> date | None:
        """The latest sign of use of the ingredient ``name``, or None."""
        return self.latest.get(name)


_ENDED = frozenset({"stopped", "completed"})


def last_sign_of_life(
    course: MedicationCourse, record: PatientRecord, signs: SignsOfLife | None = None
) -> date | None:
    """The latest date anything shows the course's ingredients in use: the order itself, a
    renewal or statement of the same ingredient, or a fill of it. ``signs`` is
    ``signs_of_life(record)``, passed by callers that ask about many courses."""
    signs = signs_of_life(record) if signs is None else signs
    dates = [course.start, *(signs.get(i.name) for i in course.ingredients)]
    known = [d for d in dates if d is not None]
    return max(known) if known else None


def signs_of_life(record: PatientRecord) -> SignsOfLife:
    """The ``SignsOfLife`` of the record: the latest start of a course that was prescribed or
    taken (``was_taken``), hand-over of a completed fill, or assertion of an active statement
    (``dateAsserted``: a medication reconciliation saying the drug is taken) of each
    ingredient, and the recorded ends of its courses.

    Only records of use count: a not-taken, cancelled or unknown record, a proposal, an
    unsigned order or a declined fill says nothing about the drug being taken, and must not
    keep an old "active" order in today's regimen."""
    latest: dict[str, date] = {}
    stops: dict[str, list[tuple[date, date]]] = {}
    dated: list[tuple[date | None, tuple[Ingredient, ...]]] = []
    for c in record.courses:
        if not was_taken(c) or c.status == "unknown":  # "unknown": use not known either way
            continue
        dated.append((c.start, c.ingredients))
        if c.asserted is not None and c.status in CURRENT_STATUSES["MedicationStatement"]:
            dated.append((c.asserted, c.ingredients))
        recorded = c.asserted or c.start
        if c.status in _ENDED and c.end is not None and recorded is not None:
            for ingredient in c.ingredients:
                stops.setdefault(ingredient.name, []).append((recorded, c.end))
    dated += [(d.handed_over, d.ingredients) for d in record.dispenses if d.status == "completed"]
    for when, ingredients in dated:
        if when is None:
            continue
        for ingredient in ingredients:
            seen = latest.get(ingredient.name)
            if seen is None or when > seen:
                latest[ingredient.name] = when
    return SignsOfLife(latest, {name: tuple(ends) for name, ends in stops.items()})


def is_stale(
    course: MedicationCourse,
    record: PatientRecord,
    now: date,
    stale_order_days: int,
    signs: SignsOfLife | None = None,
) -> bool:
    """An order still marked active that the record no longer bears out: no renewal, fill or
    statement for ``stale_order_days``, or a later record (a statement from a medication
    reconciliation, a later order) says the drug was stopped after this order began, and
    nothing shows it taken since (``stopped_since``). EHRs rarely close old orders, so
    "active" alone does not make it today's regimen. ``signs`` is ``signs_of_life(record)``,
    passed by callers that ask about many courses."""
    if course.is_draft or course.end is not None:
        return False  # an order with a planned end says itself how long it runs
    signs = signs_of_life(record) if signs is None else signs
    if stopped_since(course, signs):
        return True
    seen = last_sign_of_life(course, record, signs)
    return seen is not None and (now - seen).days > stale_order_days


def stopped_since(course: MedicationCourse, signs: SignsOfLife) -> bool:
    """Whether every ingredient of the open ``course`` has a later record of its end: a course
    recorded after this one began (by ``dateAsserted`` or start), ended after it began, with
    no sign of use after that end. A renewal written before the old order's end is no such
    record: it was recorded before the order it would end began."""
    if course.start is None or not course.ingredients:
        return False
    began = course.start
    for ingredient in course.ingredients:
        last_use = signs.latest.get(ingredient.name)
        if not any(
            recorded > began and ended > began and (last_use is None or last_use <= ended)
            for recorded, ended in signs.stops.get(ingredient.name, ())
        ):
            return False
    return True


class DepotSigns(Protocol):
    """What recognises a long-acting injection or a dose given less often than daily
    (``given_as_depot``): a pattern's thresholds (regimen-escalation, nonadherence)."""

    @property
    def injectable_form_words(self) -> tuple[str, ...]:
        """Words of a product's name that make it an injectable or a depot."""
    @property
    def injection_route_codes(self) -> tuple[str, ...]:
        """``Dosage.route`` codes of an injection."""
    @property
    def injection_route_words(self) -> tuple[str, ...]:
        """Words of a route or a sig that name an injection."""
    @property
    def less_than_daily_sig_words(self) -> tuple[str, ...]:
        """Sig words of a dose given less often than daily ("monthly")."""
    @property
    def sig_interval_units(self) -> Mapping[str, float]:
        """Interval units of a sig ("every 4 weeks") in days."""
    @property
    def daily_sig_words(self) -> tuple[str, ...]:
        """Sig words of a daily cadence, which no interval overrides."""


def given_as_depot(item: MedicationCourse | Dispense, signs: DepotSigns) -> bool:
    """An order, statement or fill of a long-acting injection or of a dose given less often than
    daily: a ``DoseSchedule`` (an order's structured timing); ``injectable_form_words`` in the
    product's name (its display, ``Medication.form`` or the product table's name of a bare
    RxNorm code: "paliperidone palmitate ... Prefilled Syringe", "Aristada"); an injection route
    (``injection_route_codes``, or ``injection_route_words`` in the route's words or the sig:
    "IM", "Intramuscular route"); or a free-text sig less often than daily
    (``less_than_daily``), unless the order's structured timing gives a dose every day (a
    daily dose is known: "Blood test every 3 months" in its sig is no dose cadence). The word
    lists and their sources: config/default.yaml (regimen-escalation, aliased by
    nonadherence)."""
    structured_daily = False
    if isinstance(item, MedicationCourse):
        if item.schedule is not None:
            return True
        structured_daily = item.daily_dose_mg is not None
    how = item.administration()
    if mentions_any(f"{item.display} {how.form}", signs.injectable_form_words):
        return True
    if any(c.code in signs.injection_route_codes for c in how.routes):
        return True
    route_words = " ".join(f"{c.code} {c.display}" for c in how.routes if not c.system)
    route_words += " " + " ".join(c.display for c in how.routes)
    if mentions_any(f"{route_words} {how.sig}", signs.injection_route_words):
        return True
    return not structured_daily and less_than_daily(how.sig, signs)


# English numerals a sig writes out ("every four weeks", "every other week").
_NUMBERS = {
    "one": 1, "other": 2, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "eight": 8,
    "twelve": 12,
}  # fmt: skip


def less_than_daily(sig: str, signs: DepotSigns) -> bool:
    """Whether a free-text sig gives its dose less often than once a day: a word of
    ``less_than_daily_sig_words`` ("monthly"), or "every"/"each"/"q" with an optional count and
    a unit of ``sig_interval_units`` longer than a day in all ("every 4 weeks", "q2w", "every
    other week", "q28 days"); not when the sig also gives a daily cadence (``daily_sig_words``:
    "daily, increase weekly" is a daily dose being titrated)."""
    if not sig or mentions_any(sig, signs.daily_sig_words):
        return False
    if mentions_any(sig, signs.less_than_daily_sig_words):
        return True
    if not signs.sig_interval_units:
        return False
    for match in _every(tuple(signs.sig_interval_units)).finditer(padded_words(sig)):
        count_text = match.group(1)
        count = 1.0 if count_text is None else _NUMBERS.get(count_text) or _number(count_text)
        if count is not None and count * signs.sig_interval_units[match.group(2)] > 1:
            return True
    return False


@lru_cache(maxsize=8)
def _every(units: tuple[str, ...]) -> re.Pattern[str]:
    # Built once per configured unit list (configuration, the same on every call).
    longest_first = sorted(units, key=len, reverse=True)
    return re.compile(
        r" (?:every|each|q) ?(\d+|[a-z]+)? ?(" + "|".join(map(re.escape, longest_first)) + r")(?= )"
    )


def _number(word: str) -> float | None:
    return float(word) if word.isdigit() else None


# An order paused by its prescriber (R4 MedicationRequest.status): in force, but not taken now.
_HELD = "on-hold"


def is_held(course: MedicationCourse) -> bool:
    """An order (or a draft re-sending one) on hold: the prescriber has paused the drug, so it is
    not being taken now, whatever its dates say."""
    return course.status.lower() == _HELD


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

