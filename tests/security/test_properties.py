"""Property-based tests: near-valid hook requests and random FHIR-ish resources.

Hypothesis mutates one field of a valid, sandbox-shaped request at a time (replace it with any
JSON value, or delete it), fills prefetch Bundles with resources whose fields are half plausible
and half junk, and flips bytes of the serialised body. Whatever comes in: no 5xx, the body is
either ``{"cards": [...]}`` or an OperationOutcome, the mapper reports issues instead of raising,
and each example finishes within the deadline. Runs are derandomized, so they are repeatable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.loaders import load_code_lists, load_ingredient_table
from fhir_mappers.codes import CodeLists
from fhir_mappers.mapper import map_draft_orders, map_record
from fhir_mappers.medications import IngredientTable
from fhir_mappers.record import PatientRecord
from tests.security.conftest import assert_valid_cards, hook_request, post_json, service_url

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=2000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
# Real codes and names, so that random resources sometimes classify as psychotropics and reach
# the detectors instead of being discarded at the first check.
CODES = ["36437", "321988", "39786", "42347", "15996", "51272", "35636", "6448", "N06AB06"]
NAMES = ["sertraline 50 MG Oral Tablet", "quetiapine 100 MG Oral Tablet", "lithium carbonate",
         "Escitalopram", "metformin", "PHQ-9 total score"]
RESOURCE_TYPES = ["MedicationRequest", "MedicationStatement", "MedicationDispense",
                  "AllergyIntolerance", "Encounter", "Observation", "Condition", "Patient",
                  "Medication", "OperationOutcome", "Bundle", "Practitioner", "medicationrequest"]

json_leaf = (
    st.none() | st.booleans() | st.integers(-(10**15), 10**15)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=16)
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _or_junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, strategy, json_value)


fhir_date = _or_junk(
    st.dates().map(lambda d: d.isoformat())
    | st.datetimes().map(lambda d: d.isoformat() + "Z")
    | st.sampled_from(["2024", "2024-02", "2024-02-30", "2024-13-01", "T12:00", "now", ""])
)
coding = st.fixed_dictionaries({}, optional={
    "system": _or_junk(st.sampled_from([RXNORM, ATC, "http://loinc.org", "http://snomed.info/sct"])),
    "code": _or_junk(st.sampled_from(CODES + ["44261-6", "70274-6"])),
    "display": _or_junk(st.sampled_from(NAMES)),
})
concept = _or_junk(st.fixed_dictionaries({}, optional={
    "coding": _or_junk(st.lists(coding, max_size=3)),
    "text": _or_junk(st.sampled_from(NAMES)),
}))
quantity = _or_junk(st.fixed_dictionaries({}, optional={
    "value": _or_junk(st.floats(0, 5000, allow_nan=False) | st.integers(-5, 5000)),
    "unit": _or_junk(st.sampled_from(["mg", "g", "mL", "{score}", "tablet"])),
}))
repeat = _or_junk(st.fixed_dictionaries({}, optional={
    "frequency": _or_junk(st.integers(-1, 6)), "period": _or_junk(st.integers(-1, 3)),
    "periodUnit": _or_junk(st.sampled_from(["d", "wk", "h"])),
}))
dosage = _or_junk(st.lists(st.fixed_dictionaries({}, optional={
    "timing": _or_junk(st.fixed_dictionaries({"repeat": repeat})),
    "doseAndRate": _or_junk(st.lists(st.fixed_dictionaries({"doseQuantity": quantity}),
                                     max_size=2)),
    "text": st.text(max_size=20),
}), max_size=2))
period = _or_junk(st.fixed_dictionaries({}, optional={"start": fhir_date, "end": fhir_date}))
reference = _or_junk(st.fixed_dictionaries({"reference": _or_junk(st.sampled_from(
    ["Patient/p1", "Medication/m1", "#med", "Medication/../../x", "urn:uuid:1"]))}))

resource = st.fixed_dictionaries(
    {"resourceType": _or_junk(st.sampled_from(RESOURCE_TYPES))},
    optional={
        "id": _or_junk(st.text(min_size=1, max_size=10)),
        "status": _or_junk(st.sampled_from(
            ["active", "stopped", "completed", "draft", "entered-in-error", "final", "finished"])),
        "intent": _or_junk(st.sampled_from(["order", "plan"])),
        "medicationCodeableConcept": concept,
        "medicationReference": reference,
        "code": concept,
        "subject": reference,
        "patient": reference,
        "authoredOn": fhir_date,
        "effectiveDateTime": fhir_date,
        "effectivePeriod": period,
        "period": period,
        "onsetDateTime": fhir_date,
        "recordedDate": fhir_date,
        "whenHandedOver": fhir_date,
        "birthDate": fhir_date,
        "dosageInstruction": dosage,
        "dosage": dosage,
        "daysSupply": quantity,
        "quantity": quantity,
        "valueQuantity": quantity,
        "valueInteger": _or_junk(st.integers(0, 27)),
        "type": _or_junk(st.sampled_from(["intolerance", "allergy"])),
        "category": _or_junk(st.lists(st.sampled_from(["medication", "food"]), max_size=2)),
        "reaction": _or_junk(st.lists(st.fixed_dictionaries({
            "manifestation": _or_junk(st.lists(concept, max_size=2))}), max_size=2)),
        "clinicalStatus": concept,
        "verificationStatus": concept,
        "statusReason": concept,
        "class": _or_junk(st.fixed_dictionaries({"code": st.sampled_from(["AMB", "VR", "IMP"])})),
        "contained": st.lists(st.just({"resourceType": "Medication", "id": "med",
                                       "code": {"text": "sertraline"}}), max_size=1),
        "entry": _or_junk(st.lists(json_value, max_size=2)),
    },
)


def searchset(resources: list[Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r} for r in resources]}


@cache
def _reference_data() -> tuple[IngredientTable, CodeLists]:
    return load_ingredient_table(), load_code_lists()


@PROPERTY_SETTINGS
@given(st.lists(resource, max_size=12), st.lists(resource, max_size=3))
def test_mapper_reports_issues_instead_of_raising(
    resources: list[Any], drafts: list[Any]
) -> None:
    table, codes = _reference_data()
    record = map_record([searchset(resources), *resources[:2], None, "junk"], table, codes=codes)
    assert isinstance(record, PatientRecord)
    orders, issues = map_draft_orders(searchset(drafts), table, codes=codes)
    assert isinstance(orders, tuple)
    assert isinstance(issues, tuple)


PREFETCH_KEYS = ["medications", "allergies", "encounters", "dispenses", "observations",
                 "conditions"]


@PROPERTY_SETTINGS
@given(
    hook=st.sampled_from(["patient-view", "order-select", "order-sign", "medication-prescribe"]),
    extra=st.dictionaries(st.sampled_from(PREFETCH_KEYS), st.lists(resource, max_size=6),
                          max_size=3),
    drafts=st.lists(resource, max_size=3),
)
def test_random_resources_in_prefetch_give_a_valid_answer(
    client: Any, hook: str, extra: dict[str, list[Any]], drafts: list[Any]
) -> None:
    body = hook_request(hook)
    for key, resources in extra.items():
        body["prefetch"][key]["entry"].extend({"resource": r} for r in resources)
    orders = body["context"].get("draftOrders") or body["context"].get("medications")
    if orders is not None:
        orders["entry"].extend({"resource": r} for r in drafts)
    response = post_json(client, service_url(hook), body)
    # A medications Bundle made only of OperationOutcomes is "no usable data": 412 is the answer.
    assert response.status_code in (200, 412), response.data[:300]
    if response.status_code == 200:
        assert_valid_cards(response)


def _paths(value: Any, path: tuple[Any, ...] = (), depth: int = 0) -> Iterator[tuple[Any, ...]]:
    yield path
    if depth >= 6:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            yield from _paths(item, (*path, index), depth + 1)


@cache
def _mutation_targets(hook: str) -> list[tuple[Any, ...]]:
    return [p for p in _paths(hook_request(hook, seed=2)) if p]


def _mutate(body: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> None:
    parent: Any = body
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


@PROPERTY_SETTINGS
@given(data=st.data(), hook=st.sampled_from(["order-sign", "order-select", "patient-view"]))
def test_one_mutated_field_never_gives_a_server_error(
    client: Any, data: st.DataObject, hook: str
) -> None:
    body = hook_request(hook, seed=2)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(_mutation_targets(hook)), label="path")
        try:
            _mutate(body, path, data.draw(json_value, label="value"),
                    data.draw(st.booleans(), label="delete"))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path's parent
    response = post_json(client, service_url(hook), body)
    assert response.status_code in (200, 400, 412), response.data[:300]
    if response.status_code == 200:
        assert_valid_cards(response)
    else:
        assert response.get_json()["resourceType"] == "OperationOutcome"


@PROPERTY_SETTINGS
@given(data=st.data())
def test_corrupted_bytes_never_give_a_server_error(client: Any, data: st.DataObject) -> None:
    raw = bytearray(json.dumps(hook_request("order-sign", seed=2)).encode())
    for _ in range(data.draw(st.integers(1, 8), label="edits")):
        at = data.draw(st.integers(0, len(raw) - 1), label="offset")
        raw[at] = data.draw(st.integers(0, 255), label="byte")
    if data.draw(st.booleans(), label="truncate"):
        del raw[data.draw(st.integers(0, len(raw) - 1), label="cut"):]
    response = client.post(service_url("order-sign"), data=bytes(raw),
                           content_type="application/json")
    assert response.status_code in (200, 400, 412), response.data[:300]
    if response.status_code == 200:
        assert_valid_cards(response)
