"""Findings for the card tests, produced by the detectors themselves from the realistic FHIR
fixtures in tests/fixtures/<pattern-id>/ (never written by hand), and the bundled wording.

``make_finding`` may replace facts to reach a wording variant, but only facts the pattern's
contract (cards/facts.py) declares, with a value of the declared kind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import cache
from typing import Any

import pytest

from cards.facts import FACT_KINDS, NULLABLE_FACTS, SAMPLES
from cards.wording import Wording
from cds_service.loaders import load_code_lists, load_ingredient_table, load_wording
from cds_service.patterns.base import Finding
from cds_service.patterns.engine import evaluate
from cds_service.settings import load_settings
from fhir_mappers.mapper import map_draft_orders, map_record
from tests.conftest import FIXTURES, NOW

# The detector run behind each pattern's test finding (an order-sign case where one exists, so
# the draft facts are real too).
SOURCE_FIXTURES: Mapping[str, str] = {
    "repeated-intolerance": "positive-order-sign-drafted-drug-not-tolerated-before.json",
    "psychotropic-polypharmacy": "positive-order-sign-draft-second-antipsychotic.json",
    "regimen-escalation": "positive-order-sign-draft-is-third-escalation.json",
    "multiple-failed-trials": "positive-patient-view-two-adequate-trials.json",
    "visits-lag-changes": "positive-order-sign-draft-is-third-change.json",
    "nonadherence": "positive-order-sign-dose-increase-draft.json",
}


@cache
def detected(pattern_id: str, name: str | None = None) -> Finding:
    """The finding the detector produces for a fixture of this pattern (at NOW)."""
    body = json.loads((FIXTURES / pattern_id / (name or SOURCE_FIXTURES[pattern_id])).read_text())
    table, codes = load_ingredient_table(), load_code_lists()
    record = map_record(list(body["prefetch"].values()), table, codes=codes)
    drafts = (
        map_draft_orders(body["context"]["draftOrders"], table, codes=codes)[0]
        if "draftOrders" in body["context"]
        else ()
    )
    patterns = load_settings().patterns
    findings = evaluate(record, drafts, patterns, NOW.date(), hook=body["hook"], raise_errors=True)
    return next(f for f in findings if f.pattern_id == pattern_id)


def make_finding(pattern_id: str, **facts: Any) -> Finding:
    """The detected finding for ``pattern_id``, with some facts replaced within the contract."""
    kinds = FACT_KINDS[pattern_id]
    for key, value in facts.items():
        assert key in kinds, f"{key} is not a declared fact of {pattern_id}"
        if value is None:
            assert key in NULLABLE_FACTS, f"{key} is never None"
            continue
        sample = SAMPLES[kinds[key]][0]
        assert isinstance(value, type(sample)) or (
            isinstance(sample, float) and isinstance(value, int | float)
        ), f"{key}: {value!r} is not a {kinds[key].value}"
    base = detected(pattern_id)
    return replace(base, facts={**base.facts, **facts})


@pytest.fixture(scope="session")
def wording() -> Mapping[str, Wording]:
    return load_wording()


@pytest.fixture(name="make_finding")
def make_finding_fixture() -> Callable[..., Finding]:
    return make_finding
