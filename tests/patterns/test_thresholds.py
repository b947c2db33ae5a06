"""Thresholds live in config/default.yaml only: the dataclasses declare names and types, and every
name the code reads is set there. A site file that changes a value changes the behaviour (the
pattern tests use ``with_thresholds`` for that; test_site_config.py goes through a YAML file)."""

from __future__ import annotations

import dataclasses
from types import ModuleType

import pytest
import yaml

from cds_service.patterns import ALL_PATTERNS
from config import DEFAULT_CONFIG


@pytest.mark.parametrize("module", ALL_PATTERNS, ids=lambda m: m.PATTERN_ID)
def test_every_threshold_is_set_in_default_yaml_and_has_no_default_in_code(
    module: ModuleType,
) -> None:
    section = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))["patterns"]
    configured = set(section[module.PATTERN_ID]) - {"mode", "priority"}
    fields = dataclasses.fields(module.Thresholds)
    assert configured == {f.name for f in fields}
    assert all(f.default is dataclasses.MISSING for f in fields)
    assert all(f.default_factory is dataclasses.MISSING for f in fields)


@pytest.mark.parametrize("module", ALL_PATTERNS, ids=lambda m: m.PATTERN_ID)
def test_names_carry_their_unit(module: ModuleType) -> None:
    """A number of days ends in _days, a dose in _mg_per_day; other numbers are counts,
    fractions or scores and say so (min_/max_ counts, *_fraction, pdc_*, *_score)."""
    for f in dataclasses.fields(module.Thresholds):
        if f.type in ("int", "float"):
            assert f.name.endswith(("_days", "_mg_per_day", "_fraction", "_score")) or (
                f.name.startswith(("min_", "max_", "pdc_"))
            ), f.name


@pytest.mark.parametrize("module", ALL_PATTERNS, ids=lambda m: m.PATTERN_ID)
def test_every_days_threshold_is_a_declared_window_or_not_a_look_back(module: ModuleType) -> None:
    """The evidence horizon sums ``windows_days()``; each look-back window must be declared."""
    from tests.patterns.builders import defaults

    thresholds = defaults(module.PATTERN_ID)
    declared = thresholds.windows_days()
    assert declared and all(isinstance(d, int) and d > 0 for d in declared)
    look_backs = {
        "lookback_days",
        "window_days",
        "max_gap_since_visit_days",
        "restart_as_new_after_days",
        "baseline_window_days",
        "min_trial_days",
        "stale_order_days",
    }
    for f in dataclasses.fields(thresholds):
        if f.name in look_backs and module.PATTERN_ID != "regimen-escalation":
            if f.name == "stale_order_days" and module.PATTERN_ID != "psychotropic-polypharmacy":
                continue
            assert getattr(thresholds, f.name) in declared, f.name
