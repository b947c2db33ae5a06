"""Proportion of days covered (PDC) by dispensed supply, the PQA adherence method.

PDC = days in the period with medication on hand / days in the period. Overlapping fills are
shifted forward, not double counted; supply is capped at the period end (PQA; psychotropic-domain
§2.5). Days in hospital leave the period: the ward supplies the medication then.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from fhir_mappers.record import Dispense


@dataclass(frozen=True, slots=True)
class Coverage:
    pdc: float
    period_start: date  # the first fill in the window
    period_days: int  # days counted (hospital days left out)
    covered_days: int
    fills: tuple[Dispense, ...]  # the fills that count, by date


def is_countable(dispense: Dispense) -> bool:
    """Only completed dispenses with a hand-over date and a known days' supply count."""
    return (
        dispense.status == "completed"
        and dispense.handed_over is not None
        and dispense.days_supply is not None
        and dispense.days_supply > 0
    )


def proportion_of_days_covered(
    dispenses: Iterable[Dispense],
    window_start: date,
    window_end: date,
    hospital_days: Collection[date] = (),
) -> Coverage | None:
    """PDC from the first countable fill in [window_start, window_end] to window_end inclusive."""
    fills = sorted(
        (
            d
            for d in dispenses
            if is_countable(d)
            and d.handed_over is not None
            and window_start <= d.handed_over <= window_end
        ),
        key=lambda d: (d.handed_over or window_start, d.ref),
    )
    if not fills:
        return None
    period_start = fills[0].handed_over or window_start
    covered: set[date] = set()
    cursor = period_start
    for fill in fills:
        cursor = max(cursor, fill.handed_over or cursor)
        supply = round(fill.days_supply or 0)
        covered.update(
            cursor + timedelta(days=i)
            for i in range(supply)
            if cursor + timedelta(days=i) <= window_end
        )
        cursor += timedelta(days=supply)
    period = [
        day
        for i in range((window_end - period_start).days + 1)
        if (day := period_start + timedelta(days=i)) not in hospital_days
    ]
    covered_days = sum(1 for day in period if day in covered)
    pdc = covered_days / len(period) if period else 1.0
    return Coverage(pdc, period_start, len(period), covered_days, tuple(fills))
