"""MedicationDispense -> Dispense (supply start and days' supply for refill gaps and PDC).

When ``daysSupply`` is missing, it is derived, in this order: quantity / units per day from the
dispense's own structured dosage, then from the authorizing order's (a reference by id, absolute
URL or fullUrl); then the order's ``dispenseRequest.expectedSupplyDuration``. An unknown supply
stays ``None`` (never 0), so that no adherence figure is invented from missing data; the
nonadherence pattern then says it cannot evaluate. A dispense of a medication that is not
psychotropic is kept without deriving anything.
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
from fhir_mappers.dosage import daily_dose_memo
from fhir_mappers.medication_source import ResolvedMedication, resolve_medication
from fhir_mappers.record import Dispense

_RTYPE = "MedicationDispense"
_DAYS_PER_UNIT = {"d": 1.0, "day": 1.0, "days": 1.0, "wk": 7.0, "week": 7.0, "weeks": 7.0, "": 1.0}


def map_dispense(
    resource: Mapping[str, Any],
    ref: str,
    ctx: MappingContext,
    *,
    medication: ResolvedMedication | None = None,
) -> Dispense | None:
    """A MedicationDispense as a ``Dispense`` (``ref`` "MedicationDispense/<id>"); None when
    ``status`` is entered-in-error.

    ``handed_over`` is ``whenHandedOver`` (else ``whenPrepared``) as a date. For a psychotropic,
    ``days_supply`` (days) is ``daysSupply`` when usable, else derived: ``quantity`` divided by
    the units a day of the dispense's own ``dosageInstruction`` or of its authorizing order's,
    else the order's ``dispenseRequest.expectedSupplyDuration``. When none of these can be read
    it stays None: an unknown supply, never zero (the nonadherence pattern then abstains). Never
    raises; unreadable fields become ``MappingIssue``s on ``ctx``. ``medication`` is
    ``resolve_medication`` of the fill when the caller has it already.
    """
    status = ctx.string(resource.get("status"), _RTYPE, ref, "status")
    if status == "entered-in-error":
        return None
    handed_over = ctx.date(resource.get("whenHandedOver"), _RTYPE, ref, "whenHandedOver")
    handed_over = handed_over or ctx.date(resource.get("whenPrepared"), _RTYPE, ref, "whenPrepared")
    if medication is None:
        medication = resolve_medication(resource, ctx, _RTYPE, ref)
    quantity = quantity_value(resource.get("quantity"))
    prescriptions = as_list(resource.get("authorizingPrescription"))
    authorizing = None
    if prescriptions:
        authorizing = ctx.resolve(prescriptions[0]) or reference(prescriptions[0])
    psychotropic = medication.is_psychotropic
    days = _days_supply(resource.get("daysSupply"), ref, ctx) if psychotropic else None
    if days is None and psychotropic:
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
    if amount is None or factor is None or amount <= 0:
        ctx.issue(_RTYPE, ref, "daysSupply", "not a duration in days")
        return None
    return amount * factor


def _derived_days(
    resource: Mapping[str, Any],
    quantity: float | None,
    medication: ResolvedMedication,
    authorizing: str | None,
    ctx: MappingContext,
) -> float | None:
    request = ctx.requests.get(relative_reference(authorizing) or "") if authorizing else None
    if quantity is not None:
        for dosages in (resource.get("dosageInstruction"), get(request, "dosageInstruction")):
            if not as_list(dosages):
                continue
            units_per_day = daily_dose_memo(dosages, medication, ctx.codes, ctx.doses).units
            if units_per_day:
                return round(quantity / units_per_day, 1)
    expected = get(request, "dispenseRequest", "expectedSupplyDuration")
    if expected is not None:
        amount = quantity_value(expected)
        factor = _DAYS_PER_UNIT.get(quantity_unit(expected).lower())
        if amount is not None and factor is not None and amount > 0:
            return amount * factor
    return None
