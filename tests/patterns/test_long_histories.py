"""Long histories: the indexed readings give what a scan of the whole record gives.

The stale-order test reads each ingredient's latest sign of life from one pass over the record
(``regimen.signs_of_life``); multiple-failed-trials judges each trial from indexes. Both are
checked here against the plain reading, on synthetic patients with years of history.
"""

from __future__ import annotations

import random
from datetime import date

from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns import multiple_failed_trials
from cds_service.patterns.regimen import last_sign_of_life
from cds_service.settings import load_settings
from cds_service.synthetic.archetypes import ARCHETYPES
from cds_service.synthetic.population import generate_patient
from fhir_mappers.mapper import map_record
from fhir_mappers.record import MedicationCourse, PatientRecord

AS_OF = date(2026, 6, 15)
TABLE = load_ingredient_table()
CODES = load_code_lists()


def _record(archetype: str, seed: int) -> PatientRecord:
    bundle = generate_patient(random.Random(seed), AS_OF, archetype, index=seed,
                              history_years=8)
    return map_record([bundle], TABLE, codes=CODES)


def _scanned(course: MedicationCourse, record: PatientRecord) -> date | None:
    """The latest start or hand-over of any of the course's ingredients, by a full scan."""
    names = {i.name for i in course.ingredients}
    dates = [course.start]
    dates += [c.start for c in record.courses if names & {i.name for i in c.ingredients}]
    dates += [d.handed_over for d in record.dispenses
              if names & {i.name for i in d.ingredients}]
    known = [d for d in dates if d is not None]
    return max(known) if known else None


def test_the_latest_sign_of_life_is_the_one_a_full_scan_finds() -> None:
    checked = 0
    for archetype in sorted(ARCHETYPES):
        for seed in range(3):
            record = _record(archetype, seed)
            for course in record.courses:
                assert last_sign_of_life(course, record) == _scanned(course, record), (
                    archetype, seed, course.ref)
                checked += 1
    assert checked > 100  # every archetype's orders, noise drugs included


def test_failed_trials_are_found_in_a_long_history() -> None:
    # Not vacuous: the indexed detector still finds the archetype's trials under years of
    # history, and finds none for a stable patient.
    thresholds = load_settings().patterns["multiple-failed-trials"].thresholds
    found = [multiple_failed_trials.detect(_record("multiple_failed_trials", s), (), thresholds,
                                           AS_OF) for s in range(3)]
    stable = [multiple_failed_trials.detect(_record("stable", s), (), thresholds, AS_OF)
              for s in range(3)]
    assert all(f is not None for f in found)
    assert all(f is None for f in stable)
