"""FHIR R4 JSON (prefetch values, searched Bundles, hook context) -> PatientRecord / DraftOrders.

Input is taken as EHRs really send it: Bundles with or without ``type``, OperationOutcomes where a
prefetch failed, ``None`` for "no data", and now and then junk (an HTML error page in a prefetch
key). Each resource is mapped on its own; what cannot be used becomes a MappingIssue and the rest
of the record is still built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import date
from operator import itemgetter
from typing import Any

from fhir_mappers.accessors import get, parse_date, relative_reference, text
from fhir_mappers.allergies import map_allergy
from fhir_mappers.codes import CodeLists
from fhir_mappers.collect import (
    OldEncounter,
    collect,
    entries_of,
    medication_index,
    medications_among,
    resource_ref,
)
from fhir_mappers.context import MappingContext
from fhir_mappers.dispenses import map_dispense
from fhir_mappers.encounters import map_encounter
from fhir_mappers.fill_horizon import OldFill, fills_to_map, old_fill_day
from fhir_mappers.medication_requests import (
    MappedCourse,
    map_medication_request,
    map_medication_statement,
)
from fhir_mappers.medication_source import medication_reference, resolve_medication
from fhir_mappers.medications import IngredientTable
from fhir_mappers.observations import map_condition, map_observation
from fhir_mappers.order_candidates import Candidate, candidate
from fhir_mappers.order_horizon import OrderHorizon, plan_drops
from fhir_mappers.other_medications import MEDICATION_USERS, other_medication
from fhir_mappers.record import (
    COMPLETED_VISIT_STATUSES,
    ConditionEntry,
    Dispense,
    DraftOrders,
    IntoleranceEvent,
    MappingIssue,
    MedicationCourse,
    OtherMedication,
    PatientRecord,
    SymptomScore,
    Visit,
)
from fhir_mappers.step_orders import merge_step_orders

# Exceptions a malformed resource could still provoke in a mapper; caught per resource so that
# one bad resource never sinks the others. Anything else is a bug and propagates.
_DATA_ERRORS = (AttributeError, KeyError, TypeError, ValueError, IndexError, ArithmeticError)
_Mapper = Callable[[Mapping[str, Any], str, MappingContext], Any]
_ORDER_TYPES = frozenset({"MedicationRequest", "MedicationOrder"})  # MedicationOrder: DSTU2
# Statuses of an order that may be one step of a plan written as one order per step
# (``step_orders``): drafts that prescribe (not a discontinuation re-sent in the session), and
# history orders that were given (not cancelled, refused or void).
_DRAFT_STEP_STATUSES = frozenset({"draft", "active", ""})
_HISTORY_STEP_STATUSES = frozenset({"active", "completed", "stopped", "on-hold"})
_COURSE_TYPES = _ORDER_TYPES | {"MedicationStatement"}


def map_record(
    resources: Iterable[Any],
    table: IngredientTable,
    *,
    medications: Mapping[str, Mapping[str, Any]] | None = None,
    codes: CodeLists,
    horizon: date | None = None,
    order_horizon: OrderHorizon | None = None,
    visit_horizon: date | None = None,
    patient_id: str | None = None,
    encounter_id: str | None = None,
    incomplete: Iterable[str] = (),
) -> PatientRecord:
    """The patient's timeline from resources and/or Bundles (prefetch values, search pages).

    ``medications`` maps "Medication/<id>" to Medications fetched separately; Medications among
    ``resources`` (``_include``) are used too. Problems end up in ``PatientRecord.issues``.
    With a ``horizon`` (``patterns.engine.evidence_horizon``), Encounters and Observations
    that ended before it are not mapped, except the latest review visits (see
    ``fhir_mappers.horizon``): the findings are the same, the work is bounded by the windows.
    A ``visit_horizon`` (``patterns.engine.visit_horizon``, never earlier than ``horizon``) is
    the one for Encounters, which fewer patterns read, over shorter windows.
    With an ``order_horizon`` (``patterns.order_reach.order_horizon``), old closed psychotropic
    orders that no pattern can read are not mapped either (``fhir_mappers.order_horizon``), nor
    are fills before its cut-off that no pattern can read (``fhir_mappers.fill_horizon``).
    Orders, statements and fills of a medication with no psychotropic ingredient are not
    mapped: they become ``PatientRecord.other_medications`` (``fhir_mappers.other_medications``).
    Entered-in-error resources and orders not to give a drug (``doNotPerform``) are left out.
    Orders of one drug written on one day as one order per dose step, each from its own
    ``boundsPeriod.start``, are one multi-step course (``step_orders.merge_step_orders``).
    With a ``patient_id``, resources about another patient (a lenient search that ignored
    ``patient=``) are dropped and counted as issues. ``encounter_id`` (the hook's
    ``context.encounterId``) is the encounter the call is made in: it is today's visit.
    ``incomplete`` names the resource types whose data did not arrive in full
    (``PatientRecord.incomplete``).
    """
    ctx = MappingContext(table, codes)
    ctx.current_encounter = f"Encounter/{encounter_id}" if encounter_id else None
    horizon_iso = horizon.isoformat() if horizon is not None else None
    visits_from = visit_horizon or horizon
    visit_iso = visits_from.isoformat() if visits_from is not None else None
    old_encounters: list[OldEncounter] = []
    found = collect(
        resources, ctx, horizon_iso, old_encounters, patient_id=patient_id, visit_iso=visit_iso
    )
    ctx.medications = medication_index(found, medications)
    ctx.requests = {ref: res for ref, res in found if ref.startswith("MedicationRequest/")}
    # Courses and intolerances keep their place in the inputs (then sort by day), so that an
    # order mapped late (``plan_drops``) sorts exactly as it would have.
    courses: list[tuple[int, MedicationCourse]] = []
    intolerances: list[tuple[int, IntoleranceEvent]] = []
    visits: list[Visit] = []
    dispenses: list[tuple[int, Dispense]] = []
    scores: list[SymptomScore] = []
    conditions: list[ConditionEntry] = []
    others: list[OtherMedication] = []
    candidates: list[Candidate] = []
    old_fills: list[OldFill] = []
    reasons_read: dict[bytes, bool] = {}  # stop reasons already classified (order_horizon)
    birth_date: date | None = None
    # By exact type (the record types are final dataclasses): cheaper than an isinstance chain.
    buckets: dict[type, list[Any]] = {
        Visit: visits,
        SymptomScore: scores,
        ConditionEntry: conditions,
    }

    def keep(position: int, result: Any) -> MappedCourse | None:
        if isinstance(result, Dispense):
            dispenses.append((position, result))
        elif isinstance(result, IntoleranceEvent):
            intolerances.append((position, result))
        elif isinstance(result, MappedCourse):
            courses.append((position, result.course))
            if result.intolerance is not None:
                intolerances.append((position, result.intolerance))
            return result
        return None

    for position, (ref, resource) in enumerate(found):
        rtype = text(resource.get("resourceType"))
        if rtype == "Patient":
            birth_date = birth_date or ctx.date(resource.get("birthDate"), rtype, ref, "birthDate")
            continue
        mapper = _RECORD_MAPPERS.get(rtype)
        if mapper is None or resource.get("status") == "entered-in-error":
            continue
        if rtype in MEDICATION_USERS:
            # Read first and once: a medication no pattern reads ends the reading here, and
            # what an order is decides whether it can be a candidate at all.
            medication = resolve_medication(resource, ctx, rtype, ref)
            if not medication.is_psychotropic:
                others.append(other_medication(resource, ref, rtype, medication))
                continue
            if _prohibits(resource):
                continue
            if rtype == "MedicationDispense" and order_horizon is not None:
                day = old_fill_day(resource, order_horizon.cutoff_text)
                if day is not None:  # decided once the courses are known (fills_to_map)
                    old_fills.append(OldFill(position, ref, resource, medication, day))
                    continue
            if order_horizon is not None and rtype in _COURSE_TYPES:
                found_candidate = candidate(
                    resource, ref, rtype, position, ctx, order_horizon.cutoff_text,
                    reasons_read, medication,
                )
                if found_candidate is not None:
                    candidates.append(found_candidate)
                    continue
            result = _safely(mapper, resource, ref, ctx, rtype, medication=medication)
        else:
            result = _safely(mapper, resource, ref, ctx, rtype)
        if result is None:
            continue
        bucket = buckets.get(type(result))
        if bucket is not None:
            bucket.append(result)
        else:
            keep(position, result)
    if candidates and order_horizon is not None:
        plan_drops(
            [course for _, course in courses],
            candidates,
            order_horizon,
            lambda c: keep(c.position, _safely(
                _RECORD_MAPPERS[c.rtype], c.resource, c.ref, ctx, c.rtype,
                medication=c.medication,
            )),
        )
    if old_fills:
        for fill in fills_to_map(old_fills, [course for _, course in courses]):
            keep(fill.position, _safely(
                map_dispense, fill.resource, fill.ref, ctx, "MedicationDispense",
                medication=fill.medication,
            ))
    visits.extend(_last_review_visits(old_encounters, ctx))
    ordered = [c for _, c in sorted(courses, key=lambda pc: (_date_key(pc[1].start), pc[0]))]
    return PatientRecord(
        courses=tuple(merge_step_orders(
            ordered, _written_on(ordered, ctx), {}, _HISTORY_STEP_STATUSES
        )),
        intolerances=tuple(
            e for _, e in sorted(intolerances, key=lambda pe: (_date_key(pe[1].when), pe[0]))
        ),
        visits=tuple(sorted(visits, key=lambda v: _date_key(v.start))),
        dispenses=tuple(
            d for _, d in sorted(dispenses, key=lambda pd: (_date_key(pd[1].handed_over), pd[0]))
        ),
        scores=tuple(sorted(scores, key=lambda s: _date_key(s.when))),
        conditions=tuple(conditions),
        other_medications=tuple(others),
        birth_date=birth_date,
        current_encounter=f"Encounter/{encounter_id}" if encounter_id else None,
        incomplete=frozenset(incomplete),
        issues=tuple(ctx.issues),
    )


def _written_on(courses: list[MedicationCourse], ctx: MappingContext) -> dict[str, str]:
    """The day (``authoredOn``, "YYYY-MM-DD") each order was written on, by ``ref``, for the
    orders of a drug of which one written that day starts later than that day: the orders that
    may be the steps of one plan (``step_orders``). Most histories have none."""
    written: dict[str, tuple[str, str]] = {}  # ref -> (ingredient, day)
    later: set[tuple[str, str]] = set()  # (ingredient, day) of an order starting after it
    for course in courses:
        if course.source_type != "MedicationRequest" or len(course.ingredients) != 1:
            continue
        resource = ctx.requests.get(course.ref)
        authored = resource.get("authoredOn") if resource is not None else None
        if type(authored) is not str or len(authored) < 10:
            continue
        key = (course.ingredients[0].name, authored[:10])
        written[course.ref] = key
        if course.start is not None and course.start.isoformat() > key[1]:
            later.add(key)
    return {ref: key[1] for ref, key in written.items() if key in later}


def _last_review_visits(encounters: list[OldEncounter], ctx: MappingContext) -> list[Visit]:
    """What the patterns can read of the visits before the horizon: visits-lag-changes' "last
    visit" is the latest *review* visit, a completed outpatient visit with a prescriber
    (``prescriber_visit`` True) or, at a site that counts them, one whose type does not say
    (None); a lab draw (False) is not one; nor is a visit of unreadable class unless its type
    names a prescriber. So: the newest completed visit with a prescriber, and the newest untyped
    outpatient one when it is newer still. Encounters of one day are
    read in input order (the sort is stable)."""
    kept: list[Visit] = []
    for old in sorted(encounters, key=itemgetter(0), reverse=True):
        ref = resource_ref(old.resource, "Encounter", old.position, old.full_url)
        visit = _safely(map_encounter, old.resource, ref, ctx, "Encounter")
        # Untyped visits are kept as candidates whatever the site counts (see above).
        if (
            not isinstance(visit, Visit)
            or visit.status not in COMPLETED_VISIT_STATUSES
            or not visit.may_be_review(count_untyped=True)
        ):
            continue
        if visit.prescriber_visit is None:
            if not kept:
                kept.append(visit)
            continue
        kept.append(visit)
        break
    return kept


def map_draft_orders(
    bundle: Any,
    table: IngredientTable,
    *,
    medications: Mapping[str, Mapping[str, Any]] | None = None,
    codes: CodeLists,
    patient_id: str | None = None,
    selections: Iterable[str] = (),
    today: date | None = None,
    history: Iterable[Any] = (),
) -> tuple[DraftOrders, tuple[MappingIssue, ...]]:
    """The medication orders of ``context.draftOrders`` (or legacy ``context.medications``).

    Other orders (ServiceRequest, NutritionOrder...) are ignored without an issue, and so are
    orders for another patient (counted as an issue). With ``selections`` (order-select), only
    the orders named there (by ``Type/id``, fullUrl or bare id) are marked ``is_selected``; the
    other drafts are context. When the selections name another draft of the bundle (a lab
    order), no medication order is selected. When they name nothing in the bundle (a client
    that spells them in some other way), every order is taken as selected rather than none.
    ``today`` (the clinic's date) is the day a draft starts, whatever its ``authoredOn`` (the
    day it was typed or pended): a planned duration (``boundsDuration``, dose steps) runs from
    it. Without it, drafts are dated by ``authoredOn`` as history orders are. ``history`` (the
    prefetch values) is where a Medication a draft references may also be: one that came with the
    patient's orders (an ``_include``) is not fetched again, so it is looked up there. Drafts of
    one drug that follow one another by their ``boundsPeriod`` (a taper written as one order per
    step) are one multi-step course (``step_orders.merge_step_orders``).
    """
    ctx = MappingContext(table, codes)
    found = collect(
        [bundle] if not isinstance(bundle, list) else bundle, ctx, patient_id=patient_id
    )
    ctx.medications = medication_index(found, medications)
    wanted = {
        key
        for _, resource in found
        if resource.get("resourceType") in _ORDER_TYPES
        for key in [relative_reference(medication_reference(resource))]
        if key and key.startswith("Medication/") and key not in ctx.medications
    }
    if wanted:
        ctx.medications = {**ctx.medications, **medications_among(history, wanted)}
    drafts: list[MedicationCourse] = []
    planned_starts: dict[str, date] = {}
    for ref, resource in found:
        rtype = text(resource.get("resourceType"))
        if (
            rtype not in _ORDER_TYPES
            or resource.get("status") == "entered-in-error"
            or _prohibits(resource)
        ):
            continue
        result = _safely(_draft, resource, ref, ctx, rtype, today=today)
        if isinstance(result, MappedCourse):
            drafts.append(result.course)
            planned = parse_date(
                get(resource, "dosageInstruction", 0, "timing", "repeat", "boundsPeriod", "start")
            )
            drafted = result.course.start
            if planned is not None and (drafted is None or planned > drafted):
                planned_starts[ref] = planned
    wanted = _selection_keys(selections, ctx)
    if wanted:
        chosen = [d for d in drafts if _draft_keys(d.ref, ctx) & wanted]
        # A selection that names another draft of the session (a lab order, a referral) chose
        # no medication: every medication draft is context, none is "the order".
        names_other = not chosen and any(
            _draft_keys(ref, ctx) & wanted for ref, _ in found
        )
        if chosen or names_other:
            drafts = [
                replace(d, is_selected=bool(_draft_keys(d.ref, ctx) & wanted)) for d in drafts
            ]
        else:
            ctx.issue("MedicationRequest", "#selections", "selections", "names no draft order")
    merged = merge_step_orders(
        drafts, dict.fromkeys((d.ref for d in drafts), "session"), planned_starts,
        _DRAFT_STEP_STATUSES, open_steps=True,
    )
    return tuple(merged), tuple(ctx.issues)


def _selection_keys(selections: Iterable[str], ctx: MappingContext) -> set[str]:
    keys: set[str] = set()
    for selection in selections:
        if isinstance(selection, str) and selection.strip():
            keys.add(selection.strip())
            resolved = ctx.resolve(selection)
            if resolved:
                keys.add(resolved)
    return keys


def _draft_keys(ref: str, ctx: MappingContext) -> set[str]:
    """What a selection may call a draft: "Type/id", the bare id, or its fullUrl."""
    keys = {ref, ref.rpartition("/")[2]}
    keys.update(url for url, target in ctx.aliases().items() if target == ref)
    return keys


def unresolved_medication_refs(resources: Iterable[Any]) -> set[str]:
    """Medication references ("Medication/x") no contained or supplied Medication answers."""
    present: set[str] = set()
    wanted: set[str] = set()
    for _, item in entries_of(resources):
        if not isinstance(item, Mapping):
            continue
        rtype = item.get("resourceType")
        if rtype == "Medication" and isinstance(item.get("id"), str):
            present.add(f"Medication/{item['id']}")
        elif rtype in MEDICATION_USERS:
            literal = medication_reference(item)
            key = relative_reference(literal) if literal else None
            if key and key.startswith("Medication/"):
                wanted.add(key)
    return wanted - present


def _draft(
    resource: Mapping[str, Any], ref: str, ctx: MappingContext, *, today: date | None
) -> MappedCourse:
    return map_medication_request(resource, ref, ctx, is_draft=True, draft_start=today)


def _safely(
    target: Callable[..., Any],
    resource: Mapping[str, Any],
    ref: str,
    ctx: MappingContext,
    rtype: str,
    **options: Any,
) -> Any:
    try:
        return target(resource, ref, ctx, **options)
    except _DATA_ERRORS as exc:
        ctx.issue(rtype, ref, "", f"could not be mapped ({type(exc).__name__})")
        return None


def _prohibits(resource: Mapping[str, Any]) -> bool:
    """A MedicationRequest with ``doNotPerform: true`` (R4): an order *not* to give the drug. It
    is no course of use, neither in the history nor among the drafts; the patterns read none."""
    return resource.get("doNotPerform") is True


def _date_key(value: date | None) -> date:
    # Undated entries sort first: they are history of unknown age, never "recent".
    return value or date.min


_RECORD_MAPPERS: dict[str, _Mapper] = {
    "MedicationRequest": map_medication_request,
    "MedicationOrder": map_medication_request,
    "MedicationStatement": map_medication_statement,
    "AllergyIntolerance": map_allergy,
    "Encounter": map_encounter,
    "MedicationDispense": map_dispense,
    "Observation": map_observation,
    "Condition": map_condition,
}
