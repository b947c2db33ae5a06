"""Stories about how a regimen changes: escalation, trials that did not help, changes and visits.

Archetypes ``regimen_escalation``, ``multiple_failed_trials``, ``visits_lag_changes`` and their near
misses. Each returns the first day (days ago) of psychiatric care.
"""

from __future__ import annotations

from cds_service.synthetic import catalogue as cat
from cds_service.synthetic.resources import PatientBuilder
from cds_service.synthetic.steps import course, depression, low_scores, visits

# -- regimen-escalation -------------------------------------------------------------------------


def _escalation_story(b: PatientBuilder, increase: int, added: int, second: int | None) -> int:
    r = b.rng.randint
    drug, low, high = b.rng.choice((("escitalopram", 10, 20), ("sertraline", 50, 100)))
    care = r(410, 430)
    depression(b, care + 5)
    b.phq9(care + 5, r(15, 19))
    first = course(b, drug, low, care, increase)
    course(b, drug, high, increase, prior=first)
    if second is None:
        course(b, "aripiprazole", 5, added)
    elif b.rng.random() < 0.5:
        low_ap = course(b, "aripiprazole", 5, added, second)
        # Past 10 mg: steps up to an agent's minimum effective dose are titration, not escalation.
        course(b, "aripiprazole", 15, second, prior=low_ap)
    else:
        course(b, "aripiprazole", 5, added)
        course(b, "trazodone", 50, second)  # a third agent, for sleep
    visits(b, care, 10, every=30)
    for day in (increase, added, second):
        if day is not None:
            b.encounter(day)
    low_scores(b, 60, 20)
    return care


def regimen_escalation(b: PatientBuilder) -> int:
    r = b.rng.randint
    return _escalation_story(b, r(163, 172), r(130, 140), r(102, 110))


def near_miss_regimen_escalation(b: PatientBuilder) -> int:
    r = b.rng.randint
    if b.rng.random() < 0.5:  # two escalations in 180 days
        return _escalation_story(b, r(163, 172), r(120, 140), None)
    return _escalation_story(b, r(192, 200), r(130, 140), r(102, 110))  # first one too old


# -- multiple-failed-trials ---------------------------------------------------------------------


def _trials_story(b: PatientBuilder, variant: str) -> int:
    r = b.rng.randint
    first_drug, first_mg = b.rng.choice(
        (("sertraline", 100), ("fluoxetine", 20), ("citalopram", 20), ("paroxetine", 20))
    )
    second_drug, second_mg, second_doses = b.rng.choice(
        (("escitalopram", 20, 1), ("venlafaxine", 75, 2), ("duloxetine", 60, 1))
    )
    third_drug, third_mg, third_doses = b.rng.choice(
        (("bupropion", 150, 2), ("mirtazapine", 30, 1))
    )
    care = r(740, 780)
    depression(b, care + 10)
    b.phq9(care + 5, r(17, 22))
    first_end = care - r(84, 110)
    stop = cat.STOP_NO_RESPONSE if b.rng.random() < 0.5 else None
    course(b, first_drug, first_mg, care, first_end, status="stopped" if stop else None, stop=stop)
    b.phq9(first_end + 3, r(14, 19))
    second_end = first_end - (r(22, 25) if variant == "short_trial" else r(70, 100))
    if variant == "low_dose":
        second_drug, second_mg, second_doses = b.rng.choice(
            (("escitalopram", 5, 1), ("sertraline", 25, 1))
        )
    course(b, second_drug, second_mg, first_end, second_end, doses=second_doses)
    b.phq9(second_end + 4, r(5, 9) if variant == "score_below" else r(12, 18))
    course(b, third_drug, third_mg, second_end, doses=third_doses)
    visits(b, care, 10, every=40)
    low_scores(b, second_end - 60, 150, 30)
    return care


def multiple_failed_trials(b: PatientBuilder) -> int:
    return _trials_story(b, "both_failed")


def near_miss_multiple_failed_trials(b: PatientBuilder) -> int:
    return _trials_story(b, b.rng.choice(("score_below", "short_trial", "low_dose")))


# -- visits-lag-changes -------------------------------------------------------------------------


def _changes_story(b: PatientBuilder, variant: str) -> int:
    r = b.rng.randint
    drug, high, low = b.rng.choice(
        (("sertraline", 150, 100), ("escitalopram", 20, 10), ("venlafaxine", 150, 75))
    )
    care = r(390, 410)
    depression(b, care + 5)
    visits(b, care, 115)
    if variant == "near_two_changes":
        course(b, drug, high, care)
        stop_lorazepam, add = r(57, 63), r(27, 33)
        course(b, "lorazepam", 0.5, r(290, 310), stop_lorazepam, doses=2, status="stopped")
        course(b, "mirtazapine", 15, add)
        for day in (stop_lorazepam, add, r(3, 7)):
            b.encounter(day)
        low_scores(b, stop_lorazepam, add)
        return care
    lower, stop_lorazepam, back_up = r(77, 83), r(47, 53), r(17, 23)
    first = course(b, drug, high, care, lower)
    reduced = course(b, drug, low, lower, back_up, prior=first)
    course(b, drug, high, back_up, prior=reduced)
    course(b, "lorazepam", 0.5, r(290, 310), stop_lorazepam, doses=2, status="stopped")
    b.encounter(lower, virtual=b.rng.random() < 0.5)
    if variant == "near_equal_visits":
        b.encounter(stop_lorazepam)
        b.encounter(back_up)
    low_scores(b, lower)
    return care


def visits_lag_changes(b: PatientBuilder) -> int:
    return _changes_story(b, "three_changes_one_visit")


def near_miss_visits_lag_changes(b: PatientBuilder) -> int:
    return _changes_story(b, b.rng.choice(("near_two_changes", "near_equal_visits")))
