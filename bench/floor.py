"""A yardstick, not a reader of the service: about the least a pure-Python reading of the record
can do, with none of the mapper's checks.

``read_unchecked`` walks the prefetch Bundles of a parsed request once. It sets aside, by one
string comparison of a date, every resource dated before its type's horizon (``horizons``: the
service's own cut-offs; stricter than the mapper, which must still read old orders that are open
or that lead into a trial within reach), and pulls what the patterns use from each of the rest:
its type and reference, the RxNorm code of its medication looked up in the product and
ingredient tables, its days (the first ten characters of each date, read as a day), its status,
the dose times the frequency of its first dosage line, a fill's days' supply and a score's value.
It assumes the shapes the benchmark sends: no validation, no partial dates, no contained or
referenced Medications, no multi-step doses, no stop reasons, no issue reporting. Anything else
it skips or lets fail silently. The matrix's stage split times it on the same parsed bodies as
the service's mapping stage, so the two compare in the same unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from fhir_mappers.medications import IngredientTable

_Row = tuple[Any, ...]


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value[:10])
    except (TypeError, ValueError):
        return None


def _first_code(concept: Any) -> Any:
    try:
        return concept["coding"][0]["code"]
    except (KeyError, IndexError, TypeError):
        return None


def _medication(resource: Mapping[str, Any], table: IngredientTable) -> Any:
    code = _first_code(resource.get("medicationCodeableConcept"))
    return table.products.get(code) or table.by_rxcui.get(code)


def _dose(resource: Mapping[str, Any]) -> float | None:
    try:
        line = resource["dosageInstruction"][0]
        value = line["doseAndRate"][0]["doseQuantity"]["value"]
        repeat = line["timing"]["repeat"]
        return float(value) * repeat.get("frequency", 1) / repeat.get("period", 1)
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
        return None


# The element whose first ten characters date each type for the horizon test.
_DATED_BY = {
    "MedicationRequest": "authoredOn",
    "MedicationDispense": "whenHandedOver",
    "Observation": "effectiveDateTime",
}


def _before(resource: Mapping[str, Any], rtype: Any, cutoff: str) -> bool:
    if rtype == "Encounter":
        period = resource.get("period")
        when = (period.get("end") or period.get("start")) if isinstance(period, dict) else None
    else:
        when = resource.get(_DATED_BY.get(rtype, ""))
    return isinstance(when, str) and when[:10] < cutoff


def _row(resource: Mapping[str, Any], table: IngredientTable) -> _Row | None:
    rtype = resource.get("resourceType")
    ref = f"{rtype}/{resource.get('id')}"
    if rtype == "MedicationRequest":
        bounds = ((resource.get("dosageInstruction") or [{}])[0].get("timing") or {}).get(
            "repeat", {}).get("boundsPeriod") or {}
        return (ref, _medication(resource, table), resource.get("status"),
                _day(resource.get("authoredOn")), _day(bounds.get("start")),
                _day(bounds.get("end")), _dose(resource))
    if rtype == "MedicationDispense":
        supply = resource.get("daysSupply") or {}
        return (ref, _medication(resource, table), resource.get("status"),
                _day(resource.get("whenHandedOver")), supply.get("value"))
    if rtype == "Observation":
        return (ref, _first_code(resource.get("code")), _day(resource.get("effectiveDateTime")),
                resource.get("valueInteger", (resource.get("valueQuantity") or {}).get("value")))
    if rtype == "Encounter":
        period = resource.get("period") or {}
        kind = resource.get("class")
        return (ref, resource.get("status"), kind.get("code") if isinstance(kind, dict) else None,
                _day(period.get("start")), _day(period.get("end")))
    if rtype in ("AllergyIntolerance", "Condition"):
        return (ref, _first_code(resource.get("code")), _day(resource.get("recordedDate")))
    return None


def read_unchecked(prefetch: Mapping[str, Any], table: IngredientTable,
                   horizons: Mapping[str, str] | None = None) -> list[_Row]:
    """One row per resource of the prefetch Bundles that a pattern could read and that is not
    dated before its type's horizon (``horizons``: resourceType -> "YYYY-MM-DD"; see the
    module docstring for what is left out)."""
    rows: list[_Row] = []
    horizons = horizons or {}
    for bundle in prefetch.values():
        if not isinstance(bundle, dict):
            continue
        for entry in bundle.get("entry") or ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            cutoff = horizons.get(resource.get("resourceType"))
            if cutoff is not None and _before(resource, resource.get("resourceType"), cutoff):
                continue
            row = _row(resource, table)
            if row is not None:
                rows.append(row)
    return rows
