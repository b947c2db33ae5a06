"""Reading backtest inputs into patient-keyed rows, for Dask to group by patient.

Inputs are folders (local paths or any fsspec URL, e.g. ``s3://bucket/export/`` when ``s3fs`` is
installed) holding:

``*.ndjson``: Bulk FHIR NDJSON, one resource per line, any resource types. Files are cut into
blocks of about ``block_bytes`` at line boundaries (``fsspec.utils.read_block``), so a 50 GB file
is read by many tasks at once. Each line becomes one row ``(patient, seq, data)``: the patient
reference it names (``subject`` / ``patient``, or its own id for a Patient), a sequence number that
keeps the input order, and the raw JSON text. Types the patterns never read (Claim, Procedure...)
and resources that name no patient are counted and dropped here, before the shuffle.

``*.json``: a Bundle (any type) or a single resource per file. A Bundle that holds one patient is
one row (the mapper unpacks it itself); one that holds several is split by patient reference,
each patient getting its own entries plus the unlinked ones (Medications that references point to).

``Medication`` resources are a shared formulary, not any patient's: Bulk Data puts each resource
type in its own file, so the NDJSON files whose first resource is a Medication are read first as
the catalogue that ``medicationReference`` resolves against (``read_medications``).

Nothing here is fatal: a malformed line or file is counted by reason (with the first few line
numbers) and skipped. The per-block counts travel as one extra row under ``QUALITY_KEY`` through
the same shuffle as the data, and are summed with the patients' results.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import fsspec
import orjson
import pandas as pd
from fsspec.utils import read_block

from cds_service.backtest.report import MAX_REPORTED_LINES, InputCounts

# A manifest.json (the synthetic generator's answer key, or a Bulk Data export manifest) sits
# beside the data it describes; it is not patient data and is skipped without a warning.
MANIFEST_NAME = "manifest.json"
# The resource types the patterns read: those the hooks' prefetch asks for (config/services.yaml),
# plus the DSTU2 MedicationOrder the mapper still accepts. Others are counted and dropped early.
READ_TYPES = frozenset(
    {
        "Patient",
        "MedicationRequest",
        "MedicationOrder",
        "MedicationStatement",
        "MedicationDispense",
        "AllergyIntolerance",
        "Encounter",
        "Observation",
        "Condition",
    }
)
# The row that carries a block's input counts. No FHIR reference can be empty with a NUL.
QUALITY_KEY = "\x00quality"
JSON_FILES_PER_PIECE = 64
SEQ_SHIFT = 32  # seq = piece number << 32 | row number within the piece


def row_frame(patients: list[str], seqs: list[int], data: list[str]) -> pd.DataFrame:
    """The rows every input piece yields: ``patient`` (str), ``seq`` (int64), ``data`` (JSON
    text of a resource, a Bundle, or for ``QUALITY_KEY`` the piece's ``InputCounts``)."""
    return pd.DataFrame(
        {
            "patient": pd.Series(patients, dtype="string"),
            "seq": pd.Series(seqs, dtype="int64"),
            "data": pd.Series(data, dtype="string"),
        }
    )


ROW_META = row_frame([], [], [])


@dataclass(frozen=True, slots=True)
class Piece:
    """One task's share of the input: a byte range of an NDJSON file, or whole JSON files."""

    number: int
    kind: str  # "ndjson" or "json"
    paths: tuple[str, ...]  # fsspec URLs or local paths
    offset: int = 0
    length: int = 0


# -- listing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input file as listed: its fsspec path, URL to open, size in bytes, and kind."""
    path: str  # as fsspec names it (a local path, or "bucket/key" for object stores)
    url: str  # what to open: protocol-qualified when not local
    size: int
    kind: str  # "ndjson" or "json"

    @property
    def name(self) -> str:
        """The file name without its folder, as reports show it."""
        return self.path.rstrip("/").rpartition("/")[2]


class InputError(Exception):
    """A backtest input cannot be listed (missing folder, unknown URL scheme, no permission)."""


def list_inputs(locations: list[str]) -> list[InputFile]:
    """The ``*.ndjson`` and ``*.json`` files directly in each folder (or the named files), sorted.

    Raises ``InputError`` naming the location when it does not exist or cannot be listed (an
    ``s3://`` URL without ``s3fs`` installed, for example).
    """
    files: list[InputFile] = []
    for location in locations:
        try:
            fs, root = fsspec.core.url_to_fs(location)
            if fs.isdir(root):
                entries = fs.ls(root, detail=True)
            elif fs.isfile(root):
                entries = [fs.info(root)]
            else:
                raise InputError(f"{location} is not a folder or a file")
        except (ImportError, ValueError, OSError) as exc:
            raise InputError(f"cannot read {location}: {exc}") from exc
        for entry in sorted(entries, key=lambda e: str(e["name"])):
            if entry.get("type") != "file":
                continue
            path = str(entry["name"])
            kind = next((k for k in ("ndjson", "json") if path.endswith(f".{k}")), "")
            if kind:
                files.append(InputFile(path, fs.unstrip_protocol(path), int(entry["size"]), kind))
    return files


def plan_pieces(files: list[InputFile], block_bytes: int) -> list[Piece]:
    """NDJSON files cut into ``block_bytes`` ranges; JSON files in batches."""
    pieces: list[Piece] = []
    for f in files:
        if f.kind != "ndjson":
            continue
        for offset in range(0, max(f.size, 1), block_bytes):
            pieces.append(Piece(len(pieces), "ndjson", (f.url,), offset, block_bytes))
    json_urls = [f.url for f in files if f.kind == "json"]
    for i in range(0, len(json_urls), JSON_FILES_PER_PIECE):
        pieces.append(Piece(len(pieces), "json", tuple(json_urls[i : i + JSON_FILES_PER_PIECE])))
    return pieces


# -- the Medication catalogue -------------------------------------------------------------------


def first_resource_type(url: str) -> str | None:
    """The ``resourceType`` of the first line of an NDJSON file (Bulk Data: one type per file)."""
    try:
        with fsspec.open(url, "rb") as stream:
            line = stream.readline()
        value = orjson.loads(line).get("resourceType")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def read_medications(url: str, counts: InputCounts) -> dict[str, dict[str, Any]]:
    """``{"Medication/<id>": resource}`` from one Medication NDJSON file; bad lines counted."""
    name = url.rstrip("/").rpartition("/")[2]
    found: dict[str, dict[str, Any]] = {}
    try:
        with fsspec.open(url, "rb") as stream:
            lines = stream.read().splitlines()
    except OSError as exc:
        counts.skip(name, f"cannot read: {exc.strerror or exc}")
        return found
    counts.block_lines.setdefault(name, {})[0] = len(lines)
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        resource = _parse_line(line, name, 0, index, counts)
        if resource is None:
            continue
        if resource["resourceType"] == "Medication" and isinstance(resource.get("id"), str):
            found[f"Medication/{resource['id']}"] = resource
    return found


# -- reading pieces (runs on the workers) -------------------------------------------------------


def read_piece(piece: Piece) -> pd.DataFrame:
    """The rows of one piece, plus one ``QUALITY_KEY`` row with its ``InputCounts``."""
    counts = InputCounts()
    patients: list[str] = []
    data: list[str] = []
    if piece.kind == "ndjson":
        _read_ndjson_block(piece, counts, patients, data)
    else:
        for url in piece.paths:
            _read_json_file(url, counts, patients, data)
    patients.append(QUALITY_KEY)
    data.append(counts.to_json())
    base = piece.number << SEQ_SHIFT
    return row_frame(patients, list(range(base, base + len(patients))), data)


def _read_ndjson_block(
    piece: Piece, counts: InputCounts, patients: list[str], data: list[str]
) -> None:
    url = piece.paths[0]
    name = url.rstrip("/").rpartition("/")[2]
    try:
        with fsspec.open(url, "rb") as stream:
            block = read_block(stream, piece.offset, piece.length, delimiter=b"\n")
    except OSError as exc:
        counts.skip(name, f"cannot read: {exc.strerror or exc}")
        return
    lines = block.splitlines()
    counts.block_lines[name] = {piece.offset: len(lines)}
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        resource = _parse_line(line, name, piece.offset, index, counts)
        if resource is None:
            continue
        _keep(resource, line, counts, patients, data)


def _parse_line(
    line: bytes, name: str, offset: int, index: int, counts: InputCounts
) -> dict[str, Any] | None:
    try:
        resource = orjson.loads(line)
    except orjson.JSONDecodeError:
        reason = "not valid JSON"
    else:
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            return resource
        reason = "not a FHIR resource"
    counts.bad_count[name] = counts.bad_count.get(name, 0) + 1
    bad = counts.bad_lines.setdefault(name, [])
    if len(bad) < MAX_REPORTED_LINES:
        bad.append((offset, index, reason))
    return None


def _keep(
    resource: dict[str, Any], raw: bytes, counts: InputCounts, patients: list[str], data: list[str]
) -> None:
    rtype = resource["resourceType"]
    if rtype not in READ_TYPES:
        # Medications outside a Medication file (a mixed export) are counted here too.
        counts.other_types[rtype] = counts.other_types.get(rtype, 0) + 1
        return
    key = patient_key(resource)
    if key is None:
        counts.unlinked[rtype] = counts.unlinked.get(rtype, 0) + 1
        return
    counts.resources += 1
    patients.append(key)
    data.append(raw.decode())


def _read_json_file(url: str, counts: InputCounts, patients: list[str], data: list[str]) -> None:
    name = url.rstrip("/").rpartition("/")[2]
    try:
        with fsspec.open(url, "rb") as stream:
            raw = stream.read()
    except OSError as exc:
        counts.skip(name, f"cannot read: {exc.strerror or exc}")
        return
    for key, text in split_json_document(raw, name, counts):
        patients.append(key)
        data.append(text)


def split_json_document(raw: bytes, name: str, counts: InputCounts) -> Iterator[tuple[str, str]]:
    """``(patient key, JSON text)`` for the patients in one JSON file; problems counted."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        counts.skip(name, "not valid JSON")
        return
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        if name != MANIFEST_NAME:
            counts.skip(name, "not a FHIR Bundle or resource")
        return
    rtype = document["resourceType"]
    if rtype == "OperationOutcome":
        counts.skip(name, "an OperationOutcome, not patient data")
        return
    if rtype != "Bundle":
        key = patient_key(document)
        if key is None or rtype not in READ_TYPES:
            counts.skip(name, f"a {rtype} without patient data")
            return
        counts.resources += 1
        yield key, raw.decode()
        return
    entries = document.get("entry")
    resources = [
        e["resource"]
        for e in (entries if isinstance(entries, list) else [])
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]
    if not resources:
        counts.skip(name, "Bundle without resources")
        return
    counts.resources += len(resources)
    if sum(1 for r in resources if r.get("resourceType") == "Patient") <= 1:
        # The usual case: the whole Bundle is one patient's; the mapper unpacks it itself.
        # (Its references may be urn:uuid fullUrls, so they are not compared with each other.)
        keys = (patient_key(r) for r in sorted(resources, key=_patient_first))
        yield next((k for k in keys if k), name.removesuffix(".json")), raw.decode()
        return
    by_patient: dict[str, list[Any]] = {}
    shared: list[Any] = []
    for resource in resources:
        key = patient_key(resource)
        if key is None:
            shared.append(resource)
        else:
            by_patient.setdefault(key, []).append(resource)
    # Several patients in one Bundle (a search across patients): each gets its own resources
    # plus the unlinked ones, such as the Medications that references point to.
    for key, own in by_patient.items():
        entry = [{"resource": r} for r in [*own, *shared]]
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": entry}
        yield key, orjson.dumps(bundle).decode()


def _patient_first(resource: Mapping[str, Any]) -> bool:
    return resource.get("resourceType") != "Patient"


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
