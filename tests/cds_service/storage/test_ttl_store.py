"""The shared expiring-key store behind jti replay protection and select->sign dedup.

The Redis tests use the server at 127.0.0.1:6379 and fail (not skip) when it is not there:
production relies on it to share state between workers. The SQL store (the default without
Redis) runs on SQLite and PostgreSQL; its stores on separate engines stand for separate workers.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, func, select

from cds_service.settings import CacheSettings
from cds_service.storage.audit.database import create_audit_engine
from cds_service.storage.audit.models import SHARED_KEY
from cds_service.storage.audit.store import SqlAuditStore
from cds_service.storage.ttl_store import (
    MemoryTtlStore,
    RedisTtlStore,
    SqlTtlStore,
    StoreUnavailable,
    make_ttl_store,
)
from tests.audit_support import storage

pytest_plugins = ["tests.audit_support"]

REDIS_URL = "redis://127.0.0.1:6379/0"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"psychopharm:test-{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


# Memory store


def test_memory_add_is_true_only_the_first_time() -> None:
    store = MemoryTtlStore(clock=FakeClock())
    assert store.add("jti:a", 300) is True
    assert store.add("jti:a", 300) is False
    assert store.contains("jti:a")
    assert not store.contains("jti:b")


def test_memory_key_expires_after_its_ttl() -> None:
    clock = FakeClock()
    store = MemoryTtlStore(clock=clock)
    store.add("k", 60)
    clock.now += 59.9
    assert store.contains("k")
    assert store.add("k", 60) is False
    clock.now += 0.2
    assert not store.contains("k")
    assert store.add("k", 60) is True


def test_memory_expired_keys_are_swept_so_size_stays_bounded() -> None:
    clock = FakeClock()
    store = MemoryTtlStore(clock=clock)
    for i in range(1000):
        store.add(f"old-{i}", 10)
    clock.now += 11
    store.add("new", 10)
    assert store.size() == 1


def test_memory_full_store_evicts_the_key_closest_to_expiry() -> None:
    store = MemoryTtlStore(max_entries=3, clock=FakeClock())
    store.add("expires-soon", 10)
    store.add("expires-later", 20)
    store.add("expires-last", 30)
    assert store.add("newest", 40) is True
    assert store.size() == 3
    assert not store.contains("expires-soon")
    assert store.contains("expires-later") and store.contains("newest")


def test_memory_concurrent_adds_of_one_key_have_exactly_one_winner() -> None:
    store = MemoryTtlStore()
    wins: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results = [store.add(f"jti-{i}", 300) for i in range(200)]
        with lock:
            wins.extend(results)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(wins) == 200


def test_memory_present_answers_for_several_keys_at_once() -> None:
    clock = FakeClock()
    store = MemoryTtlStore(clock=clock)
    store.add("dedup:a", 60)
    store.add("dedup:b", 10)
    clock.now += 30
    assert store.present(["dedup:a", "dedup:b", "dedup:never"]) == {"dedup:a"}
    assert store.present([]) == frozenset()


def test_memory_rejects_a_zero_size() -> None:
    with pytest.raises(ValueError):
        MemoryTtlStore(max_entries=0)


# Redis store


@pytest.mark.redis
def test_redis_add_is_true_only_the_first_time(redis_prefix: str) -> None:
    store = RedisTtlStore(REDIS_URL, prefix=redis_prefix)
    assert store.add("jti:a", 300) is True
    assert store.add("jti:a", 300) is False
    assert store.contains("jti:a")
    assert not store.contains("jti:b")
    store.close()


@pytest.mark.redis
def test_redis_keys_are_namespaced_and_carry_the_ttl(redis_prefix: str) -> None:
    store = RedisTtlStore(REDIS_URL, prefix=redis_prefix)
    store.add("dedup:x", 90)
    raw = redis.Redis.from_url(REDIS_URL)
    ttl_ms = raw.pttl(redis_prefix + "dedup:x")
    raw.close()
    store.close()
    assert redis_prefix.startswith("psychopharm:")
    assert 0 < ttl_ms <= 90_000


@pytest.mark.redis
def test_redis_stores_are_shared_between_instances(redis_prefix: str) -> None:
    worker_a = RedisTtlStore(REDIS_URL, prefix=redis_prefix)
    worker_b = RedisTtlStore(REDIS_URL, prefix=redis_prefix)
    assert worker_a.add("jti:shared", 300) is True
    assert worker_b.add("jti:shared", 300) is False
    worker_a.close()
    worker_b.close()


@pytest.mark.redis
def test_redis_present_answers_for_several_keys_at_once(redis_prefix: str) -> None:
    store = RedisTtlStore(REDIS_URL, prefix=redis_prefix)
    store.add("dedup:a", 300)
    store.add("dedup:b", 300)
    assert store.present(["dedup:a", "dedup:never", "dedup:b"]) == {"dedup:a", "dedup:b"}
    assert store.present([]) == frozenset()
    store.close()


def test_redis_prefix_must_stay_in_the_service_namespace() -> None:
    with pytest.raises(ValueError):
        RedisTtlStore(REDIS_URL, prefix="other:")


def test_redis_down_raises_store_unavailable() -> None:
    store = RedisTtlStore(closed_port_url())
    with pytest.raises(StoreUnavailable):
        store.add("jti:a", 300)
    with pytest.raises(StoreUnavailable):
        store.contains("jti:a")
    with pytest.raises(StoreUnavailable):
        store.present(["jti:a", "jti:b"])
    assert store.ping() is False


# SQL store (audit database)


@pytest.fixture
def migrated_url(audit_url: str) -> str:
    """A database at Alembic head (migration 0003 creates ``shared_ttl_key``)."""
    SqlAuditStore(storage(audit_url)).close()
    return audit_url


@pytest.fixture
def engines(migrated_url: str) -> Iterator[list[Engine]]:
    """Eight engines on one database: eight workers, each with its own connections."""
    made = [create_audit_engine(migrated_url) for _ in range(8)]
    yield made
    for engine in made:
        engine.dispose()


def _rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(SHARED_KEY)).scalar_one())


def test_sql_add_is_true_only_the_first_time(engines: list[Engine]) -> None:
    store = SqlTtlStore(engines[0], clock=FakeClock())
    assert store.add("jti:a", 300) is True
    assert store.add("jti:a", 300) is False
    assert store.contains("jti:a")
    assert not store.contains("jti:b")
    assert store.ping() is True


def test_sql_store_is_shared_between_workers(engines: list[Engine]) -> None:
    worker_a, worker_b = SqlTtlStore(engines[0]), SqlTtlStore(engines[1])
    assert worker_a.add("dedup:shown-at-select", 3600) is True
    assert worker_b.contains("dedup:shown-at-select")
    assert worker_b.add("dedup:shown-at-select", 3600) is False


def test_sql_expired_key_can_be_added_again_and_is_swept(engines: list[Engine]) -> None:
    clock = FakeClock()
    store = SqlTtlStore(engines[0], clock=clock, sweep_interval_s=10)
    assert store.add("jti:old", 5) is True
    clock.now += 4.9
    assert store.contains("jti:old")
    assert store.add("jti:old", 5) is False  # still live: a replay
    clock.now += 0.2
    assert not store.contains("jti:old")
    assert store.add("jti:old", 5) is True  # expired: taken over
    assert store.add("jti:other", 1) is True
    clock.now += 30
    assert store.add("jti:new", 5) is True  # past the sweep interval: expired rows deleted
    assert _rows(engines[0]) == 1


def test_sql_concurrent_adds_of_one_key_have_exactly_one_winner(engines: list[Engine]) -> None:
    stores = [SqlTtlStore(engine) for engine in engines]
    start = threading.Barrier(len(stores))
    results: list[bool] = []
    lock = threading.Lock()

    def race(store: SqlTtlStore) -> None:
        start.wait()
        won = store.add("jti:raced", 300)
        with lock:
            results.append(won)

    threads = [threading.Thread(target=race, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_sql_long_keys_are_hashed_to_fit(engines: list[Engine]) -> None:
    store = SqlTtlStore(engines[0])
    long_key = "dedup:" + "x" * 300
    assert store.add(long_key, 60) is True
    assert store.add(long_key, 60) is False
    assert store.add(long_key[:-1], 60) is True


def test_sql_present_answers_for_several_keys_at_once(engines: list[Engine]) -> None:
    clock = FakeClock()
    worker_a, worker_b = SqlTtlStore(engines[0], clock=clock), SqlTtlStore(engines[1], clock=clock)
    long_key = "dedup:" + "y" * 300  # stored hashed, answered as asked
    worker_a.add("dedup:a", 60)
    worker_a.add("dedup:b", 10)
    worker_a.add(long_key, 60)
    clock.now += 30
    assert worker_b.present(["dedup:a", "dedup:b", long_key, "dedup:never"]) == {
        "dedup:a", long_key}
    assert worker_b.present([]) == frozenset()


def test_sql_store_without_its_table_is_unavailable(tmp_path: Path) -> None:
    engine = create_audit_engine(f"sqlite:///{tmp_path / 'not-migrated.sqlite3'}")
    store = SqlTtlStore(engine)
    with pytest.raises(StoreUnavailable):
        store.add("jti:a", 300)
    with pytest.raises(StoreUnavailable):
        store.contains("jti:a")
    with pytest.raises(StoreUnavailable):
        store.present(["jti:a"])
    assert store.ping() is False
    engine.dispose()


# Factory


def test_make_ttl_store_is_memory_without_redis_url_or_database() -> None:
    assert isinstance(make_ttl_store(CacheSettings()), MemoryTtlStore)


def test_make_ttl_store_uses_the_audit_database_without_redis(engines: list[Engine]) -> None:
    assert isinstance(make_ttl_store(CacheSettings(), engines[0]), SqlTtlStore)


@pytest.mark.redis
def test_make_ttl_store_uses_redis_when_configured() -> None:
    store = make_ttl_store(CacheSettings(redis_url=REDIS_URL))
    assert isinstance(store, RedisTtlStore)
    assert store.ping() is True
    store.close()
