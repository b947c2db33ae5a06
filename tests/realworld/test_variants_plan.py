"""The regimen a prescriber is adding to, read as the record and the ordering session say it is.

Antipsychotic polypharmacy at order-sign (an aripiprazole draft next to a risperidone order) is
the probe: each variant changes what the record or the session says of the risperidone, and the
card must follow. What is not use (a not-taken statement, a cancelled order, a proposal, a
declined fill, an unsigned order) never keeps an old order alive; a later record of a stop ends
it; the session's own drafts (a discontinuation, a ``priorPrescription``, a planned duration, a
lab order selected) are read as the plan they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.realworld.builders import (
    concept,
    daily,
    day,
    dispense,
    encounter,
    order,
    request,
)
from tests.realworld.conftest import topics

POLY = "psychotropic-polypharmacy"
Post = Callable[[dict[str, Any]], Any]
OLD = 400  # days: past the 365-day stale-order limit


def _aripiprazole(pid: str, **extra: Any) -> dict[str, Any]:
    return order(
        "dr-ari", pid, "aripiprazole10", authored=day(0, "T15:00:00-05:00"), status="draft",
        dosage=[daily(10)], **extra,
    )


def _risperidone(pid: str, days_ago: int, **extra: Any) -> dict[str, Any]:
    return order(
        "mr-risp", pid, "risperidone2", authored=day(days_ago, "T09:30:00-05:00"),
        dosage=[daily(2)], **extra,
    )


def _statement(pid: str, sid: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement", "id": sid, "status": status,
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": concept("risperidone2"), **extra,
    }


def _sign(pid: str, history: list[dict[str, Any]], drafts: list[dict[str, Any]]) -> Any:
    return request("order-sign", pid, history, drafts=drafts)


# What is no use of the drug, recorded recently next to an order past the stale limit.
NOT_USE: dict[str, Callable[[str], dict[str, Any]]] = {
    "not-taken statement": lambda pid: _statement(
        pid, "ms-1", "not-taken", effectiveDateTime=day(20)
    ),
    "unknown statement": lambda pid: _statement(pid, "ms-1", "unknown", effectiveDateTime=day(20)),
    # Before R4 a separate element says the drug was not taken, whatever the status says.
    "DSTU2 statement with wasNotTaken": lambda pid: _statement(
        pid, "ms-1", "active", effectiveDateTime=day(20), wasNotTaken=True,
        reasonNotTaken=[{"text": "patient declined"}],
    ),
    "STU3 statement taken na": lambda pid: _statement(
        pid, "ms-1", "active", effectiveDateTime=day(20), taken="na"
    ),
    "STU3 statement taken unk": lambda pid: _statement(
        pid, "ms-1", "active", effectiveDateTime=day(20), taken="unk"
    ),
    "cancelled order": lambda pid: order(
        "mr-c", pid, "risperidone2", authored=day(20), status="cancelled", dosage=[daily(2)]
    ),
    "proposal": lambda pid: order(
        "mr-p", pid, "risperidone2", authored=day(20), intent="proposal", dosage=[daily(2)]
    ),
    "unsigned order in the history": lambda pid: order(
        "mr-d", pid, "risperidone2", authored=day(20), status="draft", dosage=[daily(2)]
    ),
    "declined fill": lambda pid: dispense(
        "md-1", pid, "risperidone2", day(20), days=30, status="declined"
    ),
}


@pytest.mark.parametrize("kind", list(NOT_USE))
def test_what_is_not_use_keeps_no_old_order_alive(post: Post, kind: str) -> None:
    pid = f"plan-notuse-{kind.replace(' ', '-')}"
    body = _sign(pid, [_risperidone(pid, OLD), NOT_USE[kind](pid)], [_aripiprazole(pid)])
    assert POLY not in topics(post(body))


def test_a_completed_fill_keeps_the_old_order_alive(post: Post) -> None:
    pid = "plan-fill-alive"
    fill = dispense("md-1", pid, "risperidone2", day(20), days=30)
    body = _sign(pid, [_risperidone(pid, OLD), fill], [_aripiprazole(pid)])
    assert POLY in topics(post(body))


def _stopped_statement(pid: str, *, asserted: int, ended: int) -> dict[str, Any]:
    return _statement(
        pid, "ms-rec", "stopped", dateAsserted=day(asserted),
        effectivePeriod={"end": day(ended)},
    )


def test_a_later_record_of_a_stop_ends_an_open_order(post: Post) -> None:
    # A reconciliation 15 days ago: risperidone stopped 120 days ago. The order (200 days old,
    # not yet stale) is no longer today's regimen.
    pid = "plan-stopped-since"
    history = [_risperidone(pid, 200), _stopped_statement(pid, asserted=15, ended=120)]
    assert POLY not in topics(post(_sign(pid, history, [_aripiprazole(pid)])))


def test_use_after_the_recorded_stop_keeps_the_order(post: Post) -> None:
    pid = "plan-restarted"
    history = [
        _risperidone(pid, 200),
        _stopped_statement(pid, asserted=15, ended=120),
        dispense("md-1", pid, "risperidone2", day(60), days=30),
    ]
    assert POLY in topics(post(_sign(pid, history, [_aripiprazole(pid)])))


def test_a_renewal_written_before_the_old_order_ended_is_not_ended_by_it(post: Post) -> None:
    # The old order completed 10 days ago; its renewal was signed 11 days ago: the renewal
    # was recorded after the old order began, but the old order's end is no record about it.
    pid = "plan-renewal"
    old = order(
        "mr-old", pid, "risperidone2", authored=day(100), status="completed",
        dosage=[daily(2, boundsPeriod={"start": day(100), "end": day(10)})],
    )
    history = [old, _risperidone(pid, 11)]
    assert POLY in topics(post(_sign(pid, history, [_aripiprazole(pid)])))


def test_a_discontinuation_in_the_session_is_a_switch(post: Post) -> None:
    pid = "plan-discontinue"
    history = [_risperidone(pid, 30)]
    stop = _risperidone(pid, 30, status="stopped")  # the same order, re-sent to be stopped
    assert POLY in topics(post(_sign(pid, history, [_aripiprazole(pid)])))
    assert POLY not in topics(post(_sign(pid, history, [_aripiprazole(pid), stop])))


@pytest.mark.parametrize(
    "change", [{"status": "cancelled"}, {"intent": "option"}, {"intent": "proposal"}]
)
def test_a_draft_that_prescribes_nothing_adds_no_agent(post: Post, change: dict[str, str]) -> None:
    pid = f"plan-not-prescribed-{'-'.join(change.values())}"
    draft = {**_aripiprazole(pid), **change}
    assert POLY not in topics(post(_sign(pid, [_risperidone(pid, 30)], [draft])))


def test_prior_prescription_makes_the_draft_a_replacement(post: Post) -> None:
    pid, other_pid = "plan-prior", "plan-prior-other"
    replacing = _aripiprazole(pid, priorPrescription={"reference": "MedicationRequest/mr-risp"})
    assert POLY not in topics(post(_sign(pid, [_risperidone(pid, 30)], [replacing])))
    # A prior order that is not the risperidone replaces nothing the patient takes.
    other = _aripiprazole(
        other_pid, priorPrescription={"reference": "MedicationRequest/mr-elsewhere"}
    )
    assert POLY in topics(post(_sign(other_pid, [_risperidone(other_pid, 30)], [other])))


@pytest.mark.parametrize(
    ("authored", "days", "fires"),
    [
        (None, 14, False),  # a bridge of 14 days, no authoredOn: 14 days from signing
        (20, 14, False),  # pended 20 days ago: still 14 days from signing, not 6 days ago
        (None, 89, False),  # just under the 90-day overlap
        (None, 90, True),
        (20, 120, True),
    ],
)
def test_a_planned_duration_runs_from_the_day_of_signing(
    post: Post, authored: int | None, days: int, fires: bool
) -> None:
    pid = f"plan-duration-{authored}-{days}"
    draft = _aripiprazole(pid, dosageInstruction=[daily(10, timing={"repeat": {
        "frequency": 1, "period": 1, "periodUnit": "d",
        "boundsDuration": {"value": days, "unit": "days", "system": "http://unitsofmeasure.org",
                           "code": "d"},
    }})])
    if authored is None:
        del draft["authoredOn"]
    else:
        draft["authoredOn"] = day(authored)
    assert (POLY in topics(post(_sign(pid, [_risperidone(pid, 30)], [draft])))) is fires


def test_a_selected_lab_order_selects_no_medication(post: Post) -> None:
    pid = "plan-select-lab"
    lab = {
        "resourceType": "ServiceRequest", "id": "lab-1", "status": "draft", "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"text": "Prolactin level"},
    }
    body = request("order-select", pid, [_risperidone(pid, 30)],
                   drafts=[_aripiprazole(pid), lab], selections=["ServiceRequest/lab-1"])
    assert POLY not in topics(post(body))
    body["context"]["selections"] = ["MedicationRequest/dr-ari"]
    body["hookInstance"] += "-2"
    assert POLY in topics(post(body))


def test_visits_missing_from_the_request_are_unknown_not_absent(post: Post) -> None:
    """No encounters sent and none fetchable: visits-lag-changes cannot say visits are missing;
    sent as an empty result (none on record), it can."""
    pid = "plan-no-encounters"
    history = [
        order("mr-s1", pid, "sertraline50", authored=day(200), status="completed",
              dosage=[daily(50, timing={"repeat": {"frequency": 1, "period": 1,
                                                    "periodUnit": "d",
                                                    "boundsPeriod": {"start": day(200),
                                                                     "end": day(80)}}})]),
        order("mr-s2", pid, "sertraline100", authored=day(80), dosage=[daily(100)]),
        order("mr-q", pid, "quetiapine100", authored=day(50), dosage=[daily(100)]),
        order("mr-f", pid, "fluoxetine20", authored=day(30), dosage=[daily(20)]),
        encounter("enc-old", pid, day(400)),
    ]
    body = request("patient-view", pid, history)
    assert "visits-lag-changes" in topics(post(body))

    missing = request("patient-view", f"{pid}-2", [
        {**r, "subject": {"reference": f"Patient/{pid}-2"}} for r in history
    ])
    del missing["prefetch"]["encounters"]
    del missing["fhirServer"]  # nothing to fetch the encounters from
    assert "visits-lag-changes" not in topics(post(missing))


def _taper(pid: str, ends_in: int | None) -> dict[str, Any]:
    bounds = {"start": day(9)} | ({"end": day(-ends_in)} if ends_in is not None else {})
    return order("mr-risp", pid, "risperidone2", authored=day(9),
                 dosage=[daily(1, timing={"repeat": {"frequency": 1, "period": 1,
                                                      "periodUnit": "d", "boundsPeriod": bounds}})])


@pytest.mark.parametrize(("ends_in", "fires"), [(21, False), (None, True)])
def test_a_reconciliation_statement_does_not_extend_a_planned_end(
    post: Post, ends_in: int | None, fires: bool
) -> None:
    """A cross-taper: risperidone ordered to end in 21 days, aripiprazole started; a
    reconciliation two days ago lists risperidone with no end. The statement says it is taken,
    not that the taper was abandoned."""
    pid = f"plan-medrec-{ends_in}"
    history = [
        _taper(pid, ends_in),
        order("mr-ari", pid, "aripiprazole10", authored=day(9), dosage=[daily(5)]),
        _statement(pid, "ms-rec", "active", effectiveDateTime=day(2), dateAsserted=day(2)),
    ]
    assert (POLY in topics(post(request("patient-view", pid, history)))) is fires


# --- one product, one agent ------------------------------------------------------------------

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ADDERALL_XR = ("861237", "24 HR amphetamine aspartate 1.25 MG / amphetamine sulfate 1.25 MG / "
               "dextroamphetamine saccharate 1.25 MG / dextroamphetamine sulfate 1.25 MG "
               "Extended Release Oral Capsule")


def _by_name(rid: str, pid: str, name: str, days_ago: int, mg: float) -> dict[str, Any]:
    resource = order(rid, pid, "sertraline50", authored=day(days_ago), dosage=[daily(mg)])
    resource["medicationCodeableConcept"] = {"text": name}
    return resource


def _stimulant(pid: str, days_ago: int) -> dict[str, Any]:
    resource = order("mr-adderall", pid, "sertraline50", authored=day(days_ago),
                     dosage=[daily(5)])
    code, display = ADDERALL_XR
    resource["medicationCodeableConcept"] = {
        "coding": [{"system": RXNORM, "code": code, "display": display}], "text": display,
    }
    return resource


@pytest.mark.parametrize(("others", "fires"), [(3, False), (4, True)])
def test_mixed_amphetamine_salts_are_one_agent(post: Post, others: int, fires: bool) -> None:
    """Adderall (amphetamine and dextroamphetamine, one subgroup) and three other standing
    psychotropics are four, under the local threshold of five; a fourth other makes five."""
    pid = f"plan-adderall-{others}"
    names = ["sertraline", "trazodone", "clonazepam", "lamotrigine"][:others]
    history = [_stimulant(pid, 200)] + [
        _by_name(f"mr-{n}", pid, n, 200, 50) for n in names
    ]
    assert (POLY in topics(post(request("patient-view", pid, history)))) is fires


def test_mixed_amphetamine_salts_started_are_one_new_agent(post: Post) -> None:
    pid = "plan-adderall-new"
    history = [
        _by_name("mr-sert", pid, "sertraline", 400, 50),
        _stimulant(pid, 60),
        _by_name("mr-traz", pid, "trazodone", 30, 50),
    ]
    # Two new agents in 180 days (Adderall, trazodone): under the three that fire.
    assert "regimen-escalation" not in topics(post(request("patient-view", pid, history)))
    more = [*history, _by_name("mr-lam", pid, "lamotrigine", 20, 50)]
    assert "regimen-escalation" in topics(post(request("patient-view", f"{pid}-2", [
        {**r, "subject": {"reference": f"Patient/{pid}-2"}} for r in more
    ])))


def _draft_named(rid: str, pid: str, name: str, mg: float, **extra: Any) -> dict[str, Any]:
    resource = _by_name(rid, pid, name, 0, mg)
    return {**resource, "status": "draft", **extra}


def test_two_strengths_of_one_drug_signed_together_are_one_new_agent(post: Post) -> None:
    """Olanzapine 5 mg and 10 mg nightly, signed together, are 15 mg/day of one new agent:
    with sertraline that is two escalations, under the three that fire; a third new agent
    fires."""
    pid = "plan-two-strengths"
    history = [_by_name("mr-lam", pid, "lamotrigine", 400, 100)]
    drafts = [
        _draft_named("dr-o1", pid, "olanzapine", 5),
        _draft_named("dr-o2", pid, "olanzapine", 10),
        _draft_named("dr-sert", pid, "sertraline", 50),
    ]
    response = post(_sign(pid, history, drafts))
    assert "regimen-escalation" not in topics(response)

    third = _draft_named("dr-traz", pid, "trazodone", 50)
    assert "regimen-escalation" in topics(post(_sign(f"{pid}-2", [
        {**r, "subject": {"reference": f"Patient/{pid}-2"}} for r in history
    ], [{**d, "subject": {"reference": f"Patient/{pid}-2"}} for d in [*drafts, third]])))


@pytest.mark.parametrize("selected", ["dr-o1", "dr-o2"])
def test_two_strengths_of_one_drug_are_selected_when_either_is(post: Post, selected: str) -> None:
    """At order-select, two strengths of one drug in the session are one order, the one chosen
    whichever strength the selection names: olanzapine plus two agents added in the window is a
    third escalation."""
    pid = f"plan-select-strength-{selected}"
    history = [
        _by_name("mr-lam", pid, "lamotrigine", 400, 100),
        _by_name("mr-sert", pid, "sertraline", 100, 50),
        _by_name("mr-traz", pid, "trazodone", 60, 100),
    ]
    drafts = [_draft_named("dr-o1", pid, "olanzapine", 5),
              _draft_named("dr-o2", pid, "olanzapine", 10)]
    body = request("order-select", pid, history, drafts=drafts,
                   selections=[f"MedicationRequest/{selected}"])
    assert "regimen-escalation" in topics(post(body))


@pytest.mark.parametrize(
    ("birth", "child"),
    [("2014-03-02", True), ("2008-12-01", True), ("2008-11-30", False), ("1984-03-02", False)],
    ids=["12", "17-tomorrow-18", "18-today", "42"],
)
def test_the_source_cites_apc_as_it_is_for_a_child_and_as_a_local_choice_for_an_adult(
    post: Post, birth: str, child: bool
) -> None:
    pid = f"plan-apc-{birth}"
    body = _sign(pid, [_risperidone(pid, 30)], [_aripiprazole(pid)])
    body["prefetch"]["patient"]["birthDate"] = birth
    (card,) = [c for c in post(body).get_json()["cards"]
               if c["source"]["topic"]["code"] == POLY]
    label = card["source"]["label"]
    assert ("age range (1-17)" in label) is child
    assert ("applied to adults as a local choice" in label) is not child


# A hold is the prescriber's pause: a held order is not taken with the others.
@pytest.mark.parametrize(
    ("status", "fires"), [("on-hold", False), ("active", True)], ids=["on-hold", "active"]
)
def test_an_order_on_hold_is_not_taken_with_a_new_antipsychotic(
    post: Post, status: str, fires: bool
) -> None:
    """Risperidone on hold for suspected intolerance (R4 ``sintol``), aripiprazole ordered
    after: no two antipsychotics planned together; active, they are."""
    pid = f"plan-hold-{status}"
    held = _risperidone(pid, 200, status=status)
    if status == "on-hold":
        held["statusReason"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason",
            "code": "sintol"}]}
    assert (POLY in topics(post(_sign(pid, [held], [_aripiprazole(pid)])))) is fires


def test_a_hold_in_the_session_pauses_the_order_it_resends(post: Post) -> None:
    """The order-sign session holds risperidone (its order re-sent ``on-hold``) and starts
    aripiprazole: no card. A hold of another order (a new id) pauses nothing of risperidone's."""
    pid = "plan-hold-session"
    history = [_risperidone(pid, 200)]
    hold = {**_risperidone(pid, 200), "status": "on-hold"}
    assert POLY not in topics(post(_sign(pid, history, [_aripiprazole(pid), hold])))
    other = {**hold, "id": "mr-other"}
    assert POLY in topics(post(_sign(pid, history, [_aripiprazole(pid), other])))


