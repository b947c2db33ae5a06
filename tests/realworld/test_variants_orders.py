"""Kinds 1, 5, 6, 7, 8, 9, 10 and 14 of issue 12 on realistic requests: other patients' resources,
resolved intolerances, PRN lines, multi-step orders, nearly-right dates, fullUrl references,
unitless doses, order-select selections and renewals."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from flask import Flask

from cds_service.patterns.timeline import dose_on, is_current
from fhir_mappers import CodeLists, IngredientTable, map_draft_orders, map_record
from fhir_mappers.accessors import parse_period
from tests.realworld.builders import (
    RXNORM,
    concept,
    daily,
    day,
    intolerance,
    order,
    request,
)
from tests.realworld.conftest import CASES_NOW, audit_rows, topics

TODAY = CASES_NOW.date()
POLY = "psychotropic-polypharmacy"
INTOL = "repeated-intolerance"


def two_antipsychotics(pid: str) -> list[dict[str, Any]]:
    return [
        order("ap-1", pid, "quetiapine100", authored=day(90, "T10:00:00Z"), dosage=[daily(100)]),
        order("ap-2", pid, "risperidone2", authored=day(60, "T10:00:00Z"), dosage=[daily(2)]),
    ]


def three_intolerances(pid: str, clinical: str = "active") -> list[dict[str, Any]]:
    return [
        intolerance("ai-1", pid, "sertraline50", day(300, "T10:00:00Z"), "Nausea", clinical),
        intolerance("ai-2", pid, "venlafaxine75", day(200, "T10:00:00Z"), "Headache"),
        intolerance("ai-3", pid, "quetiapine100", day(100, "T10:00:00Z"), "Sedation"),
    ]


# Kind 1 -------------------------------------------------------------------------------------
def test_own_two_antipsychotics_fire(post: Callable[[dict[str, Any]], Any]) -> None:
    assert POLY in topics(post(request("patient-view", "p-own", two_antipsychotics("p-own"))))


def test_another_patients_orders_are_dropped_counted_and_not_logged(
    post: Callable[[dict[str, Any]], Any], caplog: pytest.LogCaptureFixture
) -> None:
    mine = order("own-1", "p-own", "quetiapine100", authored=day(90, "T10:00:00Z"))
    theirs = two_antipsychotics("p-other-77")
    for resource in theirs:
        resource["id"] = "other-" + resource["id"]
    body = request("patient-view", "p-own", [mine, *theirs],
                   drafts=None)
    with caplog.at_level(logging.DEBUG):
        response = post(body)
    assert POLY not in topics(response)
    assert "p-other-77" not in caplog.text and "other-ap" not in caplog.text
    assert "another patient's resource=2" in caplog.text


def test_another_patients_draft_is_not_the_order(post: Callable[[dict[str, Any]], Any]) -> None:
    draft = order("d-1", "p-other", "risperidone2", authored=day(0), status="draft")
    body = request("order-sign", "p-own", three_intolerances("p-own"), drafts=[draft])
    assert topics(post(body)) == []


def test_synthea_style_urn_uuid_subjects_are_the_patient(
    table: IngredientTable, codes: CodeLists
) -> None:
    pid = "6f1c0e2a-0000-4000-8000-00000000abcd"
    mine = order("u-1", pid, "quetiapine100", authored=day(9))
    mine["subject"] = {"reference": f"urn:uuid:{pid}"}
    theirs = order("u-2", "x", "risperidone2", authored=day(9))
    theirs["subject"] = {"reference": "urn:uuid:someone-else"}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{pid}", "resource": {"resourceType": "Patient", "id": pid}},
        {"fullUrl": "urn:uuid:u-1", "resource": mine},
        {"fullUrl": "urn:uuid:u-2", "resource": theirs},
    ]}
    record = map_record([bundle], table, codes=codes, patient_id=pid)
    assert [c.ref for c in record.courses] == ["MedicationRequest/u-1"]
    assert [i.reason for i in record.issues] == ["another patient's resource"]


# Kind 5 -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("clinical", "fires"), [
    ("active", True), ("resolved", False), ("inactive", False),
])
def test_only_active_intolerances_are_evidence(
    post: Callable[[dict[str, Any]], Any], clinical: str, fires: bool
) -> None:
    body = request("patient-view", "p-int", three_intolerances("p-int", clinical))
    assert (INTOL in topics(post(body))) is fires


# Kind 6 -------------------------------------------------------------------------------------
def test_a_prn_line_does_not_hide_a_scheduled_antipsychotic(
    post: Callable[[dict[str, Any]], Any]
) -> None:
    resources = two_antipsychotics("p-prn")
    resources[1]["dosageInstruction"] = [
        daily(2), {**daily(1), "asNeededCodeableConcept": {"text": "agitation"}},
    ]
    assert POLY in topics(post(request("patient-view", "p-prn", resources)))


def test_an_order_with_only_prn_lines_is_prn(post: Callable[[dict[str, Any]], Any]) -> None:
    resources = two_antipsychotics("p-prn2")
    resources[1]["dosageInstruction"] = [
        {**daily(1), "asNeededBoolean": True}, {**daily(2), "asNeededBoolean": True},
    ]
    assert POLY not in topics(post(request("patient-view", "p-prn2", resources)))


def _without_timing(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k != "timing"}


@pytest.mark.parametrize(
    ("line", "fires"),
    [
        # Standing orders whose words are not about the line's own dose: they count.
        pytest.param(daily(2, text="Take 1 tablet by mouth at bedtime. May take an additional "
                           "1/2 tablet daily if needed for agitation"), True, id="extra-dose"),
        pytest.param(daily(2, text="2 mg by mouth nightly",
                           patientInstruction="Take every night. Call the clinic if needed."),
                     True, id="call-the-clinic"),
        pytest.param(daily(2, patientInstruction="If needed, contact your care team."), True,
                     id="if-needed-contact"),
        pytest.param(daily(2, text="2 mg nightly; do not use as needed", asNeededBoolean=False),
                     True, id="asNeededBoolean-false"),
        pytest.param(daily(2, text="PRN agitation", asNeeded=False), True,
                     id="r5-asNeeded-false-wins-over-words"),
        pytest.param(daily(2, text="2 mg nightly, not as needed \u2013 take every day"), True,
                     id="not-as-needed"),
        pytest.param(daily(2, text="Scheduled (non-PRN)"), True, id="non-prn"),
        # A second dose, a skipped dose, a cap on an extra amount, or a negation spelled as a
        # contraction: the scheduled dose stands.
        pytest.param(daily(2, text="Take 1 tablet nightly; may take a second tablet if needed "
                           "for agitation"), True, id="second-tablet"),
        pytest.param(daily(2, text="Take 1 tablet daily; skip dose if needed for oversedation"),
                     True, id="skip-dose"),
        pytest.param(daily(2, patientInstruction="Omit this dose if needed for drowsiness."),
                     True, id="omit-dose"),
        pytest.param(daily(2, text="Take 1 tablet daily, up to 2 tablets if needed"), True,
                     id="up-to-2-tablets"),
        pytest.param(daily(2, text="2 mg nightly; no more than 4 mg if needed"), True,
                     id="no-more-than-4-mg"),
        pytest.param(daily(2, text="Take 1 tablet daily - don't use as needed"), True,
                     id="dont-contraction"),
        pytest.param(daily(2, text="Take 1 tablet daily – don’t take PRN"), True,
                     id="dont-typographic-apostrophe"),
        pytest.param(daily(2, text="Take 1 tablet daily, dont use as needed"), True,
                     id="dont-without-apostrophe"),
        pytest.param(daily(2, text="Take 1 tablet daily. Do NOT take PRN"), True, id="do-not"),
        # Near misses: an extra dose with no structured schedule, and a line as needed itself
        # before a call: as needed, not counted.
        pytest.param(_without_timing(daily(2, text="May take an additional 1/2 tablet if "
                                            "needed for agitation")), False,
                     id="extra-dose-without-a-schedule"),
        pytest.param(daily(2, text="Take 1 tablet as needed for agitation. Call the clinic if "
                           "needed."), False, id="as-needed-and-a-call"),
        # Near misses of the repeat, cap and contraction: the line's own dose is as needed.
        pytest.param(daily(2, text="Take 1 tablet as needed for agitation. May repeat once in "
                           "1 hour if needed."), False, id="prn-then-may-repeat"),
        pytest.param(daily(2, text="Take 1 tablet up to 3 times daily as needed for agitation"),
                     False, id="up-to-3-times-is-a-prn-limit"),
        pytest.param(daily(2, text="Take up to 2 tablets at bedtime as needed for sleep"), False,
                     id="sig-opens-with-its-cap"),
        pytest.param(_without_timing(daily(2, text="Take 1 tablet. May repeat once if "
                                            "needed.")), False,
                     id="repeat-without-a-schedule"),
        pytest.param(_without_timing(daily(2, text="Take with food if needed")), False,
                     id="with-food-without-a-schedule"),
        pytest.param(daily(2, text="Don't skip meals; take 1 tablet PRN agitation"), False,
                     id="contraction-elsewhere"),
        # A repeat, or how the dose is taken, says nothing against as needed: a PRN dose is
        # repeated and taken with food too. Read as needed (not counted), a standing order so
        # worded is missed, where the other reading would count a drug the patient may not take.
        pytest.param(daily(2, text="Take 1 tablet at bedtime. May repeat once if needed."), False,
                     id="may-repeat-is-read-as-needed"),
        pytest.param(daily(2, text="Take 1 tablet daily. Take with food if needed for upset "
                           "stomach."), False, id="with-food-is-read-as-needed"),
        pytest.param(daily(2, text="Take 1 tablet by mouth with food every 8 hours as needed "
                           "for agitation"), False, id="prn-with-food"),
        pytest.param(daily(2, text="Take 1 tablet for agitation, may repeat once in 1 hour if "
                           "needed"), False, id="prn-may-repeat"),
        pytest.param(daily(2, text="1 tab at bedtime with a snack as needed for sleep"), False,
                     id="prn-with-a-snack"),
        # Negatives: as needed in words or by R5 asNeededFor.
        pytest.param(daily(2, text="1 tab PRN agitation"), False, id="prn-words"),
        pytest.param(daily(2, asNeededFor=[{"text": "agitation"}]), False, id="r5-asNeededFor"),
    ],
)
def test_sig_words_about_something_other_than_the_dose_leave_it_standing(
    post: Callable[[dict[str, Any]], Any], line: dict[str, Any], fires: bool
) -> None:
    resources = two_antipsychotics("p-sig")
    resources[1]["dosageInstruction"] = [line]
    assert (POLY in topics(post(request("patient-view", "p-sig", resources)))) is fires


# Every drug the polypharmacy card counted is listed, or counted in its last line -------------
_MORE = re.compile(r"^- and (\d+) more in the record$")
# Standing psychotropics, oldest first, as EHRs send them: a display-only RxNorm coding.
_PSYCHOTROPICS = [
    ("quetiapine 100 MG Oral Tablet", 100), ("risperidone 2 MG Oral Tablet", 2),
    ("sertraline 100 MG Oral Tablet", 100), ("24 HR venlafaxine 75 MG Extended Release Oral "
                                             "Capsule", 75),
    ("trazodone hydrochloride 100 MG Oral Tablet", 100), ("mirtazapine 15 MG Oral Tablet", 15),
    ("lorazepam 0.5 MG Oral Tablet", 1), ("zolpidem 5 MG Oral Tablet", 5),
    ("buspirone 10 MG Oral Tablet", 20), ("lithium carbonate 300 MG Oral Capsule", 600),
]


def _standing(pid: str, products: list[tuple[str, float]]) -> list[dict[str, Any]]:
    resources = []
    for n, (display, mg) in enumerate(products):
        resource = order(f"pp-{n}", pid, "sertraline100", authored=day(200 - 10 * n,
                                                                           "T10:00:00Z"),
                         dosage=[daily(mg)])
        resource["medicationCodeableConcept"] = {
            "coding": [{"system": RXNORM, "display": display}], "text": display,
        }
        resources.append(resource)
    return resources


def _listed_and_more(card: dict[str, Any]) -> tuple[list[str], int]:
    """The drugs the card's evidence lines name, and the count of its "and N more" line."""
    lines = [line for line in card["detail"].splitlines() if line.startswith("- ")]
    more = [int(m.group(1)) for m in map(_MORE.match, lines) if m]
    return [line[2:].split()[0] for line in lines if not _MORE.match(line)], sum(more)


