"""Read-only queries behind the auditor web view: one filtered row set, counted many ways.

Every figure on the page is computed over the same rows: card rows matching a ``CardFilter``,
each joined with its latest feedback (as ``queries.query_cards`` does). Filtering, paging and
counting run in SQL so a page costs the same with a hundred rows or a million; only the weekly
series is bucketed in Python, because week truncation is spelled differently on every database.
Each function raises ``sqlalchemy.exc.SQLAlchemyError`` (``database.DatabaseError``) when the
database cannot be read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Subquery, and_, case, func, select, true

from cds_service.storage.audit.models import CARD
from cds_service.storage.audit.queries import latest_feedback
from cds_service.storage.audit.records import NOT_EVALUABLE

DISPOSITIONS = ("shown", "silent", "suppressed", "deduplicated", "capped", NOT_EVALUABLE)
# "none" selects cards without any feedback yet.
OUTCOMES = ("accepted", "overridden", "none")


@dataclass(frozen=True, slots=True)
class CardFilter:
    """Which card rows the auditor page shows; a ``None`` field does not filter.

    ``disposition`` is one of ``DISPOSITIONS``, ``outcome`` one of ``OUTCOMES`` (``"none"``: no
    feedback yet); ``since``/``until`` are tz-aware datetimes compared with the card time.
    """

    pattern: str | None = None
    disposition: str | None = None
    outcome: str | None = None
    since: datetime | None = None  # inclusive, on the card time
    until: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class PatternCounts:
    """Card and feedback counts of one pattern (kebab-case id) over the filtered rows."""

    pattern: str
    cards: int
    shown: int
    silent: int
    other_not_shown: int  # suppressed, deduplicated or capped
    accepted: int
    overridden: int

    @property
    def override_rate(self) -> float | None:
        """Overridden / (accepted + overridden), 0.0-1.0; None when no card has feedback."""
        answered = self.accepted + self.overridden
        return self.overridden / answered if answered else None


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """One override reason (coding code and display, either may be None), how often it was
    given, and how many of those carried a free-text comment."""

    code: str | None
    display: str | None
    count: int
    comments: int


@dataclass(frozen=True, slots=True)
class WeekCounts:
    """Shown, accepted and overridden cards of one pattern in one ISO week (UTC)."""

    week_start: date  # the Monday of the ISO week (UTC)
    pattern: str
    shown: int
    accepted: int
    overridden: int


def _rows(flt: CardFilter) -> Subquery:
    latest = latest_feedback()
    stmt = select(
        *[c for c in CARD.c if c.key not in ("row_hash", "evidence_keys", "suggestion_uuids")],
        latest.c.outcome,
        latest.c.outcome_time,
        latest.c.override_code,
        latest.c.override_display,
        latest.c.override_comment,
    ).outerjoin(latest, and_(latest.c.card_uuid == CARD.c.card_uuid, latest.c.rank == 1))
    if flt.pattern is not None:
        stmt = stmt.where(CARD.c.pattern == flt.pattern)
    if flt.disposition is not None:
        stmt = stmt.where(CARD.c.disposition == flt.disposition)
    else:
        # Rows of patterns that could not be evaluated are not cards: shown only when asked for.
        stmt = stmt.where(CARD.c.disposition != NOT_EVALUABLE)
    if flt.outcome == "none":
        stmt = stmt.where(latest.c.outcome.is_(None))
    elif flt.outcome is not None:
        stmt = stmt.where(latest.c.outcome == flt.outcome)
    if flt.since is not None:
        stmt = stmt.where(CARD.c.time >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(CARD.c.time < flt.until)
    return stmt.subquery("rows")


def _row_dict(mapping: Any) -> dict[str, Any]:
    row = dict(mapping)
    row["override_reason"] = row["override_display"] or row["override_code"]
    return row


def count_rows(engine: Engine, flt: CardFilter) -> int:
    """How many card rows match ``flt``."""
    rows = _rows(flt)
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(rows)) or 0)


def page_rows(
    engine: Engine, flt: CardFilter, *, page: int, page_size: int
) -> list[dict[str, Any]]:
    """One page of at most ``page_size`` rows, newest card time first (``page`` counts from 1).

    Each row is a dict of the card columns (without hashes and JSON lists) plus its latest
    feedback: ``outcome``, ``outcome_time``, ``override_code``/``display``/``comment`` and
    ``override_reason`` (the display, else the code); None where there is no feedback.
    """
    rows = _rows(flt)
    stmt = select(rows).order_by(rows.c.time.desc(), rows.c.seq.desc()).limit(page_size)
    stmt = stmt.offset((page - 1) * page_size)
    with engine.connect() as connection:
        return [_row_dict(m) for m in connection.execute(stmt).mappings()]


def iter_rows(engine: Engine, flt: CardFilter) -> Iterator[dict[str, Any]]:
    """Every matching row in log order (for the CSV export), streamed; dicts as ``page_rows``."""
    rows = _rows(flt)
    stmt = select(rows).order_by(rows.c.seq)
    with engine.connect() as connection:
        for mapping in connection.execution_options(yield_per=500).execute(stmt).mappings():
            yield _row_dict(mapping)


def disposition_counts(engine: Engine, flt: CardFilter) -> dict[str, int]:
    """Rows per disposition (keys from ``DISPOSITIONS``; absent when zero)."""
    rows = _rows(flt)
    stmt = select(rows.c.disposition, func.count()).group_by(rows.c.disposition)
    with engine.connect() as connection:
        return {str(d): int(n) for d, n in connection.execute(stmt)}


def _sum_when(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def pattern_counts(engine: Engine, flt: CardFilter) -> list[PatternCounts]:
    """One ``PatternCounts`` per pattern with matching rows, sorted by pattern id."""
    rows = _rows(flt)
    stmt = (
        select(
            rows.c.pattern,
            func.count(),
            _sum_when(rows.c.shown == true()),
            _sum_when(rows.c.disposition == "silent"),
            _sum_when(and_(rows.c.shown != true(), rows.c.disposition != "silent")),
            _sum_when(rows.c.outcome == "accepted"),
            _sum_when(rows.c.outcome == "overridden"),
        )
        .group_by(rows.c.pattern)
        .order_by(rows.c.pattern)
    )
    with engine.connect() as connection:
        return [
            PatternCounts(str(p), *(int(v) for v in values))
            for p, *values in connection.execute(stmt)
        ]


def override_reasons(engine: Engine, flt: CardFilter) -> list[ReasonCount]:
    """Reasons given on overridden cards, most frequent first, with how many carry a comment."""
    rows = _rows(flt)
    has_comment = and_(rows.c.override_comment.is_not(None), rows.c.override_comment != "")
    count = func.count().label("n")
    stmt = (
        select(rows.c.override_code, rows.c.override_display, count, _sum_when(has_comment))
        .where(rows.c.outcome == "overridden")
        .group_by(rows.c.override_code, rows.c.override_display)
        .order_by(count.desc(), rows.c.override_code)
    )
    with engine.connect() as connection:
        return [
            ReasonCount(code, display, int(n), int(comments))
            for code, display, n, comments in connection.execute(stmt)
        ]


def weekly_counts(engine: Engine, flt: CardFilter) -> list[WeekCounts]:
    """Per ISO week (UTC, keyed by its Monday) and pattern: shown, accepted, overridden."""
    rows = _rows(flt)
    stmt = select(rows.c.time, rows.c.pattern, rows.c.shown, rows.c.outcome)
    buckets: dict[tuple[date, str], list[int]] = {}
    with engine.connect() as connection:
        for time, pattern, shown, outcome in connection.execution_options(
            yield_per=1000
        ).execute(stmt):
            day = time.date()
            monday = day - timedelta(days=day.weekday())
            bucket = buckets.setdefault((monday, pattern), [0, 0, 0])
            bucket[0] += 1 if shown else 0
            bucket[1] += 1 if outcome == "accepted" else 0
            bucket[2] += 1 if outcome == "overridden" else 0
    return [WeekCounts(monday, pattern, *buckets[(monday, pattern)]) for monday, pattern in
            sorted(buckets)]


def card_row(engine: Engine, card_uuid: str) -> dict[str, Any] | None:
    """One card row by uuid (the first logged, should a client repeat a uuid), or None."""
    stmt = (
        select(CARD.c.card_uuid, CARD.c.time, CARD.c.pattern, CARD.c.summary,
               CARD.c.evidence_refs, CARD.c.patient_key)
        .where(CARD.c.card_uuid == card_uuid)
        .order_by(CARD.c.seq)
        .limit(1)
    )
    with engine.connect() as connection:
        mapping = connection.execute(stmt).mappings().first()
    return dict(mapping) if mapping is not None else None