def test_an_older_active_order_does_not_outlive_the_latest_hold(post: Post) -> None:
    """An active risperidone order left open, then a later one of it put on hold: the latest
    decision is the pause."""
    pid = "plan-hold-latest"
    older = {**_risperidone(pid, 300), "id": "mr-risp-old"}
    held = _risperidone(pid, 100, status="on-hold")
    assert POLY not in topics(post(_sign(pid, [older, held], [_aripiprazole(pid)])))
    assert POLY in topics(post(_sign(pid, [older], [_aripiprazole(pid)])))


_LACK = {"text": "Ineffective"}


def _failed(pid: str, rid: str, name: str, first: int, last: int, **line: Any) -> dict[str, Any]:
    """An antipsychotic (``name``: its product's display) taken daily from ``first`` to
    ``last`` days ago, stopped as ineffective."""
    dosage = daily(1, "{tbl}", **line)
    dosage["timing"]["repeat"]["boundsPeriod"] = {"start": day(first), "end": day(last)}
    resource = order(rid, pid, "quetiapine100", authored=day(first), dosage=[dosage],
                     status="stopped", statusReason=_LACK)
    resource["medicationCodeableConcept"] = {"text": name}
    return resource


@pytest.mark.parametrize(
    ("third", "fires"),
    [
        pytest.param({"first": 900, "last": 750}, False, id="three-real-trials"),
        pytest.param({"first": 900, "last": 859}, False, id="six-weeks"),
        pytest.param({"first": 900, "last": 860}, True, id="41-days"),
        pytest.param({"first": 900, "last": 899}, True, id="two-days"),
        pytest.param({"first": 900, "last": 750, "asNeededBoolean": True}, True, id="as-needed"),
    ],
)
def test_a_failed_monotherapy_is_a_standing_trial_of_six_weeks(
    post: Post, third: dict[str, Any], fires: bool
) -> None:
    """HBIPS-5: three failed antipsychotic monotherapies justify two antipsychotics. Haloperidol
    and olanzapine were each taken for five months and stopped as ineffective; quetiapine
    counts as the third only when it, too, was a trial: standing, for at least six weeks."""
    pid = f"plan-failed-{third['first']}-{third['last']}-{len(third)}"
    history = [
        _failed(pid, "f-hal", "haloperidol 5 MG Oral Tablet", 1000, 850),
        _failed(pid, "f-ola", "olanzapine 10 MG Oral Tablet", 700, 550),
        _failed(pid, "f-que", "quetiapine 100 MG Oral Tablet", **third),
        _risperidone(pid, 200),
    ]
    assert (POLY in topics(post(_sign(pid, history, [_aripiprazole(pid)])))) is fires


