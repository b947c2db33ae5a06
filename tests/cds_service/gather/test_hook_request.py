"""Hook request validation (checklist §C, §D, §L): what is refused, and what is accepted."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from cds_service.errors import RequestError
from cds_service.gather.hook_request import parse_hook_request, parse_json_object

FHIR_AUTH = {
    "access_token": "some-opaque-token",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "user/Patient.read user/MedicationRequest.read",
    "subject": "psychopharm-cds",
}


@pytest.fixture
def sign_body(load_fixture: Callable[[str], Any]) -> dict[str, Any]:
    body: dict[str, Any] = load_fixture("requests/order-sign-sandbox.json")
    return body


def _parse(body: dict[str, Any], hook: str = "order-sign") -> Any:
    return parse_hook_request(body, f"psychopharm-{hook}", hook)


def _code(body: dict[str, Any], hook: str = "order-sign") -> str:
    with pytest.raises(RequestError) as excinfo:
        _parse(body, hook)
    return excinfo.value.code


def test_sandbox_order_sign_is_accepted_as_sent(sign_body: dict[str, Any]) -> None:
    req = _parse(sign_body)

    assert req.hook == "order-sign"
    assert req.patient_id == "pat1"
    assert req.user_id == "Practitioner/COREPRACTITIONER1"
    assert req.encounter_id is None
    assert req.fhir_server == "http://127.0.0.1:18081"
    assert req.access_token is None
    assert req.draft_bundle["entry"][0]["resource"]["id"] == "request-123"


def test_sandbox_order_select_keeps_its_selections(load_fixture: Callable[[str], Any]) -> None:
    req = _parse(load_fixture("requests/order-select-sandbox.json"), "order-select")

    assert req.selections == ("MedicationRequest/request-123",)


def test_legacy_medication_prescribe_maps_medications_to_drafts(
    load_fixture: Callable[[str], Any],
) -> None:
    req = _parse(load_fixture("requests/medication-prescribe-legacy.json"), "medication-prescribe")

    assert req.draft_bundle["entry"][0]["resource"]["id"] == "legacy-draft-1"


def test_unknown_fields_and_extensions_are_ignored(sign_body: dict[str, Any]) -> None:
    sign_body["extension"] = {"org.example.trace": {"id": 7}}
    sign_body["futureField"] = [1, 2]
    sign_body["context"]["extension"] = {"org.example.ctx": True}
    sign_body["context"]["newOptionalField"] = "x"

    assert _parse(sign_body).patient_id == "pat1"


def test_access_token_is_kept_but_never_shown(sign_body: dict[str, Any]) -> None:
    sign_body["fhirAuthorization"] = dict(FHIR_AUTH, patient="pat1")

    req = _parse(sign_body)

    assert req.access_token == "some-opaque-token"
    assert "some-opaque-token" not in repr(req)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        pytest.param(lambda b: b.pop("hook"), "missing-field", id="no-hook"),
        pytest.param(lambda b: b.update(hook=7), "invalid-field", id="hook-not-string"),
        pytest.param(lambda b: b.pop("hookInstance"), "missing-field", id="no-hookInstance"),
        pytest.param(lambda b: b.update(hookInstance=""), "invalid-field", id="empty-instance"),
        pytest.param(lambda b: b.update(hookInstance="a\nb"), "invalid-field",
                     id="instance-with-newline"),
        pytest.param(lambda b: b.update(hookInstance="x" * 129), "invalid-field",
                     id="instance-too-long"),
        pytest.param(lambda b: b.update(hook="patient-view"), "hook-mismatch", id="wrong-hook"),
        pytest.param(lambda b: b.pop("context"), "missing-field", id="no-context"),
        pytest.param(lambda b: b.update(context=[]), "invalid-field", id="context-array"),
        pytest.param(lambda b: b["context"].pop("patientId"), "missing-field", id="no-patient"),
        pytest.param(lambda b: b["context"].update(patientId=12), "invalid-field",
                     id="patient-number"),
        pytest.param(lambda b: b["context"].pop("userId"), "missing-field", id="no-user"),
        pytest.param(lambda b: b["context"].pop("draftOrders"), "missing-field",
                     id="no-draftOrders"),
        pytest.param(lambda b: b["context"].update(draftOrders="Bundle"), "invalid-field",
                     id="draftOrders-string"),
        pytest.param(lambda b: b["context"].update(encounterId=5), "invalid-field",
                     id="encounter-number"),
        pytest.param(lambda b: b.update(fhirServer="ftp://x"), "invalid-field",
                     id="fhirServer-not-http"),
        pytest.param(lambda b: b.update(prefetch=[]), "invalid-field", id="prefetch-array"),
    ],
)
def test_contract_violations_are_refused_with_their_code(
    sign_body: dict[str, Any], mutate: Callable[[dict[str, Any]], Any], code: str
) -> None:
    mutate(sign_body)

    assert _code(sign_body) == code


@pytest.mark.parametrize(
    ("selections", "draft_orders"),
    [
        pytest.param(None, {"resourceType": "Bundle"}, id="no-selections"),
        pytest.param("MedicationRequest/1", {"resourceType": "Bundle"}, id="selections-string"),
        pytest.param([], {"resourceType": "Bundle"}, id="selections-empty"),
        pytest.param([3], {"resourceType": "Bundle"}, id="selections-numbers"),
        pytest.param(["MedicationRequest/1"], None, id="no-draftOrders"),
    ],
)
def test_order_select_needs_selections_and_draft_orders(
    load_fixture: Callable[[str], Any], selections: Any, draft_orders: Any
) -> None:
    body = load_fixture("requests/order-select-sandbox.json")
    body["context"]["selections"] = selections
    body["context"]["draftOrders"] = draft_orders

    assert _code(body, "order-select") in {"missing-field", "invalid-field"}


def test_medication_prescribe_needs_medications(load_fixture: Callable[[str], Any]) -> None:
    body = load_fixture("requests/medication-prescribe-legacy.json")
    del body["context"]["medications"]

    assert _code(body, "medication-prescribe") == "missing-field"


def test_patient_view_needs_only_user_and_patient(load_fixture: Callable[[str], Any]) -> None:
    body = load_fixture("requests/patient-view-sandbox.json")
    assert _parse(body, "patient-view").patient_id == "pat1"

    del body["context"]["userId"]
    assert _code(body, "patient-view") == "missing-field"


# Issue 12 kind 11: the optional fhirAuthorization never refuses the call. Cosmetic faults are
# logged and the token is used; an unusable token leaves the call without one (a fetch then
# fails as for an unreachable server, see tests/realworld/test_authorization.py).
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expires_in", None),
        ("expires_in", "300"),
        ("expires_in", True),
        ("expires_in", 299.5),
        ("token_type", "bearer"),
        ("token_type", None),
        ("scope", None),
        ("subject", ""),
    ],
)
def test_cosmetic_fhir_authorization_faults_keep_the_token(
    sign_body: dict[str, Any], field: str, value: Any
) -> None:
    auth = copy.deepcopy(FHIR_AUTH)
    if value is None:
        del auth[field]
    else:
        auth[field] = value
    sign_body["fhirAuthorization"] = auth

    req = _parse(sign_body)

    assert (req.access_token, req.token_problem) == ("some-opaque-token", None)


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        ({"token_type": "Bearer", "expires_in": 300}, "no access_token"),
        (dict(FHIR_AUTH, access_token=""), "no access_token"),
        (dict(FHIR_AUTH, access_token=12), "no access_token"),
        (dict(FHIR_AUTH, token_type="Basic"), "not Bearer"),
        (dict(FHIR_AUTH, token_type="bearer-ish"), "not Bearer"),
        ("Bearer abc", "not an object"),
    ],
)
def test_unusable_fhir_authorization_leaves_no_token(
    sign_body: dict[str, Any], auth: Any, problem: str
) -> None:
    sign_body["fhirAuthorization"] = auth

    req = _parse(sign_body)

    assert req.access_token is None
    assert problem in (req.token_problem or "")


def test_integral_float_expires_in_is_an_integer(sign_body: dict[str, Any]) -> None:
    sign_body["fhirAuthorization"] = dict(FHIR_AUTH, expires_in=300.0)

    assert _parse(sign_body).access_token == "some-opaque-token"


def test_fhir_authorization_without_fhir_server_is_not_used(sign_body: dict[str, Any]) -> None:
    sign_body["fhirAuthorization"] = dict(FHIR_AUTH)
    del sign_body["fhirServer"]

    req = _parse(sign_body)

    assert req.access_token is None and "without a fhirServer" in (req.token_problem or "")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "malformed-json"),
        (b"[1, 2]", "invalid-request"),
        (b'"text"', "invalid-request"),
    ],
)
def test_body_must_be_a_json_object(raw: bytes, code: str) -> None:
    with pytest.raises(RequestError) as excinfo:
        parse_json_object(raw)

    assert excinfo.value.code == code
