"""``psychopharm-cds timeline``: the same picture offline, from a Bundle or a hook request."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cds_service import cli
from tests.cds_service.timeline.history import fifteen_ingredient_history

ROOT = Path(__file__).resolve().parents[2]


def write_bundle(tmp_path: Path) -> Path:
    resources = fifteen_ingredient_history()
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in resources]}
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def test_a_bundle_becomes_an_svg_with_one_lane_per_ingredient(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "timeline.svg"
    status = cli.main(["timeline", str(write_bundle(tmp_path)), "--out", str(out),
                       "--now", "2026-06-15", "--all",
                       "--highlight", "MedicationRequest/mr-lithium-2"])

    assert status == cli.EXIT_OK
    svg = out.read_text(encoding="utf-8")
    assert svg.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns=')
    assert svg.count('<g class="lane') == 15
    assert 'class="course evidence" data-ref="MedicationRequest/mr-lithium-2"' in svg
    assert "wrote" in capsys.readouterr().out


def test_the_default_window_follows_the_site_config(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("patterns:\n  multiple-failed-trials:\n    mode: 'off'\n", encoding="utf-8")
    out = tmp_path / "t.svg"
    assert cli.main(["timeline", str(write_bundle(tmp_path)), "--out", str(out),
                     "--now", "2026-06-15", "--config", str(site)]) == cli.EXIT_OK
    # 730 days (repeated-intolerance) once the 1095-day pattern is off.
    assert "from 2024-06-15 to 2026-06-15" in out.read_text(encoding="utf-8")


def test_a_hook_request_file_is_read_through_its_prefetch(tmp_path: Path) -> None:
    out = tmp_path / "ex.svg"
    example = ROOT / "examples" / "patient-view-repeated-intolerance.json"
    assert cli.main(["timeline", str(example), "--out", str(out), "--all",
                     "--now", "2026-06-15"]) == cli.EXIT_OK
    assert out.read_text(encoding="utf-8").count('<g class="lane') >= 3


@pytest.mark.parametrize("content, message", [(None, "cannot read"), ("{not json", "not valid")])
def test_unreadable_input_exits_1_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert cli.main(["timeline", str(path), "--out", str(tmp_path / "o.svg")]) == \
        cli.EXIT_FAILURE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.svg").exists()


def test_the_console_script_runs(tmp_path: Path) -> None:
    out = tmp_path / "t.svg"
    result = subprocess.run(
        [sys.executable, "-m", "cds_service.cli", "timeline", str(write_bundle(tmp_path)),
         "--out", str(out), "--now", "2026-06-15"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 10_000
