"""nonadherence: TODO clinical docstring (definition and source, When, Unless, Then, Thresholds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds_service.patterns.base import Finding
from fhir_mappers.record import DraftOrders, PatientRecord

PATTERN_ID = "nonadherence"


@dataclass(frozen=True, slots=True)
class Thresholds:
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    pdc_below: float = 0.80
    window_days: int = 180
    min_dispenses: int = 2


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    raise NotImplementedError