@pytest.mark.parametrize(
    ("products", "count", "summary"),
    [
        # Five or six others and no antipsychotic (the list once kept only the last three or
        # two), and ten with two antipsychotics (more than the pattern lists: the card counts
        # the ten psychotropics, its summary names the two antipsychotics).
        pytest.param(_PSYCHOTROPICS[2:7], 5, "5 psychotropics", id="five-others"),
        pytest.param(_PSYCHOTROPICS[4:], 6, "6 psychotropics", id="six-others"),
        pytest.param(_PSYCHOTROPICS, 10, "2 antipsychotics", id="ten-with-two-antipsychotics"),
    ],
)
def test_the_polypharmacy_card_lists_or_counts_every_drug_it_counted(
    post: Callable[[dict[str, Any]], Any],
    products: list[tuple[str, float]],
    count: int,
    summary: str,
) -> None:
    body = request("patient-view", "p-many", _standing("p-many", products))
    cards = [c for c in post(body).get_json()["cards"] if c["source"]["topic"]["code"] == POLY]
    assert len(cards) == 1 and cards[0]["summary"].startswith(summary)
    listed, more = _listed_and_more(cards[0])
    assert len(set(listed)) == len(listed) and len(listed) + more == count
    # The most recent are the lines shown.
    assert listed[0] == products[-1][0].split()[0]


