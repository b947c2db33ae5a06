"""repeated-intolerance: TODO clinical docstring (definition and source, When, Unless, Then, Thresholds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds_service.patterns.base import Finding
from fhir_mappers.record import DraftOrders, PatientRecord

PATTERN_ID = "repeated-intolerance"


@dataclass(frozen=True, slots=True)
class Thresholds:
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_distinct_ingredients: int = 3
    min_distinct_classes: int = 2
    lookback_days: int = 730


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    raise NotImplementedError
