"""Resources that cannot matter cost almost nothing: an order is classified by its medication
first, once per distinct medication per call, and an order for a non-psychotropic (lisinopril) is
recognised before anything else of it is read (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappers import CodeLists, IngredientTable, map_record, medication_source
from fhir_mappers.context import MappingContext
from fhir_mappers.medication_requests import map_medication_request

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


class ReadLog(dict[str, Any]):
    """A resource that records which of its elements were read, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.append(key)
        return super().__getitem__(key)


def _order(rid: str, display: str, code: str) -> dict[str, Any]:
    """A Synthea-style order, with the detail a mapper would have to work through."""
    return {
        "resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": display}], "text": display,
        },
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2026-01-05T09:30:00-05:00",
        "requester": {"reference": "Practitioner/dr-1"},
        "encounter": {"reference": "Encounter/e-1"},
        "dosageInstruction": [{
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                  "boundsPeriod": {"start": "2026-01-05"}}},
            "doseAndRate": [{"doseQuantity": {"value": 1}}],
        }],
        "dispenseRequest": {"quantity": {"value": 30}},
    }


LISINOPRIL = ("lisinopril 10 MG Oral Tablet", "314076")
SERTRALINE = ("sertraline 50 MG Oral Tablet", "312941")


def test_a_lisinopril_order_is_set_aside_on_its_medication_alone(
    table: IngredientTable, codes: CodeLists
) -> None:
    resource = ReadLog(_order("mr-1", *LISINOPRIL))
    mapped = map_medication_request(resource, "MedicationRequest/mr-1", MappingContext(
        table, codes))

    assert not mapped.course.is_psychotropic
    assert resource.read[0] == "medicationCodeableConcept"
    # Its dosage, requester, encounter and supply are never read.
    assert not {"dosageInstruction", "requester", "encounter", "dispenseRequest"} & set(
        resource.read)


def test_a_sertraline_order_is_read_in_full(table: IngredientTable, codes: CodeLists) -> None:
    resource = ReadLog(_order("mr-2", *SERTRALINE))
    mapped = map_medication_request(resource, "MedicationRequest/mr-2", MappingContext(
        table, codes))

    assert mapped.course.is_psychotropic
    assert mapped.course.daily_dose_mg == 50
    assert {"dosageInstruction", "requester"} <= set(resource.read)


def test_each_distinct_medication_is_classified_once_per_call(
    table: IngredientTable, codes: CodeLists, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    classify = medication_source._from_concepts

    def counting(display: str, *args: Any) -> Any:
        calls.append(display)
        return classify(display, *args)

    monkeypatch.setattr(medication_source, "_from_concepts", counting)
    orders = [_order(f"mr-{i}", *(LISINOPRIL if i % 3 else SERTRALINE)) for i in range(300)]
    bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in orders]}

    record = map_record([bundle], table, codes=codes)

    assert sorted(calls) == sorted([LISINOPRIL[0], SERTRALINE[0]])
    assert len(record.courses) == 100
    assert all(c.is_psychotropic for c in record.courses)
    assert len(record.other_medications) == 200


def _fill(rid: str, display: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationDispense", "id": rid, "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}],
                                      "text": display},
        "subject": {"reference": "Patient/p1"},
        "authorizingPrescription": [{"reference": "MedicationRequest/mr-1"}],
        "quantity": {"value": 30}, "daysSupply": {"value": 30, "unit": "days"},
        "whenHandedOver": "2026-01-06T10:00:00Z",
    }


@pytest.mark.parametrize("build", [_order, _fill], ids=["order", "fill"])
def test_in_a_record_a_lisinopril_resource_is_read_no_further_than_it_says_of_itself(
    table: IngredientTable, codes: CodeLists, build: Any
) -> None:
    lisinopril = ReadLog(build("mr-1", *LISINOPRIL))
    sertraline = ReadLog(build("mr-2", *SERTRALINE))

    record = map_record([lisinopril, sertraline], table, codes=codes, patient_id="p1")

    assert [o.ref.partition("/")[2] for o in record.other_medications] == ["mr-1"]
    # What the record's collection reads of every resource, then its medication, status and
    # date: never its dosage, supply, requester, encounter or authorizing order.
    assert set(lisinopril.read) <= {
        "resourceType", "id", "subject", "status", "medicationCodeableConcept", "authoredOn",
        "whenHandedOver",
    }
    assert {"dosageInstruction", "requester"} & set(sertraline.read) or {
        "daysSupply", "authorizingPrescription"} <= set(sertraline.read)
