"""The timeline renderer on realistic FHIR R4 histories: lanes, doses, stops, marks, window, SVG.

Records are built by the real mapper (``fhir_mappers.map_record``) from FHIR JSON, as the SMART
app, the auditor view and the CLI build them.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.settings import load_settings
from cds_service.timeline import build_timeline, longest_window_days, render_svg, render_table
from cds_service.timeline.model import Timeline
from fhir_mappers.mapper import map_record
from fhir_mappers.medications import IngredientTable
from tests.cds_service.timeline.history import (
    allergy,
    expected_lanes,
    expected_stops,
    fifteen_ingredient_history,
    medication_request,
)
from tests.conftest import NOW

SVG = "{http://www.w3.org/2000/svg}"
TODAY = NOW.date()
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def table() -> IngredientTable:
    return load_ingredient_table()


def timeline_of(resources: list[dict[str, Any]], table: IngredientTable,
                window_days: int | None = None, highlight: tuple[str, ...] = ()) -> Timeline:
    record = map_record(resources, table, codes=load_code_lists())
    return build_timeline(
        record, now=TODAY, window_days=window_days, highlight=highlight, gap_days=30
    )


def parse(svg: str) -> ET.Element:
    """The renderer's own output (not untrusted input), without the XML declaration."""
    return ET.fromstring(svg.split("?>", 1)[-1])  # noqa: S314


def lane_groups(svg: str) -> list[ET.Element]:
    root = parse(svg)
    return [g for g in root.iter(f"{SVG}g") if (g.get("class") or "").startswith("lane")]


def test_one_lane_per_ingredient_grouped_by_class(table: IngredientTable) -> None:
    timeline = timeline_of(fifteen_ingredient_history(), table)

    assert [lane.ingredient for lane in timeline.lanes] == [
        "fluoxetine", "sertraline", "escitalopram", "venlafaxine", "duloxetine", "bupropion",
        "mirtazapine", "olanzapine", "quetiapine", "aripiprazole", "lithium",
        "lamotrigine", "lorazepam", "zolpidem", "methylphenidate",
    ]
    assert timeline.classes == (
        "antidepressant", "antipsychotic", "mood_stabilizer", "anxiolytic_hypnotic", "stimulant"
    )


def test_each_dose_step_is_a_segment_and_each_stop_has_its_reason(table: IngredientTable) -> None:
    timeline = timeline_of(fifteen_ingredient_history(), table)
    lanes = {lane.ingredient: lane for lane in timeline.lanes}

    assert {name: [s.dose_mg for s in lane.segments] for name, lane in lanes.items()} == \
        expected_lanes()
    assert {name: lane.stops[0].label for name, lane in lanes.items() if lane.stops} == \
        expected_stops()
    sertraline = lanes["sertraline"]
    # Steps meet: each ends where the next begins, and the last ends at the stop.
    assert [s.end for s in sertraline.segments[:-1]] == [s.start for s in sertraline.segments[1:]]
    assert sertraline.segments[-1].end == sertraline.stops[0].when == date(2022, 7, 26)
    assert lanes["mirtazapine"].segments[-1].end == TODAY  # still taken
    assert [r.label for r in lanes["lithium"].reactions] == ["Tremor"]


def test_non_psychotropics_and_never_taken_orders_get_no_lane(table: IngredientTable) -> None:
    metformin = medication_request("p", "mr-met", "sertraline", 50, 100, None, "active")
    metformin["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "861007",
                    "display": "Metformin hydrochloride 500 MG Oral Tablet"}]}
    cancelled = medication_request("p", "mr-c", "quetiapine", 50, 80, None, "cancelled")
    entered = medication_request("p", "mr-e", "lithium", 600, 80, None, "entered-in-error")
    kept = medication_request("p", "mr-k", "zolpidem", 10, 60, 30, "stopped", "patient choice")

    timeline = timeline_of([metformin, cancelled, entered, kept], table)

    assert [lane.ingredient for lane in timeline.lanes] == ["zolpidem"]


def test_an_intolerance_to_a_drug_never_ordered_still_gets_its_lane(
    table: IngredientTable,
) -> None:
    timeline = timeline_of([allergy("p", "olanzapine", 300, "8943002", "Weight gain")], table)
    [lane] = timeline.lanes
    assert lane.ingredient == "olanzapine" and lane.segments == ()
    assert [(r.when, r.label) for r in lane.reactions] == [(date(2025, 8, 19), "Weight gain")]


