"""Builders for realistic FHIR R4 resources and CDS Hooks requests, and a test JWT issuer.

Resources are plain dicts shaped like EHR output (RxNorm codings, SNOMED manifestations), with
dates given as days before NOW so that each vignette reads as a clinical story.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pytest_httpserver import HTTPServer

from tests.conftest import NOW

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
BASE = "http://localhost"

# Ingredient RxCUIs from /work/shared/reference/psychotropic-domain.md §1.3.
DRUGS: Mapping[str, tuple[str, str]] = {
    "sertraline": ("36437", "sertraline 50 MG Oral Tablet"),
    "escitalopram": ("321988", "escitalopram 10 MG Oral Tablet"),
    "venlafaxine": ("39786", "venlafaxine 75 MG Oral Tablet"),
    "bupropion": ("42347", "bupropion hydrochloride 150 MG Extended Release Oral Tablet"),
    "mirtazapine": ("15996", "mirtazapine 15 MG Oral Tablet"),
    "quetiapine": ("51272", "quetiapine 100 MG Oral Tablet"),
    "risperidone": ("35636", "risperidone 2 MG Oral Tablet"),
    "aripiprazole": ("89013", "aripiprazole 5 MG Oral Tablet"),
    "metformin": ("861007", "Metformin hydrochloride 500 MG Oral Tablet"),
}
MANIFESTATIONS = {
    "nausea": ("422587007", "Nausea"),
    "headache": ("25064002", "Headache"),
    "dizziness": ("404640003", "Dizziness"),
    "insomnia": ("193462001", "Insomnia"),
}


def day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


def medication_concept(drug: str) -> dict[str, Any]:
    code, display = DRUGS[drug]
    return {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": display}


def medication_request(
    rid: str,
    drug: str,
    *,
    patient: str,
    status: str = "active",
    authored_days_ago: int = 60,
    dose_mg: float | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
            "code": "outpatient",
        }]}],
        "medicationCodeableConcept": medication_concept(drug),
        "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": day(authored_days_ago),
    }
    if dose_mg is not None:
        resource["dosageInstruction"] = [{
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {
                "value": dose_mg, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg",
            }}],
        }]
    return resource


def draft_order(rid: str, drug: str, *, patient: str, dose_mg: float = 15) -> dict[str, Any]:
    resource = medication_request(rid, drug, patient=patient, status="draft", dose_mg=dose_mg)
    resource["authoredOn"] = day(0)
    return resource


def intolerance(
    rid: str, drug: str, manifestation: str, *, patient: str, onset_days_ago: int
) -> dict[str, Any]:
    """AllergyIntolerance of type intolerance with a non-immune reaction (a side effect)."""
    code, display = DRUGS[drug]
    m_code, m_display = MANIFESTATIONS[manifestation]
    return {
        "resourceType": "AllergyIntolerance",
        "id": rid,
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": "active",
        }]},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            "code": "confirmed",
        }]},
        "type": "intolerance",
        "category": ["medication"],
        "code": {"coding": [{"system": RXNORM, "code": code, "display": display.split()[0]}]},
        "patient": {"reference": f"Patient/{patient}"},
        "onsetDateTime": day(onset_days_ago),
        "recordedDate": day(onset_days_ago),
        "reaction": [{"manifestation": [{
            "coding": [{"system": SNOMED, "code": m_code, "display": m_display}],
            "text": m_display,
        }], "severity": "mild"}],
    }


def patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1979-04-12"}


# The service's prefetch key for each resource type it reads (config/services.yaml).
PREFETCH_KEY = {
    "MedicationRequest": "medications",
    "MedicationStatement": "statements",
    "AllergyIntolerance": "allergies",
    "Encounter": "encounters",
    "MedicationDispense": "dispenses",
    "Observation": "observations",
    "Condition": "conditions",
}


def searchset(resources: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    entries = [
        {"fullUrl": f"{BASE}/fhir/{r['resourceType']}/{r['id']}", "resource": dict(r)}
        for r in resources
    ]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
            "entry": entries}


def hook_body(
    hook: str,
    patient_id: str,
    resources: Iterable[Mapping[str, Any]] = (),
    *,
    drafts: Iterable[Mapping[str, Any]] = (),
    user: str = "Practitioner/prac-17",
    hook_instance: str | None = None,
) -> dict[str, Any]:
    """A complete request: every prefetch key filled (empty searchsets where there is no data)."""
    grouped: dict[str, list[Mapping[str, Any]]] = {k: [] for k in PREFETCH_KEY.values()}
    for resource in resources:
        grouped[PREFETCH_KEY[resource["resourceType"]]].append(resource)
    prefetch: dict[str, Any] = {"patient": patient(patient_id)}
    prefetch.update({key: searchset(items) for key, items in grouped.items()})
    context: dict[str, Any] = {"userId": user, "patientId": patient_id}
    draft_list = [dict(d) for d in drafts]
    if hook in {"order-select", "order-sign"}:
        context["draftOrders"] = {"resourceType": "Bundle", "entry": [
            {"resource": d} for d in draft_list
        ]}
    if hook == "order-select":
        context["selections"] = [f"MedicationRequest/{d['id']}" for d in draft_list]
    if hook == "medication-prescribe":
        context["medications"] = {"resourceType": "Bundle", "entry": [
            {"resource": d} for d in draft_list
        ]}
    return {
        "hookInstance": hook_instance or str(uuid.uuid4()),
        "hook": hook,
        "fhirServer": "http://127.0.0.1:18081",
        "context": context,
        "prefetch": prefetch,
    }


SERVICE_OF_HOOK = {
    "patient-view": "psychopharm-patient-view",
    "order-select": "psychopharm-order-select",
    "order-sign": "psychopharm-order-sign",
    "medication-prescribe": "psychopharm-medication-prescribe",
}


def service_url(hook: str) -> str:
    return f"/cds-services/{SERVICE_OF_HOOK[hook]}"


@dataclass
class JwtIssuer:
    """A CDS client with its own P-384 key, trusted through a JWKS file (like the sandbox)."""

    issuer: str
    kid: str
    key: ec.EllipticCurvePrivateKey
    jwks_file: Path

    def token(self, audience: str, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": audience, "iat": now, "exp": now + 300,
                   "jti": str(uuid.uuid4()), **claims}
        return jwt.encode(payload, self.key, algorithm="ES384",
                          headers={"kid": self.kid, "typ": "JWT"})

    def header(self, path: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(BASE + path)}"}


@pytest.fixture
def test_issuer(tmp_path: Path) -> JwtIssuer:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "test-key-1", "use": "sig", "alg": "ES384"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
    return JwtIssuer("https://ehr.test.example", "test-key-1", key, path)


@pytest.fixture
def jwt_settings(make_settings: Callable[..., Any], test_issuer: JwtIssuer) -> Any:
    return make_settings({"auth": {
        "require_jwt": True,
        "trusted_clients": [{"issuer": test_issuer.issuer,
                             "jwks_file": str(test_issuer.jwks_file)}],
    }})


# A real loopback FHIR server, one per test module, emptied before each test (gather and the
# FHIR client are tested against real HTTP, not mocks of requests).
@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield srv
    srv.clear()
    srv.stop()


@pytest.fixture
def fhir(server: HTTPServer) -> HTTPServer:
    server.clear()
    return server
