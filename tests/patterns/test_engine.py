"""evaluate(): the patterns as the hooks run them, with the order-hook filter."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from cds_service.patterns import Finding
from cds_service.patterns.engine import evaluate
from cds_service.settings import PatternSettings, load_settings
from fhir_mappers.record import MedicationCourse, PatientRecord

from .builders import (
    ESCITALOPRAM,
    LORAZEPAM,
    NOW,
    QUETIAPINE,
    RISPERIDONE,
    SERTRALINE,
    VENLAFAXINE,
    course,
    days_ago,
    draft,
    intolerance,
    phq9,
)

# Quetiapine and risperidone together; side effects with three agents; two trials that did not
# help enough: four standing patterns.
RECORD = PatientRecord(
    courses=(
        course(QUETIAPINE, days_ago(300), mg=300),
        course(RISPERIDONE, days_ago(200), mg=4),
        course(SERTRALINE, days_ago(600), mg=150, end=days_ago(500), status="stopped"),
        course(
            ESCITALOPRAM,
            days_ago(480),
            mg=20,
            end=days_ago(380),
            status="stopped",
            stop_reason="lack_of_effect",
        ),
    ),
    intolerances=(
        intolerance(VENLAFAXINE, days_ago(350)),
        intolerance(SERTRALINE, days_ago(500)),
        intolerance(LORAZEPAM, days_ago(100)),
    ),
    scores=(phq9(days_ago(602), 20), phq9(days_ago(505), 18)),  # baseline, then at the end
)


def _ids(findings: list[Finding]) -> list[str]:
    return [f.pattern_id for f in findings]


def test_patient_view_shows_standing_patterns_by_priority(
    pattern_settings: Mapping[str, PatternSettings],
) -> None:
    findings = evaluate(RECORD, (), pattern_settings, NOW, "patient-view", raise_errors=True)
    assert _ids(findings) == [
        "repeated-intolerance",
        "multiple-failed-trials",
        "psychotropic-polypharmacy",
    ]


@pytest.mark.parametrize("hook", ["order-select", "order-sign", "medication-prescribe"])
def test_non_psychotropic_order_gets_no_findings(
    hook: str, pattern_settings: Mapping[str, PatternSettings]
) -> None:
    drafts = (draft(None, 1000),)
    assert evaluate(RECORD, drafts, pattern_settings, NOW, hook, raise_errors=True) == []


@pytest.mark.parametrize(
    ("drafts", "expected"),
    [
        pytest.param((draft(LORAZEPAM, 1),), ["repeated-intolerance"], id="anxiolytic"),
        pytest.param(
            (draft(ESCITALOPRAM, 10),),
            ["repeated-intolerance", "multiple-failed-trials"],
            id="antidepressant",
        ),
        pytest.param(
            (draft(None, 500), draft(SERTRALINE, 50, ref="MedicationRequest/draft-2")),
            ["repeated-intolerance", "multiple-failed-trials"],
            id="psychotropic-among-others",
        ),
    ],
)
def test_order_hooks_keep_only_findings_that_concern_the_draft(
    drafts: tuple[MedicationCourse, ...],
    expected: list[str],
    pattern_settings: Mapping[str, PatternSettings],
) -> None:
    findings = evaluate(RECORD, drafts, pattern_settings, NOW, "order-sign", raise_errors=True)
    assert _ids(findings) == expected
    assert all(f.concerns_draft for f in findings)


def test_pattern_switched_off_is_not_run() -> None:
    patterns = load_settings(
        overrides={"patterns": {"repeated-intolerance": {"mode": "off"}}}
    ).patterns
    findings = evaluate(RECORD, (), patterns, NOW, "patient-view", raise_errors=True)
    assert "repeated-intolerance" not in _ids(findings)
