"""Real input (issue 12): every patient of a Synthea Bulk export through the hook endpoint.

For each patient a patient-view request is built with prefetch from the export's lines (each
resource type in the prefetch key whose template searches it); the answer must be 200 with the
cards that ``patterns.engine.evaluate`` over ``map_record`` of the same data predicts, as the
backtest computes them. Mapping the export must not flood the data-quality summary with issues
about medications no pattern reads (the export is mostly lisinopril, metformin, chemotherapy).
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask

from cds_service.patterns.engine import evaluate
from cds_service.settings import Settings
from fhir_mappers import CodeLists, IngredientTable, map_record
from fhir_mappers.quality import merge_summaries, summarise_issues

DATA = Path(__file__).parents[1] / "fixtures" / "synthea-bulk-10"
AS_OF = datetime(2023, 3, 31, 12, 0, tzinfo=UTC)  # a week after the export's last encounter
PREFETCH_KEY = {
    "Patient": "patient",
    "MedicationRequest": "medications",
    "AllergyIntolerance": "allergies",
    "Encounter": "encounters",
}
EMPTY_KEYS = ("statements", "dispenses", "observations", "conditions")


def _patients() -> dict[str, list[dict[str, Any]]]:
    by_patient: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(DATA.glob("*.ndjson.gz")):
        with gzip.open(path, "rb") as handle:
            for line in handle:
                resource = orjson.loads(line)
                if resource["resourceType"] == "Patient":
                    pid = resource["id"]
                else:
                    subject = resource.get("subject") or resource.get("patient")
                    pid = subject["reference"].removeprefix("Patient/")
                by_patient[pid].append(resource)
    return dict(by_patient)


PATIENTS = _patients()


def _request(pid: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    bundles: dict[str, list[dict[str, Any]]] = defaultdict(list)
    patient: dict[str, Any] | None = None
    for resource in resources:
        if resource["resourceType"] == "Patient":
            patient = resource
        else:
            bundles[PREFETCH_KEY[resource["resourceType"]]].append(resource)
    prefetch: dict[str, Any] = {"patient": patient}
    for key in [*(k for k in PREFETCH_KEY.values() if k != "patient"), *EMPTY_KEYS]:
        prefetch[key] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(bundles[key]),
            "entry": [
                {"fullUrl": f"https://ehr.example.test/fhir/{r['resourceType']}/{r['id']}",
                 "resource": r, "search": {"mode": "match"}}
                for r in bundles[key]
            ],
        }
    return {
        "hook": "patient-view",
        "hookInstance": f"synthea-{pid}",
        "context": {"userId": "Practitioner/synthea-reviewer", "patientId": pid},
        "prefetch": prefetch,
    }


@pytest.fixture
def synthea_settings(make_settings: Callable[..., Settings]) -> Settings:
    # Every card the engine predicts is shown (no cap), so the answer can be compared whole.
    return make_settings({"service": {"max_cards": 6}})


@pytest.fixture
def synthea_app(synthea_settings: Settings) -> Iterator[Flask]:
    from cds_service.web.app import create_app

    app = create_app(synthea_settings, clock=lambda: AS_OF)
    app.testing = True
    yield app
    app.extensions["psychopharm"].close()


def test_the_export_has_every_patient() -> None:
    assert len(PATIENTS) == 13
    assert all(any(r["resourceType"] == "Patient" for r in rs) for rs in PATIENTS.values())


@pytest.mark.parametrize("pid", sorted(PATIENTS), ids=lambda pid: pid[:8])
def test_each_patient_gets_the_cards_the_backtest_predicts(
    pid: str, synthea_app: Flask, synthea_settings: Settings
) -> None:
    services = synthea_app.extensions["psychopharm"]
    resources = PATIENTS[pid]
    record = map_record(resources, services.table, codes=services.codes)
    predicted = {
        f.pattern_id
        for f in evaluate(record, (), synthea_settings.patterns, AS_OF.date(), "patient-view")
        if synthea_settings.patterns[f.pattern_id].mode == "active"
    }

    response = synthea_app.test_client().post(
        "/cds-services/psychopharm-patient-view", json=_request(pid, resources)
    )

    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    shown = {c["source"]["topic"]["code"] for c in response.get_json()["cards"]}
    assert shown == predicted


def test_the_export_maps_without_a_flood_of_issues(
    table: IngredientTable, codes: CodeLists
) -> None:
    summaries = [
        summarise_issues(map_record(resources, table, codes=codes).issues)
        for resources in PATIENTS.values()
    ]
    total = merge_summaries(summaries)
    # 1,745 orders (mostly lisinopril and chemotherapy, unitless doses): none is reported,
    # because medications no pattern reads are not mapped in detail.
    assert sum(total.values()) < 20, total
    assert not any(kind.startswith("MedicationRequest: dose") for kind in total)
