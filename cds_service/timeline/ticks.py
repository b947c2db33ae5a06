"""Where the time axis gets its lines and labels: years for long spans, months for short ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Beyond about 26 month labels the axis of a 1280-pixel screen is too crowded to read.
_MAX_MONTH_LABELS = 26


@dataclass(frozen=True, slots=True)
class Tick:
    """A line on the time axis, labelled (year or month) when ``label`` is not empty."""
    day: date
    label: str  # "" for a minor tick
    major: bool


def _months(start: date, end: date) -> list[date]:
    year, month = start.year, start.month
    days: list[date] = []
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        day = date(year, month, 1)
        if day > end:
            return days
        days.append(day)


def time_ticks(start: date, end: date) -> list[Tick]:
    """Ticks strictly inside (start, end]: month starts, labelled by year or by month."""
    months = _months(start, end)
    span_days = (end - start).days
    if span_days > 2 * 365:
        # Years labelled, quarters as minor lines.
        return [
            Tick(d, str(d.year) if d.month == 1 else "", d.month == 1)
            for d in months
            if d.month in (1, 4, 7, 10)
        ]
    step = 1
    while len(months) / step > _MAX_MONTH_LABELS:
        step += 1
    ticks = []
    for index, d in enumerate(months):
        labelled = index % step == 0
        text = f"{_MONTHS[d.month - 1]} {d.year}" if d.month == 1 or index == 0 else (
            _MONTHS[d.month - 1]
        )
        ticks.append(Tick(d, text if labelled else "", d.month == 1))
    return ticks
