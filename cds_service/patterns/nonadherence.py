"""nonadherence: a psychotropic that is prescribed may not be taken as prescribed.

Definition: proportion of days covered (PDC) below 0.80 over the measurement period, from fills
with a known days' supply, per ingredient (PQA PDC method, adopted by CMS Star ratings,
https://pqaalliance.org/assets/Measures/pdc-dr.js.txt; HEDIS SAA, "Adherence to Antipsychotic
Medications for Individuals With Schizophrenia", https://www.ncqa.org/hedis/measures/adherence-to-
antipsychotic-medications-for-individuals-with-schizophrenia/). Per ingredient, not per class, so a
refilled sertraline does not hide a bupropion that was never refilled. PQA asks for >= 2 fills and
an index (first) fill at least 91 days before the end of the period; a patient with one fill
whose supply ran out long ago (a gap > 60 days is an interruption in schizophrenia persistence
studies, psychotropic-domain §2.5) is not hidden by that rule. Or a MedicationStatement with
status not-taken. Only days the ingredient was prescribed can be days without it: a stop and a
restart by the prescriber is no gap in taking it.

**When** for a psychotropic ingredient in today's standing regimen or being ordered (not as
needed), either (a) at least ``min_dispenses`` fills of it in the measured period, the first of
them at least ``min_treatment_days`` before today, and a PDC below ``pdc_below`` from that fill to
today (overlapping fills shifted forward; supply capped at today; only completed fills with a known
days' supply); or (b) exactly one fill in the period whose supply ran out more than
``single_fill_lapsed_days`` days at home before today (its supply carried past days in hospital,
which are not counted either: ``pdc.days_at_home_without_supply``); or (c) a not-taken
MedicationStatement names it, dated (``effective[x]``, else ``dateAsserted``) within
``window_days``, or undated (its status is the latest word) unless fills of it in the window may
have superseded it. The measured period is the last ``window_days``, or from the current episode of
use (``timeline.episodes``, courses at most ``continuation_gap_days`` apart) when it restarted
after a dated stop or planned end.

**Not evaluable** (``NotEvaluable``, recorded in the audit, no card) for (a) and (b) when the
fills cannot be read: pharmacy data did not arrive in full (``PatientRecord.incomplete``); a fill
that may have reached the patient in the period has no known days' supply, no day (undated, or
dated by month or year only) or no known status (``pdc.uncounted_fills``); the finding depends on
whether days after an undated stop were prescribed; it would rest on a period in which a fill
of a medication that could not be identified was handed over; an inpatient stay in that
period ended with no end date (its days in hospital are unknown); or an encounter of unreadable
class lasting several days lies in it and, were it a stay, the finding would not stand (a missing
class is missing, not evidence: ``pdc.maybe_stays``). For (c) when an undated statement
may have been followed by fills that supersede it, or when fills, orders or statements did not
arrive in full (what supersedes a statement may be in what is missing). What such data would show
is unknown.

**Unless** the ingredient is given now as a long-acting injection or less often than daily (its
current order, or a fill of it in the window, by ``given_as_depot``: a dose schedule, the
product's name or form, an injection route or a sig less often than daily; the fill rules do not
apply), is taken only as
needed, or its fills come from an as-needed order
(PQA leaves PRN use out of PDC); its current order is on hold; the order is stale (no renewal,
fill or statement for ``stale_order_days``); or, for (c), the statement gives a prescriber's
hold or stop as its reason (``prescriber_hold_reason_codes``/``_words``), or later fills (at
least ``min_dispenses``), a later order or a later active statement of the ingredient supersede
it. Days in hospital (ended encounters, R4 ``finished`` or R5 ``completed``/``discharged``, or
ongoing ones, of an inpatient class, or of an unreadable class that an admission's details or
type words name a stay, config/codes.yaml) leave the PDC period, and the supply at home carries past
them (``pdc``).

**Then** an ``info`` card: explore the patient's ambivalence and concerns about the medication
before changing it (Mintz, "Psychodynamic Psychopharmacology: Addressing the Underlying Causes of
Treatment Resistance", Psychiatric Times 2011); strongest at order-sign when the draft raises the
dose (``dose_increase_in_draft``). ``concerns_draft`` when a draft of that ingredient is being
ordered, or of its class (a switch or an addition in that class). Override reasons in
``cards/wording/nonadherence.yaml``.

**Thresholds** ``patterns.nonadherence``: ``pdc_below``, ``window_days``, ``min_dispenses``,
``min_treatment_days``, ``single_fill_lapsed_days``, ``stale_order_days``,
``continuation_gap_days``, ``prescriber_hold_reason_codes``, ``prescriber_hold_reason_words``,
``injectable_form_words``, ``injection_route_codes``, ``injection_route_words``,
``less_than_daily_sig_words``, ``sig_interval_units``, ``daily_sig_words``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta

from cds_service.patterns.abstention import NotEvaluable, data_unavailable
from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import months, ordered_evidence, unique_refs
from cds_service.patterns.pdc import (
    Coverage,
    UncountedFills,
    days_at_home_without_supply,
    hospital_days,
    maybe_stays,
    proportion_of_days_covered,
    stays_without_end,
    uncounted_fills,
    unidentified_fills,
)
from cds_service.patterns.regimen import given_as_depot, is_stale, mentions_any, signs_of_life
from cds_service.patterns.timeline import (
    dated_drafts,
    episodes,
    has_dated_stop,
    is_current,
    last_taken,
    single_dose,
    taken_courses,
)
from fhir_mappers.record import (
    Dispense,
    DraftOrders,
    MedicationCourse,
    PatientRecord,
    was_taken,
)

PATTERN_ID = "nonadherence"
# What supersedes a not-taken statement: a later fill, order or active statement.
_SUPERSEDING = ("MedicationDispense", "MedicationRequest", "MedicationStatement")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Values come from ``config/default.yaml`` (no defaults here: one source of numbers)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    pdc_below: float
    window_days: int
    min_dispenses: int
    min_treatment_days: int
    single_fill_lapsed_days: int
    stale_order_days: int
    continuation_gap_days: int
    prescriber_hold_reason_codes: tuple[str, ...]
    prescriber_hold_reason_words: tuple[str, ...]
    injectable_form_words: tuple[str, ...]
    injection_route_codes: tuple[str, ...]
    injection_route_words: tuple[str, ...]
    less_than_daily_sig_words: tuple[str, ...]
    sig_interval_units: Mapping[str, float]
    daily_sig_words: tuple[str, ...]

    def windows_days(self) -> tuple[int, ...]:
        """The look-back windows this pattern reads, nested (their sum is its reach)."""
        return (self.window_days,)

    def visit_windows_days(self) -> tuple[int, ...]:
        """The windows over which this pattern reads visits (Encounters), nested; () when it
        reads none. Hospital stays within the days-covered window."""
        return (self.window_days,)


@dataclass(frozen=True, slots=True)
class _Gap:
    """A supply gap found in the fills: a low PDC, or one fill long run out (``lapsed_days``)."""

    coverage: Coverage
    lapsed_days: int | None


@dataclass(frozen=True, slots=True)
class _Adherence:
    ingredient: str
    drug_class: str
    gap: _Gap | None
    not_taken: tuple[MedicationCourse, ...]
    has_draft: bool
    dose_increase_in_draft: bool


@dataclass(frozen=True, slots=True)
class _Context:
    """What every ingredient is judged against, read once per call."""

    record: PatientRecord
    regimen: list[MedicationCourse]
    ordered: list[MedicationCourse]
    thresholds: Thresholds
    now: date
    window_start: date
    away: set[date]  # days in hospital


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | NotEvaluable | None:
    """Nonadherence as of ``now`` (dates in days); None when it is not there, ``NotEvaluable``
    when the data cannot say (see the module docstring)."""
    signs = signs_of_life(record)
    regimen = [
        c
        for c in taken_courses(record)
        if is_current(c, now)
        and c.is_psychotropic
        and not is_stale(c, record, now, thresholds.stale_order_days, signs)
    ]
    # An as-needed draft is no daily regimen either: it never makes an ingredient judged.
    ordered = [d for d in dated_drafts(drafts, now) if d.is_psychotropic and not d.is_prn]
    ctx = _Context(
        record, regimen, ordered, thresholds, now,
        now - timedelta(days=thresholds.window_days), hospital_days(record, now),
    )
    names = dict.fromkeys(
        i.name for c in [*regimen, *ordered] if not c.is_prn for i in c.psychotropic_ingredients
    )
    found: list[_Adherence] = []
    abstained: list[NotEvaluable] = []
    for name in names:
        if _excluded(name, regimen):
            continue
        judged = _included(name, ctx)
        if isinstance(judged, NotEvaluable):
            abstained.append(judged)
        elif judged is not None:
            found.append(judged)
    if found:
        # The ingredient being ordered first (the decision at hand), then the lowest PDC.
        best = min(found, key=lambda a: (not a.has_draft, a.gap.coverage.pdc if a.gap else 1.0))
        return _finding(best, thresholds)
    if abstained:
        return NotEvaluable(
            PATTERN_ID,
            "; ".join(dict.fromkeys(a.reason for a in abstained)),
            unique_refs(r for a in abstained for r in a.references),
        )
    return None


def _excluded(name: str, regimen: list[MedicationCourse]) -> bool:
    """The latest current order of the ingredient is on hold (``on-hold``). No finding, rather
    than an abstention: the prescriber has paused the drug, so there is no regimen to adhere to
    for now, and a hold is a decision, not missing data. When the hold began is not recorded, so
    the fills before it are not judged either. (As-needed use is left out where the regimen and
    the fills are read.)"""
    orders = [
        c for c in regimen if not c.is_draft and any(i.name == name for i in c.ingredients)
    ]
    latest = max(orders, key=lambda c: (c.start or date.min, c.ref), default=None)
    return latest is not None and latest.status == "on-hold"


def _included(name: str, ctx: _Context) -> _Adherence | NotEvaluable | None:
    """A supply gap in the fills, or a not-taken statement; each judged on its own evidence."""
    gap = _supply_gap(name, ctx)
    not_taken, contested = _not_taken(name, ctx)
    if not isinstance(gap, _Gap) and not not_taken:
        if contested:
            return NotEvaluable(
                PATTERN_ID,
                f"{len(contested)} not-taken statement(s) have no date, and fills of the same "
                "drug in the window may have come after them",
                tuple(s.ref for s in contested),
            )
        return gap  # an abstention or None
    if not isinstance(gap, _Gap):
        # A not-taken statement stands only if no later fill, order or statement superseded it:
        # what did not arrive in full cannot show that none did.
        unavailable = data_unavailable(PATTERN_ID, ctx.record.incomplete, _SUPERSEDING)
        if unavailable is not None:
            return unavailable
    with_name = [c for c in [*ctx.regimen, *ctx.ordered] if _names(c, name)]
    drafts = [c for c in with_name if c.is_draft]
    drug_class = next(i.drug_class for c in with_name for i in c.ingredients if i.name == name)
    # A draft of the same class (a switch or an addition) is the decision this finding informs.
    same_class = [d for d in ctx.ordered if any(i.drug_class == drug_class for i in d.ingredients)]
    return _Adherence(
        ingredient=name,
        drug_class=drug_class,
        gap=gap if isinstance(gap, _Gap) else None,
        not_taken=not_taken,
        has_draft=bool(same_class),
        # The dose the draft raises is the one taken until today: a course the session replaces
        # (``priorPrescription``) is stopped today and so no longer in today's regimen.
        dose_increase_in_draft=any(
            _raises_dose(d, [*ctx.regimen, *_stopped_today(ctx)]) for d in drafts
        ),
    )


def _names(course: MedicationCourse | Dispense, name: str) -> bool:
    return any(i.name == name and i.is_psychotropic for i in course.ingredients)


# --- (a) and (b): the fills -----------------------------------------------------------------


def _supply_gap(name: str, ctx: _Context) -> _Gap | NotEvaluable | None:
    if _long_acting(name, ctx):
        return None
    unavailable = data_unavailable(PATTERN_ID, ctx.record.incomplete, ("MedicationDispense",))
    if unavailable is not None:
        return unavailable
    starts = _measured_from(name, ctx)
    fills = _standing_fills(name, ctx)
    uncounted = uncounted_fills(fills, starts[-1], ctx.now)
    if uncounted:
        either_way = _same_either_way(uncounted, fills, starts, ctx)
        if either_way is None:
            return NotEvaluable(PATTERN_ID, _uncounted_reason(uncounted, ctx), uncounted.refs)
        fills = either_way
    readings = [_gap_from(fills, start, ctx) for start in starts]
    if len({reading is None for reading in readings}) > 1:
        return NotEvaluable(
            PATTERN_ID,
            "an earlier order ended on a date not recorded before the drug was ordered again: "
            "whether the days between were prescribed is unknown, and the finding depends on them",
        )
    gap = readings[0]
    if gap is None:
        return None
    start = gap.coverage.period_start
    # What the figure cannot rest on, found in the period it measures.
    for refs, why in (
        (unidentified_fills(ctx.record, start, ctx.now),
         "fill(s) in the period measured name a medication that could not be identified: the "
         "days-covered figure may be missing them"),
        (stays_without_end(ctx.record, start, ctx.now),
         "inpatient stay(s) in the period measured have no end date: the days in hospital, "
         "which leave the days-covered period, are unknown"),
    ):
        if refs:
            return NotEvaluable(PATTERN_ID, f"{len(refs)} {why}", tuple(refs))
    # A stay of unreadable class: is the finding the same were its days in hospital?
    maybe = maybe_stays(ctx.record, start, ctx.now)
    away = ctx.away.union(*maybe.values())
    if maybe and _gap_from(fills, starts[0], replace(ctx, away=away)) is None:
        return NotEvaluable(
            PATTERN_ID,
            f"{len(maybe)} encounter(s) of unreadable class lasting several days lie in the "
            "period measured: were they hospital stays, their days would leave the days-covered "
            "period and the finding would not stand",
            tuple(maybe),
        )
    return gap


def _same_either_way(
    uncounted: UncountedFills, fills: list[Dispense], starts: tuple[date, ...], ctx: _Context
) -> list[Dispense] | None:
    """The fills to measure when the only ones that cannot be counted are fills of unknown
    status (dated, with a known days' supply) and the finding is the same whether they reached
    the patient or not: the fills read as handed over (the reading with more days covered).
    None when that is not so, and the pattern cannot say."""
    unknown = set(uncounted.unknown_status)
    if (
        uncounted.no_supply or uncounted.undated or uncounted.partly_dated
        or any(f.handed_over is None or f.days_supply is None for f in unknown)
    ):
        return None
    handed = [replace(f, status="completed") if f in unknown else f for f in fills]
    not_handed = [f for f in fills if f not in unknown]
    for reading in (handed, not_handed):
        if any(_gap_from(reading, start, ctx) is None for start in starts):
            return None
    return handed


def _long_acting(name: str, ctx: _Context) -> bool:
    """The ingredient is given now as a long-acting injection, or on a schedule less often than
    daily (``given_as_depot``): its current order or draft is one, or a fill of it in the
    window is. Pharmacies record such a product with a supply of a day or none, and it is given
    in clinic: days covered by fills say nothing of it, so the fill rules are not applied (PQA's
    PDC measures are of oral medications)."""
    thresholds = ctx.thresholds
    return any(
        given_as_depot(c, thresholds) for c in [*ctx.regimen, *ctx.ordered] if _names(c, name)
    ) or any(
        given_as_depot(d, thresholds)
        for d in ctx.record.dispenses
        if _names(d, name)
        and (d.handed_over is None or ctx.window_start <= d.handed_over <= ctx.now)
    )


def _measured_from(name: str, ctx: _Context) -> tuple[date, ...]:
    """Where the measured period may begin, latest first: the window's start, or the restart of
    the current episode of use when the episode before it ended on a dated stop or planned end
    (the days between were not prescribed). Where that episode's stop is undated, whether the
    days before the restart were prescribed is unknown: each reading is given."""
    courses = [c for c in [*taken_courses(ctx.record), *ctx.ordered] if _names(c, name)]
    gap_days = ctx.thresholds.continuation_gap_days
    cut = [
        e
        for e in episodes(courses, ctx.now, continuation_gap_days=gap_days)
        if e.ingredient.name == name
    ]
    open_ones = [i for i, e in enumerate(cut) if e.is_open]
    index = open_ones[-1] if open_ones else len(cut) - 1
    starts: list[date] = []
    while index > 0:
        starts.append(max(ctx.window_start, cut[index].start))
        if has_dated_stop(cut[index - 1].ending_course, ctx.now):
            return tuple(dict.fromkeys(starts))
        index -= 1
    starts.append(ctx.window_start)  # no earlier episode on record: the whole window
    return tuple(dict.fromkeys(starts))


def _standing_fills(name: str, ctx: _Context) -> list[Dispense]:
    """Fills of the ingredient, except those of an as-needed order: the authorizing order is
    as-needed, or (no authorizing order on record) every order of it in the window is."""
    courses = {c.ref: c for c in ctx.record.courses}
    in_window = [
        c
        for c in taken_courses(ctx.record)
        if _names(c, name)
        and c.start is not None
        and c.start <= ctx.now
        and (last_taken(c, ctx.now) or c.start) >= ctx.window_start
    ]
    only_prn = bool(in_window) and all(c.is_prn for c in in_window)
    fills = []
    for fill in ctx.record.dispenses:
        if not _names(fill, name):
            continue
        order = courses.get(fill.authorizing_prescription or "")
        if order is not None and not _names(order, name):
            order = None  # a link to another drug's order says nothing of this fill
        if order.is_prn if order is not None else only_prn:
            continue
        fills.append(fill)
    return fills


def _gap_from(fills: list[Dispense], start: date, ctx: _Context) -> _Gap | None:
    thresholds, now = ctx.thresholds, ctx.now
    coverage = proportion_of_days_covered(fills, start, now, ctx.away)
    if coverage is None:
        return None
    if len(coverage.fills) >= thresholds.min_dispenses:
        # PQA: an index fill at least this many days before the period ends.
        long_enough = (now - coverage.period_start).days >= thresholds.min_treatment_days
        low = coverage.pdc < thresholds.pdc_below
        return _Gap(coverage, None) if long_enough and low else None
    if len(coverage.fills) == 1:
        # Days at home since the supply ran out: it lasts past a stay in hospital, and days in
        # hospital are no days without it (as in the days-covered figure).
        lapsed = days_at_home_without_supply(coverage.fills[0], now, ctx.away)
        if lapsed is not None and lapsed > thresholds.single_fill_lapsed_days:
            return _Gap(coverage, lapsed)
    return None


def _uncounted_reason(uncounted: UncountedFills, ctx: _Context) -> str:
    window = months(ctx.thresholds.window_days)
    reasons = []
    if uncounted.no_supply:
        reasons.append(
            f"{len(uncounted.no_supply)} fill(s) in the last {window} months have no days' "
            "supply and none could be derived"
        )
    if uncounted.undated:
        reasons.append(
            f"{len(uncounted.undated)} completed fill(s) have no date (neither handed over nor "
            "prepared), so the days they cover are unknown"
        )
    if uncounted.partly_dated:
        reasons.append(
            f"{len(uncounted.partly_dated)} fill(s) are dated by month or year only, so the "
            "days they cover are unknown"
        )
    if uncounted.unknown_status:
        reasons.append(
            f"{len(uncounted.unknown_status)} fill(s) have an unknown or missing status, so "
            "whether they reached the patient is unknown"
        )
    return "; ".join(reasons)


# --- (c): not-taken statements --------------------------------------------------------------


def _not_taken(
    name: str, ctx: _Context
) -> tuple[tuple[MedicationCourse, ...], tuple[MedicationCourse, ...]]:
    """Not-taken statements of the ingredient that stand, and undated ones that fills in the
    window may have superseded (contested)."""
    standing: list[MedicationCourse] = []
    contested: list[MedicationCourse] = []
    filled = [
        d.handed_over
        for d in ctx.record.dispenses
        if _names(d, name) and d.status == "completed" and d.handed_over is not None
    ]
    for statement in ctx.record.courses:
        if (
            statement.source_type != "MedicationStatement"
            or statement.status != "not-taken"
            or not _names(statement, name)
            or _held_by_prescriber(statement, ctx.thresholds)
        ):
            continue
        # A statement with no effective date is dated by when it was made (dateAsserted).
        when = statement.start or statement.asserted
        if when is None:
            since = sum(ctx.window_start <= day <= ctx.now for day in filled)
            if since >= ctx.thresholds.min_dispenses:  # enough to supersede it, if they came after
                contested.append(statement)
            else:
                standing.append(statement)  # undated and uncontradicted: the latest word
        elif ctx.window_start <= when <= ctx.now and not _superseded(statement, when, filled, ctx):
            standing.append(statement)
    return tuple(standing), tuple(contested)


def _held_by_prescriber(statement: MedicationCourse, thresholds: Thresholds) -> bool:
    """The statement's reason (``statusReason``/``reasonNotTaken``) is a prescriber's hold or
    stop, coded or worded: a clinical decision, not the patient not taking it."""
    reasons = statement.status_reasons
    if any(c.code in thresholds.prescriber_hold_reason_codes for c in reasons):
        return True
    words = " ".join(c.display for c in reasons)
    return mentions_any(words, thresholds.prescriber_hold_reason_words)


def _superseded(
    statement: MedicationCourse, when: date, filled: list[date], ctx: _Context
) -> bool:
    """Later completed fills (as many as a PDC needs: one refill alone, perhaps automatic,
    does not show the drug is taken again), or a later order or active statement of the same
    ingredient."""
    names = {i.name for i in statement.psychotropic_ingredients}
    if sum(day > when for day in filled) >= ctx.thresholds.min_dispenses:
        return True
    return any(
        c.start is not None
        and c.start > when
        and any(i.name in names for i in c.ingredients)
        and (
            (c.source_type == "MedicationRequest" and was_taken(c))
            or (c.source_type == "MedicationStatement" and c.status == "active")
        )
        for c in ctx.record.courses
    )


# --- the finding ----------------------------------------------------------------------------


def _stopped_today(ctx: _Context) -> list[MedicationCourse]:
    """Psychotropic courses whose dated stop is today (the ordering session's stop or
    replacement, ``draft_plan``): taken until today, so the dose a draft changes."""
    return [
        c
        for c in taken_courses(ctx.record)
        if c.end == ctx.now and c.is_psychotropic and has_dated_stop(c, ctx.now)
    ]


def _raises_dose(draft: MedicationCourse, regimen: list[MedicationCourse]) -> bool:
    dose = single_dose(draft)
    if dose is None:
        return False
    names = {i.name for i in draft.ingredients}
    same = sorted(
        (
            c
            for c in regimen
            if single_dose(c) is not None and any(i.name in names for i in c.ingredients)
        ),
        key=lambda c: c.start or date.min,
    )
    return bool(same) and dose > (single_dose(same[-1]) or 0)


def _floor2(value: float) -> float:
    # Rounded down, so a card never shows a PDC equal to the threshold it fell below.
    return math.floor(value * 100 + 1e-9) / 100


def _finding(found: _Adherence, thresholds: Thresholds) -> Finding:
    gap = found.gap
    coverage = gap.coverage if gap else None
    lapsed = gap.lapsed_days if gap else None
    # A single lapsed fill is no proportion of days: its card says when the supply ran out.
    pdc = _floor2(coverage.pdc) if coverage is not None and lapsed is None else None
    fills = coverage.fills if coverage else ()
    evidence: list[EvidenceItem] = []
    if fills:
        last = fills[-1]
        supply = f"{len(fills)} fills" if len(fills) > 1 else f"{last.days_supply or 0:g}-day fill"
        # The line's date is the last fill's: the note ends by saying so.
        gist = (
            f"{supply}, supply ran out {lapsed} days ago; last fill"
            if lapsed is not None
            else f"{supply}, {round((pdc or 0) * 100)}% of days covered; last fill"
        )
        evidence.append(EvidenceItem(last.ref, found.ingredient, last.handed_over, gist))
    evidence += [
        EvidenceItem(s.ref, found.ingredient, s.start or s.asserted, "recorded as not taken")
        for s in found.not_taken[-1:]
    ]
    keys = {f"not-taken:{found.ingredient}" for _ in found.not_taken}
    if coverage is not None:
        keys.add(f"pdc:{found.ingredient}")
    facts: dict[str, object] = {
        "pdc": pdc,
        "pdc_percent": round(pdc * 100) if pdc is not None else None,
        "ingredient": found.ingredient,
        "drug_class": found.drug_class,
        "window_months": months(thresholds.window_days),
        "dispense_count": len(fills),
        "days_since_supply_ran_out": lapsed,
        "not_taken": bool(found.not_taken),
        "dose_increase_in_draft": found.dose_increase_in_draft,
        "period_start": coverage.period_start.isoformat() if coverage else None,
        "period_days": coverage.period_days if coverage else None,
    }
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(evidence),
        facts=facts,
        evidence_keys=frozenset(keys),
        concerns_draft=found.has_draft,
        references=unique_refs(
            [d.ref for d in fills] + [s.ref for s in found.not_taken] + [e.ref for e in evidence]
        ),
    )
