"""Orders, statements and fills of a medication no pattern reads -> ``OtherMedication``.

The medication is classified first (``medication_source.resolve_medication``); when none of its
ingredients is psychotropic the resource is kept as it says itself, unmapped: its dosage, dates
and references are never read, and its data problems are not reported (a lisinopril dose
without a unit is not ours to report). What the patterns read is unchanged: they read only
psychotropic courses and fills.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from fhir_mappers.accessors import get
from fhir_mappers.medication_source import ResolvedMedication
from fhir_mappers.record import OtherMedication

_Kind = Literal["MedicationRequest", "MedicationStatement", "MedicationDispense"]
# The record's kind of each resource type (DSTU2 MedicationOrder is an order) and the elements
# that date it, in the order tried.
_KINDS: dict[str, tuple[_Kind, tuple[tuple[str, ...], ...]]] = {
    "MedicationRequest": ("MedicationRequest", (("authoredOn",), ("dateWritten",))),
    "MedicationOrder": ("MedicationRequest", (("dateWritten",), ("authoredOn",))),
    "MedicationStatement": (
        "MedicationStatement", (("effectiveDateTime",), ("effectivePeriod", "start")),
    ),
    "MedicationDispense": ("MedicationDispense", (("whenHandedOver",), ("whenPrepared",))),
}
MEDICATION_USERS = frozenset(_KINDS)


def other_medication(
    resource: Mapping[str, Any], ref: str, rtype: str, medication: ResolvedMedication
) -> OtherMedication:
    """``resource`` (a MedicationRequest, DSTU2 MedicationOrder, MedicationStatement or
    MedicationDispense whose ``medication`` has no psychotropic ingredient) as an
    ``OtherMedication``: ``ref``, its kind, the medication's display, ``status`` and the date
    text that dates it, as sent. Raises ``KeyError`` for another ``rtype``; never for the
    resource's content."""
    kind, date_paths = _KINDS[rtype]
    status = resource.get("status")
    date_text = ""
    for path in date_paths:
        value = resource.get(path[0]) if len(path) == 1 else get(resource, *path)
        if type(value) is str and value:
            date_text = value
            break
    return OtherMedication(
        ref, kind, medication.display, status if type(status) is str else "", date_text
    )
