"""Automatic collection waits while hook calls are in flight and catches up after them."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from werkzeug.test import Client

from cds_service.runtime.gc_tuning import CollectionPause, PauseDuringHookCalls, collect_if_due
from cds_service.web import hooks
from tests.conftest import FIXTURES


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    enabled, thresholds = gc.isenabled(), gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    (gc.enable if enabled else gc.disable)()


def test_collection_resumes_only_when_the_last_call_ends() -> None:
    gc.enable()
    pause = CollectionPause()
    pause.enter()
    pause.enter()
    assert not gc.isenabled()
    pause.leave()
    assert not gc.isenabled()  # the other call is still running
    pause.leave()
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_operator_stays_off() -> None:
    gc.disable()
    pause = CollectionPause()
    pause.enter()
    pause.leave()
    assert not gc.isenabled()


def test_a_call_ending_while_others_run_collects_what_is_due() -> None:
    gc.enable()
    gc.set_threshold(100, 10, 10)
    pause = CollectionPause()
    pause.enter()  # a long call holds collection off
    pause.enter()
    garbage = [[i] for i in range(500)]  # young tracked objects, past the threshold
    assert gc.get_count()[0] > 100
    pause.leave()  # this call ends while the first still runs: it collects by hand
    assert gc.get_count()[0] < 100
    assert not gc.isenabled()
    pause.leave()
    assert gc.isenabled()
    del garbage


def test_collect_if_due_takes_the_oldest_generation_past_its_threshold() -> None:
    gc.disable()  # by hand only, as while calls are in flight
    gc.set_threshold(100_000, 10, 10)
    gc.collect()
    assert collect_if_due() is None
    gc.set_threshold(1, 10, 10)
    _ = [[i] for i in range(50)]
    assert collect_if_due() == 0


def _app(seen: list[bool], *, fail: bool = False) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        seen.append(gc.isenabled())
        if fail:
            raise RuntimeError("boom")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]
    return app


def test_hook_calls_run_with_collection_paused_and_it_resumes_after_the_response() -> None:
    gc.enable()
    seen: list[bool] = []
    client = Client(PauseDuringHookCalls(_app(seen), CollectionPause()))

    response = client.post("/cds-services/psychopharm-patient-view", data=b"{}")
    assert not gc.isenabled()  # the server has not closed the response yet
    response.close()
    assert gc.isenabled()
    client.get("/cds-services").close()  # discovery: not paused
    client.post("/admin/reload").close()  # not a hook call

    assert seen == [False, True, True]


def test_collection_resumes_when_the_app_raises() -> None:
    gc.enable()
    client = Client(PauseDuringHookCalls(_app([], fail=True), CollectionPause()))
    with pytest.raises(RuntimeError):
        client.post("/cds-services/psychopharm-patient-view", data=b"{}")
    assert gc.isenabled()


def test_a_response_never_closed_ends_the_pause_when_it_is_freed() -> None:
    gc.enable()
    client = Client(PauseDuringHookCalls(_app([]), CollectionPause()))
    response = client.post("/cds-services/psychopharm-order-sign", data=b"{}")
    assert response.get_data() == b"{}"
    assert not gc.isenabled()
    del response
    assert gc.isenabled()


def test_the_service_pauses_collection_for_a_real_hook_call(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.enable()
    during: list[bool] = []
    original = hooks.run_hook

    def run_hook(*args: Any, **kwargs: Any) -> Any:
        during.append(gc.isenabled())
        return original(*args, **kwargs)

    monkeypatch.setattr(hooks, "run_hook", run_hook)
    body = json.loads((FIXTURES / "requests" / "patient-view-sandbox.json").read_text())
    response = client.post("/cds-services/psychopharm-patient-view", json=body)
    assert response.status_code == 200
    response.close()

    assert during == [False]
    assert gc.isenabled()
