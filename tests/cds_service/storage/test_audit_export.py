"""Audit exports: JSON lines, spreadsheet-safe CSV, and a FHIR R4 Bundle of AuditEvents."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle

from cds_service.storage.audit.export import FIELDS, export_rows
from cds_service.storage.audit.store import SqlAuditStore
from tests.audit_support import NOW, PATIENT_KEY, card, feedback

pytest_plugins = ["tests.audit_support"]

GENERATED_AT = datetime(2025, 3, 5, 8, 0, tzinfo=UTC)
RAW_PATIENT_ID = "example-7b1"  # what PATIENT_KEY was derived from; must never be exported


@pytest.fixture
def filled(store: SqlAuditStore) -> tuple[SqlAuditStore, list[str]]:
    cards = [
        card(),
        card(pattern="nonadherence", shown=False, disposition="silent"),
        card(time=NOW - timedelta(days=20), summary="=1+1 looks like a formula"),
    ]
    store.record_cards(cards)
    store.flush()
    store.record_feedback([feedback(cards[0].card_uuid, override_comment="-see note from 3 March")])
    return store, [c.card_uuid for c in cards]


def text_of(store: SqlAuditStore, fmt: str, **filters: object) -> str:
    return "".join(export_rows(store, fmt=fmt, generated_at=GENERATED_AT, **filters))  # type: ignore[arg-type]


def test_jsonl_has_one_object_per_card_with_its_outcome(
    filled: tuple[SqlAuditStore, list[str]],
) -> None:
    store, uuids = filled
    lines = text_of(store, "jsonl").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["card_uuid"] for r in rows] == uuids
    first = rows[0]
    required = {
        "time",
        "hook",
        "hook_instance",
        "service_id",
        "pattern",
        "card_uuid",
        "shown",
        "disposition",
        "summary",
        "outcome",
        "override_reason",
        "override_comment",
        "config_version",
        "patient_key",
    }
    assert required <= set(first)
    assert first["time"] == "2025-03-04T14:30:15.123456Z"
    assert first["outcome"] == "overridden"
    assert first["override_reason"] == "Already discussed with the patient"
    assert first["patient_key"] == PATIENT_KEY
    assert (rows[1]["shown"], rows[1]["disposition"], rows[1]["outcome"]) == (
        False,
        "silent",
        None,
    )
    assert RAW_PATIENT_ID not in "\n".join(lines)


def test_export_filters_by_time_and_pattern(filled: tuple[SqlAuditStore, list[str]]) -> None:
    store, uuids = filled
    recent = text_of(store, "jsonl", since=NOW - timedelta(days=1))
    assert [json.loads(line)["card_uuid"] for line in recent.splitlines()] == uuids[:2]
    older = text_of(store, "jsonl", until=NOW - timedelta(days=1))
    assert [json.loads(line)["card_uuid"] for line in older.splitlines()] == uuids[2:]
    silent = text_of(store, "jsonl", pattern="nonadherence")
    assert [json.loads(line)["card_uuid"] for line in silent.splitlines()] == [uuids[1]]


def test_csv_has_a_header_and_neutralises_formulas(
    filled: tuple[SqlAuditStore, list[str]],
) -> None:
    store, _ = filled
    reader = csv.DictReader(io.StringIO(text_of(store, "csv"), newline=""))
    assert tuple(reader.fieldnames or ()) == FIELDS
    rows = list(reader)
    assert len(rows) == 3
    assert rows[0]["override_comment"] == "'-see note from 3 March"
    assert rows[2]["summary"] == "'=1+1 looks like a formula"
    assert rows[0]["shown"] == "true"
    assert rows[1]["outcome"] == ""


def test_csv_of_an_empty_log_is_just_the_header(store: SqlAuditStore) -> None:
    assert text_of(store, "csv") == ",".join(FIELDS) + "\r\n"


def test_fhir_export_is_a_valid_r4_bundle_of_audit_events(
    filled: tuple[SqlAuditStore, list[str]],
) -> None:
    store, uuids = filled
    document = json.loads(text_of(store, "fhir"))
    bundle = Bundle.model_validate(document)
    assert bundle.type == "collection"
    events = [entry.resource for entry in bundle.entry or []]
    assert [e.get_resource_type() for e in events] == ["AuditEvent"] * 3

    first = document["entry"][0]["resource"]
    assert first["type"]["code"] == "110112"
    assert first["subtype"][0]["code"] == "order-sign"
    patient, card_entity = first["entity"]
    assert patient["what"]["identifier"]["value"] == PATIENT_KEY
    assert patient["role"]["code"] == "1"
    assert card_entity["what"]["identifier"]["value"] == uuids[0]
    details = {d["type"]: d["valueString"] for d in card_entity["detail"]}
    assert details["pattern"] == "repeated-intolerance"
    assert details["outcome"] == "overridden"
    assert details["overrideReason"] == "Already discussed with the patient"
    assert RAW_PATIENT_ID not in json.dumps(document)


def test_fhir_export_of_an_empty_log_is_a_valid_empty_bundle(store: SqlAuditStore) -> None:
    document = json.loads(text_of(store, "fhir"))
    assert "entry" not in document  # FHIR JSON has no empty arrays
    assert Bundle.model_validate(document).type == "collection"


def test_unknown_format_is_rejected(store: SqlAuditStore) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        text_of(store, "xml")
