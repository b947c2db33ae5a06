"""What the backtest reports: firing rates per pattern and a what-if table of threshold values.

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

from cds_service.backtest.inputs import Skipped
from cds_service.settings import PatternSettings

K = TypeVar("K")

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
class Tally:
    """Counts summed over workers."""

    patients: int = 0
    flagged: dict[str, int] = field(default_factory=dict)
    what_if: dict[tuple[str, str, float], int] = field(default_factory=dict)
    detector_errors: dict[str, int] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    flags: dict[str, frozenset[str]] | None = None

    def add(self, other: Tally) -> None:
        self.patients += other.patients
        _merge(self.flagged, other.flagged)
        _merge(self.what_if, other.what_if)
        _merge(self.detector_errors, other.detector_errors)
        self.skipped.extend(other.skipped)
        if other.flags is not None:
            if self.flags is None:
                self.flags = {}
            self.flags.update(other.flags)


def _merge(target: dict[K, int], source: Mapping[K, int]) -> None:
    for key, n in source.items():
        target[key] = target.get(key, 0) + n


def per_1000(count: int, patients: int) -> float:
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
        "skipped_files": [{"file": s.file, "reason": s.reason} for s in tally.skipped],
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
    return "\n".join(lines) + "\n"
