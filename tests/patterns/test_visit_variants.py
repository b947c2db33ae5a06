"""Encounters as EHRs really send them, through the mapper into visits-lag-changes.

Each case is realistic R4 JSON (``tests.realworld.builders``: searchset-shaped resources, RxNorm
SCD codings, dated relative to 2026-11-30), mapped by ``map_record`` with config/codes.yaml and
evaluated by ``visits_lag_changes.detect`` with the thresholds of config/default.yaml. The story
is field case 02: sertraline 50 mg started 80 days ago, raised to 100 mg 50 days ago,
aripiprazole added 20 days ago (three changes in 90 days). Seen by a prescriber on each change
day the card stays silent; not seen, it fires. Four kinds, from a probe of real-world shapes:

1. a class the service cannot read is missing data, not "no visit": read the class's words as
   whole words or phrases ("Telehealth Visit"), count an unknown-class encounter whose type
   names a prescriber visit, and abstain when unreadable encounters could be the visits;
2. outpatient encounters with no prescriber (orders only, refill, nurse, injection, telephone,
   venipuncture) are not review visits;
3. an explicit prescriber term wins over an incidental exclusion word in the same type;
4. the hook's current encounter counts as today's visit only when its class and type allow.
"""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns.abstention import NotEvaluable
from cds_service.patterns.base import Finding
from cds_service.patterns.visits_lag_changes import PATTERN_ID, detect
from fhir_mappers import map_record
from fhir_mappers.record import PatientRecord
from tests.realworld.builders import ACT_CODE, EPIC_CLASS, daily, day, encounter, order
from tests.realworld.conftest import CASES_NOW

from .builders import defaults

NOW = CASES_NOW.date()
DEFAULTS = defaults(PATTERN_ID)
TABLE = load_ingredient_table()
CODES = load_code_lists()
PID = "p-visits"
CHANGE_DAYS = (80, 50, 20)
PSYCHIATRY = [{
    "coding": [{"system": "http://snomed.info/sct", "code": "390906007",
                "display": "Follow-up encounter"}],
    "text": "Psychiatry follow-up",
}]
LOCAL = "urn:oid:2.16.840.1.999.1"
CERNER_71 = "https://fhir.cerner.com/ec2458f2-1e24-41c8-b71b-0e701af7583d/codeSet/71"
CPT = "http://www.ama-assn.org/go/cpt"


def three_changes(last_change: int = 20) -> list[dict[str, Any]]:
    return [
        order("mr-1", PID, "sertraline50", authored=day(80, "T10:00:00Z"), status="stopped",
              dosage=[{**daily(50), "timing": {"repeat": {
                  "frequency": 1, "period": 1, "periodUnit": "d",
                  "boundsPeriod": {"start": day(80), "end": day(50)}}}}]),
        order("mr-2", PID, "sertraline100", authored=day(50, "T10:00:00Z"), dosage=[daily(100)]),
        order("mr-3", PID, "aripiprazole10", authored=day(last_change, "T10:00:00Z"),
              dosage=[daily(10)]),
    ]


def visits(klass: Any = None, typ: Any = PSYCHIATRY, days: tuple[int, ...] = CHANGE_DAYS,
           *, status: str = "finished") -> list[dict[str, Any]]:
    """A finished encounter on each day; ``klass`` "omit" leaves ``class`` out entirely."""
    out = []
    for n, ago in enumerate(days):
        resource = encounter(f"enc-{n}", PID, day(ago, "T15:00:00Z"), status=status,
                             klass=klass if klass != "omit" else None,
                             end=day(ago, "T15:30:00Z"))
        if klass == "omit":
            del resource["class"]
        if typ is not None:
            resource["type"] = typ
        out.append(resource)
    return out


def mapped(resources: list[dict[str, Any]], encounter_id: str | None = None) -> PatientRecord:
    return map_record(resources, TABLE, codes=CODES, encounter_id=encounter_id)


def evaluate(
    resources: list[dict[str, Any]], encounter_id: str | None = None
) -> Finding | NotEvaluable | None:
    return detect(mapped(resources, encounter_id), (), DEFAULTS, NOW)


# Kind 1: a class the service cannot read is missing, never evidence of no visit.

