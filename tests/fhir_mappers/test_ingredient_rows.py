"""The psychotropic rows of config/ingredients.csv: the newer agents, combinations as their
components, a minimum effective dose for every agent whose adequacy a pattern judges, labelled
titration targets, hypnotic doses, and a source for every row."""

from __future__ import annotations

import csv

import pytest

from cds_service.loaders import INGREDIENTS_CSV, load_ingredient_table
from fhir_mappers.medications import IngredientTable

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"


@pytest.fixture(scope="module")
def table() -> IngredientTable:
    return load_ingredient_table()


def _rows() -> list[dict[str, str]]:
    lines = [ln for ln in INGREDIENTS_CSV.read_text(encoding="utf-8").splitlines()]
    return list(csv.DictReader(ln for ln in lines if ln.strip() and not ln.startswith("#")))


@pytest.mark.parametrize(
    ("name", "atc", "drug_class"),
    [
        ("zuranolone", "N06AX31", "antidepressant"),
        ("brexanolone", "N06AX29", "antidepressant"),
        ("gepirone", "N06AX19", "antidepressant"),
        ("ketamine", "N01AX03", "antidepressant"),
        ("xanomeline", "N05AX50", "antipsychotic"),
        ("lemborexant", "N05CJ02", "anxiolytic_hypnotic"),
        ("daridorexant", "N05CJ03", "anxiolytic_hypnotic"),
        ("viloxazine", "N06AX09", "stimulant"),
    ],
)
def test_newer_psychotropics_are_rows(
    table: IngredientTable, name: str, atc: str, drug_class: str
) -> None:
    ingredient = table.get(name)
    assert ingredient is not None
    assert (ingredient.atc, ingredient.drug_class, ingredient.is_psychotropic) == (
        atc,
        drug_class,
        True,
    )
    assert [i.name for i in table.classify([], f"{name} 10 MG Oral Capsule")] == [name]


@pytest.mark.parametrize(
    ("codings", "text", "expected"),
    [
        ([{"system": RXNORM, "code": "2570392"}], "", ["olanzapine", "samidorphan"]),
        ([], "Lybalvi 10 MG / 10 MG Oral Tablet", ["olanzapine", "samidorphan"]),
        ([{"system": ATC, "code": "N05AH53"}], "", ["olanzapine", "samidorphan"]),
        ([{"system": RXNORM, "code": "2611260"}], "", ["bupropion", "dextromethorphan"]),
        (
            [],
            "Auvelity 45 MG / 105 MG Extended Release Oral Tablet",
            ["bupropion", "dextromethorphan"],
        ),
        ([{"system": ATC, "code": "N05AX50"}], "", ["xanomeline", "trospium"]),
        ([], "Cobenfy 50 MG / 20 MG Oral Capsule", ["xanomeline", "trospium"]),
    ],
)
def test_combinations_are_their_components(
    table: IngredientTable, codings: list[dict[str, str]], text: str, expected: list[str]
) -> None:
    found = table.classify(codings, text)
    assert [i.name for i in found] == expected
    # one psychotropic component: a Lybalvi order is one antipsychotic, not two
    assert sum(i.is_psychotropic for i in found) == 1


def test_every_judged_agent_has_a_minimum_effective_dose(table: IngredientTable) -> None:
    """Antidepressants, antipsychotics and mood stabilisers, except session or infusion dosing."""
    session_dosed = {"esketamine", "ketamine", "brexanolone"}
    missing = [
        i.name
        for i in table.ingredients
        if i.drug_class in ("antidepressant", "antipsychotic", "mood_stabilizer")
        and i.name not in session_dosed
        and i.min_effective_mg_per_day is None
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("name", "indications", "target"),
    [
        ("quetiapine", {"bipolar"}, 300.0),
        ("quetiapine", set(), 150.0),
        ("lamotrigine", set(), 200.0),
        ("lithium", set(), float("inf")),  # titrated to a serum level
        ("sertraline", set(), 50.0),  # no labelled schedule: the minimum effective dose
    ],
)
def test_titration_targets_by_indication(
    table: IngredientTable, name: str, indications: set[str], target: float
) -> None:
    ingredient = table.get(name)
    assert ingredient is not None
    assert ingredient.titration_target(frozenset(indications)) == target


@pytest.mark.parametrize(
    ("name", "sleep_max"),
    [("trazodone", 100.0), ("quetiapine", 100.0), ("mirtazapine", 7.5), ("doxepin", 6.0)],
)
def test_hypnotic_doses(table: IngredientTable, name: str, sleep_max: float) -> None:
    ingredient = table.get(name)
    assert ingredient is not None and ingredient.sleep_max_mg_per_day == sleep_max


def test_every_row_cites_its_sources_and_unverified_codes_say_so() -> None:
    header = INGREDIENTS_CSV.read_text(encoding="utf-8")
    for row in _rows():
        keys = [k for k in row["sources"].split(";") if k]
        assert keys, row["name"]
        assert all(f"#     {k} " in header or f"#     {k}  " in header for k in keys), row
        if not row["rxcui"]:
            assert row["verified"].startswith("UNVERIFIED"), row["name"]
