"""The Dask cluster a backtest runs on, and how its progress is shown.

By default a ``LocalCluster`` on this machine's cores (one single-threaded worker process per
core: the patterns are pure Python, so threads would share one GIL), bound to loopback, with the
dashboard on a free loopback port when bokeh is installed. ``--scheduler tcp://host:8786``
connects to an existing cluster instead (``dask scheduler`` / ``dask worker``, Kubernetes,
Yarn...): its workers need this package installed and must be able to read the inputs (and
write ``--output``), e.g. on a shared file system or an object store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TextIO

import dask
from distributed import Client, LocalCluster

CONNECT_TIMEOUT = "20s"
# The shuffle's in-memory send buffer per worker: Dask's default lets it take up to 1 GiB of a
# worker's memory once the input is large; 128 MiB is plenty for one-thread workers sending 64 MB
# blocks (bench/RESULTS.md). A value set in the user's dask config is kept.
LOCAL_P2P_COMM_BUFFER = "128 MiB"
DASK_DEFAULT_P2P_COMM_BUFFER = "1 GiB"


class ClusterError(Exception):
    """The scheduler named by ``--scheduler`` cannot be reached."""


@contextlib.contextmanager
def open_client(
    scheduler: str | None = None, *, workers: int | None = None, processes: bool = True
) -> Iterator[Client]:
    """A client of ``scheduler``, or of a new local cluster of ``workers`` (default: all cores)
    that is shut down on exit. ``processes=False`` runs the workers as threads of this process
    (quick to start; for tests and small inputs). Raises ``ClusterError`` when the scheduler
    cannot be reached within 20 s."""
    # The scheduler and client of this process log every shuffle and every worker coming and
    # going at INFO/WARNING: cluster chatter, not the user's report (LocalCluster's
    # silence_logs only covers its start-up). Errors still show.
    # Some of distributed's loggers carry their own level (e.g. the event-loop monitor under
    # load), so each is raised, not only the parent.
    loggers = [logging.getLogger("distributed")] + [
        logging.getLogger(name)
        for name in list(logging.root.manager.loggerDict)
        if name.startswith("distributed.")
    ]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        yield from _open_client(scheduler, workers=workers, processes=processes)
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)


def _open_client(
    scheduler: str | None, *, workers: int | None, processes: bool
) -> Iterator[Client]:
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    buffer = dask.config.get("distributed.p2p.comm.buffer")
    if buffer == DASK_DEFAULT_P2P_COMM_BUFFER:
        buffer = LOCAL_P2P_COMM_BUFFER
    # The worker processes take a copy of this configuration when they start.
    with dask.config.set({"distributed.p2p.comm.buffer": buffer}):
        cluster = _local_cluster(n, processes)
    with cluster, Client(cluster) as client:
        yield client


def _local_cluster(n: int, processes: bool) -> LocalCluster:
    return LocalCluster(
        n_workers=1 if not processes else n,
        threads_per_worker=n if not processes else 1,
        processes=processes,
        # Worker processes talk over loopback TCP; threads in this process over memory.
        **({"host": "127.0.0.1"} if processes else {}),
        dashboard_address="127.0.0.1:0",
        # Shuffle scheduling chatter ("Shuffle ... initialized/deactivated") is not for users.
        silence_logs=logging.ERROR,
    )


def dashboard_link(client: Client) -> str | None:
    """The dashboard's URL, when the scheduler serves one (bokeh installed)."""
    try:
        services = client.scheduler_info().get("services", {})
    except (OSError, TimeoutError):
        return None
    return client.dashboard_link if "dashboard" in services else None


@dataclass(frozen=True)
class WorkerUsage:
    """One worker process's resource use, as ``worker_usage`` reads it."""
    peak_rss: int  # bytes, the process's peak resident memory so far (ru_maxrss)
    cpu_s: float  # user + system CPU seconds of the process so far


def worker_usage(client: Client) -> dict[str, WorkerUsage]:
    """Each worker process's peak memory and CPU time since it started (by worker address)."""
    return {
        address: WorkerUsage(int(peak), float(cpu))
        for address, (peak, cpu) in client.run(_usage).items()
    }


def _usage() -> tuple[int, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return rss, usage.ru_utime + usage.ru_stime


@dataclass
class Progress:
    """A periodic one-line report (for logs and pipes): phase, patients done, patients/s, ETA.

    On a terminal the CLI shows Dask's own progress bar instead (``distributed.progress``).
    """

    stream: TextIO
    clock: Callable[[], float] = time.monotonic
    every_s: float = 10.0
    partitions: int = 0
    done: int = 0
    patients: int = 0
    _start: float | None = None
    _first_done: float | None = None
    _last: float | None = None

    def start(self, partitions: int) -> None:
        """Starts the clock; ``partitions`` is how many partitions will be evaluated."""
        self.partitions = partitions
        self._start = self._last = self.clock()

    def partition_done(self, patients: int) -> None:
        """Counts one evaluated partition of ``patients``; writes a line at most every ``every_s``
        (and always for the last partition)."""
        now = self.clock()
        if self._first_done is None:
            self._first_done = now
        self.done += 1
        self.patients += patients
        if self.done == self.partitions or now - (self._last or now) >= self.every_s:
            self._last = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def tick(self) -> None:
        """Called while waiting: reports the read-and-shuffle phase, before any partition ends."""
        now = self.clock()
        if self._last is not None and now - self._last >= self.every_s:
            self._last = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float) -> str:
        """The report line at monotonic time ``now`` (seconds)."""
        elapsed = now - (self._start or now)
        if self.done == 0:
            return (
                f"backtest: reading and grouping by patient, {elapsed:,.0f} s "
                f"({self.partitions} partitions to evaluate)"
            )
        rate = self.patients / elapsed if elapsed > 0 else 0.0
        since = now - (self._first_done or now)
        # Partitions are about equal in size; the ETA assumes the rate since the first one ended.
        left = self.partitions - self.done
        eta = since / (self.done - 1) * left if self.done > 1 and since > 0 else None
        eta_text = f"ETA {eta:,.0f} s" if eta is not None else "ETA -"
        return (
            f"backtest: {self.done}/{self.partitions} partitions, {self.patients:,} patients, "
            f"{rate:,.0f} patients/s, {eta_text}"
        )
