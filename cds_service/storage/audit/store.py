"""``SqlAuditStore``: the AuditStore on SQLite (default, zero setup) or PostgreSQL.

Card rows go through a bounded in-memory queue to one background writer thread (the hook call
never waits for the database); feedback is written synchronously and idempotently. Both are
appended to the hash chain under the chain lock. The store brings the schema to Alembic ``head``
when it is constructed (``migrate=False`` skips that, e.g. for a read-only tool). There are no
update or delete methods: the log is append-only.

Create the store in the process that uses it (gunicorn ``load()`` runs in each worker): the
writer thread and the connection pool do not survive a fork.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import SQLAlchemyError

from cds_service.settings import StorageSettings
from cds_service.storage.audit import queries
from cds_service.storage.audit.chain import append_rows, canonical_json
from cds_service.storage.audit.database import create_audit_engine, locked_transaction
from cds_service.storage.audit.migrate import upgrade_head
from cds_service.storage.audit.models import CARD, FEEDBACK
from cds_service.storage.audit.records import CardRecord, FeedbackRecord
from cds_service.storage.audit.writer import BatchWriter, describe_error

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 10.0  # within gunicorn's graceful_timeout


def card_values(record: CardRecord) -> dict[str, Any]:
    """The ``audit_card`` column values of ``record`` (tuples as JSON lists), without seq/hash."""
    return {
        "time": record.time,
        "hook": record.hook,
        "hook_instance": record.hook_instance,
        "service_id": record.service_id,
        "pattern": record.pattern,
        "card_uuid": record.card_uuid,
        "shown": bool(record.shown),
        "disposition": record.disposition,
        "summary": record.summary,
        "indicator": record.indicator,
        "evidence_refs": json.dumps(list(record.evidence_refs)),
        "evidence_keys": json.dumps(list(record.evidence_keys)),
        "suggestion_uuids": json.dumps(list(record.suggestion_uuids)),
        "config_version": record.config_version,
        "patient_key": record.patient_key,
        "practitioner": record.practitioner,
        # An int would hash as "12" before the insert and "12.0" after the read.
        "latency_ms": float(record.latency_ms),
        "card_json": record.card_json,
        "data_quality": record.data_quality,
    }


def feedback_content_hash(item: FeedbackRecord) -> str:
    """What makes two reports the same feedback: card, outcome, its time, suggestions, reason.

    The time it was received is left out, so an EHR that retries is stored once.
    """
    identity = {
        "card_uuid": item.card_uuid,
        "service_id": item.service_id,
        "outcome": item.outcome,
        "outcome_time": item.outcome_time,
        "accepted_suggestions": sorted(item.accepted_suggestions),
        "override": [
            item.override_system,
            item.override_code,
            item.override_display,
            item.override_comment,
        ],
    }
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()


def feedback_values(item: FeedbackRecord, content_hash: str) -> dict[str, Any]:
    """The ``audit_feedback`` column values of ``item``, without seq/hash."""
    return {
        "content_hash": content_hash,
        "card_uuid": item.card_uuid,
        "service_id": item.service_id,
        "outcome": item.outcome,
        "accepted_suggestions": json.dumps(list(item.accepted_suggestions)),
        "override_code": item.override_code,
        "override_system": item.override_system,
        "override_display": item.override_display,
        "override_comment": item.override_comment,
        "outcome_time": item.outcome_time,
        "received_time": item.received_time,
    }


class SqlAuditStore:
    """The ``AuditStore`` on the database at ``settings.url`` (see the module docstring).

    ``settings.queue_size`` bounds the card queue (rows), ``settings.flush_interval_s`` is the
    writer's longest wait (seconds) before writing what is queued; ``close_timeout_s`` bounds the
    final flush. With ``migrate`` the constructor brings the schema to head, and raises
    ``sqlalchemy.exc.SQLAlchemyError`` when the database cannot be reached or migrated.
    """

    def __init__(
        self,
        settings: StorageSettings,
        *,
        migrate: bool = True,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
    ) -> None:
        self._engine = create_audit_engine(settings.url)
        self._closed = False
        self._close_timeout_s = close_timeout_s
        self._writer: BatchWriter[CardRecord] = BatchWriter(
            self._write_cards,
            capacity=settings.queue_size,
            flush_interval_s=settings.flush_interval_s,
        )
        if migrate:
            self.migrate()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for read-side queries, exports and ``verify_chain``)."""
        return self._engine

    def migrate(self) -> str:
        """Bring the schema to Alembic head (safe to call concurrently); returns the revision."""
        return upgrade_head(self._engine)

    def record_cards(self, rows: Sequence[CardRecord]) -> None:
        """Queue card rows for the writer thread; never blocks on the database, never raises.

        Rows beyond the queue's capacity are dropped, counted in ``stats()`` and logged.
        """
        self._writer.submit(rows)

    def _write_cards(self, records: list[CardRecord]) -> None:
        values = [card_values(r) for r in records]
        with locked_transaction(self._engine) as connection:
            append_rows(connection, CARD, values)
            # Feedback can arrive before its card leaves this queue (another worker took it).
            queries.index_overrides(
                connection, CARD.c.seq.between(values[0]["seq"], values[-1]["seq"])
            )

    def record_feedback(self, items: Sequence[FeedbackRecord]) -> int:
        """Append the items not stored before (same ``feedback_content_hash``), in one locked
        transaction; returns how many were new.

        Raises ``sqlalchemy.exc.SQLAlchemyError`` when the database cannot be written (nothing is
        stored; the EHR may retry).
        """
        fresh: dict[str, FeedbackRecord] = {}
        for item in items:
            fresh.setdefault(feedback_content_hash(item), item)
        if not fresh:
            return 0
        with locked_transaction(self._engine) as connection:
            # Read under the chain lock: no other process can insert the same report meanwhile.
            stored = set(
                connection.scalars(
                    select(FEEDBACK.c.content_hash).where(FEEDBACK.c.content_hash.in_(fresh))
                )
            )
            rows = [feedback_values(i, h) for h, i in fresh.items() if h not in stored]
            append_rows(connection, FEEDBACK, rows)
            if any(row["outcome"] == "overridden" for row in rows):
                queries.index_overrides(
                    connection, FEEDBACK.c.seq.between(rows[0]["seq"], rows[-1]["seq"])
                )
        return len(rows)

    def last_overrides(
        self, patient_key: str, patterns: Collection[str], since: datetime
    ) -> Mapping[str, frozenset[str]]:
        """Evidence keys of the latest overridden card per pattern (``queries.last_overrides``);
        ``{}`` with a logged warning when the database cannot be read."""
        try:
            return queries.last_overrides(self._engine, patient_key, patterns, since)
        except SQLAlchemyError as exc:
            # The hook call must still answer while the database is down: without the override
            # history the card is shown again (repeated advice beats silently missing advice).
            log.warning(
                "override history unavailable, suppression skipped: %s", describe_error(exc)
            )
            return {}

    def query_cards(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        pattern: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Card rows in log order, each with its latest feedback (see ``queries.query_cards``)."""
        return queries.query_cards(
            self._engine, since=since, until=until, pattern=pattern, limit=limit
        )

    def weekly_stats(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        pattern: str | None = None,
    ) -> list[dict[str, Any]]:
        """Weekly counts per pattern (see ``queries.weekly_stats``)."""
        return queries.weekly_stats(self._engine, since=since, until=until, pattern=pattern)

    def ping(self) -> bool:
        """True when ``SELECT 1`` succeeds; False (and a logged warning) otherwise."""
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log.warning("audit database not reachable: %s", describe_error(exc))
            return False
        return True

    def stats(self) -> dict[str, Any]:
        """The writer's counters: queued (waiting now), accepted, written, dropped, write_errors
        (row counts since start) and last_error (an error class name, or None)."""
        return self._writer.stats()

    def flush(self, timeout_s: float = 5.0) -> None:
        """Wait up to ``timeout_s`` seconds until queued cards are written; logs on timeout."""
        if not self._writer.flush(timeout_s):
            log.warning("audit flush timed out after %.1f s: %s", timeout_s, self.stats())

    def close(self) -> None:
        """Flush (up to ``close_timeout_s``), stop the writer and dispose the pool; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._writer.close(self._close_timeout_s)
        self._engine.dispose()
