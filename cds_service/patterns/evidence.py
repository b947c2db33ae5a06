"""How every pattern lists its evidence: ordered by date, short, with plain dose and month figures.

The card shows the evidence list as is, so the ordering rule (oldest first, most recent last) and
the cap live in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from cds_service.patterns.base import EvidenceItem
from fhir_mappers.record import DoseSchedule

# A card lists a handful of facts; the full set stays in the record and in ``references``.
MAX_EVIDENCE_ITEMS = 8

_DAYS_PER_MONTH = 30.4375  # mean Gregorian month, so 730 days reads as 24 months


def ordered_evidence(items: Iterable[EvidenceItem]) -> tuple[EvidenceItem, ...]:
    """Oldest first, most recent last, keeping the most recent ``MAX_EVIDENCE_ITEMS``."""
    ordered = sorted(items, key=lambda i: i.when or date.min)
    return tuple(ordered[-MAX_EVIDENCE_ITEMS:])


def unique_refs(refs: Iterable[str]) -> tuple[str, ...]:
    """References in first-seen order, without repeats."""
    return tuple(dict.fromkeys(refs))


def dose_text(mg_per_day: float | None) -> str:
    """``150`` for 150.0 and ``12.5`` for 12.5: doses as a prescriber writes them."""
    return "?" if mg_per_day is None else f"{mg_per_day:g}"


def months(days: int) -> int:
    """A window in whole months, as clinicians say it (730 days -> 24 months)."""
    return round(days / _DAYS_PER_MONTH)


def daily_dose_label(
    name: str, mg_per_day: float | None, schedule: DoseSchedule | None = None
) -> str:
    """'sertraline 100 mg/day': the daily dose, not the tablet strength; for a dose given less
    often than daily, as written ('aripiprazole 400 mg every month'); the name alone when the
    dose is unknown."""
    if schedule is not None:
        return f"{name} {schedule_text(schedule)}"
    return name if mg_per_day is None else f"{name} {dose_text(mg_per_day)} mg/day"


_UNIT_WORDS = {"d": "day", "wk": "week", "mo": "month", "a": "year"}


def schedule_text(schedule: DoseSchedule) -> str:
    """'400 mg every month', '156 mg every 4 weeks', '50 mg 2 times every week'."""
    word = _UNIT_WORDS.get(schedule.period_unit, schedule.period_unit)
    every = f"every {word}" if schedule.period == 1 else f"every {schedule.period:g} {word}s"
    times = "" if schedule.frequency == 1 else f" {schedule.frequency:g} times"
    return f"{dose_text(schedule.mg_per_dose)} mg{times} {every}"


def one_line_per_drug(items: Iterable[tuple[str, EvidenceItem]]) -> list[EvidenceItem]:
    """Evidence grouped by drug name: one line each, the latest record's label and date, earlier
    notes kept in order with their dates ("started 2026-01-05; dose up from 50 mg/day")."""
    groups: dict[str, list[EvidenceItem]] = {}
    for name, item in items:
        groups.setdefault(name, []).append(item)
    lines: list[EvidenceItem] = []
    for group in groups.values():
        group.sort(key=lambda i: i.when or date.min)
        last = group[-1]
        earlier = [f"{i.note} {i.when.isoformat() if i.when else ''}".strip() for i in group[:-1]]
        note = "; ".join([*earlier, last.note]) if earlier else last.note
        lines.append(EvidenceItem(last.ref, last.label, last.when, note))
    return lines
