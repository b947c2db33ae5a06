"""Orders, statements and fills of medications no pattern reads are set aside unmapped
(``PatientRecord.other_medications``), and that never changes what the patterns say.

The mapper classifies a medication first and keeps a lisinopril order as it says itself (issue
14: "resources that cannot matter cost almost nothing"). That is only right while no pattern
reads a non-psychotropic course or fill. These tests hold it: on every hand-written fixture
(with Synthea-style lisinopril, metformin and gabapentin orders, fills and a statement added)
and on synthetic patients of every archetype (whose noise drugs are filled every 90 days), the
findings, evidence and abstentions are the same as for the record with those resources mapped
in full, as the mapper did before, and under a site configuration with doubled windows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cds_service.patterns.engine import assess
from cds_service.synthetic.archetypes import ARCHETYPES
from fhir_mappers.context import MappingContext
from fhir_mappers.dispenses import map_dispense
from fhir_mappers.mapper import map_record
from fhir_mappers.medication_requests import map_medication_request, map_medication_statement
from fhir_mappers.record import Dispense, MedicationCourse, PatientRecord
from tests.conftest import NOW
from tests.patterns.test_evidence_horizon import (
    CASES,
    CODES,
    SETTINGS,
    TABLE,
    archetype_history,
    fixture_call,
)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LISINOPRIL = {"coding": [{"system": RXNORM, "code": "314076",
                          "display": "lisinopril 10 MG Oral Tablet"}],
              "text": "lisinopril 10 MG Oral Tablet"}
METFORMIN = {"coding": [{"system": RXNORM, "code": "860975",
                         "display": "24 HR Metformin hydrochloride 500 MG Extended Release Oral "
                                    "Tablet"}]}

# Tabled, but not psychotropic (class "other" in config/ingredients.csv): an ingredient the
# patterns could key on if they read it.
GABAPENTIN = {"coding": [{"system": RXNORM, "code": "310431",
                          "display": "gabapentin 300 MG Oral Capsule"}]}


def _resources(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping) and value.get("resourceType") == "Bundle":
        for entry in value.get("entry") or ():
            yield from _resources(entry.get("resource"))
    elif isinstance(value, list):
        for item in value:
            yield from _resources(item)
    elif isinstance(value, Mapping):
        yield value


def _as_before(record: PatientRecord, resources: list[Any]) -> PatientRecord:
    """``record`` with its other medications mapped in full and put back among the courses and
    fills, as the mapper did before it set them aside."""
    set_aside = {o.ref for o in record.other_medications}
    ctx = MappingContext(TABLE, CODES)
    ctx.medications = {
        f"Medication/{r['id']}": r for r in _resources(resources)
        if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)
    }
    courses: list[MedicationCourse] = []
    dispenses: list[Dispense] = []
    for resource in _resources(resources):
        rtype, rid = resource.get("resourceType"), resource.get("id")
        ref = f"{rtype}/{rid}"
        if ref not in set_aside:
            continue
        if rtype in ("MedicationRequest", "MedicationOrder"):
            courses.append(map_medication_request(resource, ref, ctx).course)
        elif rtype == "MedicationStatement":
            courses.append(map_medication_statement(resource, ref, ctx).course)
        elif rtype == "MedicationDispense":
            fill = map_dispense(resource, ref, ctx)
            assert fill is not None
            dispenses.append(fill)
    assert len(courses) + len(dispenses) == len(set_aside)
    assert not any(c.is_psychotropic for c in courses)
    return replace(
        record,
        courses=tuple(sorted([*record.courses, *courses], key=lambda c: c.start or date.min)),
        dispenses=tuple(
            sorted([*record.dispenses, *dispenses], key=lambda d: d.handed_over or date.min)
        ),
        other_medications=(),
    )


def _assert_same(resources: list[Any], drafts: Any, config: str, now: date, hook: str) -> int:
    record = map_record(resources, TABLE, codes=CODES)
    before = _as_before(record, resources)
    patterns = SETTINGS[config]
    expected = assess(before, drafts, patterns, now, hook=hook, raise_errors=True)
    assert assess(record, drafts, patterns, now, hook=hook, raise_errors=True) == expected
    return len(record.other_medications)


def _synthea_noise(patient: str, days: list[str]) -> list[dict[str, Any]]:
    """Synthea-style orders and fills of three drugs no pattern reads, and a statement."""
    subject = {"reference": f"Patient/{patient}"}
    out: list[dict[str, Any]] = []
    for i, day in enumerate(days):
        concept = (METFORMIN, LISINOPRIL, GABAPENTIN)[i % 3]
        out.append({
            "resourceType": "MedicationRequest", "id": f"noise-mr-{i}", "status": "active",
            "intent": "order", "medicationCodeableConcept": concept, "subject": subject,
            "authoredOn": f"{day}T09:30:00-05:00",
            "dosageInstruction": [{"sequence": 1, "asNeededBoolean": False,
                                   "timing": {"repeat": {"frequency": 1, "period": 1,
                                                         "periodUnit": "d"}},
                                   "doseAndRate": [{"doseQuantity": {"value": 1}}]}],
        })
        out.append({
            "resourceType": "MedicationDispense", "id": f"noise-md-{i}", "status": "completed",
            "medicationCodeableConcept": concept, "subject": subject,
            "authorizingPrescription": [{"reference": f"MedicationRequest/noise-mr-{i}"}],
            "quantity": {"value": 30}, "daysSupply": {"value": 30, "unit": "days"},
            "whenHandedOver": f"{day}T10:00:00-05:00",
        })
    out.append({
        "resourceType": "MedicationStatement", "id": "noise-ms", "status": "active",
        "medicationCodeableConcept": {"text": "fish oil capsules"}, "subject": subject,
        "effectivePeriod": {"start": days[0]},
    })
    return out


@pytest.mark.parametrize("config", sorted(SETTINGS))
@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_findings_do_not_depend_on_other_medications(path: Path, config: str) -> None:
    call = fixture_call(path)
    days = ["2024-01-10", "2025-11-02", "2026-03-01", "2026-05-30", "2026-06-14"]
    noise = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": r} for r in _synthea_noise(call.patient_id, days)]}
    set_aside = _assert_same([*call.resources, noise], call.drafts, config, NOW.date(), call.hook)
    assert set_aside >= 2 * len(days) + 1


@pytest.mark.parametrize("config", sorted(SETTINGS))
@pytest.mark.parametrize("archetype", sorted(ARCHETYPES))
def test_synthetic_findings_do_not_depend_on_other_medications(
    archetype: str, config: str
) -> None:
    as_of = date(2026, 11, 26)
    set_aside = 0
    for seed in range(4):
        resources = archetype_history(archetype, seed, as_of)
        set_aside += _assert_same(resources, (), config, as_of, "patient-view")
    assert set_aside > 0  # the noise drugs really were set aside


def test_what_is_kept_of_a_medication_no_pattern_reads() -> None:
    noise = _synthea_noise("p1", ["2026-01-05", "2026-02-05"])
    noise.append({
        "resourceType": "MedicationOrder", "id": "dstu2", "status": "completed",
        "medicationCodeableConcept": LISINOPRIL, "patient": {"reference": "Patient/p1"},
        "dateWritten": "2015-03",
    })
    record = map_record(noise, TABLE, codes=CODES, patient_id="p1")

    assert record.courses == () and record.dispenses == ()
    kept = {o.ref: o for o in record.other_medications}
    assert list(kept) == [
        "MedicationRequest/noise-mr-0", "MedicationDispense/noise-md-0",
        "MedicationRequest/noise-mr-1", "MedicationDispense/noise-md-1",
        "MedicationStatement/noise-ms", "MedicationOrder/dstu2",
    ]
    order = kept["MedicationRequest/noise-mr-1"]
    assert (order.resource_type, order.display, order.status) == (
        "MedicationRequest", "lisinopril 10 MG Oral Tablet", "active")
    assert order.day == date(2026, 2, 5)
    assert kept["MedicationDispense/noise-md-0"].day == date(2026, 1, 5)
    assert kept["MedicationStatement/noise-ms"].day == date(2026, 1, 5)
    assert kept["MedicationOrder/dstu2"].resource_type == "MedicationRequest"
    assert kept["MedicationOrder/dstu2"].day == date(2015, 3, 1)
    # A lisinopril dose without a unit is not ours to report.
    assert record.issues == ()
