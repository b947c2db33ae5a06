"""multiple-failed-trials: two or more adequate trials of different agents have not helped enough.

Definition: treatment-resistant depression is non-response to >= 2 different antidepressants, each
at an adequate dose for an adequate duration (>= 4-6 weeks), non-response being a fall of less than
50% from the patient's baseline (Sforzini L et al., "A Delphi-method-based consensus guideline for
definition of treatment-resistant depression for clinical trials", Mol Psychiatry 2022,
https://pmc.ncbi.nlm.nih.gov/articles/PMC9095475/). The Canadian expert consensus
("Treatment-resistant major depressive disorder: Canadian expert consensus on definition and
assessment", Depress Anxiety 2021;38(4):456-467, https://pmc.ncbi.nlm.nih.gov/articles/PMC8049072/)
prefers a graded (staging) definition: the card speaks of a difficult-to-treat course, not a
label (McAllister-Williams RH et al., "The identification, assessment and management of
difficult-to-treat depression: an international consensus statement", J Affect Disord
2020;267:264-282). Treatment-resistant schizophrenia (TRRIP: Howes OD et al., "Treatment-Resistant
Schizophrenia: Treatment Response and Resistance in Psychosis (TRRIP) Working Group Consensus
Guidelines on Diagnosis and Terminology", Am J Psychiatry 2017;174(3):216-229,
https://pmc.ncbi.nlm.nih.gov/articles/PMC6231547/) asks >= 6 weeks at a therapeutic dose
(``min_trial_days_by_class``: antipsychotic 42) and is judged on psychosis ratings, which PHQ-9
is not: antipsychotic trials count only when stopped for lack of effect. TRRIP's dose criterion
(>= 600 mg/day chlorpromazine equivalents) is not applied: the ingredient table holds no sourced
equivalents, so an antipsychotic's adequate dose is its minimum effective dose, as for the others.

**When** within ``lookback_days`` at least ``min_failed_trials`` different ingredients of one class
in ``trial_classes`` each had an adequate trial that ended or was augmented while symptoms
persisted. Adequate: by the outcome, >= ``min_trial_days`` (for a class listed in
``min_trial_days_by_class``, its own number) were spent AT a dose at or above the ingredient's
minimum effective dose (config/ingredients.csv), and, where dispenses of the ingredient exist, a
proportion of days covered >= ``pdc_min_during_trial`` during the trial. The days are counted per
dose: each course of the episode holds from its start until the next course starts (a dose change
arrives as a new order; a short gap between renewals is continued use, as in the episode), each
step of a multi-step order from its start until the next step (``timeline.dose_on``); days before
a titration reaches the minimum, or after a reduction below it, do not count. An unknown dose
is not known to be adequate and does not count (for an ingredient with no tabled minimum, any
dose counts, an unknown one too, and is recorded). The card gives the dose taken during the
adequate days and their number of weeks. Persisted: for classes in
``phq9_trial_classes``, the PHQ-9 nearest the outcome (within ``score_window_days``, and taken
once the trial had run its minimum length at an adequate dose: never the baseline itself) is
>= ``phq9_persisting_min_score`` and fell by less than ``phq9_response_fall_fraction`` from the
baseline (the last PHQ-9 up to ``baseline_window_days`` before the trial began; without a baseline
PHQ-9 decides nothing); or, for any class, the trial was stopped for lack of effect. Augmented =
an agent of ``augmenting_classes`` added while the trial continued; not one that replaced it in a
cross-taper (a switch is not an added agent, clinical-review.md): started while the trial was
stopped within ``switch_window_days`` of its start, or tapered from it (first lowered within
``switch_window_days``, never raised again), and taken on after the trial ended; the trial's
outcome is then its end. Courses of one ingredient at most ``continuation_gap_days`` apart are
one trial.

**Unless** the trial ended because the medication was not tolerated (that says nothing of its
effect); for classes in ``phq9_trial_classes``, a PHQ-9 dated from the day the trial had run its
minimum length at an adequate dose up to the outcome (its end, or an added agent) showed remission
(below ``phq9_remission_below_score``) or a response (a fall of at least
``phq9_response_fall_fraction`` from the baseline): the drug worked, and a later relapse or partial
loss of response is not non-response (clinical-review.md: response >= 50% fall, remission PHQ-9 <
5); the "augmenting" agent was taken at a hypnotic dose (``Ingredient.sleep_max_mg_per_day``:
trazodone, low-dose mirtazapine or quetiapine for sleep) or as needed; or the only evidence of an
end is the order being signed now (the draft is not evidence that the current drug failed).

**Then** an ``info`` card: consider more frequent visits and a consultation, attend to ambivalence
and to what the medications mean to the patient (Mintz, "Psychodynamic Psychopharmacology:
Addressing the Underlying Causes of Treatment Resistance", Psychiatric Times 2011).
``concerns_draft`` when a draft of an augmenting class is being ordered (not a renewal of a current
course at the same dose, ``timeline.is_renewal``). Override reasons in
``cards/wording/multiple-failed-trials.yaml``.

**Thresholds** ``patterns.multiple-failed-trials``: ``min_failed_trials``, ``min_trial_days``,
``min_trial_days_by_class``, ``lookback_days``, ``phq9_response_fall_fraction``,
``phq9_persisting_min_score``, ``phq9_remission_below_score``, ``baseline_window_days``,
``score_window_days``, ``trial_classes``, ``phq9_trial_classes``, ``pdc_min_during_trial``,
``continuation_gap_days``, ``switch_window_days``, ``augmenting_classes``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from cds_service.patterns.adequate_time import AdequateTime
from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import dose_text, months, ordered_evidence, unique_refs
from cds_service.patterns.pdc import proportion_of_days_covered
from cds_service.patterns.timeline import (
    Episode,
    dose_on,
    episodes,
    is_renewal,
    single_dose,
    taken_courses,
)
from fhir_mappers.record import (
    Dispense,
    DraftOrders,
    DrugClass,
    Ingredient,
    MedicationCourse,
    PatientRecord,
    SymptomScore,
)

PATTERN_ID = "multiple-failed-trials"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Values come from ``config/default.yaml`` (no defaults here: one source of numbers)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_failed_trials: int
    min_trial_days: int
    # Classes whose adequate trial is longer (TRRIP: antipsychotics >= 6 weeks); the others use
    # ``min_trial_days``. Keys are drug classes, checked against the ingredient table's classes.
    min_trial_days_by_class: Mapping[DrugClass, int]
    lookback_days: int
    phq9_response_fall_fraction: float
    phq9_persisting_min_score: float
    phq9_remission_below_score: float
    baseline_window_days: int
    score_window_days: int
    trial_classes: tuple[str, ...]
    phq9_trial_classes: tuple[str, ...]
    pdc_min_during_trial: float
    continuation_gap_days: int
    switch_window_days: int
    augmenting_classes: tuple[str, ...]

    def trial_days(self, drug_class: DrugClass) -> int:
        """The minimum number of days at an adequate dose for a trial of this class."""
        return self.min_trial_days_by_class.get(drug_class, self.min_trial_days)

    def windows_days(self) -> tuple[int, ...]:
        """The look-back windows this pattern reads, nested (their sum is its reach): a trial
        judged within the look-back, its minimum length, and its baseline window. What it reads
        back in time are PHQ-9 scores, so a longer minimum of a class that scores judge adds the
        days by which it exceeds ``min_trial_days`` (antipsychotic trials, judged by their stop,
        read no score; their orders are kept with their episodes, ``fhir_mappers.order_horizon``).
        """
        longer = max(
            (d for c, d in self.min_trial_days_by_class.items() if c in self.phq9_trial_classes),
            default=self.min_trial_days,
        )
        extra = (longer - self.min_trial_days,) if longer > self.min_trial_days else ()
        return (self.lookback_days, self.min_trial_days, *extra, self.baseline_window_days)

    def visit_windows_days(self) -> tuple[int, ...]:
        """The windows over which this pattern reads visits (Encounters), nested; () when it
        reads none. It reads no visits."""
        return ()


@dataclass(frozen=True, slots=True)
class _Trial:
    episode: Episode
    doses: tuple[float, float] | None  # lowest, highest known dose on the adequate days
    adequate_days: int  # days at an adequate dose up to the outcome
    outcome: date  # the end, or the date the augmenting agent was added
    outcome_note: str  # "PHQ-9 from 19 to 16 at the end", "stopped for lack of effect", ...
    is_end: bool  # the outcome is the trial's end (not an added agent)
    score: SymptomScore | None  # set when persisting PHQ-9 judged it, else a stop did

    @property
    def weeks(self) -> int:
        return self.adequate_days // 7

    def describe(self) -> str:
        name = self.episode.ingredient.name
        if self.doses is None:
            dose = ""
        elif self.doses[0] == self.doses[1]:
            dose = f" {dose_text(self.doses[0])} mg/day"
        else:
            dose = f" {dose_text(self.doses[0])}-{dose_text(self.doses[1])} mg/day"
        return f"{name}{dose} for {self.weeks} weeks: {self.outcome_note}"


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    """Multiple failed trials as of ``now`` (dates in days); None when not there.

    Drafts only decide ``concerns_draft``: a switch being ordered now is not evidence.
    """
    all_episodes = episodes(
        taken_courses(record), now, continuation_gap_days=thresholds.continuation_gap_days
    )
    reach = now - timedelta(days=sum(thresholds.windows_days()))
    scores = [s for s in record.scores if s.instrument == "PHQ-9" and s.when and s.when >= reach]
    index = _Index.of(all_episodes, scores, record.dispenses, thresholds.augmenting_classes)
    since = now - timedelta(days=thresholds.lookback_days)
    best: tuple[str, dict[str, _Trial]] | None = None
    for trial_class in thresholds.trial_classes:
        trials: dict[str, _Trial] = {}
        for episode in index.by_class.get(trial_class, _Sorted()).episodes:
            if _end_day(episode, index) < since:
                continue  # every outcome of this trial lies before the look-back
            trial = _included(episode, index, thresholds)
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
        "lookback_months": months(thresholds.lookback_days),
        "min_failed_trials": thresholds.min_failed_trials,
        "dose_unknown_ingredients": [t.episode.ingredient.name for t in ordered if t.doses is None],
        # How the trials failed, for the card to say so truly: symptom scores that stayed high
        # against the patient's baseline, and/or stops for lack of effect (no baseline needed).
        "scores_persisted": any(t.score is not None for t in ordered),
        "stopped_for_lack_of_effect": any(t.score is None for t in ordered),
    }
    evidence = [_evidence_item(t) for t in ordered]
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(evidence),
        facts=facts,
        evidence_keys=frozenset(f"trial:{t.episode.ingredient.name}" for t in ordered),
        # A draft concerns the trials when it is treatment of their kind (an agent of an
        # augmenting class, standing, above any hypnotic dose): not a renewal, and not
        # trazodone 50 mg as needed for sleep.
        concerns_draft=any(
            _augmenting_use(i, (d,), thresholds.augmenting_classes)
            for d in drafts
            if not is_renewal(
                d, record, now, continuation_gap_days=thresholds.continuation_gap_days
            )
            for i in d.psychotropic_ingredients
        ),
        references=unique_refs(
            [e.ref for e in evidence] + [t.score.ref for t in ordered if t.score is not None]
        ),
    )


class _Sorted:
    """Episodes by start, with their starts for bisection."""

    __slots__ = ("episodes", "starts")

    def __init__(self, episodes: Sequence[Episode] = ()) -> None:
        self.episodes = list(episodes)
        self.starts = [e.start for e in self.episodes]

    def starting(self, after: date, until: date) -> list[Episode]:
        """Episodes that start in (after, until]."""
        return self.episodes[bisect_right(self.starts, after) : bisect_right(self.starts, until)]


@dataclass(frozen=True, slots=True)
class _Index:
    """The record read once per call, so that judging one trial costs a few bisections, not a
    scan of every episode, score and fill: the history grows, a trial's windows do not."""

    by_class: dict[str, _Sorted]
    augmenting: _Sorted  # episodes of an augmenting agent above its hypnotic dose
    score_days: list[date]  # the PHQ-9 scores' dates, in order
    scores: list[SymptomScore]
    fills: dict[str, tuple[list[date], list[Dispense]]]  # by ingredient, by hand-over date

    @classmethod
    def of(
        cls,
        all_episodes: Sequence[Episode],
        scores: Sequence[SymptomScore],
        dispenses: Sequence[Dispense],
        augmenting: tuple[str, ...],
    ) -> _Index:
        by_class: dict[str, list[Episode]] = defaultdict(list)
        for episode in all_episodes:  # ordered by start
            by_class[episode.ingredient.drug_class].append(episode)
        dated = sorted((s for s in scores if s.when is not None), key=lambda s: s.when or date.min)
        fills: dict[str, list[Dispense]] = defaultdict(list)
        for dispense in dispenses:
            if dispense.handed_over is not None:
                for ingredient in dispense.ingredients:
                    fills[ingredient.name].append(dispense)
        by_day = {
            name: sorted(found, key=lambda d: d.handed_over or date.min)
            for name, found in fills.items()
        }
        return cls(
            by_class={k: _Sorted(v) for k, v in by_class.items()},
            augmenting=_Sorted([e for e in all_episodes if _augments(e, augmenting)]),
            score_days=[s.when or date.min for s in dated],
            scores=dated,
            fills={k: ([d.handed_over or date.min for d in v], v) for k, v in by_day.items()},
        )

    def scores_between(self, first: date, last: date) -> list[SymptomScore]:
        """PHQ-9 scores dated in [first, last], by date."""
        days = self.score_days
        return self.scores[bisect_left(days, first) : bisect_right(days, last)]

    def fills_between(self, name: str, first: date, last: date) -> list[Dispense]:
        """Fills of one ingredient handed over in [first, last]: all that PDC counts there."""
        days, fills = self.fills.get(name, ([], []))
        return fills[bisect_left(days, first) : bisect_right(days, last)]


