"""Audit tables: card rows, feedback rows, the head of the hash chain, and an override index;
plus the shared short-lived keys (``shared_ttl_key``) that live in the same database.

Rows and wire shapes are separate: ``records.CardRecord`` is what the service hands over, these are
what is stored. Every card and feedback row carries ``seq`` (one sequence shared by both tables)
and ``row_hash``, which links it to the row before it (see ``chain``). Nothing here updates or
deletes a row: the log is append-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back tz-aware UTC.

    SQLite has no time zone type and returns naive values; storing UTC and re-attaching it on
    read keeps hashes and comparisons identical on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """To UTC (naive on SQLite); ``ValueError`` for a naive datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("audit timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Tz-aware UTC, whatever the database returned."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """The audit tables' metadata (Alembic's ``target_metadata``)."""


class CardRow(Base):
    """One card the service built, shown or not (``records.CardRecord`` as stored).

    Tuples are stored as JSON lists, ``time`` as tz-aware UTC, ``latency_ms`` in milliseconds;
    ``seq`` and ``row_hash`` place the row on the hash chain.
    """

    __tablename__ = "audit_card"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    hook: Mapped[str] = mapped_column(String(64))
    hook_instance: Mapped[str] = mapped_column(String(128))
    service_id: Mapped[str] = mapped_column(String(128))
    pattern: Mapped[str] = mapped_column(String(64))
    card_uuid: Mapped[str] = mapped_column(String(64))
    shown: Mapped[bool] = mapped_column(Boolean)
    disposition: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    indicator: Mapped[str] = mapped_column(String(16))
    evidence_refs: Mapped[str] = mapped_column(Text)  # JSON list
    evidence_keys: Mapped[str] = mapped_column(Text)  # JSON list
    suggestion_uuids: Mapped[str] = mapped_column(Text)  # JSON list
    config_version: Mapped[str] = mapped_column(String(64))
    patient_key: Mapped[str] = mapped_column(String(64))
    practitioner: Mapped[str | None] = mapped_column(String(256))
    latency_ms: Mapped[float] = mapped_column(Float)
    card_json: Mapped[str] = mapped_column(Text)
    # The call's data-quality summary (JSON), migration 0004; NULL on rows written before it.
    data_quality: Mapped[str | None] = mapped_column(Text, nullable=True)
    row_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_card_card_uuid", "card_uuid"),
        Index("ix_audit_card_time", "time"),
        Index("ix_audit_card_patient_pattern", "patient_key", "pattern", "time"),
    )


class FeedbackRow(Base):
    """One feedback item from the EHR (``records.FeedbackRecord`` as stored), unique by content.

    ``outcome_time`` is when the user acted (EHR clock), ``received_time`` when it arrived here.
    """

    __tablename__ = "audit_feedback"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # sha256 of what makes two reports "the same feedback" (see store.feedback_content_hash).
    content_hash: Mapped[str] = mapped_column(String(64))
    card_uuid: Mapped[str] = mapped_column(String(64))
    service_id: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(32))
    accepted_suggestions: Mapped[str] = mapped_column(Text)  # JSON list
    override_code: Mapped[str | None] = mapped_column(String(128))
    override_system: Mapped[str | None] = mapped_column(String(256))
    override_display: Mapped[str | None] = mapped_column(Text)
    override_comment: Mapped[str | None] = mapped_column(Text)
    outcome_time: Mapped[datetime] = mapped_column(UTCDateTime())
    received_time: Mapped[datetime] = mapped_column(UTCDateTime())
    row_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("content_hash", name="uq_audit_feedback_content_hash"),
        Index("ix_audit_feedback_card_uuid", "card_uuid"),
    )


class OverrideRow(Base):
    """One row per (override feedback, its card): who the card was about, for suppression.

    Derived from the two chained tables, not part of the chain: it lets the hook path find a
    patient's recent overrides without reading every card ever shown to that patient. Written in
    the same locked transaction as whichever of the pair arrives second (``store``), and rebuilt
    from the chained tables by migration 0002.
    """

    __tablename__ = "audit_override"

    feedback_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    card_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    patient_key: Mapped[str] = mapped_column(String(64))
    pattern: Mapped[str] = mapped_column(String(64))
    evidence_keys: Mapped[str] = mapped_column(Text)  # JSON list, as on the card row
    outcome_time: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_audit_override_patient_time", "patient_key", "outcome_time"),)


class ChainHead(Base):
    """One row (id 1): the last sequence number and hash, so that deleting the newest rows shows."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    row_hash: Mapped[str] = mapped_column(String(64))


class SharedKeyRow(Base):
    """A key that expires: JWT ``jti`` replay and select->sign dedup (``storage.ttl_store``).

    Not audit data and not chained: rows are inserted atomically (one wins a race) and expired
    rows are deleted. It lives in the audit database so that every worker of a host (SQLite) or
    every host (PostgreSQL) shares it when no Redis is configured.
    """

    __tablename__ = "shared_ttl_key"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch (wall clock)

    __table_args__ = (Index("ix_shared_ttl_key_expires_at", "expires_at"),)


# Declared as FromClause on the ORM class; these are plain Tables for Core statements.
CARD = cast(Table, CardRow.__table__)
FEEDBACK = cast(Table, FeedbackRow.__table__)
CHAIN_HEAD = cast(Table, ChainHead.__table__)
OVERRIDE = cast(Table, OverrideRow.__table__)
SHARED_KEY = cast(Table, SharedKeyRow.__table__)


def max_lengths(table: Table) -> dict[str, int]:
    """Column key -> the most characters its bounded string column holds (``String(n)``), for
    every such column of ``table``; ``Text`` columns are unbounded and left out.

    Inputs are checked against these before they reach a row: PostgreSQL refuses a longer value
    (the whole insert fails), while SQLite would store it.
    """
    return {
        column.key: column.type.length
        for column in table.columns
        if isinstance(column.type, String) and column.type.length is not None
    }


def row_content(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed content of a row: every column except the hash itself, plus the table name,
    so that a row moved between tables does not verify."""
    content: dict[str, Any] = {"table": table.name}
    for column in table.columns:
        if column.key == "row_hash":
            continue
        if column.key in _ADDED_LATER and values.get(column.key) is None:
            # Rows written before the column existed were hashed without it: leaving a NULL
            # out keeps their hashes (and the chain) valid after the migration.
            continue
        content[column.key] = values[column.key]
    return content


# Columns added by a migration after rows were chained (nullable, hashed only when set).
_ADDED_LATER = frozenset({"data_quality"})
