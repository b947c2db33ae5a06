"""Alembic migrations: a fresh database reaches head with the schema the models describe."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table

from cds_service.storage.audit.chain import append_rows, verify_chain
from cds_service.storage.audit.database import locked_transaction
from cds_service.storage.audit.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    head_revision,
)
from cds_service.storage.audit.models import FEEDBACK, Base
from cds_service.storage.audit.store import (
    SqlAuditStore,
    card_values,
    feedback_content_hash,
    feedback_values,
)
from tests.audit_support import NOW, PATIENT_KEY, card, feedback, storage

pytest_plugins = ["tests.audit_support"]


def test_migrated_schema_matches_the_models(store: SqlAuditStore) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    assert diffs == []


def test_fresh_database_is_at_head_and_migrating_again_is_a_no_op(audit_url: str) -> None:
    first = SqlAuditStore(storage(audit_url))
    try:
        assert current_revision(first.engine) == head_revision()
        assert first.migrate() == head_revision()
    finally:
        first.close()
    second = SqlAuditStore(storage(audit_url))  # e.g. the next worker starting
    try:
        assert current_revision(second.engine) == head_revision()
    finally:
        second.close()


def test_store_without_migrate_leaves_the_database_alone(audit_url: str) -> None:
    store = SqlAuditStore(storage(audit_url), migrate=False)
    try:
        assert current_revision(store.engine) is None
    finally:
        store.close()


def test_migrations_are_named_by_intent() -> None:
    names = sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("*.py"))
    assert names[0] == "0001_create_audit_tables.py"
    assert all(re.fullmatch(r"\d{4}_[a-z0-9_]+\.py", name) for name in names)


def old_card_table(connection: Any) -> Table:
    """audit_card as the database has it before 0004 (reflected), hashed as it was then."""
    return Table("audit_card", MetaData(), autoload_with=connection)


def old_card_values(record: Any) -> dict[str, Any]:
    """A card row as services before migration 0004 wrote it (no data_quality column)."""
    values = card_values(record)
    del values["data_quality"]
    return values


def test_upgrading_an_existing_log_indexes_its_overrides(audit_url: str) -> None:
    """A site on revision 0001 with overridden cards keeps their suppression after 0002."""
    overridden, accepted = card(), card()
    old = SqlAuditStore(storage(audit_url), migrate=False)
    try:
        with old.engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0001")
        # What a 0001 service wrote: cards, then feedback, on the chain.
        with locked_transaction(old.engine) as connection:
            append_rows(connection, old_card_table(connection),
                        [old_card_values(overridden), old_card_values(accepted)])
            append_rows(connection, FEEDBACK, [
                feedback_values(item, feedback_content_hash(item))
                for item in (
                    feedback(overridden.card_uuid),
                    feedback(accepted.card_uuid, outcome="accepted", override_code=None,
                             override_display=None),
                )
            ])
        assert current_revision(old.engine) == "0001"
    finally:
        old.close()

    upgraded = SqlAuditStore(storage(audit_url))
    try:
        assert current_revision(upgraded.engine) == head_revision()
        assert upgraded.last_overrides(
            PATIENT_KEY, ["repeated-intolerance"], NOW - timedelta(days=30)
        ) == {"repeated-intolerance": frozenset(overridden.evidence_keys)}
        assert verify_chain(upgraded.engine).ok  # the chained rows are untouched
    finally:
        upgraded.close()


def test_upgrading_to_0004_keeps_the_chain_and_stores_data_quality(audit_url: str) -> None:
    """Rows chained before 0004 still verify after the column is added; new rows carry it."""
    before = card()
    old = SqlAuditStore(storage(audit_url), migrate=False)
    try:
        with old.engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0003")
        with locked_transaction(old.engine) as connection:
            append_rows(connection, old_card_table(connection), [old_card_values(before)])
    finally:
        old.close()

    upgraded = SqlAuditStore(storage(audit_url))
    try:
        quality = '{"issues": {"MedicationDispense: unparseable date": 2}}'
        upgraded.record_cards([replace(card(), data_quality=quality)])
        upgraded.flush()
        rows = list(upgraded.query_cards())
        assert [r["data_quality"] for r in rows] == [None, quality]
        assert verify_chain(upgraded.engine).ok
    finally:
        upgraded.close()