@pytest.mark.parametrize(
    ("subject", "fires"),
    [
        pytest.param("urn:uuid:4d0c9a52-7e1b-4c2e-9a4f-0c7d2b9e5f11", True,
                     id="urn-naming-no-entry"),
        pytest.param("pv-subject", True, id="bare-id"),
        pytest.param("Patient/someone-else", False, id="another-patient"),
    ],
)
def test_a_draft_whose_subject_cannot_be_compared_is_the_patients(
    post: Post, subject: str, fires: bool
) -> None:
    # An aripiprazole draft beside a current risperidone order. A subject the service cannot
    # resolve (a urn naming no entry of the session, a reference with no type) is unknown, not
    # another patient: the draft is read. A subject naming another Patient is not.
    pid = "p-draft-subject"
    draft = _aripiprazole(pid)
    draft["subject"] = {"reference": subject}
    fired = topics(post(_sign(pid, [_risperidone(pid, 30)], [draft])))
    assert (POLY in fired) is fires


# A hold in the session is a pause for every pattern, whatever the selection.
def _sertraline_filled_a_third(pid: str) -> list[dict[str, Any]]:
    """Sertraline 100 mg daily for 170 days, two 30-day fills: about a third of the days
    covered, a nonadherence card while the order is active."""
    return [
        order("mr-ser", pid, "sertraline100", authored=day(170, "T10:00:00Z"),
              dosage=[daily(100)]),
        dispense("d-s1", pid, "sertraline100", day(168, "T10:00:00Z"), days=30),
        dispense("d-s2", pid, "sertraline100", day(100, "T10:00:00Z"), days=30),
    ]


