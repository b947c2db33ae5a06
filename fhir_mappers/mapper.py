"""FHIR R4 JSON (prefetch values, searched Bundles, hook context) -> PatientRecord / DraftOrders.

Input is taken as EHRs really send it: Bundles with or without ``type``, OperationOutcomes where a
prefetch failed, ``None`` for "no data", and now and then junk (an HTML error page in a prefetch
key). Each resource is mapped on its own; what cannot be used becomes a MappingIssue and the rest
of the record is still built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from typing import Any

from fhir_mappers.accessors import relative_reference, text
from fhir_mappers.allergies import map_allergy
from fhir_mappers.codes import CodeLists
from fhir_mappers.context import MappingContext
from fhir_mappers.dispenses import map_dispense
from fhir_mappers.encounters import map_encounter
from fhir_mappers.horizon import encounter_before, observation_before, visit_day_key
from fhir_mappers.medication_requests import (
    MappedCourse,
    map_medication_request,
    map_medication_statement,
)
from fhir_mappers.medication_source import medication_reference
from fhir_mappers.medications import IngredientTable
from fhir_mappers.observations import map_condition, map_observation
from fhir_mappers.record import (
    ConditionEntry,
    Dispense,
    DraftOrders,
    IntoleranceEvent,
    MappingIssue,
    MedicationCourse,
    PatientRecord,
    SymptomScore,
    Visit,
)

# Exceptions a malformed resource could still provoke in a mapper; caught per resource so that
# one bad resource never sinks the others. Anything else is a bug and propagates.
_DATA_ERRORS = (AttributeError, KeyError, TypeError, ValueError, IndexError, ArithmeticError)
_MAX_BUNDLE_DEPTH = 3
_Mapper = Callable[[Mapping[str, Any], str, MappingContext], Any]
_ORDER_TYPES = frozenset({"MedicationRequest", "MedicationOrder"})  # MedicationOrder: DSTU2
_MEDICATION_USERS = _ORDER_TYPES | {"MedicationStatement", "MedicationDispense"}


def map_record(
    resources: Iterable[Any],
    table: IngredientTable,
    *,
    medications: Mapping[str, Mapping[str, Any]] | None = None,
    codes: CodeLists,
    horizon: date | None = None,
) -> PatientRecord:
    """The patient's timeline from resources and/or Bundles (prefetch values, search pages).

    ``medications`` maps "Medication/<id>" to Medications fetched separately; Medications among
    ``resources`` (``_include``) are used too. Problems end up in ``PatientRecord.issues``.
    With a ``horizon`` (``patterns.engine.evidence_horizon``), Encounters and Observations
    that ended before it are not mapped, except the latest completed outpatient visit (see
    ``fhir_mappers.horizon``): the findings are the same, the work is bounded by the windows.
    """
    ctx = MappingContext(table, codes)
    horizon_iso = horizon.isoformat() if horizon is not None else None
    old_encounters: list[tuple[str, Mapping[str, Any]]] = []
    found = _collect(resources, ctx, horizon_iso, old_encounters)
    ctx.medications = _medication_index(found, medications)
    ctx.requests = {ref: res for ref, res in found if ref.startswith("MedicationRequest/")}
    courses: list[MedicationCourse] = []
    intolerances: list[IntoleranceEvent] = []
    visits: list[Visit] = []
    dispenses: list[Dispense] = []
    scores: list[SymptomScore] = []
    conditions: list[ConditionEntry] = []
    birth_date: date | None = None
    # By exact type (the record types are final dataclasses): cheaper than an isinstance chain.
    buckets: dict[type, list[Any]] = {
        IntoleranceEvent: intolerances,
        Visit: visits,
        Dispense: dispenses,
        SymptomScore: scores,
        ConditionEntry: conditions,
    }
    for ref, resource in found:
        rtype = text(resource.get("resourceType"))
        if rtype == "Patient":
            birth_date = birth_date or ctx.date(resource.get("birthDate"), rtype, ref, "birthDate")
            continue
        mapper = _RECORD_MAPPERS.get(rtype)
        if mapper is None or resource.get("status") == "entered-in-error":
            continue
        result = _safely(mapper, resource, ref, ctx, rtype)
        bucket = buckets.get(type(result))
        if bucket is not None:
            bucket.append(result)
        elif isinstance(result, MappedCourse):
            courses.append(result.course)
            if result.intolerance is not None:
                intolerances.append(result.intolerance)
    latest = _latest_outpatient_visit(old_encounters, ctx)
    if latest is not None:
        visits.append(latest)
    return PatientRecord(
        courses=tuple(sorted(courses, key=lambda c: _date_key(c.start))),
        intolerances=tuple(sorted(intolerances, key=lambda e: _date_key(e.when))),
        visits=tuple(sorted(visits, key=lambda v: _date_key(v.start))),
        dispenses=tuple(sorted(dispenses, key=lambda d: _date_key(d.handed_over))),
        scores=tuple(sorted(scores, key=lambda s: _date_key(s.when))),
        conditions=tuple(conditions),
        birth_date=birth_date,
        issues=tuple(ctx.issues),
    )


def _latest_outpatient_visit(
    encounters: list[tuple[str, Mapping[str, Any]]], ctx: MappingContext
) -> Visit | None:
    """The most recent completed outpatient visit among encounters before the horizon."""
    def start_key(item: tuple[str, Mapping[str, Any]]) -> str:
        period = item[1].get("period")
        return visit_day_key(period.get("start"), period.get("end")) if type(period) is dict else ""

    for ref, resource in sorted(encounters, key=start_key, reverse=True):
        visit = _completed_outpatient(resource, ref, ctx)
        if visit is not None:
            return visit
    return None


def is_latest_visit(
    resource: Mapping[str, Any], table: IngredientTable, codes: CodeLists
) -> bool:
    """Whether the latest-visit search (``_latest_outpatient_visit``) stops at this Encounter:
    it maps to a completed outpatient visit."""
    ref = _ref(resource, "Encounter", 0)
    return _completed_outpatient(resource, ref, MappingContext(table, codes)) is not None


def _completed_outpatient(
    resource: Mapping[str, Any], ref: str, ctx: MappingContext
) -> Visit | None:
    visit = _safely(map_encounter, resource, ref, ctx, "Encounter")
    return visit if isinstance(visit, Visit) and visit.is_completed_outpatient else None


def map_draft_orders(
    bundle: Any,
    table: IngredientTable,
    *,
    medications: Mapping[str, Mapping[str, Any]] | None = None,
    codes: CodeLists,
) -> tuple[DraftOrders, tuple[MappingIssue, ...]]:
    """The medication orders of ``context.draftOrders`` (or legacy ``context.medications``).

    Other orders (ServiceRequest, NutritionOrder...) are ignored without an issue.
    """
    ctx = MappingContext(table, codes)
    found = _collect([bundle] if not isinstance(bundle, list) else bundle, ctx)
    ctx.medications = _medication_index(found, medications)
    drafts: list[MedicationCourse] = []
    for ref, resource in found:
        rtype = text(resource.get("resourceType"))
        if rtype not in _ORDER_TYPES or resource.get("status") == "entered-in-error":
            continue
        result = _safely(_draft, resource, ref, ctx, rtype)
        if isinstance(result, MappedCourse):
            drafts.append(result.course)
    return tuple(drafts), tuple(ctx.issues)


def unresolved_medication_refs(resources: Iterable[Any]) -> set[str]:
    """Medication references ("Medication/x") no contained or supplied Medication answers."""
    present: set[str] = set()
    wanted: set[str] = set()
    for item in _walk(_as_items(resources)):
        if not isinstance(item, Mapping):
            continue
        rtype = item.get("resourceType")
        if rtype == "Medication" and isinstance(item.get("id"), str):
            present.add(f"Medication/{item['id']}")
        elif rtype in _MEDICATION_USERS:
            literal = medication_reference(item)
            key = relative_reference(literal) if literal else None
            if key and key.startswith("Medication/"):
                wanted.add(key)
    return wanted - present


def _draft(resource: Mapping[str, Any], ref: str, ctx: MappingContext) -> MappedCourse:
    return map_medication_request(resource, ref, ctx, is_draft=True)


def _collect(
    resources: Iterable[Any],
    ctx: MappingContext,
    horizon_iso: str | None = None,
    old_encounters: list[tuple[str, Mapping[str, Any]]] | None = None,
) -> list[tuple[str, Mapping[str, Any]]]:
    """Resources with their references, Bundles unpacked, junk reported, duplicates dropped.

    With a horizon, Observations before it are dropped here and Encounters before it go to
    ``old_encounters``: deciding before the reference is built keeps a long history cheap.
    """
    found: list[tuple[str, Mapping[str, Any]]] = []
    seen: set[str] = set()
    # The loop runs once per resource of the whole history: type() before isinstance(), the
    # horizon tests before the resourceType checks (they compare with ==), no helper calls for
    # the common case.
    for position, item in enumerate(_walk(_as_items(resources))):
        if type(item) is not dict:
            if item is None:
                continue
            if not isinstance(item, Mapping):
                ctx.issue("unknown", f"#{position}", "", f"not a JSON object ({_describe(item)})")
                continue
        rtype = item.get("resourceType")
        if horizon_iso is not None:
            if rtype == "Observation":
                if observation_before(item, horizon_iso):
                    continue
            elif rtype == "Encounter" and encounter_before(item, horizon_iso):
                if old_encounters is not None:
                    old_encounters.append((_ref(item, rtype, position), item))
                continue
        if type(rtype) is not str or not rtype:
            ctx.issue("unknown", f"#{position}", "resourceType", "missing resourceType")
            continue
        if rtype == "OperationOutcome":
            continue  # a prefetch error report: there is simply no data for that key
        ref = _ref(item, rtype, position)
        if ref in seen:
            continue
        seen.add(ref)
        found.append((ref, item))
    return found


def _ref(item: Mapping[str, Any], rtype: str, position: int) -> str:
    rid = item.get("id")
    return f"{rtype}/{rid}" if isinstance(rid, str) and rid else f"#{position}"


def _walk(items: Iterable[Any], depth: int = 0) -> Iterator[Any]:
    for item in items:
        # type() first: the ABC check costs more than the rest of the loop, per resource.
        if (type(item) is dict or isinstance(item, Mapping)) and item.get(
            "resourceType"
        ) == "Bundle":
            if depth >= _MAX_BUNDLE_DEPTH:
                continue
            entries = item.get("entry")
            entries = entries if isinstance(entries, list) else [entries] if entries else []
            yield from _walk(
                [
                    e.get("resource") if type(e) is dict or isinstance(e, Mapping) else e
                    for e in entries
                ],
                depth + 1,
            )
        else:
            yield item


def _describe(item: Any) -> str:
    # Says what arrived without quoting it: an EHR error page in a prefetch key is a known case.
    if isinstance(item, str | bytes) and item.lstrip()[:1] in ("<", b"<"):
        return "HTML or XML text"
    return "a list" if isinstance(item, list) else type(item).__name__


def _as_items(resources: Any) -> Iterable[Any]:
    # One Bundle or one junk string where a list of inputs was expected.
    return [resources] if isinstance(resources, Mapping | str | bytes) else resources


def _medication_index(
    found: list[tuple[str, Mapping[str, Any]]], supplied: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, Mapping[str, Any]]:
    index = {ref: res for ref, res in found if ref.startswith("Medication/")}
    for key, medication in (supplied or {}).items():
        normalised = relative_reference(key)
        if normalised and isinstance(medication, Mapping):
            index.setdefault(normalised, medication)
    return index


def _safely(
    target: _Mapper,
    resource: Mapping[str, Any],
    ref: str,
    ctx: MappingContext,
    rtype: str,
) -> Any:
    try:
        return target(resource, ref, ctx)
    except _DATA_ERRORS as exc:
        ctx.issue(rtype, ref, "", f"could not be mapped ({type(exc).__name__})")
        return None


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
