"""Resources out of what a hook call brings (prefetch values, searched Bundles, hook context):
Bundles unpacked, each resource with its reference, junk and other patients' resources reported,
repeated versions of one resource read once, and what no pattern can read set aside early.

``collect`` is the single pass over a record's whole history, so it decides cheaply: an
Observation before the evidence horizon or of no score is dropped, an Encounter that ended before
the visit horizon is set aside unreferenced (``OldEncounter``), and references are built only for
what is kept. ``fhir_mappers.mapper`` maps what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from fhir_mappers.accessors import reference, relative_reference, urn_uuid_reference
from fhir_mappers.context import MappingContext
from fhir_mappers.horizon import observation_before, old_encounter_day
from fhir_mappers.observations import names_a_score

_MAX_BUNDLE_DEPTH = 3


class OldEncounter(NamedTuple):
    """An Encounter that ended before the visit horizon, set aside by ``collect`` unmapped: its
    day key (``horizon.visit_day_key``), its place among the inputs and its entry's fullUrl
    (for its reference, built only if it is read), and the resource."""

    day_key: str
    position: int
    full_url: str | None
    resource: Mapping[str, Any]



def collect(
    resources: Iterable[Any],
    ctx: MappingContext,
    horizon_iso: str | None = None,
    old_encounters: list[OldEncounter] | None = None,
    *,
    patient_id: str | None = None,
    visit_iso: str | None = None,
) -> list[tuple[str, Mapping[str, Any]]]:
    """Resources with their references, Bundles unpacked, junk reported, duplicates dropped
    (of two versions of one resource, the later is kept: ``_newer``).

    Observations before ``horizon_iso`` or of no score (``observations.names_a_score``) are
    dropped here and Encounters that ended before ``visit_iso`` go to ``old_encounters``
    (unreferenced: see ``OldEncounter``): deciding before the reference is built keeps a long
    history cheap. The entries are given to ``ctx`` first (``MappingContext.aliases``), so that
    a subject given as ``urn:uuid:...`` is recognised as the patient's.
    """
    items = entries_of(resources)
    ctx.entries = items
    ctx.relative_full_urls = any(url is not None and ":" not in url for url, _ in items)
    patient = _patient_ref(patient_id)
    code_lists = ctx.codes
    found: list[tuple[str, Mapping[str, Any]]] = []
    seen: dict[str, int] = {}  # reference -> its place in found
    # The loop runs once per resource of the whole history: type() before isinstance(), the
    # horizon tests written out (``fhir_mappers.horizon`` says what they decide) before the
    # resourceType checks, no helper calls for the common case.
    for position, (full_url, item) in enumerate(items):
        if type(item) is not dict:
            if item is None:
                continue
            if not isinstance(item, Mapping):
                ctx.issue("unknown", f"#{position}", "", f"not a JSON object ({_describe(item)})")
                continue
        rtype = item.get("resourceType")
        subject = item.get("subject")
        if (
            patient is not None
            and type(rtype) is str
            # The common case first: "subject": {"reference": "Patient/<id>"}, as asked for.
            and not (
                type(subject) is dict and subject.get("reference") == patient
                and rtype != "Patient"
            )
            and not _is_about(item, rtype, patient, ctx)
        ):
            ref = resource_ref(item, rtype, position)
            ctx.issue(rtype, ref, "subject", "another patient's resource")
            continue
        if rtype == "Observation":
            if horizon_iso is not None and observation_before(item, horizon_iso):
                continue
            if not names_a_score(item, code_lists):
                continue  # vitals and labs: map_observation would read nothing of them
        elif rtype == "Encounter" and visit_iso is not None:
            day_key = old_encounter_day(item, visit_iso)
            if day_key is not None:
                if old_encounters is not None:
                    old_encounters.append(OldEncounter(day_key, position, full_url, item))
                continue
        if type(rtype) is not str or not rtype:
            ctx.issue("unknown", f"#{position}", "resourceType", "missing resourceType")
            continue
        if rtype == "OperationOutcome":
            continue  # a prefetch error report: there is simply no data for that key
        ref = resource_ref(item, rtype, position, full_url)
        index = seen.get(ref)
        if index is not None:
            if _newer(item, found[index][1]):
                found[index] = (ref, item)  # the later version, in the first one's place
            continue
        seen[ref] = len(found)
        found.append((ref, item))
    return found


def _newer(item: Mapping[str, Any], kept: Mapping[str, Any]) -> bool:
    """Whether ``item`` is a later version of the resource ``kept`` (the same ``Type/id`` read
    twice: one prefetch key's ``_include`` and another's match, or two ``_history`` entries):
    by ``meta.lastUpdated``, else by a numeric ``meta.versionId``. When neither tells, the one
    read first stays."""
    ours, theirs = _version(item), _version(kept)
    if isinstance(ours, datetime) and isinstance(theirs, datetime):
        return ours > theirs
    if isinstance(ours, int) and isinstance(theirs, int):
        return ours > theirs
    return False


def _version(resource: Mapping[str, Any]) -> datetime | int | None:
    meta = resource.get("meta")
    if type(meta) is not dict:
        return None
    updated = meta.get("lastUpdated")
    if isinstance(updated, str):
        try:
            stamp = datetime.fromisoformat(updated.strip())
        except ValueError:
            stamp = None
        if stamp is not None and stamp.tzinfo is not None:
            return stamp
    version = meta.get("versionId")
    if isinstance(version, str) and version.strip().isdigit():
        return int(version.strip())
    return None


# Where each resource type names its patient (R4 first; DSTU2/STU3 spellings after).
_SUBJECT_FIELDS = ("subject", "patient")
# Resources that are not about one patient (Medications, Practitioners) have neither field.


def _patient_ref(patient_id: str | None) -> str | None:
    if not patient_id or not patient_id.strip():
        return None
    pid = patient_id.strip()
    return pid if pid.startswith("Patient/") else f"Patient/{pid}"


def _is_about(
    item: Mapping[str, Any], rtype: str, patient: str, ctx: MappingContext
) -> bool:
    """False only when the resource names another patient ("Patient/<other id>", or an entry of
    the Bundle that is another Patient); one that names none, or names it in a way that cannot
    be compared (a urn that resolves to no entry, a bare id), is kept."""
    if rtype == "Patient":
        rid = item.get("id")
        return not (isinstance(rid, str) and rid and f"Patient/{rid}" != patient)
    for name in _SUBJECT_FIELDS:
        value = item.get(name)
        if value is None:
            continue
        literal = reference(value)
        if literal == patient:
            return True  # the common case, without resolving
        if literal is None or literal.startswith("#"):
            return True  # an identifier- or display-only reference: nothing to compare
        resolved = ctx.resolve(literal)
        if resolved == patient:
            return True
        if resolved is not None and resolved.startswith("Patient/"):
            return False  # an entry of the Bundle that is another Patient
        if literal.startswith("urn:"):
            # "urn:uuid:<id>" of a Patient not among the entries (Synthea-style) is the patient
            # when the id is theirs. Another urn names another patient where the Bundle names
            # its patient by a urn (a transaction Bundle); elsewhere (the drafts of a session)
            # it names nobody known: kept.
            if literal.rpartition(":")[2] == patient.partition("/")[2]:
                return True
            return not any(
                url.startswith("urn:") and target == patient
                for url, target in ctx.aliases().items()
            )
        # "Patient/<other id>" (relative, absolute or versioned) names another patient; a
        # reference of no type (a bare id) says nothing that can be compared: kept.
        return "/" not in literal
    return True


def resource_ref(
    item: Mapping[str, Any], rtype: str, position: int, full_url: str | None = None
) -> str:
    """The reference evidence and findings use for a resource: "Type/id"; without an id,
    "Type/<uuid>" from a ``urn:uuid`` fullUrl, else "#<position>" (its place among the inputs,
    counted before anything is left out, so it does not change with the horizons)."""
    rid = item.get("id")
    if isinstance(rid, str) and rid:
        return f"{rtype}/{rid}"
    alias = urn_uuid_reference(rtype, full_url) if full_url else None
    return alias or f"#{position}"


def _entries(
    items: Iterable[Any], depth: int = 0, into: list[tuple[str | None, Any]] | None = None,
    url: str | None = None,
) -> list[tuple[str | None, Any]]:
    """(fullUrl or None, resource) for every resource, Bundles unpacked (to a bounded depth), in
    order. A nested Bundle's resources take their own entry's fullUrl, else the outer one's
    (``url``)."""
    out: list[tuple[str | None, Any]] = [] if into is None else into
    append = out.append
    for item in items:
        # type() first: the ABC check costs more than the rest of the loop, per resource.
        if (type(item) is dict or isinstance(item, Mapping)) and item.get(
            "resourceType"
        ) == "Bundle":
            if depth >= _MAX_BUNDLE_DEPTH:
                continue
            entries = item.get("entry")
            entries = entries if isinstance(entries, list) else [entries] if entries else []
            for entry in entries:
                if type(entry) is dict or isinstance(entry, Mapping):
                    raw = entry.get("fullUrl")
                    entry_url = raw.strip() if isinstance(raw, str) and raw.strip() else None
                    nested = entry.get("resource")
                    if type(nested) is dict and nested.get("resourceType") != "Bundle":
                        append((entry_url, nested))  # the common case
                    else:
                        _entries([nested], depth + 1, out, entry_url)
                else:
                    append((None, entry))
        else:
            append((url, item))
    return out


def _describe(item: Any) -> str:
    # Says what arrived without quoting it: an EHR error page in a prefetch key is a known case.
    if isinstance(item, str | bytes) and item.lstrip()[:1] in ("<", b"<"):
        return "HTML or XML text"
    return "a list" if isinstance(item, list) else type(item).__name__


def entries_of(resources: Any) -> list[tuple[str | None, Any]]:
    """(fullUrl or None, resource) for every resource of ``resources`` (a list of prefetch
    values, or one Bundle), Bundles unpacked, in order."""
    return _entries(_as_items(resources))


def _as_items(resources: Any) -> Iterable[Any]:
    # One Bundle or one junk string where a list of inputs was expected.
    return [resources] if isinstance(resources, Mapping | str | bytes) else resources


def medication_index(
    found: list[tuple[str, Mapping[str, Any]]], supplied: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, Mapping[str, Any]]:
    """Medications by "Medication/<id>": those among the collected resources, then those
    ``supplied`` (fetched separately), a collected one winning."""
    index = {ref: res for ref, res in found if ref.startswith("Medication/")}
    for key, medication in (supplied or {}).items():
        normalised = relative_reference(key)
        if normalised and isinstance(medication, Mapping):
            index.setdefault(normalised, medication)
    return index


def medications_among(resources: Any, wanted: set[str]) -> dict[str, Mapping[str, Any]]:
    """The Medications among ``resources`` (prefetch values, Bundles unpacked) whose
    "Medication/<id>" is in ``wanted``; of two with one id, the first."""
    found: dict[str, Mapping[str, Any]] = {}
    if not wanted:
        return found
    for _, item in entries_of(resources):
        if type(item) is dict and item.get("resourceType") == "Medication":
            rid = item.get("id")
            key = f"Medication/{rid}" if isinstance(rid, str) else None
            if key in wanted and key not in found:
                found[key] = item
    return found
