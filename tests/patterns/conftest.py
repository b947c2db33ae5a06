"""Fixtures for the pure pattern tests: the default pattern settings from config/default.yaml."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from cds_service.settings import PatternSettings, load_settings


@pytest.fixture(scope="session")
def pattern_settings() -> Mapping[str, PatternSettings]:
    """Every pattern active with its default thresholds (read-only, so shared per session)."""
    return load_settings().patterns
