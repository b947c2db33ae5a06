"""Every fact a detector produces is declared in cards/facts.py, with a value of its kind, on
every positive FHIR fixture (so wording can only quote facts that exist)."""

from __future__ import annotations

from datetime import date

import pytest

from cards.facts import FACT_KINDS, NULLABLE_FACTS, FactKind
from cds_service.patterns import PATTERN_IDS
from tests.cards.conftest import detected
from tests.conftest import FIXTURES

POSITIVES = sorted(
    (pid, path.name) for pid in PATTERN_IDS for path in (FIXTURES / pid).glob("positive-*.json")
)
_TYPES: dict[FactKind, tuple[type, ...]] = {
    FactKind.COUNT: (int,),
    FactKind.DAYS: (int,),
    FactKind.MONTHS: (int,),
    FactKind.FRACTION: (float, int),
    FactKind.NAME: (str,),
    FactKind.NAMES: (list,),
    FactKind.FLAG: (bool,),
    FactKind.TRIGGER: (str,),
    FactKind.DRUG_CLASS: (str,),
    FactKind.DATE: (str,),
}


@pytest.mark.parametrize(("pattern_id", "name"), POSITIVES, ids=lambda v: str(v))
def test_detector_facts_match_the_contract(pattern_id: str, name: str) -> None:
    finding = detected(pattern_id, name)
    kinds = FACT_KINDS[pattern_id]
    assert set(finding.facts) == set(kinds)
    for key, value in finding.facts.items():
        if value is None:
            assert key in NULLABLE_FACTS, key
            continue
        assert isinstance(value, _TYPES[kinds[key]]), (key, value)
        if kinds[key] is FactKind.DATE:
            date.fromisoformat(str(value))
        if kinds[key] is FactKind.NAMES:
            assert all(isinstance(v, str) for v in value), key
