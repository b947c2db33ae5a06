"""Every YAML example in README.md is a site file that `psychopharm-cds check-config` accepts once
its `<...>` placeholders are filled in, and refuses while a secret is still a placeholder.

A reader copies these first; the README's own site file was once rejected (`mode: off` reads as
false in YAML), and once accepted with `patient_key_secret: "<long random site secret>"`.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from cds_service import cli

README = Path(__file__).resolve().parents[2] / "README.md"
YAML_BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.MULTILINE | re.DOTALL)
PLACEHOLDER = re.compile(r'"<[^">]*>"')


def yaml_examples() -> list[str]:
    return YAML_BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_readme_has_yaml_examples() -> None:
    assert yaml_examples(), "README.md has no ```yaml blocks"


@pytest.mark.parametrize("index", range(len(yaml_examples())))
def test_readme_yaml_example_passes_check_config(
    index: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "site.yaml"
    # What the README asks the reader to do: a long random value for each "<...>".
    filled = PLACEHOLDER.sub(lambda _: f'"{secrets.token_urlsafe(32)}"', yaml_examples()[index])
    path.write_text(filled, encoding="utf-8")
    status = cli.main(["check-config", str(path)])
    out = capsys.readouterr().out
    assert status == cli.EXIT_OK, out
    assert out.startswith("OK ")


@pytest.mark.parametrize(
    "index", [i for i, text in enumerate(yaml_examples()) if "secret" in text and "<" in text]
)
def test_a_readme_example_copied_verbatim_is_refused_for_its_placeholder_secret(
    index: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(yaml_examples()[index], encoding="utf-8")
    assert cli.main(["check-config", str(path)]) == cli.EXIT_FAILURE
    assert "placeholder" in capsys.readouterr().out
