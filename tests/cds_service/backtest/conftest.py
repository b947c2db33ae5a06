"""Backtest fixtures: one in-process Dask cluster for the module tests, synthetic populations
with their answer keys, and a plain single-process reference to compare the Dask run with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from cds_service.backtest.cluster import open_client
from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns.engine import evaluate
from cds_service.settings import Settings, load_settings
from cds_service.synthetic.archetypes import ARCHETYPES
from cds_service.synthetic.population import write_population
from fhir_mappers.mapper import map_record

AS_OF = date(2026, 6, 15)
FIXTURES = Path(__file__).parents[2] / "fixtures"
EVERY_ARCHETYPE = dict.fromkeys(ARCHETYPES, 1.0)
SYNTHEA = FIXTURES / "synthea-bulk-5"


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Client]:
    """Two worker threads in this process: the same scheduler, shuffle and tasks as a cluster of
    processes, without their start-up time (test_distributed.py runs real processes)."""
    with open_client(workers=2, processes=False) as client:
        yield client


@pytest.fixture(scope="session")
def default_settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def population(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """60 patients, every archetype about equally often, one Bundle file each (read-only)."""
    out = tmp_path_factory.mktemp("bundles")
    manifest = write_population(out, 60, 11, AS_OF, "bundles", mix=EVERY_ARCHETYPE)
    return out, json.loads(manifest.read_text())


@pytest.fixture(scope="session")
def ndjson_population(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The same 60 patients as Bulk FHIR NDJSON (one file per resource type; read-only)."""
    out = tmp_path_factory.mktemp("ndjson")
    manifest = write_population(out, 60, 11, AS_OF, "ndjson", mix=EVERY_ARCHETYPE)
    return out, json.loads(manifest.read_text())


def single_process_flags(directory: Path, settings: Settings) -> dict[str, frozenset[str]]:
    """The reference: every patient's resources gathered in one dict, mapped in full (no
    horizon) and evaluated one by one in this process, with none of the backtest's code."""
    by_patient: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.ndjson")):
        for line in path.read_text().splitlines():
            resource = json.loads(line)
            if resource["resourceType"] == "Patient":
                key = resource["id"]
            else:
                key = (resource.get("subject") or resource["patient"])["reference"]
                key = key.removeprefix("Patient/")
            by_patient.setdefault(key, []).append(resource)
    for path in sorted(directory.glob("*.json")):
        bundle = json.loads(path.read_text())
        if bundle.get("resourceType") == "Bundle":
            key = bundle["entry"][0]["resource"]["id"]
            by_patient.setdefault(key, []).append(bundle)
    table, codes = load_ingredient_table(), load_code_lists()
    flags: dict[str, frozenset[str]] = {}
    for key, resources in by_patient.items():
        record = map_record(resources, table, codes=codes)
        findings = evaluate(record, (), settings.patterns, AS_OF)
        flags[key] = frozenset(f.pattern_id for f in findings)
    return flags


@pytest.fixture(scope="session")
def synthea_with_issues(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 5-patient Synthea subset with known data-quality problems added: two patients'
    ``birthDate`` unreadable, and one psychotropic order whose dose is a word, not a number."""
    out = tmp_path_factory.mktemp("synthea-issues")
    for path in SYNTHEA.glob("*.ndjson"):
        (out / path.name).write_bytes(path.read_bytes())
    patients = [json.loads(line) for line in (out / "Patient.000.ndjson").read_text().splitlines()]
    for patient in patients[:2]:
        patient["birthDate"] = "19x"
    (out / "Patient.000.ndjson").write_text("".join(json.dumps(p) + "\n" for p in patients))
    order = {
        "resourceType": "MedicationRequest",
        "id": "added-sertraline",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patients[0]['id']}"},
        "authoredOn": "2026-05-02",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "312938",
                    "display": "sertraline 50 MG Oral Tablet",
                }
            ]
        },
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": "two"}}]}],
    }
    with (out / "MedicationRequest.000.ndjson").open("a") as stream:
        stream.write(json.dumps(order) + "\n")
    return out
