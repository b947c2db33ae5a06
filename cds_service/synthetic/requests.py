"""CDS Hooks request bodies built from a synthetic patient, for benchmarks and end-to-end tests.

The prefetch is complete (one searchset Bundle per key the service's discovery asks for), so the
service never needs a ``fhirServer``; ids are stable, so a benchmark sends the same bytes each run.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from cds_service.synthetic.catalogue import DRUGS, RXNORM, UCUM

BASE_URL = "https://synthetic.psychopharm-cds.invalid/fhir"

PREFETCH_TYPES: dict[str, str] = {
    "medications": "MedicationRequest",
    "statements": "MedicationStatement",
    "allergies": "AllergyIntolerance",
    "encounters": "Encounter",
    "dispenses": "MedicationDispense",
    "observations": "Observation",
    "conditions": "Condition",
}


def as_bundle(resources: list[dict[str, Any]], bundle_type: str) -> dict[str, Any]:
    """A FHIR R4 Bundle of ``bundle_type`` holding ``resources`` in order, each with a ``fullUrl``
    under ``BASE_URL``; a ``searchset`` also gets ``total`` and ``search.mode: match`` per entry.

    Each resource needs ``resourceType`` and ``id`` (``KeyError`` otherwise).
    """
    entries = []
    for resource in resources:
        entry: dict[str, Any] = {
            "fullUrl": f"{BASE_URL}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
        }
        if bundle_type == "searchset":
            entry["search"] = {"mode": "match"}
        entries.append(entry)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": bundle_type}
    if bundle_type == "searchset":
        bundle["total"] = len(entries)
    bundle["entry"] = entries
    return bundle


def draft_medication_request(
    patient_id: str,
    drug: str = "sertraline",
    mg: float = 50,
    *,
    doses_per_day: int = 1,
    request_id: str = "draft-1",
) -> dict[str, Any]:
    """An unsigned order as EHRs put it in ``draftOrders`` (status draft, no authoredOn)."""
    product = DRUGS[drug]
    concept: dict[str, Any] = {"text": product.display(mg)}
    code = product.scd.get(mg) or product.rxcui
    if code:
        concept["coding"] = [{"system": RXNORM, "code": code, "display": product.display(mg)}]
    return {
        "resourceType": "MedicationRequest",
        "id": request_id,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": {"reference": f"Patient/{patient_id}"},
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": doses_per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {"doseQuantity": {"value": mg, "unit": "mg", "system": UCUM, "code": "mg"}}
                ],
            }
        ],
    }


def make_hook_request(
    bundle: Mapping[str, Any],
    hook: str,
    *,
    draft: Mapping[str, Any] | None = None,
    hook_instance: str | None = None,
    user_id: str = "Practitioner/synthetic-prescriber-1",
) -> dict[str, Any]:
    """A CDS Hooks request body for this patient, with complete prefetch (no fhirServer needed).

    Prefetch keys: patient, medications, statements, allergies, encounters, dispenses, observations,
    conditions (searchset Bundles). Order hooks carry ``draft`` (default: sertraline 50 mg) in
    ``draftOrders``; ``medication-prescribe`` carries it in ``medications``.
    """
    resources = [e["resource"] for e in bundle.get("entry", [])]
    patient = next(r for r in resources if r.get("resourceType") == "Patient")
    patient_id = patient["id"]
    prefetch: dict[str, Any] = {"patient": patient}
    for key, resource_type in PREFETCH_TYPES.items():
        matches = [r for r in resources if r.get("resourceType") == resource_type]
        prefetch[key] = as_bundle(matches, "searchset")
    context: dict[str, Any] = {"userId": user_id, "patientId": patient_id}
    if hook in ("order-select", "order-sign", "medication-prescribe"):
        order = dict(draft) if draft is not None else draft_medication_request(patient_id)
        orders = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}
        if hook == "medication-prescribe":
            context["medications"] = orders
        else:
            context["draftOrders"] = orders
        if hook == "order-select":
            context["selections"] = [f"MedicationRequest/{order.get('id', 'draft-1')}"]
    instance = hook_instance or str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"{BASE_URL}/{patient_id}/{hook}")
    )
    return {"hookInstance": instance, "hook": hook, "context": context, "prefetch": prefetch}
