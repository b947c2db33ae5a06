"""Work shared within one call gives what computing it afresh gives.

Long medication histories are cheaper because ``MappingContext.doses`` reuses the daily dose of a
Dosage line across orders that repeat it with other dates (checked against the plain computation
on synthetic patients with eight years of history, every archetype: the mapped records, and then
the engine's findings and abstentions, must be equal), and because each pattern cuts the history
into episodes once (regimen-escalation reads its events from the episodes it already cut).
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest

from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns import (
    engine,
    multiple_failed_trials,
    regimen_escalation,
    timeline,
)
from cds_service.settings import load_settings
from cds_service.synthetic.archetypes import ARCHETYPES
from cds_service.synthetic.population import generate_patient
from fhir_mappers import dispenses, dosage, medication_requests
from fhir_mappers.mapper import map_record
from fhir_mappers.medication_source import ResolvedMedication

AS_OF = date(2026, 6, 15)
TABLE = load_ingredient_table()
CODES = load_code_lists()
SETTINGS = load_settings()
CASES = [(a, seed) for a in sorted(ARCHETYPES) for seed in range(2)]


def _bundle(archetype: str, seed: int) -> Any:
    return generate_patient(random.Random(seed), AS_OF, archetype, index=seed, history_years=8)


def _no_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    def plain(dosages: Any, medication: Any, codes: Any, memo: Any, *, starts: Any = None) -> Any:
        return dosage.daily_dose(dosages, medication, codes, starts=starts)

    monkeypatch.setattr(medication_requests, "daily_dose_memo", plain)
    monkeypatch.setattr(dispenses, "daily_dose_memo", plain)


def test_the_memos_change_no_record_and_no_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    shared = []
    for archetype, seed in CASES:
        record = map_record([_bundle(archetype, seed)], TABLE, codes=CODES)
        shared.append((record, engine.assess(record, (), SETTINGS.patterns, AS_OF)))

    _no_memo(monkeypatch)
    for (archetype, seed), (record, assessment) in zip(CASES, shared, strict=True):
        plain = map_record([_bundle(archetype, seed)], TABLE, codes=CODES)
        assert plain == record, (archetype, seed)
        assert engine.assess(plain, (), SETTINGS.patterns, AS_OF) == assessment, (archetype, seed)
    # Not vacuous: the patients have findings.
    for (archetype, _), (_, assessment) in zip(CASES, shared, strict=True):
        found = {f.pattern_id for f in assessment.findings}
        assert ARCHETYPES[archetype].expected <= found, (archetype, found)
    assert any(a.findings for _, a in shared)


def test_each_pattern_cuts_the_history_into_episodes_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cuts: list[str] = []
    original = timeline.episodes

    def counted(caller: str) -> Any:
        def cut(*args: Any, **kwargs: Any) -> Any:
            cuts.append(caller)
            return original(*args, **kwargs)

        return cut

    # regimen_events (visits-lag-changes) goes through timeline.episodes itself.
    monkeypatch.setattr(timeline, "episodes", counted("timeline"))
    monkeypatch.setattr(regimen_escalation, "episodes", counted("regimen-escalation"))
    monkeypatch.setattr(multiple_failed_trials, "episodes", counted("multiple-failed-trials"))
    archetype, seed = CASES[0]
    record = map_record([_bundle(archetype, seed)], TABLE, codes=CODES)
    engine.assess(record, (), SETTINGS.patterns, AS_OF)
    assert sorted(cuts) == ["multiple-failed-trials", "regimen-escalation", "timeline"]


def test_a_repeated_line_is_reused_only_without_its_dates() -> None:
    line = {
        "timing": {
            "repeat": {"frequency": 2, "period": 1, "periodUnit": "d",
                       "boundsPeriod": {"start": "2025-01-01"}}
        },
        "doseAndRate": [{"doseQuantity": {"value": 50, "code": "mg"}}],
    }
    later = {**line, "timing": {"repeat": {**line["timing"]["repeat"],  # type: ignore[dict-item]
                                           "boundsPeriod": {"start": "2025-06-01"}}}}
    stronger = {**later, "doseAndRate": [{"doseQuantity": {"value": 100, "code": "mg"}}]}
    sertraline = TABLE.get("sertraline")
    assert sertraline is not None
    medication = ResolvedMedication("sertraline 50 MG", (sertraline,), strength_mg=50.0)
    memo: dict[tuple[Any, ...], Any] = {}
    first = dosage.daily_dose_memo([line], medication, CODES, memo)
    assert dosage.daily_dose_memo([later], medication, CODES, memo) is first
    assert first.mg == 100.0
    assert dosage.daily_dose_memo([stronger], medication, CODES, memo).mg == 200.0
    # A two-step order reads its dates: never remembered.
    taper = [{**later, "sequence": 2}, {**line, "sequence": 1}]
    steps = dosage.daily_dose_memo(taper, medication, CODES, memo)
    assert steps == dosage.daily_dose(taper, medication, CODES)
    assert len(steps.steps) == 2
    assert len(memo) == 2