def test_four_psychotropics_and_a_non_psychotropic_are_no_polypharmacy(
    post: Callable[[dict[str, Any]], Any]
) -> None:
    """Near miss: one under the count, with a fifth standing order that is no psychotropic."""
    resources = _standing("p-four", _PSYCHOTROPICS[2:6])
    resources.append(order("pp-bp", "p-four", "lisinopril10", authored=day(20, "T10:00:00Z"),
                           dosage=[daily(10)]))
    assert POLY not in topics(post(request("patient-view", "p-four", resources)))


# Kind 7 -------------------------------------------------------------------------------------
def steps(*parts: tuple[int, float, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"sequence": seq, "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                                 **bounds}},
         "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg",
                                           "system": "http://unitsofmeasure.org", "code": "mg"}}]}
        for seq, mg, bounds in parts
    ]


def test_a_taper_by_durations_runs_to_its_last_step(
    table: IngredientTable, codes: CodeLists
) -> None:
    dosage = steps(
        (1, 200, {"boundsDuration": {"value": 7, "unit": "d"}}),
        (2, 100, {"boundsDuration": {"value": 14, "unit": "d"}}),
        (3, 50, {"boundsDuration": {"value": 14, "unit": "d"}}),
    )
    resource = order("t-1", "p", "quetiapine100", authored=day(10), dosage=dosage)
    course = map_record([resource], table, codes=codes).courses[0]
    assert course.start == TODAY.fromordinal(TODAY.toordinal() - 10)
    assert course.end == TODAY.fromordinal(TODAY.toordinal() - 10 + 35 - 1)
    assert is_current(course, TODAY)
    assert [dose_on(course, TODAY.fromordinal(TODAY.toordinal() - d)) for d in (10, 2, -20)] == [
        200.0, 100.0, 50.0,
    ]


