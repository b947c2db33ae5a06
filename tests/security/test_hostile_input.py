"""Hostile and broken input: every request gets a clear 4xx or a degraded but valid 200.

A CDS service sits in the EHR's order path: a crash there reads as "no advice" at best and takes
the worker down at worst. Each case here is something a buggy EHR, a misconfigured gateway or an
attacker can send; none may produce a 5xx, and the audit log must keep every row it committed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from cds_service.settings import Settings
from cds_service.storage.audit.chain import verify_chain
from tests.security.conftest import (
    SERVICE_OF_HOOK,
    assert_valid_cards,
    error_code,
    post_json,
    service_url,
)

SIGN = service_url("order-sign")
Request = Callable[..., dict[str, Any]]


def _nested(depth: int, open_: bytes, close: bytes) -> bytes:
    return open_ * depth + b"1" + close * depth


@pytest.mark.parametrize(
    "body",
    [
        _nested(10_000, b'{"a":', b"}"),
        _nested(10_000, b"[", b"]"),
        b'{"hook":"order-sign","context":' + _nested(5_000, b"[", b"]") + b"}",
    ],
    ids=["objects", "arrays", "inside-context"],
)
def test_deeply_nested_json_is_a_clear_400(client: Any, body: bytes) -> None:
    response = client.post(SIGN, data=body, content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "malformed-json"
    assert "nested too deeply" in response.get_json()["issue"][0]["details"]["text"]


def test_nesting_below_the_parser_limit_inside_a_resource_still_gets_cards(
    client: Any, valid_request: Request
) -> None:
    body = valid_request()
    body["prefetch"]["medications"]["entry"][0]["resource"]["extension"] = "@DEEP@"
    # About 1000 levels in all, just under orjson's limit of 1024; spliced in as bytes because
    # the stdlib encoder would hit Python's recursion limit first.
    deep = _nested(490, b'[{"extension":', b"}]")
    data = json.dumps(body).encode().replace(b'"@DEEP@"', deep)
    response = client.post(SIGN, data=data, content_type="application/json")
    cards = assert_valid_cards(response)
    assert [c["source"]["topic"]["code"] for c in cards] == ["repeated-intolerance"]


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b"\xff\xfe{}", b'{"hook": "\\ud800"}', b"[]", b'"text"', b"null",
     b"42", b"NaN", b'{"a":1}{"b":2}'],
    ids=["empty", "truncated", "text", "bad-utf8", "lone-surrogate", "array", "string", "null",
         "number", "nan", "two-objects"],
)
def test_bodies_that_are_no_json_object_are_400(client: Any, body: bytes) -> None:
    response = client.post(SIGN, data=body, content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) in {"malformed-json", "invalid-request"}


def test_oversized_body_is_413(make_app: Callable[..., Flask], make_settings: Any) -> None:
    client = make_app(make_settings({"service": {"max_body_bytes": 100_000}})).test_client()
    body = b'{"hook": "order-sign", "pad": "' + b"x" * 200_000 + b'"}'
    response = client.post(SIGN, data=body, content_type="application/json")
    assert response.status_code == 413
    assert error_code(response) == "payload-too-large"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "text/html", "application/xml", None],
)
def test_wrong_content_type_is_415(
    client: Any, valid_request: Request, content_type: str | None
) -> None:
    kwargs = {"content_type": content_type} if content_type else {}
    response = client.post(SIGN, data=json.dumps(valid_request()), **kwargs)
    assert response.status_code == 415
    assert error_code(response) == "unsupported-media-type"


def test_huge_arrays_within_the_size_limit_are_answered(
    client: Any, valid_request: Request
) -> None:
    body = valid_request("order-select")
    body["context"]["selections"] = [f"MedicationRequest/x{i}" for i in range(50_000)]
    body["context"]["draftOrders"]["entry"].extend({} for _ in range(50_000))
    body["prefetch"]["encounters"]["entry"].extend(
        {"resource": {"resourceType": "Encounter", "id": f"e{i}", "status": "finished"}}
        for i in range(20_000)
    )
    cards = assert_valid_cards(post_json(client, service_url("order-select"), body))
    assert len(cards) >= 1


WRONG_VALUES = [1, 1.5, True, [], {}, "", "   ", ["x"], {"reference": "Patient/1"}]


def _wrong_for(kind: str) -> list[Any]:
    if kind == "object":
        return [v for v in WRONG_VALUES if not isinstance(v, dict)]
    if kind == "array":
        return [v for v in WRONG_VALUES if v != ["x"]] + [[1], [""], [None]]
    return WRONG_VALUES


CONTEXT_CASES = [
    (hook, name, value)
    for hook, fields in {
        "patient-view": {"patientId": "string", "userId": "string", "encounterId": "string"},
        "order-select": {"patientId": "string", "userId": "string", "draftOrders": "object",
                         "selections": "array"},
        "order-sign": {"patientId": "string", "userId": "string", "draftOrders": "object",
                       "encounterId": "string"},
        "medication-prescribe": {"patientId": "string", "medications": "object"},
    }.items()
    for name, kind in fields.items()
    for value in _wrong_for(kind)
]


@pytest.mark.parametrize(
    ("hook", "name", "value"), CONTEXT_CASES,
    ids=[f"{h}-{n}-{json.dumps(v)}" for h, n, v in CONTEXT_CASES],
)
def test_wrong_type_in_each_context_field_is_a_400_naming_the_field(
    client: Any, valid_request: Request, hook: str, name: str, value: Any
) -> None:
    body = valid_request(hook)
    body["context"][name] = value
    response = post_json(client, service_url(hook), body)
    assert response.status_code == 400, response.data[:300]
    assert error_code(response) in {"invalid-field", "missing-field"}
    assert f"context.{name}" in response.get_json()["issue"][0]["details"]["text"]


TOP_LEVEL_CASES = [
    ("hook", 7, "invalid-field"),
    ("hook", "patient-view", "hook-mismatch"),
    ("hookInstance", ["a"], "invalid-field"),
    ("hookInstance", "x" * 500, "invalid-field"),
    ("hookInstance", "abc\x00def", "invalid-field"),
    ("context", [], "invalid-field"),
    ("context", "patient", "invalid-field"),
    ("fhirServer", 5, "invalid-field"),
    ("fhirServer", "file:///etc/passwd", "invalid-field"),
    # fhirAuthorization faults are not refused (issue 12 kind 11): tests/realworld.
    ("prefetch", [], "invalid-field"),
    ("prefetch", "<html></html>", "invalid-field"),
]


@pytest.mark.parametrize(("name", "value", "code"), TOP_LEVEL_CASES,
                         ids=[f"{n}-{str(v)[:20]}" for n, v, _ in TOP_LEVEL_CASES])
def test_wrong_top_level_fields_are_400(
    client: Any, valid_request: Request, name: str, value: Any, code: str
) -> None:
    body = valid_request()
    body[name] = value
    response = post_json(client, SIGN, body)
    assert response.status_code == 400, response.data[:300]
    assert error_code(response) == code


def test_draft_orders_as_a_list_is_a_400(client: Any, valid_request: Request) -> None:
    body = valid_request()
    body["context"]["draftOrders"] = body["context"]["draftOrders"]["entry"]
    response = post_json(client, SIGN, body)
    assert response.status_code == 400
    assert "context.draftOrders" in response.get_json()["issue"][0]["details"]["text"]


HTML_PAGE = "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Session expired" \
            "</body></html>"


def test_html_page_for_a_required_prefetch_key_is_412_not_a_crash(
    client: Any, valid_request: Request
) -> None:
    body = valid_request()
    body["prefetch"]["medications"] = HTML_PAGE
    response = post_json(client, SIGN, body)
    # No fhirServer to fetch the real data from: the service cannot advise, and says why.
    assert response.status_code == 412
    assert error_code(response) == "prefetch-unavailable"
    assert "medications" in response.get_json()["issue"][0]["details"]["text"]


def test_html_page_for_an_optional_prefetch_key_degrades_to_fewer_cards(
    client: Any, valid_request: Request
) -> None:
    body = valid_request(archetype="multiple_failed_trials")
    body["prefetch"]["allergies"] = HTML_PAGE
    body["prefetch"]["observations"] = HTML_PAGE
    cards = assert_valid_cards(post_json(client, SIGN, body))
    # The PHQ-9 scores were in the broken key: advice that rests on them cannot be given.
    assert "multiple-failed-trials" not in [c["source"]["topic"]["code"] for c in cards]


BAD_DATES = ["2020-13-45", "yesterday", "", "0000-00-00", "2024-02-30T25:61:00Z", "9" * 40,
             12345, None, ["2020-01-01"], {"start": "2020-01-01"}]


@pytest.mark.parametrize("bad", BAD_DATES, ids=[json.dumps(b)[:20] for b in BAD_DATES])
def test_invalid_dates_in_some_resources_leave_the_rest_mapped(
    client: Any, valid_request: Request, bad: Any
) -> None:
    body = valid_request()
    entries = body["prefetch"]["medications"]["entry"]
    broken = json.loads(json.dumps(entries[0]))
    broken["resource"].update(id="broken-dates", authoredOn=bad)
    broken["resource"]["dispenseRequest"] = {"validityPeriod": {"start": bad, "end": bad}}
    entries.append(broken)
    for entry in body["prefetch"]["encounters"]["entry"][:3]:
        entry["resource"]["period"] = {"start": bad, "end": bad}
    for entry in body["prefetch"]["allergies"]["entry"]:
        entry["resource"]["recordedDate"] = bad
    cards = assert_valid_cards(post_json(client, SIGN, body))
    assert "repeated-intolerance" in [c["source"]["topic"]["code"] for c in cards]


def test_every_date_invalid_is_still_a_valid_response(client: Any, valid_request: Request) -> None:
    body = valid_request()

    def spoil(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ("2021-02-31" if isinstance(v, str) and k.endswith(("Date", "DateTime",
                    "On", "start", "end", "whenHandedOver", "issued")) else spoil(v))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [spoil(v) for v in value]
        return value

    body["prefetch"] = spoil(body["prefetch"])
    assert_valid_cards(post_json(client, SIGN, body))


UNICODE = ["\u202eevil\u202c", "\u200f\u05e9\u05dc\u05d5\u05dd", "\U0001f48a\U0001f9e0",
           "nul\x00byte", "\ufeffbom", "e\u0301\u0301\u0301", "\U0010ffff"]


@pytest.mark.parametrize("text", UNICODE, ids=range(len(UNICODE)))
def test_unicode_in_ids_and_texts_is_carried_safely(
    client: Any, valid_request: Request, text: str
) -> None:
    body = valid_request()
    body["context"]["userId"] = f"Practitioner/{text}"
    for entry in body["prefetch"]["medications"]["entry"]:
        concept = entry["resource"].get("medicationCodeableConcept", {})
        concept["text"] = f"{text} {concept.get('text', '')}"
        entry["resource"]["note"] = [{"text": text * 100}]
    cards = assert_valid_cards(post_json(client, SIGN, body))
    assert "repeated-intolerance" in [c["source"]["topic"]["code"] for c in cards]

    # A patient id is a FHIR id (ASCII letters, digits, '-', '.'): such text in it is refused
    # by name, never carried into queries, references or the audit key.
    body["context"]["patientId"] = f"pat-{text}"
    response = client.post(SIGN, json=body)
    assert response.status_code == 400
    assert "context.patientId" in response.get_json()["issue"][0]["details"]["text"]


def test_unicode_in_hook_instance_without_control_characters_is_accepted(
    client: Any, valid_request: Request
) -> None:
    body = valid_request()
    body["hookInstance"] = "\u202e\U0001f48a-" + body["hookInstance"]
    assert_valid_cards(post_json(client, SIGN, body))


MALFORMED_PREFETCH = [
    {"resourceType": "Bundle", "entry": "not a list"},
    {"resourceType": "Bundle", "entry": [1, "x", None, [], {"resource": "text"}]},
    {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": 5}}]},
    {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "MedicationRequest",
                                                       "medicationCodeableConcept": "sertraline",
                                                       "dosageInstruction": "daily"}}]},
    {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "MedicationRequest",
                                                       "dosageInstruction": [{"doseAndRate": [
                                                           {"doseQuantity": {"value": "ten"}}]}],
                                                       "medicationReference": 7}}]},
    {"resourceType": "OperationOutcome", "issue": []},
    {"no": "resourceType"},
    [],
    12,
]


@pytest.mark.parametrize("value", MALFORMED_PREFETCH, ids=range(len(MALFORMED_PREFETCH)))
@pytest.mark.parametrize("key", ["allergies", "encounters", "dispenses", "patient"])
def test_malformed_optional_prefetch_values_give_a_valid_200(
    client: Any, valid_request: Request, key: str, value: Any
) -> None:
    body = valid_request("patient-view")
    body["prefetch"][key] = value
    assert_valid_cards(post_json(client, service_url("patient-view"), body))


@pytest.mark.parametrize("value", MALFORMED_PREFETCH[:5], ids=range(5))
def test_malformed_draft_orders_give_a_valid_200(
    client: Any, valid_request: Request, value: Any
) -> None:
    body = valid_request()
    body["context"]["draftOrders"] = value
    assert_valid_cards(post_json(client, SIGN, body))


def _bad_requests(valid_request: Request) -> list[tuple[bytes, str]]:
    """One of each kind of broken request, as (body, content type)."""
    html = valid_request()
    html["prefetch"]["medications"] = HTML_PAGE
    wrong = valid_request()
    wrong["context"]["patientId"] = 42
    return [
        (_nested(10_000, b"[", b"]"), "application/json"),
        (b"{", "application/json"),
        (json.dumps(valid_request()).encode(), "text/plain"),
        (json.dumps(html).encode(), "application/json"),
        (json.dumps(wrong).encode(), "application/json"),
        (b"x" * 300_000, "application/json"),
    ]


def test_storm_of_bad_requests_loses_no_committed_audit_row(
    make_app: Callable[..., Flask], make_settings: Callable[..., Settings], valid_request: Request
) -> None:
    app = make_app(make_settings({"service": {"max_body_bytes": 200_000},
                                  "storage": {"flush_interval_s": 0.05}}))
    client = app.test_client()
    audit = app.extensions["psychopharm"].audit

    def good(i: int) -> list[str]:
        hook = ("order-sign", "patient-view", "order-select")[i % 3]
        body = valid_request(hook, ("repeated_intolerance", "multiple_failed_trials")[i % 2], i)
        return [c["uuid"] for c in assert_valid_cards(post_json(client, service_url(hook), body))]

    committed = [u for i in range(4) for u in good(i)]
    audit.flush(10.0)
    before = {row["card_uuid"]: row for row in audit.query_cards()}
    assert set(committed) <= set(before)

    sent: list[str] = []
    bad = _bad_requests(valid_request)
    for i in range(30):
        data, content_type = bad[i % len(bad)]
        url = service_url(list(SERVICE_OF_HOOK)[i % 4]) if i % 7 else SIGN
        response = client.post(url, data=data, content_type=content_type)
        assert 400 <= response.status_code < 500, (i, response.status_code)
        if i % 3 == 0:
            sent.extend(good(100 + i))
    audit.flush(10.0)

    after = [row for row in audit.query_cards()]
    by_uuid: dict[str, list[dict[str, Any]]] = {}
    for row in after:
        by_uuid.setdefault(row["card_uuid"], []).append(row)
    assert all(u in by_uuid for u in before), "a committed row disappeared"
    assert sent, "the good requests should have produced cards"
    for card_uuid in sent + committed:
        assert len(by_uuid[card_uuid]) == 1
        assert by_uuid[card_uuid][0]["shown"] is True
    assert len(after) == len(before) + len(sent)
    assert audit.stats()["dropped"] == 0
    assert verify_chain(audit.engine).ok
