"""Prometheus metrics: what a scrape of /metrics shows after calls, cards and errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cds_service.runtime.metrics import LATENCY_BUCKETS_S, Metrics
from cds_service.runtime.multiprocess_dir import MULTIPROC_ENV, multiprocess_directory


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    payload, _ = metrics.render()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(payload.decode())
        for s in family.samples
    }


def test_observed_calls_are_counted_and_timed() -> None:
    metrics = Metrics()
    metrics.observe_call("psychopharm-order-sign", "order-sign", 200, 0.004)
    metrics.observe_call("psychopharm-order-sign", "order-sign", 200, 0.3)
    metrics.observe_call("psychopharm-order-sign", "order-sign", 401, 0.001)
    got = samples(metrics)
    ok = frozenset(
        {("service", "psychopharm-order-sign"), ("hook", "order-sign"), ("status", "200")}
    )
    assert got[("psychopharm_hook_calls_total", ok)] == 2
    denied = ok - {("status", "200")} | {("status", "401")}
    assert got[("psychopharm_hook_calls_total", denied)] == 1
    timing = frozenset({("service", "psychopharm-order-sign"), ("hook", "order-sign")})
    assert got[("psychopharm_hook_latency_seconds_count", timing)] == 3
    assert got[("psychopharm_hook_latency_seconds_bucket", timing | {("le", "0.005")})] == 2
    assert got[("psychopharm_hook_latency_seconds_bucket", timing | {("le", "0.5")})] == 3


def test_latency_buckets_span_one_millisecond_to_five_seconds() -> None:
    assert LATENCY_BUCKETS_S[0] == 0.001
    assert LATENCY_BUCKETS_S[-1] == 5.0
    assert list(LATENCY_BUCKETS_S) == sorted(LATENCY_BUCKETS_S)


def test_cards_and_errors_are_counted() -> None:
    metrics = Metrics()
    metrics.count_card("repeated-intolerance", "shown")
    metrics.count_card("repeated-intolerance", "silent")
    metrics.count_card("repeated-intolerance", "shown")
    metrics.count_error("auth:expired")
    got = samples(metrics)
    shown = frozenset({("pattern", "repeated-intolerance"), ("disposition", "shown")})
    assert got[("psychopharm_cards_total", shown)] == 2
    assert got[("psychopharm_errors_total", frozenset({("kind", "auth:expired")}))] == 1


def test_render_is_prometheus_text() -> None:
    _, content_type = Metrics().render()
    assert content_type.startswith("text/plain")


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.count_error("pattern-failed")
    assert ("psychopharm_errors_total", frozenset({("kind", "pattern-failed")})) not in samples(
        second
    )


_WORKER = """
import sys
from cds_service.runtime.metrics import Metrics
m = Metrics()
m.observe_call("svc", "order-sign", 200, 0.01)
if sys.argv[1] == "render":
    sys.stdout.write(m.render()[0].decode())
"""


def test_multiprocess_mode_merges_the_workers(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[3]
    run = [sys.executable, "-c", _WORKER]
    subprocess.run([*run, "observe"], env=env, cwd=root, check=True)
    out = subprocess.run(
        [*run, "render"], env=env, cwd=root, check=True, capture_output=True, text=True
    ).stdout
    calls = [
        s
        for family in text_string_to_metric_families(out)
        for s in family.samples
        if s.name == "psychopharm_hook_calls_total"
    ]
    assert [c.value for c in calls] == [2.0]


# The multiprocess directory that `serve` sets up for its workers


def test_serve_gets_a_fresh_metrics_directory_removed_on_exit() -> None:
    environ: dict[str, str] = {}
    with pytest.raises(SystemExit), multiprocess_directory(environ) as path:
        assert environ[MULTIPROC_ENV] == str(path)
        (path / "counter_123.db").write_bytes(b"x")  # what a worker writes
        raise SystemExit(0)  # how gunicorn's master ends
    assert not path.exists()
    assert MULTIPROC_ENV not in environ


def test_an_operators_metrics_directory_is_kept_but_emptied_of_the_last_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "counter_99.db").write_bytes(b"old counts")
    (tmp_path / "README").write_text("not ours")
    environ = {MULTIPROC_ENV: str(tmp_path)}
    with multiprocess_directory(environ) as path:
        assert path == tmp_path
        assert not (tmp_path / "counter_99.db").exists()
    assert (tmp_path / "README").exists()
    assert environ[MULTIPROC_ENV] == str(tmp_path)


_SERVE_WITHOUT_GUNICORN = """
import sys
from cds_service import cli
from cds_service.runtime.gunicorn_app import PsychopharmApplication

def run(self):
    from prometheus_client import values  # what the forked workers would inherit
    sys.stdout.write(values.ValueClass.__name__)

PsychopharmApplication.run = run
sys.exit(cli.main(["serve", "--config", sys.argv[1]]))
"""


def test_serve_sets_the_directory_before_prometheus_client_is_imported(tmp_path: Path) -> None:
    # prometheus_client picks its value store at import; gunicorn workers inherit the master's.
    site = tmp_path / "site.yaml"
    site.write_text(f"storage:\n  url: sqlite:///{tmp_path / 'audit.sqlite3'}\n")
    env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", _SERVE_WITHOUT_GUNICORN, str(site)], capture_output=True,
        text=True, env=env, cwd=Path(__file__).resolve().parents[3], timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "MmapedValue"  # the multiprocess store, not one per process
