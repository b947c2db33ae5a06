"""The ``smart:`` section: off by default, strict keys, and what an enabled app needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.errors import ConfigError
from cds_service.settings import load_settings
from cds_service.web.admin import masked_settings


def problems(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "site.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    return exc.value.problems


def test_the_app_is_off_by_default() -> None:
    smart = load_settings().smart
    assert smart.enabled is False
    assert smart.scopes == ("launch", "openid", "fhirUser")


def test_a_complete_section_enables_the_app(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "service:\n  public_base_url: https://cds.example.org/\n"
        "smart:\n  client_id: timeline-app\n  session_secret: " + "x" * 32 + "\n",
        encoding="utf-8",
    )
    settings = load_settings(path)
    assert settings.smart.enabled and settings.smart.client_secret == ""
    assert settings.service.public_base_url == "https://cds.example.org"


def test_unknown_smart_keys_are_errors(tmp_path: Path) -> None:
    found = problems(tmp_path, "smart:\n  clientid: timeline-app\n  scope: [launch]\n")
    assert sorted(p.split(":")[0] for p in found) == ["smart.clientid", "smart.scope"]


def test_a_client_id_needs_a_shared_session_secret(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "service:\n  public_base_url: https://cds.example.org\n"
        "smart:\n  client_id: timeline-app\n  session_secret: " + "x" * 31 + "\n",
    )
    assert len(found) == 1 and "session_secret must be set" in found[0]


def test_a_client_id_needs_the_public_base_url(tmp_path: Path) -> None:
    found = problems(tmp_path, "smart:\n  client_id: a\n  session_secret: " + "x" * 40 + "\n")
    assert len(found) == 1 and "service.public_base_url is empty" in found[0]


def test_scopes_with_spaces_are_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, "smart:\n  scopes: ['launch openid']\n")
    assert found and found[0].startswith("smart.scopes")


def test_admin_config_masks_the_smart_secrets() -> None:
    settings = load_settings(overrides={
        "service": {"public_base_url": "https://cds.example.org"},
        "smart": {"client_id": "a", "client_secret": "cs-123", "session_secret": "y" * 40},
    })
    smart = masked_settings(settings)["smart"]
    assert smart["client_secret"] == smart["session_secret"] == "***"
    assert smart["client_id"] == "a"
