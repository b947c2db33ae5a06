"""GET /admin/config: the merged settings for the admin token holder, secrets masked."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from tests.cds_service.web.test_errors import assert_error

TOKEN = "admin-token-for-tests-0123456789"


@pytest.fixture
def admin_settings(make_settings: Callable[..., Any], tmp_path: Any) -> Any:
    return make_settings({
        "auth": {"admin_token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()},
        "storage": {"patient_key_secret": "site-secret-abcdef"},
        "cache": {"redis_url": ""},
    })


@pytest.fixture
def admin_client(make_app: Callable[..., Flask], admin_settings: Any) -> Any:
    return make_app(admin_settings).test_client()


def test_admin_sees_the_merged_settings_with_secrets_masked(
    admin_client: Any, admin_settings: Any
) -> None:
    response = admin_client.get("/admin/config", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200
    body = response.get_json()
    assert body["config_version"] == admin_settings.config_version
    assert response.headers["X-Config-Version"] == admin_settings.config_version
    settings = body["settings"]
    assert settings["storage"]["patient_key_secret"] == "***"
    assert settings["auth"]["admin_token_sha256"] == "***"
    assert settings["patterns"]["repeated-intolerance"]["min_distinct_classes"] == 3
    assert settings["service"]["max_cards"] == 3
    text = response.get_data(as_text=True)
    assert "site-secret-abcdef" not in text
    assert hashlib.sha256(TOKEN.encode()).hexdigest() not in text


def test_database_passwords_are_masked(make_settings: Callable[..., Any]) -> None:
    from cds_service.web.admin import masked_settings

    settings = make_settings({"storage": {"url": "postgresql+psycopg://cds:pa55word@db:5432/audit"},
                              "cache": {"redis_url": "redis://:hunter2@cache:6379/0"}})

    data = masked_settings(settings)

    assert data["storage"]["url"] == "postgresql+psycopg://cds:***@db:5432/audit"
    assert data["cache"]["redis_url"] == "redis://:***@cache:6379/0"


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}"])
def test_without_the_admin_token_it_is_401(admin_client: Any, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}

    response = admin_client.get("/admin/config", headers=headers)

    assert_error(response, 401, "unauthorized")


def test_admin_api_is_off_without_a_configured_token(client: Any) -> None:
    response = client.get("/admin/config", headers={"Authorization": f"Bearer {TOKEN}"})

    assert_error(response, 401, "unauthorized")
