"""Abstention: a pattern that cannot judge this patient says so, instead of judging missing data.

The guide's rule: a missing datum is missing, never evidence. When the data cannot support a
finding either way (fills without a days' supply, so no proportion of days covered can be
computed), a detector returns ``NotEvaluable`` instead of ``None`` (nothing found) or a Finding.
The engine collects them next to the findings; the pipeline writes each to the audit log (a row
with disposition "not-evaluable" and the reason) and to the call's data-quality summary, so an
auditor can tell "looked and found nothing" from "could not look".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NotEvaluable:
    """Why ``pattern_id`` could not be evaluated for this patient (no PHI: counts and kinds)."""

    pattern_id: str
    reason: str  # e.g. "3 of 6 fills in the last 180 days have no days' supply"
    references: tuple[str, ...] = ()  # the resources whose data were missing, for the audit row


def data_unavailable(
    pattern_id: str, incomplete: frozenset[str], reads_absence_of: tuple[str, ...]
) -> NotEvaluable | None:
    """The abstention of a pattern about to fire on what ``reads_absence_of`` (FHIR resource
    types) does *not* show, when some of that data did not arrive in full
    (``PatientRecord.incomplete``); None when all of it did."""
    missing = [t for t in reads_absence_of if t in incomplete]
    if not missing:
        return None
    return NotEvaluable(
        pattern_id,
        reason=f"{' and '.join(missing)} data did not arrive in full for this call (a prefetch"
        " key left out and not fetchable, a failed read or missing pages): what it does not"
        " show is unknown",
    )
