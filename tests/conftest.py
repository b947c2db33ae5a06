"""Shared fixtures (flaskr style): a fixed NOW, settings on a fresh SQLite file, app, client,
runner.

Fixture dates are relative to NOW, and NOW reaches the service as its clock, so no test depends on
the wall clock. Every test gets its own audit database under tmp_path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from cds_service.settings import Settings, deep_merge, load_settings

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def load_fixture() -> Callable[[str], Any]:
    """Parsed JSON of tests/fixtures/<name> (e.g. "requests/order-sign-sandbox.json")."""

    def load(name: str) -> Any:
        return json.loads((FIXTURES / name).read_text(encoding="utf-8"))

    return load


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Defaults + a tmp_path SQLite audit store and a site secret, ``overrides`` merged on top."""

    def make(overrides: Mapping[str, Any] | None = None) -> Settings:
        # A site secret, as every site that requires JWTs must set (the placeholder is refused).
        base = {"storage": {"url": f"sqlite:///{tmp_path / 'audit.sqlite3'}",
                            "patient_key_secret": "test-site-secret-0123456789"}}
        return load_settings(overrides=deep_merge(base, overrides or {}))

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    """Build apps from settings (clock fixed at NOW, testing on); all closed after the test."""
    from cds_service.web.app import create_app

    apps: list[Flask] = []

    def make(settings: Settings, **kwargs: Any) -> Flask:
        app = create_app(settings, clock=lambda: NOW, **kwargs)
        app.testing = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["psychopharm"].close()


@pytest.fixture
def app(make_app: Callable[..., Flask], settings: Settings) -> Flask:
    return make_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()
