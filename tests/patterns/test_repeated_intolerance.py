"""repeated-intolerance: side effects with drugs of >= 3 unrelated pharmacological classes in 24
months."""

from __future__ import annotations

import pytest

from cds_service.loaders import load_ingredient_table
from cds_service.patterns.repeated_intolerance import (
    PATTERN_ID,
    class_key,
    detect,
    pharmacological_class,
)
from fhir_mappers.record import Ingredient, IntoleranceEvent, PatientRecord

from .builders import (
    ARIPIPRAZOLE,
    CLOZAPINE,
    ESCITALOPRAM,
    FLUOXETINE,
    HALOPERIDOL,
    LAMOTRIGINE,
    LITHIUM,
    LORAZEPAM,
    NOW,
    QUETIAPINE,
    RISPERIDONE,
    SERTRALINE,
    VENLAFAXINE,
    course,
    days_ago,
    defaults,
    draft,
    intolerance,
    with_thresholds,
)

DEFAULTS = defaults(PATTERN_ID)


def _three_classes(oldest_days: int = 600) -> PatientRecord:
    """Nausea on sertraline, then venlafaxine stopped for dizziness, then quetiapine."""
    return PatientRecord(
        intolerances=(
            intolerance(SERTRALINE, days_ago(oldest_days), manifestations=("Nausea", "Headache")),
            intolerance(
                VENLAFAXINE,
                days_ago(300),
                origin="MedicationRequest",
                manifestations=("Dizziness",),
            ),
            intolerance(QUETIAPINE, days_ago(90), manifestations=("Drowsy",)),
        )
    )


