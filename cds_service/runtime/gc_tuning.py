"""Garbage-collector settings for a long-lived worker process.

One large hook call allocates a few hundred thousand short-lived dicts and lists (the parsed
prefetch: ~210,000 tracked objects for a 10,000-resource record, measured in bench/RESULTS.md)
and frees them by reference counting when it ends; almost none of them form cycles. With
CPython's default threshold (700) such a call triggers hundreds of young collections, and each
one traverses the call's live objects only to find nothing to free; the occasional full
collection also walks everything built at start-up (Flask, SQLAlchemy, pydantic, the wording and
ingredient tables).

So, once per worker after the app is built: the start-up heap is frozen (moved out of the
collector's reach), and the young generation's threshold is set above what one call keeps alive,
so that a call's objects are freed by reference counting before any collection looks at them.
The young count is allocations minus deallocations, so it returns to near zero after each call:
collections still run, every few thousand calls, and reference cycles are still collected.
"""

from __future__ import annotations

import gc

# (net allocations before a young collection, young collections per middle, middle per old).
# 500,000 is above the tracked objects of the largest record the benchmark sends (10,000
# resources) with room to spare; cyclic garbage, the only thing that waits longer for it, is
# ~0.1 object per call here.
WORKER_GC_THRESHOLDS = (500_000, 10, 10)


def tune_for_worker() -> None:
    """Call once per worker after the app is built (gunicorn ``post_worker_init``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*WORKER_GC_THRESHOLDS)