def test_a_course_without_an_end_is_a_stub_not_a_bar_to_today(table: IngredientTable) -> None:
    order = medication_request("p", "mr-1", "lorazepam", 2, 400, None, "completed")
    [lane] = timeline_of([order], table).lanes
    [segment] = lane.segments
    assert segment.end_known is False and segment.end == segment.start


def test_the_window_clips_bars_but_keeps_every_lane(table: IngredientTable) -> None:
    resources = fifteen_ingredient_history()
    whole = timeline_of(resources, table)
    recent = timeline_of(resources, table, window_days=365)

    assert recent.start == date(2025, 6, 15) and whole.start < date(2021, 8, 1)
    assert len(lane_groups(render_svg(recent))) == len(lane_groups(render_svg(whole))) == 15
    svg = render_svg(recent)
    assert svg.count("used only before this window") == 11  # 4 ingredients are still taken
    assert 'data-ref="MedicationRequest/mr-fluoxetine-1"' not in svg
    assert 'data-ref="MedicationRequest/mr-fluoxetine-1"' in render_svg(whole)


def test_the_svg_is_accessible_and_its_table_agrees(table: IngredientTable) -> None:
    timeline = timeline_of(fifteen_ingredient_history(), table)
    svg = render_svg(timeline, standalone=True)
    root = parse(svg)

    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "timeline-title timeline-desc"
    assert root.find(f"{SVG}title").text == "Medication timeline"
    description = root.find(f"{SVG}desc").text
    assert "15 ingredients" in description and "5 classes" in description
    for lane in lane_groups(svg):
        assert lane.find(f"{SVG}title") is not None  # every lane has a text alternative
    assert root.find(f".//{SVG}g[@id='timeline-legend']") is not None
    html = render_table(timeline)
    assert html.count('class="lane-row"') == 15
    assert html.count('class="stop"') == len(expected_stops())
    assert " style=" not in svg and "<script" not in svg


def test_the_cards_evidence_is_outlined(table: IngredientTable) -> None:
    refs = ("MedicationRequest/mr-sertraline-3", "AllergyIntolerance/ai-lithium",
            "Observation/phq-3", "Encounter/enc-12")
    svg = render_svg(timeline_of(fifteen_ingredient_history(), table, highlight=refs))
    root = parse(svg)
    outlined = {
        g.get("data-ref") for g in root.iter(f"{SVG}g")
        if "evidence" in (g.get("class") or "").split() and g.get("data-ref")
    }
    assert outlined == {"MedicationRequest/mr-sertraline-3", "AllergyIntolerance/ai-lithium"}
    assert 'data-ref="Encounter/enc-12"' in svg and 'stroke-width="2.5"' in svg
    lanes = [g.get("data-ingredient") for g in lane_groups(svg) if "evidence" in g.get("class")]
    assert lanes == ["sertraline", "lithium"]


def test_text_from_the_ehr_is_escaped(table: IngredientTable) -> None:
    order = medication_request("p", "mr-x", "sertraline", 50, 100, 10, "stopped", "side effects")
    order["medicationCodeableConcept"]["text"] = 'sertraline <script>alert("x")</script> 50 MG'
    order["medicationCodeableConcept"]["coding"][0]["display"] = order[
        "medicationCodeableConcept"]["text"]
    timeline = timeline_of([order], table)
    svg = render_svg(timeline)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    parse(svg)  # still well-formed


def test_an_empty_record_is_still_a_valid_picture(table: IngredientTable) -> None:
    svg = render_svg(timeline_of([], table, window_days=365))
    assert lane_groups(svg) == [] and "0 ingredients" in svg
    parse(svg)


def test_the_default_window_is_the_longest_enabled_pattern_window() -> None:
    settings = load_settings()
    assert longest_window_days(settings.patterns) == 1095  # multiple-failed-trials lookback
    off = load_settings(overrides={"patterns": {"multiple-failed-trials": {"mode": "off"}}})
    assert longest_window_days(off.patterns) == 730  # repeated-intolerance lookback


def test_the_renderer_is_pure() -> None:
    probe = (
        "import sys, cds_service.timeline\n"
        "print(','.join(m for m in ('flask', 'sqlalchemy', 'requests', 'pydantic')"
        " if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == ""
