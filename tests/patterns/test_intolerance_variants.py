"""repeated-intolerance on AllergyIntolerance data shaped as EHRs send it (probe findings F1-F7).

Every case is two counted classes (sertraline nausea 300 days ago, venlafaxine headache 200 days
ago) plus a third record that decides whether the card fires: R4 JSON, mapped by ``map_record``
and read by ``detect`` with the default thresholds, as the service would.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns.repeated_intolerance import PATTERN_ID, detect
from cds_service.settings import load_settings
from fhir_mappers import map_record

NOW = date(2026, 6, 15)
TABLE = load_ingredient_table()
CODES = load_code_lists()
DEFAULTS = load_settings().patterns[PATTERN_ID].thresholds
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
EPIC_STATUS = "urn:oid:1.2.840.114350.1.13.0.1.7.4.698084.100"
STOP_REASON = "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason"
PRODUCTS = {
    "sertraline": ("312941", "sertraline 50 MG Oral Tablet"),
    "venlafaxine": ("313585", "24 HR venlafaxine 75 MG Extended Release Oral Capsule"),
    "quetiapine": ("312743", "quetiapine 100 MG Oral Tablet"),
    "symbyax": ("403969", "fluoxetine 25 MG / olanzapine 6 MG Oral Capsule"),
}


def day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def product(name: str) -> dict[str, Any]:
    code, display = PRODUCTS[name]
    return {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": display}


def allergy(
    rid: str, drug: str, days_ago: int, manifestation: str = "Dizziness", **fields: Any
) -> Any:
    """An Epic/Cerner-shaped R4 AllergyIntolerance with one ``manifestation`` (its text);
    ``fields`` replace or add elements (``reaction`` replaces the whole reaction)."""
    resource = {
        "resourceType": "AllergyIntolerance", "id": rid,
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "type": "intolerance", "category": ["medication"], "criticality": "low",
        "code": product(drug), "patient": {"reference": "Patient/p1"},
        "recordedDate": day(days_ago),
        "reaction": [{"manifestation": [{"text": manifestation}], "severity": "mild"}],
    }  # fmt: skip
    resource.update(fields)
    return resource


def stopped_order(drug: str, days_ago: int, reason: dict[str, Any]) -> dict[str, Any]:
    """A MedicationRequest stopped with ``reason`` (its statusReason)."""
    start = day(days_ago + 30)
    return {
        "resourceType": "MedicationRequest", "id": f"mr-{drug}", "status": "stopped",
        "intent": "order", "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": product(drug), "authoredOn": start, "statusReason": reason,
        "dosageInstruction": [{
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                  "boundsPeriod": {"start": start, "end": day(days_ago)}}},
            "doseAndRate": [{"doseQuantity": {"value": 100, "unit": "mg"}}],
        }],
    }  # fmt: skip


SINTOL = {"coding": [{"system": STOP_REASON, "code": "sintol", "display": "Suspected intolerance"}]}


def fires(*third: dict[str, Any]) -> bool:
    """Whether the card fires for the two-class base plus ``third``."""
    resources = [
        {"resourceType": "Patient", "id": "p1", "birthDate": "1984-03-02"},
        allergy("a1", "sertraline", 300, "Nausea"),
        allergy("a2", "venlafaxine", 200, "Headache"),
        *third,
    ]
    record = map_record(resources, TABLE, codes=CODES, patient_id="p1")
    return detect(record, (), DEFAULTS, NOW) is not None


def test_the_base_alone_is_two_classes_and_a_third_nocebo_record_fires() -> None:
    assert not fires()
    assert fires(allergy("a3", "quetiapine", 100))


# F3: the status is read from every coding (the HL7 one decides) and from the text.
@pytest.mark.parametrize(
    ("status", "counts"),
    [
        pytest.param({"clinicalStatus": {"coding": [
            {"system": EPIC_STATUS, "code": "1", "display": "Active"},
            {"system": CLINICAL, "code": "active"}]}}, True, id="epic-active"),
        pytest.param({"clinicalStatus": {"coding": [
            {"system": EPIC_STATUS, "code": "3", "display": "Resolved"},
            {"system": CLINICAL, "code": "active"}]}}, True, id="hl7-code-wins-over-local"),
        pytest.param({"clinicalStatus": {"coding": [
            {"system": EPIC_STATUS, "code": "1", "display": "Active"},
            {"system": CLINICAL, "code": "resolved"}]}, "text": "Resolved"}, False,
            id="hl7-resolved-second"),
        pytest.param({"verificationStatus": {"coding": [
            {"system": EPIC_STATUS, "code": "2", "display": "Confirmed"},
            {"system": VERIFICATION, "code": "entered-in-error"}]}}, False,
            id="hl7-entered-in-error-second"),
        pytest.param({"clinicalStatus": {"text": "Resolved"}}, False, id="text-only-resolved"),
        pytest.param({"verificationStatus": {"text": "Entered in Error"}}, False,
                     id="text-only-entered-in-error"),
        pytest.param({"clinicalStatus": {"coding": [
            {"system": EPIC_STATUS, "code": "3", "display": "Inactive"}]}}, False,
            id="local-coding-display-only"),
    ],
)  # fmt: skip
def test_status_is_read_from_every_coding_and_the_text(
    status: dict[str, Any], counts: bool
) -> None:
    assert fires(allergy("a3", "quetiapine", 100, **status)) is counts


# F5: serious or immune reactions in the words charts use, in the reaction or the stop reason.
@pytest.mark.parametrize(
    "reaction",
    ["DRESS", "Elevated liver enzymes", "Transaminitis", "Angio-oedema", "Lip swelling",
     "Tongue swelling", "Throat swelling", "Low white blood cell count", "Hyponatraemia",
     "Long QT", "Bronchospasm", "Wheezing"],
)  # fmt: skip
def test_serious_reactions_in_plain_or_british_words_never_count(reaction: str) -> None:
    assert not fires(allergy("a3", "quetiapine", 100, reaction))


def test_a_stop_for_dress_never_counts_even_with_the_intolerance_code() -> None:
    reason = {**SINTOL, "text": "DRESS"}
    assert not fires(stopped_order("quetiapine", 100, reason))
    assert fires(stopped_order("quetiapine", 100, SINTOL))


@pytest.mark.parametrize("reaction", ["Dry lips", "Low mood", "Dressed poorly, tired"])
def test_words_near_the_serious_ones_still_count(reaction: str) -> None:
    """Whole words only: "lip" without swelling, "low" without a blood count, "dressed"."""
    assert fires(allergy("a3", "quetiapine", 100, reaction))


# F1: a serious record of a drug bars its other records, such as the order stopped for it.
@pytest.mark.parametrize(
    "serious",
    [
        pytest.param({"type": "allergy", "criticality": "high", "reaction": [
            {"manifestation": [{"text": "Anaphylaxis"}], "severity": "severe"}]},
            id="anaphylaxis"),
        pytest.param({"reaction": [{"manifestation": [{"coding": [
            {"system": SNOMED, "code": "73442001", "display": "Stevens-Johnson syndrome"}]}]}]},
            id="sjs-coded"),
        pytest.param({"criticality": "high"}, id="high-criticality"),
    ],
)  # fmt: skip
@pytest.mark.parametrize(
    "reason",
    [
        pytest.param(SINTOL, id="sintol"),
        pytest.param({"text": "Adverse reaction"}, id="adverse-reaction-text"),
        pytest.param({"text": "side effects"}, id="side-effects-text"),
    ],
)
def test_an_order_stopped_for_a_serious_reaction_does_not_count_on_its_own(
    serious: dict[str, Any], reason: dict[str, Any]
) -> None:
    entry = allergy("a3", "quetiapine", 100, **serious)
    assert not fires(entry, stopped_order("quetiapine", 90, reason))


def test_an_old_serious_reaction_still_bars_a_recent_stop_of_the_same_drug() -> None:
    anaphylaxis = allergy("a3", "quetiapine", 2000, "Anaphylaxis", criticality="high")
    assert not fires(anaphylaxis, stopped_order("quetiapine", 90, SINTOL))


def test_a_mild_entry_and_a_stop_of_the_same_drug_still_count_once() -> None:
    assert fires(allergy("a3", "quetiapine", 100), stopped_order("quetiapine", 90, SINTOL))


# F6: an entry the clinician typed "allergy" stays one when its reaction looks immune.
@pytest.mark.parametrize("reaction", ["Swelling", "Itching", "Rash", "Shortness of breath"])
def test_an_allergy_typed_entry_with_an_immune_looking_reaction_does_not_count(
    reaction: str,
) -> None:
    assert not fires(allergy("a3", "quetiapine", 100, reaction, type="allergy"))


def test_an_allergy_typed_entry_with_a_rash_in_its_description_does_not_count() -> None:
    reaction = [{"manifestation": [{"text": "Nausea"}], "description": "itchy rash on both arms"}]
    assert not fires(allergy("a3", "quetiapine", 100, type="allergy", reaction=reaction))


@pytest.mark.parametrize("reaction", ["Nausea", "Headache"])
def test_an_allergy_typed_entry_with_a_nocebo_shaped_reaction_still_counts(reaction: str) -> None:
    assert fires(allergy("a3", "quetiapine", 100, reaction, type="allergy"))


def test_an_allergy_typed_entry_naming_no_reaction_does_not_count() -> None:
    entry = allergy("a3", "quetiapine", 100, type="allergy")
    del entry["reaction"]
    assert not fires(entry)


def test_an_intolerance_typed_rash_is_still_read_as_intolerance() -> None:
    """Only the clinician's "allergy" makes a rash an allergy; the immune list is unchanged."""
    assert fires(allergy("a3", "quetiapine", 100, "Rash"))


