"""The wording files load, and a broken edit is rejected at startup naming the file and key."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from cards.facts import FACT_KINDS
from cards.wording import WORDING_DIR, Wording
from cds_service.loaders import WordingError, load_wording
from cds_service.patterns import PATTERN_IDS

Raw = dict[str, Any]


def test_every_pattern_has_validated_wording(wording: Mapping[str, Wording]) -> None:
    assert set(wording) == set(PATTERN_IDS)
    for pattern_id, w in wording.items():
        assert w.pattern_id == pattern_id
        assert w.override_reasons and w.links
        assert all(link.url.startswith("https://") for link in w.links)


def test_fact_contract_covers_exactly_the_registered_patterns() -> None:
    assert set(FACT_KINDS) == set(PATTERN_IDS)


@pytest.fixture
def edit_wording(tmp_path: Path) -> Callable[[str, Callable[[Raw], object]], Path]:
    """Copy the bundled wording to tmp_path and apply ``change`` to one file's data."""
    directory = tmp_path / "wording"
    shutil.copytree(WORDING_DIR, directory)

    def edit(pattern_id: str, change: Callable[[Raw], object]) -> Path:
        path = directory / f"{pattern_id}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return directory

    return edit


def _problems(directory: Path) -> str:
    with pytest.raises(WordingError) as info:
        load_wording(directory)
    return str(info.value)


def _set(key: str, value: object) -> Callable[[Raw], object]:
    return lambda data: data.__setitem__(key, value)


BROKEN = [
    pytest.param(
        "regimen-escalation", lambda d: d.pop("why"), "why: Field required", id="missing-key"
    ),
    pytest.param("nonadherence", _set("colour", "blue"), "colour: unknown key", id="unknown-key"),
    pytest.param(
        "repeated-intolerance",
        _set("summary", "Side effects with {patient_name} psychotropics: consider exploring"),
        "summary.0.text: unknown placeholder {patient_name}",
        id="placeholder-not-a-fact",
    ),
    pytest.param(
        "regimen-escalation",
        _set("why", "{pdc} of days covered"),  # a nonadherence fact, not this pattern's
        "why.0.text: unknown placeholder {pdc}",
        id="placeholder-of-another-pattern",
    ),
    pytest.param(
        "repeated-intolerance",
        _set("summary", "Side effects with {ingredient_count:>5} psychotropics"),
        "summary.0.text: placeholder {ingredient_count} must not carry a format spec",
        id="format-spec",
    ),
    pytest.param(
        "repeated-intolerance",
        _set(
            "summary",
            "Side effects with {ingredient_count} psychotropics ({ingredients}) in "
            "{window_months} months, across {class_count} classes: consider exploring "
            "expectations and fears before another new agent",
        ),
        "summary.0.text: can reach",
        id="summary-too-long-with-realistic-values",
    ),
    pytest.param(
        "visits-lag-changes",
        lambda d: d["summary"].pop(),  # the default (no `when`) variant
        "summary.2.when: the last variant is the default",
        id="no-default-variant",
    ),
    pytest.param(
        "psychotropic-polypharmacy",
        lambda d: d["source"].pop(),  # the default (no `when`) source
        "source.1.when: the last variant is the default",
        id="no-default-source",
    ),
    pytest.param(
        "psychotropic-polypharmacy",
        lambda d: d["source"][0].__setitem__("when", {"trigger": "sedatives"}),
        "source.0.when.trigger: 'sedatives' is not one of",
        id="source-for-an-unknown-trigger",
    ),
    pytest.param(
        "psychotropic-polypharmacy",
        lambda d: d["summary"][0]["when"].__setitem__("trigger", "antipsychotic"),
        "summary.0.when.trigger: 'antipsychotic' is not one of",
        id="when-value-typo",
    ),
    pytest.param(
        "nonadherence",
        lambda d: d["override_reasons"].append({"code": "noncompliant", "display": "x"}),
        "override_reasons.6.code",
        id="unstable-override-code",
    ),
    pytest.param(
        "nonadherence",
        lambda d: d["override_reasons"][0].pop("display"),
        "override_reasons.0.display: Field required",
        id="override-without-display",
    ),
    pytest.param(
        "regimen-escalation",
        lambda d: d["suggestions"][1].__setitem__("recommended", True),
        "suggestions: at most one suggestion may be recommended",
        id="two-recommended",
    ),
    pytest.param(
        "regimen-escalation",
        lambda d: d["links"][0].__setitem__("url", "www.appi.org"),
        "links.0.url",
        id="relative-link",
    ),
    pytest.param(
        "multiple-failed-trials",
        lambda d: d.__setitem__("detail", d["detail"].replace("{consider}", "")),
        "detail: must contain the {consider} section",
        id="detail-without-consider",
    ),
    pytest.param(
        "multiple-failed-trials",
        _set(
            "consider", "Consider " + "seeing the patient more often, " * 8 + "and a consultation."
        ),
        "detail: can reach",
        id="detail-over-700-characters",
    ),
    pytest.param(
        "regimen-escalation",
        lambda d: d["suggestions"][0].__setitem__(
            "system", "https://psychopharm-cds.org/fhir/CodeSystem/suggestion"
        ),
        "suggestions.0: a requested service needs a SNOMED CT code",
        id="service-request-without-snomed",
    ),
    pytest.param(
        "regimen-escalation",
        lambda d: d["suggestions"][0].__setitem__("code", "follow-up"),
        "suggestions.0.code: 'follow-up' is not a SNOMED CT code",
        id="snomed-code-not-numeric",
    ),
    pytest.param(
        "regimen-escalation",
        lambda d: d["suggestions"][0].pop("for_weeks"),
        "suggestions.0: every_weeks and for_weeks go together",
        id="interval-without-duration",
    ),
    pytest.param(
        "nonadherence",
        lambda d: d["suggestions"][0].__setitem__("resource", "MedicationRequest"),
        "suggestions.0.resource",
        id="unsupported-resource",
    ),
    pytest.param(
        "visits-lag-changes",
        _set("pattern_id", "nonadherence"),
        "pattern_id: 'nonadherence' does not match the file name",
        id="pattern-id-mismatch",
    ),
]


