"""FHIR R4 JSON (plain dicts, as EHRs really send it) -> the typed PatientRecord."""
