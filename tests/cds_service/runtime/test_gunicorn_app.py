"""The production server's worker settings: what `psychopharm-cds serve` hands to gunicorn."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cds_service.runtime.gc_tuning import WORKER_GC_THRESHOLDS, tune_for_worker
from cds_service.runtime.gunicorn_app import bind_address, gunicorn_options, post_worker_init


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_workers_tune_the_collector_after_loading_and_stop_cleanly() -> None:
    options = gunicorn_options("127.0.0.1", 8080, workers=2)

    assert options["post_worker_init"] is post_worker_init
    assert options["worker_exit"].__name__ == "worker_exit"
    # Two services on one host must not share gunicorn 27's default control socket.
    assert options["control_socket_disable"] is True
    assert options["accesslog"] is None  # request paths stay out of logs; the audit store logs
    assert options["bind"] == ["127.0.0.1:8080"]


def test_tuning_freezes_the_start_up_heap_and_raises_the_young_threshold(
    restore_gc: None,
) -> None:
    gc.unfreeze()
    tune_for_worker()

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == WORKER_GC_THRESHOLDS


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", "127.0.0.1:9000"), ("::1", "[::1]:9000"), ("[::1]", "[::1]:9000")],
)
def test_bind_address_brackets_ipv6(host: str, expected: str) -> None:
    assert bind_address(host, 9000) == expected