# F4: the reaction is dated by its onset in any form and its last occurrence, not by when it was
# typed into the chart.
@pytest.mark.parametrize(
    ("onset", "counts"),
    [
        pytest.param({"onsetAge": {"value": 20, "unit": "a", "system": "http://unitsofmeasure.org",
                                   "code": "a"}}, False, id="onset-age-20"),
        pytest.param({"onsetString": "2010"}, False, id="onset-string-year"),
        pytest.param({"onsetString": "childhood"}, False, id="onset-string-words"),
        pytest.param({"onsetRange": {"low": {"value": 18, "unit": "a"}}}, False,
                     id="onset-range"),
        pytest.param({"onsetDateTime": "2015-05-01", "lastOccurrence": day(60)}, True,
                     id="recurred-within-window"),
        pytest.param({"onsetDateTime": "2015-05-01", "lastOccurrence": "2016-02-01"}, False,
                     id="last-occurred-long-ago"),
        pytest.param({"onsetString": day(120)}, True, id="onset-string-a-recent-date"),
    ],
)  # fmt: skip
def test_the_reaction_is_dated_by_its_onset_and_last_occurrence(
    onset: dict[str, Any], counts: bool
) -> None:
    assert fires(allergy("a3", "quetiapine", 100, **onset)) is counts


