"""gather_data: prefetch first, then the allow-listed FHIR server (a real loopback server here)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cds_service.errors import PrefetchError
from cds_service.gather.fhir_client import FhirClient
from cds_service.gather.prefetch import Gathered, gather_data
from cds_service.settings import FhirSettings

TOKEN = "eyJhbGciOiJub25lIn0.short-lived-access-token"
PATIENT_ID = "pat-4711"
CONTEXT = {"userId": "Practitioner/COREPRACTITIONER1", "patientId": PATIENT_ID}
TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}",
    "dispenses": "MedicationDispense?patient={{context.patientId}}",
}
REQUIRED = frozenset({"patient", "medications"})

PATIENT = {
    "resourceType": "Patient",
    "id": PATIENT_ID,
    "name": [{"family": "Example", "given": ["Alex"]}],
    "gender": "female",
    "birthDate": "1984-03-02",
}
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "timeout", "diagnostics": "backend timed out"}],
}


def med_request(rid: str, rxcui: str, display: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": rxcui,
                    "display": display,
                }
            ],
            "text": display,
        },
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "authoredOn": "2026-09-14",
    }


SERTRALINE = med_request("mr-1", "312940", "sertraline 50 MG Oral Tablet")
QUETIAPINE = med_request("mr-2", "312743", "quetiapine 100 MG Oral Tablet")
LITHIUM = med_request("mr-3", "197889", "lithium carbonate 300 MG Oral Capsule")


def searchset(*resources: Mapping[str, Any], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 3,
        "link": [{"relation": "self", "url": "https://ehr.example.org/fhir/MedicationRequest"}],
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
    if next_url:
        bundle["link"].append({"relation": "next", "url": next_url})
    return bundle




@pytest.fixture
def base(fhir: HTTPServer) -> str:
    return fhir.url_for("/fhir")


def settings_for(base: str, **overrides: Any) -> FhirSettings:
    return FhirSettings(allowed_servers=(base,), **overrides)


def gather(
    base: str | None,
    *,
    prefetch: Mapping[str, Any] | None,
    token: str | None = TOKEN,
    settings: FhirSettings | None = None,
    templates: Mapping[str, str] = TEMPLATES,
    required: frozenset[str] = REQUIRED,
    context: Mapping[str, Any] = CONTEXT,
    allowed: str | None = None,
) -> Gathered:
    settings = settings or settings_for(allowed or base or "https://ehr.example.org/fhir")
    client = FhirClient(settings)
    try:
        return gather_data(
            prefetch=prefetch,
            templates=templates,
            context=context,
            fhir_server=base,
            access_token=token,
            required=required,
            client=client,
            settings=settings,
        )
    finally:
        client.close()


def paths(fhir: HTTPServer) -> list[str]:
    return [request.full_path.rstrip("?") for request, _ in fhir.log]


COMPLETE = {
    "patient": PATIENT,
    "medications": searchset(SERTRALINE, QUETIAPINE),
    "dispenses": searchset(),
}


def test_complete_prefetch_makes_no_request(fhir: HTTPServer, base: str) -> None:
    result = gather(base, prefetch=COMPLETE)
    assert fhir.log == []
    assert result.values == COMPLETE
    assert result.failed == {} and result.fetched == () and result.medications == {}


def test_missing_key_is_fetched_with_the_bearer_token(fhir: HTTPServer, base: str) -> None:
    fhir.expect_request(
        "/fhir/MedicationRequest", query_string={"patient": PATIENT_ID}
    ).respond_with_json(searchset(SERTRALINE))
    prefetch = {"patient": PATIENT, "dispenses": searchset()}
    result = gather(base, prefetch=prefetch)
    assert paths(fhir) == [f"/fhir/MedicationRequest?patient={PATIENT_ID}"]
    assert fhir.log[0][0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert result.values["medications"]["entry"][0]["resource"] == SERTRALINE
    assert result.fetched == ("medications",)


def test_open_server_without_fhir_authorization_gets_no_authorization(
    fhir: HTTPServer, base: str
) -> None:
    # The sandbox against an open server: fhirServer, no fhirAuthorization, a key omitted.
    fhir.expect_request(f"/fhir/Patient/{PATIENT_ID}").respond_with_json(PATIENT)
    result = gather(base, prefetch={"medications": searchset(), "dispenses": None}, token=None)
    assert "Authorization" not in fhir.log[0][0].headers
    assert result.values["patient"] == PATIENT


def test_null_prefetch_means_no_data_and_is_not_refetched(fhir: HTTPServer, base: str) -> None:
    result = gather(base, prefetch={**COMPLETE, "medications": None, "dispenses": None})
    assert fhir.log == []
    assert result.values["medications"] is None and result.values["dispenses"] is None
    assert result.failed == {}


@pytest.mark.parametrize(
    "bad",
    [
        OUTCOME,
        {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": OUTCOME}]},
        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        [SERTRALINE],
        0,
        {"entry": []},
    ],
    ids=["operation-outcome", "bundle-of-outcomes", "html-string", "list", "number", "no-type"],
)
def test_unusable_prefetch_is_fetched_again(fhir: HTTPServer, base: str, bad: Any) -> None:
    fhir.expect_request("/fhir/MedicationRequest").respond_with_json(searchset(LITHIUM))
    result = gather(base, prefetch={**COMPLETE, "medications": bad})
    assert paths(fhir) == [f"/fhir/MedicationRequest?patient={PATIENT_ID}"]
    assert result.values["medications"]["entry"][0]["resource"] == LITHIUM
    assert "medications" not in result.failed


def test_unusable_prefetch_without_server_names_the_problem(base: str) -> None:
    with pytest.raises(PrefetchError) as info:
        gather(None, prefetch={**COMPLETE, "medications": OUTCOME})
    assert info.value.status == 412
    assert "'medications' prefetched as an OperationOutcome" in info.value.message
    assert "no fhirServer" in info.value.message


def test_prefetched_first_page_is_completed_from_next_links(fhir: HTTPServer, base: str) -> None:
    fhir.expect_request("/fhir/MedicationRequest", query_string="page=2").respond_with_json(
        searchset(QUETIAPINE, next_url=f"{base}/MedicationRequest?page=3")
    )
    fhir.expect_request("/fhir/MedicationRequest", query_string="page=3").respond_with_json(
        searchset(LITHIUM)
    )
    first = searchset(SERTRALINE, next_url=f"{base}/MedicationRequest?page=2")
    result = gather(base, prefetch={**COMPLETE, "medications": first})
    merged = result.values["medications"]
    assert [e["resource"]["id"] for e in merged["entry"]] == ["mr-1", "mr-2", "mr-3"]
    assert all(link["relation"] != "next" for link in merged.get("link", []))
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r, _ in fhir.log)
    assert result.failed == {} and result.fetched == ("medications",)


def test_fetched_search_follows_relative_next_links(fhir: HTTPServer, base: str) -> None:
    fhir.expect_request(
        "/fhir/MedicationRequest", query_string={"patient": PATIENT_ID}
    ).respond_with_json(searchset(SERTRALINE, next_url="MedicationRequest?_page=2"))
    fhir.expect_request("/fhir/MedicationRequest", query_string="_page=2").respond_with_json(
        searchset(QUETIAPINE)
    )
    result = gather(base, prefetch={"patient": PATIENT, "dispenses": None})
    assert len(result.values["medications"]["entry"]) == 2


def test_next_link_to_another_host_is_not_followed(fhir: HTTPServer, base: str) -> None:
    first = searchset(SERTRALINE, next_url="https://ehr.example.org.evil.com/fhir?page=2")
    result = gather(base, prefetch={**COMPLETE, "medications": first})
    assert fhir.log == []
    assert len(result.values["medications"]["entry"]) == 1
    assert result.failed["medications"].startswith("partial: next link not followed")


def test_next_link_to_another_allowed_server_is_not_sent_the_token(fhir: HTTPServer) -> None:
    # Both are allow-listed, but the token was granted for the request's fhirServer only.
    base_a, base_b = fhir.url_for("/tenant-a/fhir"), fhir.url_for("/tenant-b/fhir")
    settings = FhirSettings(allowed_servers=(base_a, base_b))
    first = searchset(SERTRALINE, next_url=f"{base_b}/MedicationRequest?page=2")
    result = gather(base_a, prefetch={**COMPLETE, "medications": first}, settings=settings)
    assert fhir.log == []
    assert "partial" in result.failed["medications"]


def test_max_pages_is_respected(fhir: HTTPServer, base: str) -> None:
    for page in (2, 3, 4):
        fhir.expect_request(
            "/fhir/MedicationRequest", query_string=f"page={page}"
        ).respond_with_json(
            searchset(
                med_request(f"mr-p{page}", "312940", "sertraline 50 MG Oral Tablet"),
                next_url=f"{base}/MedicationRequest?page={page + 1}",
            )
        )
    first = searchset(SERTRALINE, next_url=f"{base}/MedicationRequest?page=2")
    result = gather(
        base, prefetch={**COMPLETE, "medications": first}, settings=settings_for(base, max_pages=3)
    )
    assert paths(fhir) == ["/fhir/MedicationRequest?page=2", "/fhir/MedicationRequest?page=3"]
    assert len(result.values["medications"]["entry"]) == 3
    assert "fhir.max_pages (3)" in result.failed["medications"]


def test_failing_later_page_keeps_the_pages_read(fhir: HTTPServer, base: str) -> None:
    fhir.expect_request("/fhir/MedicationRequest").respond_with_json(OUTCOME, status=500)
    first = searchset(SERTRALINE, next_url=f"{base}/MedicationRequest?page=2")
    result = gather(base, prefetch={**COMPLETE, "medications": first})
    assert len(result.values["medications"]["entry"]) == 1
    assert result.failed["medications"] == "partial: page 2: MedicationRequest: HTTP 500"


@pytest.mark.parametrize("status", [401, 500])
def test_server_error_on_required_key_is_412(fhir: HTTPServer, base: str, status: int) -> None:
    fhir.expect_request("/fhir/MedicationRequest").respond_with_json(OUTCOME, status=status)
    with pytest.raises(PrefetchError) as info:
        gather(base, prefetch={"patient": PATIENT, "dispenses": None})
    assert info.value.status == 412 and info.value.code == "prefetch-unavailable"
    assert info.value.message == (
        f"prefetch key 'medications' missing and the fetch failed: MedicationRequest: HTTP {status}"
    )
    assert PATIENT_ID not in info.value.message


@pytest.mark.parametrize("status", [401, 500])
def test_server_error_on_optional_key_is_recorded(
    fhir: HTTPServer, base: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    fhir.expect_request("/fhir/MedicationDispense").respond_with_json(OUTCOME, status=status)
    with caplog.at_level(logging.WARNING, logger="cds_service.gather.prefetch"):
        result = gather(base, prefetch={"patient": PATIENT, "medications": searchset(SERTRALINE)})
    assert "dispenses" not in result.values
    assert result.failed["dispenses"].endswith(f"MedicationDispense: HTTP {status}")
    assert "'dispenses'" in caplog.text
    assert TOKEN not in caplog.text and PATIENT_ID not in caplog.text


def test_slow_server_is_bounded_by_the_call_budget(fhir: HTTPServer, base: str) -> None:
    def slow(_: Request) -> Response:
        time.sleep(1.0)
        return Response(json.dumps(searchset()), content_type="application/fhir+json")

    fhir.expect_request("/fhir/MedicationDispense").respond_with_handler(slow)
    settings = settings_for(base, timeout_s=0.3, call_budget_s=0.6)
    started = time.monotonic()
    result = gather(
        base, prefetch={"patient": PATIENT, "medications": searchset()}, settings=settings
    )
    # A bound on hanging, not a performance assertion: budget plus a generous margin.
    assert time.monotonic() - started < 0.6 + 0.5
    assert "timed out" in result.failed["dispenses"]


def test_slow_pages_stop_at_the_call_budget(fhir: HTTPServer, base: str) -> None:
    def slow_page(request: Request) -> Response:
        time.sleep(0.25)  # under timeout_s, but five of them exceed the budget
        page = int(request.args["page"])
        nxt = f"{base}/MedicationRequest?page={page + 1}"
        return Response(
            json.dumps(searchset(LITHIUM, next_url=nxt)), content_type="application/fhir+json"
        )

    fhir.expect_request("/fhir/MedicationRequest").respond_with_handler(slow_page)
    settings = settings_for(base, timeout_s=0.3, call_budget_s=0.6)
    first = searchset(SERTRALINE, next_url=f"{base}/MedicationRequest?page=2")
    started = time.monotonic()
    result = gather(base, prefetch={**COMPLETE, "medications": first}, settings=settings)
    assert time.monotonic() - started < 0.6 + 0.5
    assert result.failed["medications"].startswith("partial:")
    assert result.values["medications"]["entry"][0]["resource"] == SERTRALINE


def test_redirect_is_not_followed(fhir: HTTPServer, base: str) -> None:
    elsewhere = HTTPServer(host="127.0.0.1", port=0)
    elsewhere.start()
    try:
        elsewhere.expect_request("/fhir/MedicationDispense").respond_with_json(searchset())
        fhir.expect_request("/fhir/MedicationDispense").respond_with_data(
            "", status=302, headers={"Location": elsewhere.url_for("/fhir/MedicationDispense")}
        )
        result = gather(base, prefetch={"patient": PATIENT, "medications": searchset()})
        assert elsewhere.log == []
        assert "302 redirect not followed" in result.failed["dispenses"]
    finally:
        elsewhere.stop()


def test_response_over_max_bytes_is_rejected(fhir: HTTPServer, base: str) -> None:
    big = searchset(
        *[med_request(f"mr-{i}", "312940", "sertraline 50 MG Oral Tablet") for i in range(50)]
    )
    fhir.expect_request("/fhir/MedicationRequest").respond_with_json(big)
    with pytest.raises(PrefetchError, match="max_bytes"):
        gather(
            base,
            prefetch={"patient": PATIENT, "dispenses": None},
            settings=settings_for(base, max_bytes=4096),
        )


def test_server_not_allow_listed_gets_no_request_and_missing_required_is_412(
    fhir: HTTPServer,
) -> None:
    unlisted = fhir.url_for("/other-ehr/fhir")
    with pytest.raises(PrefetchError) as info:
        gather(unlisted, prefetch={"patient": PATIENT}, allowed="https://ehr.example.org/fhir")
    assert fhir.log == []
    assert info.value.message == (
        f"prefetch key 'medications' missing and fhirServer {unlisted} is not in "
        "fhir.allowed_servers"
    )


def test_no_fhir_server_with_complete_prefetch_is_fine(fhir: HTTPServer) -> None:
    result = gather(None, prefetch={**COMPLETE, "dispenses": None}, token=None)
    assert result.values["medications"] == COMPLETE["medications"]


def test_missing_optional_key_without_server_is_recorded(fhir: HTTPServer) -> None:
    result = gather(None, prefetch={"patient": PATIENT, "medications": searchset()})
    assert "no fhirServer" in result.failed["dispenses"]


def test_unresolvable_template_is_not_fetched(fhir: HTTPServer, base: str) -> None:
    templates = {**TEMPLATES, "encounter": "Encounter/{{context.encounterId}}"}
    result = gather(base, prefetch=COMPLETE, templates=templates)
    assert fhir.log == []
    assert "context value" in result.failed["encounter"]


def test_other_services_prefetch_keys_are_ignored(fhir: HTTPServer, base: str) -> None:
    result = gather(base, prefetch={**COMPLETE, "coverage": {"resourceType": "Coverage"}})
    assert "coverage" not in result.values


def test_missing_keys_are_fetched_concurrently(fhir: HTTPServer, base: str) -> None:
    # Each handler waits for the other: a sequential fetch would time out on the barrier.
    barrier = threading.Barrier(2, timeout=1.5)

    def rendezvous(_: Request) -> Response:
        barrier.wait()
        return Response(json.dumps(searchset(SERTRALINE)), content_type="application/fhir+json")

    fhir.expect_request("/fhir/MedicationRequest").respond_with_handler(rendezvous)
    fhir.expect_request("/fhir/MedicationDispense").respond_with_handler(rendezvous)
    result = gather(base, prefetch={"patient": PATIENT})
    assert result.failed == {}
    assert result.fetched == ("dispenses", "medications")


def _by_reference(rid: str, ref: str) -> dict[str, Any]:
    resource = {k: v for k, v in SERTRALINE.items() if k != "medicationCodeableConcept"}
    return {**resource, "id": rid, "medicationReference": {"reference": ref}}


SERTRALINE_MED = {
    "resourceType": "Medication",
    "id": "med-sertraline",
    "code": {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "312940",
                "display": "sertraline 50 MG Oral Tablet",
            }
        ]
    },
}


def test_referenced_medications_are_fetched(fhir: HTTPServer, base: str) -> None:
    fhir.expect_request("/fhir/Medication/med-sertraline").respond_with_json(SERTRALINE_MED)
    fhir.expect_request("/fhir/Medication/med-draft").respond_with_json(
        {**SERTRALINE_MED, "id": "med-draft"}
    )
    included = {**SERTRALINE_MED, "id": "med-included"}
    contained = {**_by_reference("mr-c", "#m1"), "contained": [{**SERTRALINE_MED, "id": "m1"}]}
    meds = searchset(
        _by_reference("mr-a", "Medication/med-sertraline"),
        _by_reference("mr-b", f"{base}/Medication/med-sertraline"),
        _by_reference("mr-i", "Medication/med-included"),
        contained,
        included,
    )
    draft = {**_by_reference("request-123", "Medication/med-draft"), "status": "draft"}
    context = {**CONTEXT, "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]}}
    result = gather(base, prefetch={**COMPLETE, "medications": meds}, context=context)
    assert sorted(paths(fhir)) == ["/fhir/Medication/med-draft", "/fhir/Medication/med-sertraline"]
    assert set(result.medications) == {"Medication/med-sertraline", "Medication/med-draft"}
    assert result.medications["Medication/med-sertraline"]["code"]["coding"][0]["code"] == "312940"


def test_unreadable_medication_is_best_effort(fhir: HTTPServer, base: str) -> None:
    fhir.expect_request("/fhir/Medication/med-gone").respond_with_json(OUTCOME, status=404)
    meds = searchset(_by_reference("mr-a", "Medication/med-gone"))
    result = gather(base, prefetch={**COMPLETE, "medications": meds})
    assert result.medications == {} and result.failed == {}


def test_medications_are_not_fetched_from_an_unlisted_server(fhir: HTTPServer) -> None:
    meds = searchset(_by_reference("mr-a", "Medication/med-sertraline"))
    result = gather(
        fhir.url_for("/other/fhir"),
        prefetch={**COMPLETE, "medications": meds},
        allowed="https://ehr.example.org/fhir",
    )
    assert fhir.log == [] and result.medications == {}


@pytest.mark.parametrize("bad_server", ["http://[::1", "https://[not-an-ip]/fhir"])
def test_unparseable_fhir_server_is_412_not_a_crash(fhir: HTTPServer, bad_server: str) -> None:
    # Found by schemathesis: urlsplit raises ValueError on an unbalanced IPv6 bracket.
    with pytest.raises(PrefetchError) as info:
        gather(bad_server, prefetch={"patient": PATIENT}, allowed="https://ehr.example.org/fhir")
    assert fhir.log == []
    assert "prefetch key 'medications' missing" in info.value.message