@pytest.mark.parametrize(
    ("resent_id", "fires"), [("mr-ser", False), ("mr-other", True)], ids=["same", "other-id"]
)
def test_a_hold_in_the_session_is_a_pause_for_nonadherence(
    post: Post, resent_id: str, fires: bool
) -> None:
    """Sertraline re-sent on hold while venlafaxine is started: the prescriber paused it, so
    its low fills are no card (as when the order is on hold on record). A hold re-sending
    another order (a new id) pauses nothing of sertraline's."""
    pid = f"plan-na-hold-{resent_id}"
    history = _sertraline_filled_a_third(pid)
    start = order("dr-ven", pid, "venlafaxine75", authored=day(0), status="draft",
                  dosage=[daily(75)])
    hold = {**history[0], "id": resent_id, "status": "on-hold"}
    assert "nonadherence" in topics(post(_sign(pid, history, [start])))
    assert ("nonadherence" in topics(post(_sign(pid, history, [start, hold])))) is fires


@pytest.mark.parametrize(
    ("resent_id", "fires"), [("mr-risp", False), ("mr-other", True)], ids=["same", "other-id"]
)
def test_an_unselected_hold_pauses_the_order_at_order_select(
    post: Post, resent_id: str, fires: bool
) -> None:
    """At order-select, risperidone re-sent on hold but not selected is still the plan the
    selected aripiprazole belongs to: no two antipsychotics, as order-sign says."""
    pid = f"plan-select-hold-{resent_id}"
    history = [_risperidone(pid, 200)]
    hold = {**_risperidone(pid, 200), "id": resent_id, "status": "on-hold"}
    body = request("order-select", pid, history, drafts=[_aripiprazole(pid), hold],
                   selections=["MedicationRequest/dr-ari"])
    assert (POLY in topics(post(body))) is fires


