"""``psychopharm-cds backtest``: reports on stdout, problems and progress on stderr, exit codes."""

from __future__ import annotations

import argparse
import io
import json
import logging
from pathlib import Path

import pytest
from distributed import Client

from cds_service.backtest import cluster
from cds_service.backtest.cluster import Progress
from cds_service.backtest.run import add_backtest_arguments, main, main_backtest
from cds_service.patterns import PATTERN_IDS
from tests.cds_service.backtest.conftest import FIXTURES

BACKTEST_FIXTURES = FIXTURES / "backtest"


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_backtest_arguments(parser)
    return main_backtest(parser.parse_args(list(argv)))


@pytest.fixture
def scheduler(dask_client: Client) -> str:
    """The session's in-process cluster, reached by address as --scheduler would reach any."""
    return str(dask_client.scheduler.address)


def test_cli_prints_json_and_reports_skips_and_a_summary_on_stderr(
    scheduler: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run_cli(
        str(BACKTEST_FIXTURES), "--as-of", "2026-06-15", "--format", "json",
        "--scheduler", scheduler,
    )
    out, err = capsys.readouterr()
    assert code == 0
    document = json.loads(out)
    assert document["patients"] == 3
    assert document["data_quality"]["malformed_lines"] == 2
    assert "skipped truncated.json: not valid JSON" in err
    assert "backtest: 3 patients in " in err and "peak worker memory" in err
    # Not a terminal: one-line progress reports, ending with every partition done.
    assert "partitions, 3 patients" in err and "patients/s" in err


def test_cli_table_names_every_pattern_and_the_data_quality(
    scheduler: str, synthea_with_issues: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(
        [str(synthea_with_issues), "--as-of", "2026-06-15", "--quiet", "--scheduler", scheduler]
    ) == 0
    out, err = capsys.readouterr()
    assert all(pattern_id in out for pattern_id in PATTERN_IDS)
    assert "min_distinct_classes" in out and "3*" in out
    assert "Data quality:" in out and "resources read" in out
    assert "Patient birthDate: unparseable date" in out
    assert "MedicationRequest dosageInstruction: dose without a numeric value" in out
    assert err == ""


def test_cli_writes_parquet_and_warns_about_the_development_secret(
    scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "findings"
    code = _run_cli(
        str(BACKTEST_FIXTURES), "--as-of", "2026-06-15", "--scheduler", scheduler,
        "--output", str(out_dir),
    )
    err = capsys.readouterr().err
    assert code == 0
    assert "development default" in err
    assert "2 findings written to" in err
    assert list(out_dir.glob("part-*.parquet"))


def test_cli_exit_1_when_dir_is_missing_or_has_no_patients(
    tmp_path: Path, scheduler: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run_cli(str(tmp_path / "missing"), "--as-of", "2026-06-15") == 1
    assert "is not a folder or a file" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("<html>503</html>")
    assert _run_cli(
        str(tmp_path), "--as-of", "2026-06-15", "--format", "json", "--scheduler", scheduler
    ) == 1
    assert "no readable patients" in capsys.readouterr().err


def test_cli_exit_1_on_an_unknown_url_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_cli("nosuchscheme://bucket/export", "--as-of", "2026-06-15") == 1
    assert "cannot read nosuchscheme://bucket/export" in capsys.readouterr().err


def test_cli_exit_1_on_an_invalid_config(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("patterns:\n  nonadherence:\n    pdc_belo: 0.7\n")
    assert _run_cli(str(BACKTEST_FIXTURES), "--config", str(config), "--as-of", "2026-06-15") == 1


def test_cli_exit_1_when_the_scheduler_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    code = _run_cli(str(BACKTEST_FIXTURES), "--scheduler", "tcp://127.0.0.1:9")
    assert code == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--as-of", "15/06/2026"],
        ["--workers", "0"],
        ["--format", "xml"],
        ["--partition-mb", "0"],
        ["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"],
        [],
    ],
    ids=["bad-date", "zero-workers", "bad-format", "zero-partition", "workers-and-scheduler",
         "no-dir"],
)
def test_cli_exit_2_on_bad_arguments(argv: list[str]) -> None:
    args = argv if not argv else [str(BACKTEST_FIXTURES), *argv]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2


def test_progress_reports_phase_patients_rate_and_eta() -> None:
    stream = io.StringIO()
    now = [100.0]
    progress = Progress(stream, clock=lambda: now[0], every_s=10.0)
    progress.start(4)
    now[0] = 105.0
    progress.tick()  # under 10 s since the last line: nothing
    now[0] = 112.0
    progress.tick()
    now[0] = 120.0
    progress.partition_done(1000)
    now[0] = 130.0
    progress.partition_done(1000)
    now[0] = 131.0
    progress.partition_done(1000)  # 1 s after the last line: not reported
    now[0] = 140.0
    progress.partition_done(1000)  # the last one is always reported
    lines = stream.getvalue().splitlines()
    assert lines == [
        "backtest: reading and grouping by patient, 12 s (4 partitions to evaluate)",
        "backtest: 2/4 partitions, 2,000 patients, 67 patients/s, ETA 20 s",
        "backtest: 4/4 partitions, 4,000 patients, 100 patients/s, ETA 0 s",
    ]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_dask_draws_its_bar_on_stderr_and_stdout_keeps_the_report(
    scheduler: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    code = _run_cli(
        str(BACKTEST_FIXTURES), "--as-of", "2026-06-15", "--format", "json",
        "--scheduler", scheduler,
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["patients"] == 3  # nothing but the report
    drawn = terminal.getvalue()
    assert "100% Completed" in drawn
    assert "reading and grouping" not in drawn  # the one-line reports are for non-terminals


def test_cluster_chatter_stays_out_of_the_user_s_output(
    scheduler: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The scheduler logs each shuffle and each worker at INFO/WARNING; users see their report.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="distributed")  # dask's own default
    assert _run_cli(
        str(BACKTEST_FIXTURES), "--as-of", "2026-06-15", "--quiet", "--scheduler", scheduler
    ) == 0
    chatter = [r for r in caplog.records
               if r.name.startswith("distributed") and r.levelno < logging.ERROR]
    assert chatter == []
    assert logging.getLogger("distributed").level == logging.INFO  # restored afterwards
