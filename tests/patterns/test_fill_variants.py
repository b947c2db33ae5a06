"""Fills and stays as EHRs really send them, through the mapper into nonadherence (PQA PDC).

Each case is realistic R4 JSON (``tests.realworld.builders``: searchset-shaped resources, RxNorm
SCD codings, dated relative to 2026-11-30), mapped by ``map_record`` and evaluated by
``nonadherence.detect`` with the thresholds of config/default.yaml. Three kinds, from a probe of
real-world shapes:

- a completed fill with no date is missing data: the PDC is not evaluable (never a low PDC);
- an inpatient stay that has ended leaves the period whether it says R4 ``finished`` or R5
  ``completed``;
- ``daysSupply`` in the spellings pharmacy systems use ("Day(s)", "DAYS SUPPLY", ``{days}``, a
  bare number) is read as days; months are not a count of days.
"""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns.abstention import NotEvaluable
from cds_service.patterns.base import Finding
from cds_service.patterns.nonadherence import PATTERN_ID, detect
from fhir_mappers import map_record
from fhir_mappers.record import PatientRecord
from tests.realworld.builders import ACT_CODE, daily, day, dispense, encounter, order
from tests.realworld.conftest import CASES_NOW

from .builders import defaults

NOW = CASES_NOW.date()
DEFAULTS = defaults(PATTERN_ID)
TABLE = load_ingredient_table()
CODES = load_code_lists()
PID = "p-fills"
MONTHLY = (170, 140, 110, 80, 50, 20)  # six 30-day fills: every day covered
GAP = (170, 140)  # two 30-day fills, then six months without: PDC 60/171
UCUM = "http://unitsofmeasure.org"


def sertraline_order() -> dict[str, Any]:
    return order("mr-1", PID, "sertraline100", authored=day(175, "T10:00:00Z"),
                 dosage=[daily(1, "{tbl}")])


def fills(days_ago: tuple[int, ...], **extra: Any) -> list[dict[str, Any]]:
    """30 tablets each; ``daysSupply`` 30 d in UCUM unless ``extra`` spells it otherwise."""
    days = None if "daysSupply" in extra else 30
    return [
        dispense(f"md-{n}", PID, "sertraline100", day(ago, "T14:00:00Z"), days=days, **extra)
        for n, ago in enumerate(days_ago)
    ]


def mapped(resources: list[dict[str, Any]]) -> PatientRecord:
    return map_record(resources, TABLE, codes=CODES)


def evaluate(resources: list[dict[str, Any]]) -> Finding | NotEvaluable | None:
    return detect(mapped(resources), (), DEFAULTS, NOW)


def issues(record: PatientRecord, field: str) -> list[tuple[str, str]]:
    return [(i.ref, i.reason) for i in record.issues if i.field == field]


# A. Completed fills without a date ---------------------------------------------------------
def undated(resources: list[dict[str, Any]], ids: set[str]) -> list[dict[str, Any]]:
    for r in resources:
        if r["id"] in ids:
            del r["whenHandedOver"]
    return resources


def test_completed_fills_without_a_date_make_the_pdc_not_evaluable() -> None:
    # Six monthly fills, four of them completed but sent without whenHandedOver or whenPrepared:
    # the days they cover are unknown, not uncovered.
    resources = [sertraline_order(), *undated(fills(MONTHLY), {"md-2", "md-3", "md-4", "md-5"})]

    result = evaluate(resources)

    assert isinstance(result, NotEvaluable)
    assert "no date" in result.reason
    assert result.references == tuple(f"MedicationDispense/md-{n}" for n in (2, 3, 4, 5))


def test_the_mapper_reports_a_completed_fill_without_a_date() -> None:
    record = mapped([sertraline_order(), *undated(fills(MONTHLY), {"md-2"})])

    assert issues(record, "whenHandedOver") == [
        ("MedicationDispense/md-2", "completed fill without a date")
    ]


def test_an_undated_fill_that_was_never_handed_over_does_not_stop_the_pdc() -> None:
    # Near miss: the undated fills are still being prepared; they supplied nothing, so the two
    # dated fills and the six months after them are the whole story.
    pending = undated(fills(MONTHLY), {"md-2", "md-3", "md-4", "md-5"})
    for r in pending[2:]:
        r["status"] = "in-progress"

    result = evaluate([sertraline_order(), *pending])

    assert isinstance(result, Finding)
    assert result.facts["pdc"] == 0.35


def test_a_fill_dated_only_by_when_prepared_is_placed_and_counted() -> None:
    resources = fills(MONTHLY)
    for r in resources:
        r["whenPrepared"] = r.pop("whenHandedOver")

    assert evaluate([sertraline_order(), *resources]) is None


# B. Inpatient stays that have ended --------------------------------------------------------
def stay(status: str, *, period_key: str = "period", code: str = "IMP") -> dict[str, Any]:
    """A 60-day admission, 141 to 81 days ago, with the patient's own supply at home unused."""
    resource = encounter("enc-stay", PID, day(141, "T08:00:00Z"), status=status,
                         klass={"system": ACT_CODE, "code": code}, end=day(81, "T12:00:00Z"))
    resource[period_key] = resource.pop("period")
    return resource


STAY_FILLS = (170, 80, 50, 20)  # no fill while in hospital: PDC 120/171 if the stay counted


