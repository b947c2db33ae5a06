"""Shared fixtures for the mapper tests: the bundled lookups and the JSON fixtures in data/."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cds_service.loaders import load_code_lists, load_ingredient_table
from fhir_mappers import CodeLists, IngredientTable, map_record
from fhir_mappers.record import PatientRecord

DATA = Path(__file__).parent / "data"


def read_fixture(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def table() -> IngredientTable:
    return load_ingredient_table()


@pytest.fixture(scope="session")
def codes() -> CodeLists:
    return load_code_lists()


@pytest.fixture
def load_fixture() -> Callable[[str], Any]:
    """A fresh copy of a JSON fixture from tests/fhir_mappers/data/ (tests may mutate it)."""
    return read_fixture


@pytest.fixture(scope="session")
def patient_record(table: IngredientTable, codes: CodeLists) -> PatientRecord:
    """The realistic patient bundle, mapped once (the record is immutable)."""
    return map_record([read_fixture("patient-bundle.json")], table, codes=codes)
