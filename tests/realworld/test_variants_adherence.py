"""nonadherence on fills, orders and statements as EHRs send them (the adherence probe's kinds).

Realistic R4 JSON (``tests.realworld.builders``: searchset-shaped, RxNorm SCD codings, UCUM
doses, dated back from 2026-11-30), mapped by ``map_record`` and judged by
``nonadherence.detect`` with the thresholds of config/default.yaml; the draft-order and card
wording cases go through the service. Answers follow clinical-review.md (PQA PDC >= 0.80 from
fills with a known days' supply, per ingredient) and the rule that a missing datum is missing,
never evidence: where the data cannot support a finding the pattern abstains (``NotEvaluable``
with a reason), and only days the drug was prescribed can be days without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns.abstention import NotEvaluable
from cds_service.patterns.base import Finding
from cds_service.patterns.nonadherence import PATTERN_ID, detect
from fhir_mappers import map_record
from tests.patterns.builders import defaults
from tests.realworld.builders import (
    ACT_CODE,
    EPIC_CLASS,
    concept,
    daily,
    day,
    dispense,
    encounter,
    order,
    request,
)
from tests.realworld.conftest import CASES_NOW, audit_rows, topics

NOW = CASES_NOW.date()
DEFAULTS = defaults(PATTERN_ID)
TABLE = load_ingredient_table()
CODES = load_code_lists()
MONTHLY = (150, 120, 90, 60, 30, 0)  # 30-day fills every 30 days: every day covered
UCUM = "http://unitsofmeasure.org"
Post = Callable[[dict[str, Any]], Any]


def sertraline_order(pid: str, authored: int = 200, **extra: Any) -> dict[str, Any]:
    dosage = extra.pop("dosage", [daily(50)])
    return order("mr-s", pid, "sertraline50", authored=day(authored, "T10:00:00Z"),
                 dosage=dosage, **extra)


def bounded_order(
    rid: str, pid: str, *, start: int, end: int | None, status: str, **extra: Any
) -> dict[str, Any]:
    """A sertraline 50 mg daily order running from ``start`` to ``end`` days ago (no end date
    when ``end`` is None), as Epic writes a discontinued or completed order."""
    bounds: dict[str, Any] = {"start": day(start)}
    if end is not None:
        bounds["end"] = day(end)
    line = daily(50) | {"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                              "boundsPeriod": bounds}}}
    return order(rid, pid, "sertraline50", authored=day(start, "T10:00:00Z"), dosage=[line],
                 status=status, **extra)


def link(rid: str) -> dict[str, Any]:
    return {"authorizingPrescription": [{"reference": f"MedicationRequest/{rid}"}]}


def fills(
    pid: str, days_ago: tuple[int, ...], *, product: str = "sertraline50", prefix: str = "md",
    supply: float | None = 30, **extra: Any,
) -> list[dict[str, Any]]:
    return [
        dispense(f"{prefix}-{n}", pid, product, day(ago, "T15:00:00Z"), days=supply, **extra)
        for n, ago in enumerate(days_ago)
    ]


def statement(rid: str, pid: str, *, status: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationStatement", "id": rid, "status": status,
            "subject": {"reference": f"Patient/{pid}"},
            "medicationCodeableConcept": concept("sertraline50"), **extra}


def draft(rid: str, pid: str, product: str, dosage: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": rid, "status": "draft", "intent": "order",
            "subject": {"reference": f"Patient/{pid}"},
            "medicationCodeableConcept": concept(product), "authoredOn": day(0),
            "dosageInstruction": dosage}


def as_needed(mg: float) -> dict[str, Any]:
    return daily(mg) | {"asNeededBoolean": True}


def evaluate(
    resources: list[dict[str, Any]], incomplete: frozenset[str] = frozenset()
) -> Finding | NotEvaluable | None:
    record = map_record(resources, TABLE, codes=CODES)
    return detect(dataclasses.replace(record, incomplete=incomplete), (), DEFAULTS, NOW)


def abstains(result: Finding | NotEvaluable | None, words: str) -> bool:
    return isinstance(result, NotEvaluable) and words in result.reason


GAPPY = (150, 90, 30)  # three 30-day fills in 151 days: PDC 0.60


# Kind 1: pharmacy data that did not arrive in full ----------------------------------------
@pytest.mark.parametrize(
    "fill_days",
    [pytest.param(GAPPY, id="low-pdc"), pytest.param((150,), id="one-fill-long-lapsed"),
     pytest.param((), id="no-fill-on-record")],
)
def test_fills_rules_abstain_when_dispenses_did_not_arrive_in_full(
    fill_days: tuple[int, ...],
) -> None:
    pid = "p-inc"
    resources = [sertraline_order(pid), *fills(pid, fill_days)]
    result = evaluate(resources, frozenset({"MedicationDispense"}))
    assert abstains(result, "MedicationDispense data did not arrive in full")


def test_the_fills_rule_fires_when_only_other_data_is_incomplete() -> None:
    pid = "p-inc-other"
    resources = [sertraline_order(pid), *fills(pid, GAPPY)]
    assert isinstance(evaluate(resources, frozenset({"Observation"})), Finding)


@pytest.mark.parametrize(
    "incomplete", ["MedicationDispense", "MedicationRequest", "MedicationStatement"]
)
def test_a_not_taken_statement_is_not_evaluable_when_what_supersedes_it_is_incomplete(
    incomplete: str,
) -> None:
    # The statement stands only if no later fill, order or active statement superseded it:
    # with fills, orders or statements arrived in part, that is unknown.
    pid = "p-inc-stmt"
    said = statement("ms-1", pid, status="not-taken", effectiveDateTime=day(20, "T09:00:00Z"),
                     statusReason=[{"text": "Patient reports forgetting doses"}])
    result = evaluate([sertraline_order(pid), said], frozenset({incomplete}))
    assert abstains(result, f"{incomplete} data did not arrive in full")


def test_a_not_taken_statement_stands_when_only_other_data_is_incomplete() -> None:
    pid = "p-inc-stmt-other"
    said = statement("ms-1", pid, status="not-taken", effectiveDateTime=day(20, "T09:00:00Z"),
                     statusReason=[{"text": "Patient reports forgetting doses"}])
    result = evaluate([sertraline_order(pid), said], frozenset({"Observation"}))
    assert isinstance(result, Finding)
    assert (result.facts["not_taken"], result.facts["pdc"]) == (True, None)
    assert result.evidence_keys == {"not-taken:sertraline"}


# Kind 2: a gap the prescriber made ---------------------------------------------------------
def test_a_stop_and_restart_by_the_prescriber_is_not_a_gap() -> None:
    # Stopped on a dated end 105 days ago, restarted 30 days ago; every prescribed day covered.
    pid = "p-restart"
    resources = [
        bounded_order("mr-1", pid, start=200, end=105, status="stopped",
                      statusReason={"text": "Stable; planned trial off medication"}),
        sertraline_order(pid, authored=30, id="mr-2"),
        *fills(pid, (170, 140, 110), **link("mr-1")),
        *fills(pid, (30, 0), prefix="md-r", **link("mr-2")),
    ]
    assert evaluate(resources) is None


def test_a_restart_not_yet_filled_after_a_completed_course_is_not_a_gap() -> None:
    pid = "p-restart-new"
    resources = [
        bounded_order("mr-1", pid, start=200, end=100, status="completed"),
        sertraline_order(pid, authored=5, id="mr-2"),
        *fills(pid, (170, 140, 110), **link("mr-1")),
    ]
    assert evaluate(resources) is None


@pytest.mark.parametrize(
    ("restart", "fires"),
    [
        # The restart 30 days after the dated end (continuation_gap_days 30): one episode of use,
        # so the 30 days between count, and with 5 more uncovered days the PDC is 141/177.
        pytest.param(110, True, id="renewal-gap-30-days-one-episode"),
        # 31 days after it: a new episode, measured from the restart (every day covered).
        pytest.param(109, False, id="restart-gap-31-days-new-episode"),
    ],
)
def test_the_continuation_gap_decides_what_is_a_restart(restart: int, fires: bool) -> None:
    pid = "p-gap"
    resources = [
        bounded_order("mr-1", pid, start=200, end=140, status="completed"),
        sertraline_order(pid, authored=restart, id="mr-2"),
        *fills(pid, (176,), **link("mr-1")),
        *fills(pid, tuple(restart - 30 * n for n in range(4)), prefix="md-r", **link("mr-2")),
    ]
    result = evaluate(resources)
    assert isinstance(result, Finding) if fires else result is None


def test_a_gap_after_the_restart_still_fires() -> None:
    # Restarted 170 days ago after a dated stop, then refilled with gaps: PDC 0.60 since.
    pid = "p-restart-gappy"
    resources = [
        bounded_order("mr-1", pid, start=400, end=250, status="stopped"),
        sertraline_order(pid, authored=150, id="mr-2"),
        *fills(pid, GAPPY, **link("mr-2")),
    ]
    result = evaluate(resources)
    assert isinstance(result, Finding)
    assert result.facts["pdc"] == 0.59


def test_an_undated_stop_before_a_restart_abstains_when_the_finding_depends_on_it() -> None:
    # The first order was stopped on a date not recorded: were the 80 days before the restart
    # prescribed? Counted, the PDC is 0.71; left out, two fills since the restart are too few
    # days to measure. The answer turns on the missing date.
    pid = "p-undated-stop"
    resources = [
        bounded_order("mr-1", pid, start=200, end=None, status="stopped"),
        sertraline_order(pid, authored=30, id="mr-2"),
        *fills(pid, (170, 140, 110), **link("mr-1")),
        *fills(pid, (30, 0), prefix="md-r", **link("mr-2")),
    ]
    assert abstains(evaluate(resources), "ended on a date not recorded")


def test_a_planned_course_that_ended_is_no_lapse_at_order_sign(post: Post) -> None:
    # A 30-day course (bounds 170..140 days ago), filled once, completed as planned; signing it
    # again now. Its supply "running out" 140 days ago is the planned end.
    pid = "p-course"
    body = request(
        "order-sign", pid,
        [bounded_order("mr-1", pid, start=170, end=140, status="completed"),
         *fills(pid, (170,), **link("mr-1"))],
        drafts=[draft("draft-1", pid, "sertraline50", [daily(50)])],
    )
    assert PATTERN_ID not in topics(post(body))


def test_an_open_course_with_one_long_lapsed_fill_still_fires(post: Post) -> None:
    pid = "p-course-open"
    body = request("patient-view", pid, [sertraline_order(pid, authored=170),
                                         *fills(pid, (170,), **link("mr-s"))])
    assert PATTERN_ID in topics(post(body))


# Kind 3: an order on hold --------------------------------------------------------------------
@pytest.mark.parametrize(("status", "fires"), [("on-hold", False), ("active", True)])
def test_an_order_on_hold_is_not_judged(
    status: str, fires: bool, audited_post: Post, rw_app: Flask
) -> None:
    pid = f"p-hold-{status}"
    held = order("mr-h", pid, "sertraline50", authored=day(200, "T10:00:00Z"), status=status,
                 statusReason={"text": "Held - hyponatraemia, sodium 128 mmol/L, recheck"})
    body = request("patient-view", pid, [held, *fills(pid, (170, 140, 110), **link("mr-h"))])
    assert (PATTERN_ID in topics(audited_post(body))) is fires
    # No finding, not an abstention: a hold is the prescriber's decision, not missing data.
    rows = [r for r in audit_rows(rw_app) if r["pattern"] == PATTERN_ID]
    assert [r["disposition"] for r in rows] == (["shown"] if fires else [])


# Kind 4: as-needed use ------------------------------------------------------------------------
@pytest.mark.parametrize("hook", ["order-sign", "order-select"])
def test_an_as_needed_draft_never_fires(hook: str, post: Post) -> None:
    pid = f"p-prn-{hook}"
    history = order("mr-q", pid, "quetiapine25", authored=day(200, "T10:00:00Z"),
                    dosage=[as_needed(25)])
    body = request(
        hook, pid,
        [history, *fills(pid, (170, 100, 20), product="quetiapine25", **link("mr-q"))],
        drafts=[draft("draft-q", pid, "quetiapine25", [as_needed(25)])],
        **({"selections": ["MedicationRequest/draft-q"]} if hook == "order-select" else {}),
    )
    assert PATTERN_ID not in topics(post(body))


def test_fills_of_an_as_needed_order_are_not_measured_for_a_standing_draft(post: Post) -> None:
    pid = "p-prn-standing"
    history = order("mr-q", pid, "quetiapine25", authored=day(200, "T10:00:00Z"),
                    dosage=[as_needed(25)])
    body = request(
        "order-sign", pid,
        [history, *fills(pid, (170, 100, 20), product="quetiapine25", **link("mr-q"))],
        drafts=[draft("draft-q", pid, "quetiapine25", [daily(50)])],
    )
    assert PATTERN_ID not in topics(post(body))


def test_fills_of_a_standing_order_still_count_beside_an_as_needed_one(post: Post) -> None:
    pid = "p-prn-mixed"
    standing = order("mr-q", pid, "quetiapine25", authored=day(200, "T10:00:00Z"),
                     dosage=[daily(25)])
    body = request("patient-view", pid,
                   [standing, *fills(pid, GAPPY, product="quetiapine25", **link("mr-q"))])
    assert PATTERN_ID in topics(post(body))


def test_an_early_as_needed_fill_does_not_open_the_standing_period() -> None:
    # As-needed quetiapine filled 170 days ago; a standing order from 60 days ago, filled on
    # time. Measured from the as-needed fill the PDC would be 0.53.
    pid = "p-prn-early"
    resources = [
        order("mr-prn", pid, "quetiapine25", authored=day(200, "T10:00:00Z"), status="stopped",
              dosage=[as_needed(25)]),
        order("mr-q", pid, "quetiapine25", authored=day(60, "T10:00:00Z"), dosage=[daily(25)]),
        *fills(pid, (170,), product="quetiapine25", prefix="md-p", **link("mr-prn")),
        *fills(pid, (60, 30, 0), product="quetiapine25", **link("mr-q")),
    ]
    assert evaluate(resources) is None


# Kind 5: not-taken statements -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("reason", "fires"),
    [
        pytest.param({"coding": [{"system": "http://snomed.info/sct", "code": "182840001",
                                  "display": "Drug treatment stopped - medical advice"}]},
                     False, id="coded-medical-advice"),
        pytest.param({"coding": [{"system": "http://example.org/local-reasons", "code": "H1",
                                  "display": "Held by prescriber (pre-ECT)"}]},
                     False, id="worded-held-by-prescriber"),
        pytest.param({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                            "medicationrequest-status-reason", "code": "surg"}]},
                     False, id="coded-scheduled-for-surgery"),
        pytest.param({"coding": [{"system": "http://example.org/local-reasons", "code": "F1",
                                  "display": "Patient reports forgetting doses"}]},
                     True, id="patient-forgets"),
        pytest.param({"text": "Held by prescriber until after ECT"}, False, id="text-only-hold"),
        pytest.param({"text": "Patient forgets doses"}, True, id="text-only-forgets"),
    ],
)
def test_a_prescribers_hold_is_not_nonadherence(reason: dict[str, Any], fires: bool) -> None:
    pid = "p-held"
    said = statement("ms-1", pid, status="not-taken", effectiveDateTime=day(10, "T09:00:00Z"),
                     statusReason=[reason])
    result = evaluate([sertraline_order(pid), said, *fills(pid, MONTHLY)])
    assert isinstance(result, Finding) if fires else result is None


def test_stu3_taken_n_with_a_coded_doctors_advice_is_not_nonadherence() -> None:
    pid = "p-stu3"
    said = statement("ms-1", pid, status="active", taken="n",
                     effectiveDateTime=day(12, "T09:00:00Z"),
                     reasonNotTaken=[{"coding": [{"system": "http://snomed.info/sct",
                                                  "code": "182840001"}]}])
    assert evaluate([sertraline_order(pid), said, *fills(pid, MONTHLY)]) is None


@pytest.mark.parametrize(
    ("later_fills", "stands"),
    [pytest.param((140, 110), False, id="two-later-fills"),
     # One refill alone (perhaps automatic) does not show the drug is taken again.
     pytest.param((140,), True, id="one-later-fill")],
)
def test_later_fills_supersede_a_not_taken_statement(
    later_fills: tuple[int, ...], stands: bool
) -> None:
    pid = "p-superseded"
    said = statement("ms-1", pid, status="not-taken", effectiveDateTime=day(150, "T09:00:00Z"),
                     statusReason=[{"text": "Patient stopped on own"}])
    result = evaluate([sertraline_order(pid), said, *fills(pid, later_fills)])
    # Both fill histories have gaps of their own; the statement counts only while it stands.
    assert isinstance(result, Finding)
    assert result.facts["not_taken"] is stands


def test_on_time_fills_after_a_not_taken_statement_leave_nothing_to_flag() -> None:
    pid = "p-superseded-all"
    said = statement("ms-1", pid, status="not-taken", effectiveDateTime=day(150, "T09:00:00Z"),
                     statusReason=[{"text": "Patient stopped on own"}])
    resources = [sertraline_order(pid), said, *fills(pid, (140, 110, 80, 50, 20, 0))]
    assert evaluate(resources) is None


def test_a_later_order_supersedes_a_not_taken_statement() -> None:
    pid = "p-reordered"
    said = statement("ms-1", pid, status="not-taken", effectiveDateTime=day(40, "T09:00:00Z"))
    assert evaluate([sertraline_order(pid, authored=20), said]) is None


@pytest.mark.parametrize(("asserted", "fires"), [(1100, False), (20, True)])
def test_a_statement_dated_only_by_date_asserted_is_dated_by_it(
    asserted: int, fires: bool
) -> None:
    pid = "p-asserted"
    said = statement("ms-1", pid, status="not-taken", dateAsserted=day(asserted, "T09:00:00Z"))
    result = evaluate([sertraline_order(pid), said])
    assert isinstance(result, Finding) if fires else result is None


def test_an_undated_statement_contradicted_by_fills_abstains() -> None:
    pid = "p-undated-stmt"
    said = statement("ms-1", pid, status="not-taken")
    result = evaluate([sertraline_order(pid), said, *fills(pid, MONTHLY)])
    assert abstains(result, "not-taken statement(s) have no date")
    # With no fills to contradict it, it is still the latest word.
    assert isinstance(evaluate([sertraline_order(pid), said]), Finding)


# Kind 6: a days' supply derived from the wrong data -------------------------------------------
@pytest.mark.parametrize(
    ("quantity", "derived"),
    [
        pytest.param({"value": 1, "unit": "bottle", "code": "BOT", "system":
                      "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"},
                     False, id="one-bottle"),
        pytest.param({"value": 2, "unit": "pack"}, False, id="two-packs"),
        pytest.param({"value": 30, "unit": "tablet", "code": "TAB", "system":
                      "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"},
                     True, id="thirty-tablets"),
        pytest.param({"value": 30}, True, id="a-bare-count"),
    ],
)
def test_a_quantity_in_another_unit_than_the_dose_derives_no_supply(
    quantity: dict[str, Any], derived: bool
) -> None:
    pid = "p-units"
    resources = [sertraline_order(pid),
                 *fills(pid, MONTHLY, supply=None, quantity=1, **link("mr-s"))]
    for fill in resources[1:]:
        fill["quantity"] = quantity
    result = evaluate(resources)
    assert result is None if derived else abstains(result, "no days' supply")


@pytest.mark.parametrize(("authorizing", "derived"), [("mr-lis", False), ("mr-s", True)])
def test_an_order_of_another_drug_does_not_size_a_fill(authorizing: str, derived: bool) -> None:
    pid = "p-lisinopril"
    lisinopril = order("mr-lis", pid, "lisinopril10", authored=day(200, "T10:00:00Z"),
                       dosage=[daily(2, "{tbl}")])
    resources = [sertraline_order(pid), lisinopril,
                 *fills(pid, MONTHLY, supply=None, **link(authorizing))]
    result = evaluate(resources)
    assert result is None if derived else abstains(result, "no days' supply")


# Kind 7: fills handed over with an unknown or missing status ----------------------------------
@pytest.mark.parametrize("status", ["unknown", None])
def test_fills_of_unknown_status_make_the_pdc_not_evaluable(status: str | None) -> None:
    pid = "p-status"
    resources = [sertraline_order(pid), *fills(pid, MONTHLY)]
    for fill in resources[2:5]:
        if status is None:
            del fill["status"]
        else:
            fill["status"] = status
    result = evaluate(resources)
    assert abstains(result, "3 fill(s) have an unknown or missing status")
    assert isinstance(result, NotEvaluable)
    assert result.references == ("MedicationDispense/md-1", "MedicationDispense/md-2",
                                 "MedicationDispense/md-3")


def test_fills_prepared_but_never_handed_over_are_still_no_supply() -> None:
    pid = "p-prepared"
    resources = [sertraline_order(pid), *fills(pid, MONTHLY)]
    for fill in resources[2:4]:
        fill["status"] = "in-progress"
        fill["whenPrepared"] = fill.pop("whenHandedOver")
    assert isinstance(evaluate(resources), Finding)


# Kind 8: a fill dated by month only -----------------------------------------------------------
@pytest.mark.parametrize(
    ("first_fill", "outcome"),
    [pytest.param("2026-09", "abstains", id="month-in-the-window"),
     pytest.param("2026-08-31T15:00:00Z", "fires", id="full-date"),
     pytest.param("2025-01", "no-card", id="month-long-before-the-window")],
)
def test_a_fill_dated_by_month_only_cannot_be_placed(first_fill: str, outcome: str) -> None:
    pid = "p-partial"
    resources = [
        sertraline_order(pid, authored=95),
        dispense("md-0", pid, "sertraline50", first_fill, days=30),
        dispense("md-1", pid, "sertraline50", "2026-10-29T15:00:00Z", days=30),
        dispense("md-2", pid, "sertraline50", "2026-11-28T15:00:00Z", days=30),
    ]
    result = evaluate(resources)
    if outcome == "abstains":
        assert abstains(result, "1 fill(s) are dated by month or year only")
    elif outcome == "fires":
        assert isinstance(result, Finding)  # 63 of 92 days covered
    else:
        assert result is None  # two fills 33 days apart: too short a treatment to measure


# Kind 9: too short a treatment for a PDC ------------------------------------------------------
@pytest.mark.parametrize(("first_fill", "fires"), [(91, True), (90, False), (45, False)])
def test_the_index_fill_must_be_91_days_before_today(first_fill: int, fires: bool) -> None:
    pid = "p-short"
    resources = [sertraline_order(pid, authored=first_fill),
                 *fills(pid, (first_fill, first_fill - 60))]
    result = evaluate(resources)
    assert isinstance(result, Finding) if fires else result is None


# Kind 10: fills of a medication that cannot be identified -------------------------------------
def unresolvable(resources: list[dict[str, Any]], ids: set[str]) -> list[dict[str, Any]]:
    for r in resources:
        if r.get("id") in ids:
            r.pop("medicationCodeableConcept")
            r["medicationReference"] = {"reference": "Medication/eXyZ789"}
    return resources


def test_unidentified_fills_in_the_period_make_a_low_pdc_not_evaluable() -> None:
    pid = "p-unknown-med"
    resources = unresolvable([sertraline_order(pid), *fills(pid, MONTHLY)],
                             {"md-1", "md-3", "md-5"})
    assert abstains(evaluate(resources), "3 fill(s) in the period measured name a medication")


def test_unidentified_fills_do_not_block_a_pdc_that_does_not_fire() -> None:
    pid = "p-unknown-med-ok"
    resources = unresolvable([sertraline_order(pid), *fills(pid, MONTHLY),
                              *fills(pid, (75,), prefix="md-x")], {"md-x-0"})
    assert evaluate(resources) is None


def test_without_unidentified_fills_the_same_gaps_fire() -> None:
    pid = "p-unknown-med-control"
    resources = [sertraline_order(pid), *fills(pid, (150, 90, 30))]
    assert isinstance(evaluate(resources), Finding)


# Kind 11: what the card says ------------------------------------------------------------------
def card_text(response: Any) -> str:
    (card,) = [c for c in response.get_json()["cards"]
               if c["source"]["topic"]["code"] == PATTERN_ID]
    return f"{card['summary']}\n{card['detail']}"


def test_a_single_lapsed_fill_card_says_when_the_supply_ran_out(post: Post) -> None:
    pid = "p-card-lapsed"
    body = request("patient-view", pid, [sertraline_order(pid, authored=150),
                                         *fills(pid, (150,))])
    text = card_text(post(body))
    assert "ran out 120 days ago, and no refill is on record" in text
    assert "covered" not in text and "%" not in text


def test_a_pdc_card_names_the_period_it_measured(post: Post) -> None:
    pid = "p-card-pdc"
    body = request("patient-view", pid, [sertraline_order(pid), *fills(pid, GAPPY)])
    text = card_text(post(body))
    assert "covered 59% of the 151 days counted from its first fill measured (2026-07-03)" in text
    assert "last 6 months" not in text


def test_a_not_taken_card_reports_the_record_without_blame(post: Post) -> None:
    pid = "p-card-stmt"
    said = statement("ms-1", pid, status="not-taken", effectiveDateTime=day(20, "T09:00:00Z"),
                     statusReason=[{"text": "Patient reports forgetting doses"}])
    text = card_text(post(request("patient-view", pid, [sertraline_order(pid), said])))
    assert "A record says sertraline is not being taken." in text
    assert "not taken as prescribed" not in text.split("\n", 1)[1]


def test_a_clinician_hold_never_reaches_a_card(post: Post) -> None:
    pid = "p-card-held"
    said = statement("ms-1", pid, status="not-taken", effectiveDateTime=day(10, "T09:00:00Z"),
                     statusReason=[{"coding": [{"system": "http://snomed.info/sct",
                                                "code": "182840001"}]}])
    body = request("patient-view", pid, [sertraline_order(pid), said])
    assert PATTERN_ID not in topics(post(body))


def test_incomplete_dispenses_reach_the_audit_as_not_evaluable(
    audited_post: Post, rw_app: Flask
) -> None:
    # The client left the dispenses prefetch key out and gave no fhirAuthorization to fetch it.
    pid = "p-audit-inc"
    body = request("patient-view", pid, [sertraline_order(pid)])
    del body["prefetch"]["dispenses"]
    assert PATTERN_ID not in topics(audited_post(body))
    (row,) = [r for r in audit_rows(rw_app) if r["pattern"] == PATTERN_ID]
    assert row["disposition"] == "not-evaluable"
    assert "MedicationDispense data did not arrive in full" in row["summary"]


# Hospital stays: the supply at home carries past them ----------------------------------------
def _stay(pid: str, start: int, end: int | None, status: str = "finished") -> dict[str, Any]:
    return encounter(f"enc-ip-{start}", pid, day(start, "T08:00:00Z"), status=status,
                     klass={"system": ACT_CODE, "code": "IMP"},
                     end=day(end, "T12:00:00Z") if end is not None else None)


@pytest.mark.parametrize(
    ("stay", "fires"),
    [
        pytest.param((160, 116), False, id="45-day-stay-supply-carried-past-it"),
        pytest.param(None, True, id="no-stay-the-same-fills-leave-a-gap"),
    ],
)
def test_supply_left_at_an_admission_lasts_past_discharge(
    stay: tuple[int, int] | None, fires: bool
) -> None:
    """A 90-day fill 170 days ago, 45 days in hospital from 160 days ago, the next 90-day fill
    35 days ago: the 80 days of supply left at admission are taken at home after discharge, up
    to the refill (the CMS/PQA inpatient-stay adjustment). Without the stay, the same fills
    leave a gap."""
    pid = "adh-carry-over"
    resources = [sertraline_order(pid, authored=175),
                 *fills(pid, (170, 35), supply=90, quantity=90)]
    if stay is not None:
        resources.append(_stay(pid, *stay))
    assert isinstance(evaluate(resources), Finding) is fires


def test_a_stay_that_ended_without_an_end_date_makes_the_pdc_not_evaluable() -> None:
    pid = "adh-stay-no-end"
    resources = [sertraline_order(pid, authored=175),
                 *fills(pid, (150, 120, 60), supply=30), _stay(pid, 119, None)]
    assert abstains(evaluate(resources), "no end date")
    resources[-1] = _stay(pid, 119, 61)
    assert evaluate(resources) is None  # the stay covers the gap


@pytest.mark.parametrize(
    "line",
    [
        pytest.param({"text": "Take 1 tablet by mouth twice daily as needed for anxiety",
                      "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                      "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "mg"}}]},
                     id="sig-text"),
        pytest.param({"patientInstruction": "1 tab PRN anxiety",
                      "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "mg"}}]},
                     id="patient-instruction"),
    ],
)
def test_an_as_needed_sig_in_words_is_as_needed(line: dict[str, Any]) -> None:
    """Lorazepam written "as needed" in the sig only, with no asNeeded element, filled now and
    then: PQA leaves as-needed use out of PDC, so no card."""
    pid = "adh-prn-words"
    prescription = order("mr-lz", pid, "lorazepam1", authored=day(200, "T10:00:00Z"),
                         dosage=[line])
    resources = [prescription, *fills(pid, (150, 60), product="lorazepam1", supply=30)]
    assert evaluate(resources) is None


# A single fill and days in hospital: the supply carries past a stay, and a current stay uses none
@pytest.mark.parametrize(
    ("fill", "stay", "lapsed"),
    [
        # 30 days filled 150 days ago, 10 used before a stay from 140 to 60 days ago: the other 20
        # last to 40 days ago, no lapse beyond 60 days.
        pytest.param((150, 30), (140, 60, "finished"), None, id="stay-then-supply-carried"),
        # The same stay ending 100 days ago: run out 79 days ago (20 days after discharge).
        pytest.param((150, 30), (140, 100, "finished"), 79, id="shorter-stay-still-lapsed"),
        # 90 days filled 170 days ago, in hospital since 100 days ago: 20 days' supply at home.
        pytest.param((170, 90), (100, None, "in-progress"), None, id="in-hospital-now"),
        pytest.param((170, 90), None, 80, id="no-stay-ran-out-80-days-ago"),
        # Ran out 145 days ago; 81 of the days since in hospital, where the ward gave it.
        pytest.param((175, 30), (130, 50, "finished"), 64, id="hospital-days-after-run-out"),
    ],
)
def test_a_single_fill_carries_over_hospital_days(
    fill: tuple[int, int], stay: tuple[int, int | None, str] | None, lapsed: int | None
) -> None:
    pid = "adh-single-stay"
    ago, supply = fill
    resources = [sertraline_order(pid, authored=ago + 5),
                 *fills(pid, (ago,), supply=supply, quantity=supply)]
    if stay is not None:
        resources.append(_stay(pid, stay[0], stay[1], status=stay[2]))
    result = evaluate(resources)
    if lapsed is None:
        assert result is None
    else:
        assert isinstance(result, Finding)
        assert result.facts["days_since_supply_ran_out"] == lapsed


# Fill supply derived from the order: a quantity other than the order's, a count of another
# strength ------------------------------------------------------------------------------------
def _order_30_for_30(pid: str, **extra: Any) -> dict[str, Any]:
    return sertraline_order(
        pid, authored=175, dosage=[{"text": "take 1 tablet by mouth daily"}],
        dispenseRequest={"quantity": {"value": 30, "unit": "Tablet"},
                         "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM,
                                                    "code": "d"}},
        **extra,
    )


@pytest.mark.parametrize(
    ("quantity", "days", "outcome"),
    [
        pytest.param({"value": 90, "unit": "Tablet"}, 90.0, None, id="90-tablets-last-90-days"),
        pytest.param({"value": 90, "unit": "{tbl}", "system": UCUM, "code": "{tbl}"}, 90.0, None,
                     id="90-tablets-ucum-spelling"),
        pytest.param({"value": 30, "unit": "Tablet"}, 30.0, Finding, id="30-tablets-30-days"),
        pytest.param({"value": 1, "unit": "bottle"}, None, NotEvaluable, id="other-unit"),
    ],
)
def test_the_orders_expected_supply_scales_with_the_quantity_filled(
    quantity: dict[str, Any], days: float | None, outcome: type | None
) -> None:
    """An order of 30 tablets for 30 days with a free-text sig; fills 170 and 80 days ago without
    a days' supply. 90 tablets last 90 days (every day covered); 30 tablets 30 days (PDC 0.35);
    a bottle is no count of tablets (unknown supply: not evaluable)."""
    pid = "adh-qty-scaled"
    resources = [_order_30_for_30(pid),
                 *fills(pid, (170, 80), supply=None, quantity=0, **link("mr-s"))]
    for fill in resources[1:]:
        fill["quantity"] = quantity
    record = map_record(resources, TABLE, codes=CODES)
    assert [d.days_supply for d in record.dispenses] == [days, days]
    result = evaluate(resources)
    assert result is None if outcome is None else isinstance(result, outcome)


SERTRALINE_25 = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                             "code": "312940", "display": "sertraline 25 MG Oral Tablet"}],
                 "text": "sertraline 25 MG Oral Tablet"}


@pytest.mark.parametrize(
    ("fill_medication", "days", "outcome"),
    [
        # 2 tablets of 25 mg is 50 mg a day: one 50 mg tablet a day, 30 tablets 30 days.
        pytest.param(concept("sertraline50"), 30.0, None, id="other-strength-through-mg"),
        # The same 25 mg product: 2 tablets a day, 30 tablets 15 days (PDC about 0.5).
        pytest.param(SERTRALINE_25, 15.0, Finding, id="same-product-count-applies"),
        # A fill whose strength is unknown: the count cannot be carried over.
        pytest.param({"text": "sertraline tablets"}, None, NotEvaluable, id="strength-unknown"),
    ],
)
def test_a_tablet_count_sig_applies_only_to_a_fill_of_the_same_strength(
    fill_medication: dict[str, Any], days: float | None, outcome: type | None
) -> None:
    pid = "adh-count-strength"
    prescription = sertraline_order(pid, authored=175, dosage=[daily(2, "{tablet}")])
    prescription["medicationCodeableConcept"] = SERTRALINE_25
    resources = [prescription, *fills(pid, MONTHLY, supply=None, **link("mr-s"))]
    for fill in resources[1:]:
        fill["medicationCodeableConcept"] = fill_medication
    record = map_record(resources, TABLE, codes=CODES)
    assert {d.days_supply for d in record.dispenses} == {days}
    result = evaluate(resources)
    assert result is None if outcome is None else isinstance(result, outcome)


# Stays of an unreadable class ----------------------------------------------------------------
SPLIT = (150, 120, 30)  # a 60-day gap from 90 to 31 days ago: PDC 0.60 without a stay


@pytest.mark.parametrize(
    ("extra", "outcome"),
    [
        # Epic's "Hospital Encounter" class, not mapped, over the gap: were it a stay, the
        # finding would not stand.
        pytest.param({"class": {"system": EPIC_CLASS, "code": "3",
                                "display": "Hospital Encounter"}}, NotEvaluable,
                     id="unmapped-class-over-the-gap"),
        pytest.param({"class": None}, NotEvaluable, id="class-absent-over-the-gap"),
        # Recognised as a stay: hospitalization details, or the type says so.
        pytest.param({"class": None, "hospitalization": {"dischargeDisposition": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                        "code": "home"}]}}}, None, id="class-absent-hospitalization"),
        pytest.param({"class": {"system": EPIC_CLASS, "code": "3"},
                      "type": [{"text": "Inpatient Psychiatry Admission"}]}, None,
                     id="unmapped-class-inpatient-type"),
        # An office visit of unmapped class on one day: no stay, the gap stands.
        pytest.param({"class": {"system": EPIC_CLASS, "code": "3"}, "one_day": True}, Finding,
                     id="unmapped-class-one-day"),
    ],
)
def test_a_stay_of_unreadable_class_over_the_gap_is_not_evidence(
    extra: dict[str, Any], outcome: type | None
) -> None:
    pid = "adh-unread-stay"
    extra = dict(extra)
    one_day = extra.pop("one_day", False)
    stay = encounter("enc-x", pid, day(95, "T08:00:00Z"), status="finished",
                     end=day(95 if one_day else 30, "T18:00:00Z"), **extra)
    if stay["class"] is None:
        del stay["class"]
    resources = [sertraline_order(pid, authored=175), *fills(pid, SPLIT), stay]
    result = evaluate(resources)
    assert result is None if outcome is None else isinstance(result, outcome)
    if outcome is NotEvaluable:
        assert abstains(result, "unreadable class")


def test_a_several_day_encounter_of_unreadable_class_that_changes_nothing_is_no_reason() -> None:
    """Five days of an unmapped class in a long gap: with them in hospital or not, the PDC is
    below 0.80, so the finding stands."""
    pid = "adh-unread-short"
    stay = encounter("enc-x", pid, day(80, "T08:00:00Z"), end=day(76, "T18:00:00Z"),
                     klass={"system": EPIC_CLASS, "code": "3"})
    result = evaluate([sertraline_order(pid, authored=175), *fills(pid, SPLIT), stay])
    assert isinstance(result, Finding)


@pytest.mark.parametrize(
    ("status", "fires"),
    [
        pytest.param("discharged", False, id="r5-discharged-is-a-finished-stay"),
        pytest.param("finished", False, id="r4-finished"),
        pytest.param("cancelled", True, id="cancelled-stay-control"),
    ],
)
def test_an_r5_discharged_stay_leaves_the_days_covered_period(status: str, fires: bool) -> None:
    pid = "adh-r5-discharged"
    resources = [sertraline_order(pid, authored=175), *fills(pid, SPLIT),
                 _stay(pid, 95, 30, status=status)]
    assert isinstance(evaluate(resources), Finding) is fires


# Dispense statuses as feeds spell them ---------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        pytest.param("COMPLETED", None, id="upper-case-completed"),
        pytest.param("Completed", None, id="title-case-completed"),
        pytest.param("picked-up", None, id="synonym-picked-up"),
        pytest.param("Dispensed", None, id="synonym-dispensed"),
        pytest.param("ready-for-pickup", NotEvaluable, id="unknown-status"),
        pytest.param("CANCELLED", Finding, id="upper-case-cancelled-not-handed-over"),
    ],
)
def test_dispense_statuses_are_read_case_insensitively(status: str, outcome: type | None) -> None:
    """Monthly fills, every other one with the status as sent: a synonym of completed counts;
    a status outside the R4 value set may have reached the patient (not evaluable); a cancelled
    fill did not (PDC about 0.5)."""
    pid = "adh-status"
    resources = [sertraline_order(pid, authored=175), *fills(pid, MONTHLY)]
    for fill in resources[1::2]:
        fill["status"] = status
    result = evaluate(resources)
    assert result is None if outcome is None else isinstance(result, outcome)
    if outcome is NotEvaluable:
        assert abstains(result, "unknown or missing status")


@pytest.mark.parametrize(
    ("unknown_days_ago", "fires"),
    [
        # Three 30-day fills in 151 days (PDC 0.60) and a fill of unknown status 3 days ago:
        # counted or not, the days covered stay under 0.80. The finding stands.
        ((3,), True),
        # Two such fills 60 and 120 days ago would lift the figure over 0.80 if they reached
        # the patient: the finding rests on them, and the pattern cannot say.
        ((120, 60), None),
    ],
)
def test_a_fill_of_unknown_status_is_read_both_ways(
    unknown_days_ago: tuple[int, ...], fires: bool | None
) -> None:
    pid = "p-status-both"
    unknown = fills(pid, unknown_days_ago, prefix="md-u")
    for fill in unknown:
        fill["status"] = "Filled"  # not an R4 status: whether it was handed over is unknown
    result = evaluate([sertraline_order(pid), *fills(pid, GAPPY), *unknown])
    if fires:
        assert isinstance(result, Finding)
    else:
        assert abstains(result, "unknown or missing status")
