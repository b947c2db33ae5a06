"""A shared set of keys that expire: JWT ``jti`` replay protection and select->sign dedup.

With several gunicorn workers (or several hosts) a ``jti`` seen by one worker must be refused by
the others, and a card shown at order-select by one worker must not come back at order-sign from
another. So the store is shared:

- ``RedisTtlStore`` when ``cache.redis_url`` is set: shared by every host that uses that Redis;
- ``SqlTtlStore`` otherwise: a table in the audit database, shared by every worker of a host
  (SQLite) or by every host (PostgreSQL);
- ``MemoryTtlStore`` only for one process (tests, tools) that has no audit database.

``add`` is the only write and it is atomic: two workers racing on the same ``jti`` cannot both win.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine, bindparam, delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from cds_service.settings import CacheSettings
from cds_service.storage.audit.database import write_transaction
from cds_service.storage.audit.models import SHARED_KEY, max_lengths

log = logging.getLogger(__name__)

KEY_PREFIX = "psychopharm:"


class StoreUnavailable(Exception):
    """The shared store cannot be reached; callers that guard security must fail closed."""


class TtlStore(Protocol):
    """Keys that expire, shared by whoever shares the store; keys are opaque strings."""

    def add(self, key: str, ttl_s: float) -> bool:
        """Add ``key`` for ``ttl_s`` seconds unless present; True when it was new."""

    def contains(self, key: str) -> bool:
        """True while ``key`` is present and not expired."""

    def present(self, keys: Collection[str]) -> frozenset[str]:
        """Those of ``keys`` that are present and not expired, asked in one round trip."""

    def ping(self) -> bool:
        """True when the store answers (readiness probe); never raises."""


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
        """Add ``key`` for ``ttl_s`` seconds unless it is live; True when it was new."""
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
        """True while ``key`` is present and not expired."""
        return key in self.present((key,))

    def present(self, keys: Collection[str]) -> frozenset[str]:
        """Those of ``keys`` that are present and not expired."""
        with self._lock:
            now = self._clock()
            return frozenset(k for k in keys if self._expiry.get(k, now) > now)

    def ping(self) -> bool:
        """Always True: memory is always there."""
        return True

    def size(self) -> int:
        """Keys held now, expired ones not yet swept included."""
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
        """``SET NX PX``: True when the key was new; raises ``StoreUnavailable``."""
        ttl_ms = max(1, int(ttl_s * 1000))
        try:
            return bool(self._client.set(self._prefix + key, b"1", nx=True, px=ttl_ms))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis unavailable: {type(exc).__name__}") from exc

    def contains(self, key: str) -> bool:
        """True while the key exists in Redis; raises ``StoreUnavailable``."""
        return key in self.present((key,))

    def present(self, keys: Collection[str]) -> frozenset[str]:
        """Those of ``keys`` that exist in Redis (one ``MGET``); raises ``StoreUnavailable``."""
        ordered = list(keys)
        if not ordered:
            return frozenset()
        try:
            values = self._client.mget([self._prefix + key for key in ordered])
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis unavailable: {type(exc).__name__}") from exc
        found = zip(ordered, values, strict=True)
        return frozenset(key for key, value in found if value is not None)

    def ping(self) -> bool:
        """True when Redis answers PING; never raises."""
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


# Built once: a hook call asks for its cards' keys in one query, without building a statement.
_PRESENT = select(SHARED_KEY.c.key).where(
    SHARED_KEY.c.key.in_(bindparam("keys", expanding=True)),
    SHARED_KEY.c.expires_at > bindparam("now"),
)
_KEY_LENGTH = max_lengths(SHARED_KEY)["key"]


class SqlTtlStore:
    """Keys in the audit database's ``shared_ttl_key`` table (created by migration 0003).

    ``add`` is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at <= now``: a new key is
    inserted, an expired one is taken over, and a live one is left alone (no row is returned, so
    ``add`` returns False). The database's own locking makes that atomic across processes.
    Expiry uses the wall clock, the only clock that workers (and hosts) share. Expired rows are
    deleted at most once per ``sweep_interval_s`` per process.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], float] = time.time,
        sweep_interval_s: float = 60.0,
    ) -> None:
        dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"no atomic insert for the {dialect} dialect")
        self._engine = engine
        self._insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        self._is_postgresql = dialect == "postgresql"
        self._clock = clock
        self._sweep_interval_s = sweep_interval_s
        self._next_sweep = 0.0

    @staticmethod
    def _stored_key(key: str) -> str:
        # Longer keys than the column holds are hashed (they are opaque anyway).
        if len(key) <= _KEY_LENGTH:
            return key
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()

    def add(self, key: str, ttl_s: float) -> bool:
        """Insert ``key`` (or take over an expired one) for ``ttl_s`` seconds; True when it was
        new, False while it is live. Raises ``StoreUnavailable`` when the database fails."""
        now = self._clock()
        statement = self._insert(SHARED_KEY).values(
            key=self._stored_key(key), expires_at=now + max(ttl_s, 0.0)
        )
        statement = statement.on_conflict_do_update(
            index_elements=[SHARED_KEY.c.key],
            set_={"expires_at": statement.excluded.expires_at},
            where=SHARED_KEY.c.expires_at <= now,
        ).returning(SHARED_KEY.c.key)
        try:
            with write_transaction(self._engine) as connection:
                if self._is_postgresql:
                    # These keys live minutes, not years: no wait for the WAL flush (PostgreSQL
                    # still applies commits in order; a crash may lose the last few keys).
                    connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
                # A row comes back only when it was inserted or taken over (rowcount is not
                # reported for upserts by every driver).
                is_new = connection.execute(statement).first() is not None
                if now >= self._next_sweep:
                    self._next_sweep = now + self._sweep_interval_s
                    connection.execute(delete(SHARED_KEY).where(SHARED_KEY.c.expires_at <= now))
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"shared store unavailable: {type(exc).__name__}") from exc
        return is_new

    def contains(self, key: str) -> bool:
        """True while ``key`` is stored and not expired; raises ``StoreUnavailable``."""
        return key in self.present((key,))

    def present(self, keys: Collection[str]) -> frozenset[str]:
        """Those of ``keys`` stored and not expired (one query); raises ``StoreUnavailable``."""
        stored = {self._stored_key(key): key for key in keys}
        if not stored:
            return frozenset()
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(
                    _PRESENT, {"keys": list(stored), "now": self._clock()}
                ).all()
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"shared store unavailable: {type(exc).__name__}") from exc
        return frozenset(stored[row[0]] for row in rows)

    def ping(self) -> bool:
        """True when the database answers and has the table; never raises."""
        try:
            with self._engine.connect() as connection:
                connection.execute(select(SHARED_KEY.c.key).limit(1))
        except SQLAlchemyError as exc:
            log.warning("shared store not reachable: %s", type(exc).__name__)
            return False
        return True


def make_ttl_store(cache: CacheSettings, audit_engine: Engine | None = None) -> TtlStore:
    """Redis when ``cache.redis_url`` is set; else the audit database (``audit_engine``, shared
    by every worker that uses it); memory only for one process without an audit database."""
    if cache.redis_url:
        return RedisTtlStore(cache.redis_url)
    if audit_engine is not None:
        return SqlTtlStore(audit_engine)
    return MemoryTtlStore()
