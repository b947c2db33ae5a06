"""Cards invite reflection and never blame: no stigmatizing words in the wording files or in any
card variant (psychotropic-domain.md §5.1). Written as if the patient will read them."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import yaml

from cards.builder import build_card
from cards.wording import WORDING_DIR, Wording
from cds_service.patterns import PATTERN_IDS
from cds_service.patterns.base import Finding

FORBIDDEN = [
    r"non-?complian",
    r"drug[- ]seeking",
    r"\brefus",
    r"\bfail",  # "failed 4 antidepressants", "treatment failure", "patient failed"
    r"nocebo patient",
    r"difficult patient",
    r"treatment[- ]resistant patient",
    r"\bnon-?adherent\b",
    r"\babus",
    r"\bclaims?\b",
    r"\binsists?\b",
    r"somati[sz]",
    r"in (?:their|his|her) head",
    r"manipulat",
    r"attention[- ]seeking",
]
PATTERN = re.compile("|".join(FORBIDDEN), re.IGNORECASE)
# Identifiers, not prose: the pattern id "multiple-failed-trials" is the public topic code; the
# links are sources cited by their full titles, verbatim ("Caring for the Treatment-Resistant
# Patient" is the title of Mintz's book).
NOT_PROSE = {"code", "system", "reference", "url", "pattern_id", "links"}

# Facts that select wording variants, with every value they take.
VARIANTS: Mapping[str, Mapping[str, tuple[object, ...]]] = {
    "psychotropic-polypharmacy": {"trigger": ("antipsychotics", "psychotropics", "both")},
    "visits-lag-changes": {
        "trigger": ("fewer_visits", "visit_gap", "both"),
        "days_since_last_visit": (120, None),
    },
    "nonadherence": {
        "pdc": (0.52, None),
        "days_since_supply_ran_out": (80, None),
        "dose_increase_in_draft": (True, False),
    },
    "multiple-failed-trials": {"trial_class": ("antidepressant", "antipsychotic")},
}


def _prose(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in NOT_PROSE:
                yield from _prose(v, f"{key}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _prose(v, f"{key}[{i}]")
    elif isinstance(value, str):
        yield key, value


def _fact_combinations(pattern_id: str) -> list[dict[str, object]]:
    options = VARIANTS.get(pattern_id, {})
    keys = list(options)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*options.values())]


@pytest.mark.parametrize("pattern_id", PATTERN_IDS)
def test_wording_file_has_no_stigmatizing_language(pattern_id: str) -> None:
    data = yaml.safe_load((WORDING_DIR / f"{pattern_id}.yaml").read_text(encoding="utf-8"))
    for key, text in _prose(data):
        prose = re.sub(r"\{\w+\}", "", text)  # placeholder names are fact keys, not prose
        assert not PATTERN.search(prose), f"{pattern_id}.yaml {key}: {text!r}"


@pytest.mark.parametrize("pattern_id", PATTERN_IDS)
def test_every_card_variant_has_no_stigmatizing_language(
    pattern_id: str, wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    for facts in _fact_combinations(pattern_id):
        card = build_card(
            make_finding(pattern_id, **facts),
            wording[pattern_id],
            patient_ref="Patient/1",
            practitioner_ref="Practitioner/2",
            encounter_ref=None,
        )
        for key, text in _prose(card):
            assert not PATTERN.search(text), f"{pattern_id} {facts} {key}: {text!r}"


@pytest.mark.parametrize("pattern_id", PATTERN_IDS)
def test_summaries_invite_rather_than_instruct(
    pattern_id: str, wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    for facts in _fact_combinations(pattern_id):
        card = build_card(
            make_finding(pattern_id, **facts),
            wording[pattern_id],
            patient_ref="Patient/1",
            practitioner_ref=None,
            encounter_ref=None,
        )
        assert "consider" in card["summary"].lower()
        assert not re.search(r"\b(must|stop|discontinue|do not)\b", card["summary"], re.I)
