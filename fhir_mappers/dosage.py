"""Daily dose in mg (and units per day) from FHIR Dosage, when it can be derived without guessing.

R4 puts the dose in ``doseAndRate[0].doseQuantity``; STU3 and DSTU2 put ``doseQuantity`` on the
Dosage itself, and DSTU2 spells ``periodUnits``. Dosages that share a ``sequence`` (or have none)
apply together and are summed; later sequences (a taper) are not. As-needed dosages only set
``is_prn``: a PRN ceiling is not a daily dose. Free-text sigs are not parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir_mappers.accessors import as_list, get, number, quantity_unit, quantity_value, text
from fhir_mappers.codes import CodeLists
from fhir_mappers.medication_source import ResolvedMedication

_MG_PER_UNIT = {"mg": 1.0, "g": 1000.0, "mcg": 0.001, "ug": 0.001, "[mg]": 1.0}
# Units meaning "one tablet/capsule" (UCUM annotations, EHR free text, the sandbox's "{pill}").
_COUNT_UNITS = frozenset(
    {
        "{pill}", "{pills}", "pill", "pills", "{tbl}", "{tablet}", "{tablets}", "tab", "tabs",
        "tablet", "tablets", "{capsule}", "{capsules}", "{cap}", "cap", "caps", "capsule",
        "capsules", "{count}", "{each}", "each", "1", "{unit}", "unit", "units",
    }
)  # fmt: skip
_DAYS_PER_PERIOD_UNIT = {
    "s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0, "a": 365.0,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DailyDose:
    mg: float | None  # total mg per day of the (single) ingredient
    units: float | None  # tablets/capsules (or mL) per day, for days-supply estimates
    is_prn: bool = False
    problem: str | None = None  # why a dose that was given could not be used


def daily_dose(dosages: Any, medication: ResolvedMedication, codes: CodeLists) -> DailyDose:
    instructions = [d for d in as_list(dosages) if isinstance(d, Mapping)]
    is_prn = any(_is_prn(d) for d in instructions)
    scheduled = [d for d in instructions if not _is_prn(d)]
    if len(instructions) != len(as_list(dosages)):
        return DailyDose(None, None, is_prn, "dosage is not an object")
    if not scheduled:
        return DailyDose(None, None, is_prn)
    sequence = scheduled[0].get("sequence")
    concurrent = [d for d in scheduled if d.get("sequence") == sequence]
    total_mg: float | None = 0.0
    total_units: float | None = 0.0
    problem = None
    for instruction in concurrent:
        mg, units, why = _one_instruction(instruction, medication, codes)
        problem = problem or why
        total_mg = None if mg is None or total_mg is None else total_mg + mg
        total_units = None if units is None or total_units is None else total_units + units
    # Combination products have no single-ingredient mg; their tablet count still gives supply.
    if len(medication.ingredients) != 1:
        total_mg = None
    return DailyDose(_round(total_mg), _round(total_units), is_prn, problem)


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
    elif unit in _COUNT_UNITS:
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
        return None, None, "dose unit not convertible to mg" if unit else "dose without a unit"
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


def _is_prn(dosage: Mapping[str, Any]) -> bool:
    return (
        dosage.get("asNeededBoolean") is True
        or dosage.get("asNeeded") is True
        or isinstance(dosage.get("asNeededCodeableConcept"), Mapping)
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