@pytest.mark.parametrize(("pattern_id", "change", "expected"), BROKEN)
def test_broken_wording_is_rejected_naming_file_and_key(
    edit_wording: Callable[[str, Callable[[Raw], object]], Path],
    pattern_id: str,
    change: Callable[[Raw], object],
    expected: str,
) -> None:
    message = _problems(edit_wording(pattern_id, change))
    line = next(line for line in message.splitlines() if expected in line)
    assert f"{pattern_id}.yaml" in line


def test_missing_file_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "wording"
    shutil.copytree(WORDING_DIR, directory)
    (directory / "nonadherence.yaml").unlink()
    assert "nonadherence.yaml: missing wording file" in _problems(directory)


def test_unknown_file_and_bad_yaml_are_named(tmp_path: Path) -> None:
    directory = tmp_path / "wording"
    shutil.copytree(WORDING_DIR, directory)
    (directory / "sedative-reliance.yaml").write_text("title: x\n", encoding="utf-8")
    (directory / "nonadherence.yaml").write_text("title: [unclosed\n", encoding="utf-8")
    message = _problems(directory)
    assert "sedative-reliance.yaml: file name is not a known pattern id" in message
    assert "nonadherence.yaml: cannot read" in message


def test_every_problem_is_reported_at_once(
    edit_wording: Callable[[str, Callable[[Raw], object]], Path],
) -> None:
    edit_wording("nonadherence", _set("why", "{nope}"))
    directory = edit_wording("regimen-escalation", lambda d: d.pop("title"))
    message = _problems(directory)
    assert "nonadherence.yaml: why.0.text: unknown placeholder {nope}" in message
    assert "regimen-escalation.yaml: title: Field required" in message


def test_wording_error_is_a_config_error() -> None:
    from cds_service.errors import ConfigError

    assert issubclass(WordingError, ConfigError)
