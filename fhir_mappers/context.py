"""What every resource mapper needs: the lookups, and a place to report what it could not read.

Problems become :class:`MappingIssue` rows instead of exceptions, so one bad resource never sinks
the others. Each is logged at DEBUG only (type, field and reason: never ids or values, which may
identify the patient); the caller logs one summary line per call (``fhir_mappers.quality``), since
a line per resource floods the log on real exports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhir_mappers.accessors import parse_period, relative_reference, urn_uuid_reference
from fhir_mappers.codes import CodeLists
from fhir_mappers.medications import IngredientTable
from fhir_mappers.record import MappingIssue

log = logging.getLogger(__name__)


@dataclass(slots=True)
class MappingContext:
    """The state of one mapping call (one hook call or one backtest patient): the lookups it
    reads (``table``, ``codes``), the indexes it builds while reading (Medications, orders by
    reference, fullUrl aliases, classified concepts) and the ``MappingIssue``s it collects. Not
    shared between calls or threads."""

    table: IngredientTable
    codes: CodeLists
    # "Medication/<id>" -> Medication resource, fetched separately or found among the inputs.
    medications: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # "MedicationRequest/<id>" -> the request, for dispenses that lack their own dosage.
    requests: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    issues: list[MappingIssue] = field(default_factory=list)
    # The Bundle entries read, (fullUrl or None, resource): their fullUrls ("urn:uuid:...",
    # absolute URLs) are aliases of "Type/id" (``aliases``), so that references by fullUrl
    # (draftOrders, Synthea bundles) resolve like relative ones.
    entries: list[tuple[str | None, Any]] = field(default_factory=list)
    # Whether some entry's fullUrl has no ":" (a relative fullUrl, off-spec): a relative
    # reference may then be an alias too.
    relative_full_urls: bool = False
    _aliases: dict[str, str] | None = None
    # "Encounter/<id>" of the hook's context.encounterId, when there is one.
    current_encounter: str | None = None
    # Serialised medicationCodeableConcept -> its ResolvedMedication (medication_source).
    concepts: dict[bytes, Any] = field(default_factory=dict)
    # One Dosage line (bounds left out) and the product's strength -> its DailyDose (dosage).
    doses: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    # (type codes, type words) of an outpatient Encounter -> ``CodeLists.type_says_prescriber``:
    # a history repeats a handful of visit types.
    visit_types: dict[tuple[tuple[str, ...], str], bool | None] = field(default_factory=dict)

    def issue(self, resource_type: str, ref: str, field_name: str, reason: str) -> None:
        """Record that ``field_name`` of ``ref`` (``resource_type``) was left out and why; logged
        at DEBUG only (the call logs one summary line), with no values from the chart."""
        self.issues.append(MappingIssue(resource_type, ref, field_name, reason))
        log.debug("FHIR %s skipped data at %s: %s", resource_type, field_name or "-", reason)

    def period(
        self, value: Any, resource_type: str, ref: str, field_name: str
    ) -> tuple[date, date] | None:
        """The days a date element names, (first, last) (``accessors.parse_period``: equal for a
        full date), reporting it when present but unreadable."""
        parsed = parse_period(value)
        if parsed is None and value is not None:
            self.issue(resource_type, ref, field_name, "unparseable date")
        return parsed

    def date(
        self, value: Any, resource_type: str, ref: str, field_name: str, *, latest: bool = False
    ) -> date | None:
        """Parse a date element, reporting it when present but unreadable.

        A partial date ("2025-03") is read as the first day of its period, or the last with
        ``latest=True`` (the caller documents which is the conservative reading for its use).
        """
        period = self.period(value, resource_type, ref, field_name)
        if period is None:
            return None
        return period[1] if latest else period[0]

    def resolve(self, value: Any) -> str | None:
        """A reference (or Reference) as ``Type/id``: a Bundle fullUrl is looked up first, then a
        relative or absolute literal reference is reduced; ``#id`` is returned unchanged."""
        # Plain JSON first: most calls get None (an absent element) or a dict, and the Mapping
        # ABC check on anything else costs more than the rest of the call.
        if value is None:
            return None
        if type(value) is dict:
            candidate = value.get("reference")
        elif isinstance(value, str):
            candidate = value
        elif isinstance(value, Mapping):
            candidate = value.get("reference")
        else:
            return None
        if not isinstance(candidate, str):
            return None
        literal = candidate.strip()
        # Only a reference with a scheme can be a fullUrl (the spec's are absolute or urn):
        # the alias table is built the first time one is read, which most EHR calls never do.
        if ":" in literal or self.relative_full_urls:
            return self.aliases().get(literal) or relative_reference(literal)
        return relative_reference(literal)

    def aliases(self) -> dict[str, str]:
        """fullUrl -> "Type/id" (a resource without an id: "Type/<uuid>" of a ``urn:uuid``) for
        every entry of ``entries`` that has both; of two entries with one fullUrl, the first.
        Built on first use."""
        if self._aliases is None:
            self._aliases = {}
            for full_url, item in self.entries:
                if full_url is None or type(item) is not dict:
                    continue
                rtype, rid = item.get("resourceType"), item.get("id")
                if type(rtype) is not str or not rtype:
                    continue
                target = (
                    f"{rtype}/{rid}" if type(rid) is str and rid
                    else urn_uuid_reference(rtype, full_url)
                )
                if target and full_url not in self._aliases:
                    self._aliases[full_url] = target
        return self._aliases

    def string(self, value: Any, resource_type: str, ref: str, field_name: str) -> str:
        """A code or string element; anything else is reported and read as ``""``."""
        if isinstance(value, str):
            return value.strip()
        if value is not None:
            self.issue(resource_type, ref, field_name, f"expected a string, got {_kind(value)}")
        return ""


def _kind(value: Any) -> str:
    return "a list" if isinstance(value, list) else type(value).__name__
