"""Orders that say what they are in ways the plain shape does not: an order *not* to give a drug
(``doNotPerform``), an order that runs for a duration (``boundsDuration``) instead of to an end,
a taper written as lines without ``sequence``, and a draft signed with its planned end. Each
reads as a course of the right length and dose, or of no dose where the order does not say.

Polypharmacy (>= 2 standing antipsychotics planned to overlap >= 90 days) and regimen-escalation
(>= 3 new agents or dose increases in 180 days) are the patterns such misreadings would fire.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fhir_mappers import CodeLists, IngredientTable
from fhir_mappers.dosage import UNORDERED_SPANS
from fhir_mappers.mapper import map_record
from tests.realworld.builders import concept, order, request
from tests.realworld.builders import day as days_ago
from tests.realworld.conftest import CASES_NOW, topics

PID = "rw-order-kinds"
TODAY = CASES_NOW.date()


def _line(mg: float, **repeat: Any) -> dict[str, Any]:
    return {
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", **repeat}},
        "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg",
                                          "system": "http://unitsofmeasure.org", "code": "mg"}}],
    }


def _for(value: float, code: str = "d") -> dict[str, Any]:
    return {"boundsDuration": {"value": value, "unit": code, "system": "http://unitsofmeasure.org",
                               "code": code}}


def _standing_quetiapine() -> dict[str, Any]:
    return order("q-standing", PID, "quetiapine100", authored=days_ago(200),
                 dosage=[_line(100)])


# --- doNotPerform -------------------------------------------------------------------------


@pytest.mark.parametrize("do_not_perform", [True, False], ids=["prohibition", "order"])
def test_an_order_not_to_give_a_drug_is_no_standing_antipsychotic(
    post: Callable[[dict[str, Any]], Any], do_not_perform: bool
) -> None:
    risperidone = order("r-1", PID, "risperidone2", authored=days_ago(150),
                        dosage=[_line(2)], doNotPerform=do_not_perform)

    fired = topics(post(request("patient-view", PID, [_standing_quetiapine(), risperidone])))

    # Two standing antipsychotics for 150 days fire; "do not give risperidone" is not one.
    assert ("psychotropic-polypharmacy" in fired) is not do_not_perform


def test_a_draft_not_to_give_a_drug_is_not_signed_as_one(
    post: Callable[[dict[str, Any]], Any],
) -> None:
    draft = order("d-1", PID, "risperidone2", authored=days_ago(0), status="draft",
                  dosage=[_line(2)], doNotPerform=True)

    response = post(request("order-sign", PID, [_standing_quetiapine()], drafts=[draft]))

    assert response.status_code == 200
    assert "psychotropic-polypharmacy" not in topics(response)


# --- boundsDuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "fires"),
    [
        (_for(14), False),  # ended 136 days ago: 14 days together, well under 90
        (_for(2, "wk"), False),
        (_for(200), True),  # runs 50 more days: 150 days together so far, a real overlap
        ({}, True),  # no bound: a standing order
    ],
    ids=["14-days", "2-weeks", "200-days", "unbounded"],
)
def test_an_order_for_a_duration_ends_when_it_runs_out(
    post: Callable[[dict[str, Any]], Any], bounds: dict[str, Any], fires: bool
) -> None:
    risperidone = order("r-1", PID, "risperidone2", authored=days_ago(150),
                        dosage=[_line(2, **bounds)])

    fired = topics(post(request("patient-view", PID, [_standing_quetiapine(), risperidone])))

    assert ("psychotropic-polypharmacy" in fired) is fires


def test_the_course_of_a_duration_runs_from_its_start(
    table: IngredientTable, codes: CodeLists
) -> None:
    record = map_record(
        [order("r-1", PID, "risperidone2", authored=days_ago(150), dosage=[_line(2, **_for(14))])],
        table, codes=codes,
    )

    (course,) = record.courses
    assert course.start is not None and course.end is not None
    assert (course.end - course.start).days == 13  # 14 days, the first one included


# --- lines without a sequence, each for its own duration ----------------------------------


def _taper_without_sequence() -> dict[str, Any]:
    return order("q-taper", PID, "quetiapine25", authored=days_ago(30),
                 dosage=[_line(100, **_for(7)), _line(50, **_for(7)), _line(25, **_for(7))])


def test_a_taper_written_without_sequence_is_not_read_as_the_sum_of_its_lines(
    table: IngredientTable, codes: CodeLists
) -> None:
    record = map_record([_taper_without_sequence()], table, codes=codes)

    (course,) = record.courses
    assert course.daily_dose_mg is None  # not 175 mg: steps or together, the order does not say
    assert [i.reason for i in record.issues] == [UNORDERED_SPANS]
    assert course.end is not None and course.start is not None
    assert (course.end - course.start).days == 6  # together: the longest line's 7 days


def test_lines_without_sequence_of_one_dose_still_add_up(
    table: IngredientTable, codes: CodeLists
) -> None:
    # Morning and night, each for 7 days: the same dose twice a day is 2 x 50 mg, not unknown.
    same = order("q-bid", PID, "quetiapine25", authored=days_ago(3),
                 dosage=[_line(50, **_for(7)), _line(50, **_for(7))])

    (course,) = map_record([same], table, codes=codes).courses

    assert course.daily_dose_mg == 100


def test_a_taper_without_sequence_is_no_dose_increase(
    post: Callable[[dict[str, Any]], Any],
) -> None:
    # Quetiapine 100 mg, then tapered 100 -> 50 -> 25 mg (lines without sequence); a new
    # sertraline and a new aripiprazole: two escalations, not three.
    earlier = order("q-1", PID, "quetiapine100", authored=days_ago(400), status="completed",
                    dosage=[_line(100, boundsPeriod={"start": days_ago(400),
                                                     "end": days_ago(31)})])
    sertraline = order("s-1", PID, "sertraline100", authored=days_ago(120), dosage=[_line(100)])
    aripiprazole = order("a-1", PID, "aripiprazole10", authored=days_ago(60), dosage=[_line(10)])

    fired = topics(post(request(
        "patient-view", PID, [earlier, _taper_without_sequence(), sertraline, aripiprazole]
    )))

    assert "regimen-escalation" not in fired


# --- a draft signed with its planned end --------------------------------------------------


def _current_risperidone() -> dict[str, Any]:
    return order("r-standing", PID, "risperidone2", authored=days_ago(200), dosage=[_line(4)])


@pytest.mark.parametrize(
    ("repeat", "fires"),
    [
        ({"boundsPeriod": {"start": days_ago(0), "end": days_ago(-13)}}, False),
        (_for(14), False),
        ({"boundsPeriod": {"start": days_ago(0), "end": days_ago(-120)}}, True),
        ({}, True),
    ],
    ids=["bridge-14-days", "bridge-duration", "planned-120-days", "open"],
)
def test_a_draft_keeps_its_planned_end(
    post: Callable[[dict[str, Any]], Any], repeat: dict[str, Any], fires: bool
) -> None:
    draft = order("d-1", PID, "quetiapine25", authored=days_ago(0), status="draft",
                  dosage=[_line(50, **repeat)])

    response = post(request("order-sign", PID, [_current_risperidone()], drafts=[draft]))

    assert response.status_code == 200
    assert ("psychotropic-polypharmacy" in topics(response)) is fires


# --- a medication reconciliation keeps an old statement current ---------------------------


def _statement(asserted_days_ago: int, status: str = "active") -> dict[str, Any]:
    """Risperidone as a med-rec statement: started 500 days ago, asserted on the given day."""
    return {
        "resourceType": "MedicationStatement",
        "id": "ms-risperidone",
        "status": status,
        "subject": {"reference": f"Patient/{PID}"},
        "medicationCodeableConcept": concept("risperidone2"),
        "effectivePeriod": {"start": days_ago(500)},
        "dateAsserted": days_ago(asserted_days_ago),
        "dosage": [_line(2)],
    }


@pytest.mark.parametrize(
    ("statement", "fires"),
    [
        (_statement(10), True),  # reconciled 10 days ago: taken now
        (_statement(366), False),  # last said 366 days ago: stale (365 days)
        (_statement(10, status="completed"), False),  # reconciled as stopped
    ],
    ids=["asserted-10-days-ago", "asserted-366-days-ago", "completed"],
)
def test_a_statement_asserted_recently_is_a_sign_the_drug_is_taken(
    post: Callable[[dict[str, Any]], Any], statement: dict[str, Any], fires: bool
) -> None:
    quetiapine = order("q-1", PID, "quetiapine100", authored=days_ago(60), dosage=[_line(100)])

    fired = topics(post(request("patient-view", PID, [quetiapine, statement])))

    assert ("psychotropic-polypharmacy" in fired) is fires


# --- a dose given less often than daily ---------------------------------------------------


def _product(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code,
                        "display": display}], "text": display}


def _paliperidone_injection(every: dict[str, Any]) -> dict[str, Any]:
    line = _line(156)
    line["timing"]["repeat"] = every
    resource = order("pali-1", PID, "risperidone2", authored=days_ago(150), dosage=[line])
    resource["medicationCodeableConcept"] = _product(
        "858054", "1 ML paliperidone palmitate 156 MG/ML Prefilled Syringe"
    )
    return resource


def _olanzapine(authored: int) -> dict[str, Any]:
    resource = order("o-1", PID, "quetiapine100", authored=days_ago(authored), dosage=[_line(10)])
    resource["medicationCodeableConcept"] = _product("314154", "olanzapine 10 MG Oral Tablet")
    return resource


@pytest.mark.parametrize(
    ("repeat", "written"),
    [
        ({"period": 1, "periodUnit": "mo"}, "paliperidone 156 mg every month"),
        ({"period": 4, "periodUnit": "wk"}, "paliperidone 156 mg every 4 weeks"),
        ({"frequency": 2, "period": 1, "periodUnit": "mo"},
         "paliperidone 156 mg 2 times every month"),
    ],
    ids=["monthly", "every-4-weeks", "twice-monthly"],
)
def test_an_injection_is_shown_as_written_not_as_a_daily_average(
    post: Callable[[dict[str, Any]], Any], repeat: dict[str, Any], written: str
) -> None:
    body = request("patient-view", PID, [_paliperidone_injection(repeat), _olanzapine(140)])

    (card,) = [c for c in post(body).get_json()["cards"]
               if c["source"]["topic"]["code"] == "psychotropic-polypharmacy"]

    assert written in card["detail"]
    assert "olanzapine 10 mg/day" in card["detail"]  # a daily dose stays per day
    assert "paliperidone 5.2" not in card["detail"]


def test_a_daily_order_has_no_schedule_of_its_own(table: IngredientTable, codes: CodeLists) -> None:
    (course,) = map_record([_olanzapine(10)], table, codes=codes).courses

    assert course.schedule is None and course.daily_dose_mg == 10


# --- a number of administrations (timing.repeat.count) -------------------------------------


def _doses(mg: float, count: int, **repeat: Any) -> dict[str, Any]:
    line = _line(mg)
    line["timing"] = {"repeat": {"count": count, **repeat}}
    return line


@pytest.mark.parametrize(
    ("line", "days"),
    [
        (_doses(5, 1), 1),  # a single dose ("5 mg IM once now"): that day only
        (_doses(5, 1, frequency=2, period=1, periodUnit="d"), 1),
        (_doses(5, 10, frequency=2, period=1, periodUnit="d"), 5),  # 10 doses twice a day
        (_doses(5, 7, frequency=1, period=1, periodUnit="wk"), 49),  # 7 weekly doses
    ],
    ids=["once", "once-of-bid", "10-bid", "7-weekly"],
)
def test_an_order_for_a_number_of_doses_ends_when_they_are_given(
    table: IngredientTable, codes: CodeLists, line: dict[str, Any], days: int
) -> None:
    record = map_record(
        [order("h-1", PID, "risperidone2", authored=days_ago(10), dosage=[line])],
        table, codes=codes,
    )

    (course,) = record.courses
    assert course.start is not None and course.end is not None
    assert (course.end - course.start).days + 1 == days


@pytest.mark.parametrize(
    "line",
    [_doses(5, 4), _doses(5, 0, frequency=1, period=1, periodUnit="d")],
    ids=["several-doses-no-pace", "zero"],
)
def test_a_count_that_gives_no_pace_leaves_the_end_unknown(
    table: IngredientTable, codes: CodeLists, line: dict[str, Any]
) -> None:
    record = map_record(
        [order("h-1", PID, "risperidone2", authored=days_ago(10), dosage=[line])],
        table, codes=codes,
    )
    assert record.courses[0].end is None


@pytest.mark.parametrize("count", [1, None], ids=["single-dose", "standing"])
def test_a_single_dose_is_no_standing_antipsychotic(
    post: Callable[[dict[str, Any]], Any], count: int | None
) -> None:
    line = _doses(5, count) if count is not None else _line(5)
    draft = order("d-halo", PID, "risperidone2", authored=days_ago(0), status="draft",
                  dosage=[line])

    fired = topics(post(request("order-sign", PID, [_standing_quetiapine()], drafts=[draft])))

    assert ("psychotropic-polypharmacy" in fired) is (count is None)
