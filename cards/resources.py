"""FHIR R4 resources that a card's suggestions propose, as plain dicts.

Every resource is a draft proposal (the clinician decides), points at the patient, and carries
the requesting practitioner and encounter when the hook context gave them. Built as dicts for
speed; the tests validate each kind against ``fhir.resources.R4B``.
"""

from __future__ import annotations

from typing import Any

from cards.wording import Suggestion

UCUM = "http://unitsofmeasure.org"


def as_reference(value: str | None, default_type: str) -> dict[str, str] | None:
    """Hook contexts give a bare id (patientId, encounterId) or a reference (userId)."""
    if not value:
        return None
    return {"reference": value if "/" in value else f"{default_type}/{value}"}


def build_resource(
    suggestion: Suggestion,
    *,
    patient_ref: str,
    practitioner_ref: str | None,
    encounter_ref: str | None,
    reason: str,
    note: str | None,
    message: str | None,
) -> dict[str, Any]:
    """``note`` is escaped Markdown (Annotation.text is markdown); ``message`` is the same text
    as plain words, for a CommunicationRequest payload the patient may read."""
    patient = as_reference(patient_ref, "Patient")
    practitioner = as_reference(practitioner_ref, "Practitioner")
    encounter = as_reference(encounter_ref, "Encounter")
    code = {
        "coding": [
            {"system": suggestion.system, "code": suggestion.code, "display": suggestion.display}
        ],
        "text": suggestion.label,
    }
    notes = [{"text": note}] if note else None
    if suggestion.resource == "ServiceRequest":
        return {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "proposal",
            "code": code,
            "subject": patient,
            "encounter": encounter,
            "requester": practitioner,
            "occurrenceTiming": _every_weeks(suggestion),
            "reasonCode": [{"text": reason}],
            "note": notes,
        }
    if suggestion.resource == "Task":
        return {
            "resourceType": "Task",
            "status": "draft",
            "intent": "proposal",
            "code": code,
            "description": suggestion.label,
            "for": patient,
            "encounter": encounter,
            "requester": practitioner,
            "owner": practitioner,
            "reasonCode": {"text": reason},
            "note": notes,
        }
    # CommunicationRequest: a message to the patient, drafted for the clinician to edit and send.
    return {
        "resourceType": "CommunicationRequest",
        "status": "draft",
        "category": [code],
        "subject": patient,
        "encounter": encounter,
        "requester": practitioner,
        "sender": practitioner,
        "recipient": [patient],
        "payload": [{"contentString": message or suggestion.display}],
        "reasonCode": [{"text": reason}],
    }


def _every_weeks(suggestion: Suggestion) -> dict[str, Any] | None:
    """Once every N weeks for M weeks (Timing.repeat), so "more frequent visits" is encoded."""
    if suggestion.every_weeks is None or suggestion.for_weeks is None:
        return None
    return {
        "repeat": {
            "boundsDuration": {
                "value": suggestion.for_weeks,
                "unit": "wk",
                "system": UCUM,
                "code": "wk",
            },
            "frequency": 1,
            "period": suggestion.every_weeks,
            "periodUnit": "wk",
        }
    }
