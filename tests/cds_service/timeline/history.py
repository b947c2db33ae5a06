"""A long, realistic psychotropic history as FHIR R4 resources, for the timeline tests.

``fifteen_ingredient_history`` tells five years of treatment of one patient: fifteen ingredients
from five classes, dose steps arriving as new MedicationRequests that name the one they replace
(``priorPrescription``), stops with a coded ``statusReason`` (side effects, lack of effect, patient
choice), AllergyIntolerance records with their reactions, PHQ-9/GAD-7 totals every quarter and
monthly outpatient visits. Dates count back from the tests' NOW.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tests.conftest import NOW

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
STATUS_REASON = "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason"

RXCUI = {
    "fluoxetine": "4493", "sertraline": "36437", "escitalopram": "321988",
    "venlafaxine": "39786", "duloxetine": "72625", "bupropion": "42347",
    "mirtazapine": "15996", "olanzapine": "61381", "quetiapine": "51272",
    "aripiprazole": "89013", "lithium": "6448", "lamotrigine": "28439",
    "lorazepam": "6470", "zolpidem": "39993", "methylphenidate": "6901",
}
# How each kind of stop is coded by the EHR (statusReason), as config/codes.yaml reads it.
REASONS = {
    "side effects": {"coding": [{"system": STATUS_REASON, "code": "sintol",
                                 "display": "Suspected intolerance"}]},
    "lack of effect": {"coding": [{"system": SNOMED, "code": "266721009",
                                   "display": "No response to treatment"}]},
    "patient choice": {"coding": [{"system": SNOMED, "code": "105480006",
                                   "display": "Refusal of treatment by patient"}]},
}


def day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


@dataclass(frozen=True)
class Course:
    """One ingredient's story: dose steps ``(days_ago, mg/day)`` and how it ended."""

    ingredient: str
    steps: Sequence[tuple[int, float]]
    stopped_days_ago: int | None  # None: still taken
    reason: str | None = None  # key of REASONS


# Fifteen ingredients over five years (1825 days); the last four are today's regimen.
COURSES: tuple[Course, ...] = (
    Course("fluoxetine", [(1800, 20), (1740, 40)], 1650, "lack of effect"),
    Course("sertraline", [(1640, 50), (1600, 100), (1540, 150)], 1420, "side effects"),
    Course("escitalopram", [(1400, 10)], 1385, "side effects"),
    Course("venlafaxine", [(1370, 75), (1330, 150), (1270, 225)], 1100, "lack of effect"),
    Course("duloxetine", [(1090, 60)], 1075, "side effects"),
    Course("bupropion", [(1060, 150), (1020, 300)], 900, "patient choice"),
    Course("mirtazapine", [(880, 15), (850, 30)], None),
    Course("olanzapine", [(1500, 5), (1470, 10)], 1380, "side effects"),
    Course("quetiapine", [(1300, 50), (1280, 100), (1250, 200)], 1000, "lack of effect"),
    Course("aripiprazole", [(990, 5), (950, 10)], None),
    Course("lithium", [(1200, 600), (1170, 900)], 720, "side effects"),
    Course("lamotrigine", [(700, 25), (686, 50), (672, 100), (640, 200)], None),
    Course("lorazepam", [(1750, 2)], 1650, "patient choice"),
    Course("zolpidem", [(600, 10)], 420, "patient choice"),
    Course("methylphenidate", [(400, 20), (370, 36)], None),
)
REACTIONS = {  # AllergyIntolerance records: ingredient -> (days_ago, reaction code, display)
    "sertraline": (1425, "422587007", "Nausea"),
    "olanzapine": (1385, "8943002", "Weight gain"),
    "lithium": (725, "26079004", "Tremor"),
}


