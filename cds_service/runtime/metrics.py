"""Prometheus metrics for hook calls, cards and errors.

Each ``Metrics`` owns its CollectorRegistry instead of prometheus_client's global one, so several
apps in one process (tests, the CLI) never clash over metric names.

Several gunicorn workers: each worker counts in its own process, and a scrape of ``/metrics`` is
answered by whichever worker accepts it. So ``serve`` runs prometheus_client's multiprocess mode:
``runtime.multiprocess_dir`` sets ``PROMETHEUS_MULTIPROC_DIR`` in the master's environment before
any worker imports prometheus_client (a fresh temporary directory, removed when the server stops;
or the operator's own directory, emptied of the last run's files), gunicorn's ``child_exit`` hook
calls ``mark_worker_dead``, and ``render`` merges the files of every worker.

Label values must come from closed sets (registered service ids, hook names, pattern ids): an
unbounded label (a URL segment, a patient id) would grow without end.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from cds_service.runtime.multiprocess_dir import MULTIPROC_ENV

# From the fastest call (no data to read) to slow FHIR fetches, with resolution on both sides of
# the ~500 ms answer time a CDS service aims at; the measured latencies that set these bounds
# are in bench/RESULTS.md ("Latency histogram buckets").
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The service's Prometheus counters and latency histogram, in a registry of its own.

    ``multiprocess_dir`` (default: ``$PROMETHEUS_MULTIPROC_DIR``, if set) is where every
    worker's files are merged from by ``render``; without it ``render`` shows this process only.
    Metric names: ``psychopharm_hook_calls_total``, ``psychopharm_hook_latency_seconds``,
    ``psychopharm_cards_total``, ``psychopharm_errors_total``.
    """

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        # prometheus_client itself switches to mmap files when this variable is set at import.
        self._multiprocess_dir = multiprocess_dir or os.environ.get(MULTIPROC_ENV) or None
        self.registry = CollectorRegistry(auto_describe=True)
        self._calls = Counter(
            "psychopharm_hook_calls",
            "CDS Hooks service calls by service, hook and HTTP status.",
            ["service", "hook", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "psychopharm_hook_latency_seconds",
            "Time to answer a CDS Hooks service call.",
            ["service", "hook"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self._cards = Counter(
            "psychopharm_cards",
            "Cards produced by pattern and disposition (shown, silent, suppressed, ...).",
            ["pattern", "disposition"],
            registry=self.registry,
        )
        self._errors = Counter(
            "psychopharm_errors",
            "Errors by kind (auth codes, detector failures, FHIR fetch problems, ...).",
            ["kind"],
            registry=self.registry,
        )

    def observe_call(self, service_id: str, hook: str, status: int, seconds: float) -> None:
        """Count one hook call by service, hook and HTTP status; record its duration (seconds,
        negative clamped to 0) in the latency histogram."""
        self._calls.labels(service=service_id, hook=hook, status=str(status)).inc()
        self._latency.labels(service=service_id, hook=hook).observe(max(seconds, 0.0))

    def count_card(self, pattern: str, disposition: str) -> None:
        """Count one card of ``pattern`` by disposition (``shown``, ``silent``, ...)."""
        self._cards.labels(pattern=pattern, disposition=disposition).inc()

    def count_error(self, kind: str) -> None:
        """Count one error of ``kind`` (an auth code, a detector failure, a FHIR fetch problem)."""
        self._errors.labels(kind=kind).inc()

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition (UTF-8 bytes) and its ``Content-Type``; in
        multiprocess mode the merge of every worker's files, else this registry."""
        if self._multiprocess_dir:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, path=self._multiprocess_dir)  # type: ignore[no-untyped-call]
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def mark_worker_dead(pid: int) -> None:
    """For gunicorn's ``child_exit`` hook in multiprocess mode: drop the dead worker's gauges."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]

