"""Site configuration: defaults, layering, and every problem reported with its key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.errors import ConfigError
from cds_service.patterns import PATTERN_IDS
from cds_service.patterns.repeated_intolerance import Thresholds as IntoleranceThresholds
from cds_service.settings import load_settings


def site(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert str(path) in exc.value.message  # the error names the file
    return exc.value.problems


def test_defaults_load_with_every_pattern_and_a_config_version() -> None:
    settings = load_settings()
    assert set(settings.patterns) == set(PATTERN_IDS)
    assert isinstance(settings.pattern("repeated-intolerance").thresholds, IntoleranceThresholds)
    assert settings.auth.require_jwt is False
    assert settings.storage.url.startswith("sqlite:///")
    assert len(settings.config_version) == 16
    assert settings.source == "default"


def test_site_file_is_layered_over_the_defaults(tmp_path: Path) -> None:
    path = site(
        tmp_path,
        "patterns:\n  nonadherence:\n    mode: silent\n    pdc_below: 0.7\n"
        "storage:\n  queue_size: 50\n",
    )
    settings = load_settings(path)
    nonadherence = settings.pattern("nonadherence")
    assert (nonadherence.mode, nonadherence.thresholds.pdc_below) == ("silent", 0.7)
    assert nonadherence.thresholds.window_days == 180  # untouched default kept
    assert nonadherence.priority == 6
    assert settings.storage.queue_size == 50
    assert settings.source == str(path)
    assert settings.config_version != load_settings().config_version


def test_unknown_keys_are_errors_at_every_level(tmp_path: Path) -> None:
    path = site(
        tmp_path,
        "servce:\n  max_cards: 2\n"
        "fhir:\n  timeout_seconds: 3\n"
        "patterns:\n"
        "  repeated-intolerance:\n    min_distinct_agents: 3\n"
        "  made-up-pattern:\n    mode: active\n",
    )
    problems = problems_of(path)
    assert len(problems) == 4
    keys = [p.split(":")[0] for p in problems]
    assert set(keys) == {
        "servce",
        "fhir.timeout_seconds",
        "patterns.repeated-intolerance.min_distinct_agents",
        "patterns.made-up-pattern",
    }


def test_wrong_types_name_the_key(tmp_path: Path) -> None:
    path = site(
        tmp_path,
        "auth:\n  clock_skew_s: soon\n"
        "service:\n  hooks: yes\n"
        "patterns:\n  nonadherence:\n    mode: loud\n"
        "  multiple-failed-trials:\n    min_failed_trials: two\n",
    )
    keys = {p.split(":")[0] for p in problems_of(path)}
    assert keys == {
        "auth.clock_skew_s",
        "service.hooks",
        "patterns.nonadherence.mode",
        "patterns.multiple-failed-trials.min_failed_trials",
    }


@pytest.mark.parametrize(
    ("pattern", "key", "value"),
    [
        ("repeated-intolerance", "lookback_days", -30),
        ("regimen-escalation", "window_days", 0),
        ("visits-lag-changes", "min_changes", 0),
        ("nonadherence", "pdc_below", 1.5),
        ("multiple-failed-trials", "phq9_persisting_min_score", -1),
    ],
)
def test_impossible_threshold_values(tmp_path: Path, pattern: str, key: str, value: float) -> None:
    path = site(tmp_path, f"patterns:\n  {pattern}:\n    {key}: {value}\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"patterns.{pattern}.{key}: ")
    assert f"(got {value})" in problem


def test_smallest_valid_threshold_values_pass(tmp_path: Path) -> None:
    path = site(
        tmp_path,
        "patterns:\n  repeated-intolerance:\n    lookback_days: 1\n"
        "  nonadherence:\n    pdc_below: 1.0\n"
        "  multiple-failed-trials:\n    phq9_persisting_min_score: 0\n",
    )
    assert load_settings(path).pattern("repeated-intolerance").thresholds.lookback_days == 1


def test_bad_value_reported_alongside_an_unknown_key_in_the_same_section(tmp_path: Path) -> None:
    path = site(
        tmp_path, "patterns:\n  repeated-intolerance:\n    lookback_days: -1\n    typo: 3\n"
    )
    keys = {p.split(":")[0] for p in problems_of(path)}
    assert keys == {
        "patterns.repeated-intolerance.lookback_days",
        "patterns.repeated-intolerance.typo",
    }


def test_negative_storage_and_service_numbers(tmp_path: Path) -> None:
    path = site(
        tmp_path,
        "storage:\n  queue_size: -1\n  flush_interval_s: 0\n"
        "service:\n  max_cards: -2\n  suppression_days_after_override: -30\n",
    )
    keys = {p.split(":")[0] for p in problems_of(path)}
    assert keys == {
        "storage.queue_size",
        "storage.flush_interval_s",
        "service.max_cards",
        "service.suppression_days_after_override",
    }


def test_require_jwt_without_trusted_clients(tmp_path: Path) -> None:
    (problem,) = problems_of(site(tmp_path, "auth:\n  require_jwt: true\n"))
    assert problem.startswith("auth: ")
    assert "require_jwt is true but no trusted_clients" in problem


def test_require_jwt_with_a_trusted_client(tmp_path: Path) -> None:
    path = site(
        tmp_path,
        "auth:\n  require_jwt: true\n  trusted_clients:\n"
        "    - issuer: https://sandbox.cds-hooks.org\n"
        "      jwks_url: https://sandbox.cds-hooks.org/.well-known/jwks.json\n"
        "storage:\n  patient_key_secret: a-long-random-site-secret\n",
    )
    assert load_settings(path).auth.trusted_clients[0].issuer == "https://sandbox.cds-hooks.org"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///var/audit.sqlite3", "sqlite:///var/audit.sqlite3"),
        ("postgresql://cds@db/audit", "postgresql+psycopg://cds@db/audit"),
        ("postgres://cds@db/audit", "postgresql+psycopg://cds@db/audit"),
        ("postgresql+psycopg://cds@db/audit", "postgresql+psycopg://cds@db/audit"),
    ],
)
def test_storage_url_schemes(tmp_path: Path, url: str, expected: str) -> None:
    assert load_settings(site(tmp_path, f"storage:\n  url: {url}\n")).storage.url == expected


def test_unsupported_storage_url(tmp_path: Path) -> None:
    (problem,) = problems_of(site(tmp_path, "storage:\n  url: mysql://cds@db/audit\n"))
    assert problem.startswith("storage.url: ")


@pytest.mark.parametrize(
    "body",
    ["patterns:\n", "patterns:\n  nonadherence:\n", "patterns: [nonadherence]\n"],
    ids=["empty-patterns", "empty-section", "list"],
)
def test_empty_or_non_mapping_pattern_sections_are_errors(tmp_path: Path, body: str) -> None:
    (problem,) = problems_of(site(tmp_path, body))
    assert "must be a mapping" in problem


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(site(tmp_path, "auth: [unclosed\n"))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(site(tmp_path, "- a\n- b\n"))


@pytest.mark.parametrize("written", ["off", "false", "no", "'off'"])
def test_pattern_mode_off_however_yaml_reads_it(tmp_path: Path, written: str) -> None:
    # Unquoted, YAML 1.1 reads off/no/false as the boolean false.
    path = site(tmp_path, f"patterns:\n  regimen-escalation:\n    mode: {written}\n")
    assert load_settings(path).pattern("regimen-escalation").mode == "off"


@pytest.mark.parametrize("written", ["on", "true", "yes", "loud"])
def test_pattern_mode_true_or_unknown_is_an_error(tmp_path: Path, written: str) -> None:
    (problem,) = problems_of(site(tmp_path, f"patterns:\n  nonadherence:\n    mode: {written}\n"))
    assert problem.startswith("patterns.nonadherence.mode: ")
    assert "'active', 'silent' or 'off'" in problem


@pytest.mark.parametrize(
    ("secret", "placeholder"),
    [
        ("change-me-local-only", True),
        ("<long random site secret>", True),
        ("  <at least 32 random characters, the same on every worker>  ", True),
        ("CHANGEME-please-0123456789abcdef", True),
        ("q3C1kq9VYc0mZ8Yp3c9uJx2bQ1r8sT7wZ5nL4eD6fH0", False),
    ],
)
def test_placeholder_secrets_are_recognised(secret: str, placeholder: bool) -> None:
    from cds_service.settings import is_placeholder_secret

    assert is_placeholder_secret(secret) is placeholder


def test_a_placeholder_smart_session_secret_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(overrides={
            "service": {"public_base_url": "https://cds.example.org"},
            "smart": {"client_id": "psychopharm-timeline",
                      "session_secret": "<at least 32 random characters, the same everywhere>"},
        })  # fmt: skip
    assert any("not a placeholder" in p for p in info.value.problems)