# A stop in the session is a dated change, as a stop on record is.
def _sertraline_raised(pid: str) -> list[dict[str, Any]]:
    """Sertraline 50 mg since 200 days, raised to 100 mg 20 days ago at the one visit."""
    return [
        order("mr-s50", pid, "sertraline50", authored=day(200, "T10:00:00Z"),
              dosage=[daily(50)], status="completed",
              dispenseRequest={"validityPeriod": {"start": day(200), "end": day(20)}}),
        order("mr-s100", pid, "sertraline100", authored=day(20, "T10:00:00Z"),
              dosage=[daily(100)]),
        encounter("e-1", pid, day(20, "T09:00:00Z"), end=day(20, "T09:30:00Z"),
                  type=[{"text": "Psychiatry follow-up visit"}]),
    ]


@pytest.mark.parametrize(
    ("how", "fires"),
    [("stopped", True), ("cancelled", True), ("prior", True), ("other-id", False)],
)
def test_a_switch_in_the_session_counts_its_stop_as_a_change(
    post: Post, how: str, fires: bool
) -> None:
    """Sertraline (raised 20 days ago) switched to fluoxetine in the session, by a re-sent stop
    or a ``priorPrescription``: the raise, the stop and the start are 3 changes against 1 visit.
    A stop of an order not on record (another id) stops nothing: 2 changes, no card."""
    pid = f"plan-vl-switch-{how}"
    history = _sertraline_raised(pid)
    start = order("dr-flx", pid, "fluoxetine20", authored=day(0), status="draft",
                  dosage=[daily(20)])
    if how == "prior":
        drafts = [{**start, "priorPrescription": {"reference": "MedicationRequest/mr-s100"}}]
    else:
        status = "stopped" if how == "other-id" else how
        rid = "mr-other" if how == "other-id" else "mr-s100"
        drafts = [start, {**history[1], "id": rid, "status": status}]
    cards = topics(post(_sign(pid, history, drafts)))
    assert ("visits-lag-changes" in cards) is fires
    assert POLY not in cards and "regimen-escalation" not in cards
