"""Garbage-collector settings for a long-lived worker process.

One large hook call allocates tens of thousands of short-lived dicts and lists (the parsed
prefetch). With CPython's defaults that triggers frequent full collections, each of which walks
every object built at start-up (Flask, SQLAlchemy, pydantic, the wording and ingredient tables):
measured in bench/RESULTS.md as ~30 ms pauses, the whole p95/p99 tail of large requests.
Freezing the start-up heap moves it out of the collector's reach, and a larger generation-0
threshold lets a call's garbage die young in fewer, cheaper collections. Reference cycles are
still collected; nothing is switched off.
"""

from __future__ import annotations

import gc

# Generation thresholds: (allocations before a gen-0 pass, gen-0 passes per gen-1, gen-1 per gen-2).
WORKER_GC_THRESHOLDS = (10_000, 50, 1_000)


def tune_for_worker() -> None:
    """Call once per worker after the app is built (gunicorn ``post_worker_init``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*WORKER_GC_THRESHOLDS)
