"""What the backtest reports: firing rates per pattern, a what-if table of threshold values, and
what the input could not give the patterns (data quality: `InputCounts` and mapping issues).

The what-if table varies one threshold of one pattern at a time around the configured value and
counts the patients that pattern would flag, with every other setting as configured. A pattern that
is ``off`` reports ``flagged: 0`` and still gets its what-if rows, which say what it would flag if
switched on (the question a site asks before turning it on).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import orjson

from cds_service.settings import PatternSettings

K = TypeVar("K")
MAX_REPORTED_LINES = 5  # malformed lines listed by number per file; the rest are counted

# The main threshold(s) of each pattern and the steps tried around the configured value. These
# are offsets for the report, not clinical numbers: the clinical values stay in default.yaml.
WHAT_IF_STEPS: dict[str, tuple[tuple[str, tuple[float, ...]], ...]] = {
    "repeated-intolerance": (("min_distinct_classes", (-1, 0, 1, 2)),),
    "psychotropic-polypharmacy": (
        ("min_concurrent_psychotropics", (-2, -1, 0, 1)),
        ("min_concurrent_antipsychotics", (0, 1)),
    ),
    "regimen-escalation": (("min_escalations", (-1, 0, 1, 2)),),
    "multiple-failed-trials": (("min_failed_trials", (-1, 0, 1, 2)),),
    "visits-lag-changes": (("min_changes", (-1, 0, 1, 2)),),
    "nonadherence": (("pdc_below", (-0.1, 0.0, 0.1)),),
}


@dataclass(frozen=True, slots=True)
class WhatIf:
    """One pattern evaluated alone with one threshold replaced."""

    pattern_id: str
    threshold: str
    value: float
    settings: PatternSettings


def what_if_variants(patterns: Mapping[str, PatternSettings]) -> list[WhatIf]:
    """Every one-threshold change of ``WHAT_IF_STEPS`` around the configured values."""
    variants: list[WhatIf] = []
    for pattern_id, configured in patterns.items():
        names = {f.name for f in dataclasses.fields(configured.thresholds)}
        for threshold, steps in WHAT_IF_STEPS.get(pattern_id, ()):
            if threshold not in names:
                continue
            base = getattr(configured.thresholds, threshold)
            for value in _alternatives(base, steps):
                thresholds = dataclasses.replace(configured.thresholds, **{threshold: value})
                # "silent" so that an off pattern is evaluated; mode does not change a finding.
                settings = configured.model_copy(
                    update={"thresholds": thresholds, "mode": "silent"}
                )
                variants.append(WhatIf(pattern_id, threshold, value, settings))
    return variants


def _alternatives(base: float, steps: tuple[float, ...]) -> list[float]:
    if isinstance(base, int):
        return sorted({int(base + s) for s in steps if base + s >= 1})
    return sorted({round(base + s, 2) for s in steps if 0 < round(base + s, 2) <= 1})


@dataclass
class InputCounts:
    """What one piece (or, summed, the whole input) could not use, by file and reason."""

    # file -> reason -> count
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    # file -> malformed lines skipped
    bad_count: dict[str, int] = field(default_factory=dict)
    # file -> [(block offset, line index within the block, reason)] for the first few bad lines
    bad_lines: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)
    # file -> block offset -> lines in the block (to turn block line indexes into line numbers)
    block_lines: dict[str, dict[int, int]] = field(default_factory=dict)
    # resource type -> lines dropped because the patterns never read that type
    other_types: dict[str, int] = field(default_factory=dict)
    # resource type -> resources dropped because they name no patient
    unlinked: dict[str, int] = field(default_factory=dict)
    resources: int = 0

    def skip(self, file: str, reason: str, n: int = 1) -> None:
        """Counts ``n`` skips of ``file`` for ``reason``."""
        reasons = self.skipped.setdefault(file, {})
        reasons[reason] = reasons.get(reason, 0) + n

    def to_json(self) -> str:
        """JSON text for the ``QUALITY_KEY`` row that carries these counts through the shuffle."""
        return orjson.dumps(
            {
                "skipped": self.skipped,
                "bad_count": self.bad_count,
                "bad_lines": self.bad_lines,
                "block_lines": {
                    f: {str(k): v for k, v in b.items()} for f, b in self.block_lines.items()
                },
                "other_types": self.other_types,
                "unlinked": self.unlinked,
                "resources": self.resources,
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str) -> InputCounts:
        """The counts ``to_json`` wrote."""
        raw = orjson.loads(text)
        return cls(
            skipped=raw["skipped"],
            bad_count=raw["bad_count"],
            bad_lines={f: [tuple(x) for x in v] for f, v in raw["bad_lines"].items()},
            block_lines={
                f: {int(k): v for k, v in b.items()} for f, b in raw["block_lines"].items()
            },
            other_types=raw["other_types"],
            unlinked=raw["unlinked"],
            resources=raw["resources"],
        )

    def add(self, other: InputCounts) -> None:
        """Adds ``other``'s counts to these."""
        for file, reasons in other.skipped.items():
            for reason, n in reasons.items():
                self.skip(file, reason, n)
        _merge(self.bad_count, other.bad_count)
        for file, lines in other.bad_lines.items():
            self.bad_lines.setdefault(file, []).extend(lines)
        for file, blocks in other.block_lines.items():
            self.block_lines.setdefault(file, {}).update(blocks)
        _merge(self.other_types, other.other_types)
        _merge(self.unlinked, other.unlinked)
        self.resources += other.resources

    def skipped_report(self) -> list[tuple[str, str]]:
        """``(file, reason)`` sorted by file: malformed lines as a count with the first few line
        numbers ("2 malformed line(s) skipped: line 4: not valid JSON, line 7: ...")."""
        out: list[tuple[str, str]] = []
        for file in sorted({*self.skipped, *self.bad_count}):
            for reason in sorted(self.skipped.get(file, {})):
                out.append((file, reason))
            bad = self.bad_count.get(file, 0)
            if bad:
                shown = self._line_numbers(file)[:MAX_REPORTED_LINES]
                listed = ", ".join(f"line {n}: {why}" for n, why in shown)
                more = f" (and {bad - len(shown)} more)" if bad > len(shown) else ""
                out.append((file, f"{bad} malformed line(s) skipped: {listed}{more}"))
        return out

    def _line_numbers(self, file: str) -> list[tuple[int, str]]:
        blocks = self.block_lines.get(file, {})
        before: dict[int, int] = {}
        total = 0
        for offset in sorted(blocks):
            before[offset] = total
            total += blocks[offset]
        return sorted(
            (before.get(offset, 0) + index + 1, why)
            for offset, index, why in self.bad_lines.get(file, [])
        )


