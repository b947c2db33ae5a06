"""AllergyIntolerance -> IntoleranceEvent: allergy or intolerance, decided from the data."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_mappers import CodeLists, IngredientTable, map_record
from fhir_mappers.record import IntoleranceEvent

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
NAUSEA = {"coding": [{"system": SNOMED, "code": "422587007", "display": "Nausea"}]}
HEADACHE = {"coding": [{"system": SNOMED, "code": "25064002", "display": "Headache"}]}
ANAPHYLAXIS = {"coding": [{"system": SNOMED, "code": "39579001", "display": "Anaphylaxis"}]}
ANGIOEDEMA = {"coding": [{"system": SNOMED, "code": "41291007"}]}


def allergy(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": "Patient/p"},
        "code": {"coding": [{"system": RXNORM, "code": "35636", "display": "risperidone"}]},
        "recordedDate": "2025-04-01", **fields,
    }  # fmt: skip


def reactions(*manifestations: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"manifestation": list(manifestations)}]


def mapped(
    table: IngredientTable, codes: CodeLists, resource: dict[str, Any]
) -> list[IntoleranceEvent]:
    return list(map_record([resource], table, codes=codes).intolerances)


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        pytest.param({"type": "allergy", "reaction": reactions(ANAPHYLAXIS)}, "allergy",
                     id="immune-manifestation"),
        pytest.param({"type": "intolerance", "reaction": reactions(NAUSEA, ANGIOEDEMA)}, "allergy",
                     id="immune-wins-over-declared-type"),
        pytest.param({"reaction": reactions({"text": "hives"})}, "allergy", id="immune-words"),
        pytest.param({"type": "allergy"}, "allergy", id="allergy-without-manifestations"),
        # The chart's word is kept; whether a nocebo-shaped allergy entry still reads as
        # intolerance is the pattern's call (tests/patterns/test_intolerance_variants.py).
        pytest.param({"type": "allergy", "reaction": reactions(HEADACHE)}, "allergy",
                     id="allergy-typed-nocebo-profile-kept-as-typed"),
        pytest.param({"reaction": reactions(NAUSEA, HEADACHE)}, "intolerance",
                     id="no-type-non-immune"),
        pytest.param({"type": "intolerance"}, "intolerance", id="declared-intolerance"),
        pytest.param({}, "intolerance", id="nothing-said"),
    ],
)  # fmt: skip
def test_kind(table: IngredientTable, codes: CodeLists, fields: dict[str, Any], kind: str) -> None:
    (event,) = mapped(table, codes, allergy(**fields))
    assert event.kind == kind
    assert [i.name for i in event.ingredients] == ["risperidone"]


def test_legacy_category_code_with_substance_in_reaction(
    table: IngredientTable, codes: CodeLists
) -> None:
    # C-CDA converters put "Drug allergy" in `code`; the drug is in reaction.substance.
    resource = allergy(
        code={"coding": [{"system": SNOMED, "code": "416098002", "display": "Drug allergy"}]},
        reaction=[{"substance": {"text": "Haldol"}}],
    )
    (event,) = mapped(table, codes, resource)
    assert (event.kind, event.substance) == ("allergy", "Haldol")
    assert [i.name for i in event.ingredients] == ["haloperidol"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"onsetDateTime": "2024-02-10", "onsetPeriod": {"start": "2023-01-01"}},
            date(2024, 2, 10),
        ),
        ({"onsetPeriod": {"start": "2023-06"}}, date(2023, 6, 1)),
        ({}, date(2025, 4, 1)),  # recordedDate
        ({"recordedDate": None, "assertedDate": "2017-03-03"}, date(2017, 3, 3)),  # STU3
        ({"onsetString": "2010"}, date(2010, 1, 1)),  # a date-shaped onsetString
        # it recurred: the last occurrence, not the first onset, dates it
        ({"onsetDateTime": "2015-05-01", "lastOccurrence": "2025-02-01"}, date(2025, 2, 1)),
        # an onset that names no day here: undated, not dated by its recent recordedDate
        ({"onsetAge": {"value": 20, "unit": "a", "code": "a"}}, None),
        ({"onsetString": "childhood"}, None),
    ],
)
def test_when(
    table: IngredientTable, codes: CodeLists, fields: dict[str, Any], expected: date | None
) -> None:
    (event,) = mapped(table, codes, allergy(**fields))
    assert event.when == expected


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"verificationStatus": {"coding": [{"code": "refuted"}]}}, id="refuted"),
        pytest.param({"verificationStatus": {"coding": [{"code": "entered-in-error"}]}},
                     id="entered-in-error"),
        pytest.param({"verificationStatus": "refuted"}, id="stu3-refuted"),
        pytest.param({"category": ["food"], "code": {"text": "Peanut"}}, id="food"),
        pytest.param({"category": "environment", "code": {"text": "Grass pollen"}},
                     id="environment-as-single-value"),
        # Issue 12 kind 5: a resolved or inactive reaction no longer describes the patient.
        pytest.param({"clinicalStatus": {"coding": [{"code": "resolved"}]}}, id="resolved"),
        pytest.param({"clinicalStatus": {"coding": [{"code": "inactive"}]}}, id="inactive"),
        pytest.param({"clinicalStatus": "resolved"}, id="stu3-resolved"),
        pytest.param({"clinicalStatus": {"coding": [{"code": "Resolved"}]}}, id="resolved-caps"),
        # Epic: a local OID coding first, the HL7 code second; or only a text.
        pytest.param({"clinicalStatus": {"coding": [
            {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.4.698084.100", "code": "1"},
            {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
             "code": "resolved"}]}}, id="hl7-resolved-second"),
        pytest.param({"clinicalStatus": {"text": "Resolved"}}, id="text-only-resolved"),
    ],
)  # fmt: skip
def test_dropped(table: IngredientTable, codes: CodeLists, fields: dict[str, Any]) -> None:
    assert mapped(table, codes, allergy(**fields)) == []


@pytest.mark.parametrize("clinical", ["active", "recurrence", "relapse", None])
def test_kept_when_unconfirmed_and_active(
    table: IngredientTable, codes: CodeLists, clinical: str | None
) -> None:
    fields: dict[str, Any] = {
        "verificationStatus": {"coding": [{"code": "unconfirmed"}]},
        "category": ["medication"],
    }
    if clinical is not None:
        fields["clinicalStatus"] = {"coding": [{"code": clinical}]}
    assert len(mapped(table, codes, allergy(**fields))) == 1
