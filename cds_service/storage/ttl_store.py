"""A shared set of keys that expire: JWT ``jti`` replay protection and select->sign dedup.

With several gunicorn workers (or several hosts) a ``jti`` seen by one worker must be refused by
the others, so production sites set ``cache.redis_url``; the in-process store is for one worker
and for local use. ``add`` is the only write and it is atomic: two workers racing on the same
``jti`` cannot both win.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cds_service.settings import CacheSettings

log = logging.getLogger(__name__)

KEY_PREFIX = "psychopharm:"


class StoreUnavailable(Exception):
    """The shared store cannot be reached; callers that guard security must fail closed."""


class TtlStore(Protocol):
    def add(self, key: str, ttl_s: float) -> bool:
        """Add ``key`` for ``ttl_s`` seconds unless present; True when it was new."""

    def contains(self, key: str) -> bool:
        """True while ``key`` is present and not expired."""


class MemoryTtlStore:
    """Thread-safe, bounded, in-process store.

    Expired keys are swept on every ``add`` (a heap ordered by expiry keeps that cheap). When the
    store is full of live keys, the ones closest to expiry are evicted first: they would have
    gone soonest anyway, and refusing new keys would turn a burst of traffic into an outage.
    """

    def __init__(
        self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._evicted = 0

    def add(self, key: str, ttl_s: float) -> bool:
        with self._lock:
            now = self._clock()
            self._sweep(now)
            if key in self._expiry:
                return False
            while len(self._expiry) >= self._max_entries:
                self._pop_soonest()
                self._evicted += 1
                if self._evicted % 1000 == 1:
                    log.warning(
                        "ttl store full, evicting keys before expiry",
                        extra={"max_entries": self._max_entries},
                    )
            expires = now + max(ttl_s, 0.0)
            self._expiry[key] = expires
            heapq.heappush(self._heap, (expires, key))
            return True

    def contains(self, key: str) -> bool:
        with self._lock:
            expires = self._expiry.get(key)
            return expires is not None and expires > self._clock()

    def size(self) -> int:
        # Not __len__: an empty store would be falsy and `store or default` would drop it.
        with self._lock:
            return len(self._expiry)

    def _sweep(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            self._pop_soonest()

    def _pop_soonest(self) -> None:
        # Every removal goes through the heap, so heap and dict always hold the same keys.
        _, key = heapq.heappop(self._heap)
        del self._expiry[key]


class RedisTtlStore:
    """``SET key 1 NX PX ttl`` on a shared Redis; every key is namespaced under ``prefix``."""

    def __init__(
        self, url: str, *, prefix: str = KEY_PREFIX, socket_timeout_s: float = 0.5
    ) -> None:
        if not prefix.startswith(KEY_PREFIX):
            raise ValueError(f"prefix must start with {KEY_PREFIX!r}")
        self._prefix = prefix
        # A short timeout: a hung Redis must cost a hook call milliseconds, not the EHR's patience.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            # One immediate retry covers a pooled connection that Redis closed; redis-py's default
            # exponential backoff would stall hook calls for seconds while Redis is down.
            retry=Retry(NoBackoff(), 1),
        )

    def add(self, key: str, ttl_s: float) -> bool:
        ttl_ms = max(1, int(ttl_s * 1000))
        try:
            return bool(self._client.set(self._prefix + key, b"1", nx=True, px=ttl_ms))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis unavailable: {type(exc).__name__}") from exc

    def contains(self, key: str) -> bool:
        try:
            return bool(self._client.exists(self._prefix + key))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis unavailable: {type(exc).__name__}") from exc

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._client.close()


def make_ttl_store(cache: CacheSettings) -> TtlStore:
    """Redis when ``cache.redis_url`` is set (shared by all workers), memory otherwise."""
    if cache.redis_url:
        return RedisTtlStore(cache.redis_url)
    return MemoryTtlStore()
