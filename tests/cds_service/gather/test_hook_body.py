"""Parsing a hook body without the history the mapper would skip (``cds_service.gather.hook_body``).

The shortcut must never change what the service concludes: the mapped record (visits, scores,
issues, everything) is compared with the one built from the full ``orjson.loads`` parse, on
every hand-written fixture and on long synthetic histories. Bad bodies must get exactly the
errors of the full parse.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from cds_service.errors import RequestError
from cds_service.gather import hook_body
from cds_service.gather.hook_body import parse_hook_body
from cds_service.gather.hook_request import parse_json_object
from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns import PATTERN_IDS
from cds_service.patterns.engine import evidence_horizon
from cds_service.settings import load_settings
from cds_service.synthetic.archetypes import ARCHETYPES
from cds_service.synthetic.population import generate_patient
from fhir_mappers.mapper import is_latest_visit, map_record
from tests.conftest import FIXTURES, NOW

TABLE = load_ingredient_table()
CODES = load_code_lists()
PATTERNS = load_settings().patterns
KEEP = partial(is_latest_visit, table=TABLE, codes=CODES)
CASES = sorted(path for pid in PATTERN_IDS for path in (FIXTURES / pid).glob("*.json"))
HORIZON = date(2023, 1, 1)


def _parse(body: bytes, horizon: date = HORIZON) -> dict[str, Any]:
    return parse_hook_body(body, horizon_iso=horizon.isoformat(), keep_encounter=KEEP)


def _record(data: Mapping[str, Any], horizon: date) -> Any:
    values = [v for v in (data.get("prefetch") or {}).values() if v is not None]
    return map_record(values, TABLE, codes=CODES, horizon=horizon)


def _entries(data: Mapping[str, Any], key: str) -> list[str]:
    return [e["resource"]["id"] for e in data["prefetch"][key]["entry"]]


def _request(*resources: dict[str, Any], key: str = "encounters") -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {
            key: {
                "resourceType": "Bundle", "type": "searchset",
                "entry": [{"fullUrl": f"urn:x:{r['id']}", "resource": r} for r in resources],
            },
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1980-04-02"},
        },
    }


def _encounter(eid: str, start: str, *, cls: str = "AMB", status: str = "finished",
               end: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Encounter", "id": eid, "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": start, "end": end or start},
    }


def _phq9(oid: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "id": oid, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": when, "valueInteger": 14,
    }


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixtures_map_to_the_same_record_as_the_full_parse(path: Path) -> None:
    body = path.read_bytes()
    horizon = evidence_horizon(PATTERNS, NOW.date())
    pruned = _parse(body, horizon)

    assert _record(pruned, horizon) == _record(orjson.loads(body), horizon)
    # Everything outside the prefetch Bundles is the body as sent.
    full = orjson.loads(body)
    assert {k: v for k, v in pruned.items() if k != "prefetch"} == {
        k: v for k, v in full.items() if k != "prefetch"
    }


@pytest.mark.parametrize("archetype", sorted(ARCHETYPES))
def test_long_synthetic_histories_map_to_the_same_record(archetype: str) -> None:
    as_of = date(2026, 11, 26)
    horizon = evidence_horizon(PATTERNS, as_of)
    for seed in range(3):
        bundle = generate_patient(
            random.Random(seed), as_of, archetype, index=seed, history_years=6, n_resources=400,
            bundle_type="searchset",
        )
        body = orjson.dumps({**_request(), "prefetch": {"everything": bundle}})
        pruned = _parse(body, horizon)

        assert _record(pruned, horizon) == _record(orjson.loads(body), horizon)
        # Not vacuous: most of the padded history was never built.
        assert len(pruned["prefetch"]["everything"]["entry"]) < len(bundle["entry"]) / 2


def test_old_scores_go_and_the_latest_visit_search_keeps_what_it_reads() -> None:
    body = orjson.dumps(_request(
        _encounter("old-amb-1", "2019-02-01"),
        _encounter("old-amb-2", "2020-03-01"),  # the latest outpatient visit before the horizon
        _encounter("old-ward", "2020-05-01", cls="IMP"),  # newer, but not outpatient
        _encounter("old-cancelled", "2020-06-01", status="cancelled"),
        _encounter("recent", "2026-05-02"),
        _encounter("open-stay", "2020-01-01", status="in-progress", cls="IMP"),
        _phq9("phq-old", "2020-01-15"),
        _phq9("phq-recent", "2026-04-01T10:00:00+02:00"),
        _phq9("phq-undated", "not a date"),
    ))
    pruned = _parse(body)

    assert _entries(pruned, "encounters") == [
        "recent", "open-stay", "phq-recent", "phq-undated",
        # newest first, down to the first the search accepts; old-amb-1 is never built
        "old-cancelled", "old-ward", "old-amb-2",
    ]
    record = _record(pruned, HORIZON)
    assert sorted(v.ref for v in record.visits) == [
        "Encounter/old-amb-2", "Encounter/open-stay", "Encounter/recent"
    ]
    assert record == _record(orjson.loads(body), HORIZON)


def test_without_any_outpatient_visit_every_old_encounter_is_read() -> None:
    body = orjson.dumps(_request(
        _encounter("ward-1", "2019-02-01", cls="IMP"), _encounter("ed-1", "2020-02-01", cls="EMER")
    ))
    assert sorted(_entries(_parse(body), "encounters")) == ["ed-1", "ward-1"]


def test_a_bundle_left_with_only_its_search_warnings_is_kept_whole() -> None:
    # A searchset may carry an OperationOutcome entry (search.mode "outcome"); alone it would
    # read as an error report and the key would be fetched again.
    outcome = {"resourceType": "OperationOutcome", "id": "warn",
               "issue": [{"severity": "warning", "code": "informational"}]}
    body = orjson.dumps(_request(_phq9("phq-old", "2019-01-15"), outcome, key="observations"))

    assert _entries(_parse(body), "observations") == ["phq-old", "warn"]


def test_bundles_outside_the_prefetch_and_other_values_are_untouched() -> None:
    request = _request(_phq9("phq-old", "2019-01-15"), key="observations")
    request["context"]["draftOrders"] = {
        "resourceType": "Bundle", "entry": [{"resource": _phq9("draft-like", "2019-01-15")}]
    }
    request["prefetch"]["statements"] = None
    request["prefetch"]["single"] = _phq9("lone-old-score", "2019-01-15")
    request["extension"] = {"com.example": [1, 2.5, True, None, "é"]}
    pruned = _parse(orjson.dumps(request))

    assert pruned["context"] == request["context"]
    assert pruned["prefetch"]["statements"] is None
    assert pruned["prefetch"]["single"] == request["prefetch"]["single"]
    assert pruned["extension"] == request["extension"]
    assert pruned["prefetch"]["observations"]["entry"] == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[1, 2]",
        b'"a string"',
        b'{"hook": "patient-view",}',
        b'{"a": ' * 1100 + b"1" + b"}" * 1100,
        b'{"prefetch": {"x": {"resourceType": "Bundle", "entry": [{"resource": \xff}]}}}',
    ],
    ids=["syntax", "empty", "array", "string", "trailing-comma", "too-deep", "bad-utf8"],
)
def test_bad_bodies_get_the_errors_of_the_full_parse(body: bytes) -> None:
    with pytest.raises(RequestError) as expected:
        parse_json_object(body)
    with pytest.raises(RequestError) as got:
        _parse(body)
    assert (got.value.code, str(got.value)) == (expected.value.code, str(expected.value))


def test_the_service_gives_the_same_cards_for_a_long_history(client: Any) -> None:
    path = FIXTURES / "repeated-intolerance" / "positive-patient-view-three-classes.json"
    short = json.loads(path.read_text(encoding="utf-8"))
    long = json.loads(path.read_text(encoding="utf-8"))
    # Fifteen years of earlier visits and scores, all before every pattern's look-back.
    history = [_phq9(f"phq-{y}", f"{y}-03-01") for y in range(2005, 2020)] + [
        _encounter(f"visit-{y}", f"{y}-03-01") for y in range(2005, 2020)
    ]
    long["prefetch"]["observations"] = _request(*history, key="o")["prefetch"]["o"]
    url = "/cds-services/psychopharm-patient-view"

    def cards(body: dict[str, Any]) -> list[tuple[str, str]]:
        response = client.post(url, json=body)
        assert response.status_code == 200
        return [(c["summary"], c["detail"]) for c in response.get_json()["cards"]]

    expected = cards(short)
    assert expected  # the fixture fires
    assert cards(long) == expected


def test_what_only_the_full_parser_reads_is_read_by_it() -> None:
    # simdjson refuses integers beyond 64 bits; orjson reads them as floats, as before.
    body = b'{"prefetch": {"n": 123456789012345678901234567890}, "m": [1e300, -0.0]}'
    assert _parse(body) == orjson.loads(body)


def test_a_busy_parser_falls_back_to_the_full_parse_and_is_replaced() -> None:
    # This thread's parser refuses a new document while objects of its last one are alive.
    held = hook_body._parser(16).parse(b'{"still": {"referenced": true}}')["still"]
    body = orjson.dumps(_request(_phq9("phq-old", "2019-01-15"), key="observations"))

    assert _parse(body) == orjson.loads(body)  # the full parse: nothing left out
    assert _entries(_parse(body), "observations") == []  # a fresh parser prunes again
    del held


def test_bodies_beyond_the_reuse_limit_get_a_parser_of_their_own() -> None:
    shared = hook_body._parser(1024)
    assert hook_body._parser(1024) is shared
    assert hook_body._parser(hook_body.REUSE_MAX_BYTES + 1) is not shared
