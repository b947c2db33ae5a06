"""Alembic environment: metadata from the audit models, connection passed in by the caller.

``cds_service.storage.audit.migrate`` hands over an open connection (inside the migration lock)
through ``config.attributes["connection"]``. Running ``alembic`` by hand for a new revision works
with ``-x url=sqlite:///scratch.sqlite3``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from cds_service.storage.audit.database import create_audit_engine
from cds_service.storage.audit.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the caller's connection, else on ``-x url=...``.

    Raises ``SystemExit`` when neither is given (``alembic`` run by hand without ``-x url``).
    """
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with: alembic -x url=<sqlalchemy url> ...")
    engine = create_audit_engine(url)
    try:
        with engine.connect() as new_connection:
            _run(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations_online()
