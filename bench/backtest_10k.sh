#!/usr/bin/env bash
# Backtest throughput over 10,000 synthetic patients. A benchmark, not a test: the time depends on
# the machine and on what else runs on it (CPU seconds are printed beside wall time for that
# reason). It also checks the figures against the generator's answer key (manifest.json).
#
#   bash bench/backtest_10k.sh [bundles|ndjson] [WORKERS]      (default: bundles, all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
FORMAT=${1:-bundles}
WORKERS=${2:-$(nproc)}
AS_OF=2026-06-15
OUT=$(mktemp -d -t psychopharm-backtest-10k.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

export PYTHONPATH=.
"$PY" -m cds_service.synthetic.population "$OUT/data" --patients 10000 --seed 1 --as-of "$AS_OF" \
    --format "$FORMAT"
du -sh "$OUT/data"
"$PY" - "$PY" "$OUT" "$AS_OF" "$WORKERS" "$FORMAT" <<'PY'
import json
import resource
import subprocess
import sys
import time

py, out, as_of, workers, fmt = sys.argv[1:6]
command = [py, "-m", "cds_service.backtest.run", f"{out}/data", "--as-of", as_of,
           "--workers", workers, "--quiet", "--format", "json"]
start = time.monotonic()
report = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
seconds = time.monotonic() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
manifest = json.load(open(f"{out}/data/manifest.json"))
n = report["patients"]
print(f"{n:,} patients ({fmt}) with {workers} workers: {seconds:.1f} s wall, "
      f"{usage.ru_utime + usage.ru_stime:.1f} s CPU, {n / seconds:,.0f} patients/s, "
      f"largest process {usage.ru_maxrss / 1024:,.0f} MB")
for pattern_id, row in report["patterns"].items():
    expected = manifest["expected_flagged"][pattern_id]
    mark = "ok" if row["flagged"] == expected else f"MISMATCH (expected {expected})"
    print(f"  {pattern_id:<28}{row['flagged']:>6} flagged  {row['per_1000']:>6.1f}/1,000  {mark}")
PY