IssueKind = tuple[str, str, str]  # (resource type, field without indexes, reason)


@dataclass
class Tally:
    """Counts from one partition of patients, summed over partitions by ``add``."""

    patients: int = 0
    flagged: dict[str, int] = field(default_factory=dict)
    what_if: dict[tuple[str, str, float], int] = field(default_factory=dict)
    detector_errors: dict[str, int] = field(default_factory=dict)
    # Mapping issues (MappingIssue) by kind: how many issues, and in how many patients.
    issues: dict[IssueKind, int] = field(default_factory=dict)
    issue_patients: dict[IssueKind, int] = field(default_factory=dict)
    unmapped: dict[str, int] = field(default_factory=dict)  # mapper exception type -> patients
    findings_written: int = 0
    inputs: InputCounts = field(default_factory=InputCounts)
    flags: dict[str, frozenset[str]] | None = None  # raw patient id -> pattern ids (tests only)

    def add(self, other: Tally) -> None:
        """Adds ``other``'s counts (another partition's) to these."""
        self.patients += other.patients
        _merge(self.flagged, other.flagged)
        _merge(self.what_if, other.what_if)
        _merge(self.detector_errors, other.detector_errors)
        _merge(self.issues, other.issues)
        _merge(self.issue_patients, other.issue_patients)
        _merge(self.unmapped, other.unmapped)
        self.findings_written += other.findings_written
        self.inputs.add(other.inputs)
        if other.flags is not None:
            if self.flags is None:
                self.flags = {}
            self.flags.update(other.flags)


def _merge(target: dict[K, int], source: Mapping[K, int]) -> None:
    for key, n in source.items():
        target[key] = target.get(key, 0) + n


def per_1000(count: int, patients: int) -> float:
    """``count`` per 1,000 ``patients``, to one decimal (0.0 when there are no patients)."""
    return round(count * 1000 / patients, 1) if patients else 0.0