def test_a_titration_whose_steps_have_all_ended_is_not_current(
    table: IngredientTable, codes: CodeLists
) -> None:
    dosage = steps(
        (1, 25, {"boundsPeriod": {"start": day(200), "end": day(194)}}),
        (2, 50, {"boundsPeriod": {"start": day(193), "end": day(100)}}),
    )
    course = map_record(
        [order("t-2", "p", "quetiapine25", authored=day(200), dosage=dosage)], table, codes=codes
    ).courses[0]
    assert course.daily_dose_mg == 50.0
    assert not is_current(course, TODAY)


# Kind 8 -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("2025-03-04T10:00:00-0500", (date(2025, 3, 4), date(2025, 3, 4))),
    ("2025-03-04 10:00:00", (date(2025, 3, 4), date(2025, 3, 4))),
    ("2025-03-04T10:00", (date(2025, 3, 4), date(2025, 3, 4))),
    ("20250304101500-0500", (date(2025, 3, 4), date(2025, 3, 4))),
    ("2025-02", (date(2025, 2, 1), date(2025, 2, 28))),
    ("2024", (date(2024, 1, 1), date(2024, 12, 31))),
    ("2025-02-30", None),
    ("March 4th", None),
])
def test_nearly_right_dates(value: str, expected: tuple[date, date] | None) -> None:
    assert parse_period(value) == expected


