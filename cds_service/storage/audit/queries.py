"""Read-side queries for the auditor view, the exports and override suppression."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Subquery,
    and_,
    bindparam,
    func,
    insert,
    select,
)

from cds_service.storage.audit.models import CARD, FEEDBACK, OVERRIDE
from cds_service.storage.audit.records import NOT_EVALUABLE

_JSON_LISTS = ("evidence_refs", "evidence_keys", "suggestion_uuids")


# Newest first; feedback seq breaks ties in outcome time. Built once: this runs on the hook path.
_LAST_OVERRIDES = (
    select(OVERRIDE.c.pattern, OVERRIDE.c.evidence_keys)
    .where(
        OVERRIDE.c.patient_key == bindparam("patient_key"),
        OVERRIDE.c.outcome_time >= bindparam("since"),
    )
    .order_by(OVERRIDE.c.outcome_time.desc(), OVERRIDE.c.feedback_seq.desc())
)


def last_overrides(
    engine: Engine, patient_key: str, patterns: Collection[str], since: datetime
) -> dict[str, frozenset[str]]:
    """For each pattern with an override at or after ``since`` for this patient: the evidence
    keys of the card most recently overridden. One indexed query over the patient's overrides
    (``audit_override``), however many cards the patient was shown.

    ``patient_key`` is the pseudonymous key; patterns without an override are absent. Raises
    ``sqlalchemy.exc.SQLAlchemyError`` when the database cannot be read (the store catches it).
    """
    if not patterns:
        return {}
    with engine.connect() as connection:
        rows = connection.execute(
            _LAST_OVERRIDES, {"patient_key": patient_key, "since": since}
        ).all()
    latest: dict[str, frozenset[str]] = {}
    for pattern, keys in rows:
        if pattern in patterns and pattern not in latest:
            latest[pattern] = frozenset(json.loads(keys))
    return latest


def index_overrides(connection: Connection, new_rows: ColumnElement[bool]) -> None:
    """Add to ``audit_override`` the (override feedback, card) pairs among ``new_rows`` (a
    condition on the card or feedback rows just appended, in the same locked transaction).

    Whichever of a card and its override is written second finds the other, because both
    writes hold the chain lock: each pair is indexed exactly once.
    """
    connection.execute(
        insert(OVERRIDE).from_select(
            ["feedback_seq", "card_seq", "patient_key", "pattern", "evidence_keys",
             "outcome_time"],
            select(
                FEEDBACK.c.seq, CARD.c.seq, CARD.c.patient_key, CARD.c.pattern,
                CARD.c.evidence_keys, FEEDBACK.c.outcome_time,
            )
            .join(CARD, CARD.c.card_uuid == FEEDBACK.c.card_uuid)
            .where(FEEDBACK.c.outcome == "overridden", new_rows),
        )
    )


def latest_feedback() -> Subquery:
    """Every feedback row ranked per card, newest outcome first: ``rank == 1`` is the latest.

    Feedback is append-only, so a card reported twice keeps both rows; readers join rank 1.
    """
    return select(
        FEEDBACK.c.card_uuid,
        FEEDBACK.c.outcome,
        FEEDBACK.c.outcome_time,
        FEEDBACK.c.accepted_suggestions,
        FEEDBACK.c.override_code,
        FEEDBACK.c.override_system,
        FEEDBACK.c.override_display,
        FEEDBACK.c.override_comment,
        func.row_number()
        .over(
            partition_by=FEEDBACK.c.card_uuid,
            order_by=(FEEDBACK.c.outcome_time.desc(), FEEDBACK.c.seq.desc()),
        )
        .label("rank"),
    ).subquery("latest_feedback")


def _cards_statement(
    since: datetime | None, until: datetime | None, pattern: str | None, limit: int | None
) -> Select[Any]:
    ranked = latest_feedback()
    stmt = (
        select(
            *[c for c in CARD.c if c.key != "row_hash"],
            ranked.c.outcome,
            ranked.c.outcome_time,
            ranked.c.accepted_suggestions,
            ranked.c.override_code,
            ranked.c.override_system,
            ranked.c.override_display,
            ranked.c.override_comment,
        )
        .outerjoin(ranked, and_(ranked.c.card_uuid == CARD.c.card_uuid, ranked.c.rank == 1))
        .order_by(CARD.c.seq)
    )
    if since is not None:
        stmt = stmt.where(CARD.c.time >= since)
    if until is not None:
        stmt = stmt.where(CARD.c.time < until)
    if pattern is not None:
        stmt = stmt.where(CARD.c.pattern == pattern)
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt


def _card_dict(mapping: Any) -> dict[str, Any]:
    row = dict(mapping)
    for key in _JSON_LISTS:
        row[key] = json.loads(row[key])
    accepted = row.pop("accepted_suggestions")
    row["accepted_suggestions"] = json.loads(accepted) if accepted is not None else []
    # What a reader wants to see of the reason: its display, else its code.
    row["override_reason"] = row["override_display"] or row["override_code"]
    return row


def query_cards(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    pattern: str | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Card rows in log order (``since`` inclusive, ``until`` exclusive, on the card time), each
    joined with its latest feedback: outcome, outcome_time, override_code/system/display,
    override_reason, override_comment and accepted_suggestions (None / [] without feedback).

    Yields dicts of the card columns except ``row_hash``, JSON lists decoded to lists; at most
    ``limit`` rows. Streamed, so the connection stays open until the iterator is exhausted or
    closed. Raises ``sqlalchemy.exc.SQLAlchemyError`` when the database cannot be read.
    """
    stmt = _cards_statement(since, until, pattern, limit)
    with engine.connect() as connection:
        for mapping in connection.execution_options(yield_per=500).execute(stmt).mappings():
            yield _card_dict(mapping)


def weekly_stats(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    pattern: str | None = None,
) -> list[dict[str, Any]]:
    """Per ISO week (UTC) and pattern: cards, shown, not shown, accepted and overridden.

    One dict per (week, pattern) with keys ``week`` ("2026-W48"), ``pattern``, ``cards``,
    ``shown``, ``not_shown``, ``accepted``, ``overridden``; sorted by week then pattern. Rows of
    patterns that could not be evaluated are not cards and are left out.
    """
    buckets: dict[tuple[str, str], dict[str, Any]] = {}
    for card in query_cards(engine, since=since, until=until, pattern=pattern):
        if card["disposition"] == NOT_EVALUABLE:
            continue  # not a card: a pattern that could not judge the patient
        iso = card["time"].isocalendar()
        week = f"{iso.year}-W{iso.week:02d}"
        bucket = buckets.setdefault(
            (week, card["pattern"]),
            {
                "week": week,
                "pattern": card["pattern"],
                "cards": 0,
                "shown": 0,
                "not_shown": 0,
                "accepted": 0,
                "overridden": 0,
            },
        )
        bucket["cards"] += 1
        bucket["shown" if card["shown"] else "not_shown"] += 1
        if card["outcome"] in ("accepted", "overridden"):
            bucket[card["outcome"]] += 1
    return [buckets[key] for key in sorted(buckets)]
