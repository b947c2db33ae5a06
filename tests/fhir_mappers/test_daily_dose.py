"""Daily dose in mg from MedicationRequest.dosageInstruction (R4, STU3, DSTU2 shapes)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappers import CodeLists, IngredientTable, map_record
from fhir_mappers.record import MedicationCourse

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
SERTRALINE_50 = {
    "coding": [{"system": RXNORM, "code": "312941", "display": "sertraline 50 MG Oral Tablet"}]
}


def dose(value: float, code: str) -> dict[str, Any]:
    return {"doseAndRate": [{"doseQuantity": {"value": value, "system": UCUM, "code": code}}]}


def every(frequency: float, period: float = 1, unit: str = "d") -> dict[str, Any]:
    return {"timing": {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit}}}


def course_of(
    table: IngredientTable,
    codes: CodeLists,
    dosage: Any,
    medication: dict[str, Any] | None = None,
) -> tuple[MedicationCourse, list[str]]:
    request = {
        "resourceType": "MedicationRequest",
        "id": "rx-1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2025-03-01",
        "medicationCodeableConcept": medication or SERTRALINE_50,
        "dosageInstruction": dosage,
    }
    record = map_record([request], table, codes=codes)
    return record.courses[0], [issue.reason for issue in record.issues]


@pytest.mark.parametrize(
    ("dosage", "expected"),
    [
        pytest.param([{**dose(50, "mg"), **every(1)}], 50.0, id="mg-once-daily"),
        pytest.param([{**dose(25, "mg"), **every(2)}], 50.0, id="mg-twice-daily"),
        pytest.param([{**dose(0.1, "g"), **every(1)}], 100.0, id="grams"),
        pytest.param([{**dose(2, "{tbl}"), **every(1)}], 100.0, id="tablets-times-strength"),
        pytest.param([{**dose(1, "{pill}"), **every(3)}], 150.0, id="sandbox-pill"),
        pytest.param([{**dose(50, "mg"), **every(1, 8, "h")}], 150.0, id="every-8-hours"),
        pytest.param([{**dose(50, "mg"), **every(1, 2, "d")}], 25.0, id="every-other-day"),
        pytest.param([{**dose(70, "mg"), **every(1, 1, "wk")}], 10.0, id="weekly"),
        pytest.param(
            [{**dose(50, "mg"), "timing": {"repeat": {"when": ["MORN", "HS"]}}}],
            100.0,
            id="when-list",
        ),
        pytest.param(
            [{**dose(50, "mg"), "timing": {"repeat": {"timeOfDay": ["08:00:00"]}}}],
            50.0,
            id="time-of-day",
        ),
        pytest.param(
            [{**dose(1, "{tbl}"), "timing": {"code": {"coding": [{"code": "BID"}]}}}],
            100.0,
            id="timing-code",
        ),
        pytest.param(
            [{**dose(2, "{tbl}"), "timing": {"code": {"coding": [{"code": "QHS"}]}}}],
            100.0,
            id="timing-code-qhs",
        ),
        pytest.param(
            [{**dose(25, "mg"), "timing": {"code": {"text": "Q12H"}}}],
            50.0,
            id="timing-code-q12h-as-text",
        ),
        pytest.param(
            [{**dose(50, "mg"), **every(1)}, {**dose(100, "mg"), **every(1)}],
            150.0,
            id="concurrent-instructions-add-up",
        ),
        pytest.param(
            [
                {"sequence": 1, **dose(25, "mg"), **every(1)},
                {"sequence": 2, **dose(50, "mg"), **every(1)},
            ],
            50.0,
            id="two-steps-dose-of-the-last-step",
        ),
        pytest.param(
            [{"doseQuantity": {"value": 1, "code": "{pill}"}, **every(1)}],
            50.0,
            id="stu3-dose-on-dosage",
        ),
        pytest.param(
            [
                {
                    "doseQuantity": {"value": 50, "unit": "mg"},
                    "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnits": "d"}},
                }
            ],
            50.0,
            id="dstu2-periodUnits",
        ),
        pytest.param([{"text": "Take one tablet daily"}], None, id="free-text-sig"),
    ],
)
def test_daily_dose(
    table: IngredientTable, codes: CodeLists, dosage: Any, expected: float | None
) -> None:
    course, issues = course_of(table, codes, dosage)
    assert course.daily_dose_mg == expected
    assert issues == []


def test_liquid_dose_uses_concentration(table: IngredientTable, codes: CodeLists) -> None:
    lithium = {"text": "lithium citrate 300 MG/5ML Oral Solution"}
    course, _ = course_of(table, codes, [{**dose(5, "mL"), **every(2)}], lithium)
    assert course.daily_dose_mg == 600.0


def test_as_needed_sets_prn_and_no_daily_dose(table: IngredientTable, codes: CodeLists) -> None:
    lorazepam = {"text": "lorazepam 0.5 MG Oral Tablet"}
    prn = [{"asNeededBoolean": True, **dose(1, "{tbl}"), **every(1, 8, "h")}]
    course, issues = course_of(table, codes, prn, lorazepam)
    assert (course.is_prn, course.daily_dose_mg, issues) == (True, None, [])


def test_scheduled_dose_ignores_prn_top_up(table: IngredientTable, codes: CodeLists) -> None:
    dosage = [
        {**dose(50, "mg"), **every(1)},
        {"asNeededCodeableConcept": {"text": "agitation"}, **dose(50, "mg"), **every(1)},
    ]
    course, _ = course_of(table, codes, dosage)
    # Issue 12 kind 6: one PRN line does not make a scheduled order as-needed.
    assert (course.is_prn, course.daily_dose_mg) == (False, 50.0)


@pytest.mark.parametrize(
    ("line", "prn", "mg"),
    [
        # A scheduled line whose words describe an extra dose on top: the scheduled dose stands,
        # the extra (as needed) is no part of it.
        pytest.param({**every(1), "text": "Take 1 tablet at bedtime. May take an additional 0.5 "
                      "tablet daily if needed for agitation"}, False, 50.0, id="extra-dose"),
        pytest.param({**every(1), "patientInstruction": "Call the clinic if needed."}, False, 50.0,
                     id="call-the-clinic"),
        pytest.param({**every(1), "text": "Take 1 tablet daily. May increase to 1.5 tablets "
                      "after 4 weeks if needed."}, False, 50.0, id="later-increase"),
        pytest.param({**every(1), "text": "nightly, not as needed"}, False, 50.0,
                     id="not-as-needed"),
        pytest.param({**every(1), "text": "PRN", "asNeededBoolean": False}, False, 50.0,
                     id="asNeededBoolean-false-wins"),
        pytest.param({**every(1), "text": "PRN", "asNeeded": "false"}, False, 50.0,
                     id="r5-asNeeded-false-string"),
        # Near misses: the extra-dose words on a line with no structured schedule, and a line
        # whose own dose is as needed before the call: as needed.
        pytest.param({"text": "May take an additional 0.5 tablet if needed"}, True, None,
                     id="extra-dose-without-a-schedule"),
        pytest.param({**every(1), "text": "Take 1 tablet as needed for anxiety, call the clinic "
                      "if needed"}, True, None, id="as-needed-then-a-call"),
        pytest.param({**every(1), "asNeededFor": [{"text": "anxiety"}]}, True, None,
                     id="r5-asNeededFor"),
    ],
)
def test_words_not_about_the_lines_own_dose_leave_it_scheduled(
    table: IngredientTable, codes: CodeLists, line: dict[str, Any], prn: bool, mg: float | None
) -> None:
    course, _ = course_of(table, codes, [{**dose(50, "mg"), **line}])
    assert (course.is_prn, course.daily_dose_mg) == (prn, mg)


def test_combination_product_has_no_single_daily_dose(
    table: IngredientTable, codes: CodeLists
) -> None:
    combo = {"text": "olanzapine 6 MG / fluoxetine 25 MG Oral Capsule"}
    course, issues = course_of(table, codes, [{**dose(1, "{capsule}"), **every(1)}], combo)
    assert len(course.ingredients) == 2
    assert (course.daily_dose_mg, issues) == (None, [])


@pytest.mark.parametrize(
    ("dosage", "medication", "reason"),
    [
        pytest.param([dose(50, "mg")], None, "dose frequency unknown", id="no-timing"),
        pytest.param(
            [{**dose(50, "mg"), "timing": {"repeat": {"frequency": 2}}}],
            None,
            "dose frequency unknown",
            id="frequency-without-period",
        ),
        pytest.param(
            [{"doseAndRate": [{"doseQuantity": {"value": 1}}], **every(1)}],
            {"text": "Zoloft tablet"},
            "product strength unknown",
            id="no-unit-and-no-strength",
        ),
        pytest.param(
            [{**dose(1, "[drp]"), **every(1)}],
            None,
            "dose unit not convertible to mg",
            id="drops",
        ),
        pytest.param(
            [{**dose(1, "{tbl}"), **every(1)}],
            {"text": "Zoloft tablet"},
            "product strength unknown",
            id="tablets-without-strength",
        ),
        pytest.param(["one daily"], None, "dosage is not an object", id="string-dosage"),
    ],
)
def test_underivable_dose_is_none_and_reported(
    table: IngredientTable,
    codes: CodeLists,
    dosage: Any,
    medication: dict[str, Any] | None,
    reason: str,
) -> None:
    course, issues = course_of(table, codes, dosage, medication)
    assert course.daily_dose_mg is None
    assert issues == [reason]