# F7: one reaction to one product counts at most one class.
@pytest.mark.parametrize(
    "combination",
    [
        pytest.param(product("symbyax"), id="rxnorm-product"),
        pytest.param({"text": "Symbyax"}, id="brand-text-only"),
    ],
)
def test_a_combination_product_with_one_other_class_is_two_classes_not_three(
    combination: dict[str, Any],
) -> None:
    resources = [
        {"resourceType": "Patient", "id": "p1", "birthDate": "1984-03-02"},
        allergy("a2", "venlafaxine", 200, "Headache"),
        allergy("a3", "symbyax", 100, code=combination),
    ]
    record = map_record(resources, TABLE, codes=CODES, patient_id="p1")
    assert detect(record, (), DEFAULTS, NOW) is None


def test_a_combination_adds_the_one_class_no_other_reaction_gives() -> None:
    """Sertraline (SSRI) and venlafaxine count two; olanzapine/fluoxetine adds the SGA."""
    assert fires(allergy("a3", "symbyax", 100))


def test_the_same_combination_recorded_twice_is_still_one_reaction() -> None:
    resources = [
        {"resourceType": "Patient", "id": "p1", "birthDate": "1984-03-02"},
        allergy("a2", "venlafaxine", 200, "Headache"),
        allergy("a3", "symbyax", 100),
        stopped_order("symbyax", 95, SINTOL),
    ]
    record = map_record(resources, TABLE, codes=CODES, patient_id="p1")
    assert detect(record, (), DEFAULTS, NOW) is None
