"""Builds the FHIR R4 resources of one synthetic patient, with dates counted back from an as-of day.

Archetypes (``archetypes``) describe a history in clinical steps ("sertraline 100 mg
from 500 days ago", "dispensed every 30 days"); this module turns each step into valid R4 JSON with
stable ids, so that the same seed always writes byte-identical files.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from cds_service.synthetic import catalogue as cat

Resource = dict[str, Any]


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


class PatientBuilder:
    """Collects one patient's resources; every date is given as days before ``as_of``."""

    def __init__(self, rng: random.Random, as_of: date, patient_id: str) -> None:
        self.rng = rng
        self.as_of = as_of
        self.patient_id = patient_id
        self.subject = {"reference": f"Patient/{patient_id}"}
        self.resources: list[Resource] = []
        self._counters: dict[str, int] = {}

    # -- small helpers -------------------------------------------------------------------------

    def _id(self, kind: str) -> str:
        n = self._counters.get(kind, 0) + 1
        self._counters[kind] = n
        return f"{self.patient_id}-{kind}-{n}"

    def day(self, days_ago: int) -> str:
        """The date ``days_ago`` days before ``as_of``, as a FHIR ``date`` (``YYYY-MM-DD``)."""
        return (self.as_of - timedelta(days=days_ago)).isoformat()

    def instant(self, days_ago: int) -> str:
        """A UTC ``dateTime`` on that day, at a random quarter hour between 08:00 and 16:45."""
        hour = self.rng.randint(8, 16)
        minute = self.rng.choice((0, 15, 30, 45))
        return f"{self.day(days_ago)}T{hour:02d}:{minute:02d}:00Z"

    def _medication_concept(self, drug_name: str, strength_mg: float) -> dict[str, Any]:
        drug = cat.DRUGS[drug_name]
        display = drug.display(strength_mg)
        scd = drug.scd.get(strength_mg)
        if scd:
            return _concept(cat.RXNORM, scd, display)
        if drug.rxcui and self.rng.random() < 0.7:
            # Coded at ingredient level with the product as text, as several EHRs send it.
            coding = {"system": cat.RXNORM, "code": drug.rxcui, "display": drug.name}
            return {"coding": [coding], "text": display}
        return {"text": display}  # text only: classification must fall back to the name

    # -- resources -----------------------------------------------------------------------------

    def patient(self, index: int) -> Resource:
        """Add and return the Patient: obviously fake name, MRN ``SYN<index:07d>``, aged 19-78."""
        birth = self.as_of - timedelta(
            days=365 * self.rng.randint(19, 78) + self.rng.randint(0, 364)
        )
        resource = {
            "resourceType": "Patient",
            "id": self.patient_id,
            "meta": {"tag": [{"system": "urn:psychopharm-cds:synthetic", "code": "synthetic"}]},
            "identifier": [
                {"system": "urn:psychopharm-cds:synthetic-mrn", "value": f"SYN{index:07d}"}
            ],
            "active": True,
            "name": [
                {
                    "use": "official",
                    "family": "Synthetic",
                    "given": [self.rng.choice(cat.FAKE_GIVEN_NAMES), f"No{index}"],
                }
            ],
            "gender": self.rng.choice(("female", "male", "female", "other")),
            "birthDate": birth.isoformat(),
        }
        self.resources.append(resource)
        return resource

    def medication_request(
        self,
        drug_name: str,
        strength_mg: float,
        *,
        start_ago: int,
        end_ago: int | None = None,
        doses_per_day: int = 1,
        status: str | None = None,
        stop_reason: tuple[str, str, str] | None = None,
        prior: str | None = None,
    ) -> str:
        """One order; ``end_ago`` closes it (completed unless ``status`` says). Returns its ref."""
        rid = self._id("mr")
        if status is None:
            status = "active" if end_ago is None else "completed"
        bounds: dict[str, str] = {"start": self.day(start_ago)}
        if end_ago is not None:
            bounds["end"] = self.day(end_ago)
        period = 1
        resource: Resource = {
            "resourceType": "MedicationRequest",
            "id": rid,
            "status": status,
            "intent": "order",
            "category": [
                {
                    "coding": [
                        {"system": cat.MEDREQ_CATEGORY, "code": "community", "display": "Community"}
                    ]
                }
            ],
            "medicationCodeableConcept": self._medication_concept(drug_name, strength_mg),
            "subject": self.subject,
            "authoredOn": self.instant(start_ago),
            "requester": {"reference": "Practitioner/synthetic-prescriber-1"},
            "dosageInstruction": [
                {
                    "sequence": 1,
                    "text": f"{strength_mg:g} mg by mouth {doses_per_day} time(s) daily",
                    "timing": {
                        "repeat": {
                            "boundsPeriod": bounds,
                            "frequency": doses_per_day,
                            "period": period,
                            "periodUnit": "d",
                        }
                    },
                    "route": _concept(cat.SNOMED, "26643006", "Oral route"),
                    "doseAndRate": [
                        {
                            "doseQuantity": {
                                "value": strength_mg,
                                "unit": "mg",
                                "system": cat.UCUM,
                                "code": "mg",
                            }
                        }
                    ],
                }
            ],
            "dispenseRequest": {
                "numberOfRepeatsAllowed": 5,
                "quantity": {"value": 30 * doses_per_day, "unit": "TAB"},
                "expectedSupplyDuration": {
                    "value": 30,
                    "unit": "days",
                    "system": cat.UCUM,
                    "code": "d",
                },
            },
        }
        if stop_reason is not None:
            system, code, display = stop_reason
            resource["statusReason"] = _concept(system, code, display)
        if prior is not None:
            resource["priorPrescription"] = {"reference": prior}
        self.resources.append(resource)
        return f"MedicationRequest/{rid}"

    def dispense(
        self,
        request_ref: str,
        *,
        days_ago: int,
        days_supply: int = 30,
        first: bool = False,
    ) -> None:
        """One completed fill of ``request_ref``: ``days_supply`` days (quantity = days x doses a
        day), handed over ``days_ago``, typed First Fill when ``first`` else Refill.

        Raises ``KeyError`` when ``request_ref`` is not a MedicationRequest added before.
        """
        request = self._find(request_ref)
        concept = request["medicationCodeableConcept"]
        dosage = request["dosageInstruction"][0]
        per_day = dosage["timing"]["repeat"]["frequency"]
        code, display = ("FF", "First Fill") if first else ("RF", "Refill")
        self.resources.append(
            {
                "resourceType": "MedicationDispense",
                "id": self._id("md"),
                "status": "completed",
                "type": _concept(cat.PHARMACY_SUPPLY, code, display),
                "medicationCodeableConcept": concept,
                "subject": self.subject,
                "authorizingPrescription": [{"reference": request_ref}],
                "quantity": {"value": days_supply * per_day, "unit": "TAB"},
                "daysSupply": {
                    "value": days_supply,
                    "unit": "d",
                    "system": cat.UCUM,
                    "code": "d",
                },
                "whenPrepared": self.instant(days_ago),
                "whenHandedOver": self.instant(days_ago),
                "dosageInstruction": [dosage],
            }
        )

    def regular_dispenses(
        self, request_ref: str, *, start_ago: int, end_ago: int = 0, every: int = 30
    ) -> None:
        """Fills on time (0-2 days late) from ``start_ago`` until ``end_ago``."""
        day = start_ago
        first = True
        while day > end_ago:
            self.dispense(request_ref, days_ago=day, days_supply=every, first=first)
            first = False
            day -= every + self.rng.randint(0, 2)

    def encounter(self, days_ago: int, *, virtual: bool = False, status: str = "finished") -> None:
        """An outpatient visit (class AMB, or VR when ``virtual``) with a CPT office or psychiatry
        visit type, from a random start that day until 17:30."""
        class_code = ("VR", "virtual") if virtual else ("AMB", "ambulatory")
        visit_type = self.rng.choice(cat.VISIT_TYPES)
        start = self.instant(days_ago)
        self.resources.append(
            {
                "resourceType": "Encounter",
                "id": self._id("enc"),
                "status": status,
                "class": {"system": cat.ACT_CODE, "code": class_code[0], "display": class_code[1]},
                "type": [_concept(cat.CPT, *visit_type)],
                "subject": self.subject,
                "period": {"start": start, "end": start[:11] + "17:30:00Z"},
            }
        )

    def phq9(self, days_ago: int, score: int) -> None:
        """A final PHQ-9 total (LOINC 44261-6, 0-27 points), as valueInteger or, one time in five,
        as a UCUM ``{score}`` valueQuantity, as EHRs vary."""
        value: dict[str, Any]
        if self.rng.random() < 0.8:
            value = {"valueInteger": score}
        else:
            value = {"valueQuantity": {"value": score, "unit": "{score}", "system": cat.UCUM}}
        self.resources.append(
            {
                "resourceType": "Observation",
                "id": self._id("obs"),
                "status": "final",
                "category": [{"coding": [{"system": cat.OBSERVATION_CATEGORY, "code": "survey"}]}],
                "code": _concept(cat.LOINC, cat.PHQ9_LOINC, "PHQ-9 total score [Reported]"),
                "subject": self.subject,
                "effectiveDateTime": self.instant(days_ago),
                **value,
            }
        )

    def allergy(
        self,
        drug_name: str,
        *,
        days_ago: int,
        reaction: tuple[str, str],
        kind: str = "intolerance",
    ) -> None:
        """An active, confirmed AllergyIntolerance to ``drug_name`` with one ``(SNOMED code,
        display)`` reaction; ``kind`` ``intolerance`` is low criticality and mild, ``allergy``
        high and severe (the form repeated-intolerance never counts).

        Raises ``KeyError`` for a drug not in ``catalogue.DRUGS``.
        """
        drug = cat.DRUGS[drug_name]
        code: dict[str, Any]
        if drug.rxcui:
            code = _concept(cat.RXNORM, drug.rxcui, drug.name)
        else:
            code = {"text": drug.name}
        self.resources.append(
            {
                "resourceType": "AllergyIntolerance",
                "id": self._id("ai"),
                "clinicalStatus": _concept(cat.ALLERGY_CLINICAL, "active", "Active"),
                "verificationStatus": _concept(cat.ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
                "type": kind,
                "category": ["medication"],
                "criticality": "low" if kind == "intolerance" else "high",
                "code": code,
                "patient": self.subject,
                "onsetDateTime": self.day(days_ago),
                "recordedDate": self.instant(days_ago),
                "reaction": [
                    {
                        "manifestation": [_concept(cat.SNOMED, *reaction)],
                        "severity": "mild" if kind == "intolerance" else "severe",
                    }
                ],
            }
        )

    def penicillin_allergy(self, days_ago: int) -> None:
        """A penicillin allergy: common, not psychotropic, must not count anywhere."""
        self.resources.append(
            {
                "resourceType": "AllergyIntolerance",
                "id": self._id("ai"),
                "clinicalStatus": _concept(cat.ALLERGY_CLINICAL, "active", "Active"),
                "verificationStatus": _concept(cat.ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
                "type": "allergy",
                "category": ["medication"],
                "criticality": "high",
                "code": {"text": "penicillin"},
                "patient": self.subject,
                "recordedDate": self.instant(days_ago),
                "reaction": [{"manifestation": [_concept(cat.SNOMED, *cat.IMMUNE_REACTIONS[0])]}],
            }
        )

    def condition(self, code: tuple[str, str], *, onset_ago: int) -> None:
        """An active, confirmed problem-list Condition with an ``(ICD-10-CM code, display)``."""
        self.resources.append(
            {
                "resourceType": "Condition",
                "id": self._id("cond"),
                "clinicalStatus": _concept(cat.CONDITION_CLINICAL, "active", "Active"),
                "verificationStatus": _concept(
                    cat.CONDITION_VERIFICATION, "confirmed", "Confirmed"
                ),
                "category": [
                    _concept(cat.CONDITION_CATEGORY, "problem-list-item", "Problem List Item")
                ],
                "code": _concept(cat.ICD10CM, *code),
                "subject": self.subject,
                "onsetDateTime": self.day(onset_ago),
                "recordedDate": self.instant(onset_ago),
            }
        )

    def _find(self, reference: str) -> Resource:
        rid = reference.split("/", 1)[1]
        for resource in reversed(self.resources):
            if resource.get("id") == rid:
                return resource
        raise KeyError(reference)
