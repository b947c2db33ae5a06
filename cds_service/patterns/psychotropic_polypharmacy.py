"""psychotropic-polypharmacy: TODO clinical docstring (definition and source, When, Unless, Then, Thresholds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds_service.patterns.base import Finding
from fhir_mappers.record import DraftOrders, PatientRecord

PATTERN_ID = "psychotropic-polypharmacy"


@dataclass(frozen=True, slots=True)
class Thresholds:
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_concurrent_antipsychotics: int = 2
    min_concurrent_psychotropics: int = 5


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    raise NotImplementedError
