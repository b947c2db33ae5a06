"""Gathering a hook call's data: request parsing, prefetch templates, Bundles, the allow-listed FHIR
client and referenced Medications. Output: raw FHIR dicts for ``fhir_mappers``."""
