"""The latency benchmark: see bench/README.md.

    .venv/bin/python -m bench.bench [--quick] [--json FILE] [--time-cap SECONDS] [--no-http]
    .venv/bin/python -m bench.bench --matrix [--shapes ...] [--matrix-sizes ...] [--profile ...]

Starts, on 127.0.0.1 only and with a temporary SQLite audit store, ``psychopharm-cds serve
--workers 2``, the bare-parse baseline (bench/bare_app.py, same gunicorn setup) and a loopback
FHIR server; measures; stops them; prints Markdown (and writes JSON with ``--json``).
Every phase has a fixed count and a time cap, so a slow machine makes the run shorter, not longer.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from bench import inprocess, matrix, measure
from bench.fhir_server import BASE_PATH
from bench.report import render, render_matrix
from bench.servers import Server, bare_command, free_port, memory_kib, service_command
from bench.shapes import CURVE_SIZES, MATRIX_SIZES, SHAPES
from bench.workload import SERVICE_IDS, SIZES, build_workloads


@dataclass(frozen=True)
class Counts:
    """Calls per measurement; ``quick`` is for the smoke test and a first look."""

    http: dict[str, int]  # per size and hook, to each of service and bare
    fallback: int
    in_process: dict[str, int]
    throughput_total: int  # calls per concurrency level, split over the threads
    concurrency: tuple[int, ...]
    scaling_sizes: tuple[int, ...]
    scaling_budget: int  # resources handled per size: reps = budget // size (5..200)
    growth_calls: int
    growth_window: int


FULL = Counts(
    http={"small": 600, "typical": 1000, "large": 300},
    fallback=100,
    in_process={"small": 600, "typical": 600, "large": 300},
    throughput_total=1600,
    concurrency=(1, 4, 16),
    scaling_sizes=inprocess.SCALING_SIZES,
    scaling_budget=100_000,
    growth_calls=4000,
    growth_window=1000,
)
QUICK = Counts(
    http={"small": 10, "typical": 5, "large": 3},
    fallback=3,
    in_process={"small": 10, "typical": 5, "large": 3},
    throughput_total=16,
    concurrency=(1, 4),
    scaling_sizes=(50, 250),
    scaling_budget=500,
    growth_calls=40,
    growth_window=10,
)


def environment(mode: str) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "load_start": _load(),
        "mode": mode,
    }


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# The matrix's largest records (10,000 resources) are ~13 MB: above the default 5 MB limit.
MAX_BODY_BYTES = 64 * 1024 * 1024


def write_config(tmp: Path, fhir_base: str, name: str = "service") -> Path:
    """A site file: a fresh SQLite audit store of its own, the loopback FHIR server allowed, and
    a body limit the largest benchmark records fit under."""
    config = tmp / f"bench-{name}.yaml"
    config.write_text(yaml.safe_dump({
        "storage": {"url": f"sqlite:///{tmp / f'audit-{name}.sqlite3'}"},
        "fhir": {"allowed_servers": [fhir_base]},
        "service": {"max_body_bytes": MAX_BODY_BYTES},
    }))
    return config


def run(counts: Counts, *, mode: str, time_cap_s: float, http: bool, tmp: Path,
        sizes: tuple[str, ...] = tuple(SIZES)) -> dict[str, Any]:
    results: dict[str, Any] = {"environment": environment(mode), "phase_seconds": {}}
    deadline = time.monotonic() + time_cap_s
    phases = Phases(results["phase_seconds"])

    def cap(share: float) -> float:
        """A phase's time cap: ``share`` of the total, never past the overall deadline."""
        return max(0.5, min(time_cap_s * share, deadline - time.monotonic()))

    as_of = date.today()  # the service dates "now" by the wall clock; the data must match it
    fhir_port = free_port()
    fhir_base = f"http://127.0.0.1:{fhir_port}{BASE_PATH}"
    workloads = build_workloads(
        as_of, fhir_server=fhir_base, sizes={name: SIZES[name] for name in sizes})
    config = write_config(tmp, fhir_base)
    in_process_config = write_config(tmp, fhir_base, "in-process")

    with (tmp / "inprocess.log").open("w") as log_stream:
        phases("build requests")
        app = inprocess.InProcess(in_process_config, log_stream)
        phases("start in-process app")
        try:
            results["in_process"] = []
            for w in workloads:
                sid = SERVICE_IDS[w.hook]
                n = counts.in_process[w.size]
                # Cards returned: the requests must exercise the card path, not only mapping.
                cards = len(app.handle(sid, w.body)["cards"])
                row = {"size": w.size, "hook": w.hook, "resources": w.n_resources, "cards": cards,
                       **inprocess.parse_ratio(app, sid, w.variants, n, cap(0.04))}
                bodies = itertools.cycle(w.variants)
                client_samples = inprocess.timed(
                    lambda w=w, bodies=bodies: app.post(w.path, next(bodies)),
                    max(3, n // 4), cap(0.01))
                row["test_client"] = measure.summary_ms(client_samples)
                results["in_process"].append(row)
            phases("in-process latency")
            results["scaling"] = inprocess.scaling(
                app, as_of, counts.scaling_sizes, counts.scaling_budget, cap(0.03))
            phases("scaling")
            results["growth"] = inprocess.growth(
                app, as_of, counts.growth_calls, counts.growth_window, 20, cap(0.15))
            phases("growth")
        finally:
            app.close()

    if http:
        results.update(run_http(counts, workloads, tmp, config, fhir_port, cap, phases))
    results["environment"]["load_end"] = _load()
    return results


class Phases:
    """Wall time of each phase since the previous one, for the report (where the time went)."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into
        self.last = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.into[name] = round(now - self.last, 2)
        self.last = now


def run_http(counts: Counts, workloads: list[Any], tmp: Path, config: Path, fhir_port: int,
             cap: Any, phases: Phases) -> dict[str, Any]:
    out: dict[str, Any] = {}
    data = tmp / "fhir-data.json"
    data.write_bytes(orjson.dumps([w.bundle for w in workloads if w.hook == "patient-view"]))
    fhir = Server("fhir", [sys.executable, "-m", "bench.fhir_server", "--port", str(fhir_port),
                           "--data", str(data)], fhir_port,
                  f"{BASE_PATH}/Patient/{workloads[0].bundle['entry'][0]['resource']['id']}",
                  tmp / "fhir.log")
    service_port, bare_port = free_port(), free_port()
    service = Server("service", service_command(service_port, config), service_port,
                     "/cds-services", tmp / "service.log")
    bare = Server("bare", bare_command(bare_port), bare_port, "/healthz", tmp / "bare.log")
    servers = (fhir, service, bare)
    with contextlib.ExitStack() as stack:
        for server in servers:  # launched together: each takes seconds to import and fork
            stack.callback(server.stop)
            server.launch()
        for server in servers:
            server.wait_ready()
        phases("start servers")
        ours, base = measure.Client(service_port), measure.Client(bare_port)
        try:
            for w in workloads:  # fresh connections reach both workers of both servers
                for _ in range(4):
                    for port in (service_port, bare_port):
                        warm = measure.Client(port)
                        warm.post(w.path, w.body)
                        warm.close()
            phases("warm-up")
            out["http"] = []
            for w in workloads:
                s, b = measure.interleaved(ours, base, w.path, w.variants, counts.http[w.size],
                                           cap(0.05))
                s_sum, b_sum = measure.summary_ms(s), measure.summary_ms(b)
                out["http"].append({
                    "size": w.size, "hook": w.hook, "resources": w.n_resources,
                    "bytes": len(w.body), "service": s_sum, "bare": b_sum,
                    "ratio_p50": s_sum["p50_ms"] / b_sum["p50_ms"],
                })
            phases("http latency")
            out["fallback"] = []
            for w in workloads:
                samples = measure.sequential(ours, w.path, w.fallback_body, counts.fallback,
                                             cap(0.03))
                out["fallback"].append({"size": w.size, "hook": w.hook,
                                        "service": measure.summary_ms(samples)})
            phases("fallback")
            typical = next((w for w in workloads if w.size == "typical"), workloads[0])
            out["throughput_workload"] = f"{typical.size} {typical.hook}"
            out["throughput"] = []
            for c in counts.concurrency:
                t = measure.throughput(service_port, typical.path, typical.variants, c,
                                       max(1, counts.throughput_total // c), cap(0.04))
                out["throughput"].append({**asdict(t), "per_second": t.per_second})
            phases("throughput")
        finally:
            ours.close()
            base.close()
        out["memory"] = [
            {"server": server.name, "pid": pid, **{"VmHWM": 0, "VmRSS": 0}, **memory_kib(pid)}
            for server in (service, bare)
            for pid in server.worker_pids()
        ]
        for server in servers:
            server.terminate()
    phases("stop servers")
    return out


def run_matrix_mode(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """``--matrix``: every record shape at every size, in process and over HTTP."""
    results: dict[str, Any] = {"environment": environment("matrix"), "phase_seconds": {}}
    phases = Phases(results["phase_seconds"])
    time_cap_s = args.time_cap or (90.0 if args.quick else 1500.0)
    deadline = time.monotonic() + time_cap_s

    def cap(share: float) -> float:
        return max(0.5, min(time_cap_s * share, deadline - time.monotonic()))

    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = sorted(set(shapes) - set(SHAPES))
    if unknown:
        raise SystemExit(f"unknown shape(s) {unknown}; choose from {', '.join(SHAPES)}")
    sizes = [int(n) for n in args.matrix_sizes.split(",") if n.strip()]
    curve_sizes = [int(n) for n in args.curve_sizes.split(",") if n.strip()]
    profile_cells = []
    for cell in filter(None, (c.strip() for c in (args.profile or "").split(","))):
        shape, _, n = cell.partition("@")
        profile_cells.append((shape, int(n or 1000)))
    counts = matrix.QUICK_MATRIX if args.quick else matrix.MatrixCounts()
    fhir_base = f"http://127.0.0.1:{free_port()}{BASE_PATH}"
    with contextlib.ExitStack() as stack, (tmp / "inprocess.log").open("w") as log_stream:
        app = inprocess.InProcess(write_config(tmp, fhir_base, "in-process"), log_stream)
        stack.callback(app.close)
        clients = None
        if not args.no_http:
            service_port, bare_port = free_port(), free_port()
            service = Server("service", service_command(service_port, write_config(
                tmp, fhir_base)), service_port, "/cds-services", tmp / "service.log")
            bare = Server("bare", bare_command(bare_port), bare_port, "/healthz",
                          tmp / "bare.log")
            for server in (service, bare):
                stack.callback(server.stop)
                server.launch()
            for server in (service, bare):
                server.wait_ready()
            clients = (measure.Client(service_port), measure.Client(bare_port))
            for client in clients:
                stack.callback(client.close)
        phases("start")
        results.update(matrix.run_matrix(
            as_of=date.today(), shapes=shapes, sizes=sizes, curve_sizes=curve_sizes,
            hook=args.hook, counts=counts, http=not args.no_http,
            profile_cells=profile_cells, app=app, http_clients=clients, cap=cap))
        phases("matrix")
    results["environment"]["load_end"] = _load()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few calls each (smoke test)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--time-cap", type=float, default=None, metavar="SECONDS",
                        help="overall time cap (default 480, quick 60)")
    parser.add_argument("--no-http", action="store_true", help="in-process measurements only")
    parser.add_argument("--sizes", default=",".join(SIZES),
                        help=f"comma-separated subset of {', '.join(SIZES)}")
    parser.add_argument("--matrix", action="store_true",
                        help="the record-shape matrix instead of the size series (see README)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="matrix: shapes to run")
    parser.add_argument("--matrix-sizes", default=",".join(map(str, MATRIX_SIZES)),
                        help="matrix: resource counts measured in process and over HTTP")
    parser.add_argument("--curve-sizes", default=",".join(map(str, CURVE_SIZES)),
                        help="matrix: resource counts for the cost-per-resource curve "
                             "(in process)")
    parser.add_argument("--hook", default="patient-view", choices=sorted(SERVICE_IDS),
                        help="matrix: the hook called")
    parser.add_argument("--profile", metavar="SHAPE@N,...",
                        help="matrix: cProfile these cells (e.g. psych-meds@5000)")
    args = parser.parse_args(argv)
    if args.matrix:
        with tempfile.TemporaryDirectory(prefix="psychopharm-bench-") as tmp:
            results = run_matrix_mode(args, Path(tmp))
        print(render_matrix(results))
        if args.json:
            Path(args.json).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
        return 0
    sizes = tuple(s.strip() for s in args.sizes.split(",") if s.strip())
    unknown = sorted(set(sizes) - set(SIZES))
    if unknown or not sizes:
        parser.error(f"unknown size(s) {unknown}; choose from {', '.join(SIZES)}")
    counts = QUICK if args.quick else FULL
    time_cap = args.time_cap or (60.0 if args.quick else 480.0)
    with tempfile.TemporaryDirectory(prefix="psychopharm-bench-") as tmp:
        results = run(counts, mode="quick" if args.quick else "full", time_cap_s=time_cap,
                      http=not args.no_http, tmp=Path(tmp), sizes=sizes)
    print(render(results))
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["FULL", "QUICK", "SIZES", "main", "run"]
