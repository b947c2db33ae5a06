"""The six treatment-resistance patterns: pure functions from the patient record to findings.

The rule of this package (as Flask's ``sansio``): no Flask, SQLAlchemy, requests, clock or other
I/O. Each pattern module exports ``PATTERN_ID``, a frozen ``Thresholds`` dataclass whose defaults
mirror ``config/default.yaml``, and ``detect(record, drafts, thresholds, now) -> Finding | None``.
``now`` is the as-of date, passed in so that the service and the backtest agree.
"""

from __future__ import annotations

from cds_service.patterns import (
    multiple_failed_trials,
    nonadherence,
    psychotropic_polypharmacy,
    regimen_escalation,
    repeated_intolerance,
    visits_lag_changes,
)
from cds_service.patterns.base import EvidenceItem, Finding

# Explicit, ordered registry (priority order is configured per site, not implied by this order).
ALL_PATTERNS = (
    repeated_intolerance,
    psychotropic_polypharmacy,
    regimen_escalation,
    multiple_failed_trials,
    visits_lag_changes,
    nonadherence,
)
PATTERN_IDS: tuple[str, ...] = tuple(p.PATTERN_ID for p in ALL_PATTERNS)

__all__ = ["ALL_PATTERNS", "PATTERN_IDS", "EvidenceItem", "Finding"]
