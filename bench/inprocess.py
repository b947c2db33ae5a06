"""In-process measurements: the service's handling of one body without HTTP (parse, validate,
gather, map, evaluate, policy, cards, audit enqueue), its ratio to ``orjson.loads`` of the same
body, the cost curve over record size, and whether latency grows over thousands of calls."""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import IO, Any

import orjson

from bench.measure import percentile, summary_ms
from bench.servers import memory_kib
from bench.workload import SERVICE_IDS, hook_body, patient_bundle, patient_panel
from cds_service.gather.hook_request import parse_hook_request, parse_json_object
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
        definition = self.services.definitions[service_id]
        req = parse_hook_request(parse_json_object(body), service_id, definition.hook)
        with request_log_context(req.hook_instance):
            return run_hook(self.services, req, definition)

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


def parse_ratio(app: InProcess, service_id: str, bodies: Sequence[bytes], count: int,
                time_cap_s: float) -> dict[str, Any]:
    """p50 of the service's handling / p50 of ``orjson.loads`` of the same bodies (taken in
    turn), measured alternately in blocks so that both see the same machine load."""
    handle: list[float] = []
    loads: list[float] = []
    to_handle, to_load = itertools.cycle(bodies), itertools.cycle(bodies)
    rounds = min(10, count)
    block = max(1, count // rounds)
    for _ in range(rounds):
        handle += timed(lambda: app.handle(service_id, next(to_handle)), block,
                        time_cap_s / (2 * rounds))
        loads += timed(lambda: orjson.loads(next(to_load)), block, time_cap_s / (2 * rounds))
    h50, l50 = percentile(handle, 50), percentile(loads, 50)
    return {
        "bytes": len(bodies[0]),
        "handle": summary_ms(handle),
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
