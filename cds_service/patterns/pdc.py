"""Proportion of days covered (PDC) by dispensed supply, the PQA adherence method.

PDC = days in the period with medication on hand / days in the period. Overlapping fills are
shifted forward, not double counted; supply is capped at the period end (PQA; psychotropic-domain
§2.5). Days in hospital leave the period: the ward supplies the medication then.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date

from fhir_mappers.record import Dispense


@dataclass(frozen=True, slots=True)
class Coverage:
    """Days covered by fills over a period: ``pdc`` in 0..1, the period from the first fill."""

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
    # Day numbers (ordinals) rather than dates: the same arithmetic, without a date per day.
    first, last = period_start.toordinal(), window_end.toordinal()
    covered: set[int] = set()
    cursor = first
    for fill in fills:
        cursor = max(cursor, fill.handed_over.toordinal() if fill.handed_over else cursor)
        supply = round(fill.days_supply or 0)
        covered.update(range(cursor, min(cursor + supply, last + 1)))
        cursor += supply
    away = {day for d in hospital_days if first <= (day := d.toordinal()) <= last}
    period_days = last - first + 1 - len(away)
    covered_days = len(covered - away)
    pdc = covered_days / period_days if period_days > 0 else 1.0
    return Coverage(pdc, period_start, max(period_days, 0), covered_days, tuple(fills))
