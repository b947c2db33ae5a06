"""One hook call, end to end: gather -> map -> evaluate -> policy -> cards -> audit.

``hooks.py`` parses the HTTP request and calls ``run_hook``; everything here works on plain
values and the ``Services`` bundle, so the order of the steps can be read top to bottom in one
function. Advice degrades rather than fails: optional data that cannot be fetched, a mapping
problem in one resource, an unavailable dedup store all mean fewer (or repeated) cards, logged,
never an error for the clinician.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from cards.builder import build_card, card_evidence_refs
from cards.smart_link import timeline_link, with_link
from cds_service.gather.hook_request import HookRequest
from cds_service.gather.prefetch import gather_data
from cds_service.gather.prefetch_templates import resource_type
from cds_service.gather.service_definitions import ServiceDefinition
from cds_service.patterns import Finding
from cds_service.patterns.abstention import NotEvaluable
from cds_service.patterns.engine import assess, evidence_horizon, visit_horizon
from cds_service.patterns.order_reach import order_horizon
from cds_service.policy import apply_policy, dedup_key, order_fingerprint
from cds_service.storage.audit.records import NOT_EVALUABLE, CardRecord, pseudonymize
from cds_service.storage.ttl_store import StoreUnavailable
from fhir_mappers.mapper import map_draft_orders, map_record
from fhir_mappers.quality import format_summary, summarise_issues
from fhir_mappers.record import DraftOrders, MappingIssue, PatientRecord

if TYPE_CHECKING:
    from cds_service.services import Services

log = logging.getLogger(__name__)

DEDUP_SOURCE_HOOK = "order-select"
DEDUP_TARGET_HOOK = "order-sign"


def data_quality(
    issues: Iterable[MappingIssue], not_evaluable: Iterable[NotEvaluable]
) -> dict[str, Any]:
    """The call's data-quality summary: mapping issues counted by kind, and the patterns that
    could not be evaluated with why. No ids: kinds, counts and reasons only."""
    summary: dict[str, Any] = {"issues": summarise_issues(issues)}
    abstentions = {a.pattern_id: a.reason for a in not_evaluable}
    if abstentions:
        summary["not_evaluable"] = abstentions
    return summary


def _log_quality(summary: Mapping[str, Any]) -> None:
    # One line per call: a line per resource flooded the log on real exports.
    counts = summary["issues"]
    abstentions = summary.get("not_evaluable") or {}
    if counts or abstentions:
        log.info(
            "data quality: %s; not evaluable: %s",
            format_summary(counts),
            ", ".join(f"{p} ({why})" for p, why in abstentions.items()) or "none",
        )


def _overrides(
    services: Services, patient_key: str, findings: Iterable[Finding]
) -> Mapping[str, frozenset[str]]:
    """Evidence keys of recent overrides by pattern; a pattern not overridden is absent."""
    patterns = [f.pattern_id for f in findings]
    if not patterns:
        return {}
    since = services.clock() - timedelta(
        days=services.settings.service.suppression_days_after_override
    )
    return services.audit.last_overrides(patient_key, patterns, since)


def _already_shown(
    services: Services, req: HookRequest, keys: Mapping[str, str]
) -> AbstractSet[str]:
    if req.hook != DEDUP_TARGET_HOOK or not keys:
        return frozenset()
    try:
        present = services.ttl.present(keys.values())
        return frozenset(pid for pid, key in keys.items() if key in present)
    except StoreUnavailable:
        log.warning("dedup store unavailable: select->sign dedup skipped for this call")
        return frozenset()


def _remember_shown(
    services: Services, req: HookRequest, keys: Mapping[str, str], shown: Iterable[str]
) -> None:
    ttl_s = services.settings.service.select_sign_dedup_minutes * 60
    if req.hook != DEDUP_SOURCE_HOOK or ttl_s <= 0:
        return
    try:
        for pattern_id in shown:
            services.ttl.add(keys[pattern_id], ttl_s)
    except StoreUnavailable:
        log.warning("dedup store unavailable: shown cards not remembered for order-sign")


def _scrub(value: Any, raw: str, replacement: str) -> Any:
    """The card with every exact occurrence of the raw patient reference replaced (for audit)."""
    if isinstance(value, dict):
        return {k: _scrub(v, raw, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, raw, replacement) for v in value]
    return replacement if value == raw else value


def _map(
    services: Services, req: HookRequest, values: Iterable[Any],
    medications: Mapping[str, Any], today: date, incomplete: frozenset[str],
) -> tuple[PatientRecord, DraftOrders, tuple[MappingIssue, ...]]:
    patterns = services.settings.patterns
    values = list(values)  # read twice: the record, and Medications the drafts may reference
    record = map_record(
        values, services.table, medications=medications, codes=services.codes,
        horizon=evidence_horizon(patterns, today), order_horizon=order_horizon(patterns, today),
        visit_horizon=visit_horizon(patterns, today),
        patient_id=req.patient_id, encounter_id=req.encounter_id, incomplete=incomplete,
    )
    drafts: DraftOrders = ()
    draft_issues: tuple[MappingIssue, ...] = ()
    if req.draft_bundle is not None:
        drafts, draft_issues = map_draft_orders(
            req.draft_bundle, services.table, medications=medications, codes=services.codes,
            patient_id=req.patient_id,
            selections=req.selections if req.hook == "order-select" else (),
            today=today, history=values,
        )
    return record, drafts, (*record.issues, *draft_issues)


def _abstention_record(
    services: Services, req: HookRequest, abstention: NotEvaluable, patient_key: str,
    quality_json: str, latency_ms: float, now: Any,
) -> CardRecord:
    """The audit row of a pattern that could not be evaluated: no card, the reason instead."""
    return CardRecord(
        time=now, hook=req.hook, hook_instance=req.hook_instance, service_id=req.service_id,
        pattern=abstention.pattern_id, card_uuid=str(uuid.uuid4()), shown=False,
        summary=f"not evaluable: {abstention.reason}", indicator="info",
        evidence_refs=abstention.references, evidence_keys=(), suggestion_uuids=(),
        config_version=services.settings.config_version, patient_key=patient_key,
        practitioner=req.user_id, latency_ms=latency_ms, card_json="",
        disposition=NOT_EVALUABLE, data_quality=quality_json,
    )


def _with_timeline_link(
    services: Services, finding: Finding, card: dict[str, Any]
) -> dict[str, Any]:
    """The card with its medication-timeline link when the site configured the SMART app."""
    smart = services.settings.smart
    if not smart.enabled:
        return card
    link = timeline_link(
        services.settings.service.public_base_url, smart.link_label,
        finding.pattern_id, card_evidence_refs(finding),
    )
    return with_link(card, link)


def run_hook(
    services: Services,
    req: HookRequest,
    definition: ServiceDefinition,
    *,
    raise_errors: bool = False,
) -> dict[str, Any]:
    """The CDS Hooks response body for one validated request."""
    started = time.perf_counter()
    settings = services.settings
    gathered = gather_data(
        prefetch=req.prefetch,
        templates=definition.prefetch,
        context=req.context,
        fhir_server=req.fhir_server,
        access_token=req.access_token,
        required=definition.required,
        client=services.fhir_client,
        settings=settings.fhir,
        token_problem=req.token_problem,
    )
    if gathered.failed:
        log.warning(
            "data not available in full; patterns that read it abstain: keys=%s",
            sorted(gathered.failed),
        )
    now = services.clock()
    today = services.date_of(now)  # the clinic's date: the EHR's dateTimes name local days
    # Data a key was meant to bring and did not (in full): its absence is no evidence.
    incomplete = frozenset(
        resource_type(definition.prefetch[key]) for key in gathered.failed
        if key in definition.prefetch
    )
    record, drafts, issues = _map(
        services, req, gathered.values.values(), gathered.medications, today, incomplete
    )

    assessment = assess(
        record, drafts, settings.patterns, today, hook=req.hook,
        on_error=lambda pattern_id, _exc: services.metrics.count_error("pattern-failed"),
        raise_errors=raise_errors,
    )
    findings = assessment.findings
    quality = data_quality(issues, assessment.not_evaluable)
    _log_quality(quality)
    quality_json = orjson.dumps(quality).decode()
    patient_key = pseudonymize(req.patient_id, settings.storage.patient_key_secret)
    fingerprint = order_fingerprint(drafts)
    keys = {
        f.pattern_id: dedup_key(patient_key, req.user_id, fingerprint, f.pattern_id)
        for f in findings
    }
    decision = apply_policy(
        findings,
        settings.patterns,
        max_cards=settings.service.max_cards,
        overridden=_overrides(services, patient_key, findings),
        already_shown=_already_shown(services, req, keys),
    )

    patient_ref = f"Patient/{req.patient_id}"
    encounter_ref = f"Encounter/{req.encounter_id}" if req.encounter_id else None
    built = [
        (finding, disposition, _with_timeline_link(services, finding, build_card(
            finding, services.wording[finding.pattern_id], patient_ref=patient_ref,
            practitioner_ref=req.user_id, encounter_ref=encounter_ref,
        )))
        for finding, disposition in decision.outcomes
    ]
    shown = [card for _, disposition, card in built if disposition == "shown"]
    _remember_shown(services, req, keys, [f.pattern_id for f in decision.shown])

    latency_ms = (time.perf_counter() - started) * 1000
    audit_ref = f"Patient/{patient_key}"
    services.audit.record_cards([
        CardRecord(
            time=now,
            hook=req.hook,
            hook_instance=req.hook_instance,
            service_id=req.service_id,
            pattern=finding.pattern_id,
            card_uuid=card["uuid"],
            shown=disposition == "shown",
            summary=card["summary"],
            indicator=card["indicator"],
            evidence_refs=card_evidence_refs(finding),
            evidence_keys=tuple(sorted(finding.evidence_keys)),
            suggestion_uuids=tuple(s["uuid"] for s in card.get("suggestions", ()) if "uuid" in s),
            config_version=settings.config_version,
            patient_key=patient_key,
            practitioner=req.user_id,
            latency_ms=latency_ms,
            card_json=orjson.dumps(_scrub(card, patient_ref, audit_ref)).decode(),
            disposition=disposition,
            data_quality=quality_json,
        )
        for finding, disposition, card in built
    ] + [
        _abstention_record(
            services, req, abstention, patient_key, quality_json, latency_ms, now
        )
        for abstention in assessment.not_evaluable
    ])
    for finding, disposition, _ in built:
        services.metrics.count_card(finding.pattern_id, disposition)
    log.info(
        "hook answered: service=%s findings=%d shown=%d latency_ms=%.1f",
        req.service_id, len(built), len(shown), latency_ms,
    )
    return {"cards": shown}
