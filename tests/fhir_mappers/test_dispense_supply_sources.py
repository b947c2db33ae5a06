"""Where a fill's days' supply and day come from, and when they cannot be known.

A supply is derived only from data about the same thing: a quantity counted in the unit the dose
is counted in (tablets for a tablet or mg dose, mL for a dose in mL; "1 bottle" is not a number
of doses), and an authorizing order of the same psychotropic ingredient (a pharmacy system's
link to a lisinopril order does not size a sertraline fill). A fill dated by month only keeps the
last day that month names, so that nonadherence can tell it cannot place it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_mappers import CodeLists, IngredientTable, map_record
from fhir_mappers.record import Dispense
from tests.realworld.builders import daily, day, dispense, order

PID = "p-supply"
ORDERABLE_FORM = "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"
LIQUID = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "861064",
                      "display": "sertraline 20 MG/ML Oral Solution"}],
          "text": "sertraline 20 MG/ML Oral Solution"}


def fill(**extra: Any) -> dict[str, Any]:
    resource = dispense("md-1", PID, "sertraline50", day(10, "T15:00:00Z"), days=None,
                        authorizingPrescription=[{"reference": "MedicationRequest/mr-1"}])
    resource.update(extra)
    return resource


def mapped(
    resources: list[dict[str, Any]], table: IngredientTable, codes: CodeLists
) -> Dispense:
    (only,) = map_record(resources, table, codes=codes).dispenses
    return only


def sertraline_order(**extra: Any) -> dict[str, Any]:
    dosage = extra.pop("dosage", [daily(50)])
    return order("mr-1", PID, "sertraline50", authored=day(40, "T10:00:00Z"), dosage=dosage,
                 **extra)


@pytest.mark.parametrize(
    ("quantity", "days"),
    [
        pytest.param({"value": 30, "unit": "Tablet"}, 30.0, id="tablets-by-word"),
        pytest.param({"value": 30, "unit": "tablet", "system": ORDERABLE_FORM, "code": "TAB"},
                     30.0, id="tablets-by-orderable-form-code"),
        pytest.param({"value": 30}, 30.0, id="a-bare-count"),
        pytest.param({"value": 1, "unit": "bottle", "system": ORDERABLE_FORM, "code": "BOT"},
                     None, id="one-bottle"),
        pytest.param({"value": 30, "unit": "tablet", "code": "BOT"}, None,
                     id="code-and-word-disagree"),
        pytest.param({"value": 2, "unit": "pack"}, None, id="packs"),
        pytest.param({"value": 60, "unit": "mL", "system": "http://unitsofmeasure.org",
                      "code": "mL"}, None, id="millilitres-of-a-tablet"),
    ],
)
def test_only_a_quantity_in_the_dose_unit_is_divided(
    quantity: dict[str, Any], days: float | None, table: IngredientTable, codes: CodeLists
) -> None:
    assert mapped([sertraline_order(), fill(quantity=quantity)], table, codes).days_supply == days


@pytest.mark.parametrize(
    ("quantity", "days"),
    [
        # 2.5 mL (50 mg of 20 mg/mL) a day: 60 mL last 24 days.
        pytest.param({"value": 60, "unit": "mL", "system": "http://unitsofmeasure.org",
                      "code": "mL"}, 24.0, id="millilitres"),
        pytest.param({"value": 1, "unit": "bottle"}, None, id="one-bottle"),
    ],
)
def test_a_liquid_is_counted_in_millilitres(
    quantity: dict[str, Any], days: float | None, table: IngredientTable, codes: CodeLists
) -> None:
    liquid_order = sertraline_order(dosage=[daily(2.5, "mL")], medicationCodeableConcept=LIQUID)
    liquid_fill = fill(quantity=quantity, medicationCodeableConcept=LIQUID)
    assert mapped([liquid_order, liquid_fill], table, codes).days_supply == days


@pytest.mark.parametrize(
    ("product", "days"),
    [pytest.param("lisinopril10", None, id="another-drugs-order"),
     pytest.param("sertraline100", 30.0, id="another-product-of-the-same-ingredient")],
)
def test_the_authorizing_order_must_share_the_fills_ingredient(
    product: str, days: float | None, table: IngredientTable, codes: CodeLists
) -> None:
    # 30 tablets of 50 mg; the order says 50 mg a day (of the fill's tablets: one a day).
    linked = order("mr-1", PID, product, authored=day(40, "T10:00:00Z"), dosage=[daily(50)])
    assert mapped([linked, fill()], table, codes).days_supply == days


@pytest.mark.parametrize(("product", "days"), [("lisinopril10", None), ("sertraline50", 28.0)])
def test_an_expected_supply_duration_is_read_from_an_order_of_the_same_ingredient(
    product: str, days: float | None, table: IngredientTable, codes: CodeLists
) -> None:
    linked = order("mr-1", PID, product, authored=day(40, "T10:00:00Z"),
                   dosage=[{"text": "as directed"}],
                   dispenseRequest={"expectedSupplyDuration": {"value": 28, "unit": "days",
                                                               "system": "http://unitsofmeasure.org",
                                                               "code": "d"}})
    assert mapped([linked, fill()], table, codes).days_supply == days


def test_the_authorizing_orders_problems_are_reported_once(
    table: IngredientTable, codes: CodeLists
) -> None:
    linked = sertraline_order()
    linked["medicationCodeableConcept"] = "sertraline 50 MG Oral Tablet"  # a string, not a concept
    record = map_record([linked, fill()], table, codes=codes)
    assert [i.reason for i in record.issues if i.ref == "MedicationRequest/mr-1"] == [
        "text instead of a concept"
    ]
    assert record.dispenses[0].days_supply == 30.0


@pytest.mark.parametrize(
    ("field", "value", "first", "latest"),
    [
        pytest.param("whenHandedOver", "2026-09", date(2026, 9, 1), date(2026, 9, 30),
                     id="month"),
        pytest.param("whenHandedOver", "2025", date(2025, 1, 1), date(2025, 12, 31), id="year"),
        pytest.param("whenHandedOver", "2026-09-14T10:00:00-05:00", date(2026, 9, 14), None,
                     id="full-date"),
        pytest.param("whenPrepared", "2026-02", date(2026, 2, 1), date(2026, 2, 28),
                     id="prepared-month"),
    ],
)
def test_a_date_named_by_month_or_year_keeps_its_last_day(
    field: str, value: str, first: date, latest: date | None,
    table: IngredientTable, codes: CodeLists,
) -> None:
    resource = fill(daysSupply={"value": 30, "unit": "d"})
    del resource["whenHandedOver"]
    resource[field] = value
    mapped_fill = mapped([resource], table, codes)
    assert (mapped_fill.handed_over, mapped_fill.handed_over_latest) == (first, latest)

