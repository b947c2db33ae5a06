"""Patient histories with known answers: which pattern each archetype must (and must not) fire.

Each archetype writes one clinical story with days counted back from the as-of date, keeping every
event well away from the other patterns' thresholds (no regimen changes in the last 90 days unless
the story is about visits; no more than two escalations in 180 days unless it is about escalation;
PHQ-9 below 10 after treatment starts unless it is about failed trials; fills on time). The
``near_miss_<pattern>`` stories stop one step short of their pattern, as opioid-cds pairs its
examples (6 of 10 days beside 7 of 10); each picks one of a few boundary variants at random.

Days are chosen against the defaults in config/default.yaml; the manifest's expectations hold for
those defaults only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cds_service import synthetic_catalogue as cat
from cds_service.synthetic_resources import PatientBuilder

# A story writes its resources and returns the first day (days ago) of psychiatric care.
Story = Callable[[PatientBuilder], int]


@dataclass(frozen=True)
class Archetype:
    name: str
    expected: frozenset[str]
    story: Story


def course(
    b: PatientBuilder,
    drug: str,
    mg: float,
    start: int,
    end: int | None = None,
    *,
    doses: int = 1,
    status: str | None = None,
    stop: tuple[str, str, str] | None = None,
    prior: str | None = None,
) -> str:
    """An order of ``mg`` per dose, ``doses`` a day, filled on time while it runs."""
    ref = b.medication_request(
        drug,
        mg,
        start_ago=start,
        end_ago=end,
        doses_per_day=doses,
        status=status,
        stop_reason=stop,
        prior=prior,
    )
    b.regular_dispenses(ref, start_ago=start, end_ago=end or 0)
    return ref


def visits(b: PatientBuilder, start: int, end: int, every: int = 45) -> None:
    day = start
    while day >= end:
        b.encounter(day, virtual=b.rng.random() < 0.2)
        day -= every + b.rng.randint(-5, 5)


def low_scores(b: PatientBuilder, *days: int) -> None:
    for day in days:
        b.phq9(day, b.rng.randint(3, 9))


def _depression(b: PatientBuilder, onset: int) -> None:
    b.condition(b.rng.choice(cat.DEPRESSION_CONDITIONS), onset_ago=onset)


# -- no pattern ---------------------------------------------------------------------------------


def clean(b: PatientBuilder) -> int:
    if b.rng.random() < 0.5:
        b.phq9(b.rng.randint(30, 300), b.rng.randint(0, 4))
    return 0


def stable(b: PatientBuilder) -> int:
    drug, mg = b.rng.choice((("sertraline", 100), ("escitalopram", 10), ("fluoxetine", 20)))
    start = b.rng.randint(400, 700)
    _depression(b, start + 10)
    b.phq9(start + 3, b.rng.randint(14, 18))
    course(b, drug, mg, start)
    visits(b, start, 10, every=60)
    low_scores(b, start - 60, start - 180, 40)
    return start


# -- repeated-intolerance -----------------------------------------------------------------------


def _pick_intolerances(b: PatientBuilder, n: int, *, one_class: bool) -> list[tuple[str, float]]:
    pool = [
        c for c in cat.INTOLERANCE_CANDIDATES if not one_class or cat.DRUGS[c[0]].atc4 == "N06AB"
    ]
    while True:
        picked = b.rng.sample(pool, n)
        classes = {cat.DRUGS[name].atc4 for name, _ in picked}
        if one_class or n < 2 or len(classes) >= 2:
            return picked


def _not_tolerated(b: PatientBuilder, drug: str, mg: float, stopped: int) -> None:
    """Recorded as a stopped order, an AllergyIntolerance, or both, as EHRs vary."""
    how = b.rng.choice(("order", "allergy", "both"))
    if how in ("order", "both"):
        start = stopped + b.rng.randint(7, 18)
        ref = b.medication_request(
            drug,
            mg,
            start_ago=start,
            end_ago=stopped,
            status="stopped",
            stop_reason=cat.STOP_INTOLERANCE,
        )
        b.dispense(ref, days_ago=start, first=True)
    if how in ("allergy", "both"):
        b.allergy(drug, days_ago=stopped, reaction=b.rng.choice(cat.NOCEBO_REACTIONS))


def _intolerance_story(
    b: PatientBuilder, stops: list[int], *, one_class: bool = False, last_is_allergy: bool = False
) -> int:
    drugs = _pick_intolerances(b, len(stops), one_class=one_class)
    care = stops[0] + 30
    _depression(b, care)
    for i, ((drug, mg), stopped) in enumerate(zip(drugs, stops, strict=True)):
        if last_is_allergy and i == len(stops) - 1:
            b.allergy(
                drug, days_ago=stopped, reaction=b.rng.choice(cat.IMMUNE_REACTIONS), kind="allergy"
            )
        else:
            _not_tolerated(b, drug, mg, stopped)
    current = b.rng.randint(235, 245)
    course(b, "mirtazapine", 15, current)
    visits(b, care, 10)
    low_scores(b, current - 30, 60)
    return care


def repeated_intolerance(b: PatientBuilder) -> int:
    r = b.rng.randint
    return _intolerance_story(b, [r(580, 620), r(410, 450), r(255, 265)])


def near_miss_repeated_intolerance(b: PatientBuilder) -> int:
    r = b.rng.randint
    variant = b.rng.choice(("two_agents", "one_class", "older_than_lookback", "third_is_allergy"))
    if variant == "two_agents":
        return _intolerance_story(b, [r(580, 620), r(410, 450)])
    if variant == "one_class":
        return _intolerance_story(b, [r(580, 620), r(410, 450), r(255, 265)], one_class=True)
    if variant == "older_than_lookback":
        return _intolerance_story(b, [r(765, 780), r(410, 450), r(255, 265)])
    return _intolerance_story(b, [r(580, 620), r(410, 450), r(255, 265)], last_is_allergy=True)


# -- psychotropic-polypharmacy ------------------------------------------------------------------


def psychotropic_polypharmacy(b: PatientBuilder) -> int:
    r = b.rng.randint
    if b.rng.random() < 0.5:  # two antipsychotics at once
        care = r(690, 710)
        b.condition(b.rng.choice(cat.PSYCHOSIS_CONDITIONS), onset_ago=care)
        if b.rng.random() < 0.5:
            course(b, "lithium carbonate", 300, care, doses=3)
        course(b, "quetiapine", 150, r(500, 540), doses=2)
        course(b, "risperidone", 1, r(300, 340), doses=2)
        visits(b, care, 10)
        return care
    care = r(690, 710)  # five psychotropics at once
    _depression(b, care)
    course(b, "sertraline", 150, care)
    course(b, "bupropion", 150, r(560, 600), doses=2)
    course(b, "lamotrigine", 100, r(450, 490), doses=2)
    course(b, "lorazepam", 0.5, r(360, 400), doses=2)
    course(b, "trazodone", 50, r(280, 320))
    visits(b, care, 10)
    low_scores(b, 100, 30)
    return care


def near_miss_psychotropic_polypharmacy(b: PatientBuilder) -> int:
    r = b.rng.randint
    care = r(640, 660)
    b.condition(b.rng.choice(cat.PSYCHOSIS_CONDITIONS), onset_ago=care)
    course(b, "lithium carbonate", 300, care, doses=3)
    if b.rng.random() < 0.5:  # four psychotropics, one antipsychotic (lithium is not one)
        course(b, "quetiapine", 100, r(480, 520), doses=2)
        course(b, "sertraline", 100, r(400, 440))
        course(b, "lorazepam", 0.5, r(320, 340), doses=2)
    else:  # two antipsychotics, one after the other (a switch, never together)
        switch = r(390, 410)
        course(b, "risperidone", 1, r(590, 610), switch, doses=2)
        course(b, "aripiprazole", 10, switch)
    visits(b, care, 10)
    return care


# -- regimen-escalation -------------------------------------------------------------------------


def _escalation_story(b: PatientBuilder, increase: int, added: int, second: int | None) -> int:
    r = b.rng.randint
    drug, low, high = b.rng.choice((("escitalopram", 10, 20), ("sertraline", 50, 100)))
    care = r(410, 430)
    _depression(b, care + 5)
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
    _depression(b, care + 10)
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
    _depression(b, care + 5)
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


# -- nonadherence -------------------------------------------------------------------------------


def _adherence_story(b: PatientBuilder, fills_in_window: list[int]) -> int:
    r = b.rng.randint
    drug, mg = b.rng.choice(
        (("escitalopram", 10), ("sertraline", 100), ("fluoxetine", 20), ("aripiprazole", 10))
    )
    care = r(400, 440)
    if drug == "aripiprazole":
        b.condition(b.rng.choice(cat.PSYCHOSIS_CONDITIONS), onset_ago=care + 5)
    else:
        _depression(b, care + 5)
    ref = b.medication_request(drug, mg, start_ago=care)
    b.regular_dispenses(ref, start_ago=care, end_ago=205)
    for day in fills_in_window:
        b.dispense(ref, days_ago=day)
    visits(b, care, 15, every=60)
    low_scores(b, care - 90, 100)
    return care


def nonadherence(b: PatientBuilder) -> int:
    r = b.rng.randint
    # PDC about 110/175 = 0.63: 30-day fills with month-long gaps.
    return _adherence_story(b, [r(173, 177), r(118, 122), r(58, 62), r(18, 22)])


def near_miss_nonadherence(b: PatientBuilder) -> int:
    r = b.rng.randint
    # PDC about 150/175 = 0.85: each fill six days late.
    return _adherence_story(b, [175, 139 + r(-1, 1), 103 + r(-1, 1), 67 + r(-1, 1), 31 + r(-1, 1)])


def _archetypes() -> dict[str, Archetype]:
    table: dict[str, Archetype] = {
        "clean": Archetype("clean", frozenset(), clean),
        "stable": Archetype("stable", frozenset(), stable),
    }
    stories: dict[str, tuple[Story, Story]] = {
        "repeated-intolerance": (repeated_intolerance, near_miss_repeated_intolerance),
        "psychotropic-polypharmacy": (
            psychotropic_polypharmacy,
            near_miss_psychotropic_polypharmacy,
        ),
        "regimen-escalation": (regimen_escalation, near_miss_regimen_escalation),
        "multiple-failed-trials": (multiple_failed_trials, near_miss_multiple_failed_trials),
        "visits-lag-changes": (visits_lag_changes, near_miss_visits_lag_changes),
        "nonadherence": (nonadherence, near_miss_nonadherence),
    }
    for pattern_id, (positive, near_miss) in stories.items():
        name = pattern_id.replace("-", "_")
        table[name] = Archetype(name, frozenset({pattern_id}), positive)
        table[f"near_miss_{name}"] = Archetype(f"near_miss_{name}", frozenset(), near_miss)
    return table


ARCHETYPES: dict[str, Archetype] = _archetypes()
