"""Read a hook call's JSON body without building the years of history no pattern will read.

A long record is mostly old visits and old questionnaire scores. ``orjson.loads`` would build a
Python object for every one of them, only for the mapper to skip them (``fhir_mappers.horizon``).
Here the body is parsed by simdjson into its own compact form, and Python objects are built only
for what the mapper would keep:

- everything outside ``prefetch``, and every prefetch value that is not a searchset-style Bundle,
  is built in full;
- in a prefetched Bundle, an Observation before the evidence horizon is left out, exactly as the
  mapper would leave it out;
- an ended Encounter before the horizon is left out too, except the ones the mapper's "latest
  completed outpatient visit" search would look at: newest first, up to and including the first
  that ``keep_encounter`` accepts (the mapper's own test), so it finds the same visit.

Everything that is built is built by ``orjson.loads`` (of simdjson's minified text), so values
are what the rest of the service has always seen. Anything unexpected (invalid JSON, a depth or
integer limit, a parser error) falls back to ``parse_json_object`` on the whole body, which
either returns the full object (the mapper then skips the old resources itself) or raises the
documented ``RequestError``: the result never depends on which path was taken.

Limits of the shortcut, by design: a resource left out is validated by simdjson (syntax, UTF-8)
but not rebuilt by orjson; when an old resource repeats a key, the horizon test reads the first
occurrence where orjson would keep the last.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import simdjson

from cds_service.gather.bundles import prefetch_problem
from cds_service.gather.hook_request import parse_json_object
from fhir_mappers.horizon import before, ended_period, observation_before, visit_day_key

log = logging.getLogger(__name__)

_Object = simdjson.Object
_Array = simdjson.Array
# Errors the fast path may raise on input the full parse must judge (and word) instead.
_FALLBACK_ERRORS = (ValueError, RuntimeError, KeyError, TypeError, IndexError)


def parse_hook_body(
    body: bytes,
    *,
    horizon_iso: str,
    keep_encounter: Callable[[Mapping[str, Any]], bool],
) -> dict[str, Any]:
    """The request as ``parse_json_object`` would return it, minus resources before the horizon
    that the mapper would skip (see the module doc)."""
    try:
        return _parse_pruned(body, horizon_iso, keep_encounter)
    except _FALLBACK_ERRORS as exc:
        # Invalid JSON lands here too; the full parse words the error. A parser whose last
        # document is somehow still referenced refuses to parse again: start a new one.
        log.debug("pruned parse not used: %s", type(exc).__name__)
        _local.parser = None
        return parse_json_object(body)


# One parser per thread, reused: its buffers (a few times the body's size) are allocated once,
# not on every call. Bodies beyond REUSE_MAX_BYTES get a parser of their own, so that one huge
# request does not leave a thread holding a buffer of its size.
REUSE_MAX_BYTES = 4 * 1024 * 1024
_local = threading.local()


def _parser(size: int) -> simdjson.Parser:
    if size > REUSE_MAX_BYTES:
        return simdjson.Parser()
    parser: simdjson.Parser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser(max_capacity=REUSE_MAX_BYTES)
    return parser


def _build(value: Any) -> Any:
    if type(value) is _Object or type(value) is _Array:
        return orjson.loads(value.mini)
    return value


def _parse_pruned(
    body: bytes, horizon_iso: str, keep_encounter: Callable[[Mapping[str, Any]], bool]
) -> dict[str, Any]:
    doc = _parser(len(body)).parse(body)
    if type(doc) is not _Object:
        raise ValueError("not a JSON object")
    data: dict[str, Any] = {}
    candidates: list[tuple[str, Any, list[Any]]] = []
    for key in doc.keys():
        value = doc[key]
        if key != "prefetch" or type(value) is not _Object:
            data[key] = _build(value)
            continue
        prefetch: dict[str, Any] = {}
        for name in value.keys():
            prefetch[name] = _pruned_bundle(value[name], horizon_iso, candidates)
        data[key] = prefetch
    _restore_latest_visits(candidates, keep_encounter)
    return data


def _pruned_bundle(
    value: Any, horizon_iso: str, candidates: list[tuple[str, Any, list[Any]]]
) -> Any:
    if type(value) is not _Object or value.get("resourceType") != "Bundle":
        return _build(value)
    entries_in = value.get("entry")
    if type(entries_in) is not _Array:
        return _build(value)
    bundle = {name: _build(value[name]) for name in value.keys() if name != "entry"}
    entries: list[Any] = []
    old: list[tuple[str, Any, list[Any]]] = []
    dropped = 0
    for entry in entries_in:
        resource = entry.get("resource") if type(entry) is _Object else None
        if type(resource) is _Object:
            rtype = resource.get("resourceType")
            if rtype == "Observation" and observation_before(resource, horizon_iso, _Object):
                dropped += 1
                continue
            if rtype == "Encounter":
                start = _old_encounter_start(resource, horizon_iso)
                if start is not None:
                    dropped += 1
                    old.append((start, entry, entries))
                    continue
        entries.append(_build(entry))
    bundle["entry"] = entries
    if dropped and prefetch_problem(bundle) is not None:
        # What is left would be refused where the Bundle as sent was data (e.g. only its search
        # warnings: "a Bundle of OperationOutcomes", re-fetched): keep this Bundle whole.
        return _build(value)
    candidates.extend(old)
    return bundle


def _old_encounter_start(resource: Any, horizon_iso: str) -> str | None:
    """The sort key the mapper's latest-visit search uses, for an Encounter that
    ``fhir_mappers.horizon.encounter_before`` would set aside; None for any other."""
    period = ended_period(resource, _Object)
    if period is None:
        return None
    start, end = period
    if not before(start if end is None else end, horizon_iso):
        return None
    return visit_day_key(start, end)


def _restore_latest_visits(
    candidates: list[tuple[str, Any, list[Any]]],
    keep_encounter: Callable[[Mapping[str, Any]], bool],
) -> None:
    """Put back the old Encounters the mapper's search would read: newest first (ties in
    document order, as its stable sort has them) up to the first it would accept."""
    candidates.sort(key=lambda c: c[0], reverse=True)  # stable: equal keys stay in order
    for _, entry, entries in candidates:
        built = _build(entry)
        entries.append(built)
        if keep_encounter(built.get("resource") or {}):
            return

