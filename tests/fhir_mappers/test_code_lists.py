"""The code lists in config/codes.yaml, as the mappers read them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.loaders import CODES_YAML, load_code_lists
from fhir_mappers.codes import CodeListError, CodeLists


@pytest.mark.parametrize(
    ("reason_codes", "text", "expected"),
    [
        (["sintol"], "", "intolerance"),
        (["407563006"], "", "intolerance"),
        (["281647001"], "", "intolerance"),
        (["62014003"], "", "intolerance"),
        (["59037007"], "", "intolerance"),
        (["salg"], "", "allergy"),
        (["416098002"], "", "allergy"),
        (["266721009"], "", "lack_of_effect"),
        (["58848006"], "", "lack_of_effect"),
        (["105480006"], "", "patient_choice"),
        ([], "Stopped because of side effects", "intolerance"),
        ([], "Not tolerated - nausea", "intolerance"),
        ([], "allergic reaction (rash)", "allergy"),
        ([], "Ineffective after 8 weeks", "lack_of_effect"),
        (["182992009"], "", "other"),  # treatment completed: a reason, but not a signal
        ([], "insurance change", "other"),
        ([], "", None),
    ],
)
def test_stop_reason_kinds(
    codes: CodeLists, reason_codes: list[str], text: str, expected: str | None
) -> None:
    assert codes.stop_reason(reason_codes, text) == expected


@pytest.mark.parametrize(
    ("manifestation_codes", "text", "expected"),
    [
        (["39579001"], "", True),  # anaphylaxis
        (["126485001"], "", True),  # urticaria
        (["41291007"], "", True),  # angioedema
        ([], "Hives on both arms", True),
        ([], "ANAPHYLAXIS", True),
        (["422587007"], "Nausea", False),
        (["25064002"], "Headache", False),
        ([], "archives", False),  # whole words only
        ([], "", False),
    ],
)
def test_immune_manifestations(
    codes: CodeLists, manifestation_codes: list[str], text: str, expected: bool
) -> None:
    assert codes.is_immune(manifestation_codes, text) is expected


def test_score_and_encounter_lists(codes: CodeLists) -> None:
    assert codes.score_codes == {"44261-6": "PHQ-9", "70274-6": "GAD-7"}
    assert codes.panel_codes["44249-1"] == "PHQ-9"
    assert codes.outpatient_classes == frozenset({"AMB", "VR", "HH"})
    assert codes.timing_codes_per_day["BID"] == 2


def test_a_site_can_add_a_local_stop_reason(tmp_path: Path, codes: CodeLists) -> None:
    text = CODES_YAML.read_text(encoding="utf-8")
    # Added under the intolerance codes, as an informatics team would.
    marker = "display: Drug intolerance}\n"
    local = '      - {system: "urn:local", code: "SE-01", display: Side effects}\n'
    path = tmp_path / "codes.yaml"
    path.write_text(text.replace(marker, marker + local, 1), encoding="utf-8")
    assert load_code_lists(path).stop_reason(["SE-01"]) == "intolerance"


@pytest.mark.parametrize(
    "content",
    [
        "- just a list\n",
        "stop_reasons: {}\n",
        "stop_reasons:\n  boredom: {codes: [], words: []}\n",
        # A list where a mapping belongs (raises AttributeError inside the parser).
        "stop_reasons: [allergy, intolerance]\n",
    ],
)
def test_malformed_code_lists_name_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "codes.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CodeListError, match="codes.yaml"):
        load_code_lists(path)


@pytest.mark.parametrize(
    ("codes_given", "text", "kind"),
    [
        ([], "Sexual dysfunction", "intolerance"),
        ([], "weight gain on it", "intolerance"),
        (["8943002"], "", "intolerance"),
        ([], "Ineffective", "lack_of_effect"),
        ([], "moved away", "other"),
    ],
)
def test_a_stop_for_a_named_adverse_effect_is_a_stop_for_intolerance(
    codes: CodeLists, codes_given: list[str], text: str, kind: str
) -> None:
    assert codes.stop_reason(codes_given, text) == kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # A negated adverse effect is no stop for intolerance (NegEx-style, codes.yaml).
        ("Not effective; no side effects", "lack_of_effect"),
        ("Not effective, no side effects", "lack_of_effect"),
        ("Switched to aripiprazole - patient denies side effects", "other"),
        ("no significant side effects", "other"),
        # Not negations: a verb's "not", "negative" or "non" before the effect, "no longer".
        ("Patient could not tolerate side effects", "intolerance"),
        ("Stopped due to negative side effects", "intolerance"),
        ("non-specific side effects", "intolerance"),
        ("no longer tolerating side effects", "intolerance"),
        # A negation after the effect, and other cues.
        ("Ineffective. Side effects: none", "lack_of_effect"),
        ("Not effective - side effects denied", "lack_of_effect"),
        ("Tolerated w/o side effects, but ineffective", "lack_of_effect"),
        ("negative for side effects; no response", "lack_of_effect"),
        ("free of side effects but ineffective", "lack_of_effect"),
        ("not without side effects", "intolerance"),  # a double negative
        # Only the neighbours count: an effect after a negated finding is a side effect.
        ("no improvement in mood, some nausea", "intolerance"),
        ("denies SI, stopped d/t sedation", "intolerance"),
        ("no response, sedation", "intolerance"),
        ("no response + weight gain", "intolerance"),
        ("no nausea; headache", "intolerance"),
        ("denies nausea, reports headache", "intolerance"),
        ("no nausea and stopped due to sedation", "intolerance"),
        # A negation covers a list of adverse effects after a negated one (this case read as
        # an intolerance before: "no nausea, dizziness or sedation" denies all three).
        ("Not effective; no nausea, dizziness or sedation", "lack_of_effect"),
        ("Ineffective; denies nausea or headache", "lack_of_effect"),
        ("denies nausea and/or headache, ineffective", "lack_of_effect"),
        ("no sexual side effects or nausea; not effective", "lack_of_effect"),
        ("no nausea, ineffective", "lack_of_effect"),  # the list ends at a non-effect
        # "not" right before the phrase, multi-word and "free" cues.
        ("Switched for efficacy, not side effects", "other"),
        ("Not due to side effects, ineffective", "lack_of_effect"),
        ("Side effects ruled out; lack of efficacy", "lack_of_effect"),
        ("Side effect free; ineffective", "lack_of_effect"),
        ("side-effect-free, ineffective", "lack_of_effect"),
        ("Side effects not an issue; no response", "lack_of_effect"),
        ("not intolerable", "other"),
        ("did not tolerate", "intolerance"),
        ("Not tolerated, nausea", "intolerance"),
        # Not negations: a positive dechallenge, a comparison, a worry.
        ("stopped: no longer needed, side effects resolved", "intolerance"),
        ("switched to agent with better side effect profile", "intolerance"),
        ("patient concerned about possible side effects", "intolerance"),
        # A phrase that itself begins with a negation is read as written.
        ("Not tolerated", "intolerance"),
        ("No response to treatment", "lack_of_effect"),
        # A negation farther back does not reach.
        ("no change in mood over months, nausea", "intolerance"),
    ],
)
def test_a_negated_adverse_effect_is_no_stop_for_intolerance(
    codes: CodeLists, text: str, kind: str
) -> None:
    assert codes.stop_reason([], text) == kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # A negation through a verb, spelled out or contracted (codes.yaml bridges).
        ("Not effective; did not experience any side effects", "lack_of_effect"),
        ("Ineffective, did not have side effects", "lack_of_effect"),
        ("Ineffective; didn't notice any side effects", "lack_of_effect"),
        ("Ineffective; has not had nausea", "lack_of_effect"),
        ("Ineffective; never experienced side effects", "lack_of_effect"),
        ("Ineffective; pt did not report side effects", "lack_of_effect"),
        # A noun of complaint between the cue and the effect.
        ("Ineffective, no complaints of side effects", "lack_of_effect"),
        ("Ineffective; no issues with side effects", "lack_of_effect"),
        ("Ineffective; no problems with nausea", "lack_of_effect"),
        ("Ineffective; no reported issues with side effects", "lack_of_effect"),
        # An after cue across a copula, spelled out or contracted.
        ("Ineffective. Side effects were not an issue", "lack_of_effect"),
        ("Ineffective. Side effects weren't an issue", "lack_of_effect"),
        ("Ineffective; nausea was not a problem", "lack_of_effect"),
        ("Side effects have been absent; no response", "lack_of_effect"),
        # A dash or a colon right before an after cue.
        ("Ineffective. Side effects - none", "lack_of_effect"),
        ("Ineffective. SE: none", "lack_of_effect"),
        ("Ineffective \u2014 side effects \u2014 not an issue", "lack_of_effect"),
        ("Ineffective. Side effects - none reported", "lack_of_effect"),
        ("Ineffective. SE - denied", "lack_of_effect"),
        # ... but not an after cue that goes on to say something else: the dash ends the clause
        # (probes reg r05, r13, r16; "none since stopping" is a positive dechallenge).
        ("Nausea - none since stopping", "intolerance"),
        ("Nausea - no issue with mood, stopped", "intolerance"),
        ("GI upset - not a problem before dose increase", "intolerance"),
        ("Ineffective; no nausea", "lack_of_effect"),
        # A slash between two adverse effects is a list.
        ("Ineffective; denies nausea/headache", "lack_of_effect"),
        ("Ineffective; no nausea / headache / dizziness", "lack_of_effect"),
        # Near misses: what is affirmed stays so.
        ("Ineffective - nausea", "intolerance"),
        ("Side effects - felt foggy", "intolerance"),
        ("nausea/headache", "intolerance"),
        ("no response/nausea", "intolerance"),
        ("did not help, had nausea", "intolerance"),
        ("did not help; nausea was the problem", "intolerance"),
        ("Side effects were an issue", "intolerance"),
        ("wasn't tolerated", "intolerance"),
        ("couldn't tolerate the side effects", "intolerance"),
        ("didn't help", "lack_of_effect"),
    ],
)
def test_negations_through_verbs_complaints_copulas_dashes_and_slashes(
    codes: CodeLists, text: str, kind: str
) -> None:
    assert codes.stop_reason([], text) == kind


def test_a_code_still_decides_before_negated_words(codes: CodeLists) -> None:
    assert codes.stop_reason(["sintol"], "no side effects noted at first") == "intolerance"


def test_a_long_stop_reason_is_read_in_one_pass(codes: CodeLists) -> None:
    """A 256 kB reason (a pasted note) repeats a negated phrase 16,000 times: each occurrence
    is judged from its own neighbours, not by re-reading the text before it."""
    assert codes.stop_reason([], "no side effects " * 16_000) == "other"
    assert codes.stop_reason([], "no side effects " * 16_000 + "; nausea") == "intolerance"
    # a negated list as long is walked once too
    assert codes.stop_reason([], "no nausea or headache, " * 16_000) == "other"
    assert codes.stop_reason([], "nausea or headache, " * 16_000) == "intolerance"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("d/c d/t SE", "intolerance"),
        ("pt c/o s/e", "intolerance"),
        ("GI upset", "intolerance"),
        ("wt gain 10 lb", "intolerance"),
        ("didn't tolerate it", "intolerance"),
        ("headaches", "intolerance"),
        ("did not help", "lack_of_effect"),
        ("no benefit after 8 weeks", "lack_of_effect"),
        ("Partial response; switching", "lack_of_effect"),
        ("pt preference", "patient_choice"),
        ("Tolerated well w/o s/e", "other"),
    ],
)
def test_stop_reasons_in_the_words_charts_use(codes: CodeLists, text: str, kind: str) -> None:
    assert codes.stop_reason([], text) == kind