def report_json(
    tally: Tally,
    *,
    as_of: date,
    config_version: str,
    patterns: Mapping[str, PatternSettings],
    variants: list[WhatIf],
) -> dict[str, Any]:
    """The ``--format json`` document."""
    n = tally.patients
    result: dict[str, Any] = {}
    for pattern_id, settings in patterns.items():
        flagged = 0 if settings.mode == "off" else tally.flagged.get(pattern_id, 0)
        rows = []
        for v in variants:
            if v.pattern_id == pattern_id:
                count = tally.what_if.get((v.pattern_id, v.threshold, v.value), 0)
                rows.append(
                    {
                        "threshold": v.threshold,
                        "value": v.value,
                        "flagged": count,
                        "per_1000": per_1000(count, n),
                    }
                )
        result[pattern_id] = {
            "mode": settings.mode,
            "flagged": flagged,
            "per_1000": per_1000(flagged, n),
            "what_if": rows,
        }
    return {
        "patients": n,
        "as_of": as_of.isoformat(),
        "config_version": config_version,
        "patterns": result,
        "skipped_files": [
            {"file": file, "reason": reason} for file, reason in tally.inputs.skipped_report()
        ],
        "data_quality": data_quality(tally),
    }


def data_quality(tally: Tally) -> dict[str, Any]:
    """What the input could not give the patterns, by kind: the ``data_quality`` object."""
    inputs = tally.inputs
    issues = sorted(tally.issues.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "resources_read": inputs.resources,
        "malformed_lines": sum(inputs.bad_count.values()),
        "skipped_files": sum(len(reasons) for reasons in inputs.skipped.values()),
        "other_resource_types": dict(sorted(inputs.other_types.items())),
        "resources_without_patient": dict(sorted(inputs.unlinked.items())),
        "patients_not_mapped": dict(sorted(tally.unmapped.items())),
        "detector_errors": dict(sorted(tally.detector_errors.items())),
        "mapping_issues": [
            {
                "resource_type": kind[0],
                "field": kind[1],
                "reason": kind[2],
                "count": n,
                "patients": tally.issue_patients.get(kind, 0),
            }
            for kind, n in issues
        ],
    }


def report_table(document: Mapping[str, Any], patterns: Mapping[str, PatternSettings]) -> str:
    """The ``--format table`` text, from the JSON document so the two never disagree."""
    lines = [
        f"Backtest as of {document['as_of']}: {document['patients']:,} patients "
        f"(config {document['config_version']})",
        "",
        f"{'pattern':<28}{'mode':<8}{'flagged':>9}{'per 1,000':>11}",
    ]
    for pattern_id, row in document["patterns"].items():
        lines.append(
            f"{pattern_id:<28}{row['mode']:<8}{row['flagged']:>9,}{row['per_1000']:>11.1f}"
        )
    lines += ["", "What if (one threshold changed at a time; * = configured):"]
    for pattern_id, row in document["patterns"].items():
        thresholds = patterns[pattern_id].thresholds
        by_name: dict[str, list[str]] = {}
        for w in row["what_if"]:
            mark = "*" if getattr(thresholds, w["threshold"]) == w["value"] else ""
            cell = f"{w['value']:g}{mark}: {w['flagged']:,} ({w['per_1000']:.1f})"
            by_name.setdefault(w["threshold"], []).append(cell)
        suffix = "  [off: counts if switched on]" if row["mode"] == "off" else ""
        for name, cells in by_name.items():
            lines.append(f"  {pattern_id:<27}{name:<30}" + "   ".join(cells) + suffix)
    if document["skipped_files"]:
        lines += ["", "Skipped:"]
        lines += [f"  {s['file']}: {s['reason']}" for s in document["skipped_files"]]
    lines += ["", *data_quality_table(document["data_quality"])]
    return "\n".join(lines) + "\n"


def data_quality_table(quality: Mapping[str, Any]) -> list[str]:
    """The data-quality section of the table report."""
    lines = [
        "Data quality:",
        f"  {'resources read':<44}{quality['resources_read']:>10,}",
        f"  {'malformed lines skipped':<44}{quality['malformed_lines']:>10,}",
        f"  {'files skipped':<44}{quality['skipped_files']:>10,}",
    ]
    for title, key in (
        ("resource type not read by the patterns", "other_resource_types"),
        ("resource names no patient", "resources_without_patient"),
        ("patient could not be mapped", "patients_not_mapped"),
        ("pattern raised an error", "detector_errors"),
    ):
        for name, n in quality[key].items():
            lines.append(f"  {f'{title}: {name}':<44}{n:>10,}")
    if quality["mapping_issues"]:
        lines += [
            "",
            f"  {'mapping issue (resource, field, reason)':<68}{'count':>10}{'patients':>10}",
        ]
        for row in quality["mapping_issues"]:
            kind = f"{row['resource_type']} {row['field'] or '-'}: {row['reason']}"
            lines.append(f"  {kind:<68}{row['count']:>10,}{row['patients']:>10,}")
    return lines
