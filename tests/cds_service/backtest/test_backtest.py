"""The backtest on Dask: firing rates that match the generator's answer key and a single-process
run, from Bundles or NDJSON alike, through the same ``engine.evaluate`` the hooks use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import fsspec
import pytest
from distributed import Client

from cds_service.backtest.run import run_backtest
from cds_service.patterns import PATTERN_IDS
from cds_service.settings import Settings, load_settings
from cds_service.synthetic.population import write_population
from tests.cds_service.backtest.conftest import (
    AS_OF,
    EVERY_ARCHETYPE,
    FIXTURES,
    SYNTHEA,
    single_process_flags,
)

BACKTEST_FIXTURES = FIXTURES / "backtest"


@pytest.fixture(scope="module")
def bundle_run(
    population: tuple[Path, dict[str, Any]], default_settings: Settings, dask_client: Client
) -> Any:
    directory, _ = population
    return run_backtest(
        directory, default_settings, AS_OF, dask_client, collect_flags=True, strict=True
    )


def test_flagged_counts_equal_the_manifest(
    population: tuple[Path, dict[str, Any]], bundle_run: Any
) -> None:
    _, manifest = population
    document = bundle_run.document
    assert document["patients"] == 60
    assert document["skipped_files"] == []
    flagged = {pid: row["flagged"] for pid, row in document["patterns"].items()}
    assert flagged == manifest["expected_flagged"]
    assert all(n > 0 for n in flagged.values())


def test_each_patient_is_flagged_as_a_single_process_run_and_the_answer_key_say(
    population: tuple[Path, dict[str, Any]], bundle_run: Any, default_settings: Settings
) -> None:
    directory, manifest = population
    assert bundle_run.flags == single_process_flags(directory, default_settings)
    for entry in manifest["patient_archetypes"]:
        assert sorted(bundle_run.flags[entry["patient"]]) == entry["expected"]


def test_report_has_the_documented_shape(bundle_run: Any, default_settings: Settings) -> None:
    document = bundle_run.document
    assert set(document) == {
        "patients",
        "as_of",
        "config_version",
        "patterns",
        "skipped_files",
        "data_quality",
    }
    assert document["as_of"] == "2026-06-15"
    assert document["config_version"] == default_settings.config_version
    assert list(document["patterns"]) == list(PATTERN_IDS)
    for row in document["patterns"].values():
        assert set(row) == {"mode", "flagged", "per_1000", "what_if"}
        assert row["mode"] == "active"
        assert row["per_1000"] == round(row["flagged"] * 1000 / 60, 1)
        for what_if in row["what_if"]:
            assert set(what_if) == {"threshold", "value", "flagged", "per_1000"}
    quality = document["data_quality"]
    assert quality["malformed_lines"] == 0 and quality["skipped_files"] == 0
    assert quality["resources_read"] > 60 * 10


def test_what_if_includes_the_configured_value_and_agrees_with_it(
    bundle_run: Any, default_settings: Settings
) -> None:
    for pattern_id, row in bundle_run.document["patterns"].items():
        thresholds = default_settings.patterns[pattern_id].thresholds
        configured = [
            w for w in row["what_if"] if getattr(thresholds, w["threshold"]) == w["value"]
        ]
        assert configured, pattern_id
        assert all(w["flagged"] == row["flagged"] for w in configured), pattern_id
        assert len({w["value"] for w in row["what_if"]}) > len(configured)


def test_a_looser_threshold_flags_at_least_as_many(bundle_run: Any) -> None:
    for pattern_id, row in bundle_run.document["patterns"].items():
        by_threshold: dict[str, list[tuple[float, int]]] = {}
        for w in row["what_if"]:
            by_threshold.setdefault(w["threshold"], []).append((w["value"], w["flagged"]))
        for name, rows in by_threshold.items():
            counts = [n for _, n in sorted(rows)]
            # min_* counts loosen downwards; pdc_below (flag when PDC is below) loosens upwards.
            expected = sorted(counts) if name == "pdc_below" else sorted(counts, reverse=True)
            assert counts == expected, (pattern_id, name, rows)


def test_ndjson_in_many_small_blocks_and_partitions_gives_the_same_figures_as_bundles(
    ndjson_population: tuple[Path, dict[str, Any]],
    bundle_run: Any,
    default_settings: Settings,
    dask_client: Client,
) -> None:
    directory, _ = ndjson_population
    # 256 KB blocks cut the larger files (and so many patients) across read tasks, and 4 or
    # more partitions spread the patients: the shuffle must still bring each patient together.
    result = run_backtest(
        directory,
        default_settings,
        AS_OF,
        dask_client,
        collect_flags=True,
        strict=True,
        block_bytes=256 * 1024,
        partition_bytes=512 * 1024,
    )
    assert result.partitions >= 4
    assert result.document == bundle_run.document
    assert result.flags == bundle_run.flags


def test_inputs_behind_an_fsspec_url_give_the_same_figures(
    ndjson_population: tuple[Path, dict[str, Any]],
    bundle_run: Any,
    default_settings: Settings,
    dask_client: Client,
) -> None:
    # memory:// stands in for s3:// here (same fsspec interface, no network): the workers are
    # threads of this process, so they see the same in-memory file system.
    directory, _ = ndjson_population
    fs = fsspec.filesystem("memory")
    for path in directory.iterdir():
        fs.pipe(f"/export-1/{path.name}", path.read_bytes())
    try:
        result = run_backtest("memory://export-1", default_settings, AS_OF, dask_client)
    finally:
        fs.rm("/export-1", recursive=True)
    assert result.document == bundle_run.document


def test_several_input_folders_are_one_population(
    population: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    bundle_run: Any,
    default_settings: Settings,
    dask_client: Client,
) -> None:
    directory, manifest = population
    files = sorted(p["file"] for p in manifest["patient_archetypes"])
    for half, names in (("a", files[:25]), ("b", files[25:])):
        (tmp_path / half).mkdir()
        for name in names:
            shutil.copy(directory / name, tmp_path / half / name)
    result = run_backtest([tmp_path / "a", tmp_path / "b"], default_settings, AS_OF, dask_client)
    assert result.document == bundle_run.document


def test_ndjson_medication_references_resolve_against_medication_ndjson(
    tmp_path: Path, default_settings: Settings, dask_client: Client
) -> None:
    manifest = json.loads(
        write_population(tmp_path, 28, 6, AS_OF, "ndjson", mix=EVERY_ARCHETYPE).read_text()
    )
    # Bulk exports from some EHRs reference shared Medication resources instead of inlining codes.
    medications: dict[str, str] = {}
    for name in ("MedicationRequest.ndjson", "MedicationDispense.ndjson"):
        lines = []
        for line in (tmp_path / name).read_text().splitlines():
            resource = json.loads(line)
            concept = json.dumps(resource.pop("medicationCodeableConcept"), sort_keys=True)
            med_id = medications.setdefault(concept, f"med-{len(medications) + 1}")
            resource["medicationReference"] = {"reference": f"Medication/{med_id}"}
            lines.append(json.dumps(resource))
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    (tmp_path / "Medication.ndjson").write_text(
        "".join(
            json.dumps({"resourceType": "Medication", "id": med_id, "code": json.loads(concept)})
            + "\n"
            for concept, med_id in medications.items()
        )
    )
    result = run_backtest(tmp_path, default_settings, AS_OF, dask_client, strict=True)
    flagged = {pid: row["flagged"] for pid, row in result.document["patterns"].items()}
    assert flagged == manifest["expected_flagged"]
    # Without the catalogue the same orders name no drug the patterns know.
    (tmp_path / "Medication.ndjson").unlink()
    bare = run_backtest(tmp_path, default_settings, AS_OF, dask_client, strict=True)
    assert sum(row["flagged"] for row in bare.document["patterns"].values()) < sum(
        flagged.values()
    )


def test_silent_counts_and_off_is_reported_as_off(
    population: tuple[Path, dict[str, Any]], dask_client: Client
) -> None:
    directory, manifest = population
    settings = load_settings(
        overrides={
            "patterns": {
                "nonadherence": {"mode": "off"},
                "repeated-intolerance": {"mode": "silent"},
            }
        }
    )
    document = run_backtest(directory, settings, AS_OF, dask_client, strict=True).document
    off = document["patterns"]["nonadherence"]
    assert (off["mode"], off["flagged"], off["per_1000"]) == ("off", 0, 0.0)
    # The what-if rows still say what the pattern would flag if switched on.
    at_configured = [w for w in off["what_if"] if w["value"] == 0.8]
    assert at_configured[0]["flagged"] == manifest["expected_flagged"]["nonadherence"]
    silent = document["patterns"]["repeated-intolerance"]
    assert silent["mode"] == "silent"
    assert silent["flagged"] == manifest["expected_flagged"]["repeated-intolerance"]
    assert document["config_version"] != load_settings().config_version


@pytest.mark.parametrize("block_bytes", [64 * 2**20, 2048], ids=["one-block", "many-blocks"])
def test_malformed_files_and_lines_are_reported_and_skipped(
    default_settings: Settings, dask_client: Client, block_bytes: int
) -> None:
    document = run_backtest(
        BACKTEST_FIXTURES, default_settings, AS_OF, dask_client, strict=True,
        block_bytes=block_bytes,
    ).document
    assert document["patients"] == 3
    flagged = {pid: row["flagged"] for pid, row in document["patterns"].items()}
    assert flagged == {
        **dict.fromkeys(PATTERN_IDS, 0),
        "psychotropic-polypharmacy": 1,
        "repeated-intolerance": 1,
    }
    skipped = {s["file"]: s["reason"] for s in document["skipped_files"]}
    assert skipped.keys() == {"fixture-c.ndjson", "truncated.json", "not-a-bundle.json"}
    # Line numbers are counted across the blocks the file was cut into.
    assert skipped["fixture-c.ndjson"] == (
        "2 malformed line(s) skipped: line 4: not valid JSON, line 7: not a FHIR resource"
    )
    assert skipped["truncated.json"] == "not valid JSON"
    assert skipped["not-a-bundle.json"] == "not a FHIR Bundle or resource"
    assert document["data_quality"]["malformed_lines"] == 2
    assert document["data_quality"]["skipped_files"] == 2


def test_a_bundle_holding_two_patients_counts_two(
    population: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    default_settings: Settings,
    dask_client: Client,
) -> None:
    directory, manifest = population
    first, second = manifest["patient_archetypes"][:2]
    entries = [
        entry
        for p in (first, second)
        for entry in json.loads((directory / p["file"]).read_text())["entry"]
    ]
    both = {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
    (tmp_path / "two-patients.json").write_text(json.dumps(both))
    result = run_backtest(
        tmp_path, default_settings, AS_OF, dask_client, collect_flags=True, strict=True
    )
    assert result.flags == {
        first["patient"]: frozenset(first["expected"]),
        second["patient"]: frozenset(second["expected"]),
    }


def test_synthea_bulk_export_matches_a_single_process_run(
    default_settings: Settings, dask_client: Client
) -> None:
    result = run_backtest(
        SYNTHEA, default_settings, AS_OF, dask_client, collect_flags=True, strict=True,
        block_bytes=16 * 1024,
    )
    reference = single_process_flags(SYNTHEA, default_settings)
    assert len(reference) == 5
    assert result.flags == reference
    quality = result.document["data_quality"]
    assert quality["resources_read"] == 192  # every line of the five files
    assert quality["other_resource_types"] == {} and quality["malformed_lines"] == 0


def test_mapping_issues_are_counted_by_kind_and_patients(
    synthea_with_issues: Path, default_settings: Settings, dask_client: Client
) -> None:
    result = run_backtest(
        synthea_with_issues, default_settings, AS_OF, dask_client, collect_flags=True
    )
    assert result.flags == single_process_flags(synthea_with_issues, default_settings)
    issues = {
        (i["resource_type"], i["field"], i["reason"]): (i["count"], i["patients"])
        for i in result.document["data_quality"]["mapping_issues"]
    }
    assert issues == {
        ("Patient", "birthDate", "unparseable date"): (2, 2),
        ("MedicationRequest", "dosageInstruction", "dose without a numeric value"): (1, 1),
    }


def test_unread_resource_types_and_resources_without_a_patient_are_counted(
    population: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    default_settings: Settings,
    dask_client: Client,
) -> None:
    shutil.copytree(SYNTHEA, tmp_path, dirs_exist_ok=True)
    claim = {"resourceType": "Claim", "id": "c1", "patient": {"reference": "Patient/x"}}
    practitioner = {"resourceType": "Practitioner", "id": "pr1"}
    orphan = {"resourceType": "Encounter", "id": "e1", "status": "finished"}
    (tmp_path / "Claim.000.ndjson").write_text(json.dumps(claim) + "\n" + json.dumps(claim) + "\n")
    (tmp_path / "Practitioner.000.ndjson").write_text(json.dumps(practitioner) + "\n")
    (tmp_path / "Encounter.001.ndjson").write_text(json.dumps(orphan) + "\n")
    with_extra = run_backtest(tmp_path, default_settings, AS_OF, dask_client, strict=True)
    plain = run_backtest(SYNTHEA, default_settings, AS_OF, dask_client, strict=True)
    quality = with_extra.document["data_quality"]
    assert quality["other_resource_types"] == {"Claim": 2, "Practitioner": 1}
    assert quality["resources_without_patient"] == {"Encounter": 1}
    assert with_extra.document["patients"] == plain.document["patients"] == 5
    assert with_extra.document["patterns"] == plain.document["patterns"]


SHARED_SYNTHEA = Path(__file__).parents[4] / "shared" / "data" / "synthea-bulk-10"


@pytest.mark.skipif(not SHARED_SYNTHEA.is_dir(), reason="../shared/data is not beside the repo")
def test_the_whole_shared_synthea_export_matches_a_single_process_run(
    default_settings: Settings, dask_client: Client
) -> None:
    # The fixture above is a 5-patient cut of this export, so CI never depends on it.
    result = run_backtest(
        SHARED_SYNTHEA, default_settings, AS_OF, dask_client, collect_flags=True, strict=True
    )
    assert result.flags == single_process_flags(SHARED_SYNTHEA, default_settings)
    assert result.document["patients"] == 13
    assert result.document["data_quality"]["malformed_lines"] == 0
