"""multiple-failed-trials: TODO clinical docstring (definition and source, When, Unless, Then, Thresholds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds_service.patterns.base import Finding
from fhir_mappers.record import DraftOrders, PatientRecord

PATTERN_ID = "multiple-failed-trials"


@dataclass(frozen=True, slots=True)
class Thresholds:
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_failed_trials: int = 2
    min_trial_days: int = 28
    lookback_days: int = 1095
    phq9_persisting_min: float = 10
    score_window_days: int = 30
    trial_classes: tuple[str, ...] = ("antidepressant", "antipsychotic")


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    raise NotImplementedError
