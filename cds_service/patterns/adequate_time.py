"""A trial's time at an adequate dose: the days of an episode spent at or above its ingredient's
minimum effective dose (``Ingredient.min_effective_mg_per_day``, config/ingredients.csv; an
unknown dose is not known to be adequate, and where no minimum is tabled any dose is), counted
course by course and step by step.

An adequate antidepressant trial is >= 4 weeks *at* an adequate dose (Sforzini L et al., Mol
Psychiatry 2022); an antipsychotic one >= 6 weeks (TRRIP, Howes OD et al., Am J Psychiatry 2017).
A reduction below the minimum stops the count, and a titration counts from the step that
reaches it. Used by ``multiple_failed_trials``. Pure: no clock or I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import date, timedelta

from cds_service.patterns.timeline import Episode, dose_on


class AdequateTime:
    """An episode's days at an adequate dose (at or above the ingredient's minimum effective
    dose; an unknown dose is not), as segments with running totals: asking for the days up to
    a date is a bisection, and the whole is built in one pass over the episode's courses and
    steps."""

    __slots__ = ("_ends", "_highest", "_lowest", "_starts", "_totals")

    def __init__(self, segments: Sequence[tuple[date, date, float | None]]) -> None:
        self._starts = [s for s, _, _ in segments]
        self._ends = [e for _, e, _ in segments]
        self._totals: list[int] = []  # days in the segments before each one
        self._lowest: list[float | None] = []  # known doses up to and including each segment
        self._highest: list[float | None] = []
        total, low, high = 0, None, None
        for start, end, dose in segments:
            self._totals.append(total)
            total += (end - start).days
            if dose is not None:
                low = dose if low is None else min(low, dose)
                high = dose if high is None else max(high, dose)
            self._lowest.append(low)
            self._highest.append(high)

    @classmethod
    def of(cls, episode: Episode, until: date) -> AdequateTime:
        """The adequate segments of ``episode`` before ``until`` (its end or last outcome)."""
        floor = episode.ingredient.min_effective_mg_per_day
        segments = []
        for start, end, dose in dose_segments(episode, until):
            # An unknown dose ("take as directed") is not known to be adequate: missing, not
            # evidence. Where no minimum is tabled, any dose is.
            if floor is None or (dose is not None and dose >= floor):
                segments.append((start, end, dose))
        return cls(segments)

    def reaches(self, days: int) -> date | None:
        """The day on which ``days`` days at an adequate dose have been completed, if ever."""
        for i, start in enumerate(self._starts):
            if self._totals[i] + (self._ends[i] - start).days >= days:
                return start + timedelta(days=days - self._totals[i])
        return None

    def until(self, when: date) -> tuple[int, tuple[float, float] | None]:
        """Days at an adequate dose before ``when``, and the lowest and highest known dose on
        them (None when every one of those days had an unknown dose)."""
        i = bisect_left(self._starts, when) - 1  # the last segment that began before ``when``
        if i < 0:
            return 0, None
        days = self._totals[i] + (min(self._ends[i], when) - self._starts[i]).days
        low, high = self._lowest[i], self._highest[i]
        return days, None if low is None or high is None else (low, high)


def dose_segments(episode: Episode, until: date) -> list[tuple[date, date, float | None]]:
    """The episode's days before ``until`` cut where the daily dose changes, as (first day,
    day after the last, dose): each course holds from its start until the next course of the
    episode starts (the latest order is the one in effect; a gap between renewals short enough
    to keep one episode is continued use), the last one until ``until``; within a multi-step
    order, each step from its start until the next (``timeline.dose_on``)."""
    segments: list[tuple[date, date, float | None]] = []
    courses = episode.courses
    for i, course in enumerate(courses):
        start = course.start or episode.start
        end = until if i + 1 == len(courses) else min(courses[i + 1].start or until, until)
        if end <= start:
            continue
        cuts = sorted(
            {s.start for s in course.steps if s.start is not None and start < s.start < end}
        )
        for first, after in zip([start, *cuts], [*cuts, end], strict=True):
            segments.append((first, after, dose_on(course, first)))
    return segments
