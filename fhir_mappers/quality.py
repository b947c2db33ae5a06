"""Data-quality summary: the mapping issues of one call (or one backtest) counted by kind.

One line per hook call instead of one per resource: a Synthea export of 13 patients printed
thousands of warnings before. A kind is the resource type and the reason ("MedicationDispense:
unknown days' supply"); it never carries an id or a value, so the summary may be logged and
stored on the audit row as it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from fhir_mappers.record import MappingIssue

# Reasons that carry a detail after the kind ("expected a string, got int"): counted by kind.
_DETAIL_SEPARATORS = (" (", ", got ")


def issue_kind(issue: MappingIssue) -> str:
    """``"<resource type>: <reason>"`` with any detail after the reason left out."""
    reason = issue.reason
    for separator in _DETAIL_SEPARATORS:
        reason = reason.split(separator, 1)[0]
    return f"{issue.resource_type}: {reason}"


def summarise_issues(issues: Iterable[MappingIssue]) -> dict[str, int]:
    """Counts by kind, most frequent first (ties by name), e.g.
    ``{"MedicationRequest: another patient's resource": 3, "Encounter: unparseable date": 1}``."""
    counts = Counter(issue_kind(i) for i in issues)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def merge_summaries(summaries: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Several summaries (one per patient, say) added up, in the same order as above."""
    total: Counter[str] = Counter()
    for summary in summaries:
        total.update(summary)
    return dict(sorted(total.items(), key=lambda item: (-item[1], item[0])))


def format_summary(counts: Mapping[str, int]) -> str:
    """One log-friendly line: ``"3 issues: MedicationRequest: another patient's resource=3"``."""
    if not counts:
        return "no issues"
    total = sum(counts.values())
    return f"{total} issue{'s' if total != 1 else ''}: " + "; ".join(
        f"{kind}={count}" for kind, count in counts.items()
    )