def test_space_separated_dates_keep_intolerances_in_the_window(
    post: Callable[[dict[str, Any]], Any]
) -> None:
    resources = three_intolerances("p-dates")
    for resource in resources:
        resource["recordedDate"] = resource["recordedDate"].replace("T", " ").replace(
            "Z", " -0500")
    assert INTOL in topics(post(request("patient-view", "p-dates", resources)))


def test_an_undated_active_order_is_not_current(post: Callable[[dict[str, Any]], Any]) -> None:
    resources = two_antipsychotics("p-undated")
    del resources[0]["authoredOn"]
    assert POLY not in topics(post(request("patient-view", "p-undated", resources)))


def test_a_partial_end_date_keeps_the_course_to_the_end_of_that_month(
    table: IngredientTable, codes: CodeLists
) -> None:
    dosage = [{**daily(100), "timing": {"repeat": {
        "frequency": 1, "period": 1, "periodUnit": "d", "boundsPeriod": {"end": "2026-11"}}}}]
    course = map_record([order("pe", "p", "quetiapine100", authored="2026-06", dosage=dosage)],
                        table, codes=codes).courses[0]
    assert (course.start, course.end) == (date(2026, 6, 1), date(2026, 11, 30))


def _stopped_for_intolerance(pid: str, start: str, end: str, rtype: str) -> dict[str, Any]:
    """Quetiapine stopped for suspected intolerance, its dates as given (partial or full)."""
    reason = {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason",
        "code": "sintol", "display": "Suspected intolerance"}]}
    if rtype == "MedicationStatement":
        return {"resourceType": "MedicationStatement", "id": "ms-q", "status": "stopped",
                "subject": {"reference": f"Patient/{pid}"},
                "medicationCodeableConcept": concept("quetiapine100"),
                "effectivePeriod": {"start": start, "end": end}, "statusReason": [reason]}
    dosage = [{**daily(100), "timing": {"repeat": {
        "frequency": 1, "period": 1, "periodUnit": "d",
        "boundsPeriod": {"start": start, "end": end}}}}]
    return order("mr-q", pid, "quetiapine100", authored=start, dosage=dosage, status="stopped",
                 statusReason=reason)


@pytest.mark.parametrize("rtype", ["MedicationRequest", "MedicationStatement"])
@pytest.mark.parametrize(("start", "end", "fires"), [
    # The window opens 2024-11-30: a stop in "2024" or "2024-11" may have been before it.
    ("2024", "2024", False),
    ("2024-03", "2024-11", False),
    # It may not: the first day of the end's period is in the window, or the start is.
    ("2024-06", "2024-12", True),
    ("2024-12-10", "2024", True),
    ("2024-06", "2025", True),
])
def test_a_partial_end_dates_a_stop_for_intolerance_by_its_first_day(
    post: Callable[[dict[str, Any]], Any], rtype: str, start: str, end: str, fires: bool
) -> None:
    pid = f"p-partial-{rtype[10:].lower()}-{start}-{end}"
    resources = [*three_intolerances(pid)[:2], _stopped_for_intolerance(pid, start, end, rtype)]
    assert (INTOL in topics(post(request("patient-view", pid, resources)))) is fires


def test_a_partial_end_keeps_the_course_end_and_dates_the_event_from_the_start(
    table: IngredientTable, codes: CodeLists
) -> None:
    record = map_record([_stopped_for_intolerance("p", "2024-06", "2024", "MedicationRequest")],
                        table, codes=codes)
    assert record.courses[0].end == date(2024, 12, 31)  # a course ends on the last day
    assert record.intolerances[0].when == date(2024, 6, 1)  # the event: not before the start


@pytest.mark.parametrize(("reaction_onset", "fires"), [
    # The window opens 2024-11-30; the record was entered 20 days ago. The reaction's own onset
    # dates it, by the first day it names: "2024" or "2024-11" may be before the window.
    ("2024", False),
    ("2024-11", False),
    ("2024-12", True),
    (day(60), True),
    (None, True),  # no onset at all: the recorded date is all the record gives
])
def test_a_reactions_own_onset_dates_it_before_the_recorded_date(
    post: Callable[[dict[str, Any]], Any], reaction_onset: str | None, fires: bool
) -> None:
    pid = f"p-reaction-onset-{reaction_onset}"
    resources = three_intolerances(pid)
    resources[2]["recordedDate"] = day(20)
    if reaction_onset is not None:
        resources[2]["reaction"][0]["onset"] = reaction_onset
    assert (INTOL in topics(post(request("patient-view", pid, resources)))) is fires


