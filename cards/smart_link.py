"""The card's link to the medication-timeline SMART app (CDS Hooks 2.0 Link, ``type: smart``).

The EHR launches the app at ``url`` and hands ``appContext`` back to it in the token response.
``appContext`` carries only what the app needs to highlight the card's evidence: the pattern id and
the FHIR references the card cites. It never carries a patient id or a name; references to the
people involved (the patient, a practitioner) are left out even when a finding cites them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

LAUNCH_PATH = "/app/launch"
# Resource types that identify a person rather than a clinical fact: never in a link.
_PERSON_TYPES = frozenset(
    {"Patient", "Person", "RelatedPerson", "Practitioner", "PractitionerRole", "Group"}
)
# A card cites at most a few dozen records; the cap keeps the link (and the token response
# that carries it back) small whatever a pattern returns.
MAX_LINKED_REFS = 100


def app_context(pattern_id: str, evidence_refs: Iterable[str]) -> str:
    """The ``appContext`` JSON string: ``{"pattern": id, "evidence": ["Type/id", ...]}``."""
    refs = [
        r
        for r in dict.fromkeys(evidence_refs)
        if "/" in r and r.split("/", 1)[0] not in _PERSON_TYPES
    ]
    return json.dumps(
        {"pattern": pattern_id, "evidence": refs[:MAX_LINKED_REFS]}, separators=(",", ":")
    )


def timeline_link(
    public_base_url: str, label: str, pattern_id: str, evidence_refs: Iterable[str]
) -> dict[str, str]:
    """The Link object for one card; ``public_base_url`` has no trailing slash."""
    return {
        "label": label,
        "url": public_base_url.rstrip("/") + LAUNCH_PATH,
        "type": "smart",
        "appContext": app_context(pattern_id, evidence_refs),
    }


def with_link(card: Mapping[str, Any], link: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``card`` with ``link`` appended to its ``links`` (created when absent)."""
    links = [*card.get("links", ()), dict(link)]
    return {**card, "links": links}
