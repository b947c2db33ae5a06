"""The rows of config/rxnorm_products.csv: every row names families of the ingredient table and
says where it comes from, and a product code sent without any display text (a pharmacy feed) is
classified to the right family with the right strength per tablet/capsule."""

from __future__ import annotations

import csv
import re
from typing import Any

import pytest

from cds_service.loaders import INGREDIENTS_CSV, PRODUCTS_CSV, load_ingredient_table
from fhir_mappers.medications import IngredientTable, strength_mg

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SOURCES = re.compile(
    r"^(VSAC eCQM 2025-05-08 [\d.]+ \w+ via canvas-plugins"
    r"|case \S+\.json|synthea-bulk-10 .+|.*RxCUI (from memory, )?to verify)$"
)


@pytest.fixture(scope="module")
def table() -> IngredientTable:
    return load_ingredient_table()


def _rows() -> list[dict[str, str]]:
    lines = PRODUCTS_CSV.read_text(encoding="utf-8").splitlines()
    return list(csv.DictReader(ln for ln in lines if ln.strip() and not ln.startswith("#")))


def _header_list(prefix: str) -> list[str]:
    """The comma-separated names of a header comment that starts with ``prefix``."""
    text, reading = "", False
    for line in PRODUCTS_CSV.read_text(encoding="utf-8").splitlines():
        if line.startswith(prefix):
            text, reading = line[len(prefix) :], True
        elif reading and line.startswith("#   "):
            text += " " + line[1:]
        elif reading:
            break
    return [n.strip(" .") for n in text.split(",") if n.strip(" .") not in ("", "none")]


def _medication_request(code: str) -> dict[str, Any]:
    """The medicationCodeableConcept of a pharmacy-feed MedicationRequest: a code, no text."""
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
    }


def test_every_row_names_table_families_and_a_source(table: IngredientTable) -> None:
    rows = _rows()
    assert len(rows) > 800
    for row in rows:
        families = row["ingredient"].split("|")
        assert all(table.get(f) is not None for f in families), row
        assert row["source"].strip() and SOURCES.match(row["source"]), row
        assert row["rxcui"].isdigit(), row
    assert len({r["rxcui"] for r in rows}) == len(rows)


def test_strength_only_for_single_ingredient_tablets_and_capsules() -> None:
    for row in _rows():
        name = row["name"]
        solid = re.search(r"\b(Tablet|Capsule)\b", name) and not name.startswith("{")
        single = "|" not in row["ingredient"] and " / " not in name
        if row["strength_mg"]:
            assert solid and single, row
            assert float(row["strength_mg"]) == strength_mg(name), row
        elif single and solid and row["source"].startswith("VSAC"):
            assert strength_mg(name) is None, row


@pytest.mark.parametrize(
    ("code", "family", "mg"),
    [
        ("351249", "escitalopram", 5.0),  # VSAC: 5 MG (the old from-memory row said 20 MG)
        ("351250", "escitalopram", 20.0),
        ("596926", "duloxetine", 20.0),  # VSAC: 20 MG (the old from-memory row said 60 MG)
        ("596934", "duloxetine", 60.0),
        ("314111", "mirtazapine", 30.0),
        ("857297", "clomipramine", 25.0),
        ("429212", "clozapine", 50.0),
        ("199322", "lamotrigine", 50.0),
        ("854830", "lisdexamfetamine", 20.0),
        ("1091152", "methylphenidate", 10.0),
        ("854880", "zolpidem", 12.5),
        ("995232", "hydroxyzine", 100.0),
        ("351265", "buprenorphine", 8.0),
    ],
)
def test_vsac_code_alone_gives_family_and_strength(
    table: IngredientTable, code: str, family: str, mg: float
) -> None:
    concept = _medication_request(code)["medicationCodeableConcept"]
    assert [i.name for i in table.classify(concept["coding"])] == [family]
    assert table.product_strength_mg(code) == mg


@pytest.mark.parametrize(
    ("code", "families"),
    [
        ("2570405", ["olanzapine", "samidorphan"]),  # Lybalvi 20/10: one antipsychotic
        ("687043", ["amphetamine", "dextroamphetamine"]),  # mixed amphetamine salts
        ("995241", ["hydroxyzine"]),  # oral solution: no per-unit strength
        ("1010600", ["buprenorphine"]),  # buprenorphine / naloxone: naloxone is not in the table
    ],
)
def test_combinations_and_liquids_have_no_strength(
    table: IngredientTable, code: str, families: list[str]
) -> None:
    assert sorted(i.name for i in table.classify([{"system": RXNORM, "code": code}])) == families
    assert table.product_strength_mg(code) is None


def test_unlisted_code_without_display_is_not_guessed(table: IngredientTable) -> None:
    # 596930 is in the table (duloxetine 30 MG); a neighbouring number that is in neither table
    # must not be classified from its digits.
    assert table.classify([{"system": RXNORM, "code": "596931"}]) == ()
    assert table.product_strength_mg("596931") is None


def test_header_lists_exactly_the_families_without_rows(table: IngredientTable) -> None:
    covered = {f for r in _rows() for f in r["ingredient"].split("|")}
    missing = [i.name for i in table.ingredients if i.is_psychotropic and i.name not in covered]
    assert _header_list("# Psychotropic families with NO product row: ") == missing
    assert "buspirone" in missing and "sertraline" not in missing
    other = [i.name for i in table.ingredients if not i.is_psychotropic and i.name not in covered]
    assert _header_list("# Non-psychotropic ('other') families with no product row: ") == other


def test_product_codes_agree_with_the_ingredient_table(table: IngredientTable) -> None:
    """A code both files list (extra_rxcuis / combination_codes) names the same families."""
    assert INGREDIENTS_CSV.exists()
    for row in _rows():
        code, families = row["rxcui"], sorted(row["ingredient"].split("|"))
        if code in table.by_rxcui:
            assert [table.by_rxcui[code].name] == families, row
        if code in table.by_product:
            assert sorted(i.name for i in table.by_product[code]) == families, row
