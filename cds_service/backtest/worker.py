"""One partition of patients, on a Dask worker: map each patient and ask ``engine.evaluate``.

The backtest has no pattern logic of its own: the hook endpoints and this worker call the same
``evaluate`` with the same thresholds, so a patient flagged here is flagged at patient-view on
the same date. A partition arrives from the shuffle holding whole patients (all rows of a patient
land in the same partition); it returns one row with its ``Tally`` (counts only), and, with an
output folder, writes its patients' findings as one Parquet file there, keyed by the site's
pseudonymous patient key (never the raw id). The evidence references are left out on purpose:
resource ids often embed the patient's id (the synthetic ones do), and the file is meant to be
shared with informatics teams without re-identifying anyone.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import fsspec
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cds_service.backtest.inputs import QUALITY_KEY
from cds_service.backtest.report import InputCounts, IssueKind, Tally, WhatIf
from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns.engine import evaluate
from cds_service.settings import PatternSettings
from cds_service.storage.audit.records import pseudonymize
from fhir_mappers.codes import CodeLists
from fhir_mappers.mapper import map_record
from fhir_mappers.medications import IngredientTable
from fhir_mappers.record import PatientRecord

FINDINGS_SCHEMA = pa.schema(
    [
        ("patient_key", pa.string()),  # pseudonymize(patient id, storage.patient_key_secret)
        ("pattern", pa.string()),
        ("mode", pa.string()),  # active | silent
        ("facts", pa.string()),  # the Finding's facts as JSON (counts, windows, thresholds used)
        ("practitioner", pa.string()),  # the latest psychotropic order's requester (or performer)
        ("organization", pa.string()),  # the organization that order names, if any
        ("order_date", pa.date32()),  # that order's authoredOn
    ]
)
TALLY_META = pd.DataFrame({"tally": pd.Series([], dtype=object)})


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a partition needs, shipped once to each worker (a single Dask key)."""

    patterns: Mapping[str, PatternSettings]
    variants: tuple[WhatIf, ...]
    as_of: date
    medications: Mapping[str, Mapping[str, Any]]
    patient_key_secret: str
    codes: Mapping[str, Any] = field(default_factory=dict)  # the site's codes section
    horizon: date | None = None  # map_record's horizon, as the hooks use it (evidence_horizon)
    output: str | None = None  # fsspec URL of the findings folder
    collect_flags: bool = False
    strict: bool = False  # re-raise mapper and detector errors (tests), instead of counting them


class _QuietWhileEvaluating(logging.Filter):
    """Drops the per-resource mapper warnings and per-patient detector tracebacks on the thread
    that evaluates a partition: over millions of patients they would flood the worker logs, and
    the backtest counts both in its data-quality report instead. Other threads (a hook call in
    the same process, a test) keep their logs."""

    local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "quiet", False)


_QUIET = _QuietWhileEvaluating()
for _name in ("fhir_mappers.context", "cds_service.patterns.engine"):
    logging.getLogger(_name).addFilter(_QUIET)


@lru_cache(maxsize=1)
def _lookups(site_codes_json: str) -> tuple[IngredientTable, CodeLists]:
    # Once per worker process (and site codes), not once per partition.
    return load_ingredient_table(), load_code_lists(overrides=json.loads(site_codes_json))