def test_three_ingredients_across_classes_fires() -> None:
    finding = detect(_three_classes(), (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.pattern_id == "repeated-intolerance"
    assert finding.indicator == "info"
    assert finding.facts["ingredient_count"] == 3
    assert finding.facts["class_count"] == 3
    assert finding.facts["ingredients"] == ["sertraline", "venlafaxine", "quetiapine"]
    assert finding.facts["counted_classes"] == [
        "SSRI (sertraline)",
        "SNRI (venlafaxine)",
        "antipsychotic (quetiapine)",
    ]
    assert finding.facts["window_months"] == 24
    assert finding.facts["min_distinct_classes"] == 3
    assert finding.facts["draft_not_tolerated_before"] == []
    assert finding.facts["draft_ingredients"] == []
    assert finding.evidence_keys == {
        "ingredient:sertraline",
        "ingredient:venlafaxine",
        "ingredient:quetiapine",
    }
    assert [(e.label, e.note) for e in finding.evidence] == [
        ("sertraline", "nausea, headache"),
        ("venlafaxine", "dizziness"),
        ("quetiapine", "drowsy"),
    ]
    assert [e.when for e in finding.evidence] == sorted(e.when for e in finding.evidence)
    assert len(finding.references) == 3
    assert finding.concerns_draft is False


def test_two_ssris_and_an_snri_are_two_classes_a_near_miss() -> None:
    """Macy & Ho count unrelated classes: three drugs from two classes are not three."""
    record = PatientRecord(
        intolerances=(
            intolerance(SERTRALINE, days_ago(400)),
            intolerance(ESCITALOPRAM, days_ago(200)),
            intolerance(VENLAFAXINE, days_ago(20)),
        )
    )
    assert detect(record, (), DEFAULTS, NOW) is None
    finding = detect(record, (), with_thresholds(PATTERN_ID, min_distinct_classes=2), NOW)
    assert finding is not None
    assert finding.facts["class_count"] == 2
    assert finding.facts["counted_classes"] == [
        "SSRI (sertraline, escitalopram)",
        "SNRI (venlafaxine)",
    ]


def test_oldest_event_exactly_at_lookback_still_counts() -> None:
    assert detect(_three_classes(oldest_days=730), (), DEFAULTS, NOW) is not None


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(
            PatientRecord(
                intolerances=(
                    intolerance(SERTRALINE, days_ago(100)),
                    intolerance(QUETIAPINE, days_ago(50)),
                )
            ),
            id="two-ingredients",
        ),
        pytest.param(
            PatientRecord(
                intolerances=(
                    intolerance(SERTRALINE, days_ago(300)),
                    intolerance(ESCITALOPRAM, days_ago(200)),
                    intolerance(FLUOXETINE, days_ago(100)),
                )
            ),
            id="three-ssris-one-class",
        ),
        pytest.param(_three_classes(oldest_days=760), id="oldest-at-25-months"),
        pytest.param(_three_classes(oldest_days=731), id="oldest-one-day-past-lookback"),
        pytest.param(
            PatientRecord(
                intolerances=(
                    intolerance(SERTRALINE, days_ago(100)),
                    intolerance(SERTRALINE, days_ago(80)),
                    intolerance(QUETIAPINE, days_ago(50)),
                )
            ),
            id="same-ingredient-twice",
        ),
    ],
)
def test_near_misses_do_not_fire(record: PatientRecord) -> None:
    assert detect(record, (), DEFAULTS, NOW) is None


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(PatientRecord(), id="empty-record"),
        pytest.param(
            PatientRecord(
                intolerances=tuple(
                    intolerance(i, days_ago(100), kind="allergy", manifestations=("Urticaria",))
                    for i in (SERTRALINE, VENLAFAXINE, QUETIAPINE)
                )
            ),
            id="allergies-only",
        ),
        pytest.param(
            PatientRecord(
                intolerances=(
                    intolerance(None, days_ago(300)),
                    intolerance(None, days_ago(200)),
                    intolerance(SERTRALINE, days_ago(100)),
                    intolerance(QUETIAPINE, days_ago(50)),
                )
            ),
            id="non-psychotropic-drugs-do-not-count",
        ),
        pytest.param(
            PatientRecord(
                intolerances=(
                    intolerance(SERTRALINE, None),
                    intolerance(VENLAFAXINE, days_ago(200)),
                    intolerance(QUETIAPINE, days_ago(50)),
                )
            ),
            id="undated-event-cannot-be-placed",
        ),
        pytest.param(
            PatientRecord(
                intolerances=(
                    intolerance(SERTRALINE, days_ago(300)),
                    intolerance(VENLAFAXINE, days_ago(200)),
                    intolerance(QUETIAPINE, days_ago(400)),
                ),
                courses=(course(SERTRALINE, days_ago(120), mg=50),),
            ),
            id="sertraline-taken-again-now",
        ),
    ],
)
def test_negatives_do_not_fire(record: PatientRecord) -> None:
    assert detect(record, (), DEFAULTS, NOW) is None


def test_rechallenge_that_ended_still_counts() -> None:
    record = PatientRecord(
        intolerances=_three_classes().intolerances,
        courses=(course(SERTRALINE, days_ago(200), mg=25, end=days_ago(190), status="stopped"),),
    )
    assert detect(record, (), DEFAULTS, NOW) is not None


@pytest.mark.parametrize(
    ("drafts", "concerns", "names"),
    [
        pytest.param((draft(LORAZEPAM, 1),), True, ["lorazepam"], id="psychotropic-draft"),
        pytest.param((draft(None, 1000),), False, [], id="metformin-draft"),
        pytest.param((), False, [], id="no-draft"),
    ],
)
def test_concerns_draft_when_another_psychotropic_is_ordered(
    drafts: tuple, concerns: bool, names: list[str]
) -> None:
    finding = detect(_three_classes(), drafts, DEFAULTS, NOW)
    assert finding is not None
    assert finding.concerns_draft is concerns
    assert finding.facts["draft_ingredients"] == names


def test_site_thresholds_are_used() -> None:
    record = PatientRecord(
        intolerances=(intolerance(SERTRALINE, days_ago(100)), intolerance(QUETIAPINE, days_ago(50)))
    )
    strict = with_thresholds(PATTERN_ID, min_distinct_classes=2, lookback_days=365)
    finding = detect(record, (), strict, NOW)
    assert finding is not None
    assert finding.facts["window_months"] == 12


