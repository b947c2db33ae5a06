"""Doses written as separate orders (2026-11-30 clock).

Steps: a taper or titration entered at one visit as one order per step, each with its own
``boundsPeriod.start``, in the history or among the drafts of one ordering session. Each step runs
from its own start (not from ``authoredOn``, the day all of them were typed), so the steps are
read in the order they apply, whatever their ids, and drafts that follow one another are not one
summed dose. Split doses: two orders of one drug over the same days (100 mg and 50 mg tablets)
are one daily dose, their sum, not a fall and a rise.

The probe is regimen-escalation: two agents were added in the window (quetiapine, venlafaxine),
so a third escalation fires the card; a taper of the sertraline the patient takes is none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.realworld.builders import daily, encounter, order, request
from tests.realworld.builders import day as days_ago

PID = "rw-steps"
TOPIC = "regimen-escalation"
Post = Callable[[dict[str, Any]], Any]


def _bounded(mg: float, first: int, last: int | None) -> dict[str, Any]:
    dosage = daily(mg)
    period = {"start": days_ago(first)}
    if last is not None:
        period["end"] = days_ago(last)
    dosage["timing"]["repeat"]["boundsPeriod"] = period
    return dosage


def _history() -> list[dict[str, Any]]:
    """Sertraline 100 mg for a year until 41 days ago; quetiapine and venlafaxine added."""
    return [
        order("s-long", PID, "sertraline100", authored=days_ago(400), status="completed",
              dosage=[_bounded(100, 400, 41)]),
        order("q-new", PID, "quetiapine100", authored=days_ago(30), dosage=[daily(100)]),
        order("v-new", PID, "venlafaxine75", authored=days_ago(60), dosage=[daily(75)]),
    ]


def _signing(
    first: list[dict[str, Any]], second: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """order-sign: sertraline 100 mg taken (continuing the year of ``_history``), and a draft
    of sertraline 100 mg tablets with ``first`` Dosage, and one of 50 mg tablets with ``second``
    (none when None)."""
    current = order("s-now", PID, "sertraline100", authored=days_ago(41), dosage=[daily(100)])
    drafts = [order("d-1", PID, "sertraline100", authored=days_ago(0), status="draft",
                    dosage=first)]
    if second is not None:
        drafts.append(order("d-2", PID, "sertraline50", authored=days_ago(0), status="draft",
                            dosage=second))
    return request("order-sign", PID, [*_history(), current], drafts=drafts)


def _fired(post: Post, body: dict[str, Any]) -> bool:
    response = post(body)
    assert response.status_code == 200
    return any(c["source"]["topic"]["code"] == TOPIC for c in response.get_json()["cards"])


@pytest.mark.parametrize("ids", [("9", "10"), ("10", "9"), ("step-a", "step-b")])
@pytest.mark.parametrize(("second_mg", "fires"), [(50, False), (100, False), (150, True)])
def test_history_steps_authored_together_apply_in_the_order_of_their_bounds(
    post: Post, ids: tuple[str, str], second_mg: float, fires: bool
) -> None:
    # Both written 40 days ago: 100 mg from day 40 to 34, then second_mg from day 33.
    first_id, second_id = ids
    steps = [
        order(first_id, PID, "sertraline100", authored=days_ago(40, "T10:00:00Z"),
              status="completed", dosage=[_bounded(100, 40, 34)]),
        order(second_id, PID, "sertraline50", authored=days_ago(40, "T10:00:00Z"),
              dosage=[_bounded(second_mg, 33, None)]),
    ]

    assert _fired(post, request("patient-view", PID, [*_history(), *steps])) is fires


@pytest.mark.parametrize(("later_mg", "fires"), [(50, False), (150, True)])
def test_draft_steps_that_follow_one_another_are_not_one_summed_dose(
    post: Post, later_mg: float, fires: bool
) -> None:
    # Sertraline 100 mg taken for a year; the session signs "100 mg until the 6th" and
    # "later_mg from the 7th": one plan in two orders, read as the same steps written in one
    # order are. A taper to 50 mg is no escalation; a step up to 150 mg is one (the third).
    # Summed as if taken together, 100 + 50 had read as an increase to 150 mg.
    body = _signing([_bounded(100, 0, -6)], [_bounded(later_mg, -7, None)])

    assert _fired(post, body) is fires


@pytest.mark.parametrize(("second", "fires"), [("50", True), ("none", False)])
def test_drafts_of_one_drug_starting_together_are_still_one_summed_dose(
    post: Post, second: str, fires: bool
) -> None:
    # Sertraline 100 mg and 50 mg tablets, both from today, are one order of 150 mg/day: an
    # increase from 100 mg (the third escalation). The 100 mg draft alone is a renewal.
    body = _signing([daily(100)], [daily(50)] if second == "50" else None)

    assert _fired(post, body) is fires


def _split(rid: str, product: str, mg: float, first: int, last: int | None,
           status: str) -> dict[str, Any]:
    return order(rid, PID, product, authored=days_ago(first), status=status,
                 dosage=[_bounded(mg, first, last)])


@pytest.mark.parametrize(("renewed_mg", "fires"), [(50, False), (100, True)])
def test_a_dose_split_over_two_orders_is_their_sum(
    post: Post, renewed_mg: float, fires: bool
) -> None:
    # Sertraline 100 mg + 50 mg tablets as two orders from 100 days ago, renewed together 50
    # days ago (the 50 mg tablet order then at renewed_mg), and quetiapine added 30 days ago.
    # 150 -> 150 is a renewal: sertraline new and quetiapine, 2 escalations. 150 -> 200 is an
    # increase, the third.
    history = [
        _split("s-a", "sertraline100", 100, 100, 51, "completed"),
        _split("s-b", "sertraline50", 50, 100, 51, "completed"),
        _split("s-c", "sertraline100", 100, 50, None, "active"),
        _split("s-d", "sertraline50", renewed_mg, 50, None, "active"),
        order("q-new", PID, "quetiapine100", authored=days_ago(30), dosage=[daily(100)]),
    ]

    assert _fired(post, request("patient-view", PID, history)) is fires


@pytest.mark.parametrize("renewed", ["sertraline100", "sertraline50"])
def test_two_like_orders_of_one_day_are_a_dose_not_known(post: Post, renewed: str) -> None:
    # Sertraline 50 mg twice on one day: a morning and a bedtime dose (100 mg/day) or one order
    # entered twice (50 mg/day)? Nothing kept tells, so neither the renewal at 100 mg (which a
    # copy would make an increase) nor at 50 mg (which a split would make a fall) is a change:
    # with quetiapine and sertraline new, 2 escalations, no card.
    history = [
        _split("s-a", "sertraline50", 50, 100, 51, "completed"),
        _split("s-b", "sertraline50", 50, 100, 51, "completed"),
        _split("s-c", renewed, 100 if renewed == "sertraline100" else 50, 50, None, "active"),
        order("q-new", PID, "quetiapine100", authored=days_ago(30), dosage=[daily(100)]),
    ]

    assert not _fired(post, request("patient-view", PID, history))


def test_split_orders_ending_a_day_apart_are_still_taken_together(post: Post) -> None:
    # Sertraline 100 mg + 50 mg from 100 days ago, one order ending on day 51, the other on day
    # 50 (the day after, as some systems write an end); renewed at 100 + 50: no change.
    history = [
        _split("s-a", "sertraline100", 100, 100, 51, "completed"),
        _split("s-b", "sertraline50", 50, 100, 50, "completed"),
        _split("s-c", "sertraline100", 100, 49, None, "active"),
        _split("s-d", "sertraline50", 50, 49, None, "active"),
        order("q-new", PID, "quetiapine100", authored=days_ago(30), dosage=[daily(100)]),
    ]

    assert not _fired(post, request("patient-view", PID, history))


@pytest.mark.parametrize(("written_together", "fires"), [(True, False), (False, True)])
def test_a_titration_written_as_one_order_per_step_is_one_change(
    post: Post, written_together: bool, fires: bool
) -> None:
    # Sertraline 25 -> 50 -> 100 -> 150 mg, two weeks a step, from 60 days ago, and one
    # psychiatry visit, that day. Written at that visit (all authored then), it is one plan: one
    # change, as the same steps in one order are. Each written on its own day, with no visit
    # in between, it is four changes against one visit (visits-lag-changes fires).
    steps = []
    for index, mg in enumerate((25, 50, 100, 150)):
        first = 60 - 14 * index
        last = None if mg == 150 else first - 13
        steps.append(order(
            f"s-{index}", PID, "sertraline50",
            authored=days_ago(60 if written_together else first, "T10:00:00Z"),
            status="active" if last is None else "completed", dosage=[_bounded(mg, first, last)],
        ))
    visit = encounter("e-1", PID, days_ago(60, "T09:00:00Z"), end=days_ago(60, "T09:40:00Z"),
                      type=[{"text": "Psychiatry follow-up"}])
    response = post(request("patient-view", PID, [*steps, visit]))

    assert response.status_code == 200
    fired = {c["source"]["topic"]["code"] for c in response.get_json()["cards"]}
    assert ("visits-lag-changes" in fired) is fires


@pytest.mark.parametrize(("later_mg", "fires"), [(50, False), (150, True)])
def test_draft_steps_whose_first_has_no_end_are_still_steps(
    post: Post, later_mg: float, fires: bool
) -> None:
    # The session signs "75 mg daily" (no end) and "later_mg daily from the 14th": a plan in
    # steps, the first running until the second begins. A taper to 50 mg is no escalation;
    # a step up to 150 mg is one (the third). Summed, 75 + 50 had read as "up to 125 mg".
    first = daily(75) if later_mg == 50 else daily(100)
    body = _signing([first], [_bounded(later_mg, -14, None)])

    assert _fired(post, body) is fires
