"""MedicationRequest and MedicationStatement -> MedicationCourse (and intolerance evidence).

R4 shapes first; STU3 (``context``, ``requester.agent``, ``reasonNotTaken``, ``taken``) and DSTU2
MedicationOrder (``dateWritten``, ``prescriber``, ``reasonEnded``) are read where they differ,
because the legacy medication-prescribe hook still sends them. A course that ended (or was
put on hold) for an intolerance or allergy reason also yields an IntoleranceEvent, dated by its
end or, failing that, its start (``authoredOn`` or bounds start of an order, the effective start
of a statement): the earliest day the record allows for the stop. A statement's ``dateAsserted``
is when it was written down, not when the drug was stopped: it dates the stop only when the
statement gives no effective date at all, as an allergy's ``recordedDate`` dates it only without
an onset (``allergies``).

A medication that is not psychotropic is recognised first and kept as a bare course (no dosage,
stop reasons or dates reported): nothing the patterns read depends on it, and its data problems
(a lisinopril dose without a unit) are not ours to report. A multi-step order (titration, taper)
runs from its first step to its last; it is open when its last step has no end. Partial dates:
a start is read as the first day of the period it names, an end as the last day (the course is
not taken to have stopped before the period the record names); but the IntoleranceEvent of a
stop is dated by the first day of its end's period (not before the start), as every intolerance
event is (docs/real-world-data.md, Dates): imprecision never pulls an event into a look-back
window ("2024" is not 2024-12-31).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

from fhir_mappers.accessors import (
    as_list,
    codes,
    codings,
    concept_text,
    get,
    parse_date,
    reference,
    says,
    text,
)
from fhir_mappers.context import MappingContext
from fhir_mappers.dosage import administration, daily_dose_memo, dose_schedule, duration_end
from fhir_mappers.medication_source import ResolvedMedication, resolve_medication
from fhir_mappers.record import (
    AdministrationReading,
    Coding,
    DoseStep,
    IntoleranceEvent,
    MedicationCourse,
)

# Statuses after which a stop reason describes how the course ended.
_ENDED = frozenset({"stopped", "completed", "cancelled", "not-taken"})
# Statuses whose reason, when an intolerance or allergy, documents one: the ended ones, and an
# order put on hold for it (the prescriber acted on a suspected reaction, as with a stop). A
# hold has no end: its event is dated by the course's start, the earliest day it can be.
_EVIDENCE_STATUSES = _ENDED | {"on-hold"}
_STOP_KINDS_AS_EVIDENCE = frozenset({"intolerance", "allergy"})


@dataclass(frozen=True, slots=True)
class MappedCourse:
    """A mapped order or statement: the ``MedicationCourse`` and, when it was stopped for an
    intolerance or allergy (``statusReason``/``reasonEnded`` coded or worded as such), the
    ``IntoleranceEvent`` it documents."""

    course: MedicationCourse
    intolerance: IntoleranceEvent | None = None


def map_medication_request(
    resource: Mapping[str, Any],
    ref: str,
    ctx: MappingContext,
    *,
    is_draft: bool = False,
    medication: ResolvedMedication | None = None,
    draft_start: date | None = None,
) -> MappedCourse:
    """A MedicationRequest (R4; DSTU2/STU3 ``dateWritten``/``dateEnded``/``reasonEnded`` read
    too) as a ``MedicationCourse`` (``ref`` "MedicationRequest/<id>").

    A non-psychotropic is recognised from its medication first and kept as a bare course (status,
    intent, start), with no dose or dates read in detail. Otherwise: ``start`` is ``authoredOn``
    (else the first dosage's ``boundsPeriod.start``; a draft starts now), ``end`` the bounds' end
    or ``dateEnded``, else the end of its ``boundsDuration`` (``dosage.duration_end``;
    ``validityPeriod`` is the fill window, not the end of treatment), daily dose
    in mg/day from every ``dosageInstruction`` step, and the stop reason classified by the code
    lists. ``is_draft`` marks an order from ``context.draftOrders``, and ``draft_start`` (the
    day of signing) is then its start, from which a planned duration runs; ``medication`` is
    ``resolve_medication`` of the order when the caller has it already. Never raises: unreadable
    fields become ``MappingIssue``s on ``ctx``.
    """
    rtype: Final = "MedicationRequest"
    if medication is None:
        medication = resolve_medication(resource, ctx, rtype, ref)
    authored = resource.get("authoredOn", resource.get("dateWritten"))
    if not medication.is_psychotropic:
        return MappedCourse(_bare_course(resource, ref, rtype, medication, authored, is_draft))
    dosages = resource.get("dosageInstruction")
    bounds = get(dosages, 0, "timing", "repeat", "boundsPeriod")
    start = ctx.date(authored, rtype, ref, "authoredOn")
    bounds_start = get(bounds, "start")
    planned = (
        ctx.date(
            bounds_start, rtype, ref, "dosageInstruction[0].timing.repeat.boundsPeriod.start"
        )
        if bounds_start is not None and not is_draft and not _not_later(bounds_start, authored)
        else None
    )
    if is_draft and draft_start is not None:
        start = draft_start  # authoredOn of a draft is when it was typed, not when it starts
    # Treatment begins when the dosage's bounds begin: a step written as its own order on the
    # day of the visit ("50 mg from the 28th", authored on the 21st) starts on the 28th, so
    # orders written together sort by when each applies, not by their ids. A bounds start
    # before authoredOn (an order entered after the drug was begun) does not move the start
    # back: authoredOn is the day the record vouches for. A draft starts on the day of signing
    # (its later steps: ``mapper.map_draft_orders``).
    if planned is not None and not is_draft and (start is None or planned > start):
        start = planned
    # validityPeriod is how long the prescription may be filled, not when treatment stops.
    end_days = ctx.period(
        get(bounds, "end"), rtype, ref, "dosageInstruction[0].timing.repeat.boundsPeriod.end"
    ) or ctx.period(resource.get("dateEnded"), rtype, ref, "dateEnded")
    end = end_days[1] if end_days else None
    if end is None:  # "daily for 14 days": timing.repeat.boundsDuration instead of an end
        end = duration_end(dosages, start, ctx.codes)
        end_days = (end, end) if end is not None else None
    reasons = [resource.get("statusReason"), resource.get("reasonEnded")]
    requester = resource.get("requester")
    if type(requester) is dict and "agent" not in requester:  # R4: the Reference itself
        requester_ref = reference(requester) or reference(resource.get("prescriber"))
    else:  # STU3 requester.agent, DSTU2 prescriber
        requester_ref = (
            reference(get(requester, "agent"))
            or reference(requester)
            or reference(resource.get("prescriber"))
        )
    return _build(
        resource,
        ref,
        ctx,
        medication=medication,
        source_type=rtype,
        intent=ctx.string(resource.get("intent"), rtype, ref, "intent"),
        status=ctx.string(resource.get("status"), rtype, ref, "status"),
        start=start,
        end=end,
        stop_day=_stop_day(end_days, start) or start,
        reasons=reasons,
        dosages=dosages,
        requester=requester_ref,
        encounter=ctx.resolve(resource.get("encounter")) or ctx.resolve(resource.get("context")),
        prior=ctx.resolve(resource.get("priorPrescription")),
        is_draft=is_draft,
        reported=_reported(resource),
    )


def _bare_course(
    resource: Mapping[str, Any],
    ref: str,
    source_type: Literal["MedicationRequest", "MedicationStatement"],
    medication: ResolvedMedication,
    when: Any,
    is_draft: bool,
) -> MedicationCourse:
    """A course of a medication no pattern reads: kept for completeness, not read in detail."""
    return MedicationCourse(
        ref=ref,
        source_type=source_type,
        display=medication.display,
        ingredients=medication.ingredients,
        status=text(resource.get("status")),
        intent=text(resource.get("intent")),
        start=parse_date(when),
        end=None,
        daily_dose_mg=None,
        is_draft=is_draft,
    )


def map_medication_statement(
    resource: Mapping[str, Any],
    ref: str,
    ctx: MappingContext,
    *,
    medication: ResolvedMedication | None = None,
) -> MappedCourse:
    """A MedicationStatement as a ``MedicationCourse`` (``ref`` "MedicationStatement/<id>"):
    ``effectiveDateTime`` or ``effectivePeriod`` give start and end, ``dosage`` the mg/day,
    ``status`` (STU3 ``taken`` "n"/"na" and DSTU2 ``wasNotTaken`` read as not-taken, STU3
    "unk" as unknown) with ``statusReason``/``reasonNotTaken``
    what the patient reported; a stop for an intolerance is dated by the end, else the start,
    else ``dateAsserted`` (module docstring). A non-psychotropic is kept as a bare course.
    ``medication`` is ``resolve_medication`` of the statement when the caller has it already.
    Never raises; problems become ``MappingIssue``s on ``ctx``.
    """
    rtype: Final = "MedicationStatement"
    if medication is None:
        medication = resolve_medication(resource, ctx, rtype, ref)
    if not medication.is_psychotropic:
        when = resource.get("effectiveDateTime") or get(resource, "effectivePeriod", "start")
        return MappedCourse(_bare_course(resource, ref, rtype, medication, when, False))
    period = resource.get("effectivePeriod")
    start = ctx.date(
        resource.get("effectiveDateTime"), rtype, ref, "effectiveDateTime"
    ) or ctx.date(get(period, "start"), rtype, ref, "effectivePeriod.start")
    end_days = ctx.period(get(period, "end"), rtype, ref, "effectivePeriod.end")
    end = end_days[1] if end_days else None
    asserted = ctx.date(resource.get("dateAsserted"), rtype, ref, "dateAsserted")
    status = ctx.string(resource.get("status"), rtype, ref, "status")
    # Before R4 a separate element said whether the drug was taken, whatever the status:
    # STU3 ``taken`` ("n" no, "na" no reason to think so, "unk" not known) and DSTU2
    # ``wasNotTaken`` (a modifier: true reverses what the statement says).
    taken = resource.get("taken")
    if taken in ("n", "na") or resource.get("wasNotTaken") is True:
        status = "not-taken"
    elif taken == "unk":
        status = "unknown"
    return _build(
        resource,
        ref,
        ctx,
        medication=medication,
        source_type=rtype,
        intent="",
        status=status,
        start=start,
        end=end,
        # as an order's: the end, else the start; dateAsserted only for a statement with neither
        stop_day=_stop_day(end_days, start) or start or asserted,
        reasons=[resource.get("statusReason"), resource.get("reasonNotTaken")],
        dosages=resource.get("dosage"),
        requester=None,
        encounter=ctx.resolve(resource.get("context")),
        prior=None,
        is_draft=False,
        asserted=asserted,
        reported=_statement_reported(resource),
    )


def _build(
    resource: Mapping[str, Any],
    ref: str,
    ctx: MappingContext,
    *,
    medication: ResolvedMedication,
    source_type: Literal["MedicationRequest", "MedicationStatement"],
    intent: str,
    status: str,
    start: date | None,
    end: date | None,
    stop_day: date | None,
    reasons: list[Any],
    dosages: Any,
    requester: str | None,
    encounter: str | None,
    prior: str | None,
    is_draft: bool,
    asserted: date | None = None,
    reported: bool = False,
) -> MappedCourse:
    if resource.get("status") is None:
        ctx.issue(source_type, ref, "status", "missing status")
    dose = daily_dose_memo(dosages, medication, ctx.codes, ctx.doses, starts=start)
    if dose.problem is not None:
        where = "dosageInstruction" if source_type == "MedicationRequest" else "dosage"
        ctx.issue(source_type, ref, where, dose.problem)
    reason_concepts = [c for r in reasons if r is not None for c in as_list(r)]
    reason_codings: tuple[Coding, ...] = ()
    reason_text = ""
    stop_reason = None
    if reason_concepts:  # most orders carry no reason: nothing to read or classify
        reason_codings = tuple(
            Coding(
                str(c.get("system") or ""), str(c.get("code") or ""), str(c.get("display") or "")
            )
            for c in codings(reason_concepts)
        ) + _text_only(reason_concepts)
        reason_text = " ".join(filter(None, (concept_text(c) for c in reason_concepts)))
        stop_reason = ctx.codes.stop_reason(codes(reason_concepts), reason_text)
    course = MedicationCourse(
        ref=ref,
        source_type=source_type,
        display=medication.display,
        ingredients=medication.ingredients,
        status=status,
        intent=intent,
        start=start or (dose.steps[0].start if dose.steps and not is_draft else None),
        end=_course_end(end, dose.steps),
        daily_dose_mg=dose.mg,
        status_reasons=reason_codings,
        stop_reason=stop_reason,
        requester=requester,
        encounter=encounter,
        prior_prescription=prior,
        is_prn=dose.is_prn,
        is_draft=is_draft,
        steps=dose.steps,
        asserted=asserted,
        reported=reported,
        schedule=(
            dose_schedule(dosages, medication, ctx.codes)
            if dose.mg is not None and not dose.steps
            else None
        ),
        administration=AdministrationReading(administration, dosages, medication),
    )
    intolerance = None
    if status in _EVIDENCE_STATUSES and stop_reason in _STOP_KINDS_AS_EVIDENCE and not is_draft:
        intolerance = IntoleranceEvent(
            ref=ref,
            origin=source_type,
            substance=medication.display,
            ingredients=medication.ingredients,
            when=stop_day,
            kind="allergy" if stop_reason == "allergy" else "intolerance",
            manifestation_codes=tuple(c.code for c in reason_codings if c.code),
            reaction_text=reason_text,
        )
    return MappedCourse(course, intolerance)


def _not_later(day: Any, than: Any) -> bool:
    """Two full ISO days or dateTimes of which the first names no later day than the second (a
    string comparison: the common bounds start on the day of authoredOn needs no reading)."""
    return (
        type(day) is str and type(than) is str and len(day) >= 10 and len(than) >= 10
        and day[4] == "-" and than[4] == "-" and day[:10] <= than[:10]
    )


def _reported(resource: Mapping[str, Any]) -> bool:
    """Whether the order was recorded from another source: R4 ``reportedBoolean`` true (the
    JSON boolean, or "true" as hand-built exports send it) or a ``reportedReference``; R5
    ``reported`` true or an ``informationSource`` (the source "if someone other than the
    requestor")."""
    if not _REPORTED_ELEMENTS.intersection(resource):
        return False  # the common order: written here, and read with one set operation
    if says(resource.get("reportedBoolean"), "true") or says(resource.get("reported"), "true"):
        return True
    return isinstance(resource.get("reportedReference"), Mapping) or any(
        isinstance(source, Mapping) for source in as_list(resource.get("informationSource"))
    )


# The elements by which an order says it was recorded from another source (R4, R5).
_REPORTED_ELEMENTS = frozenset(
    {"reportedBoolean", "reportedReference", "reported", "informationSource"}
)
# Who may tell of a MedicationStatement without being a prescriber here.
_OUTSIDE_SOURCES = ("Patient/", "RelatedPerson/", "Organization/")


def _statement_reported(resource: Mapping[str, Any]) -> bool:
    """A MedicationStatement whose ``informationSource`` is the patient, a relative or another
    organization: what it says of a change was not a prescribing decision written here. (A
    practitioner as its source may be one of this site's, so that alone says nothing.)"""
    return any(
        (ref := reference(source)) is not None and ref.startswith(_OUTSIDE_SOURCES)
        for source in as_list(resource.get("informationSource"))
    )


def _stop_day(end_days: tuple[date, date] | None, start: date | None) -> date | None:
    """The day a stop is dated as an intolerance event: the first day of the period its end
    names (``end_days``: (first, last)), and not before the course's ``start`` (a stop cannot
    precede it); None without an end. The course's own end stays the last day."""
    if end_days is None:
        return None
    return max(end_days[0], start) if start is not None else end_days[0]


def _course_end(end: date | None, steps: tuple[DoseStep, ...]) -> date | None:
    """A multi-step order ends with its last step (open when that step has no end): the first
    step's bounds end only ends the first step."""
    if not steps:
        return end
    return steps[-1].end


def _text_only(concepts: list[Any]) -> tuple[Coding, ...]:
    """A reason given as text alone ("held by prescriber until after ECT"), kept as a Coding
    with no system or code, so that what the words say is not lost for want of a code."""
    return tuple(
        Coding("", "", text(concept.get("text")))
        for concept in concepts
        if isinstance(concept, Mapping) and text(concept.get("text")) and not codings(concept)
    )
