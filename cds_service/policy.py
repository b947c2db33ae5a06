"""Which findings become visible cards: mode, suppression after override, dedup, max cards.

Pure: the caller looks up recent overrides and what was already shown at order-select, and passes
them in. Every finding leaves with a disposition, so the audit log can say why a card was or was
not shown:

- ``silent``: the pattern runs in silent mode (audited, never shown; not counted in max_cards);
- ``suppressed``: overridden recently, and the evidence has not grown since (a subset of the
  overridden card's evidence keys); a new intolerance or a new agent shows the card again;
- ``deduplicated``: shown at order-select already for this patient, prescriber and order;
- ``capped``: beyond ``max_cards`` after sorting by pattern priority;
- ``shown``: returned to the EHR.

Sources: suppression honours the override reasons of CDS Hooks 2.0 §Feedback (alert fatigue); the
de-duplication follows from ``order-select`` firing again for the same order before
``order-sign`` (cds-hooks/docs#468, #499), so advice is keyed to the exact order content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Literal, Protocol

from cds_service.patterns.base import Finding
from fhir_mappers.record import MedicationCourse

Disposition = Literal["shown", "silent", "suppressed", "deduplicated", "capped"]


class PatternPolicy(Protocol):
    """What the policy reads of a pattern's site settings (``settings.PatternSettings``)."""

    @property
    def mode(self) -> str:
        """``active``, ``silent`` or ``off`` (``patterns.<pattern-id>.mode``)."""

    @property
    def priority(self) -> int:
        """Sort key among the findings of one call: lower comes first."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Every finding that reached the policy, in priority order, with its disposition."""

    outcomes: tuple[tuple[Finding, Disposition], ...]

    @property
    def shown(self) -> tuple[Finding, ...]:
        """The findings to return as cards, in priority order."""
        return tuple(f for f, d in self.outcomes if d == "shown")

    @property
    def not_shown(self) -> tuple[tuple[Finding, Disposition], ...]:
        """The others, each with why (``silent``, ``suppressed``, ``deduplicated``, ``capped``)."""
        return tuple((f, d) for f, d in self.outcomes if d != "shown")


def order_fingerprint(drafts: Iterable[MedicationCourse]) -> str:
    """Stable hash of the draft orders: refs, ingredient names and daily doses (mg/day). The same
    order at order-select and order-sign gives the same fingerprint; a changed dose or drug does
    not. 32 hex characters; independent of the order of ``drafts``."""
    entries = sorted(
        json.dumps(
            [
                d.ref,
                sorted(i.name for i in d.ingredients),
                d.daily_dose_mg,
            ]
        )
        for d in drafts
    )
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:32]


def dedup_key(patient_key: str, practitioner: str | None, fingerprint: str, pattern_id: str) -> str:
    """Key under which "shown at order-select" is remembered (40 hex characters). Hashed so that
    a shared cache (Redis) holds no practitioner id; ``patient_key`` is already pseudonymous."""
    parts = json.dumps([patient_key, practitioner or "", fingerprint, pattern_id])
    return hashlib.sha256(parts.encode()).hexdigest()[:40]


def is_same_evidence(current: frozenset[str], overridden: frozenset[str]) -> bool:
    """True when nothing new has appeared since the override: ``current`` (the finding's
    evidence keys) is a subset of ``overridden`` (those of the overridden card)."""
    return current <= overridden


def apply_policy(
    findings: Sequence[Finding],
    patterns: Mapping[str, PatternPolicy],
    *,
    max_cards: int,
    overridden: Mapping[str, frozenset[str] | None],
    already_shown: AbstractSet[str],
) -> Decision:
    """Dispositions for the findings, sorted by pattern priority (ties keep input order).

    One finding per pattern (the first wins); findings of unknown or ``off`` patterns are dropped.
    ``patterns`` maps pattern id to its settings; ``max_cards`` caps the shown cards (silent
    ones do not count); ``overridden`` maps pattern id to the evidence keys of its latest
    overridden card (None or absent: no recent override); ``already_shown`` holds the pattern ids
    shown at order-select for the same order. Raises nothing.
    """
    unique: dict[str, Finding] = {}
    for finding in findings:
        settings = patterns.get(finding.pattern_id)
        if settings is None or settings.mode == "off":
            continue
        unique.setdefault(finding.pattern_id, finding)
    ordered = sorted(unique.values(), key=lambda f: patterns[f.pattern_id].priority)

    outcomes: list[tuple[Finding, Disposition]] = []
    shown = 0
    for finding in ordered:
        override = overridden.get(finding.pattern_id)
        disposition: Disposition
        if patterns[finding.pattern_id].mode == "silent":
            disposition = "silent"
        elif override is not None and is_same_evidence(finding.evidence_keys, override):
            disposition = "suppressed"
        elif finding.pattern_id in already_shown:
            disposition = "deduplicated"
        elif shown >= max_cards:
            disposition = "capped"
        else:
            disposition = "shown"
            shown += 1
        outcomes.append((finding, disposition))
    return Decision(tuple(outcomes))
