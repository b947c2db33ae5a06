"""psychotropic-polypharmacy: >= 2 antipsychotics (or >= 5 psychotropics) overlapping >= 90 days."""

from __future__ import annotations

import pytest

from cds_service.patterns.psychotropic_polypharmacy import PATTERN_ID, detect
from fhir_mappers.record import Ingredient, MedicationCourse, PatientRecord, StopReasonKind

from .builders import (
    ARIPIPRAZOLE,
    BUPROPION,
    CLOZAPINE,
    HALOPERIDOL,
    LAMOTRIGINE,
    LITHIUM,
    LORAZEPAM,
    NOW,
    QUETIAPINE,
    RISPERIDONE,
    SERTRALINE,
    course,
    days_ago,
    defaults,
    draft,
    with_thresholds,
)

DEFAULTS = defaults(PATTERN_ID)


def _record(*courses: MedicationCourse) -> PatientRecord:
    return PatientRecord(courses=courses)


FOUR_PSYCHOTROPICS = (
    course(SERTRALINE, days_ago(350), mg=150),
    course(BUPROPION, days_ago(300), mg=300),
    course(LITHIUM, days_ago(200), mg=900),
    course(LAMOTRIGINE, days_ago(100), mg=200),
)


def test_two_antipsychotics_fire() -> None:
    record = _record(
        course(QUETIAPINE, days_ago(300), mg=300), course(RISPERIDONE, days_ago(60), mg=4)
    )
    finding = detect(record, (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.indicator == "info"
    assert finding.facts["trigger"] == "antipsychotics"
    assert finding.facts["antipsychotics"] == ["quetiapine", "risperidone"]
    assert finding.facts["antipsychotic_count"] == 2
    assert finding.facts["psychotropic_count"] == 2
    assert finding.facts["min_concurrent_antipsychotics"] == 2
    assert finding.facts["min_concurrent_psychotropics"] == 5
    assert finding.evidence_keys == {"agent:quetiapine", "agent:risperidone"}
    assert [e.note for e in finding.evidence] == ["SGA", "SGA"]
    assert [e.label for e in finding.evidence] == ["quetiapine 300 mg/day", "risperidone 4 mg/day"]
    assert finding.concerns_draft is False


def test_five_psychotropics_fire() -> None:
    record = _record(*FOUR_PSYCHOTROPICS, course(LORAZEPAM, days_ago(30), mg=1))
    finding = detect(record, (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.facts["trigger"] == "psychotropics"
    assert finding.facts["psychotropic_count"] == 5
    assert finding.facts["psychotropics"] == [
        "sertraline",
        "bupropion",
        "lithium",
        "lamotrigine",
        "lorazepam",
    ]
    assert finding.facts["antipsychotic_count"] == 0
    assert len(finding.evidence_keys) == 5


def test_both_thresholds() -> None:
    record = _record(
        *FOUR_PSYCHOTROPICS[:3],
        course(QUETIAPINE, days_ago(90), mg=100),
        course(ARIPIPRAZOLE, days_ago(30), mg=5),
    )
    finding = detect(record, (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["trigger"] == "both"


def test_statements_count_as_current_regimen() -> None:
    record = _record(
        course(QUETIAPINE, days_ago(300), mg=300),
        course(RISPERIDONE, days_ago(60), mg=4, source="MedicationStatement"),
    )
    assert detect(record, (), DEFAULTS, NOW) is not None


@pytest.mark.parametrize(
    "courses",
    [
        pytest.param(
            (course(RISPERIDONE, days_ago(100), mg=4), course(LITHIUM, days_ago(100), mg=900)),
            id="one-antipsychotic-plus-lithium",
        ),
        pytest.param(FOUR_PSYCHOTROPICS, id="four-psychotropics"),
        pytest.param(
            (
                course(QUETIAPINE, days_ago(300), mg=300, end=days_ago(1), status="active"),
                course(RISPERIDONE, days_ago(60), mg=4),
            ),
            id="first-ended-yesterday",
        ),
        pytest.param(
            (
                course(QUETIAPINE, days_ago(300), mg=300, status="stopped"),
                course(RISPERIDONE, days_ago(60), mg=4),
            ),
            id="first-stopped",
        ),
        pytest.param(
            (
                course(QUETIAPINE, days_ago(300), mg=300, status="entered-in-error"),
                course(RISPERIDONE, days_ago(60), mg=4),
            ),
            id="entered-in-error",
        ),
        pytest.param(
            (
                course(QUETIAPINE, days_ago(300), mg=300),
                course(
                    RISPERIDONE,
                    days_ago(60),
                    mg=4,
                    status="not-taken",
                    source="MedicationStatement",
                ),
            ),
            id="statement-not-taken",
        ),
        pytest.param(
            (*FOUR_PSYCHOTROPICS, course(LORAZEPAM, days_ago(30), mg=1, prn=True)),
            id="fifth-is-prn",
        ),
        pytest.param(
            (course(QUETIAPINE, days_ago(300), mg=50), course(QUETIAPINE, days_ago(30), mg=300)),
            id="same-ingredient-twice",
        ),
        pytest.param(
            (course(CLOZAPINE, days_ago(300), mg=400), course(ARIPIPRAZOLE, days_ago(30), mg=10)),
            id="clozapine-augmentation",
        ),
    ],
)
def test_near_misses_do_not_fire(courses: tuple[MedicationCourse, ...]) -> None:
    assert detect(_record(*courses), (), DEFAULTS, NOW) is None


def test_clozapine_with_two_other_antipsychotics_fires() -> None:
    record = _record(
        course(CLOZAPINE, days_ago(300), mg=400),
        course(ARIPIPRAZOLE, days_ago(30), mg=10),
        course(HALOPERIDOL, days_ago(10), mg=5),
    )
    finding = detect(record, (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["antipsychotic_count"] == 3


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(PatientRecord(), id="empty-record"),
        pytest.param(
            _record(*(course(None, days_ago(100), mg=1000) for _ in range(6))),
            id="six-non-psychotropic-drugs",
        ),
    ],
)
def test_negatives(record: PatientRecord) -> None:
    assert detect(record, (draft(None, 500),), DEFAULTS, NOW) is None


def test_draft_adding_a_second_antipsychotic_concerns_the_draft() -> None:
    record = _record(course(QUETIAPINE, days_ago(300), mg=300))
    finding = detect(record, (draft(RISPERIDONE, 2),), DEFAULTS, NOW)

    assert finding is not None
    assert finding.concerns_draft is True
    assert finding.facts["draft_ingredients"] == ["risperidone"]
    assert finding.facts["added_by_draft"] == ["risperidone"]
    assert finding.evidence[-1].note == "draft order"
    assert "MedicationRequest/draft-1" in finding.references


def test_draft_replacing_the_same_ingredient_is_not_an_extra_agent() -> None:
    record = _record(course(QUETIAPINE, days_ago(300), mg=100))
    assert detect(record, (draft(QUETIAPINE, 300),), DEFAULTS, NOW) is None


def test_dose_change_draft_does_not_concern_a_standing_pattern() -> None:
    record = _record(
        course(QUETIAPINE, days_ago(300), mg=100), course(RISPERIDONE, days_ago(60), mg=4)
    )
    finding = detect(record, (draft(QUETIAPINE, 300),), DEFAULTS, NOW)
    assert finding is not None
    assert finding.concerns_draft is False


def test_draft_fifth_psychotropic_concerns_the_draft() -> None:
    finding = detect(_record(*FOUR_PSYCHOTROPICS), (draft(LORAZEPAM, 1),), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["trigger"] == "psychotropics"
    assert finding.concerns_draft is True


def test_draft_antidepressant_does_not_concern_antipsychotic_polypharmacy() -> None:
    record = _record(
        course(QUETIAPINE, days_ago(300), mg=300), course(RISPERIDONE, days_ago(60), mg=4)
    )
    finding = detect(record, (draft(SERTRALINE, 50),), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["trigger"] == "antipsychotics"
    assert finding.concerns_draft is False


# --- Planned overlap (HEDIS APC: >= 90 days), stale orders, configurable exemption -------------


def _cross_taper(planned_days: int) -> PatientRecord:
    """Risperidone being tapered off (an order with a planned end) while quetiapine starts."""
    return _record(
        course(RISPERIDONE, days_ago(200), mg=2, end=days_ago(-planned_days)),
        course(QUETIAPINE, days_ago(0), mg=100),
    )


def test_documented_cross_taper_does_not_fire() -> None:
    assert detect(_cross_taper(28), (), DEFAULTS, NOW) is None


def test_cross_taper_of_89_days_is_a_near_miss_and_90_fires() -> None:
    # Both days counted: a planned end 88 days from today is 89 days together, 89 is 90.
    assert detect(_cross_taper(88), (), DEFAULTS, NOW) is None
    finding = detect(_cross_taper(89), (), DEFAULTS, NOW)
    assert finding is not None and finding.facts["antipsychotic_count"] == 2


def test_draft_against_a_tapering_order_is_a_cross_taper() -> None:
    record = _record(course(RISPERIDONE, days_ago(200), mg=2, end=days_ago(-21)))
    assert detect(record, (draft(QUETIAPINE, 50),), DEFAULTS, NOW) is None


def test_overlap_threshold_comes_from_config() -> None:
    shorter = with_thresholds(PATTERN_ID, min_overlap_days=28)
    assert detect(_cross_taper(27), (), shorter, NOW) is not None
    assert detect(_cross_taper(26), (), shorter, NOW) is None


def test_long_overlap_that_ends_soon_still_counts() -> None:
    """A year on both, one now being tapered: the patient has been on two antipsychotics."""
    record = _record(
        course(RISPERIDONE, days_ago(400), mg=2, end=days_ago(-14)),
        course(QUETIAPINE, days_ago(300), mg=300),
    )
    finding = detect(record, (), DEFAULTS, NOW)
    assert finding is not None
    assert "planned until" in finding.evidence[0].note


def test_stale_active_order_is_not_current() -> None:
    """Risperidone 'active' since 400 days, never renewed or filled: not today's regimen."""
    record = _record(course(RISPERIDONE, days_ago(400), mg=2), course(QUETIAPINE, days_ago(100)))
    assert detect(record, (), DEFAULTS, NOW) is None


def test_order_kept_alive_by_a_fill_is_current() -> None:
    from fhir_mappers.record import PatientRecord as Record

    from .builders import dispense

    record = Record(
        courses=(course(RISPERIDONE, days_ago(400), mg=2), course(QUETIAPINE, days_ago(100))),
        dispenses=(dispense(RISPERIDONE, days_ago(20)),),
    )
    assert detect(record, (), DEFAULTS, NOW) is not None


def test_stale_period_is_configurable_365_vs_366() -> None:
    record = _record(course(RISPERIDONE, days_ago(366), mg=2), course(QUETIAPINE, days_ago(100)))
    assert detect(record, (), DEFAULTS, NOW) is None
    assert detect(record, (), with_thresholds(PATTERN_ID, stale_order_days=366), NOW) is not None


def test_exemption_list_comes_from_config() -> None:
    record = _record(course(CLOZAPINE, days_ago(300), mg=400), course(ARIPIPRAZOLE, days_ago(100)))
    assert detect(record, (), DEFAULTS, NOW) is None
    none_exempt = with_thresholds(PATTERN_ID, augmentation_exempt_ingredients=())
    assert detect(record, (), none_exempt, NOW) is not None


def test_prn_antipsychotic_never_counts_even_with_a_draft() -> None:
    record = _record(course(QUETIAPINE, days_ago(100), mg=300))
    prn_draft = draft(HALOPERIDOL, 5)
    from dataclasses import replace

    assert detect(record, (replace(prn_draft, is_prn=True),), DEFAULTS, NOW) is None


# --- HBIPS-5: a history of failed monotherapies justifies two antipsychotics -----------------


def _after_failures(*stops: tuple[Ingredient, StopReasonKind]) -> PatientRecord:
    """Each (antipsychotic, stop reason) taken alone for 10 weeks, one after the other, then
    risperidone and aripiprazole together for 120 days."""
    history = [
        course(drug, days_ago(900 - 100 * i), mg=10, end=days_ago(830 - 100 * i),
               status="stopped", stop_reason=reason)
        for i, (drug, reason) in enumerate(stops)
    ]
    return _record(
        *history,
        course(RISPERIDONE, days_ago(120), mg=2),
        course(ARIPIPRAZOLE, days_ago(120), mg=10),
    )


def test_three_antipsychotics_stopped_for_lack_of_effect_justify_two() -> None:
    failures = [(HALOPERIDOL, "lack_of_effect"), (QUETIAPINE, "lack_of_effect"),
                (CLOZAPINE, "lack_of_effect")]
    assert detect(_after_failures(*failures), (), DEFAULTS, NOW) is None


@pytest.mark.parametrize(
    "stops",
    [
        [(HALOPERIDOL, "lack_of_effect"), (QUETIAPINE, "lack_of_effect")],  # two: a near miss
        [(HALOPERIDOL, "lack_of_effect"), (QUETIAPINE, "lack_of_effect"),
         (CLOZAPINE, "intolerance")],  # an intolerance stop is no failure of effect
        [(HALOPERIDOL, "lack_of_effect"), (HALOPERIDOL, "lack_of_effect"),
         (QUETIAPINE, "lack_of_effect")],  # the same drug twice is one failed monotherapy
    ],
    ids=["two", "one-for-intolerance", "one-drug-twice"],
)
def test_fewer_than_three_failed_antipsychotics_justify_nothing(
    stops: list[tuple[Ingredient, StopReasonKind]],
) -> None:
    finding = detect(_after_failures(*stops), (), DEFAULTS, NOW)
    assert finding is not None and finding.facts["trigger"] == "antipsychotics"


def test_the_failed_monotherapy_justification_can_be_turned_off() -> None:
    failures = [(HALOPERIDOL, "lack_of_effect"), (QUETIAPINE, "lack_of_effect"),
                (CLOZAPINE, "lack_of_effect")]
    off = with_thresholds(PATTERN_ID, min_failed_monotherapies_justifying=0)
    assert detect(_after_failures(*failures), (), off, NOW) is not None


@pytest.mark.parametrize(
    ("third", "justified"),
    [
        # Clozapine renewed once: two 30-day orders, the second stopped for lack of effect, are
        # one 60-day trial.
        ((course(CLOZAPINE, days_ago(600), mg=300, end=days_ago(571), status="completed"),
          course(CLOZAPINE, days_ago(570), mg=300, end=days_ago(541), status="stopped",
                 stop_reason="lack_of_effect")), True),
        # Only the stopped 30-day order: no six-week trial.
        ((course(CLOZAPINE, days_ago(570), mg=300, end=days_ago(541), status="stopped",
                 stop_reason="lack_of_effect"),), False),
        # Ten weeks, but as needed: no trial of the drug.
        ((course(CLOZAPINE, days_ago(600), mg=300, end=days_ago(531), status="stopped",
                 stop_reason="lack_of_effect", prn=True),), False),
    ],
    ids=["renewed-trial", "30-days", "as-needed"],
)
def test_a_failed_monotherapy_is_six_weeks_of_standing_use(
    third: tuple[MedicationCourse, ...], justified: bool
) -> None:
    record = _after_failures((HALOPERIDOL, "lack_of_effect"), (QUETIAPINE, "lack_of_effect"))
    record = PatientRecord(courses=(*record.courses, *third))
    assert (detect(record, (), DEFAULTS, NOW) is None) is justified


def test_an_antipsychotic_on_hold_is_not_counted() -> None:
    held = course(RISPERIDONE, days_ago(200), mg=2, status="on-hold")
    quetiapine = course(QUETIAPINE, days_ago(100), mg=300)
    assert detect(_record(held, quetiapine), (), DEFAULTS, NOW) is None
    active = course(RISPERIDONE, days_ago(200), mg=2)
    assert detect(_record(active, quetiapine), (), DEFAULTS, NOW) is not None


def test_the_antipsychotics_lead_a_long_evidence_list() -> None:
    """Ten standing psychotropics, the two antipsychotics the oldest: a list that keeps the most
    recent lines would leave out the very drugs the antipsychotic threshold counted."""
    from .builders import ESCITALOPRAM, MIRTAZAPINE, VENLAFAXINE

    older = [course(RISPERIDONE, days_ago(360), mg=2), course(QUETIAPINE, days_ago(350), mg=300)]
    others = [
        course(drug, days_ago(300 - 25 * i), mg=10)
        for i, drug in enumerate((SERTRALINE, ESCITALOPRAM, MIRTAZAPINE, VENLAFAXINE, BUPROPION,
                                  LAMOTRIGINE, LITHIUM, LORAZEPAM))
    ]
    finding = detect(_record(*older, *others), (), DEFAULTS, NOW)
    assert finding is not None and finding.facts["trigger"] == "both"
    assert [e.label.split()[0] for e in finding.evidence[:2]] == ["risperidone", "quetiapine"]


def test_every_counted_drug_is_an_evidence_line_when_they_fit() -> None:
    """Five standing psychotropics, none an antipsychotic: five lines, none left out (a short
    list of others once lost its oldest to a negative slice)."""
    record = _record(*FOUR_PSYCHOTROPICS, course(LORAZEPAM, days_ago(30), mg=1))
    finding = detect(record, (), DEFAULTS, NOW)
    assert finding is not None and finding.facts["psychotropic_count"] == 5
    assert [e.label.split()[0] for e in finding.evidence] == [
        "sertraline", "bupropion", "lithium", "lamotrigine", "lorazepam",
    ]
    assert finding.evidence_left_out == 0


def test_a_list_longer_than_the_cap_keeps_the_antipsychotics_and_counts_the_rest() -> None:
    """Ten standing psychotropics, the two antipsychotics the most recent and the oldest: both
    kept, the oldest others left out and counted, the lines oldest first."""
    from .builders import ESCITALOPRAM, MIRTAZAPINE, VENLAFAXINE

    others = [
        course(drug, days_ago(300 - 20 * i), mg=10)
        for i, drug in enumerate((SERTRALINE, ESCITALOPRAM, MIRTAZAPINE, VENLAFAXINE, BUPROPION,
                                  LAMOTRIGINE, LITHIUM, LORAZEPAM))
    ]
    aps = [course(RISPERIDONE, days_ago(330), mg=2), course(QUETIAPINE, days_ago(120), mg=300)]
    finding = detect(_record(*others, *aps), (), DEFAULTS, NOW)
    assert finding is not None and finding.facts["psychotropic_count"] == 10
    names = [e.label.split()[0] for e in finding.evidence]
    assert len(names) == 8 and {"risperidone", "quetiapine"} <= set(names)
    assert "sertraline" not in names and "escitalopram" not in names
    assert finding.evidence_left_out == 2
    dates = [e.when for e in finding.evidence if e.when is not None]
    assert dates == sorted(dates)
