"""PatientRecord -> Timeline: what the medication-history picture shows, as plain data.

One lane per psychotropic ingredient, grouped by class. A lane holds the courses of that ingredient
(cut into episodes of continuous use exactly as the patterns cut them, ``patterns.timeline``), the
stop of each episode with its reason, the intolerance and allergy records with their reaction, and
the dispenses. PHQ-9/GAD-7 scores and visits belong to the whole patient. Nothing here draws;
``svg`` and ``text`` render the same Timeline, so the picture and its text alternative agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from typing import Any, get_args

from cds_service.patterns.timeline import (
    Episode,
    episodes,
    has_dated_stop,
    last_taken,
    single_dose,
    taken_courses,
)
from fhir_mappers.record import (
    DrugClass,
    Ingredient,
    IntoleranceEvent,
    MedicationCourse,
    PatientRecord,
    StopReasonKind,
)

# Display order of the classes (and of the legend): the order the record declares them in; "other"
# lanes only appear for intolerances to ingredients the table lists without counting them as
# psychotropic (never, today).
CLASS_ORDER: tuple[str, ...] = get_args(DrugClass)
CLASS_LABELS = {
    "antidepressant": "Antidepressants",
    "antipsychotic": "Antipsychotics",
    "mood_stabilizer": "Mood stabilisers",
    "anxiolytic_hypnotic": "Anxiolytics and hypnotics",
    "stimulant": "Stimulants",
    "other": "Other",
}
STOP_LABELS: Mapping[StopReasonKind | None, str] = {
    "intolerance": "side effects",
    "allergy": "allergy",
    "lack_of_effect": "lack of effect",
    "patient_choice": "patient choice",
    "other": "other reason",
    None: "reason not recorded",
}
# Used when no pattern is enabled (nothing to size the window by).
FALLBACK_WINDOW_DAYS = 365


@dataclass(frozen=True, slots=True)
class Segment:
    """One course drawn on its lane: from ``start`` to ``end`` at one daily dose."""

    ref: str
    start: date
    end: date
    dose_mg: float | None
    display: str
    end_known: bool  # False when the record gives no end (drawn as a short stub)
    is_prn: bool = False


@dataclass(frozen=True, slots=True)
class StopMark:
    """The end of an episode: its date, the course that ended it, and why."""
    ref: str
    when: date
    reason: StopReasonKind | None
    status: str

    @property
    def label(self) -> str:
        """How the stop reads on the picture: "side effects", "completed", ..."""
        if self.reason is None and self.status == "completed":
            return "completed"
        return STOP_LABELS[self.reason]


@dataclass(frozen=True, slots=True)
class ReactionMark:
    """An intolerance or allergy record on the ingredient's lane, with its reactions."""
    ref: str
    when: date | None
    kind: str  # "intolerance" or "allergy"
    reactions: tuple[str, ...]

    @property
    def label(self) -> str:
        """The reactions, or the record's kind when none is named."""
        return ", ".join(self.reactions) if self.reactions else self.kind


@dataclass(frozen=True, slots=True)
class DispenseMark:
    """A dispense (handed over on ``when``), drawn as a tick under the lane."""
    ref: str
    when: date
    days_supply: float | None


@dataclass(frozen=True, slots=True)
class Lane:
    """One psychotropic ingredient: its courses, stops, reactions and dispenses."""
    ingredient: str
    drug_class: str
    subclass: str
    segments: tuple[Segment, ...]
    stops: tuple[StopMark, ...]
    reactions: tuple[ReactionMark, ...]
    dispenses: tuple[DispenseMark, ...]

    @property
    def refs(self) -> frozenset[str]:
        """Every FHIR reference drawn on the lane (to tell whether it holds evidence)."""
        items: Iterable[Any] = (*self.segments, *self.stops, *self.reactions, *self.dispenses)
        return frozenset(i.ref for i in items)


