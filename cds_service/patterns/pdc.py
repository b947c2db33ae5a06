"""Proportion of days covered (PDC) by dispensed supply, the PQA adherence method.

PDC = days in the period with medication on hand / days in the period. Overlapping fills are
shifted forward, not double counted; supply is capped at the period end (PQA; psychotropic-domain
§2.5). Days in hospital leave the period: the ward supplies the medication then
(``hospital_days``), and the supply at home is not used up, so it carries past discharge. (The
Medicare Part C & D Star Ratings Technical Notes, Attachment L, adjust PDC for inpatient and
skilled-nursing stays; that text could not be read offline, so the carry-over rests on its own
reason: a patient who took every dose at home and in hospital is adherent.)

Fills the figure cannot count (no days' supply, no day, no known status: ``uncounted_fills``; a
medication nothing identifies: ``unidentified_fills``) are found here, so that a caller can
abstain rather than read them as days without medication.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from fhir_mappers.record import COMPLETED_VISIT_STATUSES, Dispense, PatientRecord, Visit


@dataclass(frozen=True, slots=True)
class Coverage:
    """Days covered by fills over a period: ``pdc`` in 0..1, the period from the first fill."""

    pdc: float
    period_start: date  # the first fill in the window
    period_days: int  # days counted (hospital days left out)
    covered_days: int
    fills: tuple[Dispense, ...]  # the fills that count, by date


def is_countable(dispense: Dispense) -> bool:
    """Only completed dispenses with a hand-over date and a known days' supply count (a date
    named by month or year only is read as its first day: ``uncounted_fills`` finds those)."""
    return (
        dispense.status == "completed"
        and dispense.handed_over is not None
        and dispense.days_supply is not None
        and dispense.days_supply > 0
    )


# Statuses under which a fill may have reached the patient: completed, or a status the feed did
# not know ("unknown") or did not send (R4 requires one; some feeds omit it).
MAY_HAVE_BEEN_HANDED_OVER = frozenset({"completed", "unknown", ""})


@dataclass(frozen=True, slots=True)
class UncountedFills:
    """Fills that may have reached the patient in a period but that a days-covered figure cannot
    count: counting them as nothing would turn missing data into missed doses, and leaving them
    out could also miss that they open the period (PQA PDC counts every fill in it)."""

    no_supply: tuple[Dispense, ...]  # completed, dated in the period, days' supply unknown
    undated: tuple[Dispense, ...]  # completed, no date at all (neither handed over nor prepared)
    partly_dated: tuple[Dispense, ...]  # dated by month or year only, in or around the period
    unknown_status: tuple[Dispense, ...]  # dated in the period (or undated), status unknown/none

    def __bool__(self) -> bool:
        return bool(self.no_supply or self.undated or self.partly_dated or self.unknown_status)

    @property
    def refs(self) -> tuple[str, ...]:
        """Each fill once, in the order of the kinds above."""
        fills = [*self.no_supply, *self.undated, *self.partly_dated, *self.unknown_status]
        return tuple(dict.fromkeys(d.ref for d in fills))


def uncounted_fills(dispenses: Iterable[Dispense], start: date, end: date) -> UncountedFills:
    """The fills among ``dispenses`` (those of one ingredient) that a PDC over [start, end] cannot
    count (``UncountedFills``). A fill dated by month or year only is unplaced when the month or
    year it names meets the period; a fully undated completed fill always is (it could be
    anywhere)."""
    no_supply, undated, partly, unknown = [], [], [], []
    for fill in dispenses:
        if fill.status not in MAY_HAVE_BEEN_HANDED_OVER:
            continue
        day, last = fill.handed_over, fill.handed_over_latest
        in_period = day is not None and day <= end and (last or day) >= start
        if fill.status != "completed":
            if day is None or in_period:
                unknown.append(fill)
        elif day is None:
            undated.append(fill)
        elif last is not None:
            if in_period:
                partly.append(fill)
        elif in_period and fill.days_supply is None:
            no_supply.append(fill)
    return UncountedFills(tuple(no_supply), tuple(undated), tuple(partly), tuple(unknown))


def proportion_of_days_covered(
    dispenses: Iterable[Dispense],
    window_start: date,
    window_end: date,
    days_away: Collection[date] = (),
) -> Coverage | None:
    """PDC from the first countable fill in [window_start, window_end] to window_end inclusive;
    ``days_away`` (days in hospital) leave the period, and a fill's supply is used up on the days
    at home only (what is left at admission lasts past discharge)."""
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
    # Day numbers (ordinals). Each fill's supply starts where the last one ran out (or at its
    # own hand-over, if later), so overlapping fills are shifted, not double counted; a day in
    # hospital uses none of it, so a supply that meets a stay runs on past it by as many days.
    first, last = period_start.toordinal(), window_end.toordinal()
    away = sorted({day for d in days_away if first <= (day := d.toordinal()) <= last})
    covered_days = 0
    cursor = first
    for fill in fills:
        cursor = max(cursor, fill.handed_over.toordinal() if fill.handed_over else cursor)
        stop = _run_stop(cursor, round(fill.days_supply or 0), away)
        counted_to = min(stop, last + 1)
        covered_days += max(0, counted_to - cursor) - _days_in(away, cursor, counted_to)
        cursor = stop
    period_days = last - first + 1 - len(away)
    pdc = covered_days / period_days if period_days > 0 else 1.0
    return Coverage(pdc, period_start, max(period_days, 0), covered_days, tuple(fills))


def _run_stop(start: int, supply: int, away: list[int]) -> int:
    """The first day (ordinal) without medication of a supply of ``supply`` days begun on
    ``start``: every day in hospital (``away``, sorted ordinals) the run reaches pushes its end
    one day on, as the supply at home is not used then."""
    stop = start + supply
    while (more := _days_in(away, start, stop) - (stop - start - supply)) > 0:
        stop += more
    return stop


def days_at_home_without_supply(
    fill: Dispense, now: date, days_away: Collection[date] = ()
) -> int | None:
    """Days from the day a single countable fill's supply ran out to ``now``, days in
    hospital (``days_away``) left out on both sides, as in ``proportion_of_days_covered``: the
    supply at home lasts past a stay, and a day in hospital after it ran out is no day without
    medication (the ward gives it). 0 while the supply lasts (or while the patient is in
    hospital); None for a fill that is not countable (``is_countable``)."""
    if fill.handed_over is None or not is_countable(fill):
        return None
    first, last = fill.handed_over.toordinal(), now.toordinal()
    away = sorted({day for d in days_away if first <= (day := d.toordinal()) <= last})
    stop = _run_stop(first, round(fill.days_supply or 0), away)
    return max(0, last - stop - _days_in(away, stop, last))


def _days_in(days: list[int], start: int, stop: int) -> int:
    """How many of the sorted ``days`` fall in [start, stop)."""
    return bisect_left(days, stop) - bisect_left(days, start) if stop > start else 0


def unidentified_fills(record: PatientRecord, start: date, now: date) -> list[str]:
    """Fills of a medication nothing identifies (no code, text or display could be read: an
    unresolvable ``medicationReference``), handed over in [start, now] or undated."""
    return [
        m.ref
        for m in record.other_medications
        if m.resource_type == "MedicationDispense"
        and not m.display.strip()
        and m.status in MAY_HAVE_BEEN_HANDED_OVER
        and ((day := m.day) is None or start <= day <= now)
    ]


def hospital_days(record: PatientRecord, now: date) -> set[date]:
    """Days in hospital, left out of the days-covered period: those of every inpatient stay
    except one that did not take place (``_NO_STAY``: planned, cancelled, entered in error)."""
    days: set[date] = set()
    for visit in record.visits:
        if visit.is_inpatient and visit.start is not None and visit.status not in _NO_STAY:
            end = _stay_end(visit, now)
            days.update(
                visit.start + timedelta(days=i) for i in range((end - visit.start).days + 1)
            )
    return days


def maybe_stays(record: PatientRecord, start: date, now: date) -> dict[str, set[date]]:
    """Encounters that may have been hospital stays, by reference, with their days in [start,
    now]: of unknown kind (a class nobody could read, and nothing else says admitted:
    ``fhir_mappers.encounters``), that took place, and lasted more than a day (an end after the
    start, or open since an earlier day). A missing class is no evidence either way, so a caller
    asks whether its finding stands with and without these days."""
    found: dict[str, set[date]] = {}
    for visit in record.visits:
        if visit.kind != "unknown" or visit.start is None or visit.status in _NO_STAY:
            continue
        end = _stay_end(visit, now)
        days = {
            day
            for i in range((end - visit.start).days + 1)
            if start <= (day := visit.start + timedelta(days=i)) <= now
        }
        if end > visit.start and days:
            found[visit.ref] = days
    return found


def stays_without_end(record: PatientRecord, start: date, now: date) -> list[str]:
    """Inpatient stays that ended (``COMPLETED_VISIT_STATUSES``) with no end date, begun in
    [start, now]: how many of their days were in hospital, days that leave a days-covered
    period, is unknown (``hospital_days`` counts only their first day)."""
    return [
        visit.ref
        for visit in record.visits
        if visit.ended_without_end and visit.start is not None and start <= visit.start <= now
    ]


def _stay_end(visit: Visit, now: date) -> date:
    """The last day in hospital: today while the stay goes on (``Visit.is_ongoing``: in
    progress, arrived, on leave), its end once it has ended (R4 ``finished``, R5 ``completed``
    or ``discharged``:
    ``COMPLETED_VISIT_STATUSES``), else only its first day."""
    if visit.is_ongoing:
        return now
    ended = visit.status in COMPLETED_VISIT_STATUSES
    return visit.end if ended and visit.end else visit.start or now


# Encounter statuses of a stay that did not take place: its days are no hospital days.
_NO_STAY = frozenset({"planned", "cancelled", "entered-in-error"})
