"""The hand-written FHIR fixtures in tests/fixtures/<pattern-id>/, run through the real service.

Each file is one CDS Hooks request body, dated relative to NOW (2026-06-15). Its name says what a
reviewer should expect: ``positive-*`` -> the folder's pattern fires; ``near-miss-*`` (just under
one threshold) and ``negative-*`` (nothing there, or an exclusion) -> it does not. Every file is
checked three ways: the pure path (mapper + engine with the default settings), the HTTP endpoint
(the card whose ``source.topic.code`` is the pattern id), and strict FHIR R4 validation.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns import PATTERN_IDS
from cds_service.patterns.engine import evaluate
from cds_service.settings import PatternSettings, load_settings
from fhir_mappers.mapper import map_draft_orders, map_record
from fhir_mappers.medications import IngredientTable
from tests.conftest import FIXTURES, NOW

CASES = sorted(path for pid in PATTERN_IDS for path in (FIXTURES / pid).glob("*.json"))
SERVICE_OF_HOOK = {
    "patient-view": "psychopharm-patient-view",
    "order-sign": "psychopharm-order-sign",
}

# Each near miss fires once its one threshold moves past the fixture (so it misses by that
# threshold alone, not by some other accident of the chart). Near misses that an exclusion or a
# table value decides have no entry.
BOUNDARIES: Mapping[str, Mapping[str, Any]] = {
    "repeated-intolerance/near-miss-two-ingredients.json": {"min_distinct_classes": 2},
    "repeated-intolerance/near-miss-three-agents-two-classes.json": {"min_distinct_classes": 2},
    "repeated-intolerance/near-miss-three-ingredients-one-atc4-group.json": {
        "min_distinct_classes": 1
    },
    "repeated-intolerance/near-miss-third-event-25-months-ago.json": {"lookback_days": 761},
    "psychotropic-polypharmacy/near-miss-four-psychotropics.json": {
        "min_concurrent_psychotropics": 4
    },
    "psychotropic-polypharmacy/near-miss-one-antipsychotic-plus-lithium.json": {
        "min_concurrent_psychotropics": 3
    },
    "psychotropic-polypharmacy/near-miss-order-sign-cross-taper-56-days.json": {
        "min_overlap_days": 56
    },
    "regimen-escalation/near-miss-order-sign-two-escalations.json": {"min_escalations": 2},
    "regimen-escalation/near-miss-first-escalation-185-days-ago.json": {"window_days": 185},
    "regimen-escalation/near-miss-switch-within-30-days.json": {"switch_window_days": 29},
    "multiple-failed-trials/near-miss-second-trial-27-days.json": {"min_trial_days": 27},
    "multiple-failed-trials/near-miss-phq9-9-at-end.json": {"phq9_persisting_min_score": 9},
    "multiple-failed-trials/near-miss-phq9-31-days-before-end.json": {"score_window_days": 31},
    # The first trial's baseline and end lie 1200 and 1100 days back.
    "multiple-failed-trials/near-miss-first-trial-ended-over-36-months-ago.json": {
        "lookback_days": 1200
    },
    "visits-lag-changes/near-miss-two-changes-one-visit.json": {"min_changes": 2},
    "visits-lag-changes/near-miss-first-change-91-days-ago.json": {"window_days": 91},
    "visits-lag-changes/near-miss-last-visit-90-days-before-a-change.json": {
        "max_gap_since_visit_days": 89
    },
    "nonadherence/near-miss-pdc-exactly-080.json": {"pdc_below": 0.81},
    "nonadherence/near-miss-one-fill-lapsed-60-days.json": {"single_fill_lapsed_days": 59},
    # The older supply gap counts once the window reaches back to its fills.
    "nonadherence/near-miss-gap-before-the-180-day-window.json": {"window_days": 330},
}

CODES = load_code_lists()


def case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def expects_card(path: Path) -> bool:
    if path.name.startswith("positive-"):
        return True
    if path.name.startswith(("near-miss-", "negative-")):
        return False
    raise AssertionError(f"{case_id(path)}: name must start with positive-/near-miss-/negative-")


def load(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return body


@pytest.fixture(scope="module")
def table() -> IngredientTable:
    return load_ingredient_table()


def fired(
    body: Mapping[str, Any], table: IngredientTable, patterns: Mapping[str, PatternSettings]
) -> list[str]:
    """Pattern ids the engine reports for this request at NOW; the mapping must be clean."""
    record = map_record(list(body["prefetch"].values()), table, codes=CODES)
    drafts, draft_issues = (
        map_draft_orders(body["context"]["draftOrders"], table, codes=CODES)
        if "draftOrders" in body["context"]
        else ((), ())
    )
    assert record.issues == ()
    assert draft_issues == ()
    findings = evaluate(record, drafts, patterns, NOW.date(), hook=body["hook"], raise_errors=True)
    return [f.pattern_id for f in findings]


def test_every_pattern_has_its_boundary_pairs_and_a_readme() -> None:
    for pid in PATTERN_IDS:
        names = {p.name for p in (FIXTURES / pid).glob("*.json")}
        hooks = {n: load(FIXTURES / pid / n)["hook"] for n in names}
        positives = [n for n in names if n.startswith("positive-")]
        assert any(hooks[n] == "patient-view" for n in positives), pid
        assert any(hooks[n] == "order-sign" for n in positives), pid
        assert any(n.startswith("near-miss-") for n in names), pid
        assert {
            "negative-no-psychotropics.json",
            "negative-order-sign-non-psychotropic-draft.json",
        } <= names, pid
        readme = (FIXTURES / pid / "README.md").read_text(encoding="utf-8")
        listed = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")}
        assert listed == names, pid
    assert set(BOUNDARIES) <= {case_id(p) for p in CASES}


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_engine_result_matches_the_file_name(
    path: Path, table: IngredientTable, pattern_settings: Mapping[str, PatternSettings]
) -> None:
    pattern_ids = fired(load(path), table, pattern_settings)

    assert (path.parent.name in pattern_ids) == expects_card(path), pattern_ids


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_endpoint_shows_the_card_only_for_positives(path: Path, client: Any) -> None:
    body = load(path)

    response = client.post(f"/cds-services/{SERVICE_OF_HOOK[body['hook']]}", json=body)

    assert response.status_code == 200, response.get_data(as_text=True)
    topics = [card["source"]["topic"]["code"] for card in response.get_json()["cards"]]
    assert (path.parent.name in topics) == expects_card(path), topics


@pytest.mark.parametrize(
    "name", sorted(BOUNDARIES), ids=lambda name: name.split("/")[1].removesuffix(".json")
)
def test_near_miss_fires_once_its_threshold_moves(name: str, table: IngredientTable) -> None:
    pid = name.split("/")[0]
    moved = load_settings(overrides={"patterns": {pid: dict(BOUNDARIES[name])}}).patterns

    assert pid in fired(load(FIXTURES / name), table, moved)


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_fixture_resources_are_valid_fhir_r4(path: Path) -> None:
    body = load(path)
    for value in body["prefetch"].values():
        if value is not None:  # null = "no data" (CDS Hooks 2.0)
            get_fhir_model_class(value["resourceType"]).model_validate(value)
    if "draftOrders" not in body["context"]:
        return
    # The two known CDS Hooks sandbox quirks are kept on purpose (the mapper must read them), so
    # they are relaxed here, explicitly, and everything else must be strict R4: draftOrders
    # without Bundle.type, and MedicationRequest.category as one object instead of an array.
    drafts = copy.deepcopy(body["context"]["draftOrders"])
    assert "type" not in drafts
    drafts["type"] = "collection"
    for entry in drafts["entry"]:
        order = entry["resource"]
        assert (order["resourceType"], order["status"], order["intent"]) == (
            "MedicationRequest",
            "draft",
            "order",
        )
        assert isinstance(order["category"], dict)
        order["category"] = [order["category"]]
    get_fhir_model_class("Bundle").model_validate(drafts)