def _stopped_without_end(pid: str, shape: str, start: str) -> dict[str, Any]:
    """Quetiapine stopped for nausea, with a start (``shape``: the order's authoredOn, the
    statement's effectiveDateTime or effectivePeriod.start) and no end; a statement asserted
    10 days ago."""
    reason = [{"text": "nausea"}]
    if shape == "order":
        return order("mr-q", pid, "quetiapine100", authored=start, dosage=[daily(100)],
                     status="stopped", statusReason=reason)
    effective = ({"effectiveDateTime": start} if shape == "effectiveDateTime"
                 else {"effectivePeriod": {"start": start}})
    return {"resourceType": "MedicationStatement", "id": "ms-q", "status": "stopped",
            "subject": {"reference": f"Patient/{pid}"},
            "medicationCodeableConcept": concept("quetiapine100"), **effective,
            "statusReason": reason, "dateAsserted": day(10)}


@pytest.mark.parametrize("shape", ["order", "effectiveDateTime", "effectivePeriod"])
@pytest.mark.parametrize(("start", "fires"), [
    # A stop without an end is dated by the start, the earliest day the record allows: not by a
    # statement's recent dateAsserted (orders and statements agree).
    ("2024", False),
    ("2024-02-01", False),
    ("2024-11-29", False),
    ("2024-12", True),
    ("2025-06-01", True),
])
def test_a_stop_without_an_end_is_dated_by_its_start_for_orders_and_statements(
    post: Callable[[dict[str, Any]], Any], shape: str, start: str, fires: bool
) -> None:
    pid = f"p-stop-noend-{shape}-{start}"
    resources = [*three_intolerances(pid)[:2], _stopped_without_end(pid, shape, start)]
    assert (INTOL in topics(post(request("patient-view", pid, resources)))) is fires


def test_a_statement_with_no_effective_date_is_dated_by_date_asserted(
    table: IngredientTable, codes: CodeLists
) -> None:
    statement = _stopped_without_end("p", "effectiveDateTime", "2024")
    del statement["effectiveDateTime"]
    record = map_record([statement], table, codes=codes)
    assert record.intolerances[0].when == date.fromisoformat(day(10))


SINTOL = {"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason",
    "code": "sintol", "display": "Suspected intolerance"}]}


def _quetiapine_restart(pid: str, status: str, reason: dict[str, Any] | None) -> dict[str, Any]:
    """Quetiapine restarted 60 days ago (after its reaction 100 days ago), now ``status``."""
    extra: dict[str, Any] = {"statusReason": reason} if reason is not None else {}
    return order("mr-q2", pid, "quetiapine100", authored=day(60), dosage=[daily(100)],
                 status=status, **extra)


@pytest.mark.parametrize(("status", "reason", "fires"), [
    # a rechallenge held (or stopped) for an intolerance was not tolerated
    ("on-hold", SINTOL, True),
    ("on-hold", {"text": "Held: nausea again"}, True),
    ("stopped", SINTOL, True),
    # a rechallenge still taken, or held for another reason, was tolerated
    ("active", None, False),
    ("on-hold", {"text": "Held for surgery"}, False),
])
def test_a_rechallenge_held_for_intolerance_is_no_tolerated_rechallenge(
    post: Callable[[dict[str, Any]], Any], status: str, reason: dict[str, Any] | None,
    fires: bool,
) -> None:
    pid = f"p-rechallenge-{status}-{fires}-{'text' in (reason or {})}"
    resources = [*three_intolerances(pid), _quetiapine_restart(pid, status, reason)]
    assert (INTOL in topics(post(request("patient-view", pid, resources)))) is fires


@pytest.mark.parametrize(("reason", "fires"), [
    (SINTOL, True),  # an order put on hold for suspected intolerance documents one
    ({"text": "On hold - patient in hospital"}, False),
    (None, False),
])
def test_an_order_held_for_intolerance_is_intolerance_evidence(
    post: Callable[[dict[str, Any]], Any], reason: dict[str, Any] | None, fires: bool
) -> None:
    pid = f"p-held-{fires}-{reason is None}"
    resources = [*three_intolerances(pid)[:2], _quetiapine_restart(pid, "on-hold", reason)]
    assert (INTOL in topics(post(request("patient-view", pid, resources)))) is fires


