"""The backtest: firing rates that match the generator's answer key, from bundles or NDJSON alike,
through the same ``engine.evaluate`` the hooks use."""

from __future__ import annotations

import argparse
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cds_service.backtest.inputs import partition_ndjson, read_bucket
from cds_service.backtest.run import (
    Progress,
    add_backtest_arguments,
    main,
    main_backtest,
    run_backtest,
)
from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns import PATTERN_IDS
from cds_service.patterns.engine import evaluate
from cds_service.settings import Settings, load_settings
from cds_service.synthetic.archetypes import ARCHETYPES
from cds_service.synthetic.population import write_population
from fhir_mappers.mapper import map_record

AS_OF = date(2026, 6, 15)
FIXTURES = Path(__file__).parents[2] / "fixtures" / "backtest"
EVERY_ARCHETYPE = dict.fromkeys(ARCHETYPES, 1.0)

CODES = load_code_lists()


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """60 patients, every archetype about equally often, one Bundle file each (read-only)."""
    out = tmp_path_factory.mktemp("bundles")
    manifest = write_population(out, 60, 11, AS_OF, "bundles", mix=EVERY_ARCHETYPE)
    return out, json.loads(manifest.read_text())


@pytest.fixture(scope="module")
def default_settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="module")
def bundle_report(
    population: tuple[Path, dict[str, Any]], default_settings: Settings
) -> dict[str, Any]:
    directory, _ = population
    return run_backtest(directory, default_settings, AS_OF, workers=2, strict=True).document


def test_flagged_counts_equal_the_manifest(
    population: tuple[Path, dict[str, Any]], bundle_report: dict[str, Any]
) -> None:
    _, manifest = population
    assert bundle_report["patients"] == 60
    assert bundle_report["skipped_files"] == []
    flagged = {pid: row["flagged"] for pid, row in bundle_report["patterns"].items()}
    assert flagged == manifest["expected_flagged"]
    assert all(n > 0 for n in flagged.values())


def test_report_has_the_documented_shape(
    bundle_report: dict[str, Any], default_settings: Settings
) -> None:
    assert set(bundle_report) == {
        "patients",
        "as_of",
        "config_version",
        "patterns",
        "skipped_files",
    }
    assert bundle_report["as_of"] == "2026-06-15"
    assert bundle_report["config_version"] == default_settings.config_version
    assert list(bundle_report["patterns"]) == list(PATTERN_IDS)
    for row in bundle_report["patterns"].values():
        assert set(row) == {"mode", "flagged", "per_1000", "what_if"}
        assert row["mode"] == "active"
        assert row["per_1000"] == round(row["flagged"] * 1000 / 60, 1)
        for what_if in row["what_if"]:
            assert set(what_if) == {"threshold", "value", "flagged", "per_1000"}


def test_what_if_includes_the_configured_value_and_agrees_with_it(
    bundle_report: dict[str, Any], default_settings: Settings
) -> None:
    for pattern_id, row in bundle_report["patterns"].items():
        thresholds = default_settings.patterns[pattern_id].thresholds
        configured = [
            w for w in row["what_if"] if getattr(thresholds, w["threshold"]) == w["value"]
        ]
        assert configured, pattern_id
        assert all(w["flagged"] == row["flagged"] for w in configured), pattern_id
        assert len({w["value"] for w in row["what_if"]}) > len(configured)


def test_a_looser_threshold_flags_at_least_as_many(bundle_report: dict[str, Any]) -> None:
    for pattern_id, row in bundle_report["patterns"].items():
        by_threshold: dict[str, list[tuple[float, int]]] = {}
        for w in row["what_if"]:
            by_threshold.setdefault(w["threshold"], []).append((w["value"], w["flagged"]))
        for name, rows in by_threshold.items():
            counts = [n for _, n in sorted(rows)]
            # min_* counts loosen downwards; pdc_below (flag when PDC is below) loosens upwards.
            expected = sorted(counts) if name == "pdc_below" else sorted(counts, reverse=True)
            assert counts == expected, (pattern_id, name, rows)


def test_ndjson_gives_the_same_figures_as_bundles(
    tmp_path: Path, bundle_report: dict[str, Any], default_settings: Settings
) -> None:
    write_population(tmp_path, 60, 11, AS_OF, "ndjson", mix=EVERY_ARCHETYPE)
    assert not list(tmp_path.glob("s11-*.json"))
    ndjson_report = run_backtest(tmp_path, default_settings, AS_OF, workers=2, strict=True).document
    assert ndjson_report == bundle_report


