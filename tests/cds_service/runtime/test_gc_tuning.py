"""A worker's collector settings keep collections out of hook calls: a long record's parsed body
and mapped record are freed by reference counting, never traversed by a young collection."""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from cds_service.runtime.gc_tuning import tune_for_worker
from cds_service.synthetic.population import generate_patient, make_hook_request


@pytest.fixture
def tuned() -> Iterator[list[int]]:
    """The worker settings, and the generations of the collections that ran meanwhile."""
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    collections: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.enable()
    tune_for_worker()
    gc.callbacks.append(count)
    yield collections
    gc.callbacks.remove(count)
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    (gc.enable if enabled else gc.disable)()


def test_a_long_record_is_answered_without_a_collection(client: Any, tuned: list[int]) -> None:
    bundle = generate_patient(random.Random(3), date.today(), "multiple_failed_trials",
                              patient_id="gc-p1", history_years=6, n_resources=3000)
    body = make_hook_request(bundle, "patient-view")
    client.post("/cds-services/psychopharm-patient-view", json=body).close()  # warm-up
    gc.collect()
    tuned.clear()

    for _ in range(3):
        response = client.post("/cds-services/psychopharm-patient-view", json=body)
        assert response.status_code == 200
        response.close()

    assert tuned == []


def test_with_the_interpreter_defaults_the_same_calls_collect_many_times(
    client: Any, tuned: list[int]
) -> None:
    # The test above is not vacuous: the default young threshold (700) would collect here.
    bundle = generate_patient(random.Random(3), date.today(), "multiple_failed_trials",
                              patient_id="gc-p1", history_years=6, n_resources=3000)
    body = make_hook_request(bundle, "patient-view")
    gc.set_threshold(700, 10, 10)
    tuned.clear()
    client.post("/cds-services/psychopharm-patient-view", json=body).close()

    assert len(tuned) > 10
