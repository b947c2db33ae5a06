"""Kinds 2 and 3 of issue 12: visits in other systems' class codes, and the visit happening now.

The story: three regimen changes in the last 80 days (sertraline started, raised, aripiprazole
added). Seen at each change, visits-lag-changes must stay silent; not seen (or seen in a way the
service cannot read as a visit), it fires. regimen-escalation fires either way (the control).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from fhir_mappers import CodeLists, IngredientTable, map_record
from tests.realworld.builders import ACT_CODE, EPIC_CLASS, daily, day, encounter, order, request
from tests.realworld.conftest import audit_rows, topics

PID = "rwv-visits-1"
VISITS = "visits-lag-changes"


def three_changes(pid: str = PID) -> list[dict[str, Any]]:
    return [
        order("mr-1", pid, "sertraline50", authored=day(80, "T10:00:00Z"), status="stopped",
              dosage=[{**daily(50), "timing": {"repeat": {
                  "frequency": 1, "period": 1, "periodUnit": "d",
                  "boundsPeriod": {"start": day(80), "end": day(50)}}}}]),
        order("mr-2", pid, "sertraline100", authored=day(50, "T10:00:00Z"),
              dosage=[daily(100)]),
        order("mr-3", pid, "aripiprazole10", authored=day(20, "T10:00:00Z"),
              dosage=[daily(10)]),
    ]


def visits_at_each_change(klass: Any, **extra: Any) -> list[dict[str, Any]]:
    return [
        encounter(f"enc-{n}", PID, day(d, "T09:00:00Z"), end=day(d, "T09:30:00Z"), klass=klass,
                  **extra)
        for n, d in enumerate((80, 50, 20))
    ]


EPIC = {"system": EPIC_CLASS, "code": "5", "display": "Appointment"}
R5_LIST = [{"coding": [{"system": ACT_CODE, "code": "AMB", "display": "ambulatory"}]}]
EPIC_UNMAPPED_WORDS = {"system": "urn:oid:1.2.840.114350.1.72.1.7.7.10.696784.99999",
                       "code": "101", "display": "Office Visit"}


@pytest.mark.parametrize(
    ("klass", "extra"),
    [
        pytest.param({"system": ACT_CODE, "code": "AMB"}, {}, id="v3-amb-control"),
        pytest.param(EPIC, {}, id="epic-oid-appointment"),
        pytest.param(EPIC_UNMAPPED_WORDS, {}, id="vendor-code-read-by-its-display"),
        pytest.param(R5_LIST, {}, id="r5-class-list"),
        pytest.param("ambulatory", {}, id="dstu2-word"),
    ],
)
def test_visits_in_any_class_shape_count(
    post: Callable[[dict[str, Any]], Any], klass: Any, extra: dict[str, Any]
) -> None:
    response = post(request("patient-view", PID, three_changes() + visits_at_each_change(klass)))
    assert response.status_code == 200
    fired = topics(response)
    assert "regimen-escalation" in fired
    assert VISITS not in fired


def test_r5_completed_visits_with_actual_period_count(
    post: Callable[[dict[str, Any]], Any]
) -> None:
    visits = []
    for n, d in enumerate((80, 50, 20)):
        visit = encounter(f"enc-{n}", PID, day(d, "T09:00:00Z"), status="completed", klass=R5_LIST)
        visit["actualPeriod"] = visit.pop("period")
        visits.append(visit)
    response = post(request("patient-view", PID, three_changes() + visits))
    assert VISITS not in topics(response)


@pytest.mark.parametrize(
    ("status", "counts"),
    [("discharged", True), ("completed", True), ("finished", True), ("planned", False),
     ("cancelled", False)],
)
def test_r5_discharged_visits_took_place(
    post: Callable[[dict[str, Any]], Any], status: str, counts: bool
) -> None:
    """R5 ``discharged``: the encounter is clinically completed and the patient has left, a
    finished visit as R4 ``finished`` is; a planned or cancelled one did not take place."""
    visits = visits_at_each_change({"system": ACT_CODE, "code": "AMB"})
    for visit in visits:
        visit["status"] = status
    fired = topics(post(request("patient-view", PID, three_changes() + visits)))
    assert (VISITS not in fired) is counts


@pytest.mark.parametrize(
    ("status", "start", "end", "in_hospital"),
    [
        pytest.param("onleave", 85, None, True, id="r4-onleave-now"),
        pytest.param("on-hold", 85, None, True, id="r5-on-hold-now"),
        pytest.param("in-progress", 85, None, True, id="in-progress-control"),
        pytest.param("discharged", 85, 15, True, id="r5-discharged"),
        pytest.param("discharged", 120, 90, False, id="discharged-before-the-changes"),
        pytest.param("planned", 85, None, False, id="planned"),
    ],
)
def test_changes_during_a_stay_in_any_status_of_one_are_not_outpatient_changes(
    post: Callable[[dict[str, Any]], Any], status: str, start: int, end: int | None,
    in_hospital: bool
) -> None:
    """The three changes were made in hospital, with no outpatient visit: a stay going on
    (in progress, R4 ``onleave``, R5 ``on-hold``) or one that ended (R5 ``discharged``) holds
    them, and visits-lag-changes is silent; a stay that ended before them, or one only planned,
    does not."""
    stay = encounter("enc-stay", PID, day(start, "T08:00:00Z"),
                     end=day(end, "T12:00:00Z") if end is not None else None,
                     klass={"system": ACT_CODE, "code": "IMP"}, status=status)
    fired = topics(post(request("patient-view", PID, [*three_changes(), stay])))
    assert "regimen-escalation" in fired
    assert (VISITS not in fired) is in_hospital


@pytest.mark.parametrize(
    "klass",
    [
        pytest.param({"system": "urn:oid:1.2.3.4.5", "code": "77"}, id="unmapped-vendor-code"),
        pytest.param({"system": ACT_CODE, "code": "IMP"}, id="inpatient-is-not-a-visit-here"),
        pytest.param({"system": ACT_CODE, "code": "EMER"}, id="emergency"),
    ],
)
def test_encounters_that_are_not_outpatient_visits_do_not_count(
    post: Callable[[dict[str, Any]], Any], klass: Any
) -> None:
    # Inpatient stays on the day of a change exclude that change; the other two still fire
    # only through the visit gap, so use encounters on other days than the changes.
    visits = [
        encounter(f"enc-{n}", PID, day(d, "T09:00:00Z"), end=day(d, "T10:00:00Z"), klass=klass)
        for n, d in enumerate((79, 49, 19))
    ]
    assert VISITS in topics(post(request("patient-view", PID, three_changes() + visits)))


def test_an_unmapped_class_is_counted_as_a_data_quality_issue(
    table: IngredientTable, codes: CodeLists
) -> None:
    resource = encounter("enc-x", PID, day(3), klass={"system": "urn:oid:1.2.3", "code": "77"})
    record = map_record([resource], table, codes=codes, patient_id=PID)
    assert [i.reason for i in record.issues] == ["encounter class not mapped"]
    assert record.visits[0].kind == "unknown"


def test_a_site_maps_its_own_class_codes(table: IngredientTable) -> None:
    import yaml

    from config import CONFIG_DIR

    data = yaml.safe_load((CONFIG_DIR / "codes.yaml").read_text(encoding="utf-8"))
    data["encounter_class_map"].append({"system": "urn:oid:1.2.3", "code": "77", "class": "IMP"})
    site = CodeLists.from_mapping(data)
    resource = encounter("enc-x", PID, day(3), klass={"system": "urn:oid:1.2.3", "code": "77"})
    visit = map_record([resource], table, codes=site).visits[0]
    assert (visit.class_code, visit.kind, visit.is_inpatient) == ("IMP", "inpatient", True)


@pytest.mark.parametrize(
    ("type_text", "expected"),
    [
        ("Psychiatry follow-up", True),
        ("Lab draw", False),
        ("Blood draw only", False),
        ("Something else", None),
    ],
)
def test_prescriber_visit_comes_from_the_configured_types(
    table: IngredientTable, codes: CodeLists, type_text: str, expected: bool | None
) -> None:
    resource = encounter("enc-t", PID, day(3), type=[{"text": type_text}])
    assert map_record([resource], table, codes=codes).visits[0].prescriber_visit is expected


# Kind 3: the visit happening now. Two earlier changes had visits; today's draft is the third
# change, signed during an appointment that is still open.
def _sign_today(
    post: Callable[[dict[str, Any]], Any], today: list[dict[str, Any]], **context: Any
) -> list[str]:
    history = three_changes()[:2] + [
        encounter(f"enc-{n}", PID, day(d, "T09:00:00Z"), end=day(d, "T09:30:00Z"))
        for n, d in enumerate((80, 50))
    ]
    draft = order("draft-1", PID, "aripiprazole10", authored=day(0, "T10:00:00Z"),
                  status="draft", dosage=[daily(10)])
    response = post(request("order-sign", PID, history + today, drafts=[draft], **context))
    assert response.status_code == 200
    return topics(response)


@pytest.mark.parametrize("status", ["in-progress", "arrived", "triaged", "onleave"])
def test_an_open_encounter_today_is_todays_visit(
    post: Callable[[dict[str, Any]], Any], status: str
) -> None:
    now_visit = encounter("enc-now", PID, day(0, "T09:00:00Z"), status=status)
    fired = _sign_today(post, [now_visit])
    assert "regimen-escalation" in fired
    assert VISITS not in fired


@pytest.mark.parametrize(
    ("status", "days_ago", "disposition"),
    [("in-progress", 300, "shown"), ("arrived", 40, "not-evaluable"),
     ("in-progress", 1, "not-evaluable")],
)
def test_an_encounter_left_open_since_an_earlier_day_is_no_visit_today(
    audited_post: Callable[[dict[str, Any]], Any], rw_app: Flask, status: str, days_ago: int,
    disposition: str,
) -> None:
    """An office visit never closed in the chart (still in progress or arrived since an earlier
    day) is not happening now, so it is no visit today. Whether it took place on its own day
    the status does not say: where it could be the missing visit (40 days or a day ago), the
    pattern abstains (recorded, no card) rather than read it as none; 300 days ago it could not
    change the finding, which fires."""
    stale = encounter("enc-open", PID, day(days_ago, "T09:00:00Z"), status=status)
    fired = _sign_today(audited_post, [stale])
    rows = [r for r in audit_rows(rw_app) if r["pattern"] == VISITS]
    assert [r["disposition"] for r in rows] == [disposition]
    assert (VISITS in fired) is (disposition == "shown")


def test_the_hooks_encounter_is_todays_visit_even_when_not_prefetched(
    post: Callable[[dict[str, Any]], Any]
) -> None:
    fired = _sign_today(post, [], encounterId="enc-not-in-prefetch")
    assert VISITS not in fired


@pytest.mark.parametrize("status", ["planned", "cancelled"])
def test_a_planned_or_cancelled_encounter_today_is_not_a_visit(
    post: Callable[[dict[str, Any]], Any], status: str
) -> None:
    later = encounter("enc-now", PID, day(0, "T15:00:00Z"), status=status)
    assert VISITS in _sign_today(post, [later])


_PALIPERIDONE = {
    "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1650967",
                "display": "1 ML paliperidone palmitate 156 MG/ML Prefilled Syringe"}],
    "text": "1 ML paliperidone palmitate 156 MG/ML Prefilled Syringe",
}


def _injection(pid: str, rid: str, days_ago: int, *, count: int | None = 1) -> dict[str, Any]:
    """One paliperidone palmitate injection ordered on its own (``timing.repeat.count`` 1, as
    some EHRs order each monthly dose); ``count=None``: an order of 30 days instead."""
    repeat: dict[str, Any] = (
        {"count": count} if count is not None
        else {"boundsPeriod": {"start": day(days_ago), "end": day(days_ago - 30)}}
    )
    resource = order(rid, pid, "aripiprazole10", authored=day(days_ago), status="completed",
                     dosage=[{"timing": {"repeat": repeat}, "route": {"text": "IM"},
                              "doseAndRate": [{"doseQuantity": {"value": 156, "unit": "mg"}}]}])
    resource["medicationCodeableConcept"] = _PALIPERIDONE
    return resource


@pytest.mark.parametrize(
    ("count", "days", "fires"), [(1, (75, 45, 15), False), (None, (75, 45), True)]
)
def test_monthly_injections_ordered_one_at_a_time_are_not_stopped_after_the_last(
    post: Callable[[dict[str, Any]], Any], count: int | None, days: tuple[int, ...], fires: bool
) -> None:
    """Paliperidone palmitate given 75, 45 and 15 days ago, each injection its own order, and
    oral aripiprazole being signed, with no visit since: the last injection still acts, so its
    day is no stop, and starting the injections and the aripiprazole are two changes, under
    the three that fire. Written as two orders of 30 days from 75 and 45 days ago, the second
    ended 15 days ago: a stop, three changes."""
    pid = f"rw-lai-one-at-a-time-{count}"
    history = [_injection(pid, f"pal-{d}", d, count=count) for d in days]
    draft = order("d-ari", pid, "aripiprazole10", authored=day(0), status="draft",
                  dosage=[daily(10)])
    body = request("order-sign", pid, history, drafts=[draft])
    assert (VISITS in topics(post(body))) is fires


OUTSIDE = {"display": "Dr. Outside, Other Health System"}


@pytest.mark.parametrize(
    ("reported", "fires"),
    [
        pytest.param({"reportedBoolean": True, "requester": OUTSIDE}, False, id="reportedBoolean"),
        pytest.param({"reportedReference": {"reference": "Organization/other-hs"}}, False,
                     id="reportedReference"),
        pytest.param({"reportedBoolean": "true"}, False, id="reportedBoolean-as-text"),
        pytest.param({"reported": True}, False, id="r5-reported"),
        pytest.param({"informationSource": [{"reference": "Organization/other-hs"}]}, False,
                     id="r5-informationSource"),
        pytest.param({"reportedBoolean": False}, True, id="written-here"),
    ],
)
def test_changes_recorded_from_another_source_do_not_outpace_visits_here(
    post: Callable[[dict[str, Any]], Any], reported: dict[str, Any], fires: bool
) -> None:
    # The three changes, each order recorded from another health system's prescriber: the
    # visits at which they were made are in that system's record, not here, so "no visit on
    # record" is no evidence that the changes outpaced visits. Written here, it is.
    changes = [{**resource, **reported} for resource in three_changes()]
    response = post(request("patient-view", PID, changes))
    assert response.status_code == 200
    assert (VISITS in topics(response)) is fires


@pytest.mark.parametrize(
    ("status", "disposition"),
    [
        pytest.param("unknown", "not-evaluable", id="unknown"),
        pytest.param(None, "not-evaluable", id="missing"),
        pytest.param("Booked", "not-evaluable", id="not-an-fhir-status"),
        # Left open in the chart since the visit (never closed): it may well have taken place.
        pytest.param("in-progress", "not-evaluable", id="in-progress-since"),
        pytest.param("arrived", "not-evaluable", id="arrived-since"),
        pytest.param("triaged", "not-evaluable", id="triaged-since"),
        pytest.param("finished", None, id="finished-control"),
        pytest.param("cancelled", "shown", id="cancelled"),
        pytest.param("planned", "shown", id="planned"),
    ],
)
def test_a_visit_whose_status_does_not_say_it_took_place_is_not_evidence_of_none(
    audited_post: Callable[[dict[str, Any]], Any], rw_app: Flask, status: str | None,
    disposition: str | None,
) -> None:
    # A psychiatry visit on each change day. Finished, they are the visits; cancelled or
    # planned, they did not happen (the card fires); of unknown status they may have: the
    # pattern abstains (recorded, no card) rather than read their absence into the record.
    visits = visits_at_each_change({"system": ACT_CODE, "code": "AMB"},
                                   type=[{"text": "Psychiatry follow-up"}])
    for visit in visits:
        if status is None:
            del visit["status"]
        else:
            visit["status"] = status
    fired = topics(audited_post(request("patient-view", PID, three_changes() + visits)))
    assert "regimen-escalation" in fired
    rows = [r for r in audit_rows(rw_app) if r["pattern"] == VISITS]
    assert [r["disposition"] for r in rows] == ([disposition] if disposition else [])
    assert (VISITS in fired) is (disposition == "shown")


@pytest.mark.parametrize(
    ("source", "fires"),
    [
        pytest.param({"reference": "Patient/" + PID}, False, id="told-by-the-patient"),
        pytest.param({"reference": "RelatedPerson/mother"}, False, id="told-by-a-relative"),
        pytest.param({"reference": "Organization/other-hs"}, False, id="from-another-system"),
        pytest.param({"reference": "Practitioner/rw-prac-1"}, True, id="a-practitioner-here"),
    ],
)
def test_statements_of_changes_told_by_others_do_not_outpace_visits_here(
    post: Callable[[dict[str, Any]], Any], source: dict[str, Any], fires: bool
) -> None:
    # The three changes as MedicationStatements (medication reconciliation): told by the
    # patient, a relative or another organization, they are no prescribing decisions made
    # here; recorded by a practitioner, who may be this site's, they count.
    statements = []
    for resource in three_changes():
        statement = {
            "resourceType": "MedicationStatement", "id": resource["id"].replace("mr", "ms"),
            "status": "active" if resource["status"] == "active" else "completed",
            "subject": resource["subject"],
            "medicationCodeableConcept": resource["medicationCodeableConcept"],
            "effectivePeriod": {"start": resource["authoredOn"]},
            "dosage": resource["dosageInstruction"], "informationSource": source,
        }
        bounds = resource["dosageInstruction"][0]["timing"]["repeat"].get("boundsPeriod")
        if bounds is not None:
            statement["effectivePeriod"] = {"start": bounds["start"], "end": bounds["end"]}
        statements.append(statement)
    response = post(request("patient-view", PID, statements))
    assert response.status_code == 200
    assert (VISITS in topics(response)) is fires
