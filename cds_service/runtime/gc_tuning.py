"""Garbage-collector settings for a long-lived worker process.

One large hook call allocates tens of thousands of short-lived dicts and lists (the parsed
prefetch). With CPython's defaults that triggers frequent full collections, each of which walks
every object built at start-up (Flask, SQLAlchemy, pydantic, the wording and ingredient tables):
those pauses were the whole p95/p99 tail of large requests (measured in bench/RESULTS.md).
Freezing the start-up heap moves it out of the collector's reach, and a larger generation-0
threshold lets a call's garbage die young in fewer, cheaper collections. Reference cycles are
still collected; nothing is switched off.

During a hook call automatic collection waits (``CollectionPause``): the call's garbage is freed
by reference counting, and the collection it would have triggered runs after the response.
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Generation thresholds: (allocations before a gen-0 pass, gen-0 passes per gen-1, gen-1 per gen-2).
WORKER_GC_THRESHOLDS = (10_000, 50, 1_000)


def tune_for_worker() -> None:
    """Call once per worker after the app is built (gunicorn ``post_worker_init``).

    Collects, freezes the surviving heap and sets ``WORKER_GC_THRESHOLDS``; process-wide.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*WORKER_GC_THRESHOLDS)


class CollectionPause:
    """Automatic collection held off while hook calls are in flight, caught up after them.

    The parsed request and everything mapped from it are trees that die by reference counting
    when the call ends; a collection in the middle of a call can only traverse them and find
    nothing to free (a measurable part of a large call, see bench/RESULTS.md). Automatic collection
    resumes once no call is in flight, after the response has been sent. A busy worker whose
    threads always have a call in flight would otherwise never collect: each call that ends while
    others run collects by hand, by the same thresholds, whatever generation is due.

    Process-wide, because the collector is: one instance per process (``HOOK_CALLS``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._resume = False  # whether the collector was enabled when the first call began

    def enter(self) -> None:
        """A hook call starts: automatic collection is off until the last call in flight leaves."""
        with self._lock:
            if self._in_flight == 0:
                self._resume = gc.isenabled()
            self._in_flight += 1
            gc.disable()

    def leave(self) -> None:
        """A hook call ended: re-enable collection when none is left (if it was on before),
        else collect by hand whatever generation is due."""
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                if self._resume:
                    gc.enable()
                return
            if not self._resume:
                return
        collect_if_due()


def collect_if_due() -> int | None:
    """Collect the oldest generation whose count has passed its threshold (as the automatic
    collector would); the generation collected, or None."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for generation in (2, 1, 0):
        if thresholds[generation] and counts[generation] > thresholds[generation]:
            gc.collect(generation)
            return generation
    return None


HOOK_CALLS = CollectionPause()


class PauseDuringHookCalls:
    """WSGI middleware: ``HOOK_CALLS`` paused from the start of a hook call (``POST`` under
    ``/cds-services/``, body reading and parsing included) until its response has been sent and
    closed, which is also when the parsed request is freed (``hooks.call_service``).

    A server that never closes the response (the test client, until it drops the response)
    ends the pause when the response object is freed: the pause never outlives its call."""

    def __init__(self, app: WSGIApplication, pause: CollectionPause = HOOK_CALLS,
                 prefix: str = "/cds-services/") -> None:
        self.app = app
        self.pause = pause
        self.prefix = prefix

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or not environ.get("PATH_INFO", "").startswith(
            self.prefix
        ):
            return self.app(environ, start_response)
        self.pause.enter()
        try:
            result = self.app(environ, start_response)
        except BaseException:
            self.pause.leave()
            raise
        return _ResumeWhenDone(result, self.pause.leave)


class _ResumeWhenDone:
    """A response iterable that calls ``leave`` once: when the server closes it or, failing
    that, when it is freed (``weakref.finalize`` runs its callback at most once)."""

    def __init__(self, result: Iterable[bytes], leave: Callable[[], None]) -> None:
        self._result = result
        self._resume = weakref.finalize(self, leave)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._resume()
