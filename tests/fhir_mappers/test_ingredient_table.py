"""Classification of medications into ingredient families, and the table's clinical facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cds_service.loaders import load_ingredient_table
from fhir_mappers.medications import (
    IngredientTable,
    IngredientTableError,
    concentration_mg_per_ml,
    strength_mg,
)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
NDC = "http://hl7.org/fhir/sid/ndc"


def rx(code: str, display: str = "") -> dict[str, str]:
    return {"system": RXNORM, "code": code, "display": display}


@pytest.mark.parametrize(
    ("codings", "text", "expected"),
    [
        pytest.param([rx("36437")], "", ["sertraline"], id="rxnorm-ingredient-code"),
        pytest.param([rx("312938")], "", ["sertraline"], id="scd-extra-code"),
        pytest.param([rx("349332")], "", ["escitalopram"], id="scd-escitalopram-10"),
        pytest.param([rx("42351")], "", ["lithium"], id="lithium-carbonate-pin"),
        pytest.param([rx("266856")], "", ["valproate"], id="divalproex-pin"),
        pytest.param([{"system": ATC, "code": "N05AH04"}], "", ["quetiapine"], id="atc"),
        pytest.param([{"system": ATC, "code": "n03ae01"}], "", ["clonazepam"], id="atc-lowercase"),
        pytest.param(
            [{"system": "urn:oid:2.16.840.1.113883.6.88", "code": "4493"}],
            "",
            ["fluoxetine"],
            id="rxnorm-by-oid",
        ),
        pytest.param([], "Sertraline 50 MG Oral Tablet", ["sertraline"], id="text-only"),
        pytest.param(
            [rx("1", "24 HR venlafaxine 150 MG Extended Release Oral Capsule")],
            "",
            ["venlafaxine"],
            id="unknown-code-display-with-prefix",
        ),
        pytest.param(
            [],
            "olanzapine 6 MG / fluoxetine 25 MG Oral Capsule",
            ["olanzapine", "fluoxetine"],
            id="multi-ingredient",
        ),
        pytest.param([], "Zoloft 50 mg tablet", ["sertraline"], id="brand-name"),
        pytest.param([], "ABILIFY 5 MG TABLET", ["aripiprazole"], id="brand-upper-case"),
        pytest.param([], "bupropion hydrochloride 150 MG", ["bupropion"], id="salt"),
        pytest.param([], "Depakote ER 500 mg", ["valproate"], id="valproate-brand"),
        pytest.param([], "valproic acid 250 MG Oral Capsule", ["valproate"], id="two-word-name"),
        pytest.param([], "Lithium Carbonate 300 MG Oral Capsule", ["lithium"], id="lithium-salt"),
        pytest.param([], "LORazepam 0.5 MG Oral Tablet", ["lorazepam"], id="tall-man-letters"),
        pytest.param([], "Symbyax 6/25 capsule", ["olanzapine", "fluoxetine"], id="combo-brand"),
        pytest.param([], "dextroamphetamine sulfate 10 MG", ["dextroamphetamine"], id="whole-word"),
        pytest.param([], "escitalopram 10 MG Oral Tablet", ["escitalopram"], id="not-citalopram"),
        pytest.param(
            [rx("861007", "Metformin hydrochloride 500 MG Oral Tablet")], "", [], id="unknown-drug"
        ),
        pytest.param([{"system": NDC, "code": "36437"}], "", [], id="code-in-other-system"),
        pytest.param([], "", [], id="nothing"),
        pytest.param([], "sertralines", [], id="no-partial-words"),
    ],
)
def test_classify(
    table: IngredientTable, codings: list[dict[str, Any]], text: str, expected: list[str]
) -> None:
    assert sorted(i.name for i in table.classify(codings, text)) == sorted(expected)


def test_codes_win_over_names(table: IngredientTable) -> None:
    # A coded ingredient is trusted even when the free text mentions something else.
    found = table.classify([rx("36437", "sertraline")], "switching from fluoxetine")
    assert [i.name for i in found] == ["sertraline"]


def test_junk_codings_are_ignored(table: IngredientTable) -> None:
    assert table.classify(["36437", None, {"code": 5}], "sertraline") == (  # type: ignore[list-item]
        table.get("sertraline"),
    )


@pytest.mark.parametrize(
    ("name", "drug_class", "subclass", "psychotropic"),
    [
        ("lithium", "mood_stabilizer", "lithium", True),  # ATC N05AN, yet not an antipsychotic
        ("valproate", "mood_stabilizer", "valproate", True),
        ("lamotrigine", "mood_stabilizer", "anticonvulsant", True),
        ("carbamazepine", "mood_stabilizer", "anticonvulsant", True),
        ("clonazepam", "anxiolytic_hypnotic", "BZD anxiolytic", True),  # ATC N03AE01
        ("zolpidem", "anxiolytic_hypnotic", "Z-drug", True),
        ("buspirone", "anxiolytic_hypnotic", "other anxiolytic", True),
        ("hydroxyzine", "anxiolytic_hypnotic", "other anxiolytic", True),
        ("quetiapine", "antipsychotic", "SGA", True),
        ("haloperidol", "antipsychotic", "FGA", True),
        ("sertraline", "antidepressant", "SSRI", True),
        ("methylphenidate", "stimulant", "stimulant", True),
        ("atomoxetine", "stimulant", "ADHD non-stimulant", True),
        ("oxcarbazepine", "other", "antiepileptic", False),
        ("gabapentin", "other", "gabapentinoid", False),
        ("benztropine", "other", "EPS anticholinergic", False),
        ("naltrexone", "other", "addiction", False),
        ("guanfacine", "other", "alpha-2 agonist", False),
        ("clonidine", "other", "alpha-2 agonist", False),
    ],
)
def test_clinical_classes(
    table: IngredientTable, name: str, drug_class: str, subclass: str, psychotropic: bool
) -> None:
    ingredient = table.get(name)
    assert ingredient is not None
    assert (ingredient.drug_class, ingredient.subclass, ingredient.is_psychotropic) == (
        drug_class,
        subclass,
        psychotropic,
    )


@pytest.mark.parametrize(
    ("name", "rxcui", "atc", "min_dose"),
    [
        ("sertraline", "36437", "N06AB06", 50.0),
        ("citalopram", "2556", "N06AB04", 20.0),  # not 2593, a common wrong map
        ("olanzapine", "61381", "N05AH03", 7.5),  # not 30121 (moclobemide)
        ("lorazepam", "6470", "N05BA06", None),  # not 6960 (midazolam)
        ("midazolam", "6960", "N05CD08", None),
        ("dexmethylphenidate", "352372", "N06BA11", None),
        ("lithium", "6448", "N05AN01", 900.0),  # lithium label maintenance floor (LBL)
        ("quetiapine", "51272", "N05AH04", 150.0),
        ("bupropion", "42347", "N06AX12", 300.0),
    ],
)
def test_codes_and_min_doses_follow_the_reference(
    table: IngredientTable, name: str, rxcui: str, atc: str, min_dose: float | None
) -> None:
    ingredient = table.get(name)
    assert ingredient is not None
    assert (ingredient.rxcui, ingredient.atc, ingredient.min_effective_mg_per_day) == (
        rxcui,
        atc,
        min_dose,
    )


def test_atc4_tells_ssri_from_other_antidepressants(table: IngredientTable) -> None:
    sertraline, venlafaxine = table.get("sertraline"), table.get("venlafaxine")
    assert sertraline is not None and venlafaxine is not None
    assert (sertraline.atc4, venlafaxine.atc4) == ("N06AB", "N06AX")


def test_table_has_every_reference_row(table: IngredientTable) -> None:
    # 104 rows in the reference table less the two salt rows folded into lithium and valproate,
    # plus the eight "consider also" ingredients.
    # ... plus the eleven rows of the newer agents and of the components of combinations.
    assert len(table.ingredients) == 121
    assert len({i.name for i in table.ingredients}) == len(table.ingredients)


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("sertraline 50 MG Oral Tablet", 50.0),
        ("LORazepam 0.5 MG Oral Tablet", 0.5),
        ("24 HR venlafaxine 150 MG Extended Release Oral Capsule", 150.0),
        ("clonidine 100 MCG Oral Tablet", 0.1),
        ("sertraline 50mg tab", 50.0),
        ("lithium citrate 300 MG/5ML Oral Solution", None),  # liquid: needs the volume
        ("24 HR methylphenidate 1.1 MG/HR Transdermal System", None),  # a rate
        ("olanzapine 6 MG / fluoxetine 25 MG Oral Capsule", None),  # two strengths
        ("Zoloft", None),
    ],
)
def test_strength_mg(display: str, expected: float | None) -> None:
    assert strength_mg(display) == expected


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("lithium citrate 300 MG/5ML Oral Solution", 60.0),
        ("haloperidol 2 MG/ML Oral Solution", 2.0),
        ("sertraline 50 MG Oral Tablet", None),
    ],
)
def test_concentration(display: str, expected: float | None) -> None:
    assert concentration_mg_per_ml(display) == expected


HEADER = (
    "name,rxcui,atc,drug_class,subclass,is_psychotropic,min_effective_mg_per_day,"
    "extra_rxcuis,synonyms"
)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("paroxetine,32937,N06AB05,ssri,SSRI,true,20,,", "unknown drug_class"),
        ("paroxetine,,,antidepressant,SSRI,true,20,,", "numeric rxcui"),
        ("paroxetine,32937,N06AB05,antidepressant,SSRI,yes,20,,", "is_psychotropic"),
        ("paroxetine,32937,N06AB05,antidepressant,SSRI,true,twenty,,", "not a number"),
        ("paroxetine,32937,N06AB05,antidepressant,SSRI,true,20,312938,", "repeated"),
    ],
)
def test_malformed_table_is_refused_with_its_row(tmp_path: Path, row: str, message: str) -> None:
    good = "sertraline,36437,N06AB06,antidepressant,SSRI,true,50,312938,Zoloft"
    path = tmp_path / "ingredients.csv"
    path.write_text(f"# comment\n{HEADER}\n{good}\n{row}\n", encoding="utf-8")
    with pytest.raises(IngredientTableError, match=message) as caught:
        load_ingredient_table(path)
    assert "row 2" in str(caught.value)


def test_table_is_immutable(table: IngredientTable) -> None:
    with pytest.raises(TypeError):
        table.by_rxcui["1"] = table.ingredients[0]  # type: ignore[index]