@dataclass(frozen=True, slots=True)
class ScorePoint:
    """A PHQ-9 or GAD-7 total on ``when``."""
    ref: str
    instrument: str  # "PHQ-9" or "GAD-7"
    when: date
    value: float


@dataclass(frozen=True, slots=True)
class VisitTick:
    """An encounter on the time axis; completed outpatient visits are solid ticks."""
    ref: str
    when: date
    completed_outpatient: bool
    class_code: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """Everything one picture shows, between ``start`` and ``end`` (both dates)."""
    start: date  # left edge of the window
    end: date  # right edge (today)
    lanes: tuple[Lane, ...]  # grouped by class in CLASS_ORDER, then by first use
    scores: tuple[ScorePoint, ...]
    visits: tuple[VisitTick, ...]
    highlight: frozenset[str] = field(default_factory=frozenset)
    is_whole_history: bool = False

    @property
    def classes(self) -> tuple[str, ...]:
        """The drug classes that have lanes, in display order."""
        return tuple(dict.fromkeys(lane.drug_class for lane in self.lanes))

    def lanes_of(self, drug_class: str) -> tuple[Lane, ...]:
        """The lanes of one class, in display order."""
        return tuple(lane for lane in self.lanes if lane.drug_class == drug_class)

    def is_evidence(self, ref: str) -> bool:
        """True when ``ref`` is cited by the card that opened the picture."""
        return ref in self.highlight


def longest_window_days(patterns: Mapping[str, Any]) -> int:
    """The longest ``*_days`` threshold of the patterns that are not ``off`` (days).

    ``patterns`` maps pattern id to its settings (``mode`` and a ``thresholds`` dataclass), as in
    ``Settings.patterns``: the picture opens on the span the enabled patterns look at.
    """
    longest = 0
    for pattern_settings in patterns.values():
        if pattern_settings.mode == "off":
            continue
        thresholds = pattern_settings.thresholds
        for f in fields(thresholds):
            if f.name.endswith("_days"):
                longest = max(longest, int(getattr(thresholds, f.name)))
    return longest or FALLBACK_WINDOW_DAYS


def continuation_gap_days(patterns: Mapping[str, Any]) -> int:
    """The gap that still joins two courses of one drug into one bar: the one the patterns use
    (``continuation_gap_days`` in config/default.yaml), the longest where they differ."""
    gaps = [
        int(getattr(p.thresholds, "continuation_gap_days", 0)) for p in patterns.values()
    ]
    return max(gaps, default=0)


def build_timeline(
    record: PatientRecord,
    *,
    now: date,
    window_days: int | None,
    highlight: Iterable[str] = (),
    gap_days: int,
) -> Timeline:
    """The picture's data as of ``now``; ``window_days=None`` shows the whole history.

    Lanes are kept for every psychotropic ingredient, also those used only before the window
    (their bars are clipped away, the lane and its text stay), so that no tried agent is hidden.
    """
    courses = [c for c in taken_courses(record) if c.is_psychotropic]
    by_name: dict[str, Ingredient] = {}
    segments: dict[str, list[Segment]] = defaultdict(list)
    stops: dict[str, list[StopMark]] = defaultdict(list)
    for episode in episodes(courses, now, continuation_gap_days=gap_days):
        name = episode.ingredient.name
        by_name.setdefault(name, episode.ingredient)
        segments[name].extend(_segments(episode, now))
        stop = _stop(episode, now)
        if stop is not None:
            stops[name].append(stop)
    reactions: dict[str, list[ReactionMark]] = defaultdict(list)
    for event in record.intolerances:
        for ingredient in _lane_ingredients(event):
            by_name.setdefault(ingredient.name, ingredient)
            reactions[ingredient.name].append(
                ReactionMark(event.ref, event.when, event.kind, event.manifestations)
            )
    dispenses: dict[str, list[DispenseMark]] = defaultdict(list)
    for dispense in record.dispenses:
        if dispense.handed_over is None:
            continue
        for ingredient in dispense.ingredients:
            if ingredient.name in by_name:
                dispenses[ingredient.name].append(
                    DispenseMark(dispense.ref, dispense.handed_over, dispense.days_supply)
                )
    lanes = [
        Lane(
            ingredient=name,
            drug_class=ingredient.drug_class,
            subclass=ingredient.subclass,
            segments=tuple(segments[name]),
            stops=tuple(stops[name]),
            reactions=tuple(reactions[name]),
            dispenses=tuple(dispenses[name]),
        )
        for name, ingredient in by_name.items()
    ]
    lanes.sort(key=lambda lane: (_class_rank(lane.drug_class), _first_day(lane), lane.ingredient))
    scores = tuple(
        ScorePoint(s.ref, s.instrument, s.when, s.value) for s in record.scores if s.when
    )
    visits = tuple(
        VisitTick(v.ref, v.start, v.is_completed_outpatient, v.class_code)
        for v in record.visits
        if v.start is not None and v.status != "cancelled"
    )
    start = _window_start(lanes, scores, visits, now, window_days)
    return Timeline(
        start=start,
        end=now,
        lanes=tuple(lanes),
        scores=scores,
        visits=visits,
        highlight=frozenset(highlight),
        is_whole_history=window_days is None,
    )


