"""Every refusal has its exact status, an OperationOutcome body and a stable error code."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from cds_service.web.error_handlers import ERROR_SYSTEM

SIGN = "/cds-services/psychopharm-order-sign"


def assert_error(response: Any, status: int, code: str, issue_type: str | None = None) -> None:
    """Status, FHIR shape and our code (cumulus-style exact check)."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["severity"] == "error"
    assert issue["details"]["coding"] == [{"system": ERROR_SYSTEM, "code": code}]
    assert issue["details"]["text"]
    if issue_type:
        assert issue["code"] == issue_type


def test_malformed_json_is_400(client: Any) -> None:
    response = client.post(SIGN, data=b'{"hook": "order-sign",', content_type="application/json")

    assert_error(response, 400, "malformed-json", "invalid")


def test_json_array_body_is_400(client: Any) -> None:
    response = client.post(SIGN, data=b"[]", content_type="application/json")

    assert_error(response, 400, "invalid-request", "invalid")


def test_missing_field_names_the_field(client: Any, load_fixture: Callable[[str], Any]) -> None:
    body = load_fixture("requests/order-sign-sandbox.json")
    del body["context"]["draftOrders"]

    response = client.post(SIGN, json=body)

    assert_error(response, 400, "missing-field")
    assert "context.draftOrders" in response.get_json()["issue"][0]["details"]["text"]


def test_error_text_does_not_echo_values(client: Any, load_fixture: Callable[[str], Any]) -> None:
    body = load_fixture("requests/order-sign-sandbox.json")
    body["context"]["patientId"] = ["pat-secret-991"]

    response = client.post(SIGN, json=body)

    assert_error(response, 400, "invalid-field")
    assert "pat-secret-991" not in response.get_data(as_text=True)


def test_hook_of_another_service_is_400(client: Any, load_fixture: Callable[[str], Any]) -> None:
    body = load_fixture("requests/patient-view-sandbox.json")

    response = client.post(SIGN, json=body)

    assert_error(response, 400, "hook-mismatch")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_non_json_content_type_is_415(client: Any, content_type: str | None) -> None:
    response = client.post(SIGN, data=b"{}", content_type=content_type)

    assert_error(response, 415, "unsupported-media-type", "not-supported")


def test_fhir_json_content_type_is_accepted(
    client: Any, load_fixture: Callable[[str], Any]
) -> None:
    body = load_fixture("requests/order-sign-sandbox.json")

    response = client.post(SIGN, json=body, content_type="application/fhir+json")

    assert response.status_code == 200


def test_body_over_the_limit_is_413(
    make_settings: Callable[..., Any], make_app: Callable[..., Flask]
) -> None:
    client = make_app(make_settings({"service": {"max_body_bytes": 1000}})).test_client()

    response = client.post(SIGN, data=b'{"x": "' + b"a" * 2000 + b'"}',
                           content_type="application/json")

    assert_error(response, 413, "payload-too-large", "too-costly")


def test_unknown_service_is_404(client: Any) -> None:
    response = client.post("/cds-services/no-such-service", json={})

    assert_error(response, 404, "unknown-service", "not-found")


def test_feedback_to_unknown_service_is_404(
    client: Any, load_fixture: Callable[[str], Any]
) -> None:
    response = client.post("/cds-services/nope/feedback",
                           json=load_fixture("requests/feedback-accepted.json"))

    assert_error(response, 404, "unknown-service")


def test_unknown_path_is_404_with_the_same_shape(client: Any) -> None:
    assert_error(client.get("/nowhere"), 404, "not-found", "not-found")


@pytest.mark.parametrize(("method", "path"), [("get", SIGN), ("put", "/cds-services"),
                                              ("delete", SIGN + "/feedback")])
def test_wrong_method_is_405_with_allow_header(client: Any, method: str, path: str) -> None:
    response = getattr(client, method)(path)

    assert_error(response, 405, "method-not-allowed", "not-supported")
    assert "POST" in response.headers["Allow"] or "GET" in response.headers["Allow"]


def test_required_data_missing_without_fhir_server_is_412(
    client: Any, load_fixture: Callable[[str], Any]
) -> None:
    body = load_fixture("requests/order-sign-sandbox.json")
    del body["prefetch"]
    del body["fhirServer"]

    response = client.post(SIGN, json=body)

    assert_error(response, 412, "prefetch-unavailable", "incomplete")
    assert "medications" in response.get_json()["issue"][0]["details"]["text"]


def test_unexpected_failure_is_500_without_phi_and_logged_with_hook_instance(
    app: Flask, load_fixture: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("mapper exploded on patient pat1")

    monkeypatch.setattr("cds_service.web.hooks.run_hook", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    body = load_fixture("requests/order-sign-sandbox.json")

    with caplog.at_level(logging.ERROR):
        response = app.test_client().post(SIGN, json=body)

    assert_error(response, 500, "internal-error", "exception")
    assert "pat1" not in response.get_data(as_text=True)
    assert "RuntimeError" not in response.get_data(as_text=True)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(body["hookInstance"] in r.getMessage() for r in errors)
    assert any(r.exc_info for r in errors)


def test_refusals_are_logged(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        client.post(SIGN, data=b"nope", content_type="application/json")

    assert any("malformed-json" in r.getMessage() for r in caplog.records)