def _included(episode: Episode, index: _Index, thresholds: Thresholds) -> _Trial | None:
    """The first point at which an adequate trial ended or was augmented, symptoms persisting."""
    end_day = _end_day(episode, index)
    adequate = AdequateTime.of(episode, end_day)
    # A score taken before the trial had run its minimum length at an adequate dose says nothing
    # of its effect (non-response is judged after an adequate duration: Sforzini 2022); it may
    # be the baseline.
    judged_from = adequate.reaches(thresholds.trial_days(episode.ingredient.drug_class))
    if judged_from is None:
        return None  # never long enough at or above the minimum effective dose
    candidates = [
        (other.start, f"when {other.ingredient.name} was added", False)
        for other in index.augmenting.starting(judged_from - timedelta(days=1), end_day)
        if other.ingredient.name != episode.ingredient.name
        and (episode.is_open or other.start < end_day)
        and not _cross_taper(episode, other, end_day, thresholds.switch_window_days)
    ]
    if not episode.is_open:
        candidates.append((end_day, "at the end", True))
    judged_by_phq9 = episode.ingredient.drug_class in thresholds.phq9_trial_classes
    baseline = _baseline(index, episode.start, thresholds.baseline_window_days)
    for when, label, is_end in sorted(candidates):
        if judged_by_phq9 and _responded(index, baseline, judged_from, when, thresholds):
            # It worked, alone, once it had run long enough: no failed trial at this outcome or
            # any later one, whatever followed (a response after an agent was added is the
            # combination's, so the window ends at the outcome).
            return None
        if not _adherent(episode, index, when, thresholds.pdc_min_during_trial):
            continue
        score = (
            _closest(index, when, thresholds.score_window_days, not_before=judged_from)
            if judged_by_phq9
            else None
        )
        if baseline is not None and score is not None:
            # Where scores say, they decide: a PHQ-9 that fell by half is a response, whatever
            # the stop reason says (clinical-review.md).
            if not _persisted(baseline, score, thresholds):
                continue
            note = f"PHQ-9 from {baseline.value:g} to {score.value:g} {label}"
        elif is_end and episode.ending_course.stop_reason == "lack_of_effect":
            note, score = "stopped for lack of effect", None
        else:
            continue
        days, doses = adequate.until(when)
        return _Trial(episode, doses, days, when, note, is_end, score)
    return None


