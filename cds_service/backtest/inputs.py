"""Reading a backtest directory: a JSON file per patient, and Bulk FHIR NDJSON partitioned on disk.

``*.json``: each file is one patient's data, a Bundle (any type; one that holds several patients is
split by patient reference) or a single resource. Files are parsed by the workers, one at a time.

``*.ndjson``: Bulk Data exports put each resource type in its own file, so one patient's resources
are spread over all of them. A first pass streams every line once, reads only its patient
reference, and appends the raw line to one of K bucket files chosen by a hash of that reference;
each bucket then holds whole patients and is grouped in memory by one worker. Memory is bounded by
the largest bucket (about total size / K), never by the dataset. ``Medication`` lines (shared
formulary entries, not linked to a patient) are kept in memory as the medication catalogue that
``medicationReference`` resolves against. Other unlinked resources (Practitioner, Organization) are
not patient data and are passed over. Malformed input is reported and skipped, never fatal.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

# A manifest.json (the synthetic generator's answer key, or a Bulk Data export manifest) sits
# beside the data it describes; it is not patient data and is skipped without a warning.
MANIFEST_NAME = "manifest.json"
# Parsed JSON takes several times its size in memory: 16 MB of lines is ~100 MB in a worker.
BUCKET_TARGET_BYTES = 16 * 1024 * 1024
MAX_BUCKETS = 256  # open file handles during the first pass
MAX_REPORTED_LINES = 5


@dataclass(frozen=True, slots=True)
class Skipped:
    file: str
    reason: str


@dataclass
class Partition:
    """The result of the NDJSON first pass."""

    buckets: list[Path] = field(default_factory=list)
    medications: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


def list_inputs(directory: Path) -> tuple[list[Path], list[Path]]:
    """The ``*.json`` and ``*.ndjson`` files directly in ``directory``, sorted by name."""
    files = sorted(p for p in directory.iterdir() if p.is_file())
    return (
        [p for p in files if p.suffix == ".json"],
        [p for p in files if p.suffix == ".ndjson"],
    )


def patient_key(resource: Mapping[str, Any]) -> str | None:
    """The id of the patient a resource belongs to ("123" for "Patient/123"), if any."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return str(rid) if rid else None
    for name in ("subject", "patient"):
        ref = resource.get(name)
        if isinstance(ref, Mapping):
            value = ref.get("reference")
            if isinstance(value, str) and value:
                # "Patient/123" and "https://ehr/fhir/Patient/123" -> "123"; "urn:uuid:..." as sent.
                return value.rpartition("Patient/")[2] or value
    return None


def read_json_patients(path: Path) -> tuple[list[tuple[str, list[Any]]], Skipped | None]:
    """The patients in one JSON file as ``(key, resources)``, or why the file was skipped."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        return [], Skipped(path.name, f"cannot read: {exc.strerror or exc}")
    except orjson.JSONDecodeError:
        return [], Skipped(path.name, "not valid JSON")
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        if path.name == MANIFEST_NAME:
            return [], None
        return [], Skipped(path.name, "not a FHIR Bundle or resource")
    if data["resourceType"] == "OperationOutcome":
        return [], Skipped(path.name, "an OperationOutcome, not patient data")
    if data["resourceType"] != "Bundle":
        return [(patient_key(data) or path.stem, [data])], None
    entries = data.get("entry")
    if not isinstance(entries, list):
        entries = []
    resources = [e["resource"] for e in entries if isinstance(e, dict) and "resource" in e]
    if not resources:
        return [], Skipped(path.name, "Bundle without resources")
    return _split_bundle(path, data, resources), None


def _split_bundle(
    path: Path, bundle: dict[str, Any], resources: list[Any]
) -> list[tuple[str, list[Any]]]:
    patients = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "Patient"]
    if len(patients) <= 1:
        # The usual case: the whole Bundle is one patient's; the mapper unpacks it itself.
        keys = (patient_key(r) for r in [*patients, *resources] if isinstance(r, dict))
        return [(next((k for k in keys if k), path.stem), [bundle])]
    # Several patients in one Bundle (a search across patients): each gets its own resources
    # plus the unlinked ones, such as Medications that references point to.
    by_patient: dict[str, list[Any]] = {}
    shared: list[Any] = []
    for resource in resources:
        key = patient_key(resource) if isinstance(resource, dict) else None
        if key is None:
            shared.append(resource)
        else:
            by_patient.setdefault(key, []).append(resource)
    return [(key, [*own, *shared]) for key, own in by_patient.items()]


def bucket_count(ndjson_files: Iterable[Path], workers: int) -> int:
    total = sum(p.stat().st_size for p in ndjson_files)
    by_size = math.ceil(total / BUCKET_TARGET_BYTES)
    return max(1, min(MAX_BUCKETS, max(by_size, workers * 4)))


def partition_ndjson(
    files: list[Path], work_dir: Path, n_buckets: int, *, on_bytes: Any = None
) -> Partition:
    """First pass: raw lines into ``n_buckets`` files under ``work_dir`` by patient."""
    result = Partition()
    handles: dict[int, IO[bytes]] = {}
    try:
        for path in files:
            bad = _partition_file(path, work_dir, n_buckets, handles, result, on_bytes)
            if bad:
                result.skipped.append(Skipped(path.name, _bad_lines_reason(bad)))
    finally:
        for handle in handles.values():
            handle.close()
    result.buckets = [work_dir / f"bucket-{i:03d}.ndjson" for i in sorted(handles)]
    return result


def _partition_file(
    path: Path,
    work_dir: Path,
    n_buckets: int,
    handles: dict[int, IO[bytes]],
    result: Partition,
    on_bytes: Any,
) -> list[tuple[int, str]]:
    bad: list[tuple[int, str]] = []
    try:
        stream = path.open("rb")
    except OSError as exc:
        result.skipped.append(Skipped(path.name, f"cannot read: {exc.strerror or exc}"))
        return bad
    with stream:
        for number, line in enumerate(stream, start=1):
            if on_bytes is not None:
                on_bytes(len(line))
            if not line.strip():
                continue
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError:
                bad.append((number, "not valid JSON"))
                continue
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                bad.append((number, "not a FHIR resource"))
                continue
            key = patient_key(resource)
            if key is None:
                if resource["resourceType"] == "Medication" and resource.get("id"):
                    result.medications[f"Medication/{resource['id']}"] = resource
                continue
            bucket = zlib.crc32(key.encode()) % n_buckets
            if bucket not in handles:
                handles[bucket] = (work_dir / f"bucket-{bucket:03d}.ndjson").open("wb")
            handles[bucket].write(line if line.endswith(b"\n") else line + b"\n")
    return bad


def _bad_lines_reason(bad: list[tuple[int, str]]) -> str:
    shown = ", ".join(f"line {n}: {why}" for n, why in bad[:MAX_REPORTED_LINES])
    more = f" (and {len(bad) - MAX_REPORTED_LINES} more)" if len(bad) > MAX_REPORTED_LINES else ""
    return f"{len(bad)} malformed line(s) skipped: {shown}{more}"


def read_bucket(path: Path) -> Iterator[tuple[str, list[Any]]]:
    """Second pass: one bucket's lines grouped by patient (lines were checked in the first)."""
    by_patient: dict[str, list[Any]] = {}
    with path.open("rb") as stream:
        for line in stream:
            resource = orjson.loads(line)
            by_patient.setdefault(patient_key(resource) or "", []).append(resource)
    yield from by_patient.items()