@pytest.mark.parametrize(
    ("klass", "expected"),
    [
        pytest.param({"system": LOCAL, "code": "TELE", "display": "Telehealth Visit"}, "VR",
                     id="local-telehealth-visit"),
        pytest.param({"system": LOCAL, "code": "VIDEO", "display": "Video Visit"}, "VR",
                     id="local-video-visit"),
        pytest.param({"system": CERNER_71, "code": "4502011", "display": "Clinic"}, "AMB",
                     id="cerner-clinic"),
        pytest.param({"text": "Inpatient Psychiatry"}, "IMP", id="text-inpatient-psychiatry"),
        pytest.param("Home Health Visit", "HH", id="dstu2-phrase-longest-wins"),
        # Near misses: whole words only, and words naming two classes are not read.
        pytest.param({"system": LOCAL, "code": "OP", "display": "Outpatient"}, "AMB",
                     id="outpatient-is-not-inpatient"),
        pytest.param({"system": LOCAL, "code": "EI", "display": "Emergency Inpatient"}, "",
                     id="two-classes-named-is-unread"),
        pytest.param({"system": LOCAL, "code": "X", "display": "Archives"}, "",
                     id="no-alias-inside-a-word"),
        # A code sent without its system is a v3 class only when it is one.
        pytest.param({"code": "AMB"}, "AMB", id="no-system-v3-code"),
        pytest.param({"code": "FLD"}, "FLD", id="no-system-v3-field-class"),
        pytest.param({"code": "CLINIC-7"}, "", id="no-system-local-code"),
        pytest.param({"code": "Telehealth Visit", "display": "Telehealth Visit"}, "VR",
                     id="no-system-local-code-read-by-its-display"),
        pytest.param("Clinic 7", "AMB", id="dstu2-word-with-an-alias-inside"),
        pytest.param("XYZ", "", id="dstu2-word-naming-no-class"),
    ],
)
def test_class_words_are_read_as_whole_words_or_phrases(klass: Any, expected: str) -> None:
    resource = encounter("enc-x", PID, day(3), klass=klass)
    assert mapped([resource]).visits[0].class_code == expected


@pytest.mark.parametrize(
    "klass",
    [
        pytest.param("omit", id="class-missing"),
        pytest.param({"system": LOCAL, "code": "TELE", "display": "Telehealth Visit"},
                     id="local-telehealth-visit"),
        pytest.param({"system": LOCAL, "code": "VIDEO", "display": "Video Visit"},
                     id="local-video-visit"),
        pytest.param({"system": CERNER_71, "code": "4502011", "display": "Clinic"},
                     id="cerner-clinic"),
        pytest.param({"system": EPIC_CLASS, "code": "13", "display": "Support OP Encounter"},
                     id="epic-support-op-encounter"),
        pytest.param({"code": "CLINIC-7"}, id="local-code-without-system"),
    ],
)
def test_a_psychiatry_visit_on_each_change_day_counts_whatever_its_class(klass: Any) -> None:
    assert evaluate(three_changes() + visits(klass)) is None


def test_unreadable_untyped_encounters_that_could_be_the_visits_abstain() -> None:
    # Near miss: the class and the type say nothing; counted, they would silence the card.
    result = evaluate(three_changes() + visits("omit", typ=None))
    assert isinstance(result, NotEvaluable)
    assert result.references == ("Encounter/enc-0", "Encounter/enc-1", "Encounter/enc-2")
    assert "unreadable class" in result.reason


def test_unreadable_encounters_that_cannot_change_the_answer_do_not_stop_the_card() -> None:
    # One unreadable encounter 85 days ago: three changes still outnumber one visit.
    assert isinstance(evaluate(three_changes() + visits("omit", typ=None, days=(85,))), Finding)


def test_an_unreadable_class_with_a_lab_type_is_not_a_visit() -> None:
    # Negative: the type says no prescriber was seen, whatever the class.
    assert isinstance(evaluate(three_changes() + visits("omit", typ=[{"text": "Lab Visit"}])),
                      Finding)


def test_a_change_during_a_stay_named_inpatient_psychiatry_is_left_out() -> None:
    # The aripiprazole start (20 days ago) falls in a stay whose class is only text; without
    # it two changes remain, below min_changes.
    stay = encounter("stay-1", PID, day(25, "T08:00:00Z"), klass={"text": "Inpatient Psychiatry"},
                     end=day(15, "T12:00:00Z"))
    record = mapped(three_changes() + [stay])
    assert record.visits[0].is_inpatient
    assert detect(record, (), DEFAULTS, NOW) is None


