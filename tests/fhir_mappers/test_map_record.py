"""A realistic patient bundle mapped to the timeline the patterns read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from fhir_mappers import CodeLists, IngredientTable, map_record, unresolved_medication_refs
from fhir_mappers.record import MedicationCourse, PatientRecord

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def course(record: PatientRecord, ref: str) -> MedicationCourse:
    return next(c for c in record.courses if c.ref == ref)


def test_bundle_maps_without_issues(patient_record: PatientRecord) -> None:
    assert patient_record.issues == ()
    assert patient_record.birth_date == date(1984, 6, 12)


def test_courses_in_date_order_without_entered_in_error(patient_record: PatientRecord) -> None:
    assert [c.ref for c in patient_record.courses] == [
        "MedicationStatement/ms-fluoxetine",
        "MedicationRequest/mr-sertraline-50",
        "MedicationRequest/mr-escitalopram-10",
        "MedicationRequest/mr-venlafaxine-75",
        "MedicationRequest/mr-lorazepam-prn",
        "MedicationRequest/mr-venlafaxine-150",
        "MedicationRequest/mr-quetiapine-100",
        "MedicationRequest/mr-lithium-300",
    ]
    # Melatonin is in the ingredient table, but not psychotropic: no pattern reads it.
    assert [o.ref for o in patient_record.other_medications] == [
        "MedicationStatement/ms-melatonin"
    ]


def test_stopped_for_intolerance(patient_record: PatientRecord) -> None:
    sertraline = course(patient_record, "MedicationRequest/mr-sertraline-50")
    assert [i.name for i in sertraline.ingredients] == ["sertraline"]
    assert (sertraline.status, sertraline.intent) == ("stopped", "order")
    assert (sertraline.start, sertraline.end) == (date(2025, 1, 10), date(2025, 1, 24))
    assert sertraline.daily_dose_mg == 50.0
    assert sertraline.stop_reason == "intolerance"
    assert [c.code for c in sertraline.status_reasons] == ["407563006"]
    assert sertraline.encounter == "Encounter/enc-1"
    assert sertraline.requester == "Practitioner/prac-7"
    assert sertraline.display == "sertraline 50 MG Oral Tablet"


def test_stopped_without_end_keeps_end_unknown(patient_record: PatientRecord) -> None:
    escitalopram = course(patient_record, "MedicationRequest/mr-escitalopram-10")
    assert (escitalopram.end, escitalopram.stop_reason) == (None, "intolerance")


def test_dose_increase_links_the_prior_prescription(patient_record: PatientRecord) -> None:
    before = course(patient_record, "MedicationRequest/mr-venlafaxine-75")
    after = course(patient_record, "MedicationRequest/mr-venlafaxine-150")
    assert (before.daily_dose_mg, after.daily_dose_mg) == (75.0, 150.0)
    assert after.prior_prescription == "MedicationRequest/mr-venlafaxine-75"
    assert before.ingredients == after.ingredients
    assert before.stop_reason is None


def test_medication_references(patient_record: PatientRecord) -> None:
    quetiapine = course(patient_record, "MedicationRequest/mr-quetiapine-100")  # contained #med1
    assert [i.name for i in quetiapine.ingredients] == ["quetiapine"]
    assert quetiapine.daily_dose_mg == 100.0  # one tablet at bedtime
    lithium = course(patient_record, "MedicationRequest/mr-lithium-300")  # _include'd Medication
    assert [i.drug_class for i in lithium.ingredients] == ["mood_stabilizer"]
    assert (lithium.display, lithium.daily_dose_mg) == (
        "lithium carbonate 300 MG Oral Capsule",
        600.0,
    )


def test_prn_and_not_psychotropic(patient_record: PatientRecord) -> None:
    lorazepam = course(patient_record, "MedicationRequest/mr-lorazepam-prn")
    assert (lorazepam.is_prn, lorazepam.daily_dose_mg) == (True, None)
    (melatonin,) = patient_record.other_medications
    assert melatonin.resource_type == "MedicationStatement"
    assert melatonin.day == date(2024, 1, 1)  # year-only effectiveDateTime


def test_intolerance_evidence(patient_record: PatientRecord) -> None:
    found = {
        (e.ref, e.origin, e.kind, tuple(i.name for i in e.ingredients), e.when)
        for e in patient_record.intolerances
    }
    assert found == {
        ("AllergyIntolerance/ai-paroxetine", "AllergyIntolerance", "intolerance",
         ("paroxetine",), date(2023, 11, 5)),
        ("AllergyIntolerance/ai-lamotrigine", "AllergyIntolerance", "allergy",
         ("lamotrigine",), date(2024, 9, 1)),
        # typed "allergy" with only a headache: kept as typed; repeated-intolerance still
        # reads it as intolerance evidence (reads_as_intolerance)
        ("AllergyIntolerance/ai-duloxetine", "AllergyIntolerance", "allergy",
         ("duloxetine",), date(2024, 12, 2)),
        ("AllergyIntolerance/ai-penicillin", "AllergyIntolerance", "allergy", (), date(2009, 1, 1)),
        ("MedicationStatement/ms-fluoxetine", "MedicationStatement", "intolerance",
         ("fluoxetine",), date(2024, 4, 15)),
        ("MedicationRequest/mr-sertraline-50", "MedicationRequest", "intolerance",
         ("sertraline",), date(2025, 1, 24)),
        # no end date: dated by the last date the order gives
        ("MedicationRequest/mr-escitalopram-10", "MedicationRequest", "intolerance",
         ("escitalopram",), date(2025, 2, 3)),
    }  # fmt: skip
    paroxetine = next(e for e in patient_record.intolerances if e.ref.endswith("ai-paroxetine"))
    assert paroxetine.manifestations == ("Nausea", "Dizziness")


def test_visits(patient_record: PatientRecord) -> None:
    assert [(v.ref, v.class_code, v.status) for v in patient_record.visits] == [
        ("Encounter/enc-1", "AMB", "finished"),
        ("Encounter/enc-2", "VR", "finished"),
        ("Encounter/enc-3", "AMB", "finished"),
        ("Encounter/enc-4", "AMB", "finished"),
        ("Encounter/enc-5", "IMP", "finished"),
        ("Encounter/enc-6", "AMB", "planned"),
    ]
    assert sum(v.is_completed_outpatient for v in patient_record.visits) == 4
    first = patient_record.visits[0]
    assert (first.start, first.type_codes[0].code) == (date(2025, 1, 10), "90792")


def test_dispenses(patient_record: PatientRecord) -> None:
    assert [
        (d.ref, d.handed_over, d.days_supply, d.quantity) for d in patient_record.dispenses
    ] == [
        ("MedicationDispense/md-venlafaxine-1", date(2025, 5, 2), 30.0, 60.0),
        # no daysSupply: 60 capsules at the authorizing order's 2 a day
        ("MedicationDispense/md-venlafaxine-2", date(2025, 6, 10), 30.0, 60.0),
        # only whenPrepared
        ("MedicationDispense/md-quetiapine-1", date(2025, 6, 21), 30.0, 30.0),
    ]
    assert patient_record.dispenses[0].authorizing_prescription == (
        "MedicationRequest/mr-venlafaxine-150"
    )


def test_scores(patient_record: PatientRecord) -> None:
    assert [(s.instrument, s.value, s.when) for s in patient_record.scores] == [
        ("PHQ-9", 19.0, date(2025, 1, 10)),  # valueInteger
        ("PHQ-9", 17.0, date(2025, 3, 15)),  # valueQuantity
        ("PHQ-9", 16.0, date(2025, 6, 20)),  # component of the panel
        ("GAD-7", 12.0, date(2025, 6, 20)),
    ]


def test_conditions(patient_record: PatientRecord) -> None:
    (condition,) = patient_record.conditions
    assert (condition.codes[0].code, condition.clinical_status) == ("F33.1", "active")
    assert (condition.display, condition.onset) == ("Recurrent major depression", date(2019, 5, 1))


def test_same_resources_twice_are_counted_once(
    table: IngredientTable, codes: CodeLists, load_fixture: Callable[[str], Any]
) -> None:
    bundle = load_fixture("patient-bundle.json")
    entries = [e["resource"] for e in bundle["entry"]]
    twice = map_record([bundle, *entries], table, codes=codes)
    assert twice == map_record([bundle], table, codes=codes)


def test_prefetch_values_with_gaps(
    table: IngredientTable, codes: CodeLists, load_fixture: Callable[[str], Any]
) -> None:
    bundle = load_fixture("patient-bundle.json")
    failed = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    empty = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    record = map_record([None, failed, empty, bundle], table, codes=codes)
    assert record.issues == ()
    assert len(record.courses) == 8 and len(record.other_medications) == 1


def request_with(reference: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest", "id": "rx-ext", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/p1"}, "authoredOn": "2025-05-05",
        "medicationReference": {"reference": reference, "display": "Seroquel 100 mg tablet"},
    }  # fmt: skip


def test_external_medication_supplied_separately(table: IngredientTable, codes: CodeLists) -> None:
    medication = {
        "resourceType": "Medication", "id": "m9",
        "code": {"text": "Quetiapine 100 mg tablet"},
        "ingredient": [{
            "itemCodeableConcept": {"coding": [{"system": RXNORM, "code": "51272"}]},
            "strength": {"numerator": {"value": 100, "unit": "mg", "code": "mg"},
                         "denominator": {"value": 1, "unit": "TAB", "code": "TAB"}},
        }],
    }  # fmt: skip
    request = request_with("https://ehr.example.org/fhir/Medication/m9")
    request["dosageInstruction"] = [{
        "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "TAB", "code": "{tbl}"}}],
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
    }]  # fmt: skip
    assert unresolved_medication_refs([request]) == {"Medication/m9"}
    record = map_record([request], table, medications={"Medication/m9": medication}, codes=codes)
    (mapped,) = record.courses
    assert [i.name for i in mapped.ingredients] == ["quetiapine"]
    assert mapped.display == "Quetiapine 100 mg tablet"
    assert mapped.daily_dose_mg == 200.0  # strength from Medication.ingredient.strength
    assert record.issues == ()


def test_unavailable_medication_is_reported_and_display_still_used(
    table: IngredientTable, codes: CodeLists
) -> None:
    record = map_record([request_with("Medication/gone")], table, codes=codes)
    (mapped,) = record.courses
    assert [i.name for i in mapped.ingredients] == ["quetiapine"]  # from the reference display
    assert [(i.field, i.reason) for i in record.issues] == [
        ("medicationReference", "medication not available")
    ]


def test_unresolved_refs_skip_contained_and_included(
    load_fixture: Callable[[str], Any],
) -> None:
    bundle = load_fixture("patient-bundle.json")
    assert unresolved_medication_refs([bundle]) == set()
    dispense = {
        "resourceType": "MedicationDispense", "id": "d1", "status": "completed",
        "medicationReference": {"reference": "Medication/m2/_history/4"},
    }  # fmt: skip
    assert unresolved_medication_refs([bundle, dispense, "<html/>", None]) == {"Medication/m2"}


def test_combination_medication_from_ingredients(table: IngredientTable, codes: CodeLists) -> None:
    combo = {
        "resourceType": "Medication", "id": "combo",
        "ingredient": [
            {"itemCodeableConcept": {"coding": [{"system": RXNORM, "code": "61381"}]}},
            {"itemCodeableConcept": {"text": "fluoxetine"}},
        ],
    }  # fmt: skip
    request = request_with("#combo") | {"contained": [combo]}
    (mapped,) = map_record([request], table, codes=codes).courses
    assert sorted(i.name for i in mapped.ingredients) == ["fluoxetine", "olanzapine"]


@pytest.mark.parametrize(
    ("statement", "status", "kind"),
    [
        ({"status": "not-taken", "statusReason": [{"coding": [{"code": "sintol"}]}]},
         "not-taken", "intolerance"),
        # STU3: taken "n" with reasonNotTaken
        ({"status": "active", "taken": "n", "reasonNotTaken": [{"text": "Allergic reaction"}]},
         "not-taken", "allergy"),
        ({"status": "stopped", "statusReason": [{"text": "Did not help"}]}, "stopped", None),
        ({"status": "active"}, "active", None),
    ],
)  # fmt: skip
def test_statement_not_taken(
    table: IngredientTable,
    codes: CodeLists,
    statement: dict[str, Any],
    status: str,
    kind: str | None,
) -> None:
    resource = {
        "resourceType": "MedicationStatement", "id": "s1", "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": {"text": "mirtazapine 15 MG Oral Tablet"},
        "effectiveDateTime": "2025-02-01", **statement,
    }  # fmt: skip
    record = map_record([resource], table, codes=codes)
    assert record.courses[0].status == status
    assert [e.kind for e in record.intolerances] == ([kind] if kind else [])


def _observation(oid: str, loinc: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "id": oid, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2025-06-20T10:00:00Z",
        **value,
    }


def test_vitals_and_labs_are_left_out_and_scores_kept(
    table: IngredientTable, codes: CodeLists
) -> None:
    """Most Observations of a chart are vitals and labs: they are passed over (no score, no
    issue), while a total, a panel carrying one, and a total written with a padded code are
    read."""
    resources = [
        _observation("bp", "8480-6", valueQuantity={"value": 128, "unit": "mm[Hg]"}),
        _observation("a1c", "4548-4", valueQuantity={"value": 6.1, "unit": "%"}),
        _observation("no-code", ""),
        _observation("phq", " 44261-6 ", valueInteger=14),
        _observation(
            "panel", "44249-1",
            component=[{"code": {"coding": [{"code": "44261-6"}]}, "valueInteger": 12}],
        ),
    ]
    record = map_record(resources, table, codes=codes, patient_id="p1")
    assert [(s.ref, s.value) for s in record.scores] == [
        ("Observation/phq", 14.0), ("Observation/panel", 12.0),
    ]
    assert record.issues == ()


@pytest.mark.parametrize(
    ("start", "end", "kept"),
    [
        ("2026-11-20", "2023-01-05", True),  # end written years before a recent start: a slip
        ("2023-01-01", "2023-01-05", False),  # wholly before the horizon: set aside
        ("2026-11-20", "2026-11-20", True),
    ],
)
def test_a_visit_whose_end_precedes_a_recent_start_is_not_set_aside_as_old(
    table: IngredientTable, codes: CodeLists, start: str, end: str, kept: bool
) -> None:
    encounter = {
        "resourceType": "Encounter", "id": "e1", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/p1"}, "period": {"start": start, "end": end},
    }
    record = map_record(
        [encounter], table, codes=codes, patient_id="p1", horizon=date(2025, 1, 1),
        visit_horizon=date(2026, 6, 1),
    )
    assert [v.ref for v in record.visits] == (["Encounter/e1"] if kept else [])


@pytest.mark.parametrize(
    ("order_url", "fill_points_at"),
    [
        # The spec's fullUrls: absolute, or a urn:uuid naming neither the type nor the id.
        (
            "https://ehr.example/fhir/MedicationRequest/A17",
            "https://ehr.example/fhir/MedicationRequest/A17",
        ),
        ("urn:uuid:6f1c2d4e-order", "urn:uuid:6f1c2d4e-order"),
        # Off-spec but seen: a relative fullUrl that is not the resource's own Type/id.
        ("MedicationRequest/pending-17", "MedicationRequest/pending-17"),
    ],
)
def test_a_fill_pointing_at_its_order_by_the_entry_full_url_is_linked_to_it(
    table: IngredientTable, codes: CodeLists, order_url: str, fill_points_at: str
) -> None:
    order = {
        "resourceType": "MedicationRequest", "id": "mr-1", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/p1"}, "authoredOn": "2025-05-01",
        "medicationCodeableConcept": {"coding": [
            {"system": RXNORM, "code": "312938", "display": "sertraline 100 MG Oral Tablet"}]},
        "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1,
                                                     "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": 100, "unit": "mg"}}]}],
    }
    fill = {
        "resourceType": "MedicationDispense", "id": "md-1", "status": "completed",
        "subject": {"reference": "Patient/p1"}, "whenHandedOver": "2025-05-02",
        "medicationCodeableConcept": order["medicationCodeableConcept"],
        "authorizingPrescription": [{"reference": fill_points_at}], "daysSupply": {"value": 30},
    }
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"fullUrl": order_url, "resource": order},
        {"fullUrl": "https://ehr.example/fhir/MedicationDispense/md-1", "resource": fill},
    ]}
    record = map_record([bundle], table, codes=codes, patient_id="p1")
    assert [d.authorizing_prescription for d in record.dispenses] == ["MedicationRequest/mr-1"]
