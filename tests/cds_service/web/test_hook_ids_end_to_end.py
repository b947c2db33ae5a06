"""context.patientId sent as "Patient/<id>" is the same patient, through the real endpoints.

The cards, their suggestions, the FHIR queries and the audit pseudonym are those of the bare id;
a patientId that is no FHIR id is a 400 naming the field, before any data is gathered. A body
with a UTF-8 byte order mark is read like one without (hook and feedback endpoints).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer

from tests.cds_service.conftest import (
    draft_order,
    hook_body,
    intolerance,
    searchset,
    service_url,
)
from tests.cds_service.web.test_errors import assert_error

PID = "pat-ref-5521"
BOM = b"\xef\xbb\xbf"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def side_effects() -> list[dict[str, Any]]:
    """Side effects with three unrelated classes: fires repeated-intolerance at order-sign."""
    return [
        intolerance("ai-1", "sertraline", "nausea", patient=PID, onset_days_ago=400),
        intolerance("ai-2", "aripiprazole", "headache", patient=PID, onset_days_ago=250),
        intolerance("ai-3", "venlafaxine", "dizziness", patient=PID, onset_days_ago=90),
    ]


def sign_body(patient_id: str, encounter_id: str | None = None) -> dict[str, Any]:
    body = hook_body("order-sign", PID, side_effects(),
                     drafts=[draft_order("draft-1", "mirtazapine", patient=PID)])
    body["context"]["patientId"] = patient_id
    if encounter_id is not None:
        body["context"]["encounterId"] = encounter_id
    return body


def post(client: Any, body: dict[str, Any]) -> Any:
    return client.post(service_url("order-sign"), json=body)


def cards_of(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    return cards


def without_uuids(cards: list[dict[str, Any]]) -> Any:
    return json.loads(UUID.sub("<uuid>", json.dumps(cards)))


def audit_patient_keys(app: Flask) -> set[str]:
    audit = app.extensions["psychopharm"].audit
    audit.flush()
    return {row["patient_key"] for row in audit.query_cards()}


def test_prefixed_patient_id_gives_the_cards_and_pseudonym_of_the_bare_id(
    make_settings: Callable[..., Any], make_app: Callable[..., Flask]
) -> None:
    bare_app = make_app(make_settings())
    prefixed_app = make_app(make_settings())

    bare = cards_of(post(bare_app.test_client(), sign_body(PID)))
    prefixed = cards_of(post(prefixed_app.test_client(), sign_body(f"Patient/{PID}")))

    assert [c["source"]["topic"]["code"] for c in prefixed] == ["repeated-intolerance"]
    assert without_uuids(prefixed) == without_uuids(bare)
    subjects = [a["resource"].get("subject") or a["resource"].get("for")
                for c in prefixed for s in c["suggestions"] for a in s["actions"]]
    assert {"reference": f"Patient/{PID}"} in subjects
    assert "Patient/Patient/" not in json.dumps(prefixed)
    assert audit_patient_keys(prefixed_app) == audit_patient_keys(bare_app)


def test_prefixed_encounter_id_is_not_doubled_in_the_cards(client: Any) -> None:
    response = post(client, sign_body(PID, encounter_id="Encounter/enc-today"))

    encounters = [a["resource"].get("encounter") for c in cards_of(response)
                  for s in c["suggestions"] for a in s["actions"]]
    assert {"reference": "Encounter/enc-today"} in encounters
    assert "Encounter/Encounter/" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "patient_id", ["pat1?_id=pat2", "Patient/Patient/pat1", "pat 1", "Patient/pat1/_history/1"]
)
def test_patient_id_that_is_no_fhir_id_is_400_naming_the_field(
    client: Any, patient_id: str
) -> None:
    response = post(client, sign_body(patient_id))

    assert_error(response, 400, "invalid-field", "invalid")
    text = response.get_json()["issue"][0]["details"]["text"]
    assert text.startswith("context.patientId must be the Patient id")
    assert patient_id not in response.get_data(as_text=True)


def test_encounter_id_that_is_no_fhir_id_is_400_naming_the_field(client: Any) -> None:
    response = post(client, sign_body(PID, encounter_id="enc?x"))

    assert_error(response, 400, "invalid-field")
    assert "context.encounterId" in response.get_json()["issue"][0]["details"]["text"]


@pytest.fixture
def fhir_app(
    make_settings: Callable[..., Any], make_app: Callable[..., Flask], httpserver: HTTPServer
) -> Flask:
    return make_app(make_settings({"fhir": {"allowed_servers": [httpserver.url_for("/fhir")]}}))


def test_prefixed_patient_id_fetches_with_the_bare_id(
    fhir_app: Flask, httpserver: HTTPServer
) -> None:
    body = sign_body(f"Patient/{PID}")
    body["fhirServer"] = httpserver.url_for("/fhir")
    del body["prefetch"]["allergies"], body["prefetch"]["medications"]
    httpserver.expect_request(
        "/fhir/AllergyIntolerance", query_string={"patient": PID}
    ).respond_with_json(searchset(side_effects()))
    httpserver.expect_request(
        "/fhir/MedicationRequest", query_string={"patient": PID}
    ).respond_with_json(searchset([]))

    cards = cards_of(post(fhir_app.test_client(), body))

    assert [c["source"]["topic"]["code"] for c in cards] == ["repeated-intolerance"]
    assert sorted(r.path for r, _ in httpserver.log) == [
        "/fhir/AllergyIntolerance", "/fhir/MedicationRequest"
    ]


def test_utf8_bom_body_is_answered_like_one_without(client: Any) -> None:
    raw = BOM + json.dumps(sign_body(PID)).encode()

    response = client.post(service_url("order-sign"), data=raw, content_type="application/json")

    assert [c["source"]["topic"]["code"] for c in cards_of(response)] == ["repeated-intolerance"]


def test_utf16_body_is_400_saying_utf8(client: Any) -> None:
    raw = json.dumps(sign_body(PID)).encode("utf-16")

    response = client.post(service_url("order-sign"), data=raw, content_type="application/json")

    assert_error(response, 400, "malformed-json")
    assert "must be JSON encoded as UTF-8" in response.get_json()["issue"][0]["details"]["text"]


def test_feedback_with_a_bom_is_stored(client: Any, load_fixture: Callable[[str], Any]) -> None:
    raw = BOM + json.dumps(load_fixture("requests/feedback-overridden.json")).encode()

    response = client.post("/cds-services/psychopharm-order-sign/feedback", data=raw,
                           content_type="application/json")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"stored": 1}
