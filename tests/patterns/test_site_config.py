"""Every clinical number the patterns use is read from configuration: a site file that changes a
value changes the behaviour (config/default.yaml -> site.yaml -> load_settings -> detect)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.patterns import ALL_PATTERNS
from cds_service.settings import load_settings
from fhir_mappers.record import MedicationCourse, PatientRecord

from .builders import (
    ARIPIPRAZOLE,
    CLOZAPINE,
    ESCITALOPRAM,
    LORAZEPAM,
    NOW,
    QUETIAPINE,
    RISPERIDONE,
    SERTRALINE,
    VENLAFAXINE,
    course,
    days_ago,
    dispense,
    intolerance,
    phq9,
    visit,
)

MODULES = {m.PATTERN_ID: m for m in ALL_PATTERNS}


@dataclass(frozen=True)
class Case:
    pattern_id: str
    site: dict[str, Any]  # the pattern's section of the site file
    record: Callable[[], PatientRecord]
    drafts: tuple[MedicationCourse, ...] = ()


def _gap_of_40_days() -> PatientRecord:
    """Escitalopram 10 mg, 40 days off, 20 mg for 20 days then stopped for lack of effect; plus an
    earlier sertraline trial that did not help."""
    return PatientRecord(
        courses=(
            course(
                SERTRALINE,
                days_ago(700),
                mg=150,
                end=days_ago(600),
                status="stopped",
                stop_reason="lack_of_effect",
            ),
            course(ESCITALOPRAM, days_ago(400), mg=10, end=days_ago(380), status="completed"),
            course(
                ESCITALOPRAM,
                days_ago(340),
                mg=20,
                end=days_ago(320),
                status="stopped",
                stop_reason="lack_of_effect",
            ),
        )
    )


def _clozapine_plus_one() -> PatientRecord:
    return PatientRecord(
        courses=(course(CLOZAPINE, days_ago(300), mg=400), course(ARIPIPRAZOLE, days_ago(100)))
    )


def _restart_after_200_days() -> PatientRecord:
    return PatientRecord(
        courses=(
            course(SERTRALINE, days_ago(600), mg=100, end=days_ago(240), status="stopped"),
            course(SERTRALINE, days_ago(40), mg=100),
            course(ESCITALOPRAM, days_ago(100), mg=10),
            course(ARIPIPRAZOLE, days_ago(20), mg=5),
        )
    )


def _changes_with_unclassified_visits() -> PatientRecord:
    visits = tuple(
        replace(visit(days_ago(d)), type_codes=(), prescriber_visit=None) for d in (85, 60, 30)
    )
    return PatientRecord(
        courses=(
            course(SERTRALINE, days_ago(200), mg=50, end=days_ago(80), status="completed"),
            course(SERTRALINE, days_ago(80), mg=100),
            course(QUETIAPINE, days_ago(50), mg=50),
            course(LORAZEPAM, days_ago(300), mg=1, end=days_ago(20), status="stopped"),
        ),
        visits=visits,
    )


def _one_lapsed_fill() -> PatientRecord:
    return PatientRecord(
        courses=(course(SERTRALINE, days_ago(200), mg=50),),
        dispenses=(dispense(SERTRALINE, days_ago(151), 90),),
    )


def _three_classes_one_urticaria() -> PatientRecord:
    return PatientRecord(
        intolerances=(
            intolerance(SERTRALINE, days_ago(400), manifestations=("Nausea",)),
            intolerance(VENLAFAXINE, days_ago(200), manifestations=("Dizziness",)),
            intolerance(QUETIAPINE, days_ago(60), manifestations=("Itchy wheals",)),
        )
    )


def _cross_taper() -> PatientRecord:
    return PatientRecord(
        courses=(
            course(RISPERIDONE, days_ago(200), mg=2, end=days_ago(-56)),
            course(QUETIAPINE, days_ago(0), mg=100),
        )
    )


def _persisting_after_46_percent_fall() -> PatientRecord:
    venlafaxine = course(VENLAFAXINE, days_ago(300), mg=150, end=days_ago(216), status="stopped")
    sertraline = course(
        SERTRALINE,
        days_ago(700),
        mg=150,
        end=days_ago(600),
        status="stopped",
        stop_reason="lack_of_effect",
    )
    return PatientRecord(
        courses=(sertraline, venlafaxine), scores=(phq9(days_ago(305), 24), phq9(days_ago(218), 13))
    )


CASES = [
    pytest.param(Case("multiple-failed-trials", {"continuation_gap_days": 40}, _gap_of_40_days),
                 id="continuation-gap"),
    pytest.param(Case("psychotropic-polypharmacy", {"augmentation_exempt_ingredients": []},
                      _clozapine_plus_one), id="clozapine-exemption"),
    pytest.param(Case("regimen-escalation", {"restart_as_new_after_days": 200},
                      _restart_after_200_days), id="restart-window"),
    pytest.param(Case("visits-lag-changes", {"count_untyped_visits": False},
                      _changes_with_unclassified_visits), id="unclassified-visits"),
    pytest.param(Case("nonadherence", {"single_fill_lapsed_days": 61}, _one_lapsed_fill),
                 id="single-fill-lapse"),
    pytest.param(Case("repeated-intolerance", {"excluded_reaction_words": ["itchy wheals"]},
                      _three_classes_one_urticaria), id="exclusion-words"),
    pytest.param(Case("psychotropic-polypharmacy", {"min_overlap_days": 56}, _cross_taper),
                 id="minimum-overlap"),
    pytest.param(Case("multiple-failed-trials", {"phq9_response_fall_fraction": 0.4},
                      _persisting_after_46_percent_fall), id="response-fraction"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_a_site_file_value_changes_the_finding(case: Case, tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"patterns": {case.pattern_id: case.site}}), encoding="utf-8")
    module = MODULES[case.pattern_id]
    default = load_settings().patterns[case.pattern_id].thresholds
    configured = load_settings(site).patterns[case.pattern_id].thresholds

    before = module.detect(case.record(), case.drafts, default, NOW)
    after = module.detect(case.record(), case.drafts, configured, NOW)
    assert (before is None) != (after is None)


def test_the_windows_a_pattern_declares_follow_its_settings(tmp_path: Path) -> None:
    """The evidence horizon reads the declared windows, so a longer site window widens it."""
    site = tmp_path / "site.yaml"
    site.write_text(
        yaml.safe_dump({"patterns": {"visits-lag-changes": {"max_gap_since_visit_days": 400}}}),
        encoding="utf-8",
    )
    thresholds = load_settings(site).patterns["visits-lag-changes"].thresholds
    assert sum(thresholds.windows_days()) == 90 + 400
    assert replace(thresholds, window_days=10).windows_days() == (10, 400)
