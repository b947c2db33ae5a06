"""regimen-escalation on R4 resources as EHRs send them: a completed order with no end date and
its fills, and an oral antipsychotic converted to a monthly long-acting injection (the RxNorm
product names the form). Mapped with the real mapper, judged at 2026-11-30 with the defaults."""

from __future__ import annotations

from typing import Any

from cds_service.patterns.regimen_escalation import PATTERN_ID, detect
from cds_service.settings import load_settings
from fhir_mappers import CodeLists, IngredientTable
from fhir_mappers.mapper import map_record
from tests.realworld.builders import RXNORM, daily, dispense, order
from tests.realworld.builders import day as days_ago
from tests.realworld.conftest import CASES_NOW

PID = "rw-escalation"
TODAY = CASES_NOW.date()
THRESHOLDS = load_settings().patterns[PATTERN_ID].thresholds
# Abilify Maintena 400 mg: RxNorm SCD 1602171 as one EHR displays it.
MAINTENA = {
    "coding": [
        {"system": RXNORM, "code": "1602171",
         "display": "2 ML aripiprazole 200 MG/ML Prefilled Syringe"}
    ],
    "text": "2 ML aripiprazole 200 MG/ML Prefilled Syringe",
}


def _new_agents(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sertraline 50 mg added 100 days ago, venlafaxine 75 mg 60 days ago."""
    return [
        *resources,
        order("s-new", PID, "sertraline50", authored=days_ago(100), dosage=[daily(50)]),
        order("v-new", PID, "venlafaxine75", authored=days_ago(60), dosage=[daily(75)]),
    ]


def test_an_undated_stop_is_no_switch_for_a_start_months_after_its_last_fill(
    table: IngredientTable, codes: CodeLists
) -> None:
    """Fluoxetine 20 mg: order completed with no end date, filled for 30 days 300, 270 and 240
    days ago. Sertraline 100 days ago is an added antidepressant, not its replacement; with
    venlafaxine and quetiapine, 3 escalations."""
    fluoxetine = [
        order("q-new", PID, "quetiapine100", authored=days_ago(30), dosage=[daily(100)]),
        order("f-1", PID, "fluoxetine20", authored=days_ago(300), status="completed",
              dosage=[daily(20)]),
        *(dispense(f"f-fill-{d}", PID, "fluoxetine20", days_ago(d), days=30)
          for d in (300, 270, 240)),
    ]
    record = map_record(_new_agents(fluoxetine), table, codes=codes)

    finding = detect(record, (), THRESHOLDS, TODAY)

    assert finding is not None
    assert finding.facts["switches_not_counted"] == 0
    assert finding.facts["new_agents"] == ["sertraline", "venlafaxine", "quetiapine"]


def test_oral_to_monthly_injection_is_no_dose_increase(
    table: IngredientTable, codes: CodeLists
) -> None:
    """Aripiprazole 10 mg/day for months, then Abilify Maintena 400 mg every month (14 days of
    oral overlap); sertraline and venlafaxine new: 2 escalations, no card."""
    monthly = {
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "mo"}},
        "doseAndRate": [{"doseQuantity": {"value": 400, "unit": "mg",
                                          "system": "http://unitsofmeasure.org", "code": "mg"}}],
    }
    oral_end = {"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                      "boundsPeriod": {"end": days_ago(6)}}}}
    aripiprazole = [
        order("a-oral", PID, "aripiprazole10", authored=days_ago(300), status="stopped",
              dosage=[{**daily(10), **oral_end}]),
        order("a-lai", PID, "aripiprazole10", authored=days_ago(20), dosage=[monthly],
              medicationCodeableConcept=MAINTENA),
    ]
    record = map_record(_new_agents(aripiprazole), table, codes=codes)

    assert detect(record, (), THRESHOLDS, TODAY) is None


def _quetiapine_history(middle: dict[str, Any]) -> list[dict[str, Any]]:
    """Quetiapine 100 mg/day 240-121 days ago, ``middle`` from 120 days ago, then 300 mg/day
    from 40 days ago: with sertraline and venlafaxine added, the 300 mg order is a third
    escalation only if its dose is known to have risen."""
    first = order("q-1", PID, "quetiapine100", authored=days_ago(240), status="completed",
                  dosage=[{**daily(100), "timing": {"repeat": {
                      "frequency": 1, "period": 1, "periodUnit": "d",
                      "boundsPeriod": {"start": days_ago(240), "end": days_ago(121)}}}}])
    last = order("q-3", PID, "quetiapine100", authored=days_ago(40), dosage=[daily(300)])
    return _new_agents([first, middle, last])


def _middle(dosage: dict[str, Any]) -> dict[str, Any]:
    return order("q-2", PID, "quetiapine100", authored=days_ago(120), status="completed",
                 dosage=[{**dosage, "timing": {"repeat": {
                     "frequency": 1, "period": 1, "periodUnit": "d",
                     "boundsPeriod": {"start": days_ago(120), "end": days_ago(41)}}}}])


def test_after_an_order_of_unknown_dose_the_next_dose_is_no_known_increase(
    table: IngredientTable, codes: CodeLists
) -> None:
    """A middle order whose sig gives no dose ("take as directed") leaves the dose in effect
    unknown: 100 mg/day before it and 300 mg/day after it do not say when the dose rose, so the
    300 mg order is not counted (missing, not evidence). With the middle order at 100 mg/day,
    it is."""
    unknown = _middle({"text": "Take as directed"})
    record = map_record(_quetiapine_history(unknown), table, codes=codes)
    assert detect(record, (), THRESHOLDS, TODAY) is None

    known = _middle(daily(100))
    record = map_record(_quetiapine_history(known), table, codes=codes)
    finding = detect(record, (), THRESHOLDS, TODAY)
    assert finding is not None
    assert "quetiapine" in str(finding.facts)


def test_a_third_agent_whose_sig_names_a_call_if_needed_is_standing(
    table: IngredientTable, codes: CodeLists
) -> None:
    """Quetiapine 100 mg every morning, "Contact your care team if needed": a standing order,
    the third new agent with sertraline and venlafaxine. Written as needed for agitation, it is
    no part of the standing regimen (no escalation); with a structured schedule and an extra dose
    as needed, the scheduled dose is a new agent all the same."""

    def third(line: dict[str, Any]) -> Any:
        quetiapine = order("q-new", PID, "quetiapine100", authored=days_ago(30), dosage=[line])
        return detect(map_record(_new_agents([quetiapine]), table, codes=codes), (),
                      THRESHOLDS, TODAY)

    call = third(daily(100, patientInstruction="Take 1 tablet every morning. Contact your care "
                       "team if needed."))
    assert call is not None and "quetiapine" in call.facts["new_agents"]
    extra = third(daily(100, text="Take 1 tablet daily. May take 1 extra tablet if needed."))
    assert extra is not None
    assert third(daily(100, text="Take 1 tablet daily if needed for agitation.")) is None
