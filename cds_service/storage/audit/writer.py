"""A bounded queue drained by one background thread that writes rows in batches.

The hook call only appends to a deque under a lock (microseconds); the thread writes a batch when
it fills or every ``flush_interval_s``. When the database is unreachable the batch stays at the
head of the queue and is retried with backoff, so nothing is lost while the queue has room; when
the queue is full, new rows are counted as dropped and logged (counts only, never row content).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")

BATCH_SIZE = 500
MAX_BACKOFF_S = 5.0
# A batch that fails for a reason other than connectivity (a constraint, a bad value) would
# otherwise block every row behind it forever.
MAX_ATTEMPTS_NON_TRANSIENT = 3
LOG_EVERY_N_ATTEMPTS = 12  # about once a minute at the longest backoff


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def describe_error(exc: BaseException) -> str:
    """Error class names only: driver messages can quote row values."""
    orig = getattr(exc, "orig", None)
    return type(exc).__name__ + (f"({type(orig).__name__})" if orig is not None else "")


class BatchWriter(Generic[T]):
    """A queue of at most ``capacity`` rows, written by ``write_batch`` on one daemon thread.

    A batch (up to ``BATCH_SIZE`` rows) is written when that many are queued, on ``flush``, or
    ``flush_interval_s`` seconds after the first row arrived. The thread starts with the first
    ``submit``; create the writer in the process that uses it (a thread does not survive a fork).
    """

    def __init__(
        self,
        write_batch: Callable[[list[T]], None],
        *,
        capacity: int,
        flush_interval_s: float,
        name: str = "audit-writer",
    ) -> None:
        self._write_batch = write_batch
        self._capacity = capacity
        self._interval = flush_interval_s
        self._name = name
        self._pending: deque[T] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._flush_requested = False
        self._accepted = 0
        self._written = 0
        self._dropped = 0
        self._discarded = 0  # given up on after repeated non-transient errors (also dropped)
        self._write_errors = 0
        self._last_error: str | None = None

    def submit(self, rows: Sequence[T]) -> None:
        """Queue ``rows`` without waiting for the database; what does not fit (or arrives after
        ``close``) is dropped, counted and logged. Never raises."""
        with self._cond:
            if self._thread is None and not self._stopping:
                self._start()
            room = self._capacity - len(self._pending)
            if self._stopping:
                room = 0
            taken = rows if len(rows) <= room else rows[: max(room, 0)]
            self._pending.extend(taken)
            self._accepted += len(taken)
            dropped = len(rows) - len(taken)
            self._dropped += dropped
            if len(self._pending) >= BATCH_SIZE:
                self._cond.notify_all()
        if dropped:
            log.error(
                "audit queue full (capacity %d): dropped %d row(s), %d dropped in total",
                self._capacity,
                dropped,
                self._dropped,
            )

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stats(self) -> dict[str, Any]:
        """Row counts since start: queued (now), accepted, written, dropped, write_errors; and
        last_error, the class name of the latest write error (None if none)."""
        with self._cond:
            return {
                "queued": len(self._pending),
                "accepted": self._accepted,
                "written": self._written,
                "dropped": self._dropped,
                "write_errors": self._write_errors,
                "last_error": self._last_error,
            }

    def flush(self, timeout_s: float) -> bool:
        """Wait until every row accepted so far is written (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._accepted
            self._flush_requested = True
            self._cond.notify_all()
            while self._written + self._discarded < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout_s: float) -> None:
        """Write what is queued (up to ``timeout_s``), then stop the thread; idempotent."""
        self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=max(self._interval, 1.0) + MAX_BACKOFF_S)
            if thread.is_alive():
                log.error(
                    "audit writer did not stop; %d row(s) may be lost", self.stats()["queued"]
                )
                return
        with self._cond:
            lost = len(self._pending)
            self._pending.clear()
            self._dropped += lost
        if lost:
            log.error("audit writer closed with %d row(s) not written", lost)

    def _next_batch(self) -> list[T] | None:
        """Block until a batch is due; None when stopping with nothing left to write."""
        with self._cond:
            deadline = time.monotonic() + self._interval
            while True:
                due = (
                    len(self._pending) >= BATCH_SIZE
                    or self._flush_requested
                    or self._stopping
                    or (self._pending and time.monotonic() >= deadline)
                )
                if due:
                    break
                self._cond.wait(max(deadline - time.monotonic(), 0.001))
                if not self._pending:
                    deadline = time.monotonic() + self._interval
            if not self._pending:
                self._flush_requested = False
                return None if self._stopping else []
            return [self._pending[i] for i in range(min(BATCH_SIZE, len(self._pending)))]

    def _run(self) -> None:
        attempts = 0
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not batch:
                continue
            try:
                self._write_batch(batch)
            except Exception as exc:  # the thread must survive any database failure
                attempts += 1
                self._note_error(exc)
                if attempts == 1 or attempts % LOG_EVERY_N_ATTEMPTS == 0:
                    log.error(
                        "audit write of %d row(s) failed (attempt %d), rows kept: %s",
                        len(batch),
                        attempts,
                        describe_error(exc),
                    )
                if not _is_transient(exc) and attempts >= MAX_ATTEMPTS_NON_TRANSIENT:
                    self._settle(len(batch), self._write_one_by_one(batch))
                    attempts = 0
                    continue
                if self._wait_backoff(attempts):
                    return
                continue
            attempts = 0
            self._settle(len(batch), len(batch))

    def _write_one_by_one(self, batch: list[T]) -> int:
        """Isolate the rows a batch cannot take (a bad value), so the others are still written."""
        written = 0
        for row in batch:
            try:
                self._write_batch([row])
            except Exception as exc:  # this row is given up on; the next may be fine
                self._note_error(exc)
            else:
                written += 1
        return written

    def _note_error(self, exc: Exception) -> None:
        with self._cond:
            self._write_errors += 1
            self._last_error = describe_error(exc)

    def _settle(self, count: int, written: int) -> None:
        """Take ``count`` rows off the queue, ``written`` of them stored, the rest given up."""
        lost = count - written
        with self._cond:
            for _ in range(count):
                self._pending.popleft()
            self._written += written
            self._discarded += lost
            self._dropped += lost
            if not self._pending:
                self._flush_requested = False
            self._cond.notify_all()
        if lost:
            log.error("audit writer gave up on %d row(s) after repeated errors", lost)

    def _wait_backoff(self, attempts: int) -> bool:
        """Sleep before a retry; True when the writer is stopping and should give up."""
        delay = min(self._interval * 2**attempts, MAX_BACKOFF_S)
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, timeout=delay)
            return self._stopping
