"""SqlAuditStore on SQLite and PostgreSQL: card rows, the write queue, feedback, suppression."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import func, select

from cds_service.storage.audit.database import locked_transaction
from cds_service.storage.audit.models import CARD, FEEDBACK, OVERRIDE
from cds_service.storage.audit.store import SqlAuditStore
from tests.audit_support import (
    NOW,
    OTHER_PATIENT_KEY,
    PATIENT_KEY,
    PG_URL,
    card,
    feedback,
    storage,
)
from tests.pg_support import PG_ADMIN_DSN

pytest_plugins = ["tests.audit_support"]


def count(store: SqlAuditStore, table: object) -> int:
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def test_shown_and_not_shown_cards_are_rows_with_their_disposition(store: SqlAuditStore) -> None:
    shown = card(pattern="repeated-intolerance")
    silent = card(pattern="nonadherence", shown=False, disposition="silent")
    suppressed = card(pattern="regimen-escalation", shown=False, disposition="suppressed")
    store.record_cards([shown, silent, suppressed])
    store.flush()

    rows = {row["card_uuid"]: row for row in store.query_cards()}
    assert [
        (rows[c.card_uuid]["shown"], rows[c.card_uuid]["disposition"])
        for c in (shown, silent, suppressed)
    ] == [(True, "shown"), (False, "silent"), (False, "suppressed")]
    row = rows[shown.card_uuid]
    assert row["time"] == NOW
    assert row["hook"] == "order-sign"
    assert row["hook_instance"] == shown.hook_instance
    assert row["patient_key"] == PATIENT_KEY
    assert row["evidence_keys"] == list(shown.evidence_keys)
    assert row["evidence_refs"] == list(shown.evidence_refs)
    assert row["config_version"] == shown.config_version
    assert row["latency_ms"] == pytest.approx(41.7)
    assert row["outcome"] is None


def test_record_cards_returns_while_the_database_is_busy(store: SqlAuditStore) -> None:
    # Another writer holds the chain lock: the hook call must still return at once, rows queued.
    with locked_transaction(store.engine):
        store.record_cards([card() for _ in range(5)])
        stats = store.stats()
        assert (stats["queued"], stats["written"]) == (5, 0)
    store.flush(timeout_s=30)
    assert store.stats()["written"] == 5
    assert count(store, CARD) == 5


def test_flush_writes_more_than_one_batch(audit_url: str) -> None:
    store = SqlAuditStore(storage(audit_url, queue_size=2000))
    try:
        store.record_cards([card() for _ in range(1200)])
        store.flush(timeout_s=30)
        assert store.stats()["queued"] == 0
        assert count(store, CARD) == 1200
    finally:
        store.close()


def test_close_writes_everything_still_queued(audit_url: str) -> None:
    first = SqlAuditStore(storage(audit_url, flush_interval_s=10))
    first.record_cards([card() for _ in range(40)])
    first.close()

    reopened = SqlAuditStore(storage(audit_url))
    try:
        assert count(reopened, CARD) == 40
    finally:
        reopened.close()


def test_full_queue_counts_drops_and_logs_an_error_without_phi(
    audit_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqlAuditStore(storage(audit_url, queue_size=5))
    rows = [card() for _ in range(8)]
    try:
        with caplog.at_level(logging.ERROR), locked_transaction(store.engine):
            store.record_cards(rows)
            assert store.stats()["dropped"] == 3
        store.flush(timeout_s=30)
        assert store.stats()["written"] == 5
    finally:
        store.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("dropped 3 row(s)" in message for message in errors)
    assert not any(PATIENT_KEY in m or rows[0].card_uuid in m for m in errors)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_unreachable_database_keeps_rows_queued_until_it_answers(
    backend: str, tmp_path: Path
) -> None:
    # A migrated database is prepared aside first, then made to appear at the store's URL in one
    # atomic step (a directory rename, or CREATE DATABASE ... TEMPLATE).
    missing_dir, ready_dir = tmp_path / "not-yet", tmp_path / "ready"
    missing_db = f"pcds_missing_{uuid.uuid4().hex[:10]}"
    ready_db = f"pcds_ready_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        ready_dir.mkdir()
        SqlAuditStore(storage(f"sqlite:///{ready_dir / 'audit.sqlite3'}")).close()
        url = f"sqlite:///{missing_dir / 'audit.sqlite3'}"
    else:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(ready_db)))
        SqlAuditStore(storage(PG_URL.format(database=ready_db))).close()
        url = PG_URL.format(database=missing_db)
    store = SqlAuditStore(storage(url), migrate=False)
    try:
        store.record_cards([card() for _ in range(7)])
        store.flush(timeout_s=0.5)  # cannot succeed: the database is not there yet
        stats = store.stats()
        assert stats["write_errors"] >= 1
        assert stats["last_error"].startswith("OperationalError")
        assert (stats["queued"], stats["written"], stats["dropped"]) == (7, 0, 0)

        if backend == "sqlite":
            os.rename(ready_dir, missing_dir)
        else:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(missing_db), sql.Identifier(ready_db)
                    )
                )
        store.flush(timeout_s=30)
        assert store.stats()["written"] == 7
        assert count(store, CARD) == 7
    finally:
        store.close()
        if backend == "postgres":
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                for name in (missing_db, ready_db):
                    admin.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )


def test_a_row_the_database_rejects_does_not_block_the_rows_behind_it(store: SqlAuditStore) -> None:
    good = [card(), card()]
    broken = card(summary=None)  # violates NOT NULL: never storable, retrying cannot help
    store.record_cards([good[0], broken, good[1]])
    store.flush(timeout_s=30)
    stats = store.stats()
    assert (stats["written"], stats["dropped"], stats["queued"]) == (2, 1, 0)
    assert stats["last_error"].startswith("IntegrityError")
    assert {r["card_uuid"] for r in store.query_cards()} == {c.card_uuid for c in good}


def test_close_gives_up_on_an_unreachable_database_and_counts_the_loss(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'audit.sqlite3'}"
    store = SqlAuditStore(storage(url), migrate=False, close_timeout_s=0.3)
    store.record_cards([card() for _ in range(4)])
    store.close()
    assert (store.stats()["written"], store.stats()["dropped"]) == (0, 4)
    store.record_cards([card()])  # after close: refused and counted, not queued
    assert (store.stats()["queued"], store.stats()["dropped"]) == (0, 5)


def test_ping(store: SqlAuditStore, tmp_path: Path) -> None:
    assert store.ping() is True
    unreachable = SqlAuditStore(
        storage(f"sqlite:///{tmp_path / 'no-such-dir' / 'audit.sqlite3'}"), migrate=False
    )
    try:
        assert unreachable.ping() is False
    finally:
        unreachable.close()


def test_feedback_reported_twice_is_stored_once(store: SqlAuditStore) -> None:
    override = feedback("7c4f9a1e-2b1d-4a55-9d7e-0e7b8f1c2a33")
    retried = feedback(override.card_uuid, received_time=NOW + timedelta(seconds=30))
    assert store.record_feedback([override, override]) == 1
    assert store.record_feedback([retried]) == 0
    assert count(store, FEEDBACK) == 1


def test_feedback_differing_in_outcome_time_or_reason_is_new(store: SqlAuditStore) -> None:
    uuid_ = "7c4f9a1e-2b1d-4a55-9d7e-0e7b8f1c2a33"
    first = feedback(uuid_)
    later = feedback(uuid_, outcome_time=NOW + timedelta(minutes=5))
    other_reason = feedback(uuid_, override_code="not-relevant", override_display="Not relevant")
    accepted = feedback(
        uuid_,
        outcome="accepted",
        accepted_suggestions=("6f0c3f8e-6d9b-4b1e-9a53-2f3d3d1f7a10",),
        override_code=None,
        override_system=None,
        override_display=None,
    )
    assert store.record_feedback([first, later, other_reason, accepted]) == 4
    assert store.record_feedback([first, later, other_reason, accepted]) == 0


def test_last_override_is_per_patient_pattern_and_window(store: SqlAuditStore) -> None:
    older = card(time=NOW - timedelta(days=40), evidence_keys=("ingredient:36437",))
    newer = card(time=NOW - timedelta(days=3))
    other_patient = card(patient_key=OTHER_PATIENT_KEY)
    other_pattern = card(pattern="psychotropic-polypharmacy")
    store.record_cards([older, newer, other_patient, other_pattern])
    store.flush()
    store.record_feedback(
        [
            feedback(older.card_uuid, outcome_time=NOW - timedelta(days=40)),
            feedback(newer.card_uuid, outcome_time=NOW - timedelta(days=2)),
        ]
    )
    since = NOW - timedelta(days=30)
    ri = "repeated-intolerance"

    assert store.last_overrides(PATIENT_KEY, [ri], since) == {ri: frozenset(newer.evidence_keys)}
    assert store.last_overrides(PATIENT_KEY, [ri], NOW - timedelta(days=60)) == {
        ri: frozenset(newer.evidence_keys)
    }
    # The newest override, two days ago, lies before a one-day window.
    assert store.last_overrides(PATIENT_KEY, [ri], NOW - timedelta(days=1)) == {}
    assert store.last_overrides(OTHER_PATIENT_KEY, [ri], since) == {}
    assert store.last_overrides(PATIENT_KEY, ["psychotropic-polypharmacy"], since) == {}
    assert store.last_overrides(PATIENT_KEY, [], since) == {}


def test_last_overrides_answers_several_patterns_in_one_call(store: SqlAuditStore) -> None:
    intolerance = card(evidence_keys=("ingredient:36437", "ingredient:321988"))
    polypharmacy = card(pattern="psychotropic-polypharmacy", evidence_keys=("agent:51272",))
    escalation = card(pattern="regimen-escalation")
    store.record_cards([intolerance, polypharmacy, escalation])
    store.flush()
    store.record_feedback([
        feedback(intolerance.card_uuid, outcome_time=NOW - timedelta(days=2)),
        feedback(polypharmacy.card_uuid, outcome_time=NOW - timedelta(days=1)),
    ])

    found = store.last_overrides(
        PATIENT_KEY,
        ["repeated-intolerance", "psychotropic-polypharmacy", "regimen-escalation"],
        NOW - timedelta(days=30),
    )

    assert found == {
        "repeated-intolerance": frozenset({"ingredient:36437", "ingredient:321988"}),
        "psychotropic-polypharmacy": frozenset({"agent:51272"}),
    }


def test_an_override_reported_before_its_card_is_written_still_suppresses(
    store: SqlAuditStore,
) -> None:
    # The EHR's feedback can reach one worker while the card still waits in another worker's
    # write queue: the card's write indexes the override instead.
    late = card(time=NOW - timedelta(days=1))
    store.record_feedback([feedback(late.card_uuid, outcome_time=NOW - timedelta(hours=23))])
    assert store.last_overrides(PATIENT_KEY, [late.pattern], NOW - timedelta(days=30)) == {}

    store.record_cards([late])
    store.flush()

    assert store.last_overrides(PATIENT_KEY, [late.pattern], NOW - timedelta(days=30)) == {
        late.pattern: frozenset(late.evidence_keys)
    }
    assert count(store, OVERRIDE) == 1


def test_each_override_is_indexed_once_whatever_arrives_first(store: SqlAuditStore) -> None:
    first, second = card(), card()
    store.record_cards([first])
    store.flush()
    store.record_feedback([feedback(first.card_uuid), feedback(second.card_uuid)])
    store.record_cards([second])
    store.flush()
    store.record_feedback([feedback(first.card_uuid)])  # the EHR retries: stored once
    # Cards shown again later, never overridden, are not in the index.
    store.record_cards([card() for _ in range(5)])
    store.flush()

    with store.engine.connect() as connection:
        pairs = connection.execute(
            select(OVERRIDE.c.card_seq, OVERRIDE.c.feedback_seq)
        ).all()
        cards = dict(connection.execute(select(CARD.c.card_uuid, CARD.c.seq)).all())
    assert sorted(c for c, _ in pairs) == sorted([cards[first.card_uuid], cards[second.card_uuid]])


def test_accepted_card_is_not_an_override(store: SqlAuditStore) -> None:
    shown = card()
    store.record_cards([shown])
    store.flush()
    store.record_feedback(
        [feedback(shown.card_uuid, outcome="accepted", override_code=None, override_display=None)]
    )
    assert store.last_overrides(PATIENT_KEY, [shown.pattern], NOW - timedelta(days=30)) == {}


def test_query_cards_filters_and_joins_the_latest_feedback(store: SqlAuditStore) -> None:
    early = card(time=NOW - timedelta(days=10))
    late = card(time=NOW, pattern="nonadherence")
    store.record_cards([early, late])
    store.flush()
    store.record_feedback(
        [
            feedback(early.card_uuid, outcome_time=NOW - timedelta(days=9)),
            feedback(
                early.card_uuid,
                outcome_time=NOW - timedelta(days=8),
                override_code="will-review",
                override_display="Will review at next visit",
                override_comment='=HYPERLINK("x")',
            ),
        ]
    )

    (row,) = store.query_cards(until=NOW - timedelta(days=1))
    assert row["card_uuid"] == early.card_uuid
    assert row["outcome"] == "overridden"
    assert row["override_reason"] == "Will review at next visit"
    assert row["override_code"] == "will-review"
    assert [r["card_uuid"] for r in store.query_cards(since=NOW)] == [late.card_uuid]
    assert [r["card_uuid"] for r in store.query_cards(pattern="nonadherence")] == [late.card_uuid]
    assert len(list(store.query_cards(limit=1))) == 1


def test_weekly_stats_per_iso_week_and_pattern(store: SqlAuditStore) -> None:
    # NOW is Tuesday 2025-03-04 (ISO week 10); eight days earlier is in week 9.
    this_week = [card(), card(shown=False, disposition="silent"), card()]
    last_week = [card(time=NOW - timedelta(days=8))]
    store.record_cards([*this_week, *last_week])
    store.flush()
    store.record_feedback(
        [
            feedback(this_week[0].card_uuid),
            feedback(this_week[2].card_uuid, outcome="accepted", override_code=None),
        ]
    )
    assert store.weekly_stats() == [
        {
            "week": "2025-W09",
            "pattern": "repeated-intolerance",
            "cards": 1,
            "shown": 1,
            "not_shown": 0,
            "accepted": 0,
            "overridden": 0,
        },
        {
            "week": "2025-W10",
            "pattern": "repeated-intolerance",
            "cards": 3,
            "shown": 2,
            "not_shown": 1,
            "accepted": 1,
            "overridden": 1,
        },
    ]


def test_store_has_no_update_or_delete_methods() -> None:
    public = {name for name in dir(SqlAuditStore) if not name.startswith("_")}
    assert not {n for n in public if n.startswith(("update", "delete", "remove", "purge"))}