# Kinds 2 and 3: which outpatient encounter types are review visits.

@pytest.mark.parametrize(
    "typ",
    [
        pytest.param([{"text": "Orders Only"}], id="epic-orders-only"),
        pytest.param([{"text": "Refill"}], id="refill"),
        pytest.param([{"text": "Nurse Visit"}], id="nurse-visit"),
        pytest.param([{"text": "Injection"}], id="injection"),
        pytest.param([{"text": "Telephone"}], id="telephone"),
        pytest.param([{"coding": [{"system": CPT, "code": "36415"}]}], id="cpt-36415-venipuncture"),
        pytest.param([{"text": "Follow-up lab draw"}], id="general-follow-up-loses-to-lab"),
        pytest.param([{"text": "Psychiatry orders only"}], id="orders-only-wins-over-psychiatry"),
    ],
)
def test_encounters_without_a_prescriber_are_not_review_visits(typ: Any) -> None:
    assert isinstance(evaluate(three_changes() + visits(typ=typ)), Finding)


@pytest.mark.parametrize(
    "typ",
    [
        pytest.param([{"text": "Psychiatry follow-up - review lab results"}],
                     id="psychiatry-wins-over-lab"),
        pytest.param([{"text": "Clozapine clinic: blood draw and medication review"}],
                     id="medication-review-wins-over-blood-draw"),
        pytest.param([{"text": "Psychiatry telephone follow-up"}],
                     id="psychiatry-wins-over-telephone"),
        pytest.param([{"text": "Nurse practitioner visit"}], id="not-a-nurse-visit"),
        pytest.param(PSYCHIATRY, id="control-psychiatry-follow-up"),
    ],
)
def test_a_named_prescriber_visit_counts_despite_an_incidental_word(typ: Any) -> None:
    assert evaluate(three_changes() + visits(typ=typ)) is None


# Kind 4: the visit happening now. Two changes had visits; aripiprazole is started today.

def _today(klass: Any, typ: Any, status: str = "in-progress") -> dict[str, Any]:
    resource = encounter("enc-today", PID, day(0, "T11:30:00Z"), status=status, klass=klass)
    resource["type"] = typ
    return resource


@pytest.mark.parametrize(
    ("now_visit", "encounter_id"),
    [
        pytest.param(_today({"system": ACT_CODE, "code": "EMER"}, [{"text": "Emergency"}]),
                     "enc-today", id="hooks-encounter-is-an-ed-visit"),
        pytest.param(_today(None, [{"text": "Lab Visit"}]), None, id="open-lab-visit"),
        pytest.param(_today(None, [{"text": "Lab Visit"}], "finished"), "enc-today",
                     id="hooks-encounter-is-a-lab-visit"),
    ],
)
def test_an_encounter_now_that_is_no_review_does_not_count_for_today(
    now_visit: dict[str, Any], encounter_id: str | None
) -> None:
    history = three_changes(last_change=0) + visits(days=(80, 50))
    assert isinstance(evaluate(history + [now_visit], encounter_id), Finding)


@pytest.mark.parametrize(
    ("now_visit", "encounter_id"),
    [
        pytest.param([_today(None, PSYCHIATRY)], "enc-today", id="hooks-psychiatry-visit"),
        pytest.param([_today(None, PSYCHIATRY)], None, id="open-psychiatry-visit"),
        pytest.param([{k: v for k, v in _today(None, [{"text": "x"}]).items()
                       if k not in ("class", "type")}], "enc-today",
                     id="hooks-encounter-of-unknown-class-and-type"),
        pytest.param([], "enc-not-prefetched", id="hooks-encounter-not-on-record"),
    ],
)
def test_an_encounter_now_that_may_be_a_review_counts_for_today(
    now_visit: list[dict[str, Any]], encounter_id: str | None
) -> None:
    history = three_changes(last_change=0) + visits(days=(80, 50))
    assert evaluate(history + now_visit, encounter_id) is None


def test_a_code_naming_no_known_class_is_reported_and_its_kind_is_unknown() -> None:
    record = mapped([encounter("enc-x", PID, day(3), klass={"code": "CLINIC-7"})])

    assert record.visits[0].kind == "unknown"
    assert [i.reason for i in record.issues] == ["encounter class not mapped"]
