"""Daily dose in mg (and units per day) from FHIR Dosage, when it can be derived without guessing.

R4 puts the dose in ``doseAndRate[0].doseQuantity``; STU3 and DSTU2 put ``doseQuantity`` on the
Dosage itself, and DSTU2 spells ``periodUnits``. Dosages that share a ``sequence`` (or have none)
apply together and are summed. Several sequences (or, without sequences, lines with different
``boundsPeriod`` starts) are the steps of a multi-step order (titration, taper, loading dose):
each step keeps its own days and daily dose, and the order's dose is its last step's. An order is
as-needed only when every line is: a PRN line next to a scheduled one (a scheduled antipsychotic
with an extra PRN dose) leaves the scheduled dose standing. A PRN ceiling is not a daily dose.
A dose with no unit is a count of the product's units ("2" of a 50 mg tablet is 100 mg), as
Synthea and several EHRs write it. Free-text sigs are not parsed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import orjson

from fhir_mappers.accessors import (
    as_list,
    get,
    number,
    parse_date,
    quantity_unit,
    quantity_value,
    says,
    text,
)
from fhir_mappers.codes import CodeLists
from fhir_mappers.medication_source import ResolvedMedication
from fhir_mappers.record import NO_ADMINISTRATION, Administration, Coding, DoseSchedule, DoseStep

_MG_PER_UNIT = {"mg": 1.0, "g": 1000.0, "mcg": 0.001, "ug": 0.001, "[mg]": 1.0}
# Used only when codes.yaml has no dose_count_units list (an older site file).
_FALLBACK_COUNT_UNITS = frozenset(
    {"{pill}", "pill", "{tbl}", "tab", "tablet", "tablets", "cap", "capsule", "capsules", "1"}
)
# Timing.repeat.bounds[x]: a line's dates, which its daily dose does not depend on.
_BOUNDS = frozenset({"boundsDuration", "boundsRange", "boundsPeriod"})
# DailyDose.problem of dosage lines whose order is not said (see daily_dose).
UNORDERED_SPANS = "dosage lines without a sequence, each for its own duration: steps or together?"
_LONGEST_DURATION_DAYS = 36_500  # a century: any longer bound names no end
_DAYS_PER_PERIOD_UNIT = {
    "s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0, "a": 365.0,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DailyDose:
    """The daily dose ``daily_dose`` derived from an order's Dosage lines.

    ``mg`` is mg per day of the single ingredient and ``units`` the product's units (tablets,
    capsules, mL) per day; both are the last step's for a multi-step order, and None when they
    cannot be derived (no scheduled line, a combination product for ``mg``, an unusable dose).
    ``is_prn`` when every line is as-needed; ``problem`` says why a dose that was given could not
    be used (reported as a ``MappingIssue``); ``steps`` has two or more ``DoseStep`` for a
    multi-step order, else is empty.
    """

    mg: float | None  # total mg per day of the (single) ingredient; the last step's, if several
    units: float | None  # tablets/capsules (or mL) per day, for days-supply estimates
    is_prn: bool = False
    problem: str | None = None  # why a dose that was given could not be used
    steps: tuple[DoseStep, ...] = ()  # two or more for a multi-step order


def daily_dose(
    dosages: Any,
    medication: ResolvedMedication,
    codes: CodeLists,
    *,
    starts: date | None = None,
) -> DailyDose:
    """The daily dose of a list of Dosage; ``starts`` is the order's start, where a first step
    without bounds begins (the later steps follow on from it by their durations).

    ``dosages`` is ``MedicationRequest.dosageInstruction`` (or a Statement's ``dosage``): a list
    of Dosage objects, a lone one, or None. ``medication`` gives the strength (mg per unit) that
    turns a count of units into mg. Never raises: what cannot be read is ``DailyDose.problem``.
    """
    instructions = [d for d in as_list(dosages) if isinstance(d, Mapping)]
    as_needed = [is_prn_line(d, codes) for d in instructions]
    is_prn = bool(instructions) and all(as_needed)
    scheduled = [d for d, prn in zip(instructions, as_needed, strict=True) if not prn]
    if len(instructions) != len(as_list(dosages)):
        return DailyDose(None, None, is_prn, "dosage is not an object")
    if not scheduled:
        return DailyDose(None, None, is_prn)
    groups = _step_groups(scheduled)
    totals: list[tuple[float | None, float | None]] = []
    problem = None
    for group in groups:
        total_mg: float | None = 0.0
        total_units: float | None = 0.0
        lines = [_one_instruction(instruction, medication, codes) for instruction in group]
        if len(groups) == 1 and _unordered_spans(group) and len({(m, u) for m, u, _ in lines}) > 1:
            # "2 mg for 7 days", "1 mg for 7 days", with no sequence: a taper (steps in the
            # order written) or lines taken together? The Dosage does not say, and the sum would
            # read a taper as a dose increase; so no daily dose, and the reason.
            return DailyDose(None, None, is_prn, UNORDERED_SPANS)
        for mg, units, why in lines:
            problem = problem or why
            total_mg = None if mg is None or total_mg is None else total_mg + mg
            total_units = None if units is None or total_units is None else total_units + units
        # Combination products have no single-ingredient mg; their tablet count still gives supply.
        if len(medication.ingredients) != 1:
            total_mg = None
        totals.append((_round(total_mg), _round(total_units)))
    if len(groups) == 1:
        return DailyDose(totals[0][0], totals[0][1], is_prn, problem)
    steps = _dated_steps(groups, [mg for mg, _ in totals], starts)
    per_step = {u for _, u in totals}
    # Supply per day differs between steps: a single figure would misstate every fill.
    step_units = per_step.pop() if len(per_step) == 1 else None
    return DailyDose(totals[-1][0], step_units, is_prn, problem, steps)


def daily_dose_memo(
    dosages: Any,
    medication: ResolvedMedication,
    codes: CodeLists,
    memo: dict[tuple[Any, ...], Any],
    *,
    starts: date | None = None,
) -> DailyDose:
    """``daily_dose``, remembered in ``memo`` (one mapping call's ``MappingContext.doses``).

    Only an order with exactly one Dosage line is remembered: one line is one step, so its dose
    never reads the line's bounds or ``starts``, and a long history repeats the same line with
    only its dates changed. The key is the line without its ``timing.repeat.bounds*`` plus the
    product's strength, concentration and ingredient count: everything else ``daily_dose`` reads.
    ``codes`` must be the same for every call sharing ``memo``.
    """
    lines = as_list(dosages)
    if len(lines) != 1 or type(lines[0]) is not dict:
        return daily_dose(dosages, medication, codes, starts=starts)
    line = lines[0]
    timing = line.get("timing")
    repeat = timing.get("repeat") if type(timing) is dict else None
    if type(repeat) is dict and not _BOUNDS.isdisjoint(repeat):
        unbounded = {k: v for k, v in repeat.items() if k not in _BOUNDS}
        line = {**line, "timing": {**timing, "repeat": unbounded}}  # type: ignore[dict-item]
    try:
        serialised = orjson.dumps(line)
    except (orjson.JSONEncodeError, TypeError):  # not plain JSON: compute, do not remember
        return daily_dose(dosages, medication, codes, starts=starts)
    key = (
        serialised,
        medication.strength_mg,
        medication.concentration_mg_per_ml,
        len(medication.ingredients),
    )
    found: DailyDose | None = memo.get(key)
    if found is None:
        found = daily_dose(dosages, medication, codes, starts=starts)
        memo[key] = found
    return found


def dose_schedule(
    dosages: Any, medication: ResolvedMedication, codes: CodeLists
) -> DoseSchedule | None:
    """The ``DoseSchedule`` of an order of one scheduled Dosage line given less often than once a
    day (``timing.repeat`` frequency per period of days, weeks, months or years); None for any
    other order (daily or more often, several lines, PRN, no dose in mg)."""
    lines = dosages if type(dosages) is list else as_list(dosages)
    if len(lines) != 1 or type(lines[0]) is not dict:
        return None
    repeat = get(lines[0], "timing", "repeat")
    if type(repeat) is dict and repeat.get("periodUnit") == "d" and repeat.get("period", 1) == 1:
        return None  # daily: the usual order, decided without reading more of it
    if is_prn_line(lines[0], codes):
        return None
    unit = text(get(repeat, "periodUnit")) or text(get(repeat, "periodUnits"))
    days_per_unit = _DAYS_PER_PERIOD_UNIT.get(unit)
    period = number(get(repeat, "period")) or 1.0
    frequency = number(get(repeat, "frequency")) or 1.0
    if days_per_unit is None or period <= 0 or frequency <= 0:
        return None
    days = period * days_per_unit
    if frequency / days >= 1:
        return None  # once a day or more often: mg/day is the dose as written
    mg_per_day = _one_instruction(lines[0], medication, codes)[0]
    if mg_per_day is None or len(medication.ingredients) != 1:
        return None
    return DoseSchedule(round(mg_per_day * days / frequency, 3), frequency, period, unit)


def duration_end(dosages: Any, start: date | None, codes: CodeLists) -> date | None:
    """The last day of an order whose every scheduled Dosage line runs for a
    ``timing.repeat.boundsDuration`` (days, weeks or months of 30 days), or for a number of
    administrations (``timing.repeat.count``: a single dose, "5 doses, twice a day"), counted
    from ``start`` (its first day): ``start`` + the longest duration - 1 day, the lines applying
    together. None without a ``start``, without a scheduled line, or when any scheduled line has
    no duration (it runs on). Multi-step orders date their steps themselves
    (``DailyDose.steps``)."""
    if start is None:
        return None
    lines = [d for d in as_list(dosages) if isinstance(d, Mapping) and not is_prn_line(d, codes)]
    days = [_line_days(get(d, "timing", "repeat")) for d in lines]
    if not days or any(n is None for n in days):
        return None
    return start + timedelta(days=max(n for n in days if n is not None) - 1)


def _unordered_spans(group: list[Mapping[str, Any]]) -> bool:
    """Several lines with no ``sequence``, each bounded by a duration of its own."""
    return len(group) > 1 and all(
        _step_key(d) is None and get(d, "timing", "repeat", "boundsDuration") is not None
        for d in group
    )


def _step_key(dosage: Mapping[str, Any]) -> Any:
    sequence = number(dosage.get("sequence"))
    return None if sequence is None else int(sequence)


def _bounds(dosage: Mapping[str, Any]) -> Any:
    return get(dosage, "timing", "repeat", "boundsPeriod")


def _step_groups(scheduled: list[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Lines applied together, one group per step, in step order."""
    if any(_step_key(d) is not None for d in scheduled):
        by_key: dict[Any, list[Mapping[str, Any]]] = {}
        for dosage in scheduled:
            by_key.setdefault(_step_key(dosage), []).append(dosage)
        # Lines without a sequence go with the first step (they are not a later step).
        keys = sorted(by_key, key=lambda k: (-1 if k is None else k))
        if None in by_key and len(keys) > 1:
            by_key[keys[1]] = by_key.pop(None) + by_key[keys[1]]
            keys = keys[1:]
        return [by_key[k] for k in keys]
    starts = {parse_date(get(_bounds(d), "start")) for d in scheduled}
    if len(starts) <= 1 or None in starts:
        return [scheduled]
    by_start: dict[date, list[Mapping[str, Any]]] = {}
    for dosage in scheduled:
        day = parse_date(get(_bounds(dosage), "start"))
        if day is not None:
            by_start.setdefault(day, []).append(dosage)
    return [by_start[k] for k in sorted(by_start)]


def _dated_steps(
    groups: list[list[Mapping[str, Any]]], doses: list[float | None], starts: date | None
) -> tuple[DoseStep, ...]:
    """Each step's days: its boundsPeriod, or its boundsDuration after the step before (the
    first from the order's start)."""
    steps: list[DoseStep] = []
    previous_end: date | None = None
    for index, (group, mg) in enumerate(zip(groups, doses, strict=True)):
        first = group[0]
        bounds = _bounds(first)
        follows = previous_end + timedelta(days=1) if previous_end is not None else None
        start = parse_date(get(bounds, "start")) or (starts if index == 0 else follows)
        end = parse_date(get(bounds, "end"), latest=True)
        if end is None and start is not None:
            days = _duration_days(get(first, "timing", "repeat", "boundsDuration"))
            end = start + timedelta(days=days - 1) if days else None
        steps.append(DoseStep(_step_key(first), start, end, mg))
        previous_end = end
    return tuple(steps)


def _line_days(repeat: Any) -> int | None:
    """Days one Dosage line runs: its ``boundsDuration``, else its ``count`` of administrations
    at its frequency (a count of 1 is one day whatever the frequency); None when neither says."""
    by_duration = _duration_days(get(repeat, "boundsDuration"))
    if by_duration is not None:
        return by_duration
    count = number(get(repeat, "count"))
    if count is None or count < 1 or count != int(count):
        return None
    if count == 1:
        return 1
    frequency = number(get(repeat, "frequency")) or 1.0
    period = number(get(repeat, "period"))
    unit = text(get(repeat, "periodUnit"))
    if not period or unit not in _DAYS_PER_PERIOD_UNIT:
        return None  # several doses at an unknown pace: the end is not known
    per_day = frequency / (period * _DAYS_PER_PERIOD_UNIT[unit])
    return max(1, math.ceil(count / per_day))


def _duration_days(duration: Any) -> int | None:
    amount = quantity_value(duration)
    unit = quantity_unit(duration).lower()
    factor = {"d": 1, "day": 1, "days": 1, "wk": 7, "week": 7, "weeks": 7, "mo": 30}.get(unit)
    # Beyond any real course (a "1e400" or a 9999-year duration) is no end either: the order
    # runs on, rather than being dropped by an overflow.
    if amount is None or factor is None or not 0 < amount * factor <= _LONGEST_DURATION_DAYS:
        return None
    return round(amount * factor)


def administrations_per_day(timing: Any, codes: CodeLists) -> float | None:
    """How many times a day a Timing fires; ``None`` when it does not say."""
    repeat = get(timing, "repeat")
    frequency = number(get(repeat, "frequency"))
    period = number(get(repeat, "period"))
    unit = text(get(repeat, "periodUnit")) or text(get(repeat, "periodUnits"))
    if period and unit in _DAYS_PER_PERIOD_UNIT:
        return (frequency or 1.0) / (period * _DAYS_PER_PERIOD_UNIT[unit])
    fixed_times = len(as_list(get(repeat, "when"))) or len(as_list(get(repeat, "timeOfDay")))
    if fixed_times and frequency is None:
        return float(fixed_times)
    code = text(get(timing, "code", "text")).upper()
    for coding in as_list(get(timing, "code", "coding")):
        code = text(get(coding, "code")).upper() or code
    return codes.timing_codes_per_day.get(code)


def _one_instruction(
    dosage: Mapping[str, Any], medication: ResolvedMedication, codes: CodeLists
) -> tuple[float | None, float | None, str | None]:
    """(mg per day, units per day, problem) of one Dosage."""
    dose = get(dosage, "doseAndRate", 0, "doseQuantity") or dosage.get("doseQuantity")
    if dose is None:
        return None, None, None  # text-only sig or a dose range: nothing to report
    value = quantity_value(dose)
    unit = quantity_unit(dose).lower()
    if value is None:
        return None, None, "dose without a numeric value"
    per_day = administrations_per_day(dosage.get("timing"), codes)
    if unit in _MG_PER_UNIT:
        mg: float | None = value * _MG_PER_UNIT[unit]
        strength = medication.strength_mg
        units = value * _MG_PER_UNIT[unit] / strength if strength else None
    elif not unit or unit in (codes.dose_count_units or _FALLBACK_COUNT_UNITS):
        mg = value * medication.strength_mg if medication.strength_mg else None
        units = value
    elif unit == "ml":
        mg = (
            value * medication.concentration_mg_per_ml
            if medication.concentration_mg_per_ml
            else None
        )
        units = value
    else:
        return None, None, "dose unit not convertible to mg"
    if per_day is None:
        return None, None, "dose frequency unknown"
    problem = None
    if mg is None and len(medication.ingredients) == 1:
        problem = "product strength unknown"
    return (
        mg * per_day if mg is not None else None,
        units * per_day if units is not None else None,
        problem,
    )


def administration(dosages: Any, medication: ResolvedMedication) -> Administration:
    """How the medication is given (``Administration``): ``medication.form``, the codings (and
    text) of each Dosage line's ``route`` and the lines' free text (``text``,
    ``patientInstruction``), as sent; read, not judged (the patterns hold the word lists)."""
    routes: list[Coding] = []
    sig: list[str] = []
    # Read for every psychotropic order and fill of a long history: most lines have a text and
    # no route, so the loop tests before it calls.
    for line in dosages if type(dosages) is list else as_list(dosages):
        if type(line) is not dict and not isinstance(line, Mapping):
            continue
        route = line.get("route")
        if route is not None:
            for coding in as_list(get(route, "coding")):
                if isinstance(coding, Mapping):
                    routes.append(_route_coding(
                        text(coding.get("system")), text(coding.get("code")),
                        text(coding.get("display")),
                    ))
            if text(get(route, "text")):
                routes.append(_route_coding("", "", text(get(route, "text"))))
        for key in ("text", "patientInstruction"):
            words = line.get(key)
            if words and type(words) is str and words.strip():
                sig.append(words.strip())
    if not (medication.form or routes or sig):
        return NO_ADMINISTRATION
    return Administration(medication.form, tuple(routes), " ".join(sig))


@lru_cache(maxsize=256)
def _route_coding(system: str, code: str, display: str) -> Coding:
    # One route repeats on every line of a long history ("Oral route"): built once per
    # spelling (the Coding is immutable), not once per order and fill.
    return Coding(system, code, display)


def is_prn_line(dosage: Mapping[str, Any], codes: CodeLists) -> bool:
    """A Dosage line given as needed: ``asNeededBoolean``/R5 ``asNeeded`` true, an
    ``asNeededCodeableConcept`` or R5 ``asNeededFor``; else, unless ``asNeededBoolean``/
    ``asNeeded`` says false (the structured element wins over the words), when its free text
    (``text``, ``patientInstruction``) says so (``CodeLists.says_as_needed``: "1 tab PRN
    anxiety", sent with no asNeeded element; not "not as needed", "Call the clinic if needed",
    nor an extra dose on a line with a structured schedule)."""
    # "true" as a string is not valid R4 but says as-needed all the same (hand-built exports).
    flag, r5_flag = dosage.get("asNeededBoolean"), dosage.get("asNeeded")
    if (
        says(flag, "true")
        or says(r5_flag, "true")
        or isinstance(dosage.get("asNeededCodeableConcept"), Mapping)
        or any(isinstance(reason, Mapping) for reason in as_list(dosage.get("asNeededFor")))
    ):
        return True
    if says(flag, "false") or says(r5_flag, "false"):
        return False
    free_text = f"{text(dosage.get('text'))} {text(dosage.get('patientInstruction'))}"
    if not codes.mentions_as_needed(free_text):
        return False  # the common case, decided before the schedule is read
    # A structured schedule: what a dose beyond it ("an additional 1/2 tablet if needed")
    # leaves standing.
    scheduled = administrations_per_day(dosage.get("timing"), codes) is not None
    return codes.says_as_needed(free_text, scheduled=scheduled)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
