"""A prefetched page whose next link is not followed: the partial reason says why.

No HTTP happens in any of these (nothing may be followed), so no server is needed.
"""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.gather.fhir_client import FhirClient
from cds_service.gather.prefetch import Gathered, gather_data
from cds_service.settings import FhirSettings

EHR = "https://ehr.example.org/fhir"
CONTEXT = {"userId": "Practitioner/prac-1", "patientId": "pat-4711"}
TEMPLATES = {"medications": "MedicationRequest?patient={{context.patientId}}"}
REQUIRED = frozenset({"medications"})


def first_page(next_url: str) -> dict[str, Any]:
    order = {"resourceType": "MedicationRequest", "id": "mr-1", "status": "active",
             "intent": "order", "subject": {"reference": "Patient/pat-4711"}}
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "next", "url": next_url}],
        "entry": [{"fullUrl": f"{EHR}/MedicationRequest/mr-1", "resource": order}],
    }


def gather(fhir_server: str | None, next_url: str, allowed: str = EHR) -> Gathered:
    settings = FhirSettings(allowed_servers=(allowed,))
    client = FhirClient(settings)
    try:
        return gather_data(
            prefetch={"medications": first_page(next_url)},
            templates=TEMPLATES,
            context=CONTEXT,
            fhir_server=fhir_server,
            access_token=None,
            required=REQUIRED,
            client=client,
            settings=settings,
        )
    finally:
        client.close()


@pytest.mark.parametrize(
    "next_url",
    [
        pytest.param("MedicationRequest?patient=pat-4711&page=2", id="relative"),
        pytest.param(f"{EHR}/MedicationRequest?page=2", id="absolute-allow-listed"),
    ],
)
def test_no_fhir_server_in_the_request_is_the_reason(next_url: str) -> None:
    result = gather(None, next_url)

    assert result.failed["medications"] == (
        "partial: next link not followed: the request has no fhirServer to read it from"
    )
    assert len(result.values["medications"]["entry"]) == 1


def test_a_link_off_the_request_server_is_outside_it() -> None:
    result = gather(EHR, "https://ehr.example.org.evil.com/fhir/MedicationRequest?page=2")

    assert result.failed["medications"] == (
        "partial: next link not followed: it is outside the request's fhirServer"
    )


def test_a_request_server_not_allow_listed_is_the_reason() -> None:
    other = "https://other-ehr.example.org/fhir"

    result = gather(other, f"{other}/MedicationRequest?page=2")

    assert result.failed["medications"] == (
        "partial: next link not followed: it is not in fhir.allowed_servers"
    )
