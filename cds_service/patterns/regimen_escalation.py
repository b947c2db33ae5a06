"""regimen-escalation: new agents and higher doses following each other quickly.

Definition: no standard measure exists; an escalation is a new standing psychotropic agent or a
daily-dose increase beyond the ingredient's labelled titration. The threshold (3 in 6 months) is a
LOCAL CHOICE (psychotropic-domain.md §6: "no standard; configurable"). The clinical reading is
Mintz's: nonresponse may call for more frequent appointments rather than a higher dose (D. Mintz,
"Psychodynamic Psychopharmacology: Addressing the Underlying Causes of Treatment Resistance",
Psychiatric Times, September 2011, https://www.austenriggs.org/resource/psychodynamic-
psychopharmacology-addressing-underlying-causes-treatment-resistance). Titration figures:
shared/reference/clinical-review.md (lamotrigine's label schedule, lithium to a serum level,
quetiapine 300 mg/day in bipolar depression), per ingredient in config/ingredients.csv.

**When** at least ``min_escalations`` escalations fall within the last ``window_days`` (the draft,
dated today, counts when it is one). A new agent is the first course of an ingredient, or a
restart after more than ``restart_as_new_after_days`` without it; a dose increase compares a
course's daily dose with that of the course before it of the same ingredient (courses at most
``continuation_gap_days`` apart are continuous use), and after a course of unknown dose the next
known dose is no known increase (when the dose rose is not known).

**Unless** the course is taken as needed (PRN additions are not the standing regimen); the new
agent replaces one of the same class stopped (or planned to stop) within ``switch_window_days``
of its start (a switch, not an added agent: one stop excuses one start, the nearest; a stop with
no date lies between the episode's last known day and its last sign of life, the last fill's
supply or renewal, never later); the higher dose is of another dose form (an injectable by
``injectable_form_words`` after an oral course, or back: mg/day is not comparable across forms);
or the increase stays within the ingredient's
labelled titration target for the patient's indications (``Ingredient.titration_target``;
indications from conditions matching ``indication_codes``; "level" = lithium, titrated to a
serum level), unless ``count_titration_steps`` is true. Active orders with no sign of use for
``stale_order_days`` do not continue an episode. Decreases, stops and same-dose renewals never
count.

**Then** an ``info`` card: before the next change, consider seeing the patient more often, and ask
what the patient and the prescriber hope the change will do. ``concerns_draft`` when the draft is
itself an escalation. Override reasons in ``cards/wording/regimen-escalation.yaml``.

**Thresholds** ``patterns.regimen-escalation``: ``min_escalations``, ``window_days``,
``restart_as_new_after_days``, ``switch_window_days``, ``continuation_gap_days``,
``count_titration_steps``, ``indication_codes``, ``stale_order_days``,
``injectable_form_words``.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from cds_service.patterns.abstention import NotEvaluable, data_unavailable
from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import (
    daily_dose_label,
    dose_text,
    months,
    one_line_per_drug,
    ordered_evidence,
    unique_refs,
)
from cds_service.patterns.regimen import (
    given_as_depot,
    indications,
    is_stale,
    signs_of_life,
)
from cds_service.patterns.timeline import (
    Episode,
    RegimenEvent,
    dated_drafts,
    episode_events,
    episodes,
    psychotropic_names,
    single_dose,
    taken_courses,
)
from fhir_mappers.record import DraftOrders, MedicationCourse, PatientRecord

PATTERN_ID = "regimen-escalation"

EscalationKind = Literal["new_agent", "dose_increase"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Values come from ``config/default.yaml`` (no defaults here: one source of numbers)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_escalations: int
    window_days: int
    restart_as_new_after_days: int
    switch_window_days: int
    continuation_gap_days: int
    count_titration_steps: bool
    indication_codes: Mapping[str, tuple[str, ...]]
    stale_order_days: int
    injectable_form_words: tuple[str, ...]
    injection_route_codes: tuple[str, ...]
    injection_route_words: tuple[str, ...]
    less_than_daily_sig_words: tuple[str, ...]
    sig_interval_units: Mapping[str, float]
    daily_sig_words: tuple[str, ...]

    def windows_days(self) -> tuple[int, ...]:
        """The look-back windows this pattern reads, nested (their sum is its reach)."""
        return (self.window_days, self.restart_as_new_after_days)

    def visit_windows_days(self) -> tuple[int, ...]:
        """The windows over which this pattern reads visits (Encounters), nested; () when it
        reads none. It reads no visits."""
        return ()


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | NotEvaluable | None:
    """Escalation as of ``now`` (dates in days); None when it is not there, ``NotEvaluable``
    when it would be but the orders did not arrive in full (``PatientRecord.incomplete``)."""
    since = now - timedelta(days=thresholds.window_days)
    signs = signs_of_life(record)
    courses = [
        c
        for c in [*taken_courses(record), *dated_drafts(drafts, now)]
        if not c.is_prn and not is_stale(c, record, now, thresholds.stale_order_days, signs)
    ]
    gap = thresholds.continuation_gap_days
    all_episodes = episodes(courses, now, continuation_gap_days=gap)
    treated_for = indications(record, thresholds.indication_codes)
    replacing = _replacing_starts(all_episodes, record, thresholds)
    escalations: list[tuple[RegimenEvent, EscalationKind]] = []
    titration_steps = switches = 0
    for event in episode_events(all_episodes, now, since=since):
        kind = _escalation_kind(event, thresholds) if since <= event.when <= now else None
        if kind is None:
            continue
        if kind == "new_agent" and (event.ingredient.name, event.when) in replacing:
            switches += 1
            continue
        if kind == "dose_increase" and _changes_form(event, all_episodes, thresholds):
            continue
        if _excluded(event, kind, thresholds, treated_for):
            titration_steps += 1
            continue
        escalations.append((event, kind))
    escalations = _one_per_product(escalations)
    if not _included(escalations, thresholds):
        return None
    # An order missing from partial data can make a continuing agent read as a new one.
    unavailable = data_unavailable(PATTERN_ID, record.incomplete, ("MedicationRequest",))
    if unavailable is not None:
        return unavailable
    facts: dict[str, object] = {
        "escalation_count": len(escalations),
        "window_months": months(thresholds.window_days),
        "min_escalations": thresholds.min_escalations,
        "new_agents": list(
            dict.fromkeys(e.ingredient.name for e, k in escalations if k == "new_agent")
        ),
        "dose_increases": [_increase_text(e) for e, k in escalations if k == "dose_increase"],
        "draft_ingredients": psychotropic_names(drafts),
        "titration_steps_not_counted": titration_steps,
        "switches_not_counted": switches,
    }
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(
            one_line_per_drug(
                (e.ingredient.name, _evidence_item(e, k, thresholds)) for e, k in escalations
            )
        ),
        facts=facts,
        evidence_keys=frozenset(f"escalation:{e.course.ref}" for e, _ in escalations),
        concerns_draft=any(e.course.is_draft for e, _ in escalations),
        references=unique_refs(e.course.ref for e, _ in escalations),
    )


def _one_per_product(
    escalations: list[tuple[RegimenEvent, EscalationKind]],
) -> list[tuple[RegimenEvent, EscalationKind]]:
    """One escalation per course and kind for the ingredients of one chemical subgroup
    (ATC-4): mixed amphetamine salts (amphetamine and dextroamphetamine in one product) started
    are one new agent, not two. Components of different subgroups (olanzapine/fluoxetine)
    stay apart."""
    seen: set[tuple[str, str, str]] = set()
    kept: list[tuple[RegimenEvent, EscalationKind]] = []
    for event, kind in escalations:
        key = (event.course.ref, kind, event.ingredient.atc4)
        if key in seen:
            continue
        seen.add(key)
        kept.append((event, kind))
    return kept


def _included(
    escalations: list[tuple[RegimenEvent, EscalationKind]], thresholds: Thresholds
) -> bool:
    """Enough escalations in the window."""
    return len(escalations) >= thresholds.min_escalations


def _excluded(
    event: RegimenEvent,
    kind: EscalationKind,
    thresholds: Thresholds,
    treated_for: frozenset[str],
) -> bool:
    """A dose increase that stays within the ingredient's labelled titration."""
    if thresholds.count_titration_steps or kind != "dose_increase" or event.dose is None:
        return False
    target = event.ingredient.titration_target(treated_for)
    return target is not None and event.dose <= target


