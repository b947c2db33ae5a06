"""Throwaway databases on the machine's PostgreSQL (127.0.0.1:5432, trust auth).

Shared by the audit tests, the security tests and ``bench/loadtest.py``; it imports nothing from
pytest, so the load test can use it outside a test run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5"


@contextmanager
def throwaway_database(prefix: str, *, keep: bool = False) -> Iterator[str]:
    """A new database named ``<prefix>_<random>``; its name. Dropped afterwards unless ``keep``.

    PostgreSQL not answering raises: a test that needs it fails rather than skips.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        if not keep:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(name)
                    )
                )
