"""GET /openapi.json describes what the service really accepts and answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema_rs
import pytest

SERVICES = ["psychopharm-patient-view", "psychopharm-order-select", "psychopharm-order-sign",
            "psychopharm-medication-prescribe"]


def _inline(value: Any, components: dict[str, Any]) -> Any:
    """Resolve #/components/schemas refs so the schema can be checked as plain JSON Schema."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str):
            return _inline(components[ref.rsplit("/", 1)[1]], components)
        return {k: _inline(v, components) for k, v in value.items()}
    if isinstance(value, list):
        return [_inline(v, components) for v in value]
    return value


@pytest.fixture
def spec(client: Any) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


def _schema(spec: dict[str, Any], path: str, where: str) -> Any:
    operation = spec["paths"][path]["post" if "cds-services/" in path else "get"]
    node = operation["requestBody"] if where == "request" else operation["responses"][where]
    raw = node["content"]["application/json"]["schema"]
    return jsonschema_rs.Draft4Validator(_inline(raw, spec["components"]["schemas"]))


def test_documents_every_endpoint(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.0")
    expected = {"/cds-services", "/healthz", "/readyz", "/admin/config"}
    expected |= {f"/cds-services/{s}" for s in SERVICES}
    expected |= {f"/cds-services/{s}/feedback" for s in SERVICES}
    assert expected <= set(spec["paths"])
    for status in ("400", "401", "404", "412", "413", "415"):
        assert status in spec["paths"]["/cds-services/psychopharm-order-sign"]["post"]["responses"]


@pytest.mark.parametrize(
    ("fixture", "service"),
    [
        ("patient-view-sandbox.json", "psychopharm-patient-view"),
        ("order-select-sandbox.json", "psychopharm-order-select"),
        ("order-sign-sandbox.json", "psychopharm-order-sign"),
        ("medication-prescribe-legacy.json", "psychopharm-medication-prescribe"),
    ],
)
def test_sandbox_requests_match_the_documented_request_schema(
    spec: dict[str, Any], load_fixture: Callable[[str], Any], fixture: str, service: str
) -> None:
    validator = _schema(spec, f"/cds-services/{service}", "request")
    body = load_fixture(f"requests/{fixture}")

    assert validator.is_valid(body)
    body["hook"] = "some-other-hook"
    assert not validator.is_valid(body)


@pytest.mark.parametrize("fixture", ["feedback-accepted.json", "feedback-overridden.json"])
def test_sandbox_feedback_matches_the_documented_schema(
    spec: dict[str, Any], load_fixture: Callable[[str], Any], fixture: str
) -> None:
    validator = _schema(spec, "/cds-services/psychopharm-order-sign/feedback", "request")

    assert validator.is_valid(load_fixture(f"requests/{fixture}"))


def test_accepted_feedback_without_suggestions_is_invalid_in_the_schema(
    spec: dict[str, Any]
) -> None:
    validator = _schema(spec, "/cds-services/psychopharm-order-sign/feedback", "request")
    item = {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-06-15T10:00:00Z"}

    assert not validator.is_valid({"feedback": [item]})


def test_real_responses_match_the_documented_response_schemas(
    spec: dict[str, Any], client: Any, load_fixture: Callable[[str], Any]
) -> None:
    path = "/cds-services/psychopharm-order-sign"
    ok = client.post(path, json=load_fixture("requests/order-sign-sandbox.json"))
    bad = client.post(path, data=b"{", content_type="application/json")
    discovery = client.get("/cds-services")

    assert _schema(spec, path, "200").is_valid(ok.get_json())
    assert _schema(spec, path, "400").is_valid(bad.get_json())
    assert _schema(spec, "/cds-services", "200").is_valid(discovery.get_json())


def test_only_enabled_services_are_documented(
    make_settings: Callable[..., Any], make_app: Callable[..., Any]
) -> None:
    app = make_app(make_settings({"service": {"hooks": {"medication-prescribe": False}}}))

    paths = app.test_client().get("/openapi.json").get_json()["paths"]

    assert "/cds-services/psychopharm-medication-prescribe" not in paths
