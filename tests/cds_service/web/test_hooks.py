"""Service calls with the sandbox's real request shapes; prefetch semantics; client JWTs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer

from tests.cds_service.conftest import BASE, JwtIssuer, searchset
from tests.cds_service.web.test_errors import assert_error

PATIENT_VIEW = "/cds-services/psychopharm-patient-view"
SIGN = "/cds-services/psychopharm-order-sign"


@pytest.mark.parametrize(
    ("fixture", "path"),
    [
        ("patient-view-sandbox.json", PATIENT_VIEW),
        ("order-select-sandbox.json", "/cds-services/psychopharm-order-select"),
        ("order-sign-sandbox.json", SIGN),
        ("medication-prescribe-legacy.json", "/cds-services/psychopharm-medication-prescribe"),
    ],
)
def test_sandbox_requests_are_answered_with_no_cards_for_metformin(
    client: Any, load_fixture: Callable[[str], Any], fixture: str, path: str
) -> None:
    response = client.post(path, json=load_fixture(f"requests/{fixture}"))

    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_unknown_fields_anywhere_are_ignored(
    client: Any, load_fixture: Callable[[str], Any]
) -> None:
    body = load_fixture("requests/order-sign-sandbox.json")
    body["extension"] = {"com.example.ehr": {"build": "2026.1"}}
    body["context"]["someNewField"] = {"a": 1}
    body["prefetch"]["unrequestedKey"] = {"resourceType": "Bundle", "type": "searchset"}

    response = client.post(SIGN, json=body)

    assert response.status_code == 200


@pytest.fixture
def fhir_server(httpserver: HTTPServer) -> HTTPServer:
    return httpserver


@pytest.fixture
def allowlisted_app(
    make_settings: Callable[..., Any], make_app: Callable[..., Flask], fhir_server: HTTPServer
) -> Flask:
    base = fhir_server.url_for("/fhir").rstrip("/")
    return make_app(make_settings({"fhir": {"allowed_servers": [base]}}))


def _body_for(server: HTTPServer, load_fixture: Callable[[str], Any]) -> dict[str, Any]:
    body: dict[str, Any] = load_fixture("requests/patient-view-sandbox.json")
    body["fhirServer"] = server.url_for("/fhir").rstrip("/")
    body["prefetch"].update({k: None for k in (
        "statements", "allergies", "encounters", "dispenses", "observations", "conditions"
    )})
    return body


def test_null_prefetch_means_no_data_and_nothing_is_fetched(
    allowlisted_app: Flask, fhir_server: HTTPServer, load_fixture: Callable[[str], Any]
) -> None:
    body = _body_for(fhir_server, load_fixture)
    body["prefetch"]["medications"] = None

    response = allowlisted_app.test_client().post(PATIENT_VIEW, json=body)

    assert response.status_code == 200
    assert response.get_json() == {"cards": []}
    assert fhir_server.log == []


def test_operation_outcome_prefetch_is_fetched_again_with_the_token(
    allowlisted_app: Flask, fhir_server: HTTPServer, load_fixture: Callable[[str], Any]
) -> None:
    body = _body_for(fhir_server, load_fixture)
    body["prefetch"]["medications"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    body["fhirAuthorization"] = {"access_token": "tok-123", "token_type": "Bearer",
                                 "expires_in": 300, "scope": "user/*.read", "subject": "cds"}
    fhir_server.expect_request("/fhir/MedicationRequest").respond_with_json(searchset([]))

    response = allowlisted_app.test_client().post(PATIENT_VIEW, json=body)

    assert response.status_code == 200
    assert len(fhir_server.log) == 1
    request, _ = fhir_server.log[0]
    assert request.args["patient"] == "pat1"
    assert request.headers["Authorization"] == "Bearer tok-123"


def test_required_data_unfetchable_from_the_server_is_412(
    allowlisted_app: Flask, fhir_server: HTTPServer, load_fixture: Callable[[str], Any]
) -> None:
    body = _body_for(fhir_server, load_fixture)
    del body["prefetch"]["medications"]
    fhir_server.expect_request("/fhir/MedicationRequest").respond_with_data("", status=500)

    response = allowlisted_app.test_client().post(PATIENT_VIEW, json=body)

    assert_error(response, 412, "prefetch-unavailable")


def test_optional_data_missing_gives_an_answer_not_an_error(
    client: Any, load_fixture: Callable[[str], Any]
) -> None:
    body = load_fixture("requests/patient-view-sandbox.json")  # only patient and medications

    response = client.post(PATIENT_VIEW, json=body)

    assert response.status_code == 200


# --- client JWTs (checklist §I) ---------------------------------------------------------------


@pytest.fixture
def jwt_client(make_app: Callable[..., Flask], jwt_settings: Any) -> Any:
    return make_app(jwt_settings).test_client()


def test_without_a_token_the_call_is_401_with_no_detail(
    jwt_client: Any, load_fixture: Callable[[str], Any]
) -> None:
    response = jwt_client.post(SIGN, json=load_fixture("requests/order-sign-sandbox.json"))

    assert_error(response, 401, "unauthorized", "security")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_valid_token_for_this_url_is_accepted(
    jwt_client: Any, test_issuer: JwtIssuer, load_fixture: Callable[[str], Any]
) -> None:
    response = jwt_client.post(SIGN, json=load_fixture("requests/order-sign-sandbox.json"),
                               headers=test_issuer.header(SIGN))

    assert response.status_code == 200


def test_a_token_for_another_service_is_401(
    jwt_client: Any, test_issuer: JwtIssuer, load_fixture: Callable[[str], Any]
) -> None:
    response = jwt_client.post(SIGN, json=load_fixture("requests/order-sign-sandbox.json"),
                               headers=test_issuer.header(PATIENT_VIEW))

    assert_error(response, 401, "unauthorized")


def test_a_replayed_token_is_401(
    jwt_client: Any, test_issuer: JwtIssuer, load_fixture: Callable[[str], Any]
) -> None:
    headers = test_issuer.header(SIGN)
    body = load_fixture("requests/order-sign-sandbox.json")

    first = jwt_client.post(SIGN, json=body, headers=headers)
    second = jwt_client.post(SIGN, json=body, headers=headers)

    assert first.status_code == 200
    assert_error(second, 401, "unauthorized")


def test_auth_is_checked_before_the_body(jwt_client: Any) -> None:
    response = jwt_client.post(SIGN, data=b"not json", content_type="application/json")

    assert_error(response, 401, "unauthorized")


def test_audience_is_the_configured_public_url(
    make_settings: Callable[..., Any], make_app: Callable[..., Flask], test_issuer: JwtIssuer,
    load_fixture: Callable[[str], Any],
) -> None:
    public = "https://cds.example.org/psychopharm"
    settings = make_settings({
        "service": {"public_base_url": public},
        "auth": {"require_jwt": True, "trusted_clients": [
            {"issuer": test_issuer.issuer, "jwks_file": str(test_issuer.jwks_file)}]},
    })
    client = make_app(settings).test_client()
    body = load_fixture("requests/order-sign-sandbox.json")

    behind_proxy = client.post(SIGN, json=body, headers={
        "Authorization": f"Bearer {test_issuer.token(public + SIGN)}"})
    internal_url = client.post(SIGN, json=body, headers={
        "Authorization": f"Bearer {test_issuer.token(BASE + SIGN)}"})

    assert behind_proxy.status_code == 200
    assert internal_url.status_code == 401


def test_discovery_needs_a_token_when_jwt_is_required(
    jwt_client: Any, test_issuer: JwtIssuer
) -> None:
    anonymous = jwt_client.get("/cds-services")
    signed = jwt_client.get("/cds-services", headers=test_issuer.header("/cds-services"))

    assert_error(anonymous, 401, "unauthorized")
    assert signed.status_code == 200
    assert {s["hook"] for s in signed.get_json()["services"]} >= {"patient-view", "order-sign"}


def test_factory_builds_a_non_testing_app_with_its_services(settings: Any) -> None:
    from cds_service.web.app import create_app

    app = create_app(settings)
    services = app.extensions["psychopharm"]
    try:
        assert not app.testing
        assert services.settings is settings
        assert app.config["MAX_CONTENT_LENGTH"] == settings.service.max_body_bytes
        assert set(services.wording) >= {"repeated-intolerance", "nonadherence"}
    finally:
        services.close()
        services.close()  # idempotent: gunicorn's worker_exit and atexit may both call it
