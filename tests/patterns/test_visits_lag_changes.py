"""visits-lag-changes: >= 3 regimen changes in 90 days outpacing review visits."""

from __future__ import annotations

import pytest

from cds_service.patterns.abstention import NotEvaluable
from cds_service.patterns.visits_lag_changes import PATTERN_ID, detect
from fhir_mappers.record import MedicationCourse, PatientRecord, Visit

from .builders import (
    ARIPIPRAZOLE,
    LORAZEPAM,
    NOW,
    QUETIAPINE,
    SERTRALINE,
    course,
    days_ago,
    defaults,
    draft,
    visit,
    with_thresholds,
)

DEFAULTS = defaults(PATTERN_ID)

# Sertraline raised 80 days ago, quetiapine added 50 days ago, lorazepam stopped 20 days ago.
SERTRALINE_50 = course(SERTRALINE, days_ago(200), mg=50, end=days_ago(80), status="completed")
SERTRALINE_100 = course(SERTRALINE, days_ago(80), mg=100)
QUETIAPINE_START = course(QUETIAPINE, days_ago(50), mg=50)
LORAZEPAM_STOP = course(LORAZEPAM, days_ago(300), mg=1, end=days_ago(20), status="stopped")
THREE_CHANGES = (SERTRALINE_50, SERTRALINE_100, QUETIAPINE_START, LORAZEPAM_STOP)


def _record(courses: tuple[MedicationCourse, ...], visits: tuple[Visit, ...]) -> PatientRecord:
    return PatientRecord(courses=courses, visits=visits)


def test_more_changes_than_visits_fire() -> None:
    finding = detect(_record(THREE_CHANGES, (visit(days_ago(85)),)), (), DEFAULTS, NOW)

    assert finding is not None
    assert finding.indicator == "info"
    assert finding.facts["change_count"] == 3
    assert finding.facts["visit_count"] == 1
    assert finding.facts["window_months"] == 3
    assert finding.facts["days_since_last_visit"] == 85
    assert finding.facts["min_changes"] == 3
    assert finding.facts["trigger"] == "fewer_visits"
    assert [(e.label, e.note) for e in finding.evidence] == [
        ("sertraline 100 mg/day", "dose up from 50 mg/day"),
        ("quetiapine 50 mg/day", "started"),
        ("lorazepam", "stopped"),
    ]
    assert len(finding.evidence_keys) == 3
    assert finding.concerns_draft is False


