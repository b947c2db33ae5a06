"""The orders being selected or signed: order-select/order-sign draftOrders and the legacy
medication-prescribe ``medications`` Bundle."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from cds_service.loaders import load_code_lists
from fhir_mappers import CodeLists, IngredientTable, map_draft_orders

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

CODES = load_code_lists()


def test_sandbox_order_sign(table: IngredientTable, load_fixture: Callable[[str], Any]) -> None:
    # No Bundle.type and `category` as one object: strict R4 parsers reject this request.
    request = load_fixture("sandbox-order-sign.json")
    drafts, issues = map_draft_orders(request["context"]["draftOrders"], table, codes=CODES)
    assert issues == ()
    (draft,) = drafts
    assert draft.ref == "MedicationRequest/request-123"
    assert (draft.is_draft, draft.status, draft.intent) == (True, "draft", "order")
    assert [i.name for i in draft.ingredients] == ["sertraline"]
    assert draft.is_psychotropic
    assert draft.start == date(2026, 11, 22)
    assert draft.daily_dose_mg == 200.0  # one 100 mg "{pill}" twice a day


def test_order_select_before_a_drug_is_chosen(table: IngredientTable) -> None:
    # The sandbox fires order-select with only id/status/subject/authoredOn.
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {
        "resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
        "subject": {"reference": "Patient/pat1"}, "authoredOn": "2026-11-22"}}]}  # fmt: skip
    drafts, issues = map_draft_orders(bundle, table, codes=CODES)
    assert [(d.ingredients, d.is_psychotropic) for d in drafts] == [((), False)]
    assert [(i.field, i.reason) for i in issues] == [("medication[x]", "no medication")]


def test_medication_prescribe_stu3(
    table: IngredientTable, codes: CodeLists, load_fixture: Callable[[str], Any]
) -> None:
    request = load_fixture("medication-prescribe-stu3.json")
    drafts, issues = map_draft_orders(request["context"]["medications"], table, codes=codes)
    assert issues == ()
    quetiapine, amlodipine = drafts
    assert [i.name for i in quetiapine.ingredients] == ["quetiapine"]
    assert quetiapine.daily_dose_mg == 200.0
    assert quetiapine.requester == "Practitioner/example"  # STU3 requester.agent
    assert quetiapine.encounter == "Encounter/89284"  # STU3 context
    assert quetiapine.start == date(2026, 11, 20)
    assert (amlodipine.ingredients, amlodipine.is_draft) == ((), True)


def test_dstu2_medication_order(table: IngredientTable) -> None:
    order = {
        "resourceType": "MedicationOrder", "id": "order-123", "status": "draft",
        "patient": {"reference": "Patient/1"}, "dateWritten": "2026-11-20",
        "prescriber": {"reference": "Practitioner/2"},
        "medicationCodeableConcept": {"text": "Lamotrigine 100 MG Oral Tablet",
                                      "coding": [{"system": RXNORM, "code": "198427"}]},
        "dosageInstruction": [{"doseQuantity": {"value": 1, "code": "{pill}"}, "timing": {
            "repeat": {"frequency": 2, "period": 1, "periodUnits": "d"}}}],
    }  # fmt: skip
    drafts, issues = map_draft_orders(
        {"resourceType": "Bundle", "entry": [{"resource": order}]}, table, codes=CODES
    )
    (draft,) = drafts
    assert (draft.ref, draft.source_type) == ("MedicationOrder/order-123", "MedicationRequest")
    assert [i.name for i in draft.ingredients] == ["lamotrigine"]
    assert (draft.start, draft.daily_dose_mg, draft.requester) == (
        date(2026, 11, 20), 200.0, "Practitioner/2",
    )  # fmt: skip
    assert issues == ()


def test_other_orders_are_ignored_without_issue(table: IngredientTable) -> None:
    bundle = {"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "ServiceRequest", "id": "sr1", "status": "draft",
                      "intent": "order", "code": {"text": "MRI brain"}}},
        {"resource": {"resourceType": "NutritionOrder", "id": "no1", "status": "draft"}},
    ]}  # fmt: skip
    assert map_draft_orders(bundle, table, codes=CODES) == ((), ())


def draft(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/p1"}, **fields}  # fmt: skip


def test_medication_found_in_the_draft_bundle_or_supplied(table: IngredientTable) -> None:
    medication = {"resourceType": "Medication", "id": "m1",
                  "code": {"coding": [{"system": RXNORM, "code": "89013",
                                       "display": "aripiprazole"}]}}  # fmt: skip
    order = draft(medicationReference={"reference": "Medication/m1"})
    in_bundle = {"resourceType": "Bundle", "entry": [{"resource": order}, {"resource": medication}]}
    supplied = {"resourceType": "Bundle", "entry": [{"resource": order}]}
    for drafts, _ in (
        map_draft_orders(in_bundle, table, codes=CODES),
        map_draft_orders(
            supplied, table, medications={"Medication/m1": medication}, codes=CODES
        ),
    ):
        assert [i.name for i in drafts[0].ingredients] == ["aripiprazole"]


def test_draft_start_is_authored_on_only(table: IngredientTable) -> None:
    # A planned start in the dosage is not history: the engine treats drafts as starting now.
    order = draft(
        medicationCodeableConcept={"text": "sertraline 50 MG Oral Tablet"},
        dosageInstruction=[{"timing": {"repeat": {"boundsPeriod": {"start": "2026-12-01"}}}}],
    )
    drafts, _ = map_draft_orders(
        {"resourceType": "Bundle", "entry": [{"resource": order}]}, table, codes=CODES
    )
    assert drafts[0].start is None


def test_list_of_resources_and_entered_in_error(table: IngredientTable) -> None:
    # CDS Hooks 1.0 clients sent `medications` as a plain array.
    keep = draft(medicationCodeableConcept={"text": "Zyprexa 5 mg"})
    dropped = draft(id="d2", status="entered-in-error", medicationCodeableConcept={"text": "Xanax"})
    drafts, issues = map_draft_orders([keep, dropped], table, codes=CODES)
    assert [(d.ref, d.ingredients[0].name) for d in drafts] == [
        ("MedicationRequest/d1", "olanzapine")
    ]
    assert issues == ()


def test_junk_context_is_an_issue_not_an_error(table: IngredientTable) -> None:
    drafts, issues = map_draft_orders("<html>Service Unavailable</html>", table, codes=CODES)
    assert drafts == ()
    assert [(i.resource_type, i.reason) for i in issues] == [
        ("unknown", "not a JSON object (HTML or XML text)")
    ]
