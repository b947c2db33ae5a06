"""Finding + Wording -> one CDS Hooks 2.0 card (a plain dict, ready for JSON).

Text is filled only from the Finding's facts and evidence; EHR-provided strings are escaped before
they reach Markdown. The result never contains null, "", [] or {} (CDS Hooks 2.0, Use of JSON):
optional attributes without a value are left out.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from cards.render import escape_markdown, fit_summary, render_value, template_fields
from cards.resources import build_resource
from cards.wording import (
    DETAIL_LIST_ITEMS,
    DETAIL_MAX,
    LEAD_LIST_ITEMS,
    MAX_EVIDENCE_LINES,
    OVERRIDE_REASON_SYSTEM,
    Wording,
    pick,
    pick_source,
)
from cds_service.patterns.base import EvidenceItem, Finding

log = logging.getLogger(__name__)

PATTERN_SYSTEM = "https://psychopharm-cds.org/fhir/CodeSystem/pattern"


def _new_uuid() -> str:
    return str(uuid.uuid4())


def build_card(
    finding: Finding,
    wording: Wording,
    *,
    patient_ref: str,
    practitioner_ref: str | None,
    encounter_ref: str | None,
    card_uuid: str | None = None,
    uuid_factory: Callable[[], str] = _new_uuid,
) -> dict[str, Any]:
    """The card for one finding. ``patient_ref`` may be a bare id or "Patient/<id>"."""
    if finding.pattern_id != wording.pattern_id:
        raise ValueError(
            f"wording for {wording.pattern_id!r} cannot word a {finding.pattern_id!r} finding"
        )
    facts = finding.facts
    suggestions = [
        {
            "label": s.label,
            "uuid": uuid_factory(),
            "isRecommended": True if s.recommended else None,
            "actions": [
                {
                    "type": "create",
                    "description": s.description,
                    "resource": build_resource(
                        s,
                        patient_ref=patient_ref,
                        practitioner_ref=practitioner_ref,
                        encounter_ref=encounter_ref,
                        reason=wording.title,
                        note=_fill(s.note, facts, markdown=True),
                        message=_fill(s.note, facts, markdown=False),
                    ),
                }
            ],
        }
        for s in wording.suggestions
    ]
    source = pick_source(wording.source, facts)
    card = {
        "uuid": card_uuid or uuid_factory(),
        "summary": fit_summary(pick(wording.summary, facts), facts),
        "detail": _detail(finding, wording, facts),
        "indicator": finding.indicator,
        "source": {
            "label": source.label,
            "url": source.url,
            "topic": {
                "system": PATTERN_SYSTEM,
                "code": finding.pattern_id,
                "display": wording.title,
            },
        },
        "suggestions": suggestions,
        # A prescriber may want both the closer visits and the consultation.
        "selectionBehavior": "any" if suggestions else None,
        "overrideReasons": [
            {"system": OVERRIDE_REASON_SYSTEM, "code": r.code, "display": r.display}
            for r in wording.override_reasons
        ],
        "links": [{"label": k.label, "url": k.url, "type": "absolute"} for k in wording.links],
    }
    pruned: dict[str, Any] = prune(card)
    return pruned


def card_evidence_refs(finding: Finding) -> tuple[str, ...]:
    """The FHIR references a card cites, in order, without repeats (for the audit row)."""
    refs = [e.ref for e in finding.evidence] + list(finding.references)
    return tuple(dict.fromkeys(r for r in refs if r))


def prune(value: Any) -> Any:
    """Drop None, "", [] and {} at every depth; the spec forbids emitting them."""
    if isinstance(value, dict):
        items = ((k, prune(v)) for k, v in value.items())
        return {k: v for k, v in items if v is not None and v != "" and v != [] and v != {}}
    if isinstance(value, list):
        items_ = (prune(v) for v in value)
        return [v for v in items_ if v is not None and v != "" and v != [] and v != {}]
    return value


def _fill(
    template: str | None,
    facts: Mapping[str, object],
    *,
    markdown: bool,
    max_items: int = DETAIL_LIST_ITEMS,
) -> str | None:
    if template is None:
        return None
    names = template_fields(template)
    missing = [n for n in names if n not in facts]
    if missing:
        # A detector that leaves out a fact is a contract bug; the card still goes out with
        # "not recorded" in its place, and the log names the keys (no patient data).
        log.warning("card template uses facts the finding lacks: %s", ", ".join(missing))
    values = {n: render_value(facts.get(n), markdown=markdown, max_items=max_items) for n in names}
    return template.format_map(values)


def _lead(template: str | None, facts: Mapping[str, object]) -> str:
    """The optional first sentence, only when every fact it names has a value."""
    if template is None:
        return ""
    if any(facts.get(n) in (None, "", [], (), False) for n in template_fields(template)):
        return ""
    return (_fill(template, facts, markdown=True, max_items=LEAD_LIST_ITEMS) or "") + " "


def _detail(finding: Finding, wording: Wording, facts: Mapping[str, object]) -> str:
    """Lead, why, one evidence line per drug, what to consider; at most DETAIL_MAX characters
    (evidence lines are dropped, and counted, until it fits)."""
    sections = {
        "lead": _lead(wording.lead, facts),
        "why": _fill(pick(wording.why, facts), facts, markdown=True) or "",
        "consider": _fill(wording.consider, facts, markdown=True) or "",
    }
    shown = min(len(finding.evidence), MAX_EVIDENCE_LINES)
    while True:
        text = wording.detail.format_map(
            {
                **sections,
                "evidence_list": _evidence_list(
                    finding.evidence, shown, finding.evidence_left_out
                ),
            }
        ).strip()
        if len(text) <= DETAIL_MAX or shown <= 1:
            return text
        shown -= 1


def _evidence_list(evidence: tuple[EvidenceItem, ...], shown: int, left_out: int = 0) -> str:
    """One line per drug: '- sertraline 100 mg/day — nausea (2025-03-02)'; most recent first.
    The lines not shown, and the ``left_out`` records the pattern did not list, are counted in
    one last line ("- and 3 more in the record")."""
    if not evidence:
        return "- No individual records were listed."
    recent = list(reversed(evidence))[:shown]
    lines = []
    for item in recent:
        line = escape_markdown(item.label) or "unnamed record"
        if item.note:
            line += " — " + escape_markdown(item.note)
        if item.when:
            line += f" ({item.when.isoformat()})"
        lines.append("- " + line)
    hidden = len(evidence) - len(recent) + max(0, left_out)
    if hidden > 0:
        lines.append(f"- and {hidden} more in the record")
    return "\n".join(lines)