def _lane_ingredients(event: IntoleranceEvent) -> tuple[Ingredient, ...]:
    # A stop for side effects is already drawn as the course's stop mark with its reason; the
    # AllergyIntolerance records (and stops that name the reaction) add what the reaction was.
    if event.origin != "AllergyIntolerance" and not event.manifestations:
        return ()
    return tuple(i for i in event.ingredients if i.is_psychotropic)


def _segments(episode: Episode, now: date) -> list[Segment]:
    result: list[Segment] = []
    ordered = [c for c in episode.courses if c.start is not None]
    for index, course in enumerate(ordered):
        start = course.start or episode.start
        following = ordered[index + 1].start if index + 1 < len(ordered) else None
        end, known = _course_end(course, now, following)
        result.append(
            Segment(
                ref=course.ref,
                start=start,
                end=max(end, start),
                dose_mg=single_dose(course),
                display=course.display,
                end_known=known,
                is_prn=course.is_prn,
            )
        )
    return result


def _course_end(
    course: MedicationCourse, now: date, following: date | None
) -> tuple[date, bool]:
    """Where a course's bar stops: its end, the next course of the episode, or today."""
    taken = last_taken(course, now)
    has_end = course.end is not None or taken == now
    if following is not None and (not has_end or (taken is not None and taken > following)):
        # A dose change arrives as a new order that replaces this one.
        return following, True
    if taken is None or (not has_end and taken == course.start):
        return course.start or now, False
    return taken, True


def _stop(episode: Episode, now: date) -> StopMark | None:
    if episode.is_open:
        return None
    ending = episode.ending_course
    reason = ending.stop_reason or next(
        (c.stop_reason for c in reversed(episode.courses) if c.stop_reason), None
    )
    if not has_dated_stop(ending, now) and reason is None and ending.status != "stopped":
        return None
    return StopMark(ending.ref, episode.last_day, reason, ending.status)


def _class_rank(drug_class: str) -> int:
    return CLASS_ORDER.index(drug_class) if drug_class in CLASS_ORDER else len(CLASS_ORDER)


def _first_day(lane: Lane) -> date:
    days = [s.start for s in lane.segments] + [r.when for r in lane.reactions if r.when]
    return min(days) if days else date.max


def _window_start(
    lanes: Iterable[Lane],
    scores: Iterable[ScorePoint],
    visits: Iterable[VisitTick],
    now: date,
    window_days: int | None,
) -> date:
    if window_days is not None:
        return now - timedelta(days=window_days)
    days = [now - timedelta(days=30)]
    for lane in lanes:
        days.extend(s.start for s in lane.segments)
        days.extend(r.when for r in lane.reactions if r.when)
        days.extend(d.when for d in lane.dispenses)
    days.extend(s.when for s in scores)
    days.extend(v.when for v in visits)
    return min(days)
