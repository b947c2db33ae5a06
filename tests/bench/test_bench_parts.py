"""The benchmark's building blocks: request sizes, percentiles, the loopback FHIR server's
answers and the target check. The end-to-end run is in test_bench_smoke.py."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from datetime import date

import orjson
import pytest

from bench.fhir_server import BASE_PATH, index_bundles, make_server
from bench.measure import percentile
from bench.report import targets
from bench.workload import SIZES, hook_body, patient_bundle

AS_OF = date(2026, 6, 15)


@pytest.mark.parametrize("n", [20, 150, 1000])
def test_patient_bundle_has_exactly_the_requested_resources(n: int) -> None:
    bundle = patient_bundle(n, as_of=AS_OF)
    assert len(bundle["entry"]) == n
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    # Trimmed or padded, the intolerance story itself stays in the record.
    assert {"Patient", "MedicationRequest", "AllergyIntolerance"} <= types


def test_sizes_are_the_documented_ones() -> None:
    assert SIZES == {"small": 20, "typical": 150, "large": 1000}


def test_fallback_body_has_no_prefetch_and_names_the_fhir_server() -> None:
    bundle = patient_bundle(20, as_of=AS_OF)
    with_prefetch = hook_body(bundle, "order-sign")
    fallback = hook_body(bundle, "order-sign", fhir_server="http://127.0.0.1:9/fhir")
    assert "prefetch" not in fallback
    assert fallback["fhirServer"] == "http://127.0.0.1:9/fhir"
    assert fallback["context"]["draftOrders"] == with_prefetch["context"]["draftOrders"]
    # Every key the services declare is filled, so the service reads nothing from a server.
    assert set(with_prefetch["prefetch"]) >= {"patient", "medications", "statements"}


@pytest.mark.parametrize(
    ("samples", "q", "expected"),
    [
        ([5.0, 1.0, 3.0, 2.0, 4.0], 50, 3.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
        ([float(i) for i in range(1, 101)], 95, 95.0),
        ([7.0], 99, 7.0),
    ],
    ids=["median-odd", "p99-of-100", "p95-of-100", "single"],
)
def test_percentile_is_nearest_rank(samples: list[float], q: float, expected: float) -> None:
    assert percentile(samples, q) == expected


@pytest.fixture
def fhir_base() -> Iterator[str]:
    server = make_server(index_bundles([patient_bundle(20, as_of=AS_OF, patient_id="p-1")]))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _get(host: str, path: str) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection(host, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, orjson.loads(response.read())
    finally:
        conn.close()


def test_loopback_fhir_server_answers_the_prefetch_searches(fhir_base: str) -> None:
    status, patient = _get(fhir_base, f"{BASE_PATH}/Patient/p-1")
    assert (status, patient["resourceType"], patient["id"]) == (200, "Patient", "p-1")
    status, bundle = _get(fhir_base, f"{BASE_PATH}/AllergyIntolerance?patient=p-1")
    assert status == 200 and bundle["type"] == "searchset"
    entries = bundle["entry"]
    assert isinstance(entries, list) and entries
    assert {e["resource"]["resourceType"] for e in entries} == {"AllergyIntolerance"}
    status, empty = _get(fhir_base, f"{BASE_PATH}/MedicationStatement?patient=p-1")
    assert (status, empty["total"]) == (200, 0)
    status, missing = _get(fhir_base, f"{BASE_PATH}/Patient/someone-else")
    assert (status, missing["resourceType"]) == (404, "OperationOutcome")


def _results(http_ratio: float, parse_ratio: float, p99: float, first: float, last: float
             ) -> dict[str, object]:
    timing = {"p50_ms": 1.0, "p95_ms": 1.0, "p99_ms": p99}
    return {
        "http": [{"size": "large", "ratio_p50": http_ratio, "service": timing},
                 {"size": "typical", "ratio_p50": 1.0, "service": timing}],
        "in_process": [{"size": "large", "ratio_p50": parse_ratio}],
        "growth": {"first": {"p50_ms": first}, "last": {"p50_ms": last}},
    }


def test_targets_report_met_and_missed() -> None:
    met = targets(_results(1.9, 4.9, 99.0, 5.0, 5.5))
    assert [passed for _, _, passed in met] == [True, True, True, True]
    missed = targets(_results(2.1, 5.1, 100.0, 5.0, 7.0))
    assert [passed for _, _, passed in missed] == [False, False, False, False]