def test_ndjson_medication_references_resolve_against_medication_ndjson(
    tmp_path: Path, default_settings: Settings
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
    document = run_backtest(tmp_path, default_settings, AS_OF, strict=True).document
    flagged = {pid: row["flagged"] for pid, row in document["patterns"].items()}
    assert flagged == manifest["expected_flagged"]


def test_backtest_flags_the_same_patients_as_evaluate_directly(
    population: tuple[Path, dict[str, Any]], default_settings: Settings
) -> None:
    directory, manifest = population
    result = run_backtest(directory, default_settings, AS_OF, collect_flags=True, strict=True)
    assert result.flags is not None and len(result.flags) == 60
    table = load_ingredient_table()
    for entry in manifest["patient_archetypes"]:
        bundle = json.loads((directory / entry["file"]).read_text())
        record = map_record([bundle], table, codes=CODES)
        direct = evaluate(record, (), default_settings.patterns, AS_OF)
        assert result.flags[entry["patient"]] == {f.pattern_id for f in direct}
        assert sorted(result.flags[entry["patient"]]) == entry["expected"]


def test_silent_counts_and_off_is_reported_as_off(
    population: tuple[Path, dict[str, Any]],
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
    document = run_backtest(directory, settings, AS_OF, strict=True).document
    off = document["patterns"]["nonadherence"]
    assert (off["mode"], off["flagged"], off["per_1000"]) == ("off", 0, 0.0)
    # The what-if rows still say what the pattern would flag if switched on.
    at_configured = [w for w in off["what_if"] if w["value"] == 0.8]
    assert at_configured[0]["flagged"] == manifest["expected_flagged"]["nonadherence"]
    silent = document["patterns"]["repeated-intolerance"]
    assert silent["mode"] == "silent"
    assert silent["flagged"] == manifest["expected_flagged"]["repeated-intolerance"]
    assert document["config_version"] != load_settings().config_version


def test_malformed_files_are_reported_and_skipped(default_settings: Settings) -> None:
    document = run_backtest(FIXTURES, default_settings, AS_OF, strict=True).document
    assert document["patients"] == 3
    flagged = {pid: row["flagged"] for pid, row in document["patterns"].items()}
    assert flagged == {
        **dict.fromkeys(PATTERN_IDS, 0),
        "psychotropic-polypharmacy": 1,
        "repeated-intolerance": 1,
    }
    skipped = {s["file"]: s["reason"] for s in document["skipped_files"]}
    assert skipped.keys() == {"fixture-c.ndjson", "truncated.json", "not-a-bundle.json"}
    assert "line 4: not valid JSON" in skipped["fixture-c.ndjson"]
    assert "line 7: not a FHIR resource" in skipped["fixture-c.ndjson"]
    assert skipped["truncated.json"] == "not valid JSON"
    assert skipped["not-a-bundle.json"] == "not a FHIR Bundle or resource"


def test_a_bundle_holding_two_patients_counts_two(
    population: tuple[Path, dict[str, Any]], tmp_path: Path, default_settings: Settings
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
    result = run_backtest(tmp_path, default_settings, AS_OF, collect_flags=True, strict=True)
    assert result.flags == {
        first["patient"]: frozenset(first["expected"]),
        second["patient"]: frozenset(second["expected"]),
    }


def test_ndjson_partition_keeps_each_patient_in_one_bucket(tmp_path: Path) -> None:
    source, work = tmp_path / "in", tmp_path / "work"
    work.mkdir()
    write_population(source, 12, 5, AS_OF, "ndjson")
    # A formulary entry that medicationReference points to: shared, not any patient's.
    medication = {"resourceType": "Medication", "id": "m1", "code": {"text": "lithium carbonate"}}
    (source / "Medication.ndjson").write_text(json.dumps(medication) + "\n")
    partition = partition_ndjson(sorted(source.glob("*.ndjson")), work, 4)
    assert partition.medications == {"Medication/m1": medication}
    seen: dict[str, int] = {}
    for index, bucket in enumerate(partition.buckets):
        for key, resources in read_bucket(bucket):
            assert key not in seen
            seen[key] = index
            assert any(r["resourceType"] == "Patient" for r in resources)
    assert len(seen) == 12 and len(set(seen.values())) > 1


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_backtest_arguments(parser)
    return main_backtest(parser.parse_args(list(argv)))


def test_cli_prints_json_and_reports_skips_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code = _run_cli(str(FIXTURES), "--as-of", "2026-06-15", "--format", "json", "--workers", "1")
    out, err = capsys.readouterr()
    assert code == 0
    assert json.loads(out)["patients"] == 3
    assert "skipped truncated.json: not valid JSON" in err


def test_cli_table_names_every_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(FIXTURES), "--as-of", "2026-06-15", "--quiet", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert all(pattern_id in out for pattern_id in PATTERN_IDS)
    assert "min_distinct_classes" in out and "3*" in out


def test_cli_exit_1_when_dir_is_missing_or_has_no_patients(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run_cli(str(tmp_path / "missing"), "--as-of", "2026-06-15") == 1
    (tmp_path / "junk.json").write_text("<html>503</html>")
    assert _run_cli(str(tmp_path), "--as-of", "2026-06-15", "--format", "json") == 1
    assert "no readable patients" in capsys.readouterr().err


def test_cli_exit_1_on_an_invalid_config(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("patterns:\n  nonadherence:\n    pdc_belo: 0.7\n")
    assert _run_cli(str(FIXTURES), "--config", str(config), "--as-of", "2026-06-15") == 1


@pytest.mark.parametrize(
    "argv",
    [["--as-of", "15/06/2026"], ["--workers", "0"], ["--format", "xml"], []],
    ids=["bad-date", "zero-workers", "bad-format", "no-dir"],
)
def test_cli_exit_2_on_bad_arguments(argv: list[str]) -> None:
    args = argv if not argv else [str(FIXTURES), *argv]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2


def test_progress_bar_ends_at_100_percent() -> None:
    stream = io.StringIO()
    ticks = iter(float(i) for i in range(100))
    progress = Progress(stream, total_bytes=10, clock=lambda: next(ticks))
    progress.read(10)
    progress.start_tasks(2)
    progress.task_done(5)
    progress.task_done(9)
    progress.finish()
    text = stream.getvalue()
    assert "100%" in text and "9 patients" in text and text.endswith("\n")
