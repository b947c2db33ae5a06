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
