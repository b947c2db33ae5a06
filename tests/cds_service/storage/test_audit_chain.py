"""The audit hash chain: intact logs verify; edits, deletions and reordering are detected."""

from __future__ import annotations

import hashlib
import threading

from sqlalchemy import text

from cds_service.storage.audit.chain import (
    GENESIS_HASH,
    INSERT_PAGE_ROWS,
    canonical_json,
    compute_hash,
    verify_chain,
)
from cds_service.storage.audit.store import SqlAuditStore
from tests.audit_support import card, feedback, storage

pytest_plugins = ["tests.audit_support"]


def fill(store: SqlAuditStore) -> list[str]:
    """Three cards, an override of the second, then two more cards: seq 1..6."""
    first = [card(), card(), card(shown=False, disposition="silent")]
    store.record_cards(first)
    store.flush()
    store.record_feedback([feedback(first[1].card_uuid)])
    store.record_cards([card(), card()])
    store.flush()
    return [c.card_uuid for c in first]


def tamper(store: SqlAuditStore, statement: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(text(statement))


def test_intact_chain_verifies(store: SqlAuditStore) -> None:
    fill(store)
    result = verify_chain(store.engine)
    assert result.ok, result.problems
    assert result.rows_checked == 6


def test_empty_log_verifies(store: SqlAuditStore) -> None:
    assert verify_chain(store.engine).ok
    assert verify_chain(store.engine).rows_checked == 0


def test_edited_summary_is_detected(store: SqlAuditStore) -> None:
    fill(store)
    tamper(store, "UPDATE audit_card SET summary = 'nothing to see' WHERE seq = 2")
    result = verify_chain(store.engine)
    assert not result.ok
    assert any(p.startswith("seq 2 (card): hash mismatch") for p in result.problems)


def test_edited_feedback_outcome_is_detected(store: SqlAuditStore) -> None:
    fill(store)
    tamper(store, "UPDATE audit_feedback SET outcome = 'accepted'")
    result = verify_chain(store.engine)
    assert any(p.startswith("seq 4 (feedback): hash mismatch") for p in result.problems)


def test_deleted_row_is_detected(store: SqlAuditStore) -> None:
    fill(store)
    tamper(store, "DELETE FROM audit_card WHERE seq = 3")
    result = verify_chain(store.engine)
    assert not result.ok
    assert "seq 3: missing (row deleted?)" in result.problems
    assert result.rows_checked == 5


def test_deleted_newest_row_is_detected_by_the_head(store: SqlAuditStore) -> None:
    fill(store)
    tamper(store, "DELETE FROM audit_card WHERE seq = 6")
    result = verify_chain(store.engine)
    assert not result.ok
    assert any("chain head is at seq 6 but the last row is seq 5" in p for p in result.problems)


def test_reordered_rows_are_detected(store: SqlAuditStore) -> None:
    fill(store)
    # Swap the places of cards 1 and 2 in the log.
    tamper(store, "UPDATE audit_card SET seq = 100 WHERE seq = 1")
    tamper(store, "UPDATE audit_card SET seq = 1 WHERE seq = 2")
    tamper(store, "UPDATE audit_card SET seq = 2 WHERE seq = 100")
    result = verify_chain(store.engine)
    assert not result.ok
    assert any(p.startswith("seq 1 (card): hash mismatch") for p in result.problems)


def test_two_processes_writing_at_once_keep_one_linear_chain(audit_url: str) -> None:
    # Two stores stand for two gunicorn workers: separate engines, one database.
    stores = [SqlAuditStore(storage(audit_url)) for _ in range(2)]
    start = threading.Barrier(len(stores))

    def work(store: SqlAuditStore) -> None:
        start.wait()
        for _ in range(10):
            store.record_cards([card() for _ in range(5)])
            store.record_feedback([feedback(card().card_uuid)])
        store.flush(timeout_s=30)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        result = verify_chain(stores[0].engine)
        assert result.ok, result.problems
        assert result.rows_checked == 2 * 10 * 6
    finally:
        for store in stores:
            store.close()


def test_a_batch_larger_than_one_insert_statement_is_written_whole(store: SqlAuditStore) -> None:
    # Rows go in as several multi-row INSERTs; the chain must not notice the seams.
    cards = [card() for _ in range(2 * INSERT_PAGE_ROWS + 7)]
    store.record_cards(cards)
    store.flush()

    with store.engine.connect() as connection:
        query = text("SELECT card_uuid FROM audit_card ORDER BY seq")
        stored = [uuid for (uuid,) in connection.execute(query)]
    assert stored == [c.card_uuid for c in cards]
    result = verify_chain(store.engine)
    assert result.ok and result.rows_checked == len(cards)


def test_row_hashes_are_sha256_of_the_previous_hash_and_the_canonical_row() -> None:
    # Logs written by earlier versions must keep verifying: the scheme is fixed.
    content = {"table": "audit_card", "card_json": "é" * 3000, "seq": 7}
    whole = (GENESIS_HASH + canonical_json(content)).encode()
    assert len(whole) > 4000
    assert compute_hash(GENESIS_HASH, content) == hashlib.sha256(whole).hexdigest()
