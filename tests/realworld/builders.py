"""Realistic R4 resources and hook requests for the real-world variants, dated relative to
CASES_NOW (2026-11-30), shaped like the field cases: searchset Bundles with absolute fullUrls,
RxNorm SCD codings, UCUM doses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.cds_service.conftest import PREFETCH_KEY
from tests.realworld.conftest import CASES_NOW

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
BASE = "https://ehr.example.test/fhir/r4"
EPIC_CLASS = "urn:oid:1.2.840.114350.1.72.1.7.7.10.696784.13260"

PRODUCTS = {
    "sertraline50": ("312941", "sertraline 50 MG Oral Tablet"),
    "sertraline100": ("312938", "sertraline 100 MG Oral Tablet"),
    "quetiapine100": ("312743", "quetiapine 100 MG Oral Tablet"),
    "quetiapine25": ("312744", "quetiapine 25 MG Oral Tablet"),
    "risperidone2": ("312831", "risperidone 2 MG Oral Tablet"),
    "aripiprazole10": ("349545", "aripiprazole 10 MG Oral Tablet"),
    "venlafaxine75": ("313585", "24 HR venlafaxine 75 MG Extended Release Oral Capsule"),
    "fluoxetine20": ("310385", "fluoxetine 20 MG Oral Capsule"),
    "lorazepam1": ("197901", "lorazepam 1 MG Oral Tablet"),
    "trazodone100": ("856373", "trazodone hydrochloride 100 MG Oral Tablet"),
    "lisinopril10": ("314076", "lisinopril 10 MG Oral Tablet"),
}


def day(days_ago: int, time: str = "") -> str:
    d = (CASES_NOW - timedelta(days=days_ago)).date().isoformat()
    return f"{d}{time}"


def concept(product: str) -> dict[str, Any]:
    code, display = PRODUCTS[product]
    return {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": display}


def daily(value: float, unit: str | None = "mg", **extra: Any) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value}
    if unit is not None:
        quantity.update(unit=unit, system="http://unitsofmeasure.org", code=unit)
    return {
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": quantity}],
        **extra,
    }


def order(
    rid: str,
    pid: str,
    product: str,
    *,
    authored: str | None,
    dosage: list[dict[str, Any]] | None = None,
    status: str = "active",
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": concept(product),
        "dosageInstruction": dosage if dosage is not None else [daily(100)],
        **extra,
    }
    if authored is not None:
        resource["authoredOn"] = authored
    return resource


def encounter(
    rid: str,
    pid: str,
    when: str,
    *,
    status: str = "finished",
    klass: Any = None,
    end: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    period: dict[str, Any] = {"start": when}
    if end is not None:
        period["end"] = end
    return {
        "resourceType": "Encounter",
        "id": rid,
        "status": status,
        "class": klass if klass is not None else {"system": ACT_CODE, "code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
        "period": period,
        **extra,
    }


def intolerance(
    rid: str, pid: str, product: str, when: str, reaction: str, clinical: str = "active"
) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "id": rid,
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": clinical,
        }]},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            "code": "confirmed",
        }]},
        "type": "intolerance",
        "category": ["medication"],
        "criticality": "low",
        "code": concept(product),
        "patient": {"reference": f"Patient/{pid}"},
        "recordedDate": when,
        "reaction": [{"manifestation": [{"text": reaction}], "severity": "mild"}],
    }


def dispense(
    rid: str, pid: str, product: str, when: str, *, days: float | None, quantity: float = 30,
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": rid,
        "status": "completed",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": concept(product),
        "quantity": {"value": quantity, "unit": "Tablet"},
        "whenHandedOver": when,
        **extra,
    }
    if days is not None:
        resource["daysSupply"] = {"value": days, "unit": "day",
                                  "system": "http://unitsofmeasure.org", "code": "d"}
    return resource


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r,
             "search": {"mode": "match"}}
            for r in resources
        ],
    }




def request(
    hook: str,
    pid: str,
    resources: list[dict[str, Any]],
    *,
    drafts: list[dict[str, Any]] | dict[str, Any] | None = None,
    **context: Any,
) -> dict[str, Any]:
    """A hook request with every prefetch key filled from ``resources`` (by type)."""
    prefetch: dict[str, Any] = {
        "patient": {"resourceType": "Patient", "id": pid, "birthDate": "1984-03-02"}
    }
    for rtype, key in PREFETCH_KEY.items():
        prefetch[key] = searchset([r for r in resources if r["resourceType"] == rtype])
    ctx: dict[str, Any] = {"userId": "Practitioner/rw-prac-1", "patientId": pid, **context}
    if drafts is not None:
        ctx["draftOrders"] = drafts if isinstance(drafts, dict) else {
            "resourceType": "Bundle", "entry": [{"resource": d} for d in drafts]
        }
    return {
        "hookInstance": f"variant-{hook}-{pid}",
        "hook": hook,
        "fhirServer": BASE,
        "context": ctx,
        "prefetch": prefetch,
    }
