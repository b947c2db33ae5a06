"""``patterns.multiple-failed-trials.min_trial_days_by_class``: a mapping of drug class to days,
validated like the other day thresholds (each value > 0) and keyed by the ingredient table's
classes, so that a typo cannot quietly give antipsychotics the antidepressant criterion."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.settings import load_settings
from tests.cds_service.test_settings import problems_of, site

KEY = "patterns.multiple-failed-trials.min_trial_days_by_class"


def _site(tmp_path: Path, mapping: str) -> Path:
    return site(
        tmp_path, f"patterns:\n  multiple-failed-trials:\n    min_trial_days_by_class: {mapping}\n"
    )


def test_a_site_sets_a_class_minimum(tmp_path: Path) -> None:
    thresholds = (
        load_settings(_site(tmp_path, "{antipsychotic: 56}"))
        .pattern("multiple-failed-trials")
        .thresholds
    )
    assert thresholds.trial_days("antipsychotic") == 56
    assert thresholds.trial_days("antidepressant") == thresholds.min_trial_days


@pytest.mark.parametrize("days", [0, -42])
def test_a_class_minimum_must_be_positive(tmp_path: Path, days: int) -> None:
    (problem,) = problems_of(_site(tmp_path, f"{{antipsychotic: {days}}}"))
    assert problem == f"{KEY}.antipsychotic: must be greater than 0 (got {days})"


def test_an_unknown_class_is_an_error(tmp_path: Path) -> None:
    (problem,) = problems_of(_site(tmp_path, "{antipsychotics: 42}"))
    assert problem.startswith(f"{KEY}.antipsychotics")