@pytest.mark.parametrize(
    ("status", "period_key"),
    [
        pytest.param("finished", "period", id="R4-finished"),
        pytest.param("completed", "period", id="R5-completed-period"),
        pytest.param("completed", "actualPeriod", id="R5-completed-actualPeriod"),
    ],
)
def test_days_of_an_ended_inpatient_stay_leave_the_period(status: str, period_key: str) -> None:
    resources = [sertraline_order(), *fills(STAY_FILLS), stay(status, period_key=period_key)]

    assert evaluate(resources) is None


def test_without_the_stay_the_same_fills_fire() -> None:
    result = evaluate([sertraline_order(), *fills(STAY_FILLS)])

    assert isinstance(result, Finding)
    assert result.facts["period_days"] == 171


@pytest.mark.parametrize(
    "visit",
    [
        pytest.param(stay("cancelled"), id="cancelled-admission"),
        pytest.param(stay("completed", code="AMB"), id="completed-outpatient-visit"),
    ],
)
def test_a_stay_that_did_not_happen_or_an_outpatient_visit_keeps_its_days(
    visit: dict[str, Any],
) -> None:
    result = evaluate([sertraline_order(), *fills(STAY_FILLS), visit])

    assert isinstance(result, Finding)


# C. daysSupply spellings -------------------------------------------------------------------
DAY_SPELLINGS = [
    pytest.param({"value": 30, "unit": "Day(s)"}, id="Day(s)"),
    pytest.param({"value": 30, "unit": "DAYS SUPPLY"}, id="DAYS-SUPPLY"),
    pytest.param({"value": 30, "unit": "Days Supply"}, id="Days-Supply"),
    pytest.param({"value": 30, "unit": "day_supply"}, id="day_supply"),
    pytest.param({"value": 30, "unit": "dy"}, id="dy"),
    pytest.param({"value": 30, "unit": "days", "system": UCUM, "code": "{days}"}, id="code-{days}"),
    pytest.param({"value": 30, "unit": "day", "code": "{Days}"}, id="code-{Days}-unit-day"),
    pytest.param({"value": 30, "unit": "Days", "system": UCUM, "code": "DAYS"}, id="code-DAYS"),
]


@pytest.mark.parametrize("days_supply", DAY_SPELLINGS)
def test_day_spellings_are_read_as_days_and_a_gap_fires(days_supply: dict[str, Any]) -> None:
    result = evaluate([sertraline_order(), *fills(GAP, daysSupply=days_supply)])

    assert isinstance(result, Finding)
    assert result.facts["pdc"] == 0.35


@pytest.mark.parametrize("days_supply", DAY_SPELLINGS)
def test_day_spellings_on_monthly_fills_are_adherent(days_supply: dict[str, Any]) -> None:
    assert evaluate([sertraline_order(), *fills(MONTHLY, daysSupply=days_supply)]) is None


@pytest.mark.parametrize("days_supply", [30, "30"], ids=["bare-integer", "bare-string"])
def test_a_bare_number_is_read_as_days_and_reported(days_supply: object) -> None:
    resources = [sertraline_order(), *fills(GAP, daysSupply=days_supply)]

    result = detect(record := mapped(resources), (), DEFAULTS, NOW)

    assert isinstance(result, Finding)
    assert result.facts["pdc"] == 0.35
    assert issues(record, "daysSupply") == [
        (f"MedicationDispense/md-{n}", "a bare number, not a Quantity: read as days")
        for n in (0, 1)
    ]


def test_a_supply_in_months_is_not_a_count_of_days() -> None:
    # "1 mo" is 28, 30 or 31 days' worth; with no quantity and sig to count from, it stays unknown.
    resources = [
        order("mr-1", PID, "sertraline100", authored=day(175, "T10:00:00Z"),
              dosage=[{"text": "take as directed"}]),
        *fills(GAP, daysSupply={"value": 1, "unit": "mo", "system": UCUM, "code": "mo"}),
    ]

    result = detect(record := mapped(resources), (), DEFAULTS, NOW)

    assert isinstance(result, NotEvaluable)
    assert "no days' supply" in result.reason
    assert {reason for _, reason in issues(record, "daysSupply")} == {"not a duration in days"}


def test_a_supply_in_months_falls_back_to_quantity_over_the_sig() -> None:
    # 30 tablets at one a day: 30 days, counted from the dispense's own sig.
    gap = fills(GAP, daysSupply={"value": 1, "unit": "month"},
                dosageInstruction=[daily(1, "{tbl}")])

    result = evaluate([sertraline_order(), *gap])

    assert isinstance(result, Finding)
    assert result.facts["pdc"] == 0.35


def test_a_code_in_another_time_unit_is_not_overruled_by_the_unit_text() -> None:
    hours = {"value": 720, "unit": "days", "system": UCUM, "code": "h"}

    result = evaluate([sertraline_order(), *fills(GAP, daysSupply=hours)])

    assert isinstance(result, NotEvaluable)


@pytest.mark.parametrize("status", ["in-progress", "arrived", "onleave"])
def test_a_stay_still_going_on_leaves_every_day_since_admission_out(status: str) -> None:
    # Monthly fills until 50 days ago, then admitted 49 days ago and still in hospital (on the
    # ward, or on leave from it): the supply at home was not due. 120 of 180 days covered
    # without the stay (0.66: fires); 120 of 131 with it.
    admitted = encounter("enc-now", PID, day(49, "T08:00:00Z"), status=status,
                         klass={"system": ACT_CODE, "code": "IMP"})
    resources = [sertraline_order(), *fills((170, 140, 110, 80))]

    assert isinstance(evaluate(resources), Finding)
    assert evaluate([*resources, admitted]) is None
