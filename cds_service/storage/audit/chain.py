"""The append-only hash chain over card and feedback rows, and its verification.

Each row gets the next ``seq`` (shared by both tables) and
``row_hash = sha256(prev_hash + canonical JSON of the row's content)``; the chain head table keeps
the last seq and hash. An edited row no longer matches its hash, a deleted row leaves a gap in
``seq`` (and breaks the link of the row after it, or the head when it was the newest), and a
reordered row breaks the links on both sides.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, select

from cds_service.storage.audit.models import CARD, CHAIN_HEAD, FEEDBACK, row_content

GENESIS_HASH = "0" * 64
# Rows per multi-row INSERT: larger statements left freed memory behind in the writer thread's
# malloc arena and the worker's RSS kept growing; at 20 it stays flat (bench/RESULTS.md).
INSERT_PAGE_ROWS = 20
MAX_PROBLEMS = 100  # a wholesale edit would otherwise print a line per row


def _encode(value: Any) -> str:
    if isinstance(value, datetime):
        # Fixed form with microseconds, so the hash is the same whatever the database returns.
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raise TypeError(f"cannot hash a {type(value).__name__}")


def canonical_json(content: dict[str, Any]) -> str:
    """``content`` as compact JSON with sorted keys, datetimes as UTC with microseconds.

    The same content gives the same text whichever database it was read from, so it can be
    hashed. Raises ``TypeError`` for a value JSON cannot carry other than a datetime.
    """
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_encode
    )


def compute_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """The row hash: hex sha256 (64 characters) of ``prev_hash`` + ``canonical_json(content)``."""
    return hashlib.sha256((prev_hash + canonical_json(content)).encode()).hexdigest()


def read_head(connection: Connection) -> tuple[int, str]:
    """The last (seq, hash); call inside ``locked_transaction`` so nobody appends meanwhile."""
    row = connection.execute(
        select(CHAIN_HEAD.c.seq, CHAIN_HEAD.c.row_hash).where(CHAIN_HEAD.c.id == 1)
    ).first()
    return (0, GENESIS_HASH) if row is None else (int(row.seq), str(row.row_hash))


def _write_head(connection: Connection, seq: int, row_hash: str) -> None:
    updated = connection.execute(
        CHAIN_HEAD.update().where(CHAIN_HEAD.c.id == 1).values(seq=seq, row_hash=row_hash)
    )
    if updated.rowcount == 0:
        connection.execute(CHAIN_HEAD.insert().values(id=1, seq=seq, row_hash=row_hash))


def append_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Link ``rows`` onto the chain (setting seq and row_hash in each dict) and insert them.

    ``rows`` are column dicts for ``table`` (``CARD`` or ``FEEDBACK``) without seq and row_hash.
    Must run inside ``locked_transaction``: the head is read and moved in the same transaction.
    Raises ``sqlalchemy.exc.SQLAlchemyError`` when the insert fails (the transaction then rolls
    back, head included).
    """
    if not rows:
        return
    seq, prev_hash = read_head(connection)
    for row in rows:
        seq += 1
        row["seq"] = seq
        row["row_hash"] = prev_hash = compute_hash(prev_hash, row_content(table, row))
    # return_defaults() makes SQLAlchemy send the batch as multi-row INSERTs ("insertmanyvalues")
    # instead of a DB-API executemany: sqlite3 releases and re-takes the GIL for every row of an
    # executemany, and while hook calls keep the CPU busy each re-take waits out a thread switch
    # interval, so a batch could take seconds and the queue grew. It also costs less CPU than
    # either executemany or building .values() statements (figures in bench/RESULTS.md).
    paged = connection.execution_options(insertmanyvalues_page_size=INSERT_PAGE_ROWS)
    paged.execute(table.insert().return_defaults(), rows)
    _write_head(connection, seq, prev_hash)


@dataclass(frozen=True)
class VerifyResult:
    """What ``verify_chain`` found: ``ok`` when ``problems`` is empty; ``rows_checked`` counts
    card and feedback rows; ``problems`` holds one readable line per break (at most
    ``MAX_PROBLEMS`` and a final "... and N more")."""

    ok: bool
    rows_checked: int
    problems: list[str] = field(default_factory=list)


def _rows_in_order(connection: Connection) -> Iterator[tuple[Table, dict[str, Any]]]:
    def stream(table: Table) -> Iterator[tuple[Table, dict[str, Any]]]:
        result = connection.execution_options(yield_per=1000).execute(
            select(table).order_by(table.c.seq)
        )
        for raw in result:
            yield table, dict(raw._mapping)

    return heapq.merge(stream(CARD), stream(FEEDBACK), key=lambda item: int(item[1]["seq"]))


def verify_chain(engine: Engine) -> VerifyResult:
    """Recompute every link; report each break once and carry on from the stored hash.

    Checks seq continuity (gaps, duplicates), each row's hash and the chain head. Raises
    ``sqlalchemy.exc.SQLAlchemyError`` when the database cannot be read.
    """
    problems: list[str] = []
    checked = 0
    expected_seq = 1
    prev_hash = GENESIS_HASH
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # One snapshot for both tables and the head, while other workers keep appending.
            connection.execution_options(isolation_level="REPEATABLE READ")
        for table, row in _rows_in_order(connection):
            checked += 1
            seq = int(row["seq"])
            kind = table.name.removeprefix("audit_")
            if seq < expected_seq:
                problems.append(f"seq {seq} ({kind}): duplicate sequence number")
            elif seq > expected_seq:
                gap = str(expected_seq) if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
                problems.append(f"seq {gap}: missing (row deleted?)")
            if compute_hash(prev_hash, row_content(table, row)) != row["row_hash"]:
                problems.append(
                    f"seq {seq} ({kind}): hash mismatch (row edited, or the row before it "
                    "deleted or reordered)"
                )
            expected_seq = max(expected_seq, seq + 1)
            prev_hash = row["row_hash"]
        head_seq, head_hash = read_head(connection)
    last_seq = expected_seq - 1
    if (head_seq, head_hash) != (last_seq, prev_hash):
        problems.append(
            f"chain head is at seq {head_seq} but the last row is seq {last_seq} "
            "(newest rows deleted, or the head edited)"
        )
    if len(problems) > MAX_PROBLEMS:
        problems = [*problems[:MAX_PROBLEMS], f"... and {len(problems) - MAX_PROBLEMS} more"]
    return VerifyResult(ok=not problems, rows_checked=checked, problems=problems)