# Kinds 9 and 10 -----------------------------------------------------------------------------
def test_draft_with_a_medication_referenced_by_urn_uuid_is_classified(
    table: IngredientTable, codes: CodeLists
) -> None:
    draft = order("d-urn", "p", "sertraline50", authored=day(0), status="draft")
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": "urn:uuid:8d1e-med"}
    bundle = {"resourceType": "Bundle", "entry": [
        {"fullUrl": "urn:uuid:8d1e-order", "resource": draft},
        {"fullUrl": "urn:uuid:8d1e-med", "resource": {
            "resourceType": "Medication", "code": concept("sertraline100")}},
    ]}
    drafts, issues = map_draft_orders(bundle, table, codes=codes, patient_id="p")
    assert [i.name for i in drafts[0].ingredients] == ["sertraline"]
    assert drafts[0].daily_dose_mg == 100.0
    assert issues == ()


def test_draft_with_a_medication_that_came_with_the_prefetch_is_classified(
    table: IngredientTable, codes: CodeLists
) -> None:
    """A Medication the EHR sent once, with the patient's orders (``_include``), is not fetched
    again: the draft that references it reads it from there."""
    draft = order("d-inc", "p", "sertraline50", authored=day(0), status="draft")
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": "Medication/m-sert100"}
    medication = {"resourceType": "Medication", "id": "m-sert100",
                  "code": concept("sertraline100")}
    prefetch = [{"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": order("mr-1", "p", "quetiapine100", authored=day(40))},
        {"resource": medication, "search": {"mode": "include"}},
    ]}]
    bundle = {"resourceType": "Bundle", "entry": [{"resource": draft}]}
    alone, issues = map_draft_orders(bundle, table, codes=codes, patient_id="p")
    assert alone[0].ingredients == () and [i.reason for i in issues] == [
        "medication not available"
    ]
    drafts, issues = map_draft_orders(bundle, table, codes=codes, patient_id="p",
                                      history=prefetch)
    assert [i.name for i in drafts[0].ingredients] == ["sertraline"]
    assert drafts[0].daily_dose_mg == 100.0
    assert issues == ()


@pytest.mark.parametrize(("value", "unit", "mg"), [
    (2, None, 100.0), (1, None, 50.0), (2, "TAB", 100.0), (0.5, "{tablet}", 25.0),
])
def test_unitless_doses_are_counts_of_the_product(
    table: IngredientTable, codes: CodeLists, value: float, unit: str | None, mg: float
) -> None:
    resource = order("ul", "p", "sertraline50", authored=day(5), dosage=[daily(value, unit)])
    record = map_record([resource], table, codes=codes)
    assert record.courses[0].daily_dose_mg == mg
    assert record.issues == ()


def test_a_dose_increase_written_as_tablet_counts_is_an_escalation(
    post: Callable[[dict[str, Any]], Any]
) -> None:
    pid = "p-count"
    resources = [
        order("c-1", pid, "sertraline50", authored=day(150, "T10:00:00Z"), status="completed",
              dosage=[{**daily(1, None), "timing": {"repeat": {
                  "frequency": 1, "period": 1, "periodUnit": "d",
                  "boundsPeriod": {"start": day(150), "end": day(60)}}}}]),
        order("c-2", pid, "sertraline50", authored=day(60, "T10:00:00Z"),
              dosage=[daily(2, None)]),
        order("c-3", pid, "aripiprazole10", authored=day(30, "T10:00:00Z"),
              dosage=[daily(1, None)]),
    ]
    assert "regimen-escalation" in topics(post(request("patient-view", pid, resources)))


# Kind 14 ------------------------------------------------------------------------------------
def test_a_renewal_at_the_same_dose_is_not_another_agent(
    post: Callable[[dict[str, Any]], Any]
) -> None:
    pid = "p-renew"
    current = order("mr-1", pid, "fluoxetine20", authored=day(80, "T10:00:00Z"),
                    dosage=[daily(20)])
    renewal = order("d-1", pid, "fluoxetine20", authored=day(0), status="draft",
                    dosage=[daily(20)],
                    priorPrescription={"reference": "https://ehr.example.test/fhir/r4/"
                                                    "MedicationRequest/mr-1"})
    body = request("order-sign", pid, [current, *three_intolerances(pid)], drafts=[renewal])
    assert INTOL not in topics(post(body))


