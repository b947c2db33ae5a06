"""A site's `codes:` section (site.yaml) is deep-merged over config/codes.yaml: an informatics team
maps its own encounter classes and visit kinds without editing the bundled file, and check-config
and serve refuse a section that breaks the code lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service import cli
from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.settings import load_settings
from fhir_mappers import map_record

EPIC_SYSTEM = "urn:oid:1.2.840.114350.1.72.1.7.7.10.696784.13260"
TABLE = load_ingredient_table()


def encounter(klass: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Encounter", "id": "enc-1", "status": "finished", "class": klass,
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-11-02T09:00:00Z", "end": "2026-11-02T09:30:00Z"},
    }  # fmt: skip


def site_file(tmp_path: Path, codes: dict[str, Any]) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"codes": codes}), encoding="utf-8")
    return path


def visit_kind(site: Path | None, klass: dict[str, Any]) -> str:
    settings = load_settings(site)
    codes = load_code_lists(overrides=settings.codes)
    return map_record([encounter(klass)], TABLE, codes=codes, patient_id="p1").visits[0].kind


def test_a_site_class_map_makes_a_local_code_an_outpatient_visit(tmp_path: Path) -> None:
    local = {"system": "urn:oid:2.16.840.1.999.1", "code": "CLINIC-7"}
    assert visit_kind(None, local) == "unknown"
    bundled = yaml.safe_load(Path("config/codes.yaml").read_text(encoding="utf-8"))
    site = site_file(tmp_path, {"encounter_class_map": [
        *bundled["encounter_class_map"], {**local, "class": "AMB"},
    ]})  # fmt: skip
    assert visit_kind(site, local) == "outpatient"
    # The bundled entries are still there because the site list repeated them.
    assert visit_kind(site, {"system": EPIC_SYSTEM, "code": "5"}) == "outpatient"


def test_a_site_outpatient_class_list_is_the_one_the_mapper_uses(tmp_path: Path) -> None:
    amb = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}
    assert visit_kind(None, amb) == "outpatient"
    site = site_file(tmp_path, {"outpatient_encounter_classes": ["VR"]})
    assert visit_kind(site, amb) == "other"


def test_the_site_codes_change_the_config_version(tmp_path: Path) -> None:
    site = site_file(tmp_path, {"outpatient_encounter_classes": ["AMB", "VR"]})
    assert load_settings(site).config_version != load_settings(None).config_version


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ({"stop_reasons": ["allergy"]}, "codes:"),
        ({"scores": {"BDI-II": {"loinc": "89208-3"}}}, "unknown instrument"),
    ],
)
def test_check_config_refuses_site_codes_that_break_the_code_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], codes: dict[str, Any], expected: str
) -> None:
    site = site_file(tmp_path, codes)
    assert cli.main(["check-config", str(site)]) == cli.EXIT_FAILURE
    out = capsys.readouterr().out
    assert "site codes" in out and expected in out
