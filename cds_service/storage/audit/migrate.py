"""Alembic, configured in code: the store brings its database to ``head`` on start.

There is no alembic.ini to keep in step with the settings; the URL comes from ``StorageSettings``
and the connection is handed to ``migrations/env.py`` through ``Config.attributes``. The upgrade
runs under the migration lock, so that several workers starting at once migrate exactly once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from cds_service.storage.audit.database import MIGRATION_LOCK_KEY, locked_transaction

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for our migrations folder, carrying ``connection`` (if any) for
    ``migrations/env.py`` to run on."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision id in the migrations folder; ``RuntimeError`` if there is none."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None before the first migration.

    Raises ``sqlalchemy.exc.SQLAlchemyError`` when the database cannot be reached.
    """
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_head(engine: Engine) -> str:
    """Apply every migration not yet applied; returns the revision the database is now at.

    Runs under ``MIGRATION_LOCK_KEY``, so concurrent callers migrate once. Raises
    ``sqlalchemy.exc.SQLAlchemyError`` when the database cannot be reached or a migration fails
    (its transaction rolls back).
    """
    with locked_transaction(engine, MIGRATION_LOCK_KEY) as connection:
        command.upgrade(alembic_config(connection), "head")
    return head_revision()