def test_no_visit_on_record_fires_both() -> None:
    finding = detect(_record(THREE_CHANGES, ()), (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["trigger"] == "both"
    assert finding.facts["days_since_last_visit"] is None


def test_visits_only_after_the_changes_fire_visit_gap() -> None:
    visits = (visit(days_ago(200)), visit(days_ago(15)), visit(days_ago(10)), visit(days_ago(5)))
    finding = detect(_record(THREE_CHANGES, visits), (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["trigger"] == "visit_gap"
    assert finding.facts["visit_count"] == 3


def test_draft_counts_as_a_change_dated_today() -> None:
    record = _record((SERTRALINE_50, SERTRALINE_100, QUETIAPINE_START), (visit(days_ago(85)),))
    assert detect(record, (), DEFAULTS, NOW) is None

    finding = detect(record, (draft(ARIPIPRAZOLE, 5),), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["change_count"] == 3
    assert finding.concerns_draft is True
    assert finding.evidence[-1].note == "started, draft order"
    assert finding.evidence[-1].when == NOW


def test_standing_pattern_with_a_renewal_draft_does_not_concern_it() -> None:
    finding = detect(_record(THREE_CHANGES, ()), (draft(QUETIAPINE, 50),), DEFAULTS, NOW)
    assert finding is not None
    assert finding.concerns_draft is False


@pytest.mark.parametrize(
    ("courses", "visits", "drafts"),
    [
        pytest.param((SERTRALINE_50, SERTRALINE_100, QUETIAPINE_START), (), (), id="two-changes"),
        pytest.param(
            THREE_CHANGES,
            (visit(days_ago(85)), visit(days_ago(60)), visit(days_ago(30))),
            (),
            id="visits-equal-changes",
        ),
        pytest.param(
            (SERTRALINE_50, SERTRALINE_100, QUETIAPINE_START),
            (visit(days_ago(85)),),
            (draft(QUETIAPINE, 50),),
            id="draft-renews-at-same-dose",
        ),
        pytest.param(
            (
                course(SERTRALINE, days_ago(300), mg=50, end=days_ago(91), status="completed"),
                course(SERTRALINE, days_ago(91), mg=100),
                QUETIAPINE_START,
                LORAZEPAM_STOP,
            ),
            (visit(days_ago(95)),),
            (),
            id="dose-change-91-days-ago",
        ),
        pytest.param(
            (
                course(SERTRALINE, days_ago(400), mg=100, end=days_ago(80), status="completed"),
                course(SERTRALINE, days_ago(80), mg=100),
                QUETIAPINE_START,
                LORAZEPAM_STOP,
            ),
            (visit(days_ago(85)),),
            (),
            id="renewal-at-same-dose",
        ),
    ],
)
def test_near_misses_do_not_fire(
    courses: tuple[MedicationCourse, ...],
    visits: tuple[Visit, ...],
    drafts: tuple[MedicationCourse, ...],
) -> None:
    assert detect(_record(courses, visits), drafts, DEFAULTS, NOW) is None


@pytest.mark.parametrize(
    "visits",
    [
        pytest.param(
            (
                visit(days_ago(85), class_code="IMP", end=days_ago(84)),
                visit(days_ago(60), class_code="EMER"),
                visit(days_ago(30)),
            ),
            id="inpatient-and-emergency-are-not-outpatient",
        ),
        pytest.param(
            (
                visit(days_ago(85)),
                visit(days_ago(60), status="cancelled"),
                visit(days_ago(30), status="planned"),
            ),
            id="cancelled-and-planned-do-not-count",
        ),
    ],
)
def test_only_completed_outpatient_visits_count(visits: tuple[Visit, ...]) -> None:
    finding = detect(_record(THREE_CHANGES, visits), (), DEFAULTS, NOW)
    assert finding is not None
    assert finding.facts["visit_count"] == 1


def test_virtual_visits_count() -> None:
    visits = (
        visit(days_ago(85), class_code="VR"),
        visit(days_ago(60), class_code="VR"),
        visit(days_ago(30)),
    )
    assert detect(_record(THREE_CHANGES, visits), (), DEFAULTS, NOW) is None


def test_changes_during_an_inpatient_stay_are_excluded() -> None:
    stay = visit(days_ago(82), class_code="IMP", end=days_ago(45))
    assert detect(_record(THREE_CHANGES, (stay,)), (), DEFAULTS, NOW) is None


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(PatientRecord(), id="empty-record"),
        pytest.param(
            _record(
                (
                    course(None, days_ago(80), mg=500),
                    course(None, days_ago(50)),
                    course(None, days_ago(300), end=days_ago(20), status="stopped"),
                ),
                (),
            ),
            id="non-psychotropic-changes",
        ),
    ],
)
def test_negatives(record: PatientRecord) -> None:
    assert detect(record, (draft(None, 500),), DEFAULTS, NOW) is None


# --- Only visits where a prescriber could review the regimen count -------------------------

from dataclasses import replace  # noqa: E402

from fhir_mappers.record import Coding  # noqa: E402

LAB_DRAW = (Coding("http://www.ama-assn.org/go/cpt", "36415", "Venipuncture"),)
PSYCHOTHERAPY_ONLY = (Coding("http://www.ama-assn.org/go/cpt", "90834", "Psychotherapy 45 min"),)


def _three_visits(type_codes: tuple[Coding, ...]) -> tuple[Visit, ...]:
    return tuple(replace(visit(days_ago(d)), type_codes=type_codes) for d in (85, 60, 30))


def test_three_office_visits_keep_pace_with_three_changes() -> None:
    assert (
        detect(_record(THREE_CHANGES, _three_visits(visit(NOW).type_codes)), (), DEFAULTS, NOW)
        is None
    )


def test_lab_draws_are_not_review_visits() -> None:
    """The mapper reads a lab-draw type as no prescriber visit (config/codes.yaml)."""
    lab_draws = tuple(
        replace(v, type_codes=LAB_DRAW, prescriber_visit=False) for v in _three_visits(LAB_DRAW)
    )
    finding = detect(_record(THREE_CHANGES, lab_draws), (), DEFAULTS, NOW)
    assert finding is not None and finding.facts["visit_count"] == 0


def test_unclassified_visits_count_unless_the_site_says_not() -> None:
    untyped = tuple(replace(v, type_codes=(), prescriber_visit=None) for v in _three_visits(()))
    assert detect(_record(THREE_CHANGES, untyped), (), DEFAULTS, NOW) is None
    strict = with_thresholds(PATTERN_ID, count_untyped_visits=False)
    assert detect(_record(THREE_CHANGES, untyped), (), strict, NOW) is not None


def test_a_change_during_an_observation_stay_is_not_counted() -> None:
    """Quetiapine started during an observation stay (an inpatient class in codes.yaml)."""
    stay = visit(days_ago(52), class_code="OBSENC", end=days_ago(48))
    assert detect(_record(THREE_CHANGES, (visit(days_ago(85)), stay)), (), DEFAULTS, NOW) is None
    emergency = visit(days_ago(52), class_code="EMER", end=days_ago(48))
    assert detect(_record(THREE_CHANGES, (visit(days_ago(85)), emergency)), (), DEFAULTS, NOW)


def test_prn_changes_are_not_regimen_changes() -> None:
    prn_stop = replace(LORAZEPAM_STOP, is_prn=True)
    record = _record(
        (SERTRALINE_50, SERTRALINE_100, QUETIAPINE_START, prn_stop), (visit(days_ago(85)),)
    )
    assert detect(record, (), DEFAULTS, NOW) is None


def test_visit_gap_threshold_is_named_with_its_unit() -> None:
    visits = (visit(days_ago(171)), visit(days_ago(55)), visit(days_ago(10)), visit(days_ago(5)))
    # the sertraline change 80 days ago came 91 days after the last visit
    assert detect(_record(THREE_CHANGES, visits), (), DEFAULTS, NOW) is not None
    wider = with_thresholds(PATTERN_ID, max_gap_since_visit_days=91)
    assert detect(_record(THREE_CHANGES, visits), (), wider, NOW) is None


def _stay(start: int, end: int | None) -> Visit:
    """A finished inpatient stay; ``end`` None: its end is not recorded."""
    stay = visit(days_ago(start), class_code="IMP")
    return replace(stay, end=days_ago(end) if end is not None else None)


@pytest.mark.parametrize(
    ("stay", "outcome"),
    [
        (_stay(60, None), "not-evaluable"),  # quetiapine and the lorazepam stop may be in hospital
        (_stay(60, 55), "finding"),  # discharged before both: outpatient changes
        (_stay(10, None), "finding"),  # began after the changes
    ],
    ids=["no-end", "ended-before-the-changes", "after-the-changes"],
)
def test_a_stay_without_a_recorded_end_leaves_the_changes_after_it_unknown(
    stay: Visit, outcome: str
) -> None:
    result = detect(_record(THREE_CHANGES, (visit(days_ago(85)), stay)), (), DEFAULTS, NOW)
    if outcome == "not-evaluable":
        assert isinstance(result, NotEvaluable)
        assert "hospital stay whose end is not recorded" in result.reason
    else:
        assert result is not None and not isinstance(result, NotEvaluable)
