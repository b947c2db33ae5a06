"""MedicationDispense -> Dispense (supply start and days' supply for refill gaps and PDC).

When ``daysSupply`` is missing, it is derived as quantity / units per day from the dispense's own
dosage or, failing that, the authorizing request's, but only when both are plain counts; an
unknown supply stays ``None`` so that no adherence figure is invented.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_mappers.accessors import (
    as_list,
    get,
    quantity_unit,
    quantity_value,
    reference,
    relative_reference,
)
from fhir_mappers.context import MappingContext
from fhir_mappers.dosage import daily_dose
from fhir_mappers.medication_source import ResolvedMedication, resolve_medication
from fhir_mappers.record import Dispense

_RTYPE = "MedicationDispense"
_DAYS_PER_UNIT = {"d": 1.0, "day": 1.0, "days": 1.0, "wk": 7.0, "week": 7.0, "weeks": 7.0, "": 1.0}


def map_dispense(resource: Mapping[str, Any], ref: str, ctx: MappingContext) -> Dispense | None:
    status = ctx.string(resource.get("status"), _RTYPE, ref, "status")
    if status == "entered-in-error":
        return None
    handed_over = ctx.date(resource.get("whenHandedOver"), _RTYPE, ref, "whenHandedOver")
    handed_over = handed_over or ctx.date(resource.get("whenPrepared"), _RTYPE, ref, "whenPrepared")
    medication = resolve_medication(resource, ctx, _RTYPE, ref)
    quantity = quantity_value(resource.get("quantity"))
    prescriptions = as_list(resource.get("authorizingPrescription"))
    authorizing = reference(prescriptions[0]) if prescriptions else None
    days = _days_supply(resource.get("daysSupply"), ref, ctx)
    if days is None and quantity is not None:
        days = _derived_days(resource, quantity, medication, authorizing, ctx)
    return Dispense(
        ref=ref,
        display=medication.display,
        ingredients=medication.ingredients,
        status=status,
        handed_over=handed_over,
        days_supply=days,
        quantity=quantity,
        authorizing_prescription=authorizing,
    )


def _days_supply(value: Any, ref: str, ctx: MappingContext) -> float | None:
    if value is None:
        return None
    amount = quantity_value(value)
    factor = _DAYS_PER_UNIT.get(quantity_unit(value).lower())
    if amount is None or factor is None or amount < 0:
        ctx.issue(_RTYPE, ref, "daysSupply", "not a duration in days")
        return None
    return amount * factor


def _derived_days(
    resource: Mapping[str, Any],
    quantity: float,
    medication: ResolvedMedication,
    authorizing: str | None,
    ctx: MappingContext,
) -> float | None:
    dosages = resource.get("dosageInstruction")
    if not as_list(dosages) and authorizing is not None:
        request = ctx.requests.get(relative_reference(authorizing) or "")
        dosages = get(request, "dosageInstruction")
    units_per_day = daily_dose(dosages, medication, ctx.codes).units
    if not units_per_day:
        return None
    return round(quantity / units_per_day, 1)
