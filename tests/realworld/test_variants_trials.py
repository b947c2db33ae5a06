"""multiple-failed-trials on requests shaped like the clinical tester's (2026-11-30 clock): a
trial is adequate only for the days spent AT an adequate dose (a dose change sent as a new
order; a titration sent as one order with ``Dosage.sequence`` steps), and an antipsychotic trial
needs 6 weeks (TRRIP). Each story adds a failed venlafaxine trial, so the card fires exactly when
the trial under test is adequate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.realworld.builders import daily, order, request
from tests.realworld.builders import day as days_ago

PID = "rw-trials"
TOPIC = "multiple-failed-trials"
LACK = {
    "coding": [
        {"system": "http://snomed.info/sct", "code": "266721009",
         "display": "No response to treatment"}
    ],
    "text": "No response to treatment",
}  # fmt: skip


def _stopped(rid: str, product: str, mg: float, first: int, last: int, *, lack: bool = True
             ) -> dict[str, Any]:
    """An order taken from ``first`` to ``last`` days ago (boundsPeriod), then stopped."""
    dosage = daily(mg)
    dosage["timing"]["repeat"]["boundsPeriod"] = {"start": days_ago(first), "end": days_ago(last)}
    resource = order(rid, PID, product, authored=days_ago(first), dosage=[dosage],
                     status="stopped")
    if lack:
        resource["statusReason"] = LACK
    return resource


def _venlafaxine(first: int = 300) -> dict[str, Any]:
    """Venlafaxine 150 mg/day for 11 weeks from ``first`` days ago, stopped for lack of effect."""
    return _stopped("v-1", "venlafaxine75", 150, first, first - 77)


def _card(post: Callable[[dict[str, Any]], Any], resources: list[dict[str, Any]]) -> Any:
    response = post(request("patient-view", PID, resources))
    assert response.status_code == 200
    return next((c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == TOPIC),
                None)


@pytest.mark.parametrize(("days_at_100", "fires"), [(7, False), (27, False), (28, True)])
def test_a_reduction_below_the_minimum_ends_the_adequate_days(
    post: Callable[[dict[str, Any]], Any], days_at_100: int, fires: bool
) -> None:
    # Sertraline 100 mg, then a new order for 25 mg for 9 weeks, stopped for lack of effect.
    first = _stopped("s-1", "sertraline100", 100, 500, 501 - days_at_100, lack=False)
    reduced = _stopped("s-2", "sertraline50", 25, 500 - days_at_100, 437 - days_at_100)

    card = _card(post, [first, reduced, _venlafaxine()])

    assert (card is not None) is fires
    if card is not None:
        assert "sertraline 100 mg/day for 4 weeks: stopped for lack of effect" in card["detail"]


def _step(sequence: int, mg: float, days: int | None = None) -> dict[str, Any]:
    dosage = daily(mg, sequence=sequence)
    if days is not None:
        dosage["timing"]["repeat"]["boundsDuration"] = {
            "value": days, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"
        }
    return dosage


@pytest.mark.parametrize(("days_at_50", "fires"), [(7, False), (27, False), (28, True)])
def test_a_titration_order_counts_from_the_step_at_the_minimum(
    post: Callable[[dict[str, Any]], Any], days_at_50: int, fires: bool
) -> None:
    # One order: 25 mg/day for 63 days (sequence 1), then 50 mg/day (sequence 2); stopped for
    # lack of effect, with no end date, when venlafaxine replaced it ``days_at_50`` days after
    # reaching 50 mg (the order's validity period ends then too).
    titration = order("s-1", PID, "sertraline50", authored=days_ago(500),
                      dosage=[_step(1, 25, 63), _step(2, 50)], status="stopped",
                      statusReason=LACK)
    titration["dispenseRequest"] = {
        "validityPeriod": {"start": days_ago(500), "end": days_ago(437 - days_at_50)}
    }

    card = _card(post, [titration, _venlafaxine(first=437 - days_at_50)])

    assert (card is not None) is fires
    if card is not None:
        assert "sertraline 50 mg/day for 4 weeks: stopped for lack of effect" in card["detail"]


@pytest.mark.parametrize(("days", "fires"), [(35, False), (41, False), (42, True)])
def test_antipsychotic_trials_last_six_weeks_and_say_they_were_stopped(
    post: Callable[[dict[str, Any]], Any], days: int, fires: bool
) -> None:
    risperidone = _stopped("r-1", "risperidone2", 2, 400, 400 - days)
    aripiprazole = _stopped("a-1", "aripiprazole10", 10, 300, 300 - days)

    card = _card(post, [risperidone, aripiprazole])

    assert (card is not None) is fires
    if card is not None:
        # TRRIP's dose (>= 600 mg chlorpromazine equivalents) is not applied: never "adequate".
        assert "2 antipsychotic trials of at least six weeks at or above the minimum effective " \
            "dose were stopped because they did not help enough" in card["detail"]
        assert "adequate" not in card["summary"]
        assert "how the patient started" not in card["detail"]


@pytest.mark.parametrize(
    ("reason", "fires"),
    [("Not effective, no side effects", True), ("Not effective, side effects", False)],
)
def test_a_lack_of_effect_stop_that_denies_side_effects_is_a_failed_trial(
    post: Callable[[dict[str, Any]], Any], reason: str, fires: bool
) -> None:
    # Venlafaxine 150 mg for 11 weeks stopped for lack of effect, then sertraline 100 mg for
    # 10 weeks stopped with ``reason``: a stop that says there were no side effects is a stop
    # for lack of effect, not for intolerance (which would exclude the trial).
    second = _stopped("s-1", "sertraline100", 100, 150, 80, lack=False)
    second["statusReason"] = {"text": reason}
    resources = [_venlafaxine(), second]
    assert (_card(post, resources) is not None) is fires


@pytest.mark.parametrize(("days_at_100", "fires"), [(27, False), (28, True)])
def test_steps_written_as_orders_on_one_day_run_from_their_own_bounds(
    post: Callable[[dict[str, Any]], Any], days_at_100: int, fires: bool
) -> None:
    # A titration written at one visit as two orders, both authored 500 days ago: sertraline
    # 25 mg for two weeks, then 100 mg from day 486 (its boundsPeriod.start), stopped for lack
    # of effect. Only the days from its own start are at an adequate dose.
    low = _stopped("s-1", "sertraline50", 25, 500, 487, lack=False)
    high = _stopped("s-2", "sertraline100", 100, 486, 486 - days_at_100)
    high["authoredOn"] = days_ago(500)

    card = _card(post, [low, high, _venlafaxine()])

    assert (card is not None) is fires


@pytest.mark.parametrize(
    ("sig", "fires"),
    [
        ({"text": "50 mg at bedtime as needed for sleep", "asNeededBoolean": True,
          "timing": {"code": {"text": "QHS"}},
          "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg"}}]}, False),
        ({"text": "50 mg at bedtime", "timing": {"repeat": {"frequency": 1, "period": 1,
          "periodUnit": "d", "when": ["HS"]}},
          "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg"}}]}, False),
        ({"text": "200 mg daily", "timing": {"repeat": {"frequency": 1, "period": 1,
          "periodUnit": "d"}}, "doseAndRate": [{"doseQuantity": {"value": 200, "unit": "mg"}}]},
         True),
    ],
    ids=["as-needed-for-sleep", "hypnotic-dose-at-bedtime", "antidepressant-dose"],
)
def test_a_sleep_dose_being_signed_does_not_raise_the_trials_card(
    post: Callable[[dict[str, Any]], Any], sig: dict[str, Any], fires: bool
) -> None:
    # Two failed trials (sertraline, venlafaxine); the session signs trazodone. At a hypnotic
    # dose or as needed it treats sleep, not the depression the trials are about: the card is
    # for the chart (patient-view), not this order. At 200 mg/day it is a third antidepressant.
    sertraline = _stopped("s-1", "sertraline100", 100, 500, 430)
    drafted = order("d-traz", PID, "trazodone100", authored=days_ago(0), status="draft",
                    dosage=[sig])
    body = request("order-sign", PID, [sertraline, _venlafaxine()], drafts=[drafted])

    response = post(body)

    assert response.status_code == 200
    fired = {c["source"]["topic"]["code"] for c in response.get_json()["cards"]}
    assert (TOPIC in fired) is fires


@pytest.mark.parametrize(
    ("sig", "fires"),
    [
        ("Take 1 tablet (100 mg total) by mouth daily. May increase to 1.5 tablets daily after "
         "4 weeks if needed.", True),
        ("Take 1 tablet (100 mg total) by mouth daily. Call the clinic if needed.", True),
        ("Take 1 tablet (100 mg total) by mouth daily if needed for sleep.", False),
    ],
    ids=["later-increase-if-needed", "call-if-needed", "as-needed-dose"],
)
def test_a_trial_whose_sig_names_a_later_change_if_needed_is_a_scheduled_trial(
    post: Callable[[dict[str, Any]], Any], sig: str, fires: bool
) -> None:
    # Sertraline 100 mg daily for 10 weeks, stopped for lack of effect, after venlafaxine: a
    # later increase or a call "if needed" leaves the daily 100 mg standing (two failed trials);
    # a dose taken as needed is no trial.
    second = _stopped("s-1", "sertraline100", 100, 150, 80)
    second["dosageInstruction"][0]["text"] = sig
    assert (_card(post, [_venlafaxine(), second]) is not None) is fires


def _phq9(rid: str, score: float, ago: int) -> dict[str, Any]:
    """A PHQ-9 total score (LOINC 44261-6) taken ``ago`` days ago."""
    return {
        "resourceType": "Observation", "id": rid, "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6",
                             "display": "PHQ-9 total score"}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": days_ago(ago, "T11:00:00Z"),
        "valueQuantity": {"value": score, "unit": "{score}",
                          "system": "http://unitsofmeasure.org", "code": "{score}"},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("scores", "fires"),
    [
        # Remission (PHQ-9 < 5) or a response (a fall of >= 50% from the baseline of 20) once the
        # trial had run 4 weeks, then a relapse to 18 at its end: it worked, no failed trial.
        pytest.param([(4, 600)], False, id="remission-then-relapse"),
        pytest.param([(10, 560), (14, 480)], False, id="response-then-partial-loss"),
        pytest.param([(3, 450), (18, 420)], False, id="late-remission"),
        # Near misses: a 45% fall (still 11), and a remission score in the trial's first two
        # weeks (before an adequate length it says nothing of the drug's effect).
        pytest.param([(11, 600)], True, id="forty-five-percent-fall"),
        pytest.param([(4, 690), (17, 600)], True, id="remission-before-four-weeks"),
        # Negative of the rule: no score between baseline and end but the one at the end.
        pytest.param([], True, id="no-response-at-all"),
    ],
)
def test_a_trial_that_brought_response_or_remission_is_no_failed_trial(
    post: Callable[[dict[str, Any]], Any], scores: list[tuple[float, int]], fires: bool
) -> None:
    sertraline = _stopped("s-1", "sertraline100", 100, 700, 400, lack=False)
    observations = [_phq9("q-base", 20, 702), _phq9("q-end", 18, 405)]
    observations += [_phq9(f"q-{n}", value, ago) for n, (value, ago) in enumerate(scores)]

    card = _card(post, [sertraline, _venlafaxine(), *observations])

    assert (card is not None) is fires
    if card is not None:
        line = "sertraline 100 mg/day for 42 weeks: PHQ-9 from 20 to 18 at the end"
        assert line in card["detail"]


def _venlafaxine_from(first: int) -> dict[str, Any]:
    """Venlafaxine 150 mg/day from ``first`` days ago until 300 days ago, stopped for lack of
    effect: the agent that replaces (or joins) sertraline."""
    return _stopped("v-1", "venlafaxine75", 150, first, 300)


@pytest.mark.parametrize(
    ("sertraline", "outcome"),
    [
        # Venlafaxine starts 420 days ago; sertraline 150 mg stops 20 days later (within the
        # switch window), or is tapered from 10 days later (100 mg, then 50 mg) and stopped 60
        # days later: a cross-taper, the trial judged at its end.
        pytest.param([(150, 700, 400)], "PHQ-9 from 21 to 18 at the end",
                     id="stopped-within-the-window"),
        # (No PHQ-9 within a month of this end: the stop's reason says how it ended.)
        pytest.param([(150, 700, 410), (100, 410, 385), (50, 385, 360)],
                     "stopped for lack of effect", id="tapered-from-the-switch"),
        # Near misses: sertraline kept at 150 mg for 60 days beside venlafaxine (augmentation),
        # and a taper that starts only after 40 days of both (the first weeks were both taken).
        pytest.param([(150, 700, 360)], "PHQ-9 from 21 to 18 when venlafaxine was added",
                     id="kept-60-days"),
        pytest.param([(150, 700, 380), (50, 380, 360)],
                     "PHQ-9 from 21 to 18 when venlafaxine was added",
                     id="taper-begun-after-the-window"),
        # ... and one cut within the window, then the lower dose held 60 days beside it.
        pytest.param([(150, 700, 410), (100, 410, 350)],
                     "PHQ-9 from 21 to 18 when venlafaxine was added",
                     id="one-cut-then-held-60-days"),
    ],
)
def test_a_cross_taper_is_a_switch_not_an_added_agent(
    post: Callable[[dict[str, Any]], Any], sertraline: list[tuple[float, int, int]], outcome: str
) -> None:
    orders = [
        _stopped(f"s-{n}", "sertraline100", mg, first, last, lack=n == len(sertraline) - 1)
        for n, (mg, first, last) in enumerate(sertraline)
    ]
    observations = [_phq9("q-base", 21, 702), _phq9("q-late", 18, 425)]

    card = _card(post, [*orders, _venlafaxine_from(420), *observations])

    assert card is not None
    line = next(line for line in card["detail"].splitlines() if "sertraline" in line)
    assert outcome in line


@pytest.mark.parametrize(
    "medication",
    [
        pytest.param({"medicationReference": {"reference": "Medication/med-unfetched",
                                              "display": "Sertraline 100 MG Oral Tablet"}},
                     id="reference-not-available-with-display"),
        pytest.param({"medicationReference": {"display": "Sertraline 100 MG Oral Tablet"}},
                     id="display-only-reference"),
        pytest.param({"medicationCodeableConcept": {"text": "Sertraline 100 MG Oral Tablet"}},
                     id="concept-text-control"),
    ],
)
def test_a_medication_named_only_by_a_references_display_keeps_its_strength(
    post: Callable[[dict[str, Any]], Any], medication: dict[str, Any]
) -> None:
    # Sertraline "1 tablet daily" for 10 weeks, stopped for lack of effect, after venlafaxine.
    # The Medication is not sent (and there is no fhirServer to fetch it), or the Reference is
    # a display alone: its display names the drug and the tablet's strength (100 mg), so the
    # trial's dose is known and adequate, as when the same words are the concept's text.
    sertraline = _stopped("s-1", "sertraline100", 1, 150, 80)
    del sertraline["medicationCodeableConcept"]
    sertraline.update(medication)
    sertraline["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {
        "value": 1, "unit": "tablet"}
    card = _card(post, [_venlafaxine(), sertraline])
    assert card is not None
    assert "sertraline 100 mg/day for 10 weeks" in card["detail"]
