"""MedicationRequest and MedicationStatement -> MedicationCourse (and intolerance evidence).

R4 shapes first; STU3 (``context``, ``requester.agent``, ``reasonNotTaken``, ``taken``) and DSTU2
MedicationOrder (``dateWritten``, ``prescriber``, ``reasonEnded``) are read where they differ,
because the legacy medication-prescribe hook still sends them. A course that ended for an
intolerance or allergy reason also yields an IntoleranceEvent, dated by its end or, failing that,
the last date the resource gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

from fhir_mappers.accessors import as_list, codes, codings, concept_text, get, reference
from fhir_mappers.context import MappingContext
from fhir_mappers.dosage import daily_dose
from fhir_mappers.medication_source import resolve_medication
from fhir_mappers.record import Coding, IntoleranceEvent, MedicationCourse

# Statuses after which a stop reason describes how the course ended.
_ENDED = frozenset({"stopped", "completed", "cancelled", "not-taken"})
_STOP_KINDS_AS_EVIDENCE = frozenset({"intolerance", "allergy"})


@dataclass(frozen=True, slots=True)
class MappedCourse:
    course: MedicationCourse
    intolerance: IntoleranceEvent | None = None


def map_medication_request(
    resource: Mapping[str, Any], ref: str, ctx: MappingContext, *, is_draft: bool = False
) -> MappedCourse:
    rtype: Final = "MedicationRequest"
    dosages = resource.get("dosageInstruction")
    bounds = get(dosages, 0, "timing", "repeat", "boundsPeriod")
    authored = resource.get("authoredOn", resource.get("dateWritten"))
    start = ctx.date(authored, rtype, ref, "authoredOn")
    if start is None and not is_draft:  # a draft's planned start is not history; drafts start now
        start = ctx.date(
            get(bounds, "start"),
            rtype,
            ref,
            "dosageInstruction[0].timing.repeat.boundsPeriod.start",
        )
    # validityPeriod is how long the prescription may be filled, not when treatment stops.
    end = ctx.date(
        get(bounds, "end"), rtype, ref, "dosageInstruction[0].timing.repeat.boundsPeriod.end"
    ) or ctx.date(resource.get("dateEnded"), rtype, ref, "dateEnded")
    reasons = [resource.get("statusReason"), resource.get("reasonEnded")]
    requester = resource.get("requester")
    return _build(
        resource,
        ref,
        ctx,
        source_type=rtype,
        intent=ctx.string(resource.get("intent"), rtype, ref, "intent"),
        status=ctx.string(resource.get("status"), rtype, ref, "status"),
        start=start,
        end=end,
        last_known=end or start,
        reasons=reasons,
        dosages=dosages,
        requester=reference(get(requester, "agent"))
        or reference(requester)
        or reference(resource.get("prescriber")),
        encounter=reference(resource.get("encounter")) or reference(resource.get("context")),
        prior=reference(resource.get("priorPrescription")),
        is_draft=is_draft,
    )


def map_medication_statement(
    resource: Mapping[str, Any], ref: str, ctx: MappingContext
) -> MappedCourse:
    rtype: Final = "MedicationStatement"
    period = resource.get("effectivePeriod")
    start = ctx.date(
        resource.get("effectiveDateTime"), rtype, ref, "effectiveDateTime"
    ) or ctx.date(get(period, "start"), rtype, ref, "effectivePeriod.start")
    end = ctx.date(get(period, "end"), rtype, ref, "effectivePeriod.end")
    asserted = ctx.date(resource.get("dateAsserted"), rtype, ref, "dateAsserted")
    status = ctx.string(resource.get("status"), rtype, ref, "status")
    if resource.get("taken") == "n":  # STU3 said "not taken" with a separate flag
        status = "not-taken"
    known = [d for d in (start, end, asserted) if d is not None]
    return _build(
        resource,
        ref,
        ctx,
        source_type=rtype,
        intent="",
        status=status,
        start=start,
        end=end,
        last_known=end or (max(known) if known else None),
        reasons=[resource.get("statusReason"), resource.get("reasonNotTaken")],
        dosages=resource.get("dosage"),
        requester=None,
        encounter=reference(resource.get("context")),
        prior=None,
        is_draft=False,
    )


def _build(
    resource: Mapping[str, Any],
    ref: str,
    ctx: MappingContext,
    *,
    source_type: Literal["MedicationRequest", "MedicationStatement"],
    intent: str,
    status: str,
    start: date | None,
    end: date | None,
    last_known: date | None,
    reasons: list[Any],
    dosages: Any,
    requester: str | None,
    encounter: str | None,
    prior: str | None,
    is_draft: bool,
) -> MappedCourse:
    if resource.get("status") is None:
        ctx.issue(source_type, ref, "status", "missing status")
    medication = resolve_medication(resource, ctx, source_type, ref)
    dose = daily_dose(dosages, medication, ctx.codes)
    if dose.problem is not None:
        where = "dosageInstruction" if source_type == "MedicationRequest" else "dosage"
        ctx.issue(source_type, ref, where, dose.problem)
    reason_concepts = [c for r in reasons for c in as_list(r)]
    reason_codings = tuple(
        Coding(str(c.get("system") or ""), str(c.get("code") or ""), str(c.get("display") or ""))
        for c in codings(reason_concepts)
    )
    reason_text = " ".join(filter(None, (concept_text(c) for c in reason_concepts)))
    stop_reason = ctx.codes.stop_reason(codes(reason_concepts), reason_text)
    course = MedicationCourse(
        ref=ref,
        source_type=source_type,
        display=medication.display,
        ingredients=medication.ingredients,
        status=status,
        intent=intent,
        start=start,
        end=end,
        daily_dose_mg=dose.mg,
        status_reasons=reason_codings,
        stop_reason=stop_reason,
        requester=requester,
        encounter=encounter,
        prior_prescription=prior,
        is_prn=dose.is_prn,
        is_draft=is_draft,
    )
    intolerance = None
    if status in _ENDED and stop_reason in _STOP_KINDS_AS_EVIDENCE and not is_draft:
        intolerance = IntoleranceEvent(
            ref=ref,
            origin=source_type,
            substance=medication.display,
            ingredients=medication.ingredients,
            when=last_known,
            kind="allergy" if stop_reason == "allergy" else "intolerance",
            manifestation_codes=tuple(c.code for c in reason_codings if c.code),
            reaction_text=reason_text,
        )
    return MappedCourse(course, intolerance)
