"""Row shapes for the audit log and the store's interface. No SQLAlchemy here."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


def pseudonymize(raw_id: str, secret: str) -> str:
    """Keyed hash of a patient or practitioner id: stable per site, useless without the secret.

    HMAC-SHA256 of ``raw_id`` under ``secret`` (``storage.patient_key_secret``), as the first 32
    hex characters (128 bits).
    """
    digest = hmac.new(secret.encode(), raw_id.encode(), hashlib.sha256).hexdigest()
    return digest[:32]


# The disposition of a row that is not a card: a pattern that could not judge this patient
# (``patterns.abstention.NotEvaluable``); its summary says why.
NOT_EVALUABLE = "not-evaluable"


@dataclass(frozen=True, slots=True)
class CardRecord:
    """One card as the pipeline hands it to the audit log, shown or not (one per pattern per
    call). ``latency_ms``: milliseconds ``pipeline.run_hook`` took until the cards were built
    (reading and parsing the body not included)."""

    time: datetime  # tz-aware UTC
    hook: str
    hook_instance: str
    service_id: str
    pattern: str
    card_uuid: str
    shown: bool  # True only for cards returned to the EHR
    summary: str
    indicator: str
    evidence_refs: tuple[str, ...]  # FHIR references the card cites
    evidence_keys: tuple[str, ...]  # the Finding's evidence_keys, for suppression
    suggestion_uuids: tuple[str, ...]
    config_version: str
    patient_key: str  # pseudonymize(patient id); never the raw id
    practitioner: str | None  # context.userId, e.g. "Practitioner/123"
    latency_ms: float
    card_json: str = ""  # the card as sent (or as it would have been sent, when not shown)
    # Why a card was or was not shown: "shown", "silent" (pattern in silent mode), "suppressed"
    # (overridden before, same evidence), "deduplicated" (shown at order-select already),
    # "capped" (beyond max_cards); NOT_EVALUABLE for a pattern that could not judge the patient.
    disposition: str = "shown"
    # The call's data-quality summary as JSON: {"issues": {kind: count}, "not_evaluable":
    # {pattern: reason}} (pipeline.data_quality); the same on every row of one call.
    data_quality: str | None = None


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """One item of a CDS Hooks feedback call (``feedback[]``), as stored.

    The override fields come from ``overrideReason.reason`` (a Coding: code, system, display) and
    ``overrideReason.userComment``; both times are tz-aware UTC.
    """

    card_uuid: str
    service_id: str
    outcome: str  # "accepted" | "overridden"
    accepted_suggestions: tuple[str, ...]
    override_code: str | None
    override_system: str | None
    override_display: str | None
    override_comment: str | None
    outcome_time: datetime
    received_time: datetime


class AuditStore(Protocol):
    """What the pipeline and the web edge need of the audit log (``SqlAuditStore`` in service)."""

    def record_cards(self, rows: Sequence[CardRecord]) -> None:
        """Enqueue card rows; must not block the hook call for more than a few ms."""

    def record_feedback(self, items: Sequence[FeedbackRecord]) -> int:
        """Store feedback synchronously and idempotently; returns the number of new rows."""

    def last_overrides(
        self, patient_key: str, patterns: Collection[str], since: datetime
    ) -> Mapping[str, frozenset[str]]:
        """For each of ``patterns`` overridden for this patient since ``since``: the evidence keys
        of the latest overridden card. Patterns without an override are absent. Must not raise
        when the database is unreachable (return {}: the cards are then shown again)."""

    def ping(self) -> bool:
        """True when the database answers (readiness probe)."""

    def flush(self, timeout_s: float = 5.0) -> None:
        """Write everything queued so far."""

    def close(self) -> None:
        """Flush and release connections (called on clean shutdown)."""