def _escalation_kind(event: RegimenEvent, thresholds: Thresholds) -> EscalationKind | None:
    if event.kind == "start":
        return "new_agent"
    if event.kind == "restart" and (event.gap_days or 0) > thresholds.restart_as_new_after_days:
        return "new_agent"
    if event.kind in ("restart", "dose_increase") and _is_higher(event):
        return "dose_increase"
    return None


@dataclass(frozen=True, slots=True)
class _Stop:
    """An episode that ended (or is planned to end), and the days its stop may lie on: one day
    when the stop is dated, else from its last known day to its last sign of life."""

    episode: Episode
    earliest: date
    latest: date

    def days_from(self, day: date) -> int:
        """Days between ``day`` and the nearest day the stop may lie on (0 within the span)."""
        if day < self.earliest:
            return (self.earliest - day).days
        return max((day - self.latest).days, 0)


def _replacing_starts(
    all_episodes: Sequence[Episode], record: PatientRecord, thresholds: Thresholds
) -> frozenset[tuple[str, date]]:
    """The new-agent starts that replace a stopped agent of their class: (ingredient, start).

    One stop excuses one start: stops in date order, each takes the nearest start not yet taken
    of another ingredient of its class that began after the stopped episode, at most
    ``switch_window_days`` from the day it stopped. The starts of each class are sorted, so a
    stop looks only at those within the window (bisection), not at every episode."""
    window = timedelta(days=thresholds.switch_window_days)
    by_class: dict[str, list[Episode]] = {}
    for e in sorted(all_episodes, key=lambda e: e.start):
        if e.gap_before is None or e.gap_before > thresholds.restart_as_new_after_days:
            by_class.setdefault(e.ingredient.drug_class, []).append(e)
    class_days = {k: [e.start for e in v] for k, v in by_class.items()}
    signs = _SignsOfUse(all_episodes, record)
    stops = [s for e in all_episodes if (s := _stop_of(e, signs)) is not None]
    stops.sort(key=lambda s: (s.latest, s.earliest, s.episode.ingredient.name))
    taken: set[tuple[str, date]] = set()
    for stop in stops:
        stopped = stop.episode
        same_class = by_class.get(stopped.ingredient.drug_class, [])
        days = class_days.get(stopped.ingredient.drug_class, [])
        near = same_class[
            bisect_left(days, _shifted(stop.earliest, -window))
            : bisect_right(days, _shifted(stop.latest, window))
        ]
        candidates = [
            (stop.days_from(e.start), e.start, e.ingredient.name)
            for e in near
            if e.ingredient.name != stopped.ingredient.name
            and e.start > stopped.start
            and (e.ingredient.name, e.start) not in taken
        ]
        nearest = min(candidates, default=None)
        if nearest is not None and nearest[0] <= thresholds.switch_window_days:
            taken.add((nearest[2], nearest[1]))
    return frozenset(taken)