def _responded(
    index: _Index,
    baseline: SymptomScore | None,
    first: date,
    last: date,
    thresholds: Thresholds,
) -> bool:
    """Whether a PHQ-9 dated in [``first``, ``last``] (from the day the trial had run its
    minimum length at an adequate dose to its end) shows remission (below
    ``phq9_remission_below_score``) or, against a ``baseline``, a response (a fall of at least
    ``phq9_response_fall_fraction``). Response and remission as clinical-review.md defines them
    (>= 50% fall from baseline; PHQ-9 < 5); remission needs no baseline."""
    for score in index.scores_between(first, last):
        if score.value < thresholds.phq9_remission_below_score:
            return True
        if baseline is not None and baseline.value > 0:
            fall = (baseline.value - score.value) / baseline.value
            if fall >= thresholds.phq9_response_fall_fraction:
                return True
    return False


def _cross_taper(episode: Episode, other: Episode, end_day: date, window_days: int) -> bool:
    """Whether ``other``, started during the ended trial ``episode`` (which ended on
    ``end_day``), replaced it in a cross-taper rather than augmenting it: ``other`` is taken on
    after the end, and the trial stopped within ``window_days`` of ``other``'s start, or was
    tapered from then (its dose first changed within ``window_days``, downwards, never rose
    again, and each lower dose held no longer than ``window_days`` before the next cut or the
    end: a lower dose kept for months beside the other agent is augmentation). A switch is not
    an added agent (clinical-review.md)."""
    if episode.is_open or not (other.is_open or other.last_day > end_day):
        return False
    window = timedelta(days=window_days)
    if end_day - other.start <= window:
        return True
    changes = _dose_changes(episode)
    at_start = [dose for day, dose in changes if day <= other.start]
    later = [(day, dose) for day, dose in changes if other.start < day <= end_day]
    if not at_start or at_start[-1] is None or not later or later[0][0] - other.start > window:
        return False
    steps = [day for day, _ in later] + [end_day]
    if any(after - before > window for before, after in zip(steps, steps[1:], strict=False)):
        return False  # a lower dose held for months beside the other agent is augmentation
    doses = [at_start[-1], *(dose for _, dose in later)]
    known = [d for d in doses if d is not None]
    return (
        len(known) == len(doses)
        and all(b <= a for a, b in zip(known, known[1:], strict=False))
        and known[-1] < known[0]
    )