def evaluate_partition(
    frame: pd.DataFrame, config: WorkerConfig, partition_info: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``frame``: rows ``(patient, seq, data)`` of whole patients -> one row ``tally`` (Tally).

    Writes ``part-<n>.parquet`` (``FINDINGS_SCHEMA``) in ``config.output`` when set.
    """
    tally = Tally(flags={} if config.collect_flags else None)
    rows: list[dict[str, Any]] = []
    _QUIET.local.quiet = True
    try:
        for key, texts in _patients(frame, tally.inputs):
            _evaluate_patient(key, texts, config, tally, rows)
    finally:
        _QUIET.local.quiet = False
    if config.output is not None:
        number = int(partition_info["number"]) if partition_info else 0
        table = pa.Table.from_pylist(rows, schema=FINDINGS_SCHEMA)
        with fsspec.open(f"{config.output.rstrip('/')}/part-{number:05d}.parquet", "wb") as out:
            pq.write_table(table, out)
        tally.findings_written = len(rows)
    return pd.DataFrame({"tally": pd.Series([tally], dtype=object)})


def _patients(frame: pd.DataFrame, inputs: InputCounts) -> Iterator[tuple[str, list[str]]]:
    """``(patient key, JSON texts)`` in input order; the input-count rows are summed instead."""
    if frame.empty:
        return
    keys = frame["patient"].to_numpy(dtype=object)
    seqs = frame["seq"].to_numpy()
    texts = frame["data"].to_numpy(dtype=object)
    # Sorting by (patient, seq) makes each patient's resources arrive in input order, whatever
    # order the shuffle delivered them in, so the result never depends on the cluster.
    order = np.lexsort((seqs, keys))
    start = 0
    n = len(order)
    while start < n:
        key = keys[order[start]]
        end = start + 1
        while end < n and keys[order[end]] == key:
            end += 1
        chunk = [texts[i] for i in order[start:end]]
        if key == QUALITY_KEY:
            for text in chunk:
                inputs.add(InputCounts.from_json(text))
        else:
            yield str(key), chunk
        start = end


def _evaluate_patient(
    key: str, texts: list[str], config: WorkerConfig, tally: Tally, rows: list[dict[str, Any]]
) -> None:
    def count_error(pattern_id: str, _exc: Exception) -> None:
        tally.detector_errors[pattern_id] = tally.detector_errors.get(pattern_id, 0) + 1

    resources = [orjson.loads(text) for text in texts]
    try:
        table, codes = _lookups(json.dumps(config.codes, sort_keys=True))
        record = map_record(
            resources,
            table,
            medications=config.medications,
            codes=codes,
            horizon=config.horizon,
        )
    except Exception as exc:  # a mapper bug must not end a run over millions of patients
        if config.strict:
            raise
        name = type(exc).__name__
        tally.unmapped[name] = tally.unmapped.get(name, 0) + 1
        return
    tally.patients += 1
    _count_issues(record, tally)
    findings = evaluate(
        record,
        (),
        config.patterns,
        config.as_of,
        "patient-view",
        on_error=count_error,
        raise_errors=config.strict,
    )
    found = {f.pattern_id for f in findings}
    for pattern_id in found:
        tally.flagged[pattern_id] = tally.flagged.get(pattern_id, 0) + 1
    for v in config.variants:
        if evaluate(
            record,
            (),
            {v.pattern_id: v.settings},
            config.as_of,
            "patient-view",
            on_error=count_error,
            raise_errors=config.strict,
        ):
            k = (v.pattern_id, v.threshold, v.value)
            tally.what_if[k] = tally.what_if.get(k, 0) + 1
    if tally.flags is not None:
        tally.flags[key] = frozenset(found)
    if config.output is None or not findings:
        return
    practitioner, organization, order_date = latest_order_names(record, resources)
    patient_key = pseudonymize(key, config.patient_key_secret)
    for finding in findings:
        rows.append(
            {
                "patient_key": patient_key,
                "pattern": finding.pattern_id,
                "mode": config.patterns[finding.pattern_id].mode,
                "facts": orjson.dumps(
                    finding.facts, option=orjson.OPT_SORT_KEYS, default=_json_default
                ).decode(),
                "practitioner": practitioner,
                "organization": organization,
                "order_date": order_date,
            }
        )


_INDEX = re.compile(r"\[\d+\]")


def _count_issues(record: PatientRecord, tally: Tally) -> None:
    kinds: set[IssueKind] = set()
    for issue in record.issues:
        kind = (issue.resource_type, _INDEX.sub("[]", issue.field), issue.reason)
        tally.issues[kind] = tally.issues.get(kind, 0) + 1
        kinds.add(kind)
    for kind in kinds:
        tally.issue_patients[kind] = tally.issue_patients.get(kind, 0) + 1


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def latest_order_names(
    record: PatientRecord, resources: list[Any]
) -> tuple[str | None, str | None, date | None]:
    """``(practitioner, organization, authoredOn)`` of the patient's latest psychotropic
    MedicationRequest (the latest of any MedicationRequest when none is psychotropic).

    The practitioner is ``requester`` when it is a Practitioner or PractitionerRole (else a
    Practitioner ``performer``); the organization is an Organization ``requester`` or
    ``performer``, or the ``organization`` of a contained PractitionerRole requester. References
    are returned as sent (``display`` when there is no reference); ``None`` when not given.
    """
    psychotropic = [
        (c.start, c.ref, c.requester)
        for c in record.courses
        if c.source_type == "MedicationRequest" and not c.is_draft and c.is_psychotropic
    ]
    others = [
        (o.day, o.ref, None)
        for o in record.other_medications
        if o.resource_type == "MedicationRequest"
    ]
    latest = _latest(psychotropic or others)
    if latest is None:
        return None, None, None
    start, ref, requester = latest
    resource = _find_request(resources, ref)
    if resource is None:
        return requester, None, start
    requester = _reference(resource.get("requester"))
    performer = _reference(resource.get("performer"))
    practitioner = next(
        (r for r in (requester, performer) if r and r.startswith(("Practitioner", "#"))), None
    )
    organization = next(
        (r for r in (requester, performer) if r and r.startswith("Organization")), None
    )
    if organization is None and requester and requester.startswith("#"):
        organization = _contained_organization(resource, requester[1:])
    if practitioner is None and requester and not requester.startswith("Organization"):
        practitioner = requester  # a display-only requester still names the prescriber
    return practitioner, organization, start


_Order = tuple[date | None, str, str | None]  # (start, ref, requester)


def _latest(orders: list[_Order]) -> _Order | None:
    """The latest-starting order (undated ones first; the last read among equals)."""
    dated = [(o[0] or date.min, i, o) for i, o in enumerate(orders)]
    return max(dated, key=lambda t: (t[0], t[1]))[2] if dated else None


def _find_request(resources: list[Any], ref: str) -> Mapping[str, Any] | None:
    rid = ref.partition("/")[2]
    for item in resources:
        if not isinstance(item, dict):
            continue
        if item.get("resourceType") == "Bundle":
            for entry in item.get("entry") or ():
                found = entry.get("resource") if isinstance(entry, dict) else None
                if _is_request(found, rid):
                    return found
        elif _is_request(item, rid):
            return item
    return None


def _is_request(item: Any, rid: str) -> bool:
    return (
        isinstance(item, dict)
        and item.get("resourceType") in ("MedicationRequest", "MedicationOrder")
        and item.get("id") == rid
    )


def _reference(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, dict):
        return None
    for name in ("reference", "display"):
        text = value.get(name)
        if isinstance(text, str) and text:
            return text
    return None


def _contained_organization(resource: Mapping[str, Any], local_id: str) -> str | None:
    for contained in resource.get("contained") or ():
        if isinstance(contained, dict) and contained.get("id") == local_id:
            return _reference(contained.get("organization"))
    return None
