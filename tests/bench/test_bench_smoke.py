"""The benchmark runs end to end (quick mode, small requests): it starts the service, the bare
baseline and the loopback FHIR server, measures every section, stops them and reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench", "--quick", "--sizes", "small", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = orjson.loads(out.read_bytes())
    assert {"in_process", "http", "fallback", "throughput", "memory", "scaling", "growth"} <= set(
        results
    )
    assert {(r["size"], r["hook"]) for r in results["http"]} == {
        ("small", "patient-view"), ("small", "order-sign")
    }
    # The requests exercise the whole service: cards are built, not only records mapped.
    assert all(row["cards"] >= 1 for row in results["in_process"])
    assert all(row["service"]["n"] >= 1 for row in results["fallback"])
    assert {row["server"] for row in results["memory"]} == {"service", "bare"}
    assert all(row["VmHWM"] > 0 for row in results["memory"])
    assert "| target | measured |" in done.stdout