def _dose_changes(episode: Episode) -> list[tuple[date, float | None]]:
    """The days on which the episode's daily dose was set (each course's start, each dated step
    of a multi-step order) with the dose from then, by day; None for an unknown dose."""
    changes: list[tuple[date, float | None]] = []
    for course in episode.courses:
        if course.start is not None:
            changes.append((course.start, dose_on(course, course.start)))
        changes.extend(
            (step.start, step.daily_dose_mg)
            for step in course.steps
            if step.start is not None and (course.start is None or step.start > course.start)
        )
    return sorted(changes, key=lambda change: change[0])


def _persisted(baseline: SymptomScore, score: SymptomScore, thresholds: Thresholds) -> bool:
    """Still at or above the threshold, and fell by less than the response fraction."""
    if score.value < thresholds.phq9_persisting_min_score or baseline.value <= 0:
        return False
    fall = (baseline.value - score.value) / baseline.value
    return fall < thresholds.phq9_response_fall_fraction


def _augments(other: Episode, augmenting: tuple[str, ...]) -> bool:
    """A standing agent of an augmenting class, at a dose known to be above its hypnotic dose:
    added to another agent's trial, it augments that trial."""
    return _augmenting_use(other.ingredient, other.courses, augmenting)


def _augmenting_use(
    ingredient: Ingredient, courses: tuple[MedicationCourse, ...], augmenting: tuple[str, ...]
) -> bool:
    """Whether ``courses`` of ``ingredient`` are use of an augmenting class beyond a hypnotic
    dose (see ``_augments``): trazodone 50 mg at bedtime, or as needed, is treatment of sleep."""
    if ingredient.drug_class not in augmenting:
        return False
    if all(c.is_prn for c in courses):
        return False
    sleep_max = ingredient.sleep_max_mg_per_day
    doses = [d for d in (single_dose(c) for c in courses) if d is not None]
    if sleep_max is None:
        return True
    # An agent also given at hypnotic doses (trazodone, mirtazapine, quetiapine) augments only
    # at a dose known to be above them: an unknown dose (a text-only sig) is not known to.
    return bool(doses) and max(doses) > sleep_max


