"""Resources whose shape is off in ways real exports are: the same order in two versions, a
boolean sent as a string, a contained Medication referenced without its "#" (or with "#" in its
id), an empty concept next to a reference, an absurd duration. Each is read as what it says, and
never dropped whole for a slip."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappers import CodeLists, IngredientTable
from fhir_mappers.mapper import map_record
from tests.realworld.builders import RXNORM, daily, day, order, searchset

PID = "rw-shapes"


def _versioned(status: str, **meta: str) -> dict[str, Any]:
    return order("mr-1", PID, "risperidone2", authored=day(200), status=status,
                 meta=meta, dosage=[daily(2)])


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"lastUpdated": "2026-06-01T10:00:00Z"}, {"lastUpdated": "2026-11-20T10:00:00+01:00"}),
        ({"versionId": "1"}, {"versionId": "3"}),
    ],
    ids=["lastUpdated", "versionId"],
)
@pytest.mark.parametrize("newer_first", [False, True])
def test_of_two_versions_of_one_order_the_later_is_read(
    table: IngredientTable, codes: CodeLists, first: dict[str, str], second: dict[str, str],
    newer_first: bool,
) -> None:
    old, new = _versioned("active", **first), _versioned("stopped", **second)
    pair = [searchset([new]), searchset([old])] if newer_first else [
        searchset([old]), searchset([new])
    ]

    record = map_record(pair, table, codes=codes, patient_id=PID)

    assert [c.status for c in record.courses] == ["stopped"]


def test_versions_that_cannot_be_told_apart_keep_the_first(
    table: IngredientTable, codes: CodeLists
) -> None:
    first = _versioned("active", versionId="a")
    second = _versioned("stopped", lastUpdated="2026-11-20T10:00:00Z")
    record = map_record([searchset([first]), searchset([second])], table, codes=codes)
    assert [c.status for c in record.courses] == ["active"]


@pytest.mark.parametrize(("value", "prn"), [("true", True), (" TRUE ", True), ("false", False),
                                            ("yes", False), (True, True)])
def test_as_needed_sent_as_a_string(
    table: IngredientTable, codes: CodeLists, value: Any, prn: bool
) -> None:
    resource = order("mr-1", PID, "quetiapine25", authored=day(20),
                     dosage=[daily(25, asNeededBoolean=value)])
    (course,) = map_record([resource], table, codes=codes).courses
    assert course.is_prn is prn


def _contained_order(reference: str, contained_id: str) -> dict[str, Any]:
    code, display = "312744", "quetiapine 25 MG Oral Tablet"
    resource = order("mr-1", PID, "quetiapine25", authored=day(20))
    del resource["medicationCodeableConcept"]
    resource["medicationReference"] = {"reference": reference}
    resource["contained"] = [{
        "resourceType": "Medication", "id": contained_id,
        "code": {"coding": [{"system": RXNORM, "code": code, "display": display}]},
    }]
    return resource


@pytest.mark.parametrize(
    ("reference", "contained_id"),
    [("#med1", "med1"), ("med1", "med1"), ("#med1", "#med1")],
    ids=["r4", "reference-without-hash", "id-with-hash"],
)
def test_a_contained_medication_is_found_despite_a_slip(
    table: IngredientTable, codes: CodeLists, reference: str, contained_id: str
) -> None:
    record = map_record([_contained_order(reference, contained_id)], table, codes=codes)
    (course,) = record.courses
    assert [i.name for i in course.ingredients] == ["quetiapine"]
    assert record.issues == ()


def test_a_typed_reference_is_never_read_as_a_contained_one(
    table: IngredientTable, codes: CodeLists
) -> None:
    record = map_record([_contained_order("Medication/med1", "med1")], table, codes=codes)
    assert record.courses == ()  # Medication/med1 is not supplied: nothing is known
    assert [i.reason for i in record.issues] == ["medication not available"]


def test_an_empty_concept_next_to_a_reference_yields_to_it(
    table: IngredientTable, codes: CodeLists
) -> None:
    resource = _contained_order("#med1", "med1")
    resource["medicationCodeableConcept"] = {"coding": []}
    (course,) = map_record([resource], table, codes=codes).courses
    assert [i.name for i in course.ingredients] == ["quetiapine"]


@pytest.mark.parametrize("value", ["1e400", 1e300, 40_000])
def test_an_absurd_duration_leaves_the_end_unknown_and_keeps_the_order(
    table: IngredientTable, codes: CodeLists, value: Any
) -> None:
    line = daily(2, timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                       "boundsDuration": {"value": value, "code": "d"}}})
    resource = order("mr-1", PID, "risperidone2", authored=day(20), dosage=[line])
    record = map_record([resource], table, codes=codes)
    (course,) = record.courses
    assert course.end is None
    assert not any("could not be mapped" in i.reason for i in record.issues)


def test_a_long_but_real_duration_still_ends(table: IngredientTable, codes: CodeLists) -> None:
    line = daily(2, timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                       "boundsDuration": {"value": 365, "code": "d"}}})
    resource = order("mr-1", PID, "risperidone2", authored=day(20), dosage=[line])
    (course,) = map_record([resource], table, codes=codes).courses
    assert course.start is not None and course.end is not None
    assert (course.end - course.start).days == 364


