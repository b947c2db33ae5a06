"""Each pattern's Thresholds defaults are the numbers in config/default.yaml (one source of truth
for a reader of either)."""

from __future__ import annotations

from dataclasses import asdict
from types import ModuleType

import pytest
import yaml

from cds_service.patterns import ALL_PATTERNS
from config import DEFAULT_CONFIG


@pytest.mark.parametrize("module", ALL_PATTERNS, ids=lambda m: m.PATTERN_ID)
def test_dataclass_defaults_match_default_yaml(module: ModuleType) -> None:
    section = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))["patterns"]
    configured = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in section[module.PATTERN_ID].items()
        if k not in ("mode", "priority")
    }
    assert configured == asdict(module.Thresholds())
