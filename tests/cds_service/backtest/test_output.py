"""``--output``: one Parquet row per finding, by the site's pseudonymous patient key, with the
prescriber and organization of the patient's latest psychotropic order."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from distributed import Client

from cds_service.backtest.run import run_backtest
from cds_service.backtest.worker import FINDINGS_SCHEMA, latest_order_names
from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.settings import load_settings
from cds_service.storage.audit.records import pseudonymize
from fhir_mappers.mapper import map_record
from tests.cds_service.backtest.conftest import AS_OF

SECRET = "site-secret-for-tests-0123456789"


@pytest.fixture(scope="module")
def written(
    population: tuple[Path, dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
    dask_client: Client,
) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    directory, manifest = population
    out = tmp_path_factory.mktemp("findings")
    (out / "part-00099.parquet").write_bytes(b"left over from an earlier run")
    settings = load_settings(
        overrides={
            "storage": {"patient_key_secret": SECRET},
            "patterns": {"nonadherence": {"mode": "silent"}},
        }
    )
    result = run_backtest(directory, settings, AS_OF, dask_client, output=str(out), strict=True)
    table = pq.read_table(out)
    return result, table.to_pylist(), {"dir": out, "manifest": manifest, "schema": table.schema}


def test_one_row_per_finding_keyed_by_the_site_hmac_never_the_raw_id(
    written: tuple[Any, list[dict[str, Any]], dict[str, Any]],
) -> None:
    result, rows, extra = written
    manifest = extra["manifest"]
    expected = {
        (pseudonymize(p["patient"], SECRET), pattern)
        for p in manifest["patient_archetypes"]
        for pattern in p["expected"]
    }
    assert {(r["patient_key"], r["pattern"]) for r in rows} == expected
    assert len(rows) == len(expected) == result.findings_written
    raw_ids = {p["patient"] for p in manifest["patient_archetypes"]}
    assert not any(raw in text for raw in raw_ids for text in _all_text(extra["dir"]))
    assert extra["schema"].remove_metadata() == FINDINGS_SCHEMA


def test_rows_carry_mode_facts_and_the_prescriber(
    written: tuple[Any, list[dict[str, Any]], dict[str, Any]],
) -> None:
    _, rows, _ = written
    modes = {r["pattern"]: r["mode"] for r in rows}
    assert modes["nonadherence"] == "silent" and modes["repeated-intolerance"] == "active"
    for row in rows:
        facts = orjson.loads(row["facts"])
        assert isinstance(facts, dict) and facts, row["pattern"]
        # The synthetic generator names one prescriber on every order, and no organization.
        assert row["practitioner"] == "Practitioner/synthetic-prescriber-1"
        assert row["organization"] is None
        assert isinstance(row["order_date"], date) and row["order_date"] <= AS_OF
    polypharmacy = [r for r in rows if r["pattern"] == "psychotropic-polypharmacy"]
    assert all(orjson.loads(r["facts"])["psychotropic_count"] >= 2 for r in polypharmacy)


def test_earlier_part_files_are_replaced(
    written: tuple[Any, list[dict[str, Any]], dict[str, Any]],
) -> None:
    _, _, extra = written
    assert not (extra["dir"] / "part-00099.parquet").exists()


def _all_text(directory: Path) -> list[str]:
    return [p.read_bytes().decode("latin-1") for p in directory.glob("*.parquet")]


def _order(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "312938",
                    "display": "sertraline 50 MG Oral Tablet",
                }
            ],
            "text": "sertraline 50 MG Oral Tablet",
        },
        **fields,
    }


METFORMIN = {
    "coding": [
        {
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "861007",
            "display": "metformin hydrochloride 500 MG Oral Tablet",
        }
    ]
}


@pytest.mark.parametrize(
    ("orders", "expected"),
    [
        pytest.param(
            [
                _order(id="old", authoredOn="2025-01-10",
                       requester={"reference": "Practitioner/dr-old"}),
                _order(id="new", authoredOn="2026-03-02",
                       requester={"reference": "Practitioner/dr-new"},
                       performer={"reference": "Organization/clinic-north"}),
            ],
            ("Practitioner/dr-new", "Organization/clinic-north", date(2026, 3, 2)),
            id="latest-order-requester-and-performer-organization",
        ),
        pytest.param(
            [
                _order(id="ssri", authoredOn="2026-01-05",
                       requester={"reference": "PractitionerRole/psych-1"}),
                _order(id="met", authoredOn="2026-05-01", medicationCodeableConcept=METFORMIN,
                       requester={"reference": "Practitioner/gp-1"}),
            ],
            ("PractitionerRole/psych-1", None, date(2026, 1, 5)),
            id="a-later-non-psychotropic-order-does-not-count",
        ),
        pytest.param(
            [
                _order(id="r1", authoredOn="2026-02-01",
                       contained=[{"resourceType": "PractitionerRole", "id": "role",
                                   "practitioner": {"reference": "Practitioner/dr-c"},
                                   "organization": {"reference": "Organization/clinic-south"}}],
                       requester={"reference": "#role"}),
            ],
            ("#role", "Organization/clinic-south", date(2026, 2, 1)),
            id="contained-practitioner-role-names-the-organization",
        ),
        pytest.param(
            [
                _order(id="r2", authoredOn="2026-02-01",
                       requester={"reference": "Organization/clinic-east"}),
            ],
            (None, "Organization/clinic-east", date(2026, 2, 1)),
            id="organization-as-requester",
        ),
        pytest.param(
            [
                _order(id="r3", authoredOn="2026-02-01", requester={
                    "reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999974394",
                    "display": "Dr. Olevia458 Hermiston71"}),
            ],
            ("Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999974394", None,
             date(2026, 2, 1)),
            id="synthea-conditional-reference",
        ),
        pytest.param(
            [_order(id="r4", authoredOn="2026-02-01")],
            (None, None, date(2026, 2, 1)),
            id="no-requester",
        ),
        pytest.param([], (None, None, None), id="no-orders"),
    ],
)
def test_latest_order_names(orders: list[dict[str, Any]], expected: tuple[Any, ...]) -> None:
    patient = {"resourceType": "Patient", "id": "p1"}
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in [patient, *orders]]}
    record = map_record([bundle], load_ingredient_table(), codes=load_code_lists())
    assert latest_order_names(record, [bundle]) == expected
    # The same resources as NDJSON lines (not in a Bundle) name the same.
    assert latest_order_names(map_record([patient, *orders], load_ingredient_table(),
                                         codes=load_code_lists()),
                              [patient, *orders]) == expected


def test_output_without_findings_still_writes_readable_files(
    tmp_path: Path, dask_client: Client
) -> None:
    source = Path(__file__).parents[2] / "fixtures" / "synthea-bulk-5"
    out = tmp_path / "out"
    result = run_backtest(source, load_settings(), AS_OF, dask_client, output=str(out))
    assert result.document["patients"] == 5 and result.findings_written == 0
    assert pq.read_table(out).num_rows == 0
    assert json.dumps(result.document)  # the report is unchanged by --output