# --- Reactions expectation cannot explain never count ----------------------------------------


def _with_third(event: IntoleranceEvent) -> PatientRecord:
    """Sertraline (nausea) and venlafaxine (dizziness) plus a third record under test."""
    return PatientRecord(
        intolerances=(
            intolerance(SERTRALINE, days_ago(400), manifestations=("Nausea",)),
            intolerance(VENLAFAXINE, days_ago(200), manifestations=("Dizziness",)),
            event,
        )
    )


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"manifestations": ("Agranulocytosis",)}, id="agranulocytosis-words"),
        pytest.param(
            {"manifestations": ("Neutropenia",), "manifestation_codes": ("165517008",)},
            id="neutropenia-code",
        ),
        pytest.param(
            {"manifestations": ("Fever",), "manifestation_codes": ("15244003",)}, id="nms-code-only"
        ),
        pytest.param({"manifestations": ("Neuroleptic malignant syndrome",)}, id="nms-words"),
        pytest.param(
            {"manifestations": ("Rash",), "reaction_text": "Stevens-Johnson syndrome"},
            id="sjs-in-text",
        ),
        pytest.param({"manifestations": ("Serotonin syndrome",)}, id="serotonin-syndrome"),
        pytest.param({"manifestations": ("Seizure",)}, id="seizure"),
        pytest.param({"manifestations": ("Pancreatitis",)}, id="pancreatitis"),
        pytest.param({"manifestations": ("Drug-induced hepatitis",)}, id="hepatotoxicity"),
        pytest.param({"manifestations": ("DRESS syndrome",)}, id="dress"),
        pytest.param({"manifestations": ("Drowsy",), "criticality": "high"}, id="criticality-high"),
        pytest.param({"manifestations": ("Drowsy",), "severe": True}, id="severe-reaction"),
    ],
)
def test_serious_or_immune_third_reaction_is_not_counted(changes: dict[str, object]) -> None:
    from dataclasses import replace

    third = replace(intolerance(QUETIAPINE, days_ago(60)), **changes)  # type: ignore[arg-type]
    assert detect(_with_third(third), (), DEFAULTS, NOW) is None


def test_the_same_third_record_with_a_vague_reaction_counts() -> None:
    third = intolerance(QUETIAPINE, days_ago(60), manifestations=("Drowsy",))
    finding = detect(_with_third(third), (), DEFAULTS, NOW)
    assert finding is not None and finding.facts["class_count"] == 3


def test_criticality_low_and_moderate_severity_still_count() -> None:
    from dataclasses import replace

    third = replace(intolerance(QUETIAPINE, days_ago(60)), criticality="low", severe=False)
    assert detect(_with_third(third), (), DEFAULTS, NOW) is not None


def test_exclusion_words_are_whole_words_from_config() -> None:
    """'Hives' is on the list; a site that removes it lets the record count."""
    from dataclasses import replace

    third = replace(intolerance(QUETIAPINE, days_ago(60)), manifestations=("Hives",))
    assert detect(_with_third(third), (), DEFAULTS, NOW) is None
    words = tuple(w for w in DEFAULTS.excluded_reaction_words if w != "hives")
    assert (
        detect(
            _with_third(third), (), with_thresholds(PATTERN_ID, excluded_reaction_words=words), NOW
        )
        is not None
    )


