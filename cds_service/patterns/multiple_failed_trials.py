"""multiple-failed-trials: two or more adequate trials of different agents have not helped enough.

Definition: treatment-resistant ("difficult-to-treat") depression = non-response to at least 2
different antidepressants at an adequate dose for an adequate duration (Thase & Rush 1997; Delphi
consensus, Depress Anxiety 2021;38:456; McAllister-Williams et al., J Affect Disord 2020;267:264);
treatment-resistant schizophrenia likewise counts >= 2 different antipsychotics (TRRIP, Howes et
al., Am J Psychiatry 2017;174:216). Operationalised in psychotropic-domain.md §2.1: a trial is
continuous use of one ingredient (gaps <= 30 days) at >= the minimum effective dose for >= 28
days, followed by a switch or an augmenting agent, with PHQ-9 >= 10 as the persistence signal.

**When** within ``lookback_days`` at least ``min_failed_trials`` different ingredients of one class
in ``trial_classes`` (antidepressants, or separately antipsychotics) each had an adequate trial
that ended (stopped, completed, or replaced) or was augmented (an antidepressant, antipsychotic or
mood stabilizer added while it continued) while symptoms persisted: the PHQ-9 closest to the end
(or to the augmentation date), within ``score_window_days``, is >= ``phq9_persisting_min``; or the
trial was stopped for lack of effect. Adequate = >= ``min_trial_days`` from the first course at or
above ``Ingredient.min_effective_mg_per_day``; where the dose or the minimum is unknown, the trial
counts on duration alone and ``dose_unknown_trials`` says how many did. Dose changes of one
ingredient are one trial (its courses merge into one episode). A trial stopped without an end date
(common in R4 exports) is taken to have run until the next agent of its class was started (the
switch), or, without one, until its last course was written.

**Unless** the trial ended because the medication was not tolerated (stop reason intolerance or
allergy): that is not evidence about its effect. Anxiolytics and hypnotics added for sleep or
anxiety are not augmentation.

**Then** an ``info`` card: consider a psychodynamic psychopharmacology consultation, attend to
ambivalence about change and to what the medications mean to the patient. ``concerns_draft`` when
a draft antidepressant, antipsychotic or other augmenting agent is being ordered (not a renewal of
a current course at the same dose, ``timeline.is_renewal``). Override reasons
live in ``cards/wording/multiple-failed-trials.yaml``.

**Thresholds** ``patterns.multiple-failed-trials``: ``min_failed_trials``, ``min_trial_days``,
``lookback_days``, ``phq9_persisting_min``, ``score_window_days``, ``trial_classes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import dose_text, months, ordered_evidence, unique_refs
from cds_service.patterns.timeline import (
    Episode,
    dated_drafts,
    episodes,
    is_renewal,
    single_dose,
    taken_courses,
)
from fhir_mappers.record import DraftOrders, PatientRecord, SymptomScore

PATTERN_ID = "multiple-failed-trials"

# Agents whose addition to a continuing trial means the trial alone was not enough.
AUGMENTING_CLASSES = frozenset({"antidepressant", "antipsychotic", "mood_stabilizer"})


@dataclass(frozen=True, slots=True)
class Thresholds:
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_failed_trials: int = 2
    min_trial_days: int = 28
    lookback_days: int = 1095
    phq9_persisting_min: float = 10
    score_window_days: int = 30
    trial_classes: tuple[str, ...] = ("antidepressant", "antipsychotic")


@dataclass(frozen=True, slots=True)
class _Trial:
    episode: Episode
    dose: float | None  # highest known daily dose from the adequate course on
    dose_unknown: bool
    adequate_from: date
    outcome: date  # the end, or the date the augmenting agent was added
    outcome_note: str  # "PHQ-9 17 at end", "stopped: lack of effect", ...
    is_end: bool
    score: SymptomScore | None

    @property
    def days(self) -> int:
        return (self.outcome - self.adequate_from).days

    def describe(self) -> str:
        name = self.episode.ingredient.name
        dose = "(dose not recorded)" if self.dose_unknown else f"{dose_text(self.dose)} mg/day"
        return f"{name} {dose} for {self.days // 7} weeks, {self.outcome_note}"


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    courses = [*taken_courses(record), *dated_drafts(drafts, now)]
    all_episodes = episodes(courses, now)
    since = now - timedelta(days=thresholds.lookback_days)
    best: tuple[str, dict[str, _Trial]] | None = None
    for trial_class in thresholds.trial_classes:
        trials: dict[str, _Trial] = {}
        for episode in all_episodes:
            if episode.ingredient.drug_class != trial_class:
                continue
            trial = _included(episode, all_episodes, record.scores, thresholds)
            if trial is not None and not _excluded(trial) and since <= trial.outcome <= now:
                trials[episode.ingredient.name] = trial  # episodes are by date: keep the latest
        if len(trials) >= thresholds.min_failed_trials and (
            best is None or len(trials) > len(best[1])
        ):
            best = (trial_class, trials)
    if best is None:
        return None
    trial_class, trials = best
    ordered = sorted(trials.values(), key=lambda t: t.outcome)
    facts: dict[str, object] = {
        "failed_trial_count": len(ordered),
        "trial_class": trial_class,
        "trials": [t.describe() for t in ordered],
        "lookback_days": thresholds.lookback_days,
        "lookback_months": months(thresholds.lookback_days),
        "min_failed_trials": thresholds.min_failed_trials,
        "min_trial_days": thresholds.min_trial_days,
        "phq9_persisting_min": thresholds.phq9_persisting_min,
        "dose_unknown_trials": sum(t.dose_unknown for t in ordered),
        "dose_unknown_ingredients": [t.episode.ingredient.name for t in ordered if t.dose_unknown],
    }
    evidence = [item for t in ordered for item in _evidence_items(t)]
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(evidence),
        facts=facts,
        evidence_keys=frozenset(f"trial:{t.episode.ingredient.name}" for t in ordered),
        concerns_draft=any(
            i.drug_class in AUGMENTING_CLASSES
            for d in drafts
            if not is_renewal(d, record, now)
            for i in d.psychotropic_ingredients
        ),
        references=unique_refs(item.ref for item in evidence),
    )


def _included(
    episode: Episode,
    all_episodes: Sequence[Episode],
    scores: Sequence[SymptomScore],
    thresholds: Thresholds,
) -> _Trial | None:
    """The first point at which an adequate trial ended or was augmented, symptoms persisting."""
    floor = episode.ingredient.min_effective_mg_per_day
    adequate = [
        c
        for c in episode.courses
        if floor is None or single_dose(c) is None or (single_dose(c) or 0) >= floor
    ]
    if not adequate:
        return None  # every known dose stayed below the minimum effective dose
    adequate_from = adequate[0].start or episode.start
    known = [d for d in (single_dose(c) for c in adequate) if d is not None]
    dose_unknown = floor is None or not known
    end_day = _end_day(episode, all_episodes)
    candidates = [
        (other.start, f"when {other.ingredient.name} was added", False)
        for other in all_episodes
        if other.ingredient.drug_class in AUGMENTING_CLASSES
        and other.ingredient.name != episode.ingredient.name
        # an agent started on the day a trial ends replaced it: that is the end, not augmentation
        and adequate_from < other.start <= end_day
        and (episode.is_open or other.start < end_day)
    ]
    if not episode.is_open:
        candidates.append((end_day, "at end", True))
    for when, label, is_end in sorted(candidates):
        if (when - adequate_from).days < thresholds.min_trial_days:
            continue
        score = _closest_phq9(scores, when, thresholds.score_window_days)
        if score is not None and score.value >= thresholds.phq9_persisting_min:
            note = f"PHQ-9 {score.value:g} {label}"
        elif is_end and episode.ending_course.stop_reason == "lack_of_effect":
            note, score = "stopped: lack of effect", None
        else:
            continue
        return _Trial(
            episode,
            max(known) if known else None,
            dose_unknown,
            adequate_from,
            when,
            note,
            is_end,
            score,
        )
    return None


def _end_day(episode: Episode, all_episodes: Sequence[Episode]) -> date:
    """When the trial ended; for a stop without a date, when the next agent of its class began."""
    if episode.is_open or episode.ending_course.end is not None:
        return episode.last_day
    replacements = [
        other.start
        for other in all_episodes
        if other.ingredient.drug_class == episode.ingredient.drug_class
        and other.ingredient.name != episode.ingredient.name
        and other.start > episode.last_day
    ]
    return min(replacements, default=episode.last_day)


def _excluded(trial: _Trial) -> bool:
    """A trial that ended because the medication was not tolerated says nothing of its effect."""
    return trial.is_end and trial.episode.ending_course.stop_reason in ("intolerance", "allergy")


def _closest_phq9(
    scores: Sequence[SymptomScore], when: date, window_days: int
) -> SymptomScore | None:
    near = [
        s
        for s in scores
        if s.instrument == "PHQ-9"
        and s.when is not None
        and abs((s.when - when).days) <= window_days
    ]
    # The score nearest the date speaks for that date; on a tie the later one is more current.
    return min(
        near, key=lambda s: (abs((s.when or when) - when), when - (s.when or when)), default=None
    )


def _evidence_items(trial: _Trial) -> list[EvidenceItem]:
    course = trial.episode.ending_course
    items = [EvidenceItem(course.ref, course.display, trial.outcome, trial.outcome_note)]
    if trial.score is not None:
        items.append(
            EvidenceItem(trial.score.ref, "PHQ-9", trial.score.when, f"PHQ-9 {trial.score.value:g}")
        )
    return items
