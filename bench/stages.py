"""Where the service's own time goes in one in-process call, stage by stage.

The stages are those of ``cds_service.pipeline.run_hook``, in order:

- ``parse``: ``orjson.loads`` of the body and the request's checks (``InProcess.parse``);
- ``gather``: the prefetch values checked and unpacked (``gather_data``);
- ``map``: the record and the draft orders mapped (``pipeline._map``: ``map_record``,
  ``map_draft_orders``);
- ``assess``: the six detectors (``assess``);
- ``respond``: the rest of the call (policy, the override and de-duplication look-ups, cards,
  the audit rows queued, the log line).

Beside them, not part of the call, ``unchecked``: ``bench.floor.read_unchecked`` of the same
parsed request with the service's own horizons, timed after the call (on objects the call has
just read: if anything, less than a cold reading), the yardstick the mapping stage is compared
with.

``report.bound_ratio`` turns the split into the HTTP ratio the service would have if a stage
cost nothing: how much of the gap to the bare endpoint each stage can close at most. The
stages are timed by wrapping the pipeline's own functions for the length of the measurement
(the wrappers cost well under a microsecond a call), so the code measured is the code served.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bench.floor import read_unchecked
from bench.inprocess import InProcess
from bench.measure import percentile
from cds_service import pipeline
from cds_service.patterns.engine import evidence_horizon, visit_horizon
from cds_service.patterns.order_reach import order_horizon

STAGES = ("parse", "gather", "map", "assess", "respond")
# The pipeline's functions, by the stage each one is.
_TIMED = {"gather_data": "gather", "_map": "map", "assess": "assess"}


@contextlib.contextmanager
def _timed_pipeline(sink: dict[str, float]) -> Iterator[None]:
    """The pipeline with each function of ``_TIMED`` adding its seconds to ``sink[stage]``;
    the originals are back when the block ends, however it ends."""
    originals: dict[str, Callable[..., Any]] = {name: getattr(pipeline, name) for name in _TIMED}

    def timed(fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                sink[stage] += time.perf_counter() - started
        return call

    for name, fn in originals.items():
        setattr(pipeline, name, timed(fn, _TIMED[name]))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(pipeline, name, fn)


def split(app: InProcess, service_id: str, bodies: Sequence[bytes], count: int,
          time_cap_s: float) -> dict[str, float]:
    """p50 milliseconds of each stage (``STAGES``), of the whole call (``total``) and of the
    unchecked reading beside it (``unchecked``) over up to ``count`` calls with ``bodies`` in
    turn (one at least; stops after ``time_cap_s`` seconds). Each p50 is taken on its own, so
    the stages' need not add up to the total's."""
    services = app.services
    patterns, today = services.settings.patterns, services.date_of(services.clock())
    orders_from = order_horizon(patterns, today).cutoff.isoformat()
    horizons = {"MedicationRequest": orders_from, "MedicationDispense": orders_from,
                "Observation": evidence_horizon(patterns, today).isoformat(),
                "Encounter": visit_horizon(patterns, today).isoformat()}
    samples: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total", "unchecked")}
    sink: dict[str, float] = {}
    stop_at = time.monotonic() + time_cap_s
    with _timed_pipeline(sink):
        for i in range(count):
            if samples["total"] and time.monotonic() > stop_at:
                break
            sink.update({stage: 0.0 for stage in _TIMED.values()})
            body = bodies[i % len(bodies)]
            started = time.perf_counter()
            req = app.parse(service_id, body)
            parsed = time.perf_counter()
            app.answer(service_id, req)
            total = time.perf_counter() - started
            floor_started = time.perf_counter()
            read_unchecked(req.prefetch or {}, services.table, horizons)
            samples["unchecked"].append(time.perf_counter() - floor_started)
            samples["parse"].append(parsed - started)
            for stage in _TIMED.values():
                samples[stage].append(sink[stage])
            samples["respond"].append(total - (parsed - started) - sum(sink.values()))
            samples["total"].append(total)
    return {stage: percentile(values, 50) * 1000 for stage, values in samples.items()}

