"""Data that did not arrive in full (``PatientRecord.incomplete``): a pattern that would fire on
what that data does not show abstains instead, and says why; one that would not fire, or that
reads other data, is unchanged."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cds_service.patterns import regimen_escalation, visits_lag_changes
from cds_service.patterns.abstention import NotEvaluable
from cds_service.patterns.base import Finding
from fhir_mappers.record import PatientRecord
from tests.patterns import test_visits_lag_changes as visits_lag_cases

from .builders import (
    LORAZEPAM,
    NOW,
    QUETIAPINE,
    SERTRALINE,
    course,
    days_ago,
    defaults,
    visit,
)

VISITS = defaults(visits_lag_changes.PATTERN_ID)
ESCALATION = defaults(regimen_escalation.PATTERN_ID)

# Three changes in 90 days (sertraline raised, quetiapine added, lorazepam stopped).
THREE_CHANGES = PatientRecord(courses=visits_lag_cases.THREE_CHANGES)
# Quetiapine added and raised, lorazepam added: three escalations in 180 days.
ESCALATING = PatientRecord(
    courses=(
        course(SERTRALINE, days_ago(400), mg=100, end=days_ago(0)),
        course(QUETIAPINE, days_ago(120), mg=100, end=days_ago(60), status="completed"),
        course(QUETIAPINE, days_ago(60), mg=300),
        course(LORAZEPAM, days_ago(20), mg=1),
    ),
)


@pytest.mark.parametrize("missing", ["Encounter", "MedicationRequest"])
def test_visits_lag_changes_abstains_when_visits_or_orders_are_incomplete(missing: str) -> None:
    record = replace(THREE_CHANGES, incomplete=frozenset({missing}))

    result = visits_lag_changes.detect(record, (), VISITS, NOW)

    assert isinstance(result, NotEvaluable)
    assert result.pattern_id == visits_lag_changes.PATTERN_ID
    assert missing in result.reason and "did not arrive in full" in result.reason


def test_visits_lag_changes_fires_on_the_same_record_when_the_data_is_complete() -> None:
    assert isinstance(visits_lag_changes.detect(THREE_CHANGES, (), VISITS, NOW), Finding)
    # Other data missing (scores, fills) does not touch what this pattern reads.
    other = replace(THREE_CHANGES, incomplete=frozenset({"Observation", "MedicationDispense"}))
    assert isinstance(visits_lag_changes.detect(other, (), VISITS, NOW), Finding)


def test_visits_lag_changes_stays_silent_without_a_finding_even_with_data_missing() -> None:
    # Two changes only: no finding whatever the visits, so nothing to abstain from.
    two_changes = replace(
        THREE_CHANGES, courses=THREE_CHANGES.courses[:3], incomplete=frozenset({"Encounter"})
    )
    assert visits_lag_changes.detect(two_changes, (), VISITS, NOW) is None
    # Visits enough on the record: the partial data can only add visits, never remove the
    # finding's absence.
    reviewed = replace(
        THREE_CHANGES,
        visits=tuple(visit(days_ago(d)) for d in (85, 45, 15)),
        incomplete=frozenset({"Encounter"}),
    )
    assert visits_lag_changes.detect(reviewed, (), VISITS, NOW) is None


def test_regimen_escalation_abstains_when_orders_are_incomplete() -> None:
    record = replace(ESCALATING, incomplete=frozenset({"MedicationRequest"}))

    result = regimen_escalation.detect(record, (), ESCALATION, NOW)

    assert isinstance(result, NotEvaluable)
    assert "MedicationRequest" in result.reason


def test_regimen_escalation_fires_when_only_other_data_is_incomplete() -> None:
    record = replace(ESCALATING, incomplete=frozenset({"Encounter", "MedicationDispense"}))
    assert isinstance(regimen_escalation.detect(record, (), ESCALATION, NOW), Finding)
    assert isinstance(regimen_escalation.detect(ESCALATING, (), ESCALATION, NOW), Finding)
