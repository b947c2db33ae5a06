"""What every resource mapper needs: the lookups, and a place to report what it could not read.

Problems become :class:`MappingIssue` rows instead of exceptions, so one bad resource never sinks
the others. The log line names only the resource type, field and reason: never ids or values,
which may identify the patient.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhir_mappers.accessors import parse_date
from fhir_mappers.codes import CodeLists
from fhir_mappers.medications import IngredientTable
from fhir_mappers.record import MappingIssue

log = logging.getLogger(__name__)


@dataclass(slots=True)
class MappingContext:
    table: IngredientTable
    codes: CodeLists
    # "Medication/<id>" -> Medication resource, fetched separately or found among the inputs.
    medications: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # "MedicationRequest/<id>" -> the request, for dispenses that lack their own dosage.
    requests: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    issues: list[MappingIssue] = field(default_factory=list)

    def issue(self, resource_type: str, ref: str, field_name: str, reason: str) -> None:
        self.issues.append(MappingIssue(resource_type, ref, field_name, reason))
        log.warning("FHIR %s skipped data at %s: %s", resource_type, field_name or "-", reason)

    def date(self, value: Any, resource_type: str, ref: str, field_name: str) -> date | None:
        """Parse a date element, reporting it when present but unreadable."""
        parsed = parse_date(value)
        if parsed is None and value is not None:
            self.issue(resource_type, ref, field_name, "unparseable date")
        return parsed

    def string(self, value: Any, resource_type: str, ref: str, field_name: str) -> str:
        """A code or string element; anything else is reported and read as ``""``."""
        if isinstance(value, str):
            return value.strip()
        if value is not None:
            self.issue(resource_type, ref, field_name, f"expected a string, got {_kind(value)}")
        return ""


def _kind(value: Any) -> str:
    return "a list" if isinstance(value, list) else type(value).__name__
