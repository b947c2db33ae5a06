"""Kinds 4, 11, 12 and 13 of issue 12: days' supply that is missing or derived (and the
abstention it leads to), a faulty fhirAuthorization, product codes without a display, and the
data-quality summary of each call."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer

from cds_service.settings import Settings
from fhir_mappers import CodeLists, IngredientTable, map_record
from tests.realworld.builders import (
    RXNORM,
    daily,
    day,
    dispense,
    intolerance,
    order,
    request,
)
from tests.realworld.conftest import CASES_NOW, audit_rows, topics

NONADHERENCE = "nonadherence"


def sertraline_order(pid: str, **extra: Any) -> dict[str, Any]:
    dosage = extra.pop("dosageInstruction", [daily(50)])
    return order("mr-1", pid, "sertraline50", authored=day(170, "T10:00:00Z"),
                 dosage=dosage, **extra)


def fills(pid: str, days: list[float | None], **extra: Any) -> list[dict[str, Any]]:
    """Fills 120, 60 and 0 days ago (sparse: two thirds of the days covered at most)."""
    return [
        dispense(f"md-{n}", pid, "sertraline50", day(ago, "T00:00:00Z"), days=d, **extra)
        for n, (ago, d) in enumerate(zip((150, 90, 30), days, strict=True))
    ]


# Kind 4 -------------------------------------------------------------------------------------
def test_low_coverage_with_known_supply_fires(post: Callable[[dict[str, Any]], Any]) -> None:
    pid = "p-pdc"
    body = request("patient-view", pid, [sertraline_order(pid), *fills(pid, [15, 15, 15])])
    assert NONADHERENCE in topics(post(body))


def test_fills_without_supply_are_not_evaluable_and_the_audit_says_why(
    audited_post: Callable[[dict[str, Any]], Any], rw_app: Flask
) -> None:
    pid = "p-nodays"
    body = request("patient-view", pid, [sertraline_order(pid), *fills(pid, [15, None, 15])])
    response = audited_post(body)
    assert NONADHERENCE not in topics(response)
    (row,) = [r for r in audit_rows(rw_app) if r["pattern"] == NONADHERENCE]
    assert (row["disposition"], row["shown"]) == ("not-evaluable", False)
    assert "no days' supply" in row["summary"]
    assert row["evidence_refs"] == ["MedicationDispense/md-1"]
    assert json.loads(row["data_quality"])["not_evaluable"][NONADHERENCE] in row["summary"]


@pytest.mark.parametrize(
    ("order_extra", "fill_extra"),
    [
        pytest.param({}, {"authorizingPrescription": [{"reference": "MedicationRequest/mr-1"}]},
                     id="quantity-over-the-orders-sig"),
        pytest.param({}, {"authorizingPrescription": [
            {"reference": "https://ehr.example.test/fhir/r4/MedicationRequest/mr-1"}]},
                     id="absolute-url-reference"),
        # A text-only sig gives no daily count: the order's expected supply duration does.
        pytest.param({"dispenseRequest": {"expectedSupplyDuration": {"value": 15, "unit": "d"}},
                      "dosageInstruction": [{"text": "as directed"}]},
                     {"authorizingPrescription": [{"reference": "MedicationRequest/mr-1"}],
                      "quantity": {"value": 40}},
                     id="expected-supply-duration"),
    ],
)
def test_supply_derived_from_the_order_is_used(
    table: IngredientTable, codes: CodeLists, order_extra: dict[str, Any],
    fill_extra: dict[str, Any],
) -> None:
    pid = "p-derive"
    extra = dict(fill_extra)
    quantity = extra.pop("quantity", {"value": 15})["value"]
    fill = dispense("md-x", pid, "sertraline50", day(10), days=None, quantity=quantity, **extra)
    record = map_record([sertraline_order(pid, **order_extra), fill], table, codes=codes)
    assert record.dispenses[0].days_supply == 15


def test_derived_supply_lets_a_low_coverage_fire(post: Callable[[dict[str, Any]], Any]) -> None:
    pid = "p-derived"
    link = {"authorizingPrescription": [{"reference": "MedicationRequest/mr-1"}]}
    resources = [sertraline_order(pid)] + [
        dispense(f"md-{n}", pid, "sertraline50", day(ago), days=None, quantity=15, **link)
        for n, ago in enumerate((150, 90, 30))
    ]
    assert NONADHERENCE in topics(post(request("patient-view", pid, resources)))


@pytest.mark.parametrize("days", [0, -3])
def test_a_zero_days_supply_is_unknown_not_zero(
    table: IngredientTable, codes: CodeLists, days: float
) -> None:
    record = map_record([dispense("md-0", "p", "sertraline50", day(3), days=days)],
                        table, codes=codes)
    assert record.dispenses[0].days_supply is None


# Kind 11 ------------------------------------------------------------------------------------
FAULTS = [
    pytest.param({"access_token": "opaque", "token_type": "Bearer", "scope": "patient/*.read",
                  "subject": "cds"}, id="no-expires-in"),
    pytest.param({"access_token": "opaque", "token_type": "bearer", "expires_in": 300,
                  "scope": "patient/*.read", "subject": "cds"}, id="lower-case-bearer"),
    pytest.param({"access_token": "opaque", "token_type": "Bearer", "expires_in": "300",
                  "scope": "patient/*.read", "subject": "cds"}, id="number-as-string"),
    pytest.param({"token_type": "Bearer"}, id="no-token-at-all"),
    pytest.param("Bearer opaque", id="not-an-object"),
]


def three_intolerances(pid: str) -> list[dict[str, Any]]:
    return [
        intolerance("ai-1", pid, "sertraline50", day(300), "Nausea"),
        intolerance("ai-2", pid, "venlafaxine75", day(200), "Headache"),
        intolerance("ai-3", pid, "quetiapine100", day(100), "Sedation"),
    ]


@pytest.mark.parametrize("auth", FAULTS)
def test_a_faulty_authorization_is_no_400_when_prefetch_has_everything(
    post: Callable[[dict[str, Any]], Any], auth: Any
) -> None:
    pid = "p-auth"
    draft = order("d-1", pid, "fluoxetine20", authored=day(0), status="draft", dosage=[daily(20)])
    body = request("order-sign", pid, three_intolerances(pid), drafts=[draft])
    body["fhirAuthorization"] = auth
    response = post(body)
    assert response.status_code == 200
    assert "repeated-intolerance" in topics(response)


@pytest.fixture
def fetching_app(
    make_settings: Callable[..., Settings], httpserver: HTTPServer
) -> Iterator[Flask]:
    from cds_service.web.app import create_app

    settings = make_settings({"fhir": {"allowed_servers": [httpserver.url_for("/fhir")]}})
    app = create_app(settings, clock=lambda: CASES_NOW)
    app.testing = True
    yield app
    app.extensions["psychopharm"].close()


@pytest.mark.parametrize(("auth", "status", "calls"), [
    pytest.param({"access_token": "opaque", "token_type": "bearer"}, 200, 1, id="usable"),
    pytest.param({"token_type": "Bearer"}, 412, 0, id="no-token"),
    pytest.param({"access_token": "opaque", "token_type": "MAC"}, 412, 0, id="not-bearer"),
])
def test_when_a_fetch_is_needed_an_unusable_token_is_an_unreachable_server(
    fetching_app: Flask, httpserver: HTTPServer, auth: Any, status: int, calls: int
) -> None:
    httpserver.expect_request("/fhir/MedicationRequest").respond_with_json(
        {"resourceType": "Bundle", "type": "searchset", "entry": []}
    )
    body = request("patient-view", "p-fetch", [])
    del body["prefetch"]["medications"]  # required: must be fetched
    body["fhirServer"] = httpserver.url_for("/fhir")
    body["fhirAuthorization"] = auth
    response = fetching_app.test_client().post(
        "/cds-services/psychopharm-patient-view", json=body
    )
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert len(httpserver.log) == calls
    assert "opaque" not in response.get_data(as_text=True)


# Kind 12 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "name", "mg"), [
    ("312941", "sertraline", 50.0),
    ("312938", "sertraline", 100.0),
    ("312743", "quetiapine", 100.0),
    ("349545", "aripiprazole", 10.0),
])
def test_product_codes_without_a_display_are_classified_with_their_strength(
    table: IngredientTable, codes: CodeLists, code: str, name: str, mg: float
) -> None:
    resource = order("pc", "p", "sertraline50", authored=day(5), dosage=[daily(1, "TAB")])
    resource["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": code}]}
    record = map_record([resource], table, codes=codes)
    course = record.courses[0]
    assert [i.name for i in course.ingredients] == [name]
    assert course.daily_dose_mg == mg
    assert record.issues == ()


def test_an_unknown_product_code_without_a_display_is_a_data_quality_issue(
    table: IngredientTable, codes: CodeLists
) -> None:
    resource = order("pc", "p", "sertraline50", authored=day(5))
    resource["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": "99999999"}]}
    record = map_record([resource], table, codes=codes)
    # Unrecognised: set aside with the medications no pattern reads, and reported.
    assert record.courses == ()
    assert [o.ref for o in record.other_medications] == ["MedicationRequest/pc"]
    assert [i.reason for i in record.issues] == ["unrecognised RxNorm code"]


def test_a_psychotropic_whose_product_code_is_missing_from_the_table_is_counted(
    table: IngredientTable, codes: CodeLists
) -> None:
    resource = order("pc", "p", "sertraline50", authored=day(5), dosage=[daily(10)])
    resource["medicationCodeableConcept"] = {"coding": [
        {"system": RXNORM, "code": "9990001", "display": "olanzapine 10 MG Oral Tablet"}]}
    record = map_record([resource], table, codes=codes)
    assert [i.name for i in record.courses[0].ingredients] == ["olanzapine"]
    assert [i.reason for i in record.issues] == ["RxNorm code not in the product table"]


def test_a_known_non_psychotropic_is_not_an_issue(
    table: IngredientTable, codes: CodeLists
) -> None:
    # lisinopril with a unitless dose (Synthea) and a dosage with no frequency: not ours to read.
    resource = order("ls", "p", "lisinopril10", authored=day(5),
                     dosage=[{"doseAndRate": [{"doseQuantity": {"value": 1}}]}])
    assert map_record([resource], table, codes=codes).issues == ()


# Kind 13 ------------------------------------------------------------------------------------
def test_one_summary_line_per_call_and_the_summary_on_every_audit_row(
    audited_post: Callable[[dict[str, Any]], Any], rw_app: Flask,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pid = "p-dq"
    broken = [
        dict(r, recordedDate="last spring") if r["id"] == "ai-1" else r
        for r in three_intolerances(pid)
    ]
    extra = [
        intolerance("ai-4", pid, "fluoxetine20", "yesterday-ish", "Insomnia"),
        intolerance("ai-5", pid, "lorazepam1", day(50), "Headache"),
        intolerance("ai-6", pid, "risperidone2", day(40), "Dizziness"),
    ]
    with caplog.at_level(logging.INFO):
        response = audited_post(request("patient-view", pid, broken + extra))
    assert response.status_code == 200
    quality_lines = [r for r in caplog.records if r.getMessage().startswith("data quality:")]
    assert len(quality_lines) == 1
    assert "AllergyIntolerance: unparseable date=2" in quality_lines[0].getMessage()
    assert not any(r.levelno >= logging.WARNING and "FHIR" in r.getMessage()
                   for r in caplog.records)
    rows = audit_rows(rw_app)
    assert rows
    for row in rows:
        assert json.loads(row["data_quality"])["issues"] == {
            "AllergyIntolerance: unparseable date": 2
        }


def test_a_fetched_page_with_other_patients_orders_is_filtered(
    fetching_app: Flask, httpserver: HTTPServer
) -> None:
    # Kind 1 on the fetch path: a server that ignores patient= returns everyone's orders.
    pid = "p-lenient"
    everyone = [
        order("f-1", pid, "quetiapine100", authored=day(90, "T10:00:00Z")),
        order("f-2", "p-someone-else", "risperidone2", authored=day(60, "T10:00:00Z")),
        order("f-3", "p-someone-else", "aripiprazole10", authored=day(30, "T10:00:00Z")),
    ]
    httpserver.expect_request("/fhir/MedicationRequest").respond_with_json(
        {"resourceType": "Bundle", "type": "searchset",
         "entry": [{"resource": r} for r in everyone]}
    )
    body = request("patient-view", pid, [])
    del body["prefetch"]["medications"]
    body["fhirServer"] = httpserver.url_for("/fhir")
    body["fhirAuthorization"] = {"access_token": "opaque", "token_type": "Bearer"}
    response = fetching_app.test_client().post(
        "/cds-services/psychopharm-patient-view", json=body
    )
    assert response.status_code == 200
    assert "psychotropic-polypharmacy" not in topics(response)


# Placeholder and absurd values: one resource never costs a pattern its answer ---------------
@pytest.mark.parametrize(
    "junk",
    [
        pytest.param(order("mr-old", "p-junk-date", "fluoxetine20",
                           authored="0001-01-01T00:00:00Z", status="completed",
                           dosage=[daily(20)]), id="year-0001-placeholder-date"),
        pytest.param(order("mr-far", "p-junk-date", "fluoxetine20", authored=day(400),
                           status="completed", dosage=[daily(20, timing={"repeat": {
                               "frequency": 1, "period": 1, "periodUnit": "d",
                               "boundsPeriod": {"start": day(400), "end": "9999-12-31"}}})]),
                     id="year-9999-placeholder-end"),
        pytest.param(dispense("md-junk", "p-junk-date", "sertraline50", day(90), days=9999999),
                     id="days-supply-9999999"),
        pytest.param(dispense("md-junk", "p-junk-date", "sertraline50", day(90), days=None,
                              quantity=5_000_000), id="quantity-in-the-millions"),
    ],
)
def test_a_placeholder_or_absurd_value_costs_no_pattern_its_answer(
    audited_post: Callable[[dict[str, Any]], Any], rw_app: Flask, junk: dict[str, Any]
) -> None:
    # Low coverage of sertraline (a nonadherence card), plus one resource whose date is a
    # system's placeholder or whose supply is absurd: read as unknown (a data-quality issue),
    # never a failure that silences a pattern.
    pid = "p-junk-date"
    body = request("patient-view", pid, [sertraline_order(pid), *fills(pid, [30, 30, 30]), junk])
    response = audited_post(body)
    assert response.status_code == 200
    rows = audit_rows(rw_app)
    assert not [r for r in rows if "failed" in r["summary"]]
    if junk["resourceType"] == "MedicationRequest":
        assert NONADHERENCE in topics(response)
    else:  # an unknown supply in the period: nonadherence abstains, and says why
        (row,) = [r for r in rows if r["pattern"] == NONADHERENCE]
        assert row["disposition"] == "not-evaluable"


def test_a_pattern_that_fails_is_audited_as_not_evaluated(
    audited_post: Callable[[dict[str, Any]], Any], rw_app: Flask,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cds_service.patterns import regimen_escalation

    def broken(*_: Any) -> None:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(regimen_escalation, "detect", broken)
    rw_app.testing = False  # as in production: a failing pattern is caught, not re-raised
    pid = "p-broken"
    response = audited_post(
        request("patient-view", pid, [sertraline_order(pid), *fills(pid, [30, 30, 30])])
    )
    assert response.status_code == 200
    assert NONADHERENCE in topics(response)  # the other patterns still answer
    (row,) = [r for r in audit_rows(rw_app) if r["pattern"] == "regimen-escalation"]
    assert row["disposition"] == "not-evaluable"
    assert "failed on this record (OverflowError)" in row["summary"]


@pytest.mark.parametrize(
    ("severity", "disposition"),
    [("error", "not-evaluable"), ("fatal", "not-evaluable"), (None, "not-evaluable"),
     ("information", "shown")],
)
def test_a_search_that_reports_an_error_next_to_its_results_is_partial(
    audited_post: Callable[[dict[str, Any]], Any], rw_app: Flask, severity: str | None,
    disposition: str,
) -> None:
    # The dispenses searchset holds its fills and an OperationOutcome entry (search.mode
    # outcome): with an error ("pharmacy network could not be retrieved") the fills are only
    # part of what exists, and a low coverage read from them is no evidence (nonadherence
    # abstains, and says why); a note ("no further results") changes nothing.
    pid = "p-outcome"
    body = request("patient-view", pid, [sertraline_order(pid), *fills(pid, [15, 15, 15])])
    issue: dict[str, Any] = {"code": "exception",
                             "diagnostics": "pharmacy network could not be retrieved"}
    if severity is not None:
        issue["severity"] = severity
    body["prefetch"]["dispenses"]["entry"].append({
        "resource": {"resourceType": "OperationOutcome", "issue": [issue]},
        "search": {"mode": "outcome"},
    })
    response = audited_post(body)
    assert response.status_code == 200
    (row,) = [r for r in audit_rows(rw_app) if r["pattern"] == NONADHERENCE]
    assert row["disposition"] == disposition
