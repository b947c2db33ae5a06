"""FHIR R4 JSON (plain dicts, as EHRs really send it) -> the typed PatientRecord.

Pure: no Flask, requests, database or file reading. ``cds_service.loaders`` reads the lookups
once (``IngredientTable``, ``CodeLists``); pass them to ``map_record`` / ``map_draft_orders``.
"""

from fhir_mappers.codes import CodeLists
from fhir_mappers.mapper import map_draft_orders, map_record, unresolved_medication_refs
from fhir_mappers.medications import IngredientTable, strength_mg

__all__ = [
    "CodeLists",
    "IngredientTable",
    "map_draft_orders",
    "map_record",
    "strength_mg",
    "unresolved_medication_refs",
]
