"""Alembic migrations: a fresh database reaches head with the schema the models describe."""

from __future__ import annotations

import re

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from cds_service.audit.migrate import MIGRATIONS_DIR, current_revision, head_revision
from cds_service.audit.models import Base
from cds_service.audit.store import SqlAuditStore
from tests.audit_support import storage

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
