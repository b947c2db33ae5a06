"""The shared expiring-key store behind jti replay protection and select->sign dedup.

The Redis tests use the server at 127.0.0.1:6379 and fail (not skip) when it is not there:
production relies on it to share state between workers.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
import redis

from cds_service.settings import CacheSettings
from cds_service.storage.ttl_store import (
    MemoryTtlStore,
    RedisTtlStore,
    StoreUnavailable,
    make_ttl_store,
)

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


def test_redis_prefix_must_stay_in_the_service_namespace() -> None:
    with pytest.raises(ValueError):
        RedisTtlStore(REDIS_URL, prefix="other:")


def test_redis_down_raises_store_unavailable() -> None:
    store = RedisTtlStore(closed_port_url())
    with pytest.raises(StoreUnavailable):
        store.add("jti:a", 300)
    with pytest.raises(StoreUnavailable):
        store.contains("jti:a")
    assert store.ping() is False


# Factory


def test_make_ttl_store_is_memory_without_redis_url() -> None:
    assert isinstance(make_ttl_store(CacheSettings()), MemoryTtlStore)


@pytest.mark.redis
def test_make_ttl_store_uses_redis_when_configured() -> None:
    store = make_ttl_store(CacheSettings(redis_url=REDIS_URL))
    assert isinstance(store, RedisTtlStore)
    assert store.ping() is True
    store.close()
