"""Proportion of days covered (PDC) by dispensed supply, the PQA adherence method.

PDC = days in the period with medication on hand / days in the period. Overlapping fills are
shifted forward, not double counted; supply is capped at the period end (PQA; psychotropic-domain
§2.5). Days in hospital leave the period: the ward supplies the medication then.
"""

from __future__ import annotations

from bisect import bisect_right
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


def undated_fills(dispenses: Iterable[Dispense], names: Collection[str]) -> list[Dispense]:
    """Completed fills of a psychotropic ingredient in ``names`` with no hand-over day (neither
    ``whenHandedOver`` nor ``whenPrepared`` readable). Where they fall is unknown, so a days-
    covered figure for that ingredient cannot be computed: it would count the days they cover as
    missed, or miss that they open the period (PQA PDC counts every fill in the period)."""
    return [
        d
        for d in dispenses
        if d.status == "completed"
        and d.handed_over is None
        and any(i.name in names for i in d.ingredients if i.is_psychotropic)
    ]


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
    # Day numbers (ordinals), and the supply as runs of days: each fill starts where the last
    # supply ended (or at its own hand-over, if later), so the runs never overlap and the days
    # covered are their summed lengths, whatever the length of the window.
    first, last = period_start.toordinal(), window_end.toordinal()
    runs: list[tuple[int, int]] = []  # [start, stop) day numbers, increasing and disjoint
    cursor = first
    for fill in fills:
        cursor = max(cursor, fill.handed_over.toordinal() if fill.handed_over else cursor)
        supply = round(fill.days_supply or 0)
        stop = min(cursor + supply, last + 1)
        if stop > cursor:
            runs.append((cursor, stop))
        cursor += supply
    away = {day for d in hospital_days if first <= (day := d.toordinal()) <= last}
    period_days = last - first + 1 - len(away)
    covered_days = sum(stop - start for start, stop in runs) - _days_within(away, runs)
    pdc = covered_days / period_days if period_days > 0 else 1.0
    return Coverage(pdc, period_start, max(period_days, 0), covered_days, tuple(fills))


def _days_within(days: Collection[int], runs: list[tuple[int, int]]) -> int:
    """How many of ``days`` fall in one of the (sorted, disjoint) ``runs``."""
    starts = [start for start, _ in runs]
    count = 0
    for day in days:
        i = bisect_right(starts, day) - 1
        count += i >= 0 and day < runs[i][1]
    return count
