"""MedicationDispense -> Dispense (supply start and days' supply for refill gaps and PDC).

When ``daysSupply`` is missing, it is derived, in this order: quantity / units per day from the
dispense's own structured dosage, then from the authorizing order's (a reference by id, absolute
URL or fullUrl); then the order's ``dispenseRequest.expectedSupplyDuration``, scaled by the fill's
quantity against the order's ``dispenseRequest.quantity`` when they differ (90 tablets of an
order of 30 tablets for 30 days last 90 days; unknown when their units differ). An order's count
of units ("2 tablets") is a count of the ordered product: for a fill of another strength it goes
through mg (the order's mg a day over the fill's strength); unknown when a strength is unknown.

``status`` is read case-insensitively, a feed's synonym of "completed"
(``dispense_status_synonyms``, config/codes.yaml) as it, and a status outside the R4 value set as
"unknown". An unknown supply stays ``None`` (never 0), so that no adherence figure is invented from
missing data; the nonadherence pattern then says it cannot evaluate. A dispense of a medication
that is not psychotropic is kept without deriving anything.

Nothing is derived from data about something else: the quantity is divided only when its unit is
the unit the dose is counted in (tablets, capsules or another count of the product's units,
``dose_count_units`` in config/codes.yaml, or no unit at all, as a dose with no unit is read; mL
for a dose in mL). "1 bottle", "2 packs" or "100 g" are not a count of doses, and a unit not on
the list is not guessed at. An authorizing order is read only when its medication shares the
fill's psychotropic ingredient: a sertraline fill that points at a lisinopril order (a pharmacy
system's wrong link) is not sized by the lisinopril sig.

``daysSupply`` arrives in many spellings besides UCUM ``d``: "Day(s)", "DAYS SUPPLY" (NCPDP
and Surescripts labels), "day_supply", "dy", UCUM annotations such as ``{days}``, and sometimes
a bare number where R4 has a SimpleQuantity. All of these name days and are read as days (a
bare number with a ``MappingIssue``, as it is not valid R4). Months are not: a "1 mo" supply is
28, 30 or 31 days' worth, and UCUM's ``mo`` (30.4375 d, a mean Julian month) is a calendar
average, not a count of doses, so the supply is derived from the quantity instead, or stays
unknown. A completed fill with no date at all is reported too: nonadherence cannot place it; nor
can it place a fill dated only by month or year ("2026-09"), whose last possible day is kept
(``Dispense.handed_over_latest``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from fhir_mappers.accessors import (
    as_list,
    get,
    number,
    quantity_unit,
    quantity_value,
    reference,
    relative_reference,
    text,
)
from fhir_mappers.codes import status_key
from fhir_mappers.context import MappingContext
from fhir_mappers.dosage import administration, daily_dose_memo, is_prn_line
from fhir_mappers.medication_source import ResolvedMedication, resolve_medication
from fhir_mappers.record import NOT_GIVEN, AdministrationReading, Dispense

_RTYPE = "MedicationDispense"
# Duration units as ``_unit_key`` spells them (lower case, no braces, "(s)" or "supply"): UCUM
# ``d``/``wk``, their annotations ``{days}``, and the words pharmacy systems print.
_DAYS_PER_UNIT = {
    "d": 1.0, "day": 1.0, "days": 1.0, "dy": 1.0, "dys": 1.0,
    "wk": 7.0, "week": 7.0, "weeks": 7.0,
}
# Months name no count of days (a month's fill is 28, 30 or 31 days' worth; UCUM ``mo`` is a mean
# Julian month, 30.4375 d), so they are refused, never overruled by the unit text.
_MONTH_UNITS = frozenset({"mo", "mos", "month", "months"})
# Durations that are not supply days: a code in one of these is not overruled by the unit text.
_OTHER_TIME_UNITS = frozenset({"s", "min", "h", "hr", "hrs", "hour", "hours", "a", "yr", "year"})
# Dose units: a dose in mass is counted in the product's units (tablets) by its strength; mL is
# its own unit of count (liquids).
_MASS_UNITS = frozenset({"mg", "g", "mcg", "ug", "[mg]"})
# The R4 MedicationDispense.status value set (R5's is the same): any other status is unknown.
_R4_STATUSES = frozenset({
    "preparation", "in-progress", "cancelled", "on-hold", "completed", "entered-in-error",
    "stopped", "declined", "unknown",
})  # fmt: skip
# More than ten years of supply in one fill is no supply anyone dispensed (9999999, a quantity
# in the millions): a figure that would only skew, or break, the dates built on it.
_LONGEST_SUPPLY_DAYS = 3650
_ML_UNITS = frozenset({"ml", "milliliter", "milliliters", "millilitre", "millilitres"})


def map_dispense(
    resource: Mapping[str, Any],
    ref: str,
    ctx: MappingContext,
    *,
    medication: ResolvedMedication | None = None,
) -> Dispense | None:
    """A MedicationDispense as a ``Dispense`` (``ref`` "MedicationDispense/<id>"); None when
    ``status`` is entered-in-error.

    ``handed_over`` is ``whenHandedOver`` (else ``whenPrepared``) as a date: the first day of a
    partial date, whose last day is ``handed_over_latest``. For a psychotropic, ``days_supply``
    (days) is ``daysSupply`` when usable, else derived: ``quantity`` (in the dose's unit) divided
    by the units a day of the dispense's own ``dosageInstruction`` or of its authorizing order's
    (an order of the same ingredient), else the order's
    ``dispenseRequest.expectedSupplyDuration``. When none of these can be read
    it stays None: an unknown supply, never zero (the nonadherence pattern then abstains). Never
    raises; unreadable fields become ``MappingIssue``s on ``ctx``. ``medication`` is
    ``resolve_medication`` of the fill when the caller has it already.
    """
    status = _status(ctx.string(resource.get("status"), _RTYPE, ref, "status"), ref, ctx)
    if status == "entered-in-error":
        return None
    # Read once as the days it names: a partial date ("2026-09") names a month, not a day.
    named = ctx.period(
        resource.get("whenHandedOver"), _RTYPE, ref, "whenHandedOver"
    ) or ctx.period(resource.get("whenPrepared"), _RTYPE, ref, "whenPrepared")
    handed_over = named[0] if named else None
    latest = named[1] if named and named[1] != named[0] else None
    if medication is None:
        medication = resolve_medication(resource, ctx, _RTYPE, ref)
    quantity = quantity_value(resource.get("quantity"))
    prescriptions = as_list(resource.get("authorizingPrescription"))
    authorizing = None
    if prescriptions:
        authorizing = ctx.resolve(prescriptions[0]) or reference(prescriptions[0])
    psychotropic = medication.is_psychotropic
    if psychotropic and status == "completed" and handed_over is None and not _has_date(resource):
        # Absent, not unreadable (ctx.date reports that): nonadherence abstains over it.
        ctx.issue(_RTYPE, ref, "whenHandedOver", "completed fill without a date")
    days = _days_supply(resource.get("daysSupply"), ref, ctx) if psychotropic else None
    if days is None and psychotropic:
        days = _derived_days(resource, quantity, medication, authorizing, ctx)
    if days is not None and days > _LONGEST_SUPPLY_DAYS:
        ctx.issue(_RTYPE, ref, "daysSupply", "a supply of over ten years: read as unknown")
        days = None
    return Dispense(
        ref=ref,
        display=medication.display,
        ingredients=medication.ingredients,
        status=status,
        handed_over=handed_over,
        days_supply=days,
        quantity=quantity,
        authorizing_prescription=authorizing,
        handed_over_latest=latest,
        administration=(
            AdministrationReading(administration, resource.get("dosageInstruction"), medication)
            if psychotropic
            else NOT_GIVEN
        ),
    )


def _status(sent: str, ref: str, ctx: MappingContext) -> str:
    """``status`` as an R4 code: read case-insensitively (``status_key``: "COMPLETED",
    "In Progress"), a feed's synonym of one (``dispense_status_synonyms`` in config/codes.yaml:
    "picked-up" is "completed"), else "unknown" for a status outside the R4 value set (reported):
    whether such a fill reached the patient is not known. "" stays "" (no status sent)."""
    if not sent or sent in _R4_STATUSES:
        return sent
    key = status_key(sent)
    key = ctx.codes.dispense_status_synonyms.get(key, key)
    if key in _R4_STATUSES:
        return key
    ctx.issue(_RTYPE, ref, "status", "status not in the R4 value set: read as unknown")
    return "unknown"


def _has_date(resource: Mapping[str, Any]) -> bool:
    return any(resource.get(key) is not None for key in ("whenHandedOver", "whenPrepared"))


def _days_supply(value: Any, ref: str, ctx: MappingContext) -> float | None:
    """``daysSupply`` in days: a Quantity in a duration unit (``_days_per_unit``), or a bare
    number or numeric string (not R4, reported, but it can only mean days); None otherwise."""
    if value is None:
        return None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        amount = number(value)
        if amount is not None and math.isfinite(amount) and amount > 0:
            ctx.issue(_RTYPE, ref, "daysSupply", "a bare number, not a Quantity: read as days")
            return amount
        ctx.issue(_RTYPE, ref, "daysSupply", "not a duration in days")
        return None
    amount = quantity_value(value)
    factor = _days_per_unit(value)
    if amount is None or not math.isfinite(amount) or factor is None or amount <= 0:
        ctx.issue(_RTYPE, ref, "daysSupply", "not a duration in days")
        return None
    return amount * factor


def _unit_key(unit: str) -> str:
    """A unit as ``_DAYS_PER_UNIT`` spells it: "Day(s)" -> "days", "{Days}" -> "days",
    "DAYS SUPPLY" / "day_supply" -> "days" / "day"."""
    key = unit.lower().replace("(s)", "s").replace("_", " ").replace("'", "").strip("{} ")
    return key.removesuffix("supply").strip()


def _days_per_unit(quantity: Any) -> float | None:
    """Days per unit of a duration Quantity (1 for days, 7 for weeks). The ``code`` is read first;
    when it names no duration (``{Days}``, a local code) the ``unit`` text is tried. A Quantity
    with neither is read as days (pharmacy systems count supply in days). None for months, other
    time units and anything else."""
    return _days_per_unit_of(text(get(quantity, "code")), text(get(quantity, "unit")))


# A pure function of two short strings, and a feed repeats a handful of spellings: every fill of
# a long history would otherwise redo the same string work (bench/RESULTS.md, fourth round).
@lru_cache(maxsize=1024)
def _days_per_unit_of(code: str, unit: str) -> float | None:
    keys = [_unit_key(t) for t in (code, unit) if t]
    for key in keys:
        if key in _MONTH_UNITS or key in _OTHER_TIME_UNITS:
            return None
        if key in _DAYS_PER_UNIT:
            return _DAYS_PER_UNIT[key]
    return None if keys else 1.0


def _derived_days(
    resource: Mapping[str, Any],
    quantity: float | None,
    medication: ResolvedMedication,
    authorizing: str | None,
    ctx: MappingContext,
) -> float | None:
    request = ctx.requests.get(relative_reference(authorizing) or "") if authorizing else None
    ordered = _ordered_medication(request, authorizing or "", ctx) if request else None
    if ordered is None or not _shares_ingredient(ordered, medication):
        request = None  # another drug's order says nothing of this fill's supply
    if quantity is not None:
        own = resource.get("dosageInstruction")
        if as_list(own):
            units_per_day = daily_dose_memo(own, medication, ctx.codes, ctx.doses).units
            if units_per_day and _counts_dose_units(resource.get("quantity"), own, ctx):
                return round(quantity / units_per_day, 1)
        sig = get(request, "dosageInstruction")
        if as_list(sig) and ordered is not None:
            units_per_day = _order_units_per_day(sig, ordered, medication, ctx)
            if units_per_day and _counts_dose_units(resource.get("quantity"), sig, ctx):
                return round(quantity / units_per_day, 1)
    expected = get(request, "dispenseRequest", "expectedSupplyDuration")
    if expected is not None:
        amount = quantity_value(expected)
        factor = _days_per_unit(expected)
        if amount is not None and math.isfinite(amount) and factor is not None and amount > 0:
            return _scaled(
                amount * factor,
                resource.get("quantity"),
                get(request, "dispenseRequest", "quantity"),
                ctx,
            )
    return None


def _ordered_medication(
    request: Mapping[str, Any], ref: str, ctx: MappingContext
) -> ResolvedMedication:
    """The order's medication. Its own problems are reported when the order itself is mapped,
    not again here."""
    reported = len(ctx.issues)
    ordered = resolve_medication(request, ctx, "MedicationRequest", ref)
    del ctx.issues[reported:]
    return ordered


def _shares_ingredient(ordered: ResolvedMedication, medication: ResolvedMedication) -> bool:
    """Whether the order's medication shares a psychotropic ingredient with the fill's."""
    names = {i.name for i in medication.ingredients if i.is_psychotropic}
    return any(i.name in names for i in ordered.ingredients)


def _order_units_per_day(
    sig: Any, ordered: ResolvedMedication, fill: ResolvedMedication, ctx: MappingContext
) -> float | None:
    """The fill's units (tablets, capsules, mL) a day under the order's sig. A count of units
    ("2 tablets") counts the ordered product's units: it applies as it is only to a fill of the
    same product (``_same_product``); for another strength it is turned into mg by the ordered
    product's strength and back into the fill's units by the fill's ("2 tablets" of sertraline
    25 mg is one 50 mg tablet). None when a strength that would take is unknown."""
    dose = daily_dose_memo(sig, ordered, ctx.codes, ctx.doses)
    if _same_product(ordered, fill):
        return dose.units
    per_unit = fill.strength_mg or fill.concentration_mg_per_ml
    if dose.mg is None or not per_unit:
        return None
    return dose.mg / per_unit


def _same_product(ordered: ResolvedMedication, fill: ResolvedMedication) -> bool:
    """The same strength (or concentration), known; or, both unknown, the same product name."""
    same = (
        ordered.strength_mg == fill.strength_mg
        and ordered.concentration_mg_per_ml == fill.concentration_mg_per_ml
    )
    if ordered.strength_mg is not None or ordered.concentration_mg_per_ml is not None:
        return same
    return same and " ".join(ordered.display.lower().split()) == " ".join(
        fill.display.lower().split()
    )


def _scaled(days: float, filled: Any, ordered: Any, ctx: MappingContext) -> float | None:
    """The order's ``expectedSupplyDuration`` (``days``) for a fill of ``filled`` (its
    ``quantity``) when the order expects ``ordered`` (``dispenseRequest.quantity``) to last
    that long: 90 tablets of an order of 30 tablets for 30 days last 90 days. As it is when
    either quantity is not given or they are equal; None when their units differ (90 tablets
    against "1 bottle": how long the fill lasts is unknown)."""
    have, want = quantity_value(filled), quantity_value(ordered)
    if have is None or want is None or have == want:
        return days
    if not (math.isfinite(have) and math.isfinite(want)) or have <= 0 or want <= 0:
        return None
    if not _same_unit(filled, ordered, ctx):
        return None
    return round(days * have / want, 1)


def _same_unit(first: Any, second: Any, ctx: MappingContext) -> bool:
    """Two quantities in one unit: both counts of the product's units (``dose_count_units`` or
    no unit at all), or the same spelling of another unit."""
    units = [
        {s.lower() for s in (text(get(q, "code")), text(get(q, "unit"))) if s}
        for q in (first, second)
    ]
    counts = [u <= ctx.codes.dose_count_units for u in units]
    if all(counts):
        return True
    return not any(counts) and bool(units[0] & units[1])


def _counts_dose_units(quantity: Any, dosages: Any, ctx: MappingContext) -> bool:
    """Whether the fill's quantity is counted in the unit its daily figure is counted in: a
    count of the product's units (tablets, capsules: ``dose_count_units``) when the scheduled
    doses are in mg or a count, mL when they are in mL. Every spelling the quantity gives (UCUM
    ``code`` and ``unit`` text) must say so; a quantity with neither is a bare count, as a dose
    with no unit is. Anything else (a bottle, a pack, grams, a unit not listed) is not."""
    per_dose = {
        _dose_unit_kind(line, ctx)
        for line in as_list(dosages)
        if isinstance(line, Mapping) and not is_prn_line(line, ctx.codes)
    }
    if len(per_dose) != 1:
        return False
    kind = per_dose.pop()
    spellings = [s.lower() for s in (text(get(quantity, "code")), text(get(quantity, "unit"))) if s]
    if kind == "count":
        return all(s in ctx.codes.dose_count_units for s in spellings)
    return kind == "ml" and bool(spellings) and all(s in _ML_UNITS for s in spellings)


def _dose_unit_kind(line: Mapping[str, Any], ctx: MappingContext) -> str | None:
    """"count" for a dose in mg, g, mcg or a count of units; "ml" for mL; None otherwise."""
    dose = get(line, "doseAndRate", 0, "doseQuantity") or line.get("doseQuantity")
    unit = quantity_unit(dose).lower()
    if unit in _ML_UNITS:
        return "ml"
    if not unit or unit in _MASS_UNITS or unit in ctx.codes.dose_count_units:
        return "count"
    return None
