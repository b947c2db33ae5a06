"""Exports of the audit log for auditors and quality review: JSON lines, CSV or a FHIR Bundle.

Rows never carry the raw patient id, only the pseudonymous key. The FHIR form is a Bundle of type
``collection`` with one R4 AuditEvent per card row:

- ``type`` = DICOM ``110112`` "Query": the EHR asked the service about a patient's record and the
  service answered (the closest DICOM audit event for a CDS Hooks call; ``subtype`` names the hook);
- ``action`` = ``E`` (execute), ``outcome`` = ``0`` (the call succeeded; whether the card was shown
  is in the entity detail, not a failure);
- ``agent``: the requesting user (``context.userId``) and this service;
- ``entity``: the patient, by pseudonymous key only (role 1 Patient), and the card (role 4 Domain
  Resource) with the pattern, disposition, feedback outcome and override reason as details.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

Format = Literal["jsonl", "csv", "fhir"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "fhir")

FIELDS = (
    "time",
    "hook",
    "hook_instance",
    "service_id",
    "pattern",
    "card_uuid",
    "shown",
    "disposition",
    "indicator",
    "summary",
    "outcome",
    "outcome_time",
    "override_code",
    "override_reason",
    "override_comment",
    "config_version",
    "patient_key",
    "practitioner",
    "latency_ms",
    "data_quality",
)

PATIENT_KEY_SYSTEM = "urn:psychopharm-cds:patient-key"
CARD_ID_SYSTEM = "urn:psychopharm-cds:card-uuid"
HOOK_SYSTEM = "https://cds-hooks.org/hooks"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
SERVICE_NAME = "psychopharm-cds"

# A spreadsheet treats a cell starting with these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class CardSource(Protocol):
    """Where exports read card rows from (``SqlAuditStore`` in the service)."""

    def query_cards(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        pattern: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Card rows in log order with their latest feedback (as ``queries.query_cards``)."""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def export_record(card: dict[str, Any]) -> dict[str, Any]:
    """One card row as exported: the ``FIELDS`` (missing ones None), times as ISO 8601 UTC ``Z``.

    ``card`` is a row dict from ``query_cards``; ``card["time"]`` must be a tz-aware datetime.
    """
    record = {name: card.get(name) for name in FIELDS}
    record["time"] = _iso(card["time"])
    record["outcome_time"] = _iso(card.get("outcome_time"))
    return record


def spreadsheet_safe(value: Any) -> str:
    """One CSV cell: None as "", booleans as true/false, and a leading ``'`` on text that a
    spreadsheet would run as a formula (starting with = + - @, tab or CR: CSV injection)."""
    if value is None:
        return ""
    text = "true" if value is True else "false" if value is False else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


def _detail(kind: str, value: Any) -> dict[str, str] | None:
    if value is None or value == "":
        return None
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return {"type": kind, "valueString": text}


def _event_id(card_uuid: str) -> str:
    """The card uuid itself when it is one (so fullUrl is a valid urn:uuid), else derived."""
    try:
        return str(uuid.UUID(card_uuid))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, card_uuid))


def audit_event(card: dict[str, Any]) -> dict[str, Any]:
    """The R4 AuditEvent for one card row (see the module docstring for the codes).

    ``card`` is a row dict from ``query_cards``; ``card_uuid``, ``hook``, ``time``,
    ``service_id``, ``patient_key``, ``pattern`` and ``summary`` are required (``KeyError``
    otherwise). ``AuditEvent.id`` is the card uuid when it is one, else a uuid5 of it.
    """
    card_uuid = str(card["card_uuid"])
    event_id = _event_id(card_uuid)
    practitioner = card.get("practitioner")
    requestor: dict[str, Any] = (
        {"reference": practitioner} if practitioner else {"display": "EHR user (not given)"}
    )
    details = [
        _detail(kind, card.get(key))
        for kind, key in (
            ("pattern", "pattern"),
            ("shown", "shown"),
            ("disposition", "disposition"),
            ("hookInstance", "hook_instance"),
            ("configVersion", "config_version"),
            ("outcome", "outcome"),
            ("overrideReason", "override_reason"),
            ("overrideComment", "override_comment"),
        )
    ]
    return {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": {"system": DCM, "code": "110112", "display": "Query"},
        "subtype": [{"system": HOOK_SYSTEM, "code": card["hook"]}],
        "action": "E",
        "recorded": _iso(card["time"]),
        "outcome": "0",
        "agent": [
            {"who": requestor, "requestor": True},
            {"who": {"display": f"{SERVICE_NAME} {card['service_id']}"}, "requestor": False},
        ],
        "source": {
            "site": card["service_id"],
            "observer": {"display": SERVICE_NAME},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": [
            {
                "what": {
                    "identifier": {"system": PATIENT_KEY_SYSTEM, "value": card["patient_key"]}
                },
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            },
            {
                "what": {"identifier": {"system": CARD_ID_SYSTEM, "value": card_uuid}},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
                "name": card["pattern"],
                "description": card["summary"],
                "detail": [d for d in details if d is not None],
            },
        ],
    }


def _fhir_bundle(cards: Iterator[dict[str, Any]], generated_at: datetime) -> Iterator[str]:
    # Streamed in pieces so a year of rows never sits in memory as one document.
    head = {"resourceType": "Bundle", "type": "collection", "timestamp": _iso(generated_at)}
    yield json.dumps(head)[:-1]
    count = 0
    for card in cards:
        event = audit_event(card)
        entry = {"fullUrl": f"urn:uuid:{event['id']}", "resource": event}
        # FHIR JSON allows no empty arrays: "entry" opens with the first event.
        yield (', "entry": [' if count == 0 else ",") + "\n" + json.dumps(entry)
        count += 1
    yield ("\n]" if count else "") + "}\n"


def export_rows(
    store: CardSource,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    pattern: str | None = None,
    fmt: Format = "jsonl",
    generated_at: datetime | None = None,
) -> Iterator[str]:
    """The card rows between ``since`` (inclusive) and ``until`` (exclusive) as text chunks to
    write out in order: one line per row for jsonl and csv (with a header, CRLF line ends), or one
    ``collection`` Bundle of AuditEvents for fhir, stamped ``generated_at`` (default: now, UTC).

    Raises ``ValueError`` for a format not in ``FORMATS`` (when iteration starts), and whatever
    ``store.query_cards`` raises (``sqlalchemy.exc.SQLAlchemyError`` for the SQL store).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {list(FORMATS)}")
    cards = store.query_cards(since=since, until=until, pattern=pattern)
    if fmt == "fhir":
        yield from _fhir_bundle(cards, generated_at or datetime.now(UTC))
    elif fmt == "csv":
        yield _csv_line(list(FIELDS))
        for card in cards:
            record = export_record(card)
            yield _csv_line([spreadsheet_safe(record[name]) for name in FIELDS])
    else:
        for card in cards:
            yield json.dumps(export_record(card), ensure_ascii=False) + "\n"
