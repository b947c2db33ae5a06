"""In-process measurements: the service's handling of one body without HTTP (parse, validate,
gather, map, evaluate, policy, cards, audit enqueue), its ratio to ``orjson.loads`` of the same
body, the cost curve over record size, and whether latency grows over thousands of calls."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from bench.measure import percentile, summary_ms
from bench.servers import memory_kib
from bench.workload import SERVICE_IDS, hook_body, patient_bundle, patient_panel
from cds_service.gather.hook_request import HookRequest, parse_hook_request, parse_json_object
from cds_service.pipeline import run_hook
from cds_service.runtime.gc_tuning import tune_for_worker
from cds_service.runtime.logging_setup import configure_logging, request_log_context
from cds_service.settings import load_settings
from cds_service.web.app import create_app

SCALING_SIZES: tuple[int, ...] = (50, 100, 250, 500, 1000, 2500, 5000)


class InProcess:
    """The real app (create_app with the benchmark's site file), called without a socket."""

    def __init__(self, config: Path, log_stream: IO[str]) -> None:
        # The service logs one line per call; keep that cost, but out of the benchmark's output.
        with contextlib.redirect_stderr(log_stream):
            self.app = create_app(load_settings(str(config)))
        configure_logging("INFO", stream=log_stream)
        self.services = self.app.extensions["psychopharm"]
        self.client = self.app.test_client()
        # What every gunicorn worker does after loading the app (post_worker_init).
        tune_for_worker()

    def handle(self, service_id: str, body: bytes) -> dict[str, Any]:
        """What ``hooks.call_service`` does after auth, minus Flask: the service's own work."""
        return self.answer(service_id, self.parse(service_id, body))

    def parse(self, service_id: str, body: bytes) -> HookRequest:
        """The first step of ``handle``: the body parsed and checked as a hook request."""
        definition = self.services.definitions[service_id]
        return parse_hook_request(parse_json_object(body), service_id, definition.hook)

    def answer(self, service_id: str, req: HookRequest) -> dict[str, Any]:
        """The rest of ``handle``: the response to a parsed request."""
        with request_log_context(req.hook_instance):
            return run_hook(self.services, req, self.services.definitions[service_id])

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        response = self.client.post(path, data=body, content_type="application/json")
        return response.status_code, response.get_data()

    def close(self) -> None:
        self.services.close()


def timed(fn: Callable[[], object], count: int, time_cap_s: float) -> list[float]:
    samples: list[float] = []
    stop_at = time.monotonic() + time_cap_s
    for _ in range(count):
        if samples and time.monotonic() > stop_at:
            break
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


class Paired(NamedTuple):
    """Seconds per call of each side, by the wall clock and the calling thread's CPU clock."""

    wall: dict[str, list[float]]  # "handle", "loads"
    cpu: dict[str, list[float]]


def paired(app: InProcess, service_id: str, bodies: Sequence[bytes], count: int,
           time_cap_s: float) -> Paired:
    """Up to ``count`` handlings of ``bodies`` (in turn), each paired with an ``orjson.loads``
    of the same body, in turn first and second, so that both sides of a ratio see the machine
    in the same state (a shared machine's speed drifts over seconds, longer than a pair takes).
    Each call is timed by the wall clock and by the calling thread's CPU clock (on a busy
    machine the CPU clock leaves out the time spent waiting for a core, though not the slowdown
    of sharing caches and cores). Stops after ``time_cap_s`` seconds, one pair at least."""
    wall: dict[str, list[float]] = {"handle": [], "loads": []}
    cpu: dict[str, list[float]] = {"handle": [], "loads": []}
    calls = {"handle": lambda body: app.handle(service_id, body), "loads": orjson.loads}
    in_turn = (list(calls.items()), list(reversed(calls.items())))
    stop_at = time.monotonic() + time_cap_s
    for i in range(count):
        if wall["handle"] and time.monotonic() > stop_at:
            break
        body = bodies[i % len(bodies)]
        for name, call in in_turn[i % 2]:
            started, started_cpu = time.perf_counter(), time.thread_time()
            call(body)
            cpu[name].append(time.thread_time() - started_cpu)
            wall[name].append(time.perf_counter() - started)
    return Paired(wall, cpu)


def parse_ratio(app: InProcess, service_id: str, bodies: Sequence[bytes], count: int,
                time_cap_s: float) -> dict[str, Any]:
    """p50 of the service's handling / p50 of ``orjson.loads`` of the same bodies, measured
    call by call (``paired``)."""
    wall = paired(app, service_id, bodies, count, time_cap_s).wall
    h50, l50 = percentile(wall["handle"], 50), percentile(wall["loads"], 50)
    return {
        "bytes": len(bodies[0]),
        "handle": summary_ms(wall["handle"]),
        "orjson_loads_p50_ms": l50 * 1000,
        "ratio_p50": h50 / l50,
    }


def scaling(app: InProcess, as_of: date, sizes: Sequence[int], budget_per_size: int,
            time_cap_s: float) -> list[dict[str, float]]:
    """Handling time by record size (patient-view, full prefetch), with orjson.loads beside it."""
    rows = []
    service_id = SERVICE_IDS["patient-view"]
    for n in sizes:
        body = orjson.dumps(hook_body(patient_bundle(n, as_of=as_of, seed=50 + n), "patient-view"))
        reps = max(5, min(200, budget_per_size // n))
        app.handle(service_id, body)  # warm-up
        handle = timed(lambda body=body: app.handle(service_id, body), reps, time_cap_s)
        loads = timed(lambda body=body: orjson.loads(body), reps, time_cap_s)
        h50, l50 = percentile(handle, 50), percentile(loads, 50)
        rows.append({
            "resources": n,
            "bytes": len(body),
            "handle_p50_ms": h50 * 1000,
            "loads_p50_ms": l50 * 1000,
            "us_per_resource": h50 * 1e6 / n,
            "ratio_p50": h50 / l50,
        })
    return rows


def growth(app: InProcess, as_of: date, calls: int, window: int, n_patients: int,
           time_cap_s: float) -> dict[str, Any]:
    """Typical-size calls over a panel of patients: first vs last ``window`` calls, and memory."""
    service_id = SERVICE_IDS["patient-view"]
    bodies = [orjson.dumps(hook_body(b, "patient-view"))
              for b in patient_panel(n_patients, 150, as_of)]
    gc.collect()
    rss_before = memory_kib_self()
    samples: list[float] = []
    stop_at = time.monotonic() + time_cap_s
    for i in range(calls):
        if time.monotonic() > stop_at:
            break
        body = bodies[i % len(bodies)]
        started = time.perf_counter()
        app.handle(service_id, body)
        samples.append(time.perf_counter() - started)
    gc.collect()
    rss_after = memory_kib_self()
    window = min(window, len(samples) // 2)
    return {
        "calls": len(samples),
        "window": window,
        "first": summary_ms(samples[:window]),
        "last": summary_ms(samples[-window:]),
        "rss_kib_before": rss_before,
        "rss_kib_after": rss_after,
    }


def memory_kib_self() -> int:
    return memory_kib(os.getpid()).get("VmRSS", 0)
