#!/usr/bin/env bash
# Backtest throughput on Dask over synthetic patients (10,000 unless told). A benchmark, not a
# test: the time depends on the machine and on what else runs on it, so the load average, the
# workers' CPU seconds and their peak memory are printed beside the wall time. It also checks
# the figures against the generator's answer key (manifest.json). Figures: bench/RESULTS.md.
#
#   bash bench/backtest_10k.sh [PATIENTS] [WORKERS] [ndjson|bundles] [PARTITION_MB]
#       defaults: 10000, all cores (a local cluster), ndjson, 64
#   DATA=/path/to/population bash bench/backtest_10k.sh 100000   # reuse a generated population
#   SCHEDULER=tcp://host:8786 bash bench/backtest_10k.sh         # an existing cluster instead
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PATIENTS=${1:-10000}
WORKERS=${2:-$(nproc)}
FORMAT=${3:-ndjson}
PARTITION_MB=${4:-64}
AS_OF=2026-06-15
OUT=$(mktemp -d -t psychopharm-backtest.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

export PYTHONPATH=.
DATA=${DATA:-$OUT/data}
if [ ! -f "$DATA/manifest.json" ]; then
  start=$(date +%s)
  "$PY" -m cds_service.synthetic "$DATA" --patients "$PATIENTS" --seed 1 --as-of "$AS_OF" \
      --format "$FORMAT"
  echo "generated in $(( $(date +%s) - start )) s"
fi
du -sh "$DATA"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${SCHEDULER:-}" ]; then WHERE=(--scheduler "$SCHEDULER"); else WHERE=(--workers "$WORKERS"); fi
"$PY" -m cds_service.backtest "$DATA" --as-of "$AS_OF" --format json "${WHERE[@]}" \
    --partition-mb "$PARTITION_MB" > "$OUT/report.json" 2> "$OUT/stderr.txt"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -v "reading and grouping\|partitions, .* patients/s, ETA" "$OUT/stderr.txt" || true
"$PY" - "$OUT/report.json" "$DATA/manifest.json" <<'PY'
import json
import sys

report = json.load(open(sys.argv[1]))
manifest = json.load(open(sys.argv[2]))
ok = True
for pattern_id, row in report["patterns"].items():
    expected = manifest["expected_flagged"][pattern_id]
    mark = "ok" if row["flagged"] == expected else f"MISMATCH (expected {expected})"
    ok = ok and row["flagged"] == expected
    print(f"  {pattern_id:<28}{row['flagged']:>7} flagged  {row['per_1000']:>6.1f}/1,000  {mark}")
sys.exit(0 if ok and report["patients"] == manifest["patients"] else 1)
PY
