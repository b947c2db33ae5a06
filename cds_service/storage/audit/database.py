"""Engines for the audit store and the one kind of write transaction the hash chain allows.

SQLite (the zero-setup default) runs in WAL mode so that readers do not block the writer, and
chain writes open with ``BEGIN IMMEDIATE`` so that two processes cannot both read the same chain
head. On PostgreSQL, several gunicorn workers serialise their chain writes with a transaction-level
advisory lock; the last hash is read inside that same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

# Arbitrary but fixed 64-bit keys; every process of every version must use the same ones.
CHAIN_LOCK_KEY = 0x7073_7963_6863_6431  # "psychcd1"
MIGRATION_LOCK_KEY = 0x7073_7963_6863_6432  # "psychcd2"

_IMMEDIATE = "psychopharm_immediate"


def create_audit_engine(url: str) -> Engine:
    """An engine for ``sqlite:///...`` (relative paths = working directory) or PostgreSQL.

    SQLite gets WAL mode and a 30-second busy timeout; PostgreSQL a pool of 5 (+5 overflow), a
    2-second pool wait and, unless the URL sets one, a 2-second connect timeout. Both leave the
    statement parameters out of their errors' text. Nothing connects yet. Raises
    ``sqlalchemy.exc.ArgumentError`` for a URL it cannot parse or an unknown dialect, and
    ``ImportError`` when the dialect's driver is not installed.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    # The hook path reads override history from this database: an unreachable host must cost a
    # bounded wait, not the TCP connect timeout of the OS (a site may set it in the URL).
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 2}
    return create_engine(
        url,
        # An audit insert's parameters are row values (free-text override comments,
        # practitioner references): a failed statement's error text, and so the traceback
        # that logs it, must not carry them.
        hide_parameters=True,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=2,
        connect_args=connect_args,
    )


def _sqlite_engine(url: str) -> Engine:
    # Parameters hidden from errors as on PostgreSQL (create_audit_engine).
    engine = create_engine(url, hide_parameters=True, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that BEGIN IMMEDIATE (and
        # transactional DDL in migrations) work as written.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def locked_transaction(engine: Engine, lock_key: int = CHAIN_LOCK_KEY) -> Iterator[Connection]:
    """A transaction that holds the write lock across processes until it commits or rolls back.

    SQLite: ``BEGIN IMMEDIATE`` (the database's one writer lock, waiting up to the 30-second
    busy timeout); PostgreSQL: ``pg_advisory_xact_lock(lock_key)``. Commits when the block ends,
    rolls back if it raises. Raises ``sqlalchemy.exc.SQLAlchemyError`` when the database cannot
    be reached or the lock not taken in time.
    """
    with engine.connect() as connection:
        connection = connection.execution_options(**{_IMMEDIATE: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
            yield connection


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A short write transaction without the chain lock; on SQLite it takes the write lock at
    ``BEGIN`` (waiting up to the busy timeout) instead of failing when it upgrades mid-way."""
    with engine.connect() as connection:
        connection = connection.execution_options(**{_IMMEDIATE: True})
        with connection.begin():
            yield connection


# What callers outside the audit package catch, so that only this package imports SQLAlchemy.
DatabaseError = SQLAlchemyError
