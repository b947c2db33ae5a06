"""Every detector copes with whatever a lenient mapper may hand it: missing dates and doses, odd
statuses, combination products, events in the future. It returns None, a well-formed Finding, or
a well-formed NotEvaluable (the data cannot support a finding either way: nonadherence with a
fill in its window whose days' supply is unknown)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.patterns import ALL_PATTERNS, Finding
from cds_service.patterns.abstention import NotEvaluable
from cds_service.patterns.evidence import MAX_EVIDENCE_ITEMS
from fhir_mappers.record import (
    Dispense,
    IntoleranceEvent,
    MedicationCourse,
    PatientRecord,
    SymptomScore,
    Visit,
)

from . import builders as b

_INGREDIENTS = (
    b.SERTRALINE,
    b.ESCITALOPRAM,
    b.VENLAFAXINE,
    b.QUETIAPINE,
    b.ARIPIPRAZOLE,
    b.CLOZAPINE,
    b.LITHIUM,
    b.LORAZEPAM,
)
_dates = st.none() | st.integers(-30, 1500).map(lambda n: b.NOW - timedelta(days=n))
_ingredients = st.lists(st.sampled_from(_INGREDIENTS), max_size=2, unique=True).map(tuple)
_doses = st.none() | st.sampled_from([0.0, 0.5, 10.0, 50.0, 150.0, 300.0])

_courses = st.builds(
    MedicationCourse,
    ref=st.text("abc123", min_size=1, max_size=4).map(lambda s: f"MedicationRequest/{s}"),
    source_type=st.sampled_from(["MedicationRequest", "MedicationStatement"]),
    display=st.just("x"),
    ingredients=_ingredients,
    status=st.sampled_from(
        [
            "active",
            "on-hold",
            "completed",
            "stopped",
            "not-taken",
            "entered-in-error",
            "unknown",
            "",
        ]
    ),
    intent=st.sampled_from(["order", "plan", "proposal", ""]),
    start=_dates,
    end=_dates,
    daily_dose_mg=_doses,
    stop_reason=st.sampled_from([None, "intolerance", "lack_of_effect", "other"]),
    is_prn=st.booleans(),
)
_drafts = st.builds(
    MedicationCourse,
    ref=st.just("MedicationRequest/draft"),
    source_type=st.just("MedicationRequest"),
    display=st.just("d"),
    ingredients=_ingredients,
    status=st.just("draft"),
    intent=st.just("order"),
    start=_dates,
    end=st.none(),
    daily_dose_mg=_doses,
    is_draft=st.just(True),
)
_records = st.builds(
    PatientRecord,
    courses=st.lists(_courses, max_size=12).map(tuple),
    intolerances=st.lists(
        st.builds(
            IntoleranceEvent,
            ref=st.just("AllergyIntolerance/1"),
            origin=st.just("AllergyIntolerance"),
            substance=st.just("s"),
            ingredients=_ingredients,
            when=_dates,
            kind=st.sampled_from(["intolerance", "allergy"]),
        ),
        max_size=5,
    ).map(tuple),
    visits=st.lists(
        st.builds(
            Visit,
            ref=st.just("Encounter/1"),
            status=st.sampled_from(["finished", "in-progress"]),
            class_code=st.sampled_from(["AMB", "VR", "IMP"]),
            start=_dates,
            end=_dates,
        ),
        max_size=5,
    ).map(tuple),
    dispenses=st.lists(
        st.builds(
            Dispense,
            ref=st.just("MedicationDispense/1"),
            display=st.just("x"),
            ingredients=_ingredients,
            status=st.sampled_from(["completed", "cancelled"]),
            handed_over=_dates,
            days_supply=st.none() | st.floats(0, 120),
        ),
        max_size=8,
    ).map(tuple),
    scores=st.lists(
        st.builds(
            SymptomScore,
            ref=st.just("Observation/1"),
            instrument=st.just("PHQ-9"),
            loinc=st.just("44261-6"),
            value=st.floats(0, 27),
            when=_dates,
        ),
        max_size=5,
    ).map(tuple),
)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(record=_records, drafts=st.lists(_drafts, max_size=2).map(tuple))
def test_detectors_return_none_or_a_well_formed_finding(
    record: PatientRecord, drafts: tuple[MedicationCourse, ...]
) -> None:
    for module in ALL_PATTERNS:
        finding = module.detect(record, drafts, b.defaults(module.PATTERN_ID), b.NOW)
        if finding is None:
            continue
        if isinstance(finding, NotEvaluable):
            assert finding.pattern_id == module.PATTERN_ID
            assert finding.reason.strip()
            assert finding.references
            refs = {d.ref for d in record.dispenses} | {c.ref for c in record.courses}
            assert set(finding.references) <= refs  # it names the records it could not use
            continue
        assert isinstance(finding, Finding)
        assert finding.pattern_id == module.PATTERN_ID
        assert finding.indicator == "info"
        assert finding.evidence_keys
        assert len(finding.evidence) <= MAX_EVIDENCE_ITEMS
        dates = [e.when for e in finding.evidence if e.when is not None]
        assert dates == sorted(dates)
        if not drafts:
            assert finding.concerns_draft is False
