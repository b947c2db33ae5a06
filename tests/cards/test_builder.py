"""Cards built from realistic findings conform to CDS Hooks 2.0 and carry their evidence."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from fhir.resources.R4B.communicationrequest import CommunicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from cards.builder import PATTERN_SYSTEM, build_card, card_evidence_refs
from cards.wording import OVERRIDE_REASON_CODES, OVERRIDE_REASON_SYSTEM, Wording
from cds_service.patterns import PATTERN_IDS
from cds_service.patterns.base import EvidenceItem, Finding

MODELS: dict[str, Any] = {
    "ServiceRequest": ServiceRequest,
    "Task": Task,
    "CommunicationRequest": CommunicationRequest,
}
LONG_NAMES = [
    "levomilnacipran", "dexmethylphenidate", "desvenlafaxine", "trifluoperazine",
    "chlordiazepoxide", "lisdexamfetamine", "tranylcypromine", "brexpiprazole",
    "lumateperone", "oxcarbazepine", "clomipramine", "carbamazepine",
]  # fmt: skip


def _card(finding: Finding, wording: Mapping[str, Wording], **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "patient_ref": "Patient/pat-1",
        "practitioner_ref": "Practitioner/prac-7",
        "encounter_ref": "Encounter/enc-3",
    }
    return build_card(finding, wording[finding.pattern_id], **{**args, **kwargs})


def _walk(value: Any, path: str = "card") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


@pytest.mark.parametrize("pattern_id", PATTERN_IDS)
def test_card_conforms_to_cds_hooks(
    pattern_id: str, wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    finding = make_finding(pattern_id)
    card = _card(finding, wording)

    assert set(card) >= {"uuid", "summary", "detail", "indicator", "source"}
    assert 0 < len(card["summary"]) < 140
    assert card["indicator"] == finding.indicator
    assert card["indicator"] in {"info", "warning"}
    assert card["source"]["label"]
    assert card["source"]["topic"] == {
        "system": PATTERN_SYSTEM,
        "code": pattern_id,
        "display": wording[pattern_id].title,
    }
    for path, value in _walk(card):
        assert value is not None and value not in ("", [], {}), f"{path} is empty"

    suggestions = card["suggestions"]
    # a prescriber may accept both the closer visits and the consultation
    assert card["selectionBehavior"] == "any"
    assert sum(bool(s.get("isRecommended")) for s in suggestions) <= 1
    uuids = [card["uuid"]] + [s["uuid"] for s in suggestions]
    assert len(set(uuids)) == len(uuids)
    for suggestion in suggestions:
        assert suggestion["label"]
        for action in suggestion["actions"]:
            assert action["type"] == "create" and action["description"]

    for reason in card["overrideReasons"]:
        assert reason["system"] == OVERRIDE_REASON_SYSTEM
        assert reason["code"] in OVERRIDE_REASON_CODES
        assert reason["display"]
    for link in card["links"]:
        assert link["type"] == "absolute" and link["url"].startswith("https://")


@pytest.mark.parametrize("pattern_id", PATTERN_IDS)
def test_every_suggested_resource_is_valid_fhir_r4(
    pattern_id: str, wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    card = _card(make_finding(pattern_id), wording)
    for suggestion in card["suggestions"]:
        resource = suggestion["actions"][0]["resource"]
        MODELS[resource["resourceType"]].model_validate(resource)
        assert resource["status"] == "draft"
        patient = resource.get("subject") or resource.get("for")
        assert patient == {"reference": "Patient/pat-1"}
        assert resource["requester"] == {"reference": "Practitioner/prac-7"}
        assert resource["encounter"] == {"reference": "Encounter/enc-3"}
        if resource["resourceType"] == "ServiceRequest":
            assert resource["code"]["coding"][0]["system"] == "http://snomed.info/sct"


@pytest.mark.parametrize("pattern_id", PATTERN_IDS)
def test_follow_up_and_consultation_carry_snomed_codes_and_the_interval(
    pattern_id: str, wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    """'More frequent visits' is encoded: every 2 weeks for 8 weeks, as an R4 Timing."""
    card = _card(make_finding(pattern_id), wording)
    by_code = {
        s["actions"][0]["resource"]["code"]["coding"][0]["code"]: s["actions"][0]["resource"]
        for s in card["suggestions"]
        if s["actions"][0]["resource"]["resourceType"] in ("ServiceRequest", "Task")
    }
    follow_up = by_code.get("390906007")  # SNOMED CT Follow-up encounter (procedure)
    if follow_up is not None:
        repeat = ServiceRequest.model_validate(follow_up).occurrenceTiming.repeat
        assert (repeat.frequency, repeat.period, repeat.periodUnit) == (1, 2, "wk")
        assert (repeat.boundsDuration.value, repeat.boundsDuration.code) == (8, "wk")
    consult = by_code.get("183524004")  # SNOMED CT Referral to psychiatry service
    assert follow_up is not None or consult is not None
    if consult is not None:
        assert "occurrenceTiming" not in consult


def test_resources_without_practitioner_or_encounter_stay_valid(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    card = _card(
        make_finding("nonadherence"),
        wording,
        patient_ref="pat-1",
        practitioner_ref=None,
        encounter_ref=None,
    )
    for suggestion in card["suggestions"]:
        resource = suggestion["actions"][0]["resource"]
        MODELS[resource["resourceType"]].model_validate(resource)
        assert "requester" not in resource and "encounter" not in resource
        assert (resource.get("subject") or resource.get("for")) == {"reference": "Patient/pat-1"}


@pytest.mark.parametrize("pattern_id", PATTERN_IDS)
def test_detail_fits_the_order_screen(
    pattern_id: str, wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    """Why (one sentence), one line per drug, what to consider (one sentence); <= 700
    characters; no settings, no sources, no tablet strengths."""
    finding = make_finding(pattern_id)
    detail = _card(finding, wording)["detail"]
    assert len(detail) <= 700
    why, evidence, consider = detail.split("\n\n")
    assert why.endswith(".") and consider.endswith(".")
    assert consider.startswith(("Consider", "If no drug effect")) and consider.count(". ") == 0
    lines = evidence.splitlines()
    assert all(line.startswith("- ") for line in lines)
    shown = list(reversed(finding.evidence))[: len(lines)]
    for item, line in zip(shown, lines, strict=False):
        assert line.startswith(f"- {item.label}")
    drugs = [line.split(" — ")[0] for line in lines if "more in the record" not in line]
    assert len(drugs) == len(set(drugs)), "one line per drug"
    assert not re.search(r"within \d+ days|\d+ days? window|not recorded: \d|https?://", detail)
    assert not re.search(r"\d MG\b", detail), "daily doses, not tablet strengths"
    assert "PHQ-9 — PHQ-9" not in detail


def test_drafted_drug_not_tolerated_before_is_said_first(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    detail = _card(make_finding("repeated-intolerance"), wording)["detail"]
    assert detail.startswith(
        "**Not tolerated before:** sertraline on 2024-10-13 (nausea, headache)."
    )


def test_no_lead_without_a_drafted_drug_not_tolerated_before(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    finding = make_finding("repeated-intolerance", draft_not_tolerated_before=[])
    assert _card(finding, wording)["detail"].startswith("Side effects with 3 unrelated classes")


def test_evidence_shows_the_daily_dose(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    """Aripiprazole 15 MG tablets once daily and olanzapine 5 MG at bedtime: mg/day, per drug."""
    detail = _card(make_finding("psychotropic-polypharmacy"), wording)["detail"]
    assert "aripiprazole 15 mg/day" in detail
    assert "olanzapine 5 mg/day — draft order" in detail


def test_sources_are_the_card_source_and_links_mintz_first(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    for pattern_id in ("repeated-intolerance", "regimen-escalation", "visits-lag-changes"):
        card = _card(make_finding(pattern_id), wording)
        assert "Addressing the Underlying Causes of Treatment Resistance" in card["source"]["label"]
        assert "Psychiatric Times" in card["links"][0]["label"]
        assert all("thecarlatreport.com/articles/4731" not in link["url"] for link in card["links"])


def test_a_polypharmacy_card_cites_what_supports_its_own_trigger(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    # Two antipsychotics: the measure it follows. Five psychotropics: no measure sets that
    # count (clinical-review.md), so the card says the threshold is the site's own and cites
    # the source of its advice, not an antipsychotic measure for children.
    antipsychotics = _card(make_finding("psychotropic-polypharmacy"), wording)
    psychotropics = _card(
        make_finding("psychotropic-polypharmacy", trigger="psychotropics", psychotropic_count=5),
        wording,
    )

    assert antipsychotics["source"]["label"].startswith("HEDIS APC")
    assert "HEDIS" not in psychotropics["source"]["label"]
    assert "local threshold" in psychotropics["source"]["label"]
    assert "Psychiatric Times" in psychotropics["source"]["label"]
    assert "no published measure sets one" in psychotropics["detail"]
    assert "no published measure" not in antipsychotics["detail"]


@pytest.mark.parametrize("pattern_id", PATTERN_IDS)
def test_summary_fits_even_with_long_lists(
    pattern_id: str, wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    finding = make_finding(pattern_id)
    long_facts = {k: LONG_NAMES * 2 for k, v in finding.facts.items() if isinstance(v, list)}
    card = _card(make_finding(pattern_id, **long_facts), wording)
    assert len(card["summary"]) < 140
    assert "{" not in card["summary"] and "not recorded" not in card["summary"]


def test_summaries_for_realistic_findings_read_as_intended(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    def summary(pattern_id: str, **facts: Any) -> str:
        return str(_card(make_finding(pattern_id, **facts), wording)["summary"])

    assert summary("repeated-intolerance") == (
        "Side effects with drugs from 3 unrelated classes: consider exploring expectations and "
        "concerns before another new agent"
    )
    assert summary("multiple-failed-trials").startswith(
        "2 adequate antidepressant trials have not helped enough"
    )
    assert summary("psychotropic-polypharmacy").startswith(
        "2 antipsychotics planned to be taken together: consider"
    )
    assert summary("psychotropic-polypharmacy", trigger="psychotropics", psychotropic_count=5) == (
        "5 psychotropics taken together: consider reviewing with the patient whether each one "
        "still helps"
    )
    assert "no prescriber visit on record" in summary(
        "visits-lag-changes", days_since_last_visit=None
    )
    assert summary("nonadherence").startswith(
        "Records suggest escitalopram may not be taken as prescribed: before raising the dose"
    )
    assert summary("nonadherence", dose_increase_in_draft=False).endswith("fits daily life")


def test_ehr_text_cannot_inject_markdown_or_html(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    base = make_finding("repeated-intolerance")
    hostile = Finding(
        pattern_id=base.pattern_id,
        evidence=(
            EvidenceItem(
                "MedicationRequest/x",
                "sertraline <script>alert('x')</script> **50 MG** [link](https://evil.example)",
                None,
                "stopped\n# not a heading",
            ),
        ),
        facts={**base.facts, "counted_classes": ["<b>bold</b>", "*star*"]},
        evidence_keys=base.evidence_keys,
    )
    card = _card(hostile, wording)
    detail = card["detail"]
    assert "<script>" not in detail and "<b>" not in detail
    assert "&lt;script&gt;" in detail
    assert r"\*\*50 MG\*\*" in detail and r"\[link\]" in detail
    assert r"\*star\*" in detail
    assert "\n# not a heading" not in detail
    for suggestion in card["suggestions"]:
        for note in suggestion["actions"][0]["resource"].get("note", []):
            assert "<b>" not in note["text"]


def test_uuids_come_from_the_factory_and_card_uuid_wins(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    counter = itertools.count(1)
    card = _card(
        make_finding("regimen-escalation"),
        wording,
        uuid_factory=lambda: f"uuid-{next(counter)}",
        card_uuid="card-1",
    )
    assert card["uuid"] == "card-1"
    assert [s["uuid"] for s in card["suggestions"]] == ["uuid-1", "uuid-2"]


def test_wording_of_another_pattern_is_refused(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    with pytest.raises(ValueError, match="cannot word"):
        build_card(
            make_finding("nonadherence"),
            wording["regimen-escalation"],
            patient_ref="Patient/1",
            practitioner_ref=None,
            encounter_ref=None,
        )


def test_missing_fact_reads_not_recorded_instead_of_failing(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    base = make_finding("regimen-escalation")
    facts = {k: v for k, v in base.facts.items() if k != "window_months"}
    finding = Finding(base.pattern_id, base.evidence, facts, base.evidence_keys)
    assert "in the last not recorded months" in _card(finding, wording)["detail"]


def test_long_evidence_is_listed_up_to_a_limit(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    base = make_finding("nonadherence")
    items = tuple(
        EvidenceItem(f"MedicationDispense/md-{n}", "sertraline 50 MG Oral Tablet", None, "")
        for n in range(30)
    )
    finding = Finding(base.pattern_id, items, base.facts, base.evidence_keys)
    detail = _card(finding, wording)["detail"]
    assert detail.count("sertraline 50 MG Oral Tablet") == 4
    assert "and 26 more in the record" in detail
    assert len(card_evidence_refs(finding)) == 30


def test_records_the_pattern_left_out_are_counted_with_the_lines_not_shown(
    wording: Mapping[str, Wording], make_finding: Callable[..., Finding]
) -> None:
    base = make_finding("psychotropic-polypharmacy")
    items = tuple(
        EvidenceItem(f"MedicationRequest/mr-{n}", f"drug{n} 10 mg/day", None, "") for n in range(8)
    )
    counted = Finding(base.pattern_id, items, base.facts, base.evidence_keys, evidence_left_out=2)
    assert "- and 6 more in the record" in _card(counted, wording)["detail"]
    listed = Finding(base.pattern_id, items[:3], base.facts, base.evidence_keys)
    assert "more in the record" not in _card(listed, wording)["detail"]


def test_card_evidence_refs_in_order_without_repeats() -> None:
    finding = Finding(
        "nonadherence",
        (
            EvidenceItem("MedicationDispense/1", "a", None),
            EvidenceItem("MedicationDispense/2", "b", None),
            EvidenceItem("MedicationDispense/1", "a", None),
        ),
        {},
        frozenset(),
        references=("MedicationRequest/9", "MedicationDispense/2"),
    )
    assert card_evidence_refs(finding) == (
        "MedicationDispense/1",
        "MedicationDispense/2",
        "MedicationRequest/9",
    )
