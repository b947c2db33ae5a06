"""Which old psychotropic orders no pattern can read, decided before mapping them in full.

A long history is mostly old MedicationRequests (and MedicationStatements). Unlike a visit, an old
order can still matter years later: courses of one ingredient no more than the continuation gap
apart are one episode, and an episode's gap since the previous one and the previous dose read
the courses before it (``cds_service.patterns.timeline``). So an order is left unmapped only when
both of these hold (``OrderHorizon``: ``cutoff``, ``gap_days``, ``now``):

1. **A plain, closed, old order** (``order_candidates.candidate``): one psychotropic
   ingredient; at most one Dosage line (so no dose steps) with no ``boundsDuration`` or
   ``boundsRange``; every date the course mapping reads (``authoredOn``, ``dateWritten``,
   ``boundsPeriod.start``/``end``, ``dateEnded``, ``dispenseRequest.validityPeriod``; for a
   statement ``effective[x]`` and ``dateAsserted``) a full ISO day before ``cutoff``; an end
   date, not before the start; and no stop reason that reads as an intolerance or allergy (that
   would be an intolerance event, which repeated-intolerance lists whatever its age). So it is
   not current, it is never stale, its last day is its end, and its start and end are known
   without mapping it.
2. **Older than its ingredient's reach** (``plan_drops``): the ingredient's dated courses are cut
   into chains at ``gap_days`` (the largest continuation gap of the enabled patterns; every
   pattern's episodes, whichever courses it leaves out, lie inside these chains). Chains from
   the first one holding an order that is not a candidate are kept whole. Before it, walking
   back from the newest candidate, each is mapped and kept until a *sentinel*: a course every
   pattern's episodes include (taken, not as-needed) with a known dose. Older candidates are
   dropped, except any that ends after the sentinel. So the first kept episode after them gets
   the same gap (the latest last day before it is the sentinel's or a kept one's) and the same
   previous dose (the latest known dose before it is the sentinel's or a later one), and so do
   a draft's episode and every later one; the episodes before it, cut differently, all end
   before ``cutoff``, which lies beyond every window of every enabled pattern
   (``cds_service.patterns.order_reach``): no event, trial, switch or renewal reads them.

Across ingredients: an episode that stopped without an end date (its last course open-ended
but not current) ends, for multiple-failed-trials and regimen-escalation, where the next episode
of another agent of its class begins, however much later. Dropping orders cuts the episodes
before the kept ones differently, so their starts may move; hence chains that last past the
earliest start of such a course of the class (its ``barrier``) are kept whole, like the chains
after them: every episode that starts after such a stop is then the same with or without the
dropped orders.

The same ``map_record`` call without an ``OrderHorizon`` maps every order. Orders left out
report no ``MappingIssue`` but their medication's, which ``map_record`` reads for every order
before this test (old visits and scores report none); their ``#<position>`` references and
those of every other resource are unchanged, since positions are counted before this.
Should a kept candidate's full mapping disagree with its quick reading, nothing is dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from fhir_mappers.medication_requests import MappedCourse
from fhir_mappers.order_candidates import Candidate
from fhir_mappers.record import MedicationCourse, is_current, last_taken, was_taken


@dataclass(frozen=True, slots=True)
class OrderHorizon:
    """How far back orders can matter: ``cutoff`` (orders wholly before it may be dropped),
    ``gap_days`` (the largest ``continuation_gap_days`` of the enabled patterns) and ``now``
    (the day the patterns are evaluated at; it must be the same day)."""

    cutoff: date
    gap_days: int
    now: date
    cutoff_text: tuple[date, str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cutoff_text", (self.cutoff, self.cutoff.isoformat()))


@dataclass(slots=True)
class _Entry:
    start: date
    ref: str
    last_day: date
    candidate: Candidate | None  # None: a course already mapped (kept)


_MapInFull = Callable[[Candidate], MappedCourse | None]


def plan_drops(
    kept: Iterable[MedicationCourse],
    candidates: list[Candidate],
    horizon: OrderHorizon,
    map_in_full: _MapInFull,
) -> list[Candidate]:
    """The candidates to leave unmapped; every other candidate is mapped with ``map_in_full``
    (which keeps its course) on the way. ``kept`` are the courses mapped so far (every order
    that is not a candidate). Should a kept candidate's full mapping disagree with its cheap
    reading (start, end, its one ingredient, no intolerance event), nothing is dropped: every
    candidate is mapped."""
    now = horizon.now
    wanted = {found.ingredient for found in candidates}
    by_ingredient: dict[str, list[_Entry]] = defaultdict(list)
    barrier: dict[str, date] = {}
    for course in kept:
        if course.start is None or course.start > now:
            continue  # never in an episode
        if course.end is None and not is_current(course, now):
            for ingredient in course.psychotropic_ingredients:
                seen = barrier.get(ingredient.drug_class)
                barrier[ingredient.drug_class] = min(seen or course.start, course.start)
        names = [i.name for i in course.psychotropic_ingredients if i.name in wanted]
        if names:
            entry = _Entry(course.start, course.ref, last_taken(course, now) or now, None)
            for name in names:
                by_ingredient[name].append(entry)
    for found in candidates:
        by_ingredient[found.ingredient].append(_Entry(found.start, found.ref, found.end, found))
    plan = _Plan(map_in_full)
    for entries in by_ingredient.values():
        kind = next(e.candidate.drug_class for e in entries if e.candidate is not None)
        plan.ingredient(entries, horizon.gap_days, barrier.get(kind))
    if plan.disagreed:
        for found in plan.dropped:
            map_in_full(found)
        return []
    return plan.dropped


class _Plan:
    """The candidates dropped so far, and whether a kept one's full mapping disagreed."""

    __slots__ = ("disagreed", "dropped", "map_in_full")

    def __init__(self, map_in_full: _MapInFull) -> None:
        self.map_in_full = map_in_full
        self.dropped: list[Candidate] = []
        self.disagreed = False

    def ingredient(self, entries: list[_Entry], gap_days: int, barrier: date | None) -> None:
        """One ingredient: its courses cut into chains at ``gap_days``; chains from the first
        holding a course already mapped, or one that lasts past ``barrier``, are kept; before
        it, walking back from the newest candidate, each is kept until a sentinel; older
        candidates are dropped unless they outlast the sentinel. Kept candidates are mapped."""
        entries.sort(key=lambda e: (e.start, e.ref))
        chains: list[list[_Entry]] = []
        last: date | None = None
        for entry in entries:
            if last is None or (entry.start - last).days > gap_days:
                chains.append([])
            chains[-1].append(entry)
            last = entry.last_day if last is None else max(last, entry.last_day)
        first_kept = next(
            (i for i, chain in enumerate(chains) if any(_forced(e, barrier) for e in chain)),
            len(chains),
        )
        old = [e for chain in chains[:first_kept] for e in chain]
        for index in range(len(old) - 1, -1, -1):
            if _is_sentinel(self.kept(old[index])):
                sentinel_last = old[index].last_day
                for entry in old[:index]:
                    if entry.last_day > sentinel_last:
                        self.kept(entry)
                    else:
                        self.dropped.append(_candidate_of(entry))
                break
        for chain in chains[first_kept:]:
            for entry in chain:
                if entry.candidate is not None:
                    self.kept(entry)

    def kept(self, entry: _Entry) -> MedicationCourse | None:
        """Maps a kept candidate; notes a disagreement with its cheap reading."""
        found = _candidate_of(entry)
        mapped = self.map_in_full(found)
        course = mapped.course if mapped is not None else None
        if (
            mapped is None
            or course is None
            or mapped.intolerance is not None
            or course.start != found.start
            or course.end != found.end
            or len(course.ingredients) != 1
            or course.ingredients[0].name != found.ingredient
        ):
            self.disagreed = True
        return course


def _forced(entry: _Entry, barrier: date | None) -> bool:
    """Kept whatever else: a course already mapped, or a candidate that lasts past the barrier
    (the earliest start of a kept course of its class that is open-ended but not current)."""
    return entry.candidate is None or (barrier is not None and entry.last_day > barrier)


def _candidate_of(entry: _Entry) -> Candidate:
    if entry.candidate is None:  # chains before the first kept one hold candidates only
        raise AssertionError("a mapped course where only candidates can be")
    return entry.candidate


def _is_sentinel(course: MedicationCourse | None) -> bool:
    """A course every pattern's episodes include, with a known dose: taken (not a draft,
    error, cancelled, not-taken or proposal), not as-needed, a single-ingredient dose."""
    return (
        course is not None
        and was_taken(course)
        and not course.is_prn
        and len(course.ingredients) == 1
        and course.daily_dose_mg is not None
    )
