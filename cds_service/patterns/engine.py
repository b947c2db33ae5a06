"""Run the configured patterns over one patient record: the single entry point shared by the hook
endpoints and the backtest, so that both flag the same patients at the same date and thresholds.

Pure: no Flask, database or clock. ``now`` is passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from cds_service.patterns import ALL_PATTERNS, Finding
from cds_service.patterns.abstention import NotEvaluable
from cds_service.patterns.draft_plan import planned_record
from fhir_mappers.record import DraftOrders, PatientRecord

log = logging.getLogger(__name__)

ORDER_HOOKS = frozenset({"order-select", "order-sign", "medication-prescribe"})
# Slack added to the longest look-back, so that rounding of dates never decides a finding.
HORIZON_MARGIN_DAYS = 31


def reach_horizon(
    patterns: Mapping[str, Any], now: date, windows: Callable[[Any], Iterable[int]]
) -> date:
    """``now`` less the longest reach of the patterns that are not ``off``, and a margin; a
    pattern's reach is the sum of ``windows(thresholds)`` (days). Every horizon is this one
    rule over different declared windows."""
    longest = 0
    for pattern_settings in patterns.values():
        if pattern_settings.mode != "off":
            longest = max(longest, sum(windows(pattern_settings.thresholds)))
    return now - timedelta(days=longest + HORIZON_MARGIN_DAYS)


def evidence_horizon(patterns: Mapping[str, Any], now: date) -> date:
    """The earliest date any enabled pattern can read, for ``map_record(horizon=...)``.

    Each pattern's ``Thresholds.windows_days()`` declares the windows it reads back in time,
    nested (a trial look-back plus its minimum length plus its baseline window); their sum is the
    pattern's reach. The horizon is the longest reach over the patterns that are not ``off``, plus
    a margin. Declared, not inferred from field names, so a new window cannot escape it.
    """
    return reach_horizon(patterns, now, lambda thresholds: thresholds.windows_days())


def visit_horizon(patterns: Mapping[str, Any], now: date) -> date:
    """The earliest date any enabled pattern reads visits (Encounters) from, for
    ``map_record(visit_horizon=...)``: as ``evidence_horizon``, over the windows each pattern
    declares for visits (``Thresholds.visit_windows_days()``; a pattern that declares none is
    taken to read visits over its whole reach). Never later than needed for the latest review
    visit: the mapper keeps those before any horizon."""
    return reach_horizon(patterns, now, _visit_windows)


def _visit_windows(thresholds: Any) -> Iterable[int]:
    declared = getattr(thresholds, "visit_windows_days", thresholds.windows_days)
    return declared()  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the patterns made of one patient: findings (priority order) and abstentions."""

    findings: list[Finding] = field(default_factory=list)
    not_evaluable: list[NotEvaluable] = field(default_factory=list)


def evaluate(
    record: PatientRecord,
    drafts: DraftOrders,
    patterns: Mapping[str, Any],
    now: date,
    hook: str = "patient-view",
    *,
    on_error: Callable[[str, Exception], None] | None = None,
    raise_errors: bool = False,
) -> list[Finding]:
    """Findings of every pattern that is not ``off``, relevant to the hook (see ``assess``)."""
    return assess(
        record, drafts, patterns, now, hook, on_error=on_error, raise_errors=raise_errors
    ).findings


def assess(
    record: PatientRecord,
    drafts: DraftOrders,
    patterns: Mapping[str, Any],
    now: date,
    hook: str = "patient-view",
    *,
    on_error: Callable[[str, Exception], None] | None = None,
    raise_errors: bool = False,
) -> Assessment:
    """Findings and abstentions of every pattern that is not ``off``, relevant to the hook.

    ``patterns`` maps pattern id to its ``PatternSettings`` (mode, priority, thresholds).
    At ``patient-view`` every standing pattern counts; at order hooks only findings that concern a
    psychotropic draft order do, and an order without any psychotropic gets no findings at all.
    At order-select only the drafts in ``context.selections`` (``is_selected``) are the orders
    being chosen: the other drafts are context and are not evaluated as the order. Drafts that
    stop or replace a history order end it first, and drafts that prescribe nothing are left
    out (``patterns.draft_plan``).
    A detector may return ``NotEvaluable`` (``patterns.abstention``): the data cannot support a
    finding either way; it is collected, never shown.
    A detector that raises is logged and reported through ``on_error``; the others still run
    (``raise_errors`` re-raises instead, for tests).
    """
    is_order_hook = hook in ORDER_HOOKS
    # Every draft of the session, selected or not, may stop or replace a history order.
    record, drafts = planned_record(record, drafts, now)
    if is_order_hook:
        drafts = tuple(d for d in drafts if d.is_selected)
        if not any(d.is_psychotropic for d in drafts):
            return Assessment()
    result = Assessment()
    _run_detectors(record, drafts, patterns, now, is_order_hook, result, on_error, raise_errors)
    result.findings.sort(key=lambda f: patterns[f.pattern_id].priority)
    return result


def _run_detectors(
    record: PatientRecord,
    drafts: DraftOrders,
    patterns: Mapping[str, Any],
    now: date,
    is_order_hook: bool,
    result: Assessment,
    on_error: Callable[[str, Exception], None] | None,
    raise_errors: bool,
) -> None:
    for module in ALL_PATTERNS:
        pattern_settings = patterns.get(module.PATTERN_ID)
        if pattern_settings is None or pattern_settings.mode == "off":
            continue
        try:
            finding = module.detect(record, drafts, pattern_settings.thresholds, now)
        except Exception as exc:  # one failing detector must not blank the others' advice
            if raise_errors:
                raise
            log.exception("pattern %s failed", module.PATTERN_ID)
            if on_error is not None:
                on_error(module.PATTERN_ID, exc)
            # Audited like any pattern that could not judge the record: an auditor sees that it
            # was not evaluated, and why, not a silence that reads as "nothing found".
            result.not_evaluable.append(NotEvaluable(
                module.PATTERN_ID,
                f"the pattern failed on this record ({type(exc).__name__}); see the service log",
            ))
            continue
        if finding is None:
            continue
        if isinstance(finding, NotEvaluable):
            result.not_evaluable.append(finding)
            continue
        if is_order_hook and not finding.concerns_draft:
            continue
        result.findings.append(finding)