# A dose change of a drug taken now (here an increase) starts no other agent: the card's advice
# is "before another new agent", so only a new ingredient concerns it.
@pytest.mark.parametrize(
    ("product", "mg", "fires"), [("fluoxetine20", 40, False), ("aripiprazole10", 10, True)]
)
def test_only_a_new_agent_is_an_order_that_matters(
    post: Callable[[dict[str, Any]], Any], product: str, mg: float, fires: bool
) -> None:
    pid = "p-renew2"
    current = order("mr-1", pid, "fluoxetine20", authored=day(80, "T10:00:00Z"),
                    dosage=[daily(20)])
    draft = order("d-1", pid, product, authored=day(0), status="draft", dosage=[daily(mg)])
    body = request("order-sign", pid, [current, *three_intolerances(pid)], drafts=[draft])
    assert (INTOL in topics(post(body))) is fires


def _select(post: Callable[[dict[str, Any]], Any], selections: list[str]) -> list[str]:
    pid = "p-select"
    lisinopril = order("d-lis", pid, "lisinopril10", authored=day(0), status="draft")
    fluoxetine = order("d-flx", pid, "fluoxetine20", authored=day(0), status="draft",
                       dosage=[daily(20)])
    body = request("order-select", pid, three_intolerances(pid),
                   drafts=[lisinopril, fluoxetine], selections=selections)
    response = post(body)
    assert response.status_code == 200
    return topics(response)


def test_order_select_judges_only_the_selected_orders(
    post: Callable[[dict[str, Any]], Any]
) -> None:
    assert _select(post, ["MedicationRequest/d-lis"]) == []
    assert INTOL in _select(post, ["MedicationRequest/d-flx"])


def test_order_select_with_selections_naming_no_draft_judges_them_all(
    audited_post: Callable[[dict[str, Any]], Any], rw_app: Flask
) -> None:
    assert INTOL in _select(audited_post, ["MedicationRequest/unknown"])
    rows = audit_rows(rw_app)
    assert "names no draft order" in rows[-1]["data_quality"]


# A dose change of a drug taken now is no "another new agent", however it is written.
def _taper_step(rid: str, pid: str, mg: float, first: int, days: int) -> dict[str, Any]:
    return order(rid, pid, "fluoxetine20", authored=day(0), status="draft", dosage=[daily(
        mg, timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                               "boundsPeriod": {"start": day(-first), "end": day(-first - days)}}},
    )])


@pytest.mark.parametrize(
    "plan", ["decrease-prior", "decrease-new-order", "taper-off", "stop-and-start", "new-agent"]
)
def test_only_a_draft_of_a_drug_not_taken_now_is_another_agent(
    post: Callable[[dict[str, Any]], Any], plan: str
) -> None:
    """Fluoxetine 40 mg taken now, intolerances of three other classes: lowering or tapering it
    off (one order replacing it, a new order beside it, or dated steps) starts no new agent, so
    no card at order-sign; stopping it and starting aripiprazole, or adding aripiprazole, does."""
    pid = f"p-ri-{plan}"
    current = order("mr-flx", pid, "fluoxetine20", authored=day(60, "T10:00:00Z"),
                    dosage=[daily(40)])
    prior = {"priorPrescription": {"reference": "MedicationRequest/mr-flx"}}
    lower = order("d-1", pid, "fluoxetine20", authored=day(0), status="draft", dosage=[daily(20)])
    new = order("d-2", pid, "aripiprazole10", authored=day(0), status="draft",
                dosage=[daily(10)])
    drafts = {
        "decrease-prior": [{**lower, **prior}],
        "decrease-new-order": [lower],
        "taper-off": [{**_taper_step("t-1", pid, 20, 0, 14), **prior},
                      _taper_step("t-2", pid, 10, 14, 14)],
        "stop-and-start": [{**current, "status": "stopped"}, new],
        "new-agent": [new],
    }[plan]
    body = request("order-sign", pid, [current, *three_intolerances(pid)], drafts=drafts)
    assert (INTOL in topics(post(body))) is (plan in {"stop-and-start", "new-agent"})
