"""regimen-escalation: TODO clinical docstring (definition and source, When, Unless, Then, Thresholds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds_service.patterns.base import Finding
from fhir_mappers.record import DraftOrders, PatientRecord

PATTERN_ID = "regimen-escalation"


@dataclass(frozen=True, slots=True)
class Thresholds:
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_escalations: int = 3
    window_days: int = 180


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    raise NotImplementedError
