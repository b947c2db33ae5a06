"""A hook body is read once, by one parser, and the mapper alone decides what it skips.

Two readings of one request could disagree (issue 14): on a repeated key, one JSON parser keeps
the first value and another the last; and resources without an ``id`` are referred to by their
position, which must not depend on what was skipped before them, since those references are the
evidence keys that override suppression matches on.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import orjson

from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns.engine import evidence_horizon
from cds_service.settings import load_settings
from fhir_mappers.mapper import map_record
from tests.cds_service.conftest import hook_body, service_url

PID = "one-reading-p1"
TODAY = date.today()


def _with_leading_hook(body: dict[str, Any], first: str) -> bytes:
    """The body with ``"hook"`` written twice: ``first``, then the body's own value."""
    raw = orjson.dumps(body)
    return b'{"hook":"' + first.encode() + b'",' + raw[1:]


def test_a_repeated_key_is_read_as_the_parser_reads_it_everywhere(client: Any) -> None:
    # orjson (like Python's json) keeps the last value: the request is an order-sign call.
    raw = _with_leading_hook(hook_body("order-sign", PID), "patient-view")
    assert orjson.loads(raw)["hook"] == "order-sign"

    signed = client.post(service_url("order-sign"), data=raw, content_type="application/json")
    viewed = client.post(service_url("patient-view"), data=raw,
                         content_type="application/json")

    assert signed.status_code == 200, signed.get_data(as_text=True)
    assert viewed.status_code == 400
    issue = viewed.get_json()["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "hook-mismatch"


def _day(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).isoformat()


def _old_visit(n: int) -> dict[str, Any]:
    day = _day(4000 + n)
    return {"resourceType": "Encounter", "id": f"old-{n}", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB"},
            "subject": {"reference": f"Patient/{PID}"},
            "period": {"start": day, "end": day}}


def _idless_order(drug: str, days_ago: int) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": f"{drug} 50 MG Oral Tablet"},
            "subject": {"reference": f"Patient/{PID}"}, "authoredOn": _day(days_ago)}


def test_resources_without_an_id_keep_their_reference_whatever_is_skipped() -> None:
    table, codes = load_ingredient_table(), load_code_lists()
    horizon = evidence_horizon(load_settings().patterns, TODAY)
    # Ten visits from before the horizon (skipped by the mapper), then two orders without an id.
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": r} for r in [*(_old_visit(n) for n in range(10)),
                                  _idless_order("sertraline", 200),
                                  _idless_order("quetiapine", 100)]
    ]}
    body = orjson.loads(orjson.dumps(bundle))

    bounded = map_record([body], table, codes=codes, horizon=horizon)
    full = map_record([body], table, codes=codes)

    assert [c.ref for c in bounded.courses] == [c.ref for c in full.courses] == ["#10", "#11"]
    assert len(bounded.visits) < len(full.visits)  # not vacuous: the old visits were skipped