def _shifted(day: date, by: timedelta) -> date:
    # A planned end of 9999-12-31 ("open-ended" in some EHRs) has no day after it.
    try:
        return day + by
    except OverflowError:
        return date.max if by > timedelta(0) else date.min


def _stop_of(episode: Episode, signs: _SignsOfUse) -> _Stop | None:
    """When the episode ended or is planned to end; None while it runs without a planned end.

    A stop without a date (common in R4 exports) lies somewhere between the episode's last
    known day and its last sign of life; never later: a missing date is no evidence of a
    switch."""
    planned = episode.ending_course.end
    if planned is not None:
        return _Stop(episode, planned, planned)
    if episode.is_open:
        return None
    return _Stop(episode, episode.last_day, signs.last_of(episode))


class _SignsOfUse:
    """Per ingredient, the starts of its episodes and the days its completed fills cover, each
    sorted once, so that an episode's last sign of life is found by bisection."""

    __slots__ = ("_fills", "_starts")

    def __init__(self, all_episodes: Sequence[Episode], record: PatientRecord) -> None:
        self._starts: dict[str, list[date]] = {}
        for e in all_episodes:
            self._starts.setdefault(e.ingredient.name, []).append(e.start)
        for days in self._starts.values():
            days.sort()
        # (hand-over, last day covered) of completed, dated fills, by ingredient.
        self._fills: dict[str, list[tuple[date, date]]] = {}
        for fill in record.dispenses:
            when = fill.handed_over
            if fill.status != "completed" or when is None:
                continue
            covered = math.ceil(fill.days_supply) - 1 if fill.days_supply else 0
            for name in {i.name for i in fill.ingredients}:
                self._fills.setdefault(name, []).append(
                    (when, when + timedelta(days=max(covered, 0)))
                )
        for fills in self._fills.values():
            fills.sort()

    def last_of(self, episode: Episode) -> date:
        """The latest day the episode shows use: its last day, a renewal's start or statement,
        or the last day a fill of the ingredient handed over during the episode covers (fills
        of a later episode of the same ingredient are that episode's)."""
        name = episode.ingredient.name
        starts = self._starts.get(name, [])
        following = starts[bisect_right(starts, episode.start) :]
        before = following[0] if following else date.max
        days = [episode.last_day]
        days += [c.start for c in episode.courses if c.start is not None]
        days += [c.asserted for c in episode.courses if c.asserted is not None]
        fills = self._fills.get(name, [])
        first = bisect_left(fills, (episode.start, date.min))
        last = bisect_left(fills, (before, date.min))
        days += [end for _, end in fills[first:last]]
        return max(days)