def _adherent(episode: Episode, index: _Index, end: date, min_pdc: float) -> bool:
    """Where the ingredient was dispensed, enough days covered from its first fill in the
    episode to the outcome (PQA PDC; TRRIP asks for >= 80% of doses)."""
    fills = index.fills_between(episode.ingredient.name, episode.start, end)
    coverage = proportion_of_days_covered(fills, episode.start, end)
    if coverage is None:
        return True  # no dispensing data: adherence is unknown, not poor
    return coverage.pdc >= min_pdc


def _end_day(episode: Episode, index: _Index) -> date:
    """When the trial ended; for a stop without a date, when the next agent of its class began."""
    if episode.is_open or episode.ending_course.end is not None:
        return episode.last_day
    same_class = index.by_class[episode.ingredient.drug_class]
    # Episodes are by start: the first other agent's after the last day is the replacement.
    for other in same_class.episodes[bisect_right(same_class.starts, episode.last_day) :]:
        if other.ingredient.name != episode.ingredient.name:
            return other.start
    return episode.last_day


def _excluded(trial: _Trial) -> bool:
    """A trial that ended because the medication was not tolerated says nothing of its effect."""
    return trial.is_end and trial.episode.ending_course.stop_reason in ("intolerance", "allergy")


def _baseline(index: _Index, start: date, window_days: int) -> SymptomScore | None:
    """The last PHQ-9 on or up to ``window_days`` before the trial began."""
    before = index.scores_between(start - timedelta(days=window_days), start)
    return max(before, key=lambda s: s.when or start, default=None)


def _closest(
    index: _Index, when: date, window_days: int, *, not_before: date
) -> SymptomScore | None:
    """The PHQ-9 nearest ``when`` within ``window_days`` either side, dated no earlier than
    ``not_before`` (the day the trial had run its minimum length)."""
    span = timedelta(days=window_days)
    near = index.scores_between(max(when - span, not_before), when + span)
    # The score nearest the date speaks for that date; on a tie the later one is more current.
    return min(
        near, key=lambda s: (abs((s.when or when) - when), when - (s.when or when)), default=None
    )


def _evidence_item(trial: _Trial) -> EvidenceItem:
    course = trial.episode.ending_course
    return EvidenceItem(course.ref, trial.describe(), trial.outcome, "")
