"""HTTP timing: keep-alive clients, side-by-side (interleaved) latency of two servers, and
throughput at a given concurrency. Times are wall-clock ``perf_counter`` around one complete
request and response read, as an EHR would see it on loopback."""

from __future__ import annotations

import http.client
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``samples``; NaN when there are none."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples_s),
        "p50_ms": percentile(samples_s, 50) * 1000,
        "p95_ms": percentile(samples_s, 95) * 1000,
        "p99_ms": percentile(samples_s, 99) * 1000,
    }


class Client:
    """One keep-alive connection; reconnects once when the server closed an idle connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path: str, body: bytes) -> tuple[float, int, bytes]:
        for attempt in (1, 2):
            try:
                started = time.perf_counter()
                self.conn.request("POST", path, body=body, headers=JSON_HEADERS)
                response = self.conn.getresponse()
                data = response.read()
                return time.perf_counter() - started, response.status, data
            except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine):
                self.conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


class UnexpectedStatus(RuntimeError):
    pass


def _check(status: int, data: bytes, what: str) -> None:
    if status != 200:
        raise UnexpectedStatus(f"{what}: HTTP {status}: {data[:200]!r}")


def interleaved(
    service: Client, bare: Client, path: str, bodies: Sequence[bytes], count: int,
    time_cap_s: float,
) -> tuple[list[float], list[float]]:
    """``count`` calls to each server with the same bodies in turn, alternating which server goes
    first, so that both see the same machine load at the same moments."""
    ours: list[float] = []
    base: list[float] = []
    stop_at = time.monotonic() + time_cap_s
    for i in range(count):
        if time.monotonic() > stop_at:
            break
        order = ((service, ours), (bare, base)) if i % 2 == 0 else ((bare, base), (service, ours))
        body = bodies[i % len(bodies)]
        for client, samples in order:
            elapsed, status, data = client.post(path, body)
            _check(status, data, f"port {client.port} {path}")
            samples.append(elapsed)
    return ours, base


def sequential(
    client: Client, path: str, body: bytes, count: int, time_cap_s: float
) -> list[float]:
    samples: list[float] = []
    stop_at = time.monotonic() + time_cap_s
    for _ in range(count):
        if time.monotonic() > stop_at:
            break
        elapsed, status, data = client.post(path, body)
        _check(status, data, path)
        samples.append(elapsed)
    return samples


@dataclass(frozen=True)
class Throughput:
    concurrency: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def throughput(
    port: int, path: str, bodies: Sequence[bytes], concurrency: int, per_thread: int,
    time_cap_s: float,
) -> Throughput:
    """``concurrency`` threads, each with its own keep-alive connection, ``per_thread`` calls."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    barrier = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def worker(slot: int) -> None:
        client = Client(port)
        barrier.wait()
        try:
            for i in range(per_thread):
                if time.monotonic() > stop_at[0]:
                    break
                try:
                    elapsed, status, _data = client.post(path, bodies[(i + slot) % len(bodies)])
                except OSError:
                    errors[slot] += 1
                    client = Client(port)
                    continue
                if status == 200:
                    latencies[slot].append(elapsed)
                else:
                    errors[slot] += 1
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.monotonic() + time_cap_s
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    flat = [x for samples in latencies for x in samples]
    return Throughput(
        concurrency=concurrency,
        requests=len(flat),
        seconds=seconds,
        errors=sum(errors),
        p50_ms=percentile(flat, 50) * 1000,
        p99_ms=percentile(flat, 99) * 1000,
    )
