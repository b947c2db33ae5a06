"""Side effects that are a drug's objective, expected pharmacology (akathisia with aripiprazole,
tremor and hypothyroidism with lithium, weight gain, a low sodium) are not what nocebo framing
fits (clinical-review.md): such a record is not counted toward repeated intolerance, while a
record with a vague, subjective reaction is. The card's evidence shows the reaction as recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.realworld.builders import day, intolerance, order, request
from tests.realworld.conftest import topics

Post = Callable[[dict[str, Any]], Any]
RI = "repeated-intolerance"


def _three(pid: str, third: str) -> list[dict[str, Any]]:
    """Sertraline (nausea), venlafaxine (headache), and quetiapine with ``third``: three ATC-4
    classes if the third counts."""
    return [
        intolerance("ai-1", pid, "sertraline50", day(300), "Nausea"),
        intolerance("ai-2", pid, "venlafaxine75", day(200), "Headache"),
        intolerance("ai-3", pid, "quetiapine100", day(100), third),
    ]


@pytest.mark.parametrize(
    ("third", "fires"),
    [
        ("Sedation", True),
        ("Dizziness", True),
        ("Akathisia", False),
        ("Weight gain", False),
        ("Tremor", False),
        ("Erectile dysfunction", False),
        ("Hyperprolactinaemia", False),
    ],
)
def test_a_drugs_expected_pharmacology_is_no_nocebo_evidence(
    post: Post, third: str, fires: bool
) -> None:
    pid = f"pharm-{third.lower().replace(' ', '-')}"
    assert (RI in topics(post(request("patient-view", pid, _three(pid, third))))) is fires


def test_a_record_with_a_subjective_reaction_beside_a_pharmacological_one_counts(
    post: Post,
) -> None:
    pid = "pharm-mixed"
    resources = _three(pid, "Drowsy")
    resources[2]["reaction"][0]["manifestation"].append({"text": "Weight gain"})
    assert RI in topics(post(request("patient-view", pid, resources)))


def _stopped(rid: str, pid: str, product: str, days_ago: int, reason: str) -> dict[str, Any]:
    return order(
        rid, pid, product, authored=day(days_ago + 30), status="stopped",
        statusReason={"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason",
            "code": "sintol", "display": "Suspected intolerance",
        }], "text": reason},
        dosageInstruction=[{"timing": {"repeat": {"boundsPeriod": {
            "start": day(days_ago + 30), "end": day(days_ago)}}}}],
    )


@pytest.mark.parametrize(("reason", "fires"), [("Na 128, confused", False),
                                               ("Felt dizzy and tired", True)])
def test_a_stop_for_a_laboratory_value_is_no_nocebo_evidence(
    post: Post, reason: str, fires: bool
) -> None:
    pid = f"pharm-stop-{fires}"
    resources = [*_three(pid, "Nausea")[:2], _stopped("mr-li", pid, "quetiapine100", 60, reason)]
    assert (RI in topics(post(request("patient-view", pid, resources)))) is fires


def test_the_evidence_line_shows_the_reaction_a_stop_recorded(post: Post) -> None:
    pid = "pharm-evidence"
    resources = [*_three(pid, "Nausea")[:2],
                 _stopped("mr-q", pid, "quetiapine100", 60, "Felt dizzy and tired")]
    (card,) = [c for c in post(request("patient-view", pid, resources)).get_json()["cards"]
               if c["source"]["topic"]["code"] == RI]
    assert "felt dizzy and tired" in card["detail"]


@pytest.mark.parametrize(
    "third",
    ["SIADH", "Thrombocytopenia", "QTc 520 ms on ECG", "Elevated CK", "Low platelet count",
     "Suicidal thoughts", "Worsening SI", "Induced hypomania",
     "Aplastic anemia", "Pancytopenia", "Bone marrow suppression", "Hypertensive crisis",
     "Respiratory depression", "Hyperammonemic encephalopathy", "Hyperammonaemia",
     "Acute liver failure", "GI bleed"],
)
def test_an_objective_finding_in_other_words_is_no_nocebo_evidence(post: Post, third: str) -> None:
    # Objective or dangerous reactions never fit nocebo framing (clinical-review.md), however
    # they are worded.
    pid = "pharm-objective-" + "".join(ch for ch in third.lower() if ch.isalnum())
    assert RI not in topics(post(request("patient-view", pid, _three(pid, third))))


def _stopped_saying(rid: str, pid: str, product: str, days_ago: int, reason: str
                    ) -> dict[str, Any]:
    """An order stopped ``days_ago`` with a reason given as text only."""
    resource = _stopped(rid, pid, product, days_ago, reason)
    resource["statusReason"] = {"text": reason}
    return resource


@pytest.mark.parametrize(
    ("reason", "fires"),
    [
        ("Not effective; no side effects", False),
        ("Switched to aripiprazole - patient denies side effects", False),
        ("Adverse reaction: ANC 0.8", False),
        ("Side effects - felt foggy", True),
        # negated by "not" right before, by a list, by "ruled out" and "free"
        ("Switched for efficacy, not side effects", False),
        ("Ineffective; denies nausea or headache", False),
        ("No nausea, dizziness or headache; no response", False),
        ("Side effects ruled out; lack of efficacy", False),
        ("Side-effect-free; ineffective", False),
        # through a verb, a complaint, a copula, a dash and a slash (the third record of the
        # probes: quetiapine stopped with these words)
        ("Not effective; did not experience any side effects", False),
        ("Ineffective, didn't have side effects", False),
        ("Ineffective. Side effects - none", False),
        ("Ineffective; denies nausea/headache", False),
        ("Ineffective, no complaints of side effects", False),
        ("Ineffective; no issues with side effects", False),
        ("Ineffective. Side effects were not an issue", False),
        ("Side effects were an issue", True),
        ("Ineffective - nausea/headache", True),
        # near misses: an affirmed side effect after a negated finding, a double negative,
        # "not tolerated", and a positive dechallenge
        ("No improvement, nausea", True),
        ("Not without side effects", True),
        ("Did not tolerate: headaches", True),
        ("No longer needed, side effects resolved", True),
    ],
)
def test_a_stop_that_says_there_were_no_side_effects_is_no_intolerance(
    post: Post, reason: str, fires: bool
) -> None:
    pid = "pharm-said-" + "".join(ch for ch in reason.lower() if ch.isalnum())[:24]
    resources = [*_three(pid, "Nausea")[:2],
                 _stopped_saying("mr-q", pid, "quetiapine100", 60, reason)]
    assert (RI in topics(post(request("patient-view", pid, resources)))) is fires


def _named(rid: str, pid: str, drug: str, days_ago: int, reaction: str) -> dict[str, Any]:
    """An intolerance whose substance is sent as text only (``drug``), as many EHRs do."""
    resource = intolerance(rid, pid, "sertraline50", day(days_ago), reaction)
    resource["code"] = {"text": drug}
    return resource


def _two_and(pid: str, drug: str, reaction: str) -> list[dict[str, Any]]:
    """Venlafaxine (headache) and zolpidem (headache), then ``drug`` with ``reaction``: three
    pharmacological classes (SNRI, Z-drug, and the third's) if the third counts."""
    return [
        intolerance("ai-1", pid, "venlafaxine75", day(300), "Headache"),
        _named("ai-2", pid, "zolpidem", 200, "Headache"),
        _named("ai-3", pid, drug, 100, reaction),
    ]


@pytest.mark.parametrize(
    ("drug", "reaction", "fires"),
    [
        # Objective, dangerous reactions (clinical-review.md), in the words charts use:
        # excluded_reaction_words.
        ("haloperidol", "Torsade de pointes", False),
        ("haloperidol", "TdP on telemetry", False),
        ("lamotrigine", "Blistering skin rash", False),
        ("carbamazepine", "Skin peeling, mouth sores", False),
        ("clozapine", "White count dropped", False),
        ("carbamazepine", "WBC 2.9", False),
        ("clozapine", "Platelets fell", False),
        ("clozapine", "Fever", False),
        ("clozapine", "Febrile 38.6", False),
        ("lorazepam", "Fall", False),
        ("lorazepam", "Fell at home", False),
        # Near misses: sedation worded with "fall"/"fell" is a vague effect, and counts.
        ("lorazepam", "Fell asleep at work", True),
        ("lorazepam", "Kept falling asleep during the day", True),
        ("lithium", "Delirium", False),
        # Expected pharmacology: pharmacological_reaction_words.
        ("clozapine", "Hypersalivation", False),
        ("clozapine", "Sialorrhoea", False),
        ("clozapine", "Sialorrhea", False),
        ("clozapine", "Drooling at night", False),
        ("clozapine", "Nocturnal enuresis", False),
        ("clozapine", "Bedwetting", False),
        ("lithium", "Polydipsia", False),
        ("lithium", "Excessive thirst", False),
        ("amitriptyline", "Dry mouth", False),
        ("amitriptyline", "Blurry vision", False),
        ("quetiapine", "Dizziness on standing", False),
        ("quetiapine", "Orthostatic dizziness", False),
        ("quetiapine", "Lightheaded when standing up", False),
        ("carbamazepine", "Double vision", False),
        ("carbamazepine", "Diplopia", False),
        ("carbamazepine", "Unsteadiness", False),
        ("carbamazepine", "Ataxia", False),
        ("valproate", "Hair loss", False),
        ("valproate", "Alopecia", False),
        ("escitalopram", "Excessive yawning", False),
        # Near misses: vague, subjective effects of the same drugs still count, and so does a
        # plain rash (a deliberate choice: a typed allergy with a rash is an allergy).
        ("quetiapine", "Dizziness", True),
        ("lorazepam", "Drowsiness", True),
        ("clozapine", "Fatigue", True),
        ("escitalopram", "Nausea", True),
        ("amitriptyline", "Jittery", True),
        ("lamotrigine", "Rash", True),
        ("valproate", "Headache", True),
    ],
)
def test_objective_reactions_and_expected_pharmacology_in_chart_words_do_not_count(
    post: Post, drug: str, reaction: str, fires: bool
) -> None:
    pid = "pharm-words-" + "".join(ch for ch in f"{drug}{reaction}".lower() if ch.isalnum())
    resources = _two_and(pid, drug, reaction)
    assert (RI in topics(post(request("patient-view", pid, resources)))) is fires


def test_dizziness_on_standing_beside_plain_dizziness_of_another_drug(post: Post) -> None:
    """The orthostatic record is left out; a record of another drug with plain dizziness is
    not (only that record is pharmacology)."""
    pid = "pharm-words-orthostatic-and-plain"
    resources = [*_two_and(pid, "quetiapine", "Dizziness on standing"),
                 _named("ai-4", pid, "lithium", 50, "Dizziness")]
    assert RI in topics(post(request("patient-view", pid, resources)))


def _ri_card(response: Any) -> dict[str, Any] | None:
    cards = [c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == RI]
    return cards[0] if cards else None


@pytest.mark.parametrize(
    ("drugs", "fires"),
    [
        # One pharmacological class across ATC level-4 groups: the expected pharmacology of one
        # class is not "unrelated medications" (clinical-review.md).
        (("lorazepam", "clonazepam", "temazepam"), False),  # N05BA, N03AE, N05CD
        (("Ativan", "Klonopin 0.5 MG Oral Tablet", "sertraline"), False),
        (("Emsam", "phenelzine", "sertraline"), False),  # N04BD, N06AF
        (("ketamine", "Spravato", "sertraline"), False),  # N01AX03, N06AX27
        # Every antipsychotic, FGA or SGA, in any N05A group: dopamine D2 blockade.
        (("quetiapine", "risperidone", "haloperidol"), False),  # N05AH, N05AX, N05AD
        (("Abilify", "Geodon", "olanzapine"), False),  # N05AX, N05AE, N05AH
        (("chlorpromazine", "Latuda", "clozapine"), False),
        # Anticonvulsant mood stabilisers (N03AF, N03AX, N03AG).
        (("carbamazepine", "lamotrigine", "sertraline"), False),
        (("Depakote", "Lamictal", "sertraline"), False),
        # Different mechanisms stay different classes.
        (("phenelzine", "amitriptyline", "sertraline"), True),  # MAOI, TCA, SSRI
        (("temazepam", "zolpidem", "sertraline"), True),  # BZD, Z-drug, SSRI
        (("venlafaxine", "amitriptyline", "sertraline"), True),  # SNRI, TCA, SSRI
        (("clozapine", "lithium", "sertraline"), True),  # lithium is no antipsychotic
        (("haloperidol", "lamotrigine", "sertraline"), True),
    ],
)
def test_one_pharmacological_class_split_by_atc_level_4_is_one_class(
    post: Post, drugs: tuple[str, ...], fires: bool
) -> None:
    pid = "pharm-class-" + "-".join(d.split()[0].lower() for d in drugs)
    resources = [_named(f"ai-{n}", pid, drug, 100 + n, "Drowsiness")
                 for n, drug in enumerate(drugs)]
    assert (RI in topics(post(request("patient-view", pid, resources)))) is fires


def test_a_benzodiazepine_class_counts_once_and_is_named_so_on_the_card(post: Post) -> None:
    pid = "pharm-class-bzd-named"
    resources = [*_three(pid, "Nausea")[:1],
                 intolerance("ai-q", pid, "quetiapine100", day(150), "Nausea"),
                 _named("ai-l", pid, "lorazepam", 120, "Drowsiness"),
                 _named("ai-c", pid, "clonazepam", 110, "Drowsiness"),
                 _named("ai-t", pid, "temazepam", 100, "Drowsiness")]
    card = _ri_card(post(request("patient-view", pid, resources)))
    assert card is not None
    assert "Side effects with 3 unrelated classes" in card["detail"]
    assert "benzodiazepine (lorazepam, clonazepam, temazepam)" in card["detail"]


def test_antipsychotics_of_each_generation_are_one_class_named_once_on_the_card(
    post: Post,
) -> None:
    pid = "pharm-class-antipsychotics-named"
    resources = [*_three(pid, "Dizziness"),
                 _named("ai-r", pid, "risperidone", 90, "Dizziness"),
                 _named("ai-h", pid, "haloperidol", 80, "Sedation")]
    card = _ri_card(post(request("patient-view", pid, resources)))
    assert card is not None
    assert "Side effects with 3 unrelated classes" in card["detail"]
    assert "antipsychotic (quetiapine, risperidone, haloperidol)" in card["detail"]
    assert "SGA (" not in card["detail"] and "FGA (" not in card["detail"]


SNOMED = "http://snomed.info/sct"


@pytest.mark.parametrize(
    ("manifestation", "fires"),
    [
        # a reaction sent as a code alone: what it was cannot be read (371089000 is given as
        # serotonin syndrome by the probe report; no code list here knows it)
        ({"coding": [{"system": SNOMED, "code": "371089000"}]}, False),
        ({"coding": [{"system": SNOMED, "code": "422587007"}]}, False),
        # with words, the words decide
        ({"coding": [{"system": SNOMED, "code": "371089000", "display": "Serotonin syndrome"}]},
         False),
        ({"coding": [{"system": SNOMED, "code": "422587007", "display": "Nausea"}]}, True),
        ({"coding": [{"system": SNOMED, "code": "422587007"}], "text": "Nausea"}, True),
    ],
)
def test_a_reaction_sent_as_a_code_alone_is_no_nocebo_evidence(
    post: Post, manifestation: dict[str, Any], fires: bool
) -> None:
    pid = "pharm-coded-" + "".join(ch for ch in str(manifestation) if ch.isalnum())[-30:]
    resources = _three(pid, "Nausea")
    resources[2]["reaction"][0]["manifestation"] = [manifestation]
    assert (RI in topics(post(request("patient-view", pid, resources)))) is fires


def test_one_unreadable_reaction_beside_a_named_one_leaves_the_record_out(post: Post) -> None:
    pid = "pharm-coded-mixed"
    resources = _three(pid, "Nausea")
    resources[2]["reaction"][0]["manifestation"].append(
        {"coding": [{"system": SNOMED, "code": "371089000"}]})
    assert RI not in topics(post(request("patient-view", pid, resources)))


@pytest.mark.parametrize(
    ("field", "value", "fires"),
    [
        ("severity", "Severe", False),
        ("severity", "SEVERE", False),
        ("severity", "Moderate", True),
        ("criticality", "High", False),
        ("criticality", "HIGH", False),
        ("criticality", "Low", True),
    ],
)
def test_severity_and_criticality_are_read_whatever_their_case(
    post: Post, field: str, value: str, fires: bool
) -> None:
    pid = f"pharm-case-{field}-{value}"
    resources = _three(pid, "Dizziness")
    if field == "severity":
        resources[2]["reaction"][0]["severity"] = value
    else:
        resources[2]["criticality"] = value
    assert (RI in topics(post(request("patient-view", pid, resources)))) is fires


@pytest.mark.parametrize(
    ("second", "third", "fires"),
    [
        # Buspirone (N05BE, a 5-HT1A partial agonist) and hydroxyzine (N05BB, an
        # antihistamine) share only the residual subclass "other anxiolytic": two classes.
        ("buspirone", "hydroxyzine", True),
        # Mirtazapine and trazodone share N06AX ("other antidepressants") as well: one class.
        ("mirtazapine", "trazodone", False),
    ],
)
def test_a_residual_subclass_is_told_apart_by_its_atc_group(
    post: Callable[[dict[str, Any]], Any], second: str, third: str, fires: bool
) -> None:
    pid = f"p-residual-{second}"
    resources = [
        intolerance("ai-1", pid, "sertraline50", day(300), "Nausea"),
        _named("ai-2", pid, second, 200, "Dizziness"),
        _named("ai-3", pid, third, 100, "Felt weird"),
    ]
    assert (RI in topics(post(request("patient-view", pid, resources)))) is fires


# A record is read as a whole sentence of the chart: a danger word that is denied, "fall" the
# season, a vague effect beside a pharmacological one, and an after cue that goes on to say
# something else (probes reg r00-r19, a00-a19: each counted before c09c6fb..59634c1).
_READ_AS_WRITTEN = [
    # a denied danger word does not exclude (excluded_reaction_negation_cues) ...
    ("Nausea (no fever)", True),
    ("Dizziness, no falls", True),
    ("Dizziness, no fall", True),
    ("Headache; denies fever", True),
    ("Headache, negative for fever", True),
    # ... nor does "fall" the season (a year after it, or "last fall")
    ("Tried fall 2025 - nausea", True),
    ("Started last fall, nausea", True),
    ("Nausea since the fall of 2025", True),
    # near misses: a danger word reported, even beside a denied one, still excludes
    ("Fever", False),
    ("Nausea and fever", False),
    ("Dizziness, fell in the fall of 2025", False),
    ("No nausea but fever", False),
    # a vague effect beside an expected pharmacological one counts ...
    ("Dizzy and unsteady", True),
    ("Dizziness/unsteadiness", True),
    ("Nausea, dry mouth", True),
    ("Headache and hair thinning", True),
    ("Nausea, tired, yawning", True),
    ("Nausea and thirst", True),
    ("Lightheaded and off balance", True),
    # ... near misses: expected pharmacology alone, in one part or several, does not
    ("Dry mouth", False),
    ("Weight gain", False),
    ("Weight gain of 10 kg", False),
    ("Dry mouth and blurred vision", False),
    ("Unsteady; diplopia", False),
]


@pytest.mark.parametrize(("reaction", "fires"), _READ_AS_WRITTEN)
def test_an_allergy_list_reaction_is_read_as_written(
    post: Post, reaction: str, fires: bool
) -> None:
    pid = "pharm-read-ai-" + "".join(ch for ch in reaction.lower() if ch.isalnum())[:28]
    resources = _two_and(pid, "quetiapine", reaction)
    assert (RI in topics(post(request("patient-view", pid, resources)))) is fires


@pytest.mark.parametrize(
    ("reason", "fires"),
    [
        # (the allergy list's words, but "lightheaded": stop_reason_words do not name it)
        *[case for case in _READ_AS_WRITTEN if not case[0].startswith("Lightheaded")],
        # an after cue past a dash that goes on to say something else does not negate the
        # side effect before the dash (improvement after stopping is a positive dechallenge)
        ("Nausea - none since stopping", True),
        ("Nausea - no issue with mood, stopped", True),
        ("GI upset - not a problem before dose increase", True),
        # near misses: the after cue ends the piece, and a negation right before
        ("Ineffective. Side effects - none reported", False),
        ("Ineffective. SE - denied", False),
        ("Ineffective; no nausea", False),
    ],
)
def test_a_stop_reason_is_read_as_written(post: Post, reason: str, fires: bool) -> None:
    pid = "pharm-read-mr-" + "".join(ch for ch in reason.lower() if ch.isalnum())[:28]
    resources = [*_three(pid, "Nausea")[:2],
                 _stopped_saying("mr-q", pid, "quetiapine100", 60, reason)]
    assert (RI in topics(post(request("patient-view", pid, resources)))) is fires


@pytest.mark.parametrize(
    ("reason", "fires"),
    [
        ("Stopped due to fatigue", True),
        ("Jittery on it", True),
        ("Brain fog", True),
        ("Felt weird on it", True),
        ("Lightheaded", True),
        # Near misses: the burden of taking pills is no effect; a denied effect is none.
        ("Tired of taking pills", False),
        ("No fatigue; ineffective", False),
    ],
)
def test_the_vague_effects_of_a_nocebo_response_are_side_effects(
    post: Callable[[dict[str, Any]], Any], reason: str, fires: bool
) -> None:
    # Sertraline (nausea) and venlafaxine (headache) intolerances, and quetiapine stopped with
    # ``reason``: the third unrelated class when the reason names a side effect.
    pid = "p-vague-" + "".join(ch for ch in reason.lower() if ch.isalnum())[:20]
    resources = [intolerance("ai-1", pid, "sertraline50", day(300), "Nausea"),
                 intolerance("ai-2", pid, "venlafaxine75", day(200), "Headache"),
                 _stopped_saying("mr-q", pid, "quetiapine100", 60, reason)]
    assert (RI in topics(post(request("patient-view", pid, resources)))) is fires
