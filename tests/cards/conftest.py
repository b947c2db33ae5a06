"""Realistic findings for each pattern, as the detectors produce them, and the bundled wording.

Dates read as a clinical story before the shared NOW (2026-06-15); displays are RxNorm SCD names
as EHRs send them; refs are the FHIR references the audit log keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

import pytest

from cards.wording import Wording
from cds_service.loaders import load_wording
from cds_service.patterns.base import EvidenceItem, Finding
from tests.conftest import NOW

TODAY = NOW.date()


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def _intolerance() -> Finding:
    return Finding(
        pattern_id="repeated-intolerance",
        evidence=(
            EvidenceItem(
                "MedicationRequest/mr-101",
                "sertraline 50 MG Oral Tablet",
                ago(600),
                "stopped: suspected intolerance (nausea)",
            ),
            EvidenceItem(
                "AllergyIntolerance/ai-7",
                "venlafaxine 75 MG Oral Tablet",
                ago(420),
                "intolerance: headache, dizziness",
            ),
            EvidenceItem(
                "MedicationRequest/mr-155",
                "mirtazapine 15 MG Oral Tablet",
                ago(200),
                "stopped: suspected intolerance",
            ),
            EvidenceItem(
                "MedicationRequest/mr-190",
                "quetiapine 100 MG Oral Tablet",
                ago(60),
                "stopped: adverse reaction",
            ),
        ),
        facts={
            "ingredient_count": 4,
            "class_count": 3,
            "ingredients": ["sertraline", "venlafaxine", "mirtazapine", "quetiapine"],
            "classes": ["N06AB", "N06AX", "N05AH"],
            "lookback_days": 730,
            "window_months": 24,
            "min_distinct_ingredients": 3,
            "min_distinct_classes": 2,
            "draft_ingredients": ["bupropion"],
        },
        evidence_keys=frozenset({"mr-101", "ai-7", "mr-155", "mr-190"}),
        concerns_draft=True,
    )


def _polypharmacy() -> Finding:
    return Finding(
        pattern_id="psychotropic-polypharmacy",
        evidence=(
            EvidenceItem(
                "MedicationRequest/mr-21",
                "risperidone 2 MG Oral Tablet",
                ago(300),
                "active antipsychotic",
            ),
            EvidenceItem(
                "MedicationRequest/mr-22",
                "quetiapine 100 MG Oral Tablet",
                ago(150),
                "active antipsychotic",
            ),
            EvidenceItem(
                "MedicationRequest/mr-23", "sertraline 100 MG Oral Tablet", ago(400), "active"
            ),
            EvidenceItem(
                "MedicationRequest/mr-24", "lorazepam 1 MG Oral Tablet", ago(90), "active"
            ),
            EvidenceItem(
                "MedicationRequest/draft-1", "aripiprazole 5 MG Oral Tablet", None, "draft order"
            ),
        ),
        facts={
            "psychotropic_count": 5,
            "antipsychotic_count": 3,
            "psychotropics": [
                "risperidone",
                "quetiapine",
                "sertraline",
                "lorazepam",
                "aripiprazole",
            ],
            "antipsychotics": ["risperidone", "quetiapine", "aripiprazole"],
            "min_concurrent_psychotropics": 5,
            "min_concurrent_antipsychotics": 2,
            "trigger": "both",
            "draft_ingredients": ["aripiprazole"],
        },
        evidence_keys=frozenset(
            {"risperidone", "quetiapine", "sertraline", "lorazepam", "aripiprazole"}
        ),
        concerns_draft=True,
        indicator="warning",
    )


def _escalation() -> Finding:
    return Finding(
        pattern_id="regimen-escalation",
        evidence=(
            EvidenceItem(
                "MedicationRequest/mr-31",
                "escitalopram 20 MG Oral Tablet",
                ago(150),
                "dose increase 10 to 20 mg/day",
            ),
            EvidenceItem(
                "MedicationRequest/mr-32", "aripiprazole 2 MG Oral Tablet", ago(90), "new agent"
            ),
            EvidenceItem(
                "MedicationRequest/mr-33",
                "aripiprazole 5 MG Oral Tablet",
                ago(30),
                "dose increase 2 to 5 mg/day",
            ),
        ),
        facts={
            "escalation_count": 3,
            "window_days": 180,
            "min_escalations": 3,
            "new_agents": ["aripiprazole"],
            "dose_increases": ["escitalopram", "aripiprazole"],
            "draft_ingredients": ["aripiprazole"],
        },
        evidence_keys=frozenset({"mr-31", "mr-32", "mr-33"}),
        concerns_draft=True,
    )


def _failed_trials() -> Finding:
    return Finding(
        pattern_id="multiple-failed-trials",
        evidence=(
            EvidenceItem(
                "MedicationRequest/mr-41",
                "sertraline 100 MG Oral Tablet",
                ago(700),
                "84 days at 100 mg/day, then switched",
            ),
            EvidenceItem(
                "MedicationRequest/mr-42",
                "venlafaxine 150 MG Oral Capsule",
                ago(500),
                "70 days at 150 mg/day; PHQ-9 17 at end",
            ),
            EvidenceItem("Observation/phq-9", "PHQ-9 total score", ago(430), "17"),
        ),
        facts={
            "failed_trial_count": 2,
            "trial_class": "antidepressant",
            "trials": ["sertraline", "venlafaxine"],
            "lookback_days": 1095,
            "lookback_months": 36,
            "min_failed_trials": 2,
            "min_trial_days": 28,
            "phq9_persisting_min": 10.0,
            "dose_unknown_trials": [],
        },
        evidence_keys=frozenset({"mr-41", "mr-42"}),
        concerns_draft=True,
    )


def _visits() -> Finding:
    return Finding(
        pattern_id="visits-lag-changes",
        evidence=(
            EvidenceItem(
                "MedicationRequest/mr-51", "lamotrigine 50 MG Oral Tablet", ago(80), "new agent"
            ),
            EvidenceItem(
                "MedicationRequest/mr-52",
                "lamotrigine 100 MG Oral Tablet",
                ago(50),
                "dose increase",
            ),
            EvidenceItem(
                "MedicationRequest/mr-53", "quetiapine 50 MG Oral Tablet", ago(20), "new agent"
            ),
            EvidenceItem("Encounter/enc-9", "Office visit", ago(85), "last completed visit"),
        ),
        facts={
            "change_count": 3,
            "visit_count": 1,
            "window_days": 90,
            "days_since_last_visit": 85,
            "min_changes": 3,
            "max_days_since_visit": 90,
            "trigger": "fewer_visits",
        },
        evidence_keys=frozenset({"mr-51", "mr-52", "mr-53"}),
        concerns_draft=True,
    )


def _nonadherence() -> Finding:
    return Finding(
        pattern_id="nonadherence",
        evidence=(
            EvidenceItem(
                "MedicationDispense/md-61",
                "sertraline 50 MG Oral Tablet",
                ago(170),
                "30 days supply",
            ),
            EvidenceItem(
                "MedicationDispense/md-62",
                "sertraline 50 MG Oral Tablet",
                ago(110),
                "30 days supply",
            ),
            EvidenceItem(
                "MedicationDispense/md-63",
                "sertraline 50 MG Oral Tablet",
                ago(40),
                "30 days supply; PDC 0.52",
            ),
        ),
        facts={
            "pdc": 0.52,
            "drug_class": "antidepressant",
            "ingredients": ["sertraline"],
            "window_days": 180,
            "pdc_below": 0.8,
            "dispense_count": 3,
            "not_taken": [],
            "dose_increase_in_draft": True,
        },
        evidence_keys=frozenset({"md-61", "md-62", "md-63"}),
        concerns_draft=True,
    )


FINDINGS: Mapping[str, Callable[[], Finding]] = {
    "repeated-intolerance": _intolerance,
    "psychotropic-polypharmacy": _polypharmacy,
    "regimen-escalation": _escalation,
    "multiple-failed-trials": _failed_trials,
    "visits-lag-changes": _visits,
    "nonadherence": _nonadherence,
}


def make_finding(pattern_id: str, **facts: Any) -> Finding:
    """The realistic finding for ``pattern_id`` with some facts replaced."""
    base = FINDINGS[pattern_id]()
    return Finding(
        pattern_id=base.pattern_id,
        evidence=base.evidence,
        facts={**base.facts, **facts},
        evidence_keys=base.evidence_keys,
        concerns_draft=base.concerns_draft,
        indicator=base.indicator,
    )


@pytest.fixture(scope="session")
def wording() -> Mapping[str, Wording]:
    return load_wording()


@pytest.fixture(name="make_finding")
def make_finding_fixture() -> Callable[..., Finding]:
    return make_finding
