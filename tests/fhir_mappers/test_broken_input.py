"""Broken input becomes MappingIssues; the rest of the record is still built, nothing raises."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappers import CodeLists, IngredientTable, map_draft_orders, map_record

HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"



def test_quirky_export(
    table: IngredientTable, codes: CodeLists, load_fixture: Callable[[str], Any]
) -> None:
    record = map_record(
        [load_fixture("quirky-bundle.json"), None, HTML_PAGE, ["a", "list"], 42], table, codes=codes
    )
    assert {(i.resource_type, i.ref, i.field, i.reason) for i in record.issues} == {
        ("unknown", "#9", "", "not a JSON object (HTML or XML text)"),  # entry.resource was a page
        ("unknown", "#10", "", "not a JSON object (str)"),  # an entry that is a string
        ("unknown", "#11", "resourceType", "missing resourceType"),
        ("unknown", "#14", "", "not a JSON object (HTML or XML text)"),
        ("unknown", "#15", "", "not a JSON object (a list)"),
        ("unknown", "#16", "", "not a JSON object (int)"),
        ("MedicationRequest", "MedicationRequest/q-bad-date", "authoredOn", "unparseable date"),
        ("MedicationRequest", "MedicationRequest/q-dosage-string", "medicationCodeableConcept",
         "text instead of a concept"),
        ("MedicationRequest", "MedicationRequest/q-dosage-string", "dosageInstruction",
         "dosage is not an object"),
        ("MedicationRequest", "MedicationRequest/q-no-medication", "medication[x]",
         "no medication"),
        ("AllergyIntolerance", "AllergyIntolerance/q-allergy-objects", "onsetDateTime",
         "unparseable date"),
        ("Observation", "Observation/q-phq9-text", "value[x]",
         "PHQ-9 total without a numeric value"),
        ("MedicationDispense", "MedicationDispense/q-dispense", "daysSupply",
         "not a duration in days"),
    }  # fmt: skip

    courses = {c.ref: c for c in record.courses}
    assert courses["MedicationRequest/q-good"].daily_dose_mg == 100.0
    assert courses["MedicationRequest/q-bad-date"].start is None
    assert courses["MedicationRequest/q-bad-date"].ingredients[0].name == "aripiprazole"
    assert courses["MedicationRequest/q-dosage-string"].ingredients[0].name == "mirtazapine"
    # single objects where R4 has lists: still read
    (allergy,) = record.intolerances
    assert (allergy.kind, allergy.ingredients[0].name, allergy.when) == (
        "allergy",
        "clozapine",
        None,
    )
    assert [(v.ref, v.class_code) for v in record.visits] == [
        ("Encounter/q-r5-class", "AMB"),
        ("Encounter/q-no-class", ""),
    ]
    assert record.dispenses[0].days_supply is None
    assert record.scores == ()


def test_issue_logs_carry_no_ids_or_values(
    table: IngredientTable,
    codes: CodeLists,
    load_fixture: Callable[[str], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="fhir_mappers"):
        map_record([load_fixture("quirky-bundle.json")], table, codes=codes)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "unparseable date" in logged
    for secret in ("q-bad-date", "last tuesday", "mirtazapine", "Patient/pat-1042", "502", "#9"):
        assert secret not in logged


@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": "MedicationRequest", "id": "x", "dosageInstruction": [{"timing": "BID"}],
         "medicationCodeableConcept": {"coding": "sertraline"}, "authoredOn": ["2025-01-01"]},
        {"resourceType": "MedicationRequest", "id": "x", "medicationReference": "Medication/1",
         "dosageInstruction": [{"doseAndRate": {"doseQuantity": {"value": 1, "code": "mg"}},
                                "timing": {"repeat": {"period": 0, "periodUnit": "d"}}}]},
        {"resourceType": "MedicationStatement", "id": "x", "status": "stopped",
         "statusReason": "side effects", "effectivePeriod": "2025"},
        {"resourceType": "AllergyIntolerance", "id": "x", "reaction": ["rash"], "category": 7,
         "verificationStatus": ["confirmed"]},
        {"resourceType": "Encounter", "id": "x", "class": 5, "period": ["2025-01-01"],
         "type": "AMB"},
        {"resourceType": "MedicationDispense", "id": "x", "daysSupply": 30, "quantity": "60",
         "authorizingPrescription": "MedicationRequest/1"},
        {"resourceType": "Observation", "id": "x", "code": "44261-6", "valueInteger": "12"},
        {"resourceType": "Observation", "id": "x", "code": {"coding": [{"code": "44249-1"}]},
         "component": {"code": {"coding": {"code": "44261-6"}}, "valueInteger": 9}},
        {"resourceType": "Condition", "id": "x", "code": [], "clinicalStatus": 1},
        {"resourceType": "Patient", "id": "x", "birthDate": 19840612},
        {"resourceType": "Bundle", "entry": {"resource": {"resourceType": "Encounter", "id": "e"}}},
        {"resourceType": "Bundle", "entry": "nothing"},
        {"resourceType": 5},
    ],
)  # fmt: skip
def test_wrong_shapes_never_raise(
    table: IngredientTable, codes: CodeLists, resource: dict[str, Any]
) -> None:
    good = {"resourceType": "Encounter", "id": "ok", "status": "finished",
            "class": {"code": "AMB"}, "period": {"start": "2025-01-01"}}  # fmt: skip
    record = map_record([resource, good], table, codes=codes)
    assert "Encounter/ok" in [v.ref for v in record.visits]
    bundle = {"resourceType": "Bundle", "entry": [{"resource": resource}]}
    map_draft_orders(bundle, table, codes=codes)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["2025-01-01", "mg", "{tbl}", "d", "#m", "Medication/m", "sintol"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(
        st.sampled_from([
            "coding", "code", "system", "text", "value", "unit", "reference", "repeat", "timing",
            "frequency", "period", "periodUnit", "doseAndRate", "doseQuantity", "start", "end",
            "manifestation", "substance", "id", "entry", "resource",
        ]),
        children,
        max_size=4,
    ),
    max_leaves=12,
)  # fmt: skip
FIELDS = st.sampled_from([
    "status", "intent", "authoredOn", "medicationCodeableConcept", "medicationReference",
    "dosageInstruction", "statusReason", "contained", "reaction", "code", "type", "category",
    "class", "period", "effectiveDateTime", "effectivePeriod", "valueQuantity", "component",
    "daysSupply", "quantity", "whenHandedOver", "verificationStatus", "dosage", "onsetPeriod",
])  # fmt: skip
TYPES = st.sampled_from([
    "MedicationRequest", "MedicationStatement", "AllergyIntolerance", "Encounter",
    "MedicationDispense", "Observation", "Condition", "Patient", "Medication", "Bundle",
])  # fmt: skip


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(rtype=TYPES, fields=st.dictionaries(FIELDS, JSON, max_size=6))
def test_fuzzed_resources_never_raise(
    table: IngredientTable, codes: CodeLists, rtype: str, fields: dict[str, Any]
) -> None:
    resource = {"resourceType": rtype, "id": "f", **fields}
    map_record([resource], table, codes=codes)
    map_draft_orders([resource], table, codes=codes)
