"""FhirClient: the allow-list, and bounded GETs against a real loopback FHIR server."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cds_service.gather.fhir_client import FhirClient, FhirFetchError, is_under
from cds_service.settings import FhirSettings

TOKEN = "eyJhbGciOiJub25lIn0.opaque-access-token"
PATIENT = {
    "resourceType": "Patient",
    "id": "pat-4711",
    "name": [{"family": "Example", "given": ["Alex"]}],
    "birthDate": "1984-03-02",
}

ALLOWED = (
    "https://ehr.example.org/fhir",
    "http://127.0.0.1:8080/fhir/",
    "http://localhost:9000",
    "http://[::1]:8081/r4",
    "http://intranet.example.org/fhir",  # listed, but plain http off the loopback
)


@pytest.fixture(scope="module")
def table_client() -> Iterator[FhirClient]:
    client = FhirClient(FhirSettings(allowed_servers=ALLOWED))
    yield client
    client.close()


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://ehr.example.org/fhir/MedicationRequest?patient=pat-4711", True),
        ("https://ehr.example.org/fhir", True),
        ("https://ehr.example.org/fhir/", True),
        ("HTTPS://EHR.Example.ORG/fhir/Patient/pat-4711", True),
        ("https://ehr.example.org:443/fhir/Patient/pat-4711", True),
        ("https://ehr.example.org/fhir?_getpages=abc&_getpagesoffset=50", True),
        ("https://ehr.example.org/fhirx/Patient/pat-4711", False),
        ("https://ehr.example.org/FHIR/Patient/pat-4711", False),
        ("https://ehr.example.org/Patient/pat-4711", False),
        ("https://ehr.example.org.evil.com/fhir/Patient/pat-4711", False),
        ("https://user@ehr.example.org/fhir/Patient/pat-4711", False),
        ("https://user:pw@ehr.example.org/fhir/Patient/pat-4711", False),
        ("https://ehr.example.org@evil.com/fhir/Patient/pat-4711", False),
        ("https://ehr.example.org:8443/fhir/Patient/pat-4711", False),
        ("http://ehr.example.org/fhir/Patient/pat-4711", False),
        ("https://ehr.example.org/fhir/../admin", False),
        ("https://ehr.example.org/fhir/%2e%2e/admin", False),
        ("https://ehr.example.org/fhir/Patient%2F..%2F..%2Fadmin", False),
        ("https://ehr.example.org/fhir\\..\\admin", False),
        ("ftp://ehr.example.org/fhir/Patient", False),
        ("/fhir/Patient/pat-4711", False),
        ("not a url", False),
        ("", False),
        ("http://intranet.example.org/fhir/Patient/pat-4711", False),
        ("http://127.0.0.1:8080/fhir/Patient/pat-4711", True),
        ("http://127.0.0.1:8080/fhir", True),
        ("http://127.0.0.1/fhir/Patient/pat-4711", False),
        ("http://127.0.0.2:8080/fhir/Patient/pat-4711", False),
        ("http://localhost:9000/Patient/pat-4711", True),
        ("http://LOCALHOST:9000/anything", True),
        ("http://[::1]:8081/r4/Patient/pat-4711", True),
        ("http://[::1]:8081/r5/Patient/pat-4711", False),
        ("http://127.0.0.1:8080:80/fhir", False),
    ],
)
def test_allow_list(table_client: FhirClient, url: str, allowed: bool) -> None:
    assert table_client.is_allowed(url) is allowed


def test_refusal_explains_without_echoing_the_url(table_client: FhirClient) -> None:
    url = "http://intranet.example.org/fhir/Patient/pat-4711"
    reason = table_client.refusal(url)
    assert reason is not None and "https" in reason and "pat-4711" not in reason
    assert table_client.refusal("https://other.example.org/fhir") == "not in fhir.allowed_servers"


def test_is_under_compares_origin_and_path_prefix() -> None:
    assert is_under("https://ehr.example.org/fhir/", "https://EHR.example.org:443/fhir/Patient")
    assert not is_under("https://ehr.example.org/fhir", "https://ehr.example.org/fhir2/Patient")
    assert not is_under("https://ehr.example.org/fhir", "https://mirror.example.org/fhir/Patient")


# --- real HTTP against a loopback server ------------------------------------------------------




def _client(server: HTTPServer, **overrides: object) -> FhirClient:
    settings = FhirSettings(allowed_servers=(server.url_for("/fhir"),), **overrides)  # type: ignore[arg-type]
    return FhirClient(settings)


def _soon() -> float:
    return time.monotonic() + 5


def test_get_sends_fhir_accept_and_bearer_token(fhir: HTTPServer) -> None:
    fhir.expect_request("/fhir/Patient/pat-4711").respond_with_json(PATIENT)
    client = _client(fhir)
    body = client.get_json(fhir.url_for("/fhir/Patient/pat-4711"), token=TOKEN, deadline=_soon())
    assert body == PATIENT
    request, _ = fhir.log[0]
    assert request.headers["Accept"] == "application/fhir+json"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_get_without_token_sends_no_authorization(fhir: HTTPServer) -> None:
    fhir.expect_request("/fhir/Patient/pat-4711").respond_with_json(PATIENT)
    _client(fhir).get_json(fhir.url_for("/fhir/Patient/pat-4711"), token=None, deadline=_soon())
    request, _ = fhir.log[0]
    assert "Authorization" not in request.headers


def test_refused_url_is_never_requested(fhir: HTTPServer) -> None:
    other = fhir.url_for("/other/Patient/pat-4711")
    with pytest.raises(FhirFetchError, match="fhir.allowed_servers"):
        _client(fhir).get_json(other, token=TOKEN, deadline=_soon())
    assert fhir.log == []


def test_expired_deadline_makes_no_request(fhir: HTTPServer) -> None:
    with pytest.raises(FhirFetchError, match="call budget"):
        _client(fhir).get_json(
            fhir.url_for("/fhir/Patient/pat-4711"), token=None, deadline=time.monotonic() - 1
        )
    assert fhir.log == []


@pytest.mark.parametrize("status", [401, 403, 404, 500, 503])
def test_http_error_raises_with_status_and_safe_reason(
    fhir: HTTPServer, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
    fhir.expect_request("/fhir/MedicationRequest").respond_with_json(outcome, status=status)
    url = fhir.url_for("/fhir/MedicationRequest") + "?patient=pat-4711"
    with pytest.raises(FhirFetchError) as info:
        _client(fhir).get_json(url, token=TOKEN, deadline=_soon())
    assert info.value.status == status
    assert info.value.reason == f"MedicationRequest: HTTP {status}"
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("cds_service"))
    assert TOKEN not in ours and "pat-4711" not in ours


def test_redirect_is_not_followed(fhir: HTTPServer) -> None:
    target = HTTPServer(host="127.0.0.1", port=0)
    target.start()
    try:
        target.expect_request("/fhir/Patient/pat-4711").respond_with_json(PATIENT)
        fhir.expect_request("/fhir/Patient/pat-4711").respond_with_data(
            "", status=302, headers={"Location": target.url_for("/fhir/Patient/pat-4711")}
        )
        with pytest.raises(FhirFetchError, match="redirect") as info:
            _client(fhir).get_json(
                fhir.url_for("/fhir/Patient/pat-4711"), token=TOKEN, deadline=_soon()
            )
        assert info.value.status == 302
        assert target.log == []
    finally:
        target.stop()


def test_non_json_body_is_an_error(fhir: HTTPServer) -> None:
    fhir.expect_request("/fhir/Patient/pat-4711").respond_with_data(
        "<html><body>Service Unavailable</body></html>", content_type="text/html"
    )
    with pytest.raises(FhirFetchError, match="not JSON"):
        _client(fhir).get_json(fhir.url_for("/fhir/Patient/pat-4711"), token=None, deadline=_soon())


def _big_bundle() -> bytes:
    entry = {"resource": {"resourceType": "MedicationRequest", "id": "x", "status": "active"}}
    return json.dumps(
        {"resourceType": "Bundle", "type": "searchset", "entry": [entry] * 100}
    ).encode()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_response_over_max_bytes_is_rejected(fhir: HTTPServer, chunked: bool) -> None:
    body = _big_bundle()
    assert len(body) > 2000

    def handler(_: Request) -> Response:
        if chunked:  # no Content-Length: the cap must hold while streaming
            return Response(iter([body[:1000], body[1000:]]), content_type="application/fhir+json")
        return Response(body, content_type="application/fhir+json")

    fhir.expect_request("/fhir/MedicationRequest").respond_with_handler(handler)
    client = _client(fhir, max_bytes=2000)
    with pytest.raises(FhirFetchError, match="max_bytes"):
        client.get_json(fhir.url_for("/fhir/MedicationRequest"), token=None, deadline=_soon())


def test_response_at_max_bytes_is_read(fhir: HTTPServer) -> None:
    body = _big_bundle()
    fhir.expect_request("/fhir/MedicationRequest").respond_with_data(
        body, content_type="application/fhir+json"
    )
    client = _client(fhir, max_bytes=len(body))
    result = client.get_json(fhir.url_for("/fhir/MedicationRequest"), token=None, deadline=_soon())
    assert len(result["entry"]) == 100


def test_server_slower_than_timeout_raises(fhir: HTTPServer) -> None:
    def slow(_: Request) -> Response:
        time.sleep(0.6)
        return Response(json.dumps(PATIENT), content_type="application/fhir+json")

    fhir.expect_request("/fhir/Patient/pat-4711").respond_with_handler(slow)
    client = _client(fhir, timeout_s=0.2, call_budget_s=0.4)
    with pytest.raises(FhirFetchError, match="timed out"):
        client.get_json(fhir.url_for("/fhir/Patient/pat-4711"), token=TOKEN, deadline=_soon())


def test_connection_refused_reason_has_no_url() -> None:
    # A port nothing listens on: bind, note the port, close.
    probe = HTTPServer(host="127.0.0.1", port=0)
    probe.start()
    base = probe.url_for("/fhir")
    probe.stop()
    client = FhirClient(FhirSettings(allowed_servers=(base,)))
    with pytest.raises(FhirFetchError) as info:
        client.get_json(f"{base}/Patient/pat-4711", token=TOKEN, deadline=_soon())
    assert info.value.reason.startswith("Patient: request failed")
    assert "pat-4711" not in info.value.reason and "127.0.0.1" not in info.value.reason
