"""The card's link to the medication timeline: a CDS Hooks 2.0 smart Link without identifiers."""

from __future__ import annotations

import json

from cards.smart_link import MAX_LINKED_REFS, app_context, timeline_link, with_link


def test_the_link_is_a_smart_link_to_the_launch_url() -> None:
    link = timeline_link(
        "https://cds.example.org/", "Medication timeline", "repeated-intolerance",
        ["AllergyIntolerance/ai-1", "MedicationRequest/mr-2"],
    )
    assert link == {
        "label": "Medication timeline",
        "url": "https://cds.example.org/app/launch",
        "type": "smart",
        "appContext": '{"pattern":"repeated-intolerance","evidence":'
                      '["AllergyIntolerance/ai-1","MedicationRequest/mr-2"]}',
    }


def test_app_context_leaves_out_people_and_repeats() -> None:
    context = json.loads(app_context("nonadherence", [
        "MedicationDispense/d-1", "Patient/pat-123", "Practitioner/prac-7",
        "RelatedPerson/rp-1", "MedicationDispense/d-1", "#contained", "",
    ]))
    assert context == {"pattern": "nonadherence", "evidence": ["MedicationDispense/d-1"]}
    assert set(context) == {"pattern", "evidence"}


def test_app_context_is_capped() -> None:
    refs = [f"MedicationDispense/d-{i}" for i in range(MAX_LINKED_REFS + 20)]
    assert len(json.loads(app_context("nonadherence", refs))["evidence"]) == MAX_LINKED_REFS


def test_with_link_appends_and_leaves_the_card_untouched() -> None:
    card = {"summary": "s", "links": [{"label": "Guideline", "url": "https://x", "type":
                                       "absolute"}]}
    link = {"label": "Medication timeline", "url": "https://y/app/launch", "type": "smart"}
    linked = with_link(card, link)
    assert [k["type"] for k in linked["links"]] == ["absolute", "smart"]
    assert len(card["links"]) == 1
    assert with_link({"summary": "s"}, link)["links"] == [link]
