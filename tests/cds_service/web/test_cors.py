"""CORS (checklist §J): preflights pass without auth on every path; origins are checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

PREFLIGHT = {"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization,content-type"}


@pytest.mark.parametrize("path", ["/cds-services", "/cds-services/psychopharm-order-sign",
                                  "/cds-services/psychopharm-order-sign/feedback",
                                  "/cds-services/unknown", "/anything"])
def test_preflight_is_204_with_the_cors_headers_on_any_path(client: Any, path: str) -> None:
    response = client.options(path, headers=PREFLIGHT)

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_preflight_needs_no_token_when_jwt_is_required(
    make_app: Callable[..., Flask], jwt_settings: Any
) -> None:
    client = make_app(jwt_settings).test_client()

    response = client.options("/cds-services/psychopharm-order-sign", headers=PREFLIGHT)

    assert response.status_code == 204


def test_actual_responses_carry_the_allow_origin_header(client: Any) -> None:
    response = client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})

    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_error_responses_carry_it_too(client: Any) -> None:
    response = client.post("/cds-services/unknown", json={},
                           headers={"Origin": "https://sandbox.cds-hooks.org"})

    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.fixture
def listed_client(make_settings: Callable[..., Any], make_app: Callable[..., Flask]) -> Any:
    settings = make_settings({"service": {"cors_allowed_origins": ["https://ehr.example.org"]}})
    return make_app(settings).test_client()


def test_a_listed_origin_is_echoed(listed_client: Any) -> None:
    headers = dict(PREFLIGHT, Origin="https://ehr.example.org")

    preflight = listed_client.options("/cds-services", headers=headers)
    actual = listed_client.get("/cds-services", headers={"Origin": "https://ehr.example.org"})

    assert preflight.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    assert actual.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    assert "Origin" in actual.headers["Vary"]


def test_an_unlisted_origin_gets_no_cors_headers(listed_client: Any) -> None:
    preflight = listed_client.options("/cds-services", headers=PREFLIGHT)
    actual = listed_client.get("/cds-services", headers={"Origin": "https://evil.example"})

    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Methods" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in actual.headers
