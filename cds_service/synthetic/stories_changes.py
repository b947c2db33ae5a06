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
    """Depression treated by escalation: escitalopram 10 -> 20 mg or sertraline 50 -> 100 mg about
    165 days ago, aripiprazole 5 mg added about 135 days ago, then about 105 days ago either
    aripiprazole 5 -> 15 mg (past its 10 mg minimum effective dose in config/ingredients.csv, so
    not titration) or trazodone 50 mg added; a visit on each change day. Fires
    regimen-escalation: ``min_escalations`` 3 within ``window_days`` 180 (a local choice)."""
    r = b.rng.randint
    return _escalation_story(b, r(163, 172), r(130, 140), r(102, 110))


def near_miss_regimen_escalation(b: PatientBuilder) -> int:
    """The regimen-escalation story one step short, must fire nothing: either the dose increase
    and aripiprazole only (two escalations), or the dose increase 192-200 days ago, before
    ``window_days`` 180 (two in the window)."""
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
    """Depression (baseline PHQ-9 17-22) about 760 days ago through two failed antidepressant
    trials: an SSRI for 84-110 days (half the time stopped for no response), outcome PHQ-9 14-19,
    then escitalopram 20 mg, venlafaxine 150 mg/day or duloxetine 60 mg for 70-100 days,
    outcome 12-18, then bupropion or mirtazapine. Each trial is >= ``min_trial_days`` 28 at an
    adequate dose, with a fall below ``phq9_response_fall_fraction`` 0.5 and an outcome still
    >= ``phq9_persisting_min_score`` 10. Fires multiple-failed-trials: ``min_failed_trials`` 2
    within ``lookback_days`` 1095 (trial definition: Delphi consensus 2021)."""
    return _trials_story(b, "both_failed")


def near_miss_multiple_failed_trials(b: PatientBuilder) -> int:
    """The multiple-failed-trials story with the second trial not a failure, so one failed trial
    and nothing fires; one variant of: its outcome PHQ-9 5-9 (a response), 22-25 days long
    (under ``min_trial_days`` 28), or escitalopram 5 mg or sertraline 25 mg (under the minimum
    effective dose in config/ingredients.csv)."""
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
    """Depression seen about every 45 days until about 115 days ago, then three changes with one
    visit: the antidepressant lowered about 80 days ago (the visit), lorazepam stopped about 50
    and the dose raised again about 20 days ago. Fires visits-lag-changes: ``min_changes`` 3
    within ``window_days`` 90 with fewer review visits than changes (a local choice)."""
    return _changes_story(b, "three_changes_one_visit")


def near_miss_visits_lag_changes(b: PatientBuilder) -> int:
    """The visits-lag-changes story one step short, must fire nothing: either two changes in 90
    days (lorazepam stopped about 60, mirtazapine added about 30 days ago, a visit at each), or
    the three changes with a visit at each (as many visits as changes, none 90 days apart)."""
    return _changes_story(b, b.rng.choice(("near_two_changes", "near_equal_visits")))
