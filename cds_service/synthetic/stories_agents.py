"""Stories about which agents a patient takes: none, one, too many, not tolerated, not filled.

Archetypes ``clean``, ``stable``, ``repeated_intolerance``, ``psychotropic_polypharmacy``,
``nonadherence`` and their near misses. Each returns the first day (days ago) of psychiatric care.
"""

from __future__ import annotations

from cds_service.synthetic import catalogue as cat
from cds_service.synthetic.resources import PatientBuilder
from cds_service.synthetic.steps import course, depression, low_scores, visits

# -- no pattern ---------------------------------------------------------------------------------


def clean(b: PatientBuilder) -> int:
    """No psychiatric care: for half the patients one PHQ-9 of 0-4, 30-300 days ago. Fires
    nothing; returns 0."""
    if b.rng.random() < 0.5:
        b.phq9(b.rng.randint(30, 300), b.rng.randint(0, 4))
    return 0


def stable(b: PatientBuilder) -> int:
    """A responder on one agent: depression, a PHQ-9 of 14-18, then sertraline 100 mg,
    escitalopram 10 mg or fluoxetine 20 mg once daily from 400-700 days ago, filled on time, with
    visits about every 60 days and PHQ-9 scores of 3-9 after. Fires nothing."""
    drug, mg = b.rng.choice((("sertraline", 100), ("escitalopram", 10), ("fluoxetine", 20)))
    start = b.rng.randint(400, 700)
    depression(b, start + 10)
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
        classes = {cat.DRUGS[name].intolerance_class for name, _ in picked}
        # repeated-intolerance counts unrelated classes: each agent from a class of its own
        if one_class or len(classes) == n:
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
    depression(b, care)
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
    """Three agents of three pharmacological classes not tolerated (a stop for suspected
    intolerance, a mild nocebo-type reaction, or both), about 600, 430 and 260 days ago, then
    mirtazapine 15 mg. Fires repeated-intolerance: ``min_distinct_classes`` 3 unrelated classes
    within ``lookback_days`` 730 (multiple drug intolerance syndrome, Macy & Ho 2012)."""
    r = b.rng.randint
    return _intolerance_story(b, [r(580, 620), r(410, 450), r(255, 265)])


def near_miss_repeated_intolerance(b: PatientBuilder) -> int:
    """The repeated-intolerance story one step short, must fire nothing; one variant of: two
    agents only; three SSRIs (one class, N06AB); the first 765-780 days ago (past
    ``lookback_days`` 730); or the third an immune allergy (urticaria, angioedema or
    anaphylaxis, high criticality), a reaction that never counts."""
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
    """Fires psychotropic-polypharmacy, one of two ways. Half the time schizoaffective or
    bipolar II disorder with quetiapine from about 520 and risperidone from about 320 days ago,
    both still taken (sometimes with lithium): 2 antipsychotics (``min_concurrent_antipsychotics``)
    overlapping far past ``min_overlap_days`` 90 (HEDIS APC). Otherwise depression with five
    standing psychotropics (sertraline, bupropion, lamotrigine, lorazepam, trazodone):
    ``min_concurrent_psychotropics`` 5 (a local choice)."""
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
    depression(b, care)
    course(b, "sertraline", 150, care)
    course(b, "bupropion", 150, r(560, 600), doses=2)
    course(b, "lamotrigine", 100, r(450, 490), doses=2)
    course(b, "lorazepam", 0.5, r(360, 400), doses=2)
    course(b, "trazodone", 50, r(280, 320))
    visits(b, care, 10)
    low_scores(b, 100, 30)
    return care


def near_miss_psychotropic_polypharmacy(b: PatientBuilder) -> int:
    """Schizoaffective or bipolar II disorder on lithium, one step short of
    psychotropic-polypharmacy, must fire nothing: either four psychotropics with one
    antipsychotic (lithium plus quetiapine, sertraline, lorazepam; lithium is not counted as an
    antipsychotic), or risperidone switched to aripiprazole about 400 days ago, never together."""
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
        depression(b, care + 5)
    ref = b.medication_request(drug, mg, start_ago=care)
    b.regular_dispenses(ref, start_ago=care, end_ago=205)
    for day in fills_in_window:
        b.dispense(ref, days_ago=day)
    visits(b, care, 15, every=60)
    low_scores(b, care - 90, 100)
    return care


def nonadherence(b: PatientBuilder) -> int:
    """One standing agent (escitalopram, sertraline, fluoxetine or aripiprazole) filled on time
    until about 205 days ago, then four 30-day fills with month-long gaps. Fires nonadherence:
    PDC about 0.63 over ``window_days`` 180, below ``pdc_below`` 0.80 with >= ``min_dispenses``
    2 fills (PQA proportion of days covered)."""
    r = b.rng.randint
    # PDC about 110/175 = 0.63: 30-day fills with month-long gaps.
    return _adherence_story(b, [r(173, 177), r(118, 122), r(58, 62), r(18, 22)])


def near_miss_nonadherence(b: PatientBuilder) -> int:
    """The nonadherence story with five 30-day fills in the last 180 days, each about six days
    late: PDC about 0.85, just above ``pdc_below`` 0.80. Must fire nothing."""
    r = b.rng.randint
    # PDC about 150/175 = 0.85: each fill six days late.
    return _adherence_story(b, [175, 139 + r(-1, 1), 103 + r(-1, 1), 67 + r(-1, 1), 31 + r(-1, 1)])