def test_drafted_drug_not_tolerated_before_is_stated_with_date_and_reaction() -> None:
    finding = detect(_three_classes(), (draft(SERTRALINE, 50),), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["draft_not_tolerated_before"] == [
        f"sertraline on {days_ago(600).isoformat()} (nausea, headache)"
    ]


def test_drafted_drug_with_a_serious_past_reaction_is_stated_too() -> None:
    from dataclasses import replace

    nms = replace(
        intolerance(HALOPERIDOL, days_ago(900)), manifestations=("Neuroleptic malignant syndrome",)
    )
    record = replace(_three_classes(), intolerances=(*_three_classes().intolerances, nms))
    finding = detect(record, (draft(HALOPERIDOL, 5),), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["draft_not_tolerated_before"] == [
        f"haloperidol on {days_ago(900).isoformat()} (neuroleptic malignant syndrome)"
    ]


# The pharmacological class an ingredient counts in, over the whole ingredient table.
_PSYCHOTROPICS = [i for i in load_ingredient_table().ingredients if i.is_psychotropic]


def _class_of(name: str) -> str:
    (ingredient,) = [i for i in _PSYCHOTROPICS if i.name == name]
    return pharmacological_class(ingredient, DEFAULTS)


def test_every_antipsychotic_first_or_second_generation_is_one_class() -> None:
    """Dopamine D2 blockade is the pharmacology of every N05A antipsychotic, FGA and SGA alike
    (config pharmacological_classes); lithium (N05AN) and xanomeline (a muscarinic agonist)
    are carved out."""
    antipsychotics = {
        i.name: pharmacological_class(i, DEFAULTS)
        for i in _PSYCHOTROPICS
        if i.atc.startswith("N05A") and i.name not in {"lithium", "xanomeline"}
    }
    assert {"haloperidol", "quetiapine", "risperidone", "clozapine", "amisulpride"} <= set(
        antipsychotics
    )
    assert set(antipsychotics.values()) == {"antipsychotic"}
    assert _class_of("lithium") == "lithium"
    assert _class_of("xanomeline") == "muscarinic agonist"


def test_antidepressant_classes_of_different_mechanism_stay_apart() -> None:
    classes = [_class_of(n) for n in ("sertraline", "venlafaxine", "amitriptyline", "phenelzine")]
    assert classes == ["SSRI", "SNRI", "TCA", "MAOI"]
    assert _class_of("escitalopram") == _class_of("fluoxetine") == "SSRI"
    assert _class_of("duloxetine") == _class_of("venlafaxine")


def test_no_two_classes_are_shown_under_one_name() -> None:
    """A class is counted by the name the card shows it by (case and spacing ignored): two
    ingredients shown with the same class name are one class, whatever their ATC-4 groups
    (carbamazepine N03AF and lamotrigine N03AX are both "anticonvulsant")."""
    keys: dict[str, str] = {}
    for ingredient in _PSYCHOTROPICS:
        label = pharmacological_class(ingredient, DEFAULTS)
        assert keys.setdefault(class_key(label), label) == label, ingredient.name
    assert _class_of("carbamazepine") == _class_of("lamotrigine") == "anticonvulsant"
    assert class_key("SSRI") == class_key(" ssri ")


@pytest.mark.parametrize(
    ("drugs", "classes"),
    [
        # SGA (N05AH), SGA (N05AX), FGA (N05AD): one class
        ((QUETIAPINE, RISPERIDONE, HALOPERIDOL), None),
        ((ARIPIPRAZOLE, CLOZAPINE, QUETIAPINE), None),
        # near miss: lithium is no antipsychotic, and lamotrigine is a third class
        ((QUETIAPINE, RISPERIDONE, LITHIUM, LAMOTRIGINE), 3),
        # the SSRI, SNRI and antipsychotic of the canonical story stay three
        ((SERTRALINE, VENLAFAXINE, HALOPERIDOL), 3),
    ],
)
def test_antipsychotics_of_several_atc_groups_count_once(
    drugs: tuple[Ingredient, ...], classes: int | None
) -> None:
    record = PatientRecord(
        intolerances=tuple(
            intolerance(drug, days_ago(500 - 100 * n), manifestations=("Dizziness",))
            for n, drug in enumerate(drugs)
        )
    )
    finding = detect(record, (), DEFAULTS, NOW)
    if classes is None:
        assert finding is None
    else:
        assert finding is not None
        assert finding.facts["class_count"] == classes
        labels = [line.split(" (")[0] for line in finding.facts["counted_classes"]]
        assert len(set(labels)) == len(labels)
