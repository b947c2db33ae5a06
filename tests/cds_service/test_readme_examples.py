"""Every YAML example in README.md is a site file that `psychopharm-cds check-config` accepts.

A reader copies these first; the README's own site file was once rejected (`mode: off` reads as
false in YAML).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cds_service import cli

README = Path(__file__).resolve().parents[2] / "README.md"
YAML_BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def yaml_examples() -> list[str]:
    return YAML_BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_readme_has_yaml_examples() -> None:
    assert yaml_examples(), "README.md has no ```yaml blocks"


@pytest.mark.parametrize("index", range(len(yaml_examples())))
def test_readme_yaml_example_passes_check_config(
    index: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(yaml_examples()[index], encoding="utf-8")
    status = cli.main(["check-config", str(path)])
    out = capsys.readouterr().out
    assert status == cli.EXIT_OK, out
    assert out.startswith("OK ")
