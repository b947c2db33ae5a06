"""The synthetic population: deterministic, valid R4, and its archetypes mean what they say."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle

from cds_service.gather.service_definitions import load_definitions
from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns import PATTERN_IDS
from cds_service.patterns.engine import evaluate
from cds_service.settings import Settings, load_settings
from cds_service.synthetic.archetypes import ARCHETYPES
from cds_service.synthetic.population import (
    apportion,
    expected_patterns,
    generate_patient,
    generate_population,
    main,
    make_hook_request,
    write_population,
)
from fhir_mappers.mapper import map_record
from fhir_mappers.medications import IngredientTable

AS_OF = date(2026, 6, 15)
EVERY_ARCHETYPE = dict.fromkeys(ARCHETYPES, 1.0)

CODES = load_code_lists()


@pytest.fixture(scope="module")
def table() -> IngredientTable:
    return load_ingredient_table()


@pytest.fixture(scope="module")
def default_settings() -> Settings:
    return load_settings()


def _flags(bundle: dict[str, Any], table: IngredientTable, settings: Settings) -> set[str]:
    record = map_record([bundle], table, codes=CODES)
    findings = evaluate(record, (), settings.patterns, AS_OF, "patient-view", raise_errors=True)
    return {f.pattern_id for f in findings}


def test_same_seed_gives_identical_population() -> None:
    first = orjson.dumps(list(generate_population(40, 7, AS_OF)))
    second = orjson.dumps(list(generate_population(40, 7, AS_OF)))
    assert first == second


def test_another_seed_gives_another_population() -> None:
    assert list(generate_population(20, 1, AS_OF)) != list(generate_population(20, 2, AS_OF))


def test_written_files_are_byte_identical_for_the_same_seed(tmp_path: Path) -> None:
    for name in ("one", "two"):
        write_population(tmp_path / name, 15, 3, AS_OF, "ndjson")
    one = {p.name: p.read_bytes() for p in (tmp_path / "one").iterdir()}
    two = {p.name: p.read_bytes() for p in (tmp_path / "two").iterdir()}
    assert one == two
    assert "MedicationRequest.ndjson" in one and "manifest.json" in one


@pytest.mark.parametrize("archetype", sorted(ARCHETYPES))
def test_every_archetype_is_valid_fhir_r4(archetype: str) -> None:
    bundle = generate_patient(random.Random(5), AS_OF, archetype, index=1)
    parsed = Bundle.model_validate(bundle)
    assert parsed.entry is not None and len(parsed.entry) == len(bundle["entry"])


@pytest.mark.parametrize("archetype", sorted(ARCHETYPES))
def test_archetype_fires_exactly_its_pattern(
    archetype: str, table: IngredientTable, default_settings: Settings
) -> None:
    # Several seeds, so that each near miss's boundary variants are all exercised.
    for seed in range(12):
        bundle = generate_patient(random.Random(seed), AS_OF, archetype, index=seed)
        assert _flags(bundle, table, default_settings) == set(expected_patterns(archetype)), seed


def test_positive_archetypes_cover_every_pattern() -> None:
    positives = {p for a in ARCHETYPES.values() for p in a.expected}
    assert positives == set(PATTERN_IDS)
    assert all(not ARCHETYPES[f"near_miss_{p.replace('-', '_')}"].expected for p in PATTERN_IDS)


def test_manifest_records_each_patient_and_the_expected_flags(tmp_path: Path) -> None:
    manifest_path = write_population(tmp_path, 28, 9, AS_OF, mix=EVERY_ARCHETYPE)
    manifest = json.loads(manifest_path.read_text())
    patients = manifest["patient_archetypes"]
    assert manifest["patients"] == 28 and len(patients) == 28
    assert manifest["archetypes"] == dict.fromkeys(ARCHETYPES, 2)
    assert manifest["expected_flagged"] == dict.fromkeys(PATTERN_IDS, 2)
    for entry in patients:
        bundle = json.loads((tmp_path / entry["file"]).read_text())
        assert bundle["entry"][0]["resource"]["id"] == entry["patient"]
        assert entry["expected"] == sorted(expected_patterns(entry["archetype"]))


def test_ndjson_links_every_resource_to_its_patient(tmp_path: Path) -> None:
    write_population(tmp_path, 10, 4, AS_OF, "ndjson")
    patients = {
        json.loads(line)["id"] for line in (tmp_path / "Patient.ndjson").read_text().splitlines()
    }
    assert len(patients) == 10
    for path in tmp_path.glob("*.ndjson"):
        for line in path.read_text().splitlines():
            resource = json.loads(line)
            assert resource["resourceType"] == path.stem
            if path.stem != "Patient":
                link = resource.get("subject") or resource.get("patient")
                assert link["reference"].removeprefix("Patient/") in patients


def test_names_and_ids_are_obviously_synthetic() -> None:
    _, bundle = next(generate_population(1, 12, AS_OF))
    patient = bundle["entry"][0]["resource"]
    assert patient["name"][0]["family"] == "Synthetic"
    assert patient["id"].startswith("s12-p")


def test_apportion_gives_exact_counts_in_proportion() -> None:
    labels = apportion(10, {"clean": 0.7, "stable": 0.2, "nonadherence": 0.1})
    assert Counter(labels) == {"clean": 7, "stable": 2, "nonadherence": 1}
    assert len(apportion(7, EVERY_ARCHETYPE)) == 7


@pytest.mark.parametrize(
    "mix", [{"no_such_archetype": 1.0}, {"clean": -1.0}, {"clean": 0.0}], ids=str
)
def test_apportion_rejects_a_bad_mix(mix: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        apportion(5, mix)


def test_history_can_be_padded_to_a_thousand_resources_without_changing_the_answer(
    table: IngredientTable, default_settings: Settings
) -> None:
    big = generate_patient(random.Random(3), AS_OF, "repeated_intolerance", n_resources=1000)
    assert len(big["entry"]) == 1000
    assert 300_000 < len(orjson.dumps(big)) < 900_000
    assert _flags(big, table, default_settings) == {"repeated-intolerance"}
    small = generate_patient(random.Random(3), AS_OF, "clean", history_years=0.5)
    assert len(small["entry"]) < 30


def test_hook_request_carries_the_record_as_searchset_prefetch() -> None:
    bundle = generate_patient(random.Random(8), AS_OF, "psychotropic_polypharmacy", index=3)
    request = make_hook_request(bundle, "patient-view")
    assert request["hook"] == "patient-view"
    assert request["context"]["patientId"] == bundle["entry"][0]["resource"]["id"]
    prefetch = request["prefetch"]
    assert prefetch["patient"]["resourceType"] == "Patient"
    others = {k: v for k, v in prefetch.items() if k != "patient"}
    # Every key the services ask for at discovery is filled, so no call needs the FHIR server.
    declared = load_definitions()["psychopharm-patient-view"].prefetch
    assert set(prefetch) == set(declared)
    assert all(v["type"] == "searchset" and v["total"] == len(v["entry"]) for v in others.values())
    assert sum(v["total"] for v in others.values()) == len(bundle["entry"]) - 1
    assert request == make_hook_request(bundle, "patient-view")  # stable hookInstance


def test_order_hooks_carry_the_draft_order() -> None:
    bundle = generate_patient(random.Random(8), AS_OF, "stable", index=4)
    select = make_hook_request(bundle, "order-select")
    draft = select["context"]["draftOrders"]["entry"][0]["resource"]
    assert draft["status"] == "draft"
    assert select["context"]["selections"] == [f"MedicationRequest/{draft['id']}"]
    sign = make_hook_request(bundle, "order-sign")
    assert "selections" not in sign["context"] and sign["context"]["draftOrders"]["entry"]
    legacy = make_hook_request(bundle, "medication-prescribe")
    assert legacy["context"]["medications"]["entry"][0]["resource"]["status"] == "draft"


def test_command_line_writes_a_population(tmp_path: Path) -> None:
    code = main([str(tmp_path), "--patients", "5", "--seed", "2", "--as-of", "2026-06-15"])
    assert code == 0
    assert len(list(tmp_path.glob("s2-p*.json"))) == 5
    assert json.loads((tmp_path / "manifest.json").read_text())["as_of"] == "2026-06-15"
