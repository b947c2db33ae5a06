"""What every pattern returns: a Finding carries evidence as data, never wording."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One fact that made the pattern fire, as the card will list it."""

    ref: str  # FHIR reference of the resource ("MedicationRequest/12"); audit keeps these
    label: str  # medication or encounter display, e.g. "sertraline 50 MG Oral Tablet"
    when: date | None
    note: str = ""  # short factual note: "stopped: suspected intolerance", "PDC 0.52"


@dataclass(frozen=True, slots=True)
class Finding:
    """A pattern that fired, with everything the card builder and the policy need.

    ``facts`` holds the numbers and lists that card templates may quote (counts, windows, PDC,
    the thresholds used). ``evidence_keys`` identifies the evidence for suppression: a later
    finding whose keys are a subset of an overridden one's is "the same evidence"; any new key
    (a new intolerance, a new agent) means the evidence grew.
    """

    pattern_id: str
    evidence: tuple[EvidenceItem, ...]
    facts: Mapping[str, object]
    evidence_keys: frozenset[str]
    concerns_draft: bool = False  # the draft order takes part in (or worsens) the pattern
    indicator: str = "info"  # "info" or "warning"; never "critical"
    references: tuple[str, ...] = field(default=())
    # Records the pattern counted but left out of ``evidence`` (a list capped at
    # ``evidence.MAX_EVIDENCE_ITEMS``): the card adds them to its "and N more in the record" line,
    # so that a card never lists fewer drugs than it says it counted without saying so.
    evidence_left_out: int = 0

    def __post_init__(self) -> None:
        if self.indicator not in {"info", "warning"}:
            raise ValueError(f"indicator {self.indicator!r} is not allowed for advisory cards")
