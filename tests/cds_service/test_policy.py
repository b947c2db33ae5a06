"""Card policy: modes, suppression after override, select->sign dedup, the card cap."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.policy import (
    Decision,
    apply_policy,
    dedup_key,
    is_same_evidence,
    order_fingerprint,
)
from cds_service.settings import Mode, PatternSettings
from fhir_mappers.record import Ingredient, MedicationCourse

PRIORITY = {
    "repeated-intolerance": 1,
    "multiple-failed-trials": 2,
    "psychotropic-polypharmacy": 3,
    "regimen-escalation": 4,
    "visits-lag-changes": 5,
    "nonadherence": 6,
}
SERTRALINE = Ingredient("sertraline", "36437", "N06AB06", "antidepressant", "SSRI", True, 50)
QUETIAPINE = Ingredient("quetiapine", "51272", "N05AH04", "antipsychotic", "SGA", True)


def _settings(**modes: Mode) -> dict[str, PatternSettings]:
    return {
        pid: PatternSettings(mode=modes.get(pid.replace("-", "_"), "active"), priority=p)
        for pid, p in PRIORITY.items()
    }


def _finding(pattern_id: str, *keys: str) -> Finding:
    return Finding(
        pattern_id=pattern_id,
        evidence=tuple(EvidenceItem(f"MedicationRequest/{k}", k, None) for k in keys),
        facts={},
        evidence_keys=frozenset(keys),
    )


def _decide(
    findings: list[Finding],
    patterns: Mapping[str, PatternSettings] | None = None,
    *,
    max_cards: int = 3,
    overridden: Mapping[str, frozenset[str] | None] | None = None,
    already_shown: frozenset[str] = frozenset(),
) -> dict[str, str]:
    decision = apply_policy(
        findings,
        patterns or _settings(),
        max_cards=max_cards,
        overridden=overridden or {},
        already_shown=already_shown,
    )
    return {f.pattern_id: d for f, d in decision.outcomes}


def test_all_active_within_the_cap_are_shown_in_priority_order() -> None:
    findings = [_finding("nonadherence", "md-1"), _finding("repeated-intolerance", "mr-1")]
    decision = apply_policy(
        findings, _settings(), max_cards=3, overridden={}, already_shown=frozenset()
    )
    assert [f.pattern_id for f in decision.shown] == ["repeated-intolerance", "nonadherence"]
    assert decision.not_shown == ()


def test_silent_pattern_is_audited_not_shown() -> None:
    outcome = _decide(
        [_finding("regimen-escalation", "mr-1")], _settings(regimen_escalation="silent")
    )
    assert outcome == {"regimen-escalation": "silent"}


def test_off_pattern_is_dropped_if_it_reaches_the_policy() -> None:
    outcome = _decide(
        [_finding("nonadherence", "md-1"), _finding("repeated-intolerance", "mr-1")],
        _settings(nonadherence="off"),
    )
    assert outcome == {"repeated-intolerance": "shown"}


def test_unknown_pattern_is_dropped() -> None:
    assert _decide([_finding("sedative-reliance", "x")]) == {}


def test_same_evidence_after_override_is_suppressed() -> None:
    outcome = _decide(
        [_finding("repeated-intolerance", "mr-1", "mr-2", "ai-3")],
        overridden={"repeated-intolerance": frozenset({"mr-1", "mr-2", "ai-3"})},
    )
    assert outcome == {"repeated-intolerance": "suppressed"}


def test_less_evidence_after_override_is_still_suppressed() -> None:
    # An intolerance record aged out of the lookback: nothing new to say.
    outcome = _decide(
        [_finding("repeated-intolerance", "mr-2", "ai-3")],
        overridden={"repeated-intolerance": frozenset({"mr-1", "mr-2", "ai-3"})},
    )
    assert outcome == {"repeated-intolerance": "suppressed"}


def test_grown_evidence_after_override_is_shown_again() -> None:
    outcome = _decide(
        [_finding("repeated-intolerance", "mr-1", "mr-2", "ai-3", "mr-4")],
        overridden={"repeated-intolerance": frozenset({"mr-1", "mr-2", "ai-3"})},
    )
    assert outcome == {"repeated-intolerance": "shown"}


def test_override_of_another_pattern_does_not_suppress() -> None:
    outcome = _decide(
        [_finding("nonadherence", "md-1")],
        overridden={"repeated-intolerance": frozenset({"md-1"}), "nonadherence": None},
    )
    assert outcome == {"nonadherence": "shown"}


def test_shown_at_order_select_is_deduplicated_at_order_sign() -> None:
    outcome = _decide(
        [_finding("regimen-escalation", "mr-1"), _finding("nonadherence", "md-1")],
        already_shown=frozenset({"regimen-escalation"}),
    )
    assert outcome == {"regimen-escalation": "deduplicated", "nonadherence": "shown"}


def test_cap_keeps_the_highest_priority_cards() -> None:
    findings = [_finding(pid, "k") for pid in reversed(list(PRIORITY))]
    outcome = _decide(findings, max_cards=2)
    assert outcome == {
        "repeated-intolerance": "shown",
        "multiple-failed-trials": "shown",
        "psychotropic-polypharmacy": "capped",
        "regimen-escalation": "capped",
        "visits-lag-changes": "capped",
        "nonadherence": "capped",
    }


def test_silent_suppressed_and_deduplicated_cards_do_not_use_the_cap() -> None:
    findings = [_finding(pid, "k") for pid in PRIORITY]
    outcome = _decide(
        findings,
        _settings(repeated_intolerance="silent"),
        max_cards=2,
        overridden={"multiple-failed-trials": frozenset({"k"})},
        already_shown=frozenset({"psychotropic-polypharmacy"}),
    )
    assert outcome == {
        "repeated-intolerance": "silent",
        "multiple-failed-trials": "suppressed",
        "psychotropic-polypharmacy": "deduplicated",
        "regimen-escalation": "shown",
        "visits-lag-changes": "shown",
        "nonadherence": "capped",
    }


def test_max_cards_zero_shows_nothing_but_keeps_every_finding() -> None:
    outcome = _decide([_finding("nonadherence", "md-1")], max_cards=0)
    assert outcome == {"nonadherence": "capped"}


def test_one_finding_per_pattern_first_wins() -> None:
    first, second = _finding("nonadherence", "md-1"), _finding("nonadherence", "md-2")
    decision = apply_policy(
        [first, second], _settings(), max_cards=3, overridden={}, already_shown=frozenset()
    )
    assert decision.outcomes == ((first, "shown"),)


def test_decision_is_immutable() -> None:
    decision = Decision(())
    with pytest.raises(AttributeError):
        decision.outcomes = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("current", "overridden", "same"),
    [
        ({"a", "b"}, {"a", "b"}, True),
        ({"a"}, {"a", "b"}, True),
        (set(), {"a"}, True),
        ({"a", "c"}, {"a", "b"}, False),
        ({"a"}, set(), False),
    ],
)
def test_is_same_evidence(current: set[str], overridden: set[str], same: bool) -> None:
    assert is_same_evidence(frozenset(current), frozenset(overridden)) is same


def _draft(ref: str, ingredient: Ingredient, dose: float | None) -> MedicationCourse:
    return MedicationCourse(
        ref=ref,
        source_type="MedicationRequest",
        display=f"{ingredient.name} {dose} MG Oral Tablet",
        ingredients=(ingredient,),
        status="draft",
        intent="order",
        start=None,
        end=None,
        daily_dose_mg=dose,
        is_draft=True,
    )


def test_order_fingerprint_is_stable_and_order_independent() -> None:
    a = _draft("MedicationRequest/d-1", SERTRALINE, 50)
    b = _draft("MedicationRequest/d-2", QUETIAPINE, 100)
    assert order_fingerprint([a, b]) == order_fingerprint([b, a])
    assert order_fingerprint([a]) == order_fingerprint(
        [_draft("MedicationRequest/d-1", SERTRALINE, 50)]
    )


@pytest.mark.parametrize(
    "changed",
    [
        _draft("MedicationRequest/d-1", SERTRALINE, 100),  # dose changed
        _draft("MedicationRequest/d-1", QUETIAPINE, 50),  # drug changed
        _draft("MedicationRequest/d-9", SERTRALINE, 50),  # another order
    ],
    ids=["dose", "drug", "ref"],
)
def test_a_changed_order_is_a_new_order(changed: MedicationCourse) -> None:
    original = _draft("MedicationRequest/d-1", SERTRALINE, 50)
    assert order_fingerprint([original]) != order_fingerprint([changed])


def test_dedup_key_separates_patient_prescriber_order_and_pattern() -> None:
    base = ("pk-1", "Practitioner/7", "fp-1", "nonadherence")
    variants = [
        ("pk-2", "Practitioner/7", "fp-1", "nonadherence"),
        ("pk-1", "Practitioner/8", "fp-1", "nonadherence"),
        ("pk-1", None, "fp-1", "nonadherence"),
        ("pk-1", "Practitioner/7", "fp-2", "nonadherence"),
        ("pk-1", "Practitioner/7", "fp-1", "regimen-escalation"),
    ]
    keys = {dedup_key(*base)} | {dedup_key(*v) for v in variants}
    assert len(keys) == 6
    assert dedup_key(*base) == dedup_key(*base)
    assert "Practitioner" not in dedup_key(*base)
