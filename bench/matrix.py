"""The benchmark matrix: every record shape (``bench.shapes``) at several sizes, in process and over
HTTP, each against its baseline measured side by side, plus the cost per resource and a profile.

- in process: the service's handling (``InProcess.handle``: read the body, validate, gather, map,
  evaluate, policy, cards, audit enqueue) against ``orjson.loads`` of the same bodies, call by
  call (each handling paired with a parse of the same body, in turn first and second);
- over HTTP: the service against the bare Flask + gunicorn endpoint that only ``orjson.loads`` the
  body (same worker class, threads and GC settings), request by request
  (``measure.interleaved``);
- cost per resource: in-process p50 / resources for the curve sizes, per shape;
- stages: where the service's own time goes in process (``bench.stages``), for the cells measured
  over HTTP too, and the HTTP ratio each stage could at most close;
- profile: cProfile over repeated in-process calls of one shape and size, top functions.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from bench import inprocess, measure, stages
from bench.shapes import SHAPES, shape_bundle
from bench.workload import SERVICE_IDS, hook_body

N_VARIANTS = 20


@dataclass(frozen=True)
class Request:
    """One shape at one size for one hook, under ``N_VARIANTS`` patient ids."""

    shape: str
    n_resources: int
    hook: str
    variants: tuple[bytes, ...]

    @property
    def path(self) -> str:
        return f"/cds-services/{SERVICE_IDS[self.hook]}"

    @property
    def service_id(self) -> str:
        return SERVICE_IDS[self.hook]


def build_request(shape: str, n: int, hook: str, as_of: date) -> Request:
    bundle = shape_bundle(shape, n, as_of=as_of, seed=n)
    body = orjson.dumps(hook_body(bundle, hook, hook_instance=f"bench-{shape}-{n}"))
    pid = bundle["entry"][0]["resource"]["id"].encode()
    # Other patients' calls with the same record: the audit rows and override lookups are per
    # patient. The ids ("bench-<shape>-<seed>") occur nowhere else in the body.
    variants = tuple(body.replace(pid, pid + b"-v%02d" % v) for v in range(N_VARIANTS))
    return Request(shape, n, hook, variants)


def calls_for(n: int, budget: int) -> int:
    """Calls per measurement: about ``budget`` resources handled, between 30 and 400 calls."""
    return max(30, min(400, budget // n))


def in_process_row(app: inprocess.InProcess, req: Request, count: int,
                   time_cap_s: float) -> dict[str, Any]:
    """The service's handling against ``orjson.loads`` of the same bodies, call by call
    (``inprocess.paired``), by the wall clock and the CPU clock, and the ratio of the fastest
    calls."""
    cards = len(app.handle(req.service_id, req.variants[0])["cards"])  # also the warm-up
    wall, cpu = inprocess.paired(app, req.service_id, req.variants, count, time_cap_s)
    p50 = {k: measure.percentile(v, 50) for k, v in wall.items()}
    cpu50 = {k: measure.percentile(v, 50) for k, v in cpu.items()}
    return {"shape": req.shape, "resources": req.n_resources, "hook": req.hook, "cards": cards,
            "bytes": len(req.variants[0]), "handle": measure.summary_ms(wall["handle"]),
            "orjson_loads_p50_ms": p50["loads"] * 1000, "ratio_p50": p50["handle"] / p50["loads"],
            "handle_cpu_p50_ms": cpu50["handle"] * 1000, "loads_cpu_p50_ms": cpu50["loads"] * 1000,
            "ratio_cpu_p50": cpu50["handle"] / cpu50["loads"],
            # The fastest call of each: the nearest a busy machine comes to an idle one.
            "ratio_cpu_min": min(cpu["handle"]) / min(cpu["loads"])}


def http_row(ours: measure.Client, base: measure.Client, req: Request, count: int,
             time_cap_s: float) -> dict[str, Any]:
    s, b = measure.interleaved(ours, base, req.path, req.variants, count, time_cap_s)
    s_sum, b_sum = measure.summary_ms(s), measure.summary_ms(b)
    return {"shape": req.shape, "resources": req.n_resources, "hook": req.hook,
            "bytes": len(req.variants[0]), "service": s_sum, "bare": b_sum,
            "ratio_p50": s_sum["p50_ms"] / b_sum["p50_ms"]}


def curve(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """µs per resource by shape and size, from in-process rows, with the step from the
    smallest curve size (1.0 = flat): of the service (wall, CPU), of ``orjson.loads`` of the
    same bodies, and of the service in parses (its step divided by the parse's: the growth of
    its own code, the memory hierarchy's slowdown of larger bodies divided out)."""
    out = []
    for shape in SHAPES:
        mine = sorted((r for r in rows if r["shape"] == shape), key=lambda r: r["resources"])
        if not mine:
            continue
        first = mine[0]["handle"]["p50_ms"] * 1000 / mine[0]["resources"]
        first_cpu = mine[0]["handle_cpu_p50_ms"] * 1000 / mine[0]["resources"]
        first_loads = mine[0]["orjson_loads_p50_ms"] * 1000 / mine[0]["resources"]
        for r in mine:
            per = r["handle"]["p50_ms"] * 1000 / r["resources"]
            per_cpu = r["handle_cpu_p50_ms"] * 1000 / r["resources"]
            loads = r["orjson_loads_p50_ms"] * 1000 / r["resources"]
            out.append({"shape": shape, "resources": r["resources"], "us_per_resource": per,
                        "cpu_us_per_resource": per_cpu, "loads_us_per_resource": loads,
                        "vs_first": per / first, "cpu_vs_first": per_cpu / first_cpu,
                        "loads_vs_first": loads / first_loads,
                        "parses_vs_first": (per / first) / (loads / first_loads)})
    return out


def profile(app: inprocess.InProcess, req: Request, calls: int, top: int = 25) -> str:
    """cProfile of ``calls`` in-process calls: the top functions by own time, and by
    cumulative time, as text."""
    app.handle(req.service_id, req.variants[0])
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(calls):
        app.handle(req.service_id, req.variants[i % len(req.variants)])
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


@dataclass(frozen=True)
class MatrixCounts:
    """How much work each measurement gets: ``budget`` resources handled per cell (see
    ``calls_for``), and HTTP calls at half that."""

    budget: int = 400_000
    profile_calls: int = 5


QUICK_MATRIX = MatrixCounts(budget=2_000, profile_calls=2)


def run_matrix(
    *,
    as_of: date,
    shapes: Sequence[str],
    sizes: Sequence[int],
    curve_sizes: Sequence[int],
    hook: str,
    counts: MatrixCounts,
    http: bool,
    profile_cells: Sequence[tuple[str, int]],
    app: inprocess.InProcess,
    http_clients: tuple[measure.Client, measure.Client] | None,
    cap: Any,
) -> dict[str, Any]:
    """Every (shape, size) cell in process (and over HTTP when ``http_clients`` are given); the
    stage split of the ``sizes`` cells; the curve sizes in process only; cProfile text for
    ``profile_cells``."""
    out: dict[str, Any] = {"matrix_in_process": [], "matrix_http": [], "stages": [],
                           "profiles": {}}
    cells = sorted({(s, n) for s in shapes for n in (*sizes, *curve_sizes)},
                   key=lambda c: (list(SHAPES).index(c[0]), c[1]))
    n_cells = max(1, len(cells))
    for shape, n in cells:
        req = build_request(shape, n, hook, as_of)
        calls = calls_for(n, counts.budget)
        out["matrix_in_process"].append(
            in_process_row(app, req, calls, cap(0.45 / n_cells)))
        if n in sizes:
            split = stages.split(app, req.service_id, req.variants, max(10, calls // 4),
                                 cap(0.05 / n_cells))
            out["stages"].append({"shape": shape, "resources": n, "p50_ms": split})
        if http and http_clients is not None and n in sizes:
            ours, base = http_clients
            for port in (ours.port, base.port):  # both workers of both servers see it once
                for _ in range(2):
                    warm = measure.Client(port)
                    warm.post(req.path, req.variants[0])
                    warm.close()
            out["matrix_http"].append(
                http_row(ours, base, req, max(20, calls // 2), cap(0.4 / n_cells)))
    out["curve"] = curve([r for r in out["matrix_in_process"]
                          if r["resources"] in set(curve_sizes)])
    for shape, n in profile_cells:
        req = build_request(shape, n, hook, as_of)
        out["profiles"][f"{shape}@{n}"] = profile(app, req, counts.profile_calls)
    return out