def medication_request(
    pid: str, rid: str, ingredient: str, mg: float, start: int, end: int | None,
    status: str, reason: str | None = None, prior: str | None = None,
) -> dict[str, Any]:
    display = f"{ingredient} {mg:g} MG Oral Tablet"
    repeat: dict[str, Any] = {"frequency": 1, "period": 1, "periodUnit": "d",
                              "boundsPeriod": {"start": day(start)}}
    if end is not None:
        repeat["boundsPeriod"]["end"] = day(end)
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
            "code": "outpatient"}]}],
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": RXCUI[ingredient], "display": display}],
            "text": display,
        },
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": day(start),
        "dosageInstruction": [{
            "text": f"{mg:g} mg once daily",
            "timing": {"repeat": repeat},
            "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg",
                                              "system": "http://unitsofmeasure.org",
                                              "code": "mg"}}],
        }],
    }
    if reason is not None:
        resource["statusReason"] = REASONS[reason]
    if prior is not None:
        resource["priorPrescription"] = {"reference": f"MedicationRequest/{prior}"}
    return resource


def course_requests(pid: str, course: Course) -> list[dict[str, Any]]:
    """One MedicationRequest per dose step; each step ends where the next begins."""
    resources = []
    prior = None
    for index, (start, mg) in enumerate(course.steps):
        rid = f"mr-{course.ingredient}-{index + 1}"
        last = index == len(course.steps) - 1
        if not last:
            end, status, reason = course.steps[index + 1][0], "completed", None
        elif course.stopped_days_ago is None:
            end, status, reason = None, "active", None
        else:
            end, status, reason = course.stopped_days_ago, "stopped", course.reason
        resources.append(
            medication_request(pid, rid, course.ingredient, mg, start, end, status, reason, prior)
        )
        prior = rid
    return resources


def allergy(pid: str, ingredient: str, days_ago: int, code: str, display: str) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "id": f"ai-{ingredient}",
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": "active"}]},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            "code": "confirmed"}]},
        "type": "intolerance",
        "category": ["medication"],
        "code": {"coding": [{"system": RXNORM, "code": RXCUI[ingredient],
                             "display": ingredient}]},
        "patient": {"reference": f"Patient/{pid}"},
        "onsetDateTime": day(days_ago),
        "recordedDate": day(days_ago),
        "reaction": [{"manifestation": [{"coding": [{"system": SNOMED, "code": code,
                                                     "display": display}],
                                         "text": display}],
                      "severity": "moderate"}],
    }


def score(pid: str, rid: str, instrument: str, value: int, days_ago: int) -> dict[str, Any]:
    code, display = {
        "PHQ-9": ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score"),
        "GAD-7": ("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score"),
    }[instrument]
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": day(days_ago) + "T10:00:00Z",
        "valueInteger": value,
    }


def encounter(pid: str, rid: str, days_ago: int) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": rid,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB",
                  "display": "ambulatory"},
        "type": [{"text": "Psychiatry follow-up"}],
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": day(days_ago) + "T09:00:00Z", "end": day(days_ago) + "T09:30:00Z"},
    }


def fifteen_ingredient_history(pid: str = "pt-timeline-15") -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1981-02-03"}
    ]
    for course in COURSES:
        resources.extend(course_requests(pid, course))
    for ingredient, (days_ago, code, display) in REACTIONS.items():
        resources.append(allergy(pid, ingredient, days_ago, code, display))
    for index, days_ago in enumerate(range(1800, 0, -90)):
        phq = 8 + (index * 7) % 17  # stays between 8 and 24: symptoms persisting
        resources.append(score(pid, f"phq-{index}", "PHQ-9", phq, days_ago))
        resources.append(score(pid, f"gad-{index}", "GAD-7", max(3, phq - 4), days_ago - 2))
    for index, days_ago in enumerate(range(1810, 0, -30)):
        resources.append(encounter(pid, f"enc-{index}", days_ago))
    return resources


def expected_lanes() -> dict[str, list[float]]:
    """Ingredient -> its daily doses in order, as the picture must show them."""
    return {c.ingredient: [float(mg) for _, mg in c.steps] for c in COURSES}


def expected_stops() -> dict[str, str]:
    """Ingredient -> the stop reason label, for the ingredients that were stopped."""
    return {c.ingredient: c.reason for c in COURSES if c.reason is not None}
