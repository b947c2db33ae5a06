"""Read-side queries for the auditor view, the exports and override suppression."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, Subquery, and_, bindparam, func, select

from cds_service.audit.models import CARD, FEEDBACK

_JSON_LISTS = ("evidence_refs", "evidence_keys", "suggestion_uuids")


def _last_overrides_statement() -> Select[Any]:
    ranked = (
        select(
            CARD.c.pattern,
            CARD.c.evidence_keys,
            func.row_number()
            .over(
                partition_by=CARD.c.pattern,
                order_by=(FEEDBACK.c.outcome_time.desc(), FEEDBACK.c.seq.desc()),
            )
            .label("rank"),
        )
        .join(FEEDBACK, FEEDBACK.c.card_uuid == CARD.c.card_uuid)
        .where(
            CARD.c.patient_key == bindparam("patient_key"),
            CARD.c.pattern.in_(bindparam("patterns", expanding=True)),
            FEEDBACK.c.outcome == "overridden",
            FEEDBACK.c.outcome_time >= bindparam("since"),
        )
        .subquery("ranked_overrides")
    )
    return select(ranked.c.pattern, ranked.c.evidence_keys).where(ranked.c.rank == 1)


# Built once: this query runs on the hook path, and building the expression costs more than
# executing it against the index.
_LAST_OVERRIDES = _last_overrides_statement()


def last_overrides(
    engine: Engine, patient_key: str, patterns: Collection[str], since: datetime
) -> dict[str, frozenset[str]]:
    """For each pattern with an override at or after ``since`` for this patient: the evidence
    keys of the card most recently overridden. One query for all the patterns of a hook call."""
    if not patterns:
        return {}
    params = {"patient_key": patient_key, "patterns": sorted(patterns), "since": since}
    with engine.connect() as connection:
        rows = connection.execute(_LAST_OVERRIDES, params).all()
    return {pattern: frozenset(json.loads(keys)) for pattern, keys in rows}


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
    override_reason, override_comment and accepted_suggestions (None / [] without feedback)."""
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
    """Per ISO week (UTC) and pattern: cards, shown, not shown, accepted and overridden."""
    buckets: dict[tuple[str, str], dict[str, Any]] = {}
    for card in query_cards(engine, since=since, until=until, pattern=pattern):
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
