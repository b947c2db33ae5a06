"""Mapping only what the patterns can read (the evidence horizon) never changes a finding.

The service maps with ``horizon=evidence_horizon(settings.patterns, now)`` and
``order_horizon=order_reach.order_horizon(settings.patterns, now)``; the backtest maps with the
first only (its report also reads the latest order and every mapping issue), the pure tests map
everything. These tests hold the paths equal (findings with their evidence and references, and
abstentions) on every hand-written fixture and on synthetic patients of every archetype, under
the default settings and under a site configuration whose windows are twice as long.
``test_order_horizon`` adds the benchmark's long histories and a property test.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns import PATTERN_IDS
from cds_service.patterns.engine import (
    HORIZON_MARGIN_DAYS,
    assess,
    evidence_horizon,
    visit_horizon,
)
from cds_service.patterns.order_reach import order_horizon
from cds_service.settings import PatternSettings, load_settings
from cds_service.synthetic.archetypes import ARCHETYPES
from cds_service.synthetic.population import generate_patient
from fhir_mappers.mapper import map_draft_orders, map_record
from tests.conftest import FIXTURES, NOW

TABLE = load_ingredient_table()
DEFAULTS = load_settings().patterns
CASES = sorted(path for pid in PATTERN_IDS for path in (FIXTURES / pid).glob("*.json"))

CODES = load_code_lists()


def _widened(patterns: Mapping[str, PatternSettings]) -> dict[str, PatternSettings]:
    """Every ``*_days`` threshold doubled: a site that looks further back."""
    wide = {}
    for pid, ps in patterns.items():
        doubled = {
            f.name: getattr(ps.thresholds, f.name) * 2
            for f in dataclasses.fields(ps.thresholds)
            if f.name.endswith("_days")
        }
        thresholds = dataclasses.replace(ps.thresholds, **doubled)
        wide[pid] = ps.model_copy(update={"thresholds": thresholds})
    return wide


SETTINGS = {"default": DEFAULTS, "windows-doubled": _widened(DEFAULTS)}


def assert_same_assessment(
    resources: list[Any],
    drafts: Any,
    patterns: Mapping[str, PatternSettings],
    now: date,
    hook: str,
) -> tuple[int, int]:
    """Asserts equal findings (evidence and references included) and abstentions with and
    without the horizons; returns how many visits and scores, and how many orders and
    statements, the horizons left unmapped."""
    full = map_record(resources, TABLE, codes=CODES)
    bounded = map_record(
        resources,
        TABLE,
        horizon=evidence_horizon(patterns, now),
        order_horizon=order_horizon(patterns, now),
        visit_horizon=visit_horizon(patterns, now),
        codes=CODES,
    )
    expected = assess(full, drafts, patterns, now, hook=hook, raise_errors=True)
    got = assess(bounded, drafts, patterns, now, hook=hook, raise_errors=True)
    assert got == expected
    assert repr(got) == repr(expected)  # the same evidence, in the same order
    return (
        (len(full.visits) + len(full.scores)) - (len(bounded.visits) + len(bounded.scores)),
        len(full.courses) - len(bounded.courses),
    )


class FixtureCall(NamedTuple):
    """What a hook-request fixture gives the mapper and the engine."""

    resources: list[Any]  # the prefetch values that are not null
    drafts: Any  # the mapped context.draftOrders, () without them
    hook: str
    patient_id: str


def fixture_call(path: Path) -> FixtureCall:
    """The prefetch values, mapped draft orders, hook and patient of a fixture request."""
    body = json.loads(path.read_text(encoding="utf-8"))
    context = body["context"]
    drafts: Any = ()
    if "draftOrders" in context:
        drafts, _ = map_draft_orders(context["draftOrders"], TABLE, codes=CODES)
    resources = [v for v in (body.get("prefetch") or {}).values() if v is not None]
    return FixtureCall(resources, drafts, body["hook"], context["patientId"])


@pytest.mark.parametrize("config", sorted(SETTINGS))
@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_findings_do_not_depend_on_the_horizon(path: Path, config: str) -> None:
    call = fixture_call(path)
    assert_same_assessment(call.resources, call.drafts, SETTINGS[config], NOW.date(), call.hook)


def archetype_history(archetype: str, seed: int, as_of: date) -> list[dict[str, Any]]:
    """Six years of a synthetic patient of ``archetype`` (400 resources, padded with old visits
    and scores: the case the horizon exists for), as a list of resources."""
    bundle = generate_patient(
        random.Random(seed), as_of, archetype, index=seed, history_years=6, n_resources=400
    )
    return [e["resource"] for e in bundle["entry"]]


@pytest.mark.parametrize("config", sorted(SETTINGS))
@pytest.mark.parametrize("archetype", sorted(ARCHETYPES))
def test_synthetic_findings_do_not_depend_on_the_horizon(archetype: str, config: str) -> None:
    as_of = date(2026, 11, 26)
    skipped = 0
    for seed in range(4):
        skipped += assert_same_assessment(
            archetype_history(archetype, seed, as_of), (), SETTINGS[config], as_of,
            "patient-view",
        )[0]
    assert skipped > 0  # the comparison is not vacuous: old data was really left out


@pytest.mark.parametrize("config", sorted(SETTINGS))
@pytest.mark.parametrize("archetype", sorted(ARCHETYPES))
def test_synthetic_findings_do_not_depend_on_the_order_horizon(
    archetype: str, config: str
) -> None:
    """Eight and twelve years of history (noise drugs and routine care back to the start),
    judged on the day the history ends and on later days (the record has aged)."""
    as_of = date(2026, 11, 26)
    for seed in range(3):
        bundle = generate_patient(
            random.Random(seed), as_of, archetype, index=seed, history_years=8 + 4 * (seed % 2)
        )
        resources = [e["resource"] for e in bundle["entry"]]
        for later in (0, 45, 400):
            assert_same_assessment(
                resources, (), SETTINGS[config], as_of + timedelta(days=later), "patient-view"
            )


def test_the_horizon_covers_the_longest_enabled_look_back() -> None:
    now = date(2026, 6, 15)
    # multiple-failed-trials reaches furthest: 1095 look-back + 28 trial + 30 score window.
    assert evidence_horizon(DEFAULTS, now) == now - timedelta(days=1153 + HORIZON_MARGIN_DAYS)
    off = {
        pid: ps.model_copy(update={"mode": "off"}) if pid == "multiple-failed-trials" else ps
        for pid, ps in DEFAULTS.items()
    }
    # Next furthest: repeated-intolerance's 730 days.
    assert evidence_horizon(off, now) == now - timedelta(days=730 + HORIZON_MARGIN_DAYS)


def _encounter(
    eid: str, start: str, end: str | None = None, *, cls: str = "AMB", status: str = "finished"
) -> dict[str, Any]:
    period = {"start": start, **({"end": end} if end else {})}
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
        "subject": {"reference": "Patient/p1"},
        "period": period,
    }


def _phq9(oid: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
        "valueInteger": 14,
    }


def test_old_encounters_and_scores_are_skipped_but_the_last_visit_is_kept() -> None:
    resources = [
        _encounter("old-1", "2019-02-01T09:00:00Z", "2019-02-01T09:30:00Z"),
        _encounter("old-2", "2020-03-01", "2020-03-01"),  # the latest outpatient visit before
        _encounter("old-ward", "2020-05-01", "2020-05-09", cls="IMP"),  # later, but inpatient
        _encounter("recent", "2026-05-02", "2026-05-02"),
        _encounter("open-stay", "2020-01-01", status="in-progress", cls="IMP"),
        _phq9("phq-old", "2020-01-15"),
        _phq9("phq-recent", "2026-04-01T10:00:00+02:00"),
        _phq9("phq-undated", "not a date"),
        {"resourceType": "Encounter", "id": "junk", "status": ["finished"], "period": []},
    ]
    record = map_record(resources, TABLE, horizon=date(2023, 1, 1), codes=CODES)

    assert sorted(v.ref for v in record.visits) == [
        "Encounter/junk",
        "Encounter/old-2",
        "Encounter/open-stay",
        "Encounter/recent",
    ]
    # The malformed date is not skipped: it is mapped and reported, as without a horizon.
    assert sorted(s.ref for s in record.scores) == [
        "Observation/phq-recent",
        "Observation/phq-undated",
    ]
    assert sorted(i.field for i in record.issues) == ["effectiveDateTime", "status"]


def _typed(encounter: dict[str, Any], words: str) -> dict[str, Any]:
    return {**encounter, "type": [{"text": words}]}


@pytest.mark.parametrize("count_untyped", [True, False])
@pytest.mark.parametrize(
    "old_visits",
    [
        pytest.param(
            [("old-review", "Psychiatric follow up"), ("old-lab", "Laboratory blood draw")],
            id="a-lab-draw-after-the-last-review",
        ),
        pytest.param(
            [("old-review", "Psychiatric follow up"), ("old-untyped", None),
             ("old-lab", "Laboratory blood draw")],
            id="an-untyped-visit-and-a-lab-draw-after-it",
        ),
        pytest.param(
            [("old-review-no-class", "Psychiatric follow up"),
             ("old-lab", "Laboratory blood draw")],
            id="a-review-of-unreadable-class-and-a-lab-draw-after-it",
        ),
    ],
)
def test_the_last_review_visit_before_the_horizon_is_the_one_the_full_record_gives(
    old_visits: list[tuple[str, str | None]], count_untyped: bool
) -> None:
    """Nothing for years but visits-lag-changes' "days since the last visit": the visit it
    counts is the latest review visit, which need not be the latest outpatient visit (a lab
    draw is not a review; an untyped visit counts only with ``count_untyped_visits``)."""
    path = FIXTURES / "visits-lag-changes" / "positive-visit-gap-over-90-days-before-a-change.json"
    body = json.loads(path.read_text(encoding="utf-8"))
    prefetch = body["prefetch"]
    visits = []
    for years_back, (eid, words) in enumerate(reversed(old_visits), start=4):
        day = f"{NOW.year - years_back}-03-01"
        encounter = _encounter(eid, day, day)
        if eid.endswith("-no-class"):  # a class the data do not give: its type decides
            encounter = {k: v for k, v in encounter.items() if k != "class"}
        visits.append(_typed(encounter, words) if words else encounter)
    prefetch["encounters"] = {"resourceType": "Bundle", "type": "searchset",
                              "entry": [{"resource": v} for v in visits]}
    resources = [v for v in prefetch.values() if v is not None]
    patterns = {
        pid: ps if pid != "visits-lag-changes" else ps.model_copy(update={
            "thresholds": dataclasses.replace(ps.thresholds, count_untyped_visits=count_untyped)
        })
        for pid, ps in DEFAULTS.items()
    }
    assert_same_assessment(resources, (), patterns, NOW.date(), "patient-view")
    full = assess(map_record(resources, TABLE, codes=CODES), (), patterns, NOW.date())
    finding = next(f for f in full.findings if f.pattern_id == "visits-lag-changes")
    review = f"{NOW.year - 4 - len(old_visits) + 1}-03-01"
    untyped = f"{NOW.year - 5}-03-01" if len(old_visits) == 3 else review
    assert finding.facts["last_visit"] == (untyped if count_untyped else review)


def test_visits_are_read_over_the_declared_visit_windows_only() -> None:
    now = date(2026, 6, 15)
    # visits-lag-changes: 90-day window + 90-day gap; nonadherence: its 180-day PDC window.
    assert visit_horizon(DEFAULTS, now) == now - timedelta(days=180 + HORIZON_MARGIN_DAYS)
    wide = SETTINGS["windows-doubled"]
    assert visit_horizon(wide, now) == now - timedelta(days=360 + HORIZON_MARGIN_DAYS)
    # Every pattern says which visits it reads; one that did not would be read as reading them
    # over its whole reach, which puts the visit horizon back at the evidence horizon.
    for pid, ps in DEFAULTS.items():
        assert hasattr(ps.thresholds, "visit_windows_days"), pid


def test_visits_before_the_visit_horizon_are_not_mapped_but_the_last_review_visit_is() -> None:
    now = date(2026, 6, 15)
    resources = [
        _typed(_encounter("review-2024", "2024-01-10", "2024-01-10"), "Psychiatric follow up"),
        _typed(_encounter("lab-2025", "2025-06-01", "2025-06-01"), "Laboratory blood draw"),
        _encounter("ward-2025", "2025-08-01", "2025-08-09", cls="IMP"),
        _typed(_encounter("review-2026", "2026-05-02", "2026-05-02"), "Psychiatric follow up"),
    ]
    record = map_record(
        resources, TABLE, codes=CODES, horizon=evidence_horizon(DEFAULTS, now),
        visit_horizon=visit_horizon(DEFAULTS, now),
    )
    assert sorted(v.ref for v in record.visits) == [
        "Encounter/review-2024",  # the latest review visit before the horizon
        "Encounter/review-2026",
    ]
