"""PDC against a day-by-day reading of the PQA rules, on random fill histories."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.patterns.pdc import is_countable, proportion_of_days_covered
from fhir_mappers.record import Dispense

WINDOW_START = date(2026, 1, 1)
WINDOW_END = date(2026, 6, 30)


def _reference(fills: list[Dispense], hospital: set[date]) -> tuple[int, int] | None:
    """(period days, covered days), walking the calendar one day at a time: a fill's supply is
    used up on days at home, so what is left at admission lasts past discharge."""
    counted = sorted(
        (f for f in fills if is_countable(f) and WINDOW_START <= f.handed_over <= WINDOW_END),  # type: ignore[operator]
        key=lambda f: (f.handed_over, f.ref),
    )
    if not counted:
        return None
    on_hand: set[date] = set()
    day = counted[0].handed_over
    assert day is not None
    for fill in counted:
        assert fill.handed_over is not None
        day = max(day, fill.handed_over)  # an early refill waits until the last supply ends
        remaining = round(fill.days_supply or 0)
        while remaining > 0:
            if day not in hospital:
                if day <= WINDOW_END:
                    on_hand.add(day)
                remaining -= 1
            day += timedelta(days=1)
    start = counted[0].handed_over
    period = [start + timedelta(days=i) for i in range((WINDOW_END - start).days + 1)]
    period = [d for d in period if d not in hospital]
    return len(period), sum(1 for d in period if d in on_hand)


fill = st.builds(
    Dispense,
    ref=st.sampled_from(["MedicationDispense/a", "MedicationDispense/b", "MedicationDispense/c"]),
    display=st.just("sertraline 50 mg tablet"),
    ingredients=st.just(()),
    status=st.sampled_from(["completed", "completed", "completed", "in-progress"]),
    handed_over=st.dates(WINDOW_START - timedelta(days=40), WINDOW_END + timedelta(days=10)),
    days_supply=st.one_of(st.none(), st.floats(0, 120, allow_nan=False)),
)


@settings(max_examples=300, deadline=None)
@given(
    fills=st.lists(fill, max_size=12),
    hospital=st.sets(st.dates(WINDOW_START - timedelta(days=10), WINDOW_END), max_size=30),
)
def test_pdc_matches_a_day_by_day_count(fills: list[Dispense], hospital: set[date]) -> None:
    coverage = proportion_of_days_covered(fills, WINDOW_START, WINDOW_END, hospital)
    expected = _reference(fills, hospital)
    if expected is None:
        assert coverage is None
        return
    assert coverage is not None
    period_days, covered_days = expected
    assert (coverage.period_days, coverage.covered_days) == (period_days, covered_days)
    assert coverage.pdc == (covered_days / period_days if period_days else 1.0)