def _changes_form(
    event: RegimenEvent, all_episodes: Sequence[Episode], thresholds: Thresholds
) -> bool:
    """The higher daily dose belongs to another dose form than the dose it is compared with
    (oral tablets to a long-acting injection): mg/day is not comparable across them, and a
    long-acting injection's labelled dose is not an increase."""
    previous = _previous_dosed_course(event, all_episodes)
    return previous is not None and given_as_depot(previous, thresholds) != given_as_depot(
        event.course, thresholds
    )


def _previous_dosed_course(
    event: RegimenEvent, all_episodes: Sequence[Episode]
) -> MedicationCourse | None:
    """The course whose daily dose ``event.previous_dose`` is: the last course of the same
    ingredient before the event's course with a known dose (as ``timeline`` carries it)."""
    ordered = [
        c for e in all_episodes if e.ingredient.name == event.ingredient.name for c in e.courses
    ]
    index = next((i for i, c in enumerate(ordered) if c is event.course), None)
    if index is None:
        return None
    return next((c for c in reversed(ordered[:index]) if single_dose(c) is not None), None)


def _is_higher(event: RegimenEvent) -> bool:
    return (
        event.dose is not None
        and event.previous_dose is not None
        and event.dose > event.previous_dose
    )


def _increase_text(event: RegimenEvent) -> str:
    before, after = dose_text(event.previous_dose), dose_text(event.dose)
    return f"{event.ingredient.name} from {before} to {after} mg/day"


def _evidence_item(
    event: RegimenEvent, kind: EscalationKind, thresholds: Thresholds
) -> EvidenceItem:
    course: MedicationCourse = event.course
    if kind == "dose_increase":
        note = f"up from {dose_text(event.previous_dose)} mg/day"
    elif event.kind == "restart":
        note = f"restarted after {months(event.gap_days or 0)} months"
    else:
        note = "new agent"
    if course.is_draft:
        note += ", draft order"  # the card adds the date in brackets
    return EvidenceItem(
        ref=course.ref,
        # An injection every few weeks has no daily dose as written; its mg/day average would
        # read as a dose nobody prescribed: its schedule as written, else the name alone.
        label=daily_dose_label(
            event.ingredient.name,
            None if given_as_depot(course, thresholds) else event.dose,
            course.schedule,
        ),
        when=event.when,
        note=note,
    )
