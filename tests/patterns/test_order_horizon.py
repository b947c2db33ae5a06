"""Old orders and fills left unmapped (``fhir_mappers.order_horizon``, ``fill_horizon``) never
change what the patterns say.

Beside the fixtures and archetypes (``test_evidence_horizon``): the benchmark's long histories
(rotating agents, augmenters, restarts years apart, daily fills) at three sizes and three dates,
with and without a draft being signed; and a property test over generated order histories of one
or two ingredients, built to sit on every edge of the rule: gaps around the continuation gap,
restarts long after the cut-off, unknown doses before a restart, open orders from long ago,
multi-step orders, partial and unreadable dates, stops for intolerance, as-needed orders,
statements, proposals, and fills of each ingredient old and recent, dated in every form. Each
compares findings, evidence, references and abstentions with the record mapped in full, and the
long histories check that orders and fills really were left out. The fills' own edges (a trial
that began before the cut-off, a fill on its first day, an undated order) have tests of their
own at the end.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fhir_mappers.order_candidates as order_candidates_module
from bench.shapes import shape_bundle
from cds_service.patterns.engine import assess, evidence_horizon
from cds_service.patterns.order_reach import day_thresholds, order_horizon
from cds_service.patterns.regimen import is_stale, signs_of_life
from cds_service.patterns.timeline import dated_drafts, episodes, taken_courses
from cds_service.synthetic import catalogue as cat
from fhir_mappers.accessors import parse_period
from fhir_mappers.mapper import map_draft_orders, map_record
from fhir_mappers.order_candidates import full_day
from fhir_mappers.record import PatientRecord
from tests.patterns.test_evidence_horizon import (
    CODES,
    DEFAULTS,
    SETTINGS,
    TABLE,
    assert_same_assessment,
)

NOW = date(2026, 6, 15)
GAP = 30  # continuation_gap_days in config/default.yaml (doubled: 60)


def _concept(name: str) -> dict[str, Any]:
    drug = cat.DRUGS[name]
    return {"coding": [{"system": cat.RXNORM, "code": drug.rxcui}], "text": drug.name}


def _line(dose: float | None, start: str | None, end: str | None, **extra: Any) -> dict[str, Any]:
    bounds = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    line: dict[str, Any] = {
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        **extra,
    }
    if bounds:
        line["timing"]["repeat"]["boundsPeriod"] = bounds
    if dose is not None:
        line["doseAndRate"] = [{"doseQuantity": {"value": dose, "unit": "mg"}}]
    return line


def _draft(name: str, dose: float) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": f"draft-{name}",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": _concept(name),
        "subject": {"reference": "Patient/p1"},
        "dosageInstruction": [_line(dose, None, None)],
    }


# -- the benchmark's long histories ---------------------------------------------------------


@pytest.mark.parametrize("config", sorted(SETTINGS))
@pytest.mark.parametrize("shape", ["psych-meds", "daily-dispenses", "mix"])
def test_long_histories_give_the_same_findings_without_their_old_orders(
    shape: str, config: str
) -> None:
    dropped = {}
    for size in (150, 700, 2000):
        for as_of in (date(2026, 11, 30), date(2025, 2, 28), date(2023, 8, 1)):
            bundle = shape_bundle(shape, size, as_of=as_of)
            drafts, _ = map_draft_orders(
                [_draft("sertraline", 150), _draft("quetiapine", 300)], TABLE, codes=CODES
            )
            for hook, given_drafts in (("patient-view", ()), ("order-sign", drafts)):
                _, orders = assert_same_assessment(
                    [bundle], given_drafts, SETTINGS[config], as_of, hook
                )
                dropped[size] = orders
    if shape in ("psych-meds", "mix") and config == "default":
        # Not vacuous: most of a long history of psychotropic orders is left out.
        assert dropped[2000] > 300
        assert dropped[150] == 0  # 1.2 years of history: nothing is old enough


def test_most_old_orders_of_a_long_history_are_not_mapped() -> None:
    bundle = shape_bundle("psych-meds", 1000, as_of=NOW)
    full = map_record([bundle], TABLE, codes=CODES)
    bounded = map_record([bundle], TABLE, codes=CODES, order_horizon=order_horizon(DEFAULTS, NOW))
    cutoff = order_horizon(DEFAULTS, NOW).cutoff
    old = [c for c in full.courses if c.end is not None and c.end < cutoff]
    assert len(full.courses) == 491
    assert len(full.courses) - len(bounded.courses) > 0.8 * len(old)
    # What is kept is every order that is not old, and a few old ones per ingredient.
    assert {c.ref for c in full.courses if c not in old} <= {c.ref for c in bounded.courses}


# -- the cut-off -------------------------------------------------------------------------------


@pytest.mark.parametrize("config", sorted(SETTINGS))
def test_the_cutoff_lies_beyond_every_window_of_every_enabled_pattern(config: str) -> None:
    patterns = SETTINGS[config]
    horizon = order_horizon(patterns, NOW)
    assert horizon.cutoff <= evidence_horizon(patterns, NOW)
    for pattern_settings in patterns.values():
        reach = sum(day_thresholds(pattern_settings.thresholds))
        assert horizon.cutoff < NOW - timedelta(days=reach)
    gaps = [ps.thresholds.continuation_gap_days for ps in patterns.values()
            if hasattr(ps.thresholds, "continuation_gap_days")]
    assert horizon.gap_days == max(gaps)


def test_a_pattern_turned_off_no_longer_holds_the_cutoff_back() -> None:
    off = {pid: ps.model_copy(update={"mode": "off"}) if pid == "multiple-failed-trials" else ps
           for pid, ps in DEFAULTS.items()}
    assert order_horizon(off, NOW).cutoff > order_horizon(DEFAULTS, NOW).cutoff


@given(st.text(alphabet="0123456789-T:Z+. W", max_size=30))
@settings(max_examples=500, deadline=None, derandomize=True, database=None)
def test_the_quick_day_reading_agrees_with_the_mapper(value: str) -> None:
    day = full_day(value)
    if day is not None:
        assert parse_period(value) == (day, day)


@pytest.mark.parametrize(
    "value",
    ["2019-05-06", "2019-05-06T10:00:00Z", "2019-05-06T10:00+02:00", "2019-05-06T10:00:00.5Z"],
)
def test_the_quick_day_reading_reads_iso_days(value: str) -> None:
    assert full_day(value) == date(2019, 5, 6)


@pytest.mark.parametrize("value", ["2019-05", "2019", "2019-02-30", "20190506", " 2019-05-06",
                                   "2019-W01-1", "2019-05-06 10:00"])
def test_anything_else_is_not_read_quickly(value: str) -> None:
    assert full_day(value) is None  # such an order is mapped in full


# -- generated histories -------------------------------------------------------------------

_PAIRS = (
    ("sertraline",),
    ("sertraline", "escitalopram"),  # one class: switches, replacements
    ("sertraline", "quetiapine"),  # an augmenter
    ("quetiapine", "aripiprazole"),
    ("escitalopram", "lithium carbonate"),
)
# First the usual, since hypothesis draws the first of a sampled list most often.
_GAPS = (GAP + 1, 200, 0, GAP, GAP - 1, 900, -20, 2 * GAP, 2 * GAP + 1, 90, 400, 1500)
_REASONS = {
    "lack": {"coding": [{"system": cat.SNOMED, "code": "182838002"}], "text": "Not effective"},
    "intolerance": {"text": "Stopped: side effects (nausea)"},
    "allergy": {"coding": [{"system": cat.SNOMED, "code": "416098002"}]},
    "other": {"text": "moved away"},
}


def _when(day: date, form: str) -> Any:
    if form == "instant":
        return f"{day.isoformat()}T10:15:00+02:00"
    if form == "month":
        return day.isoformat()[:7]
    if form == "junk":
        return "sometime in spring"
    return day.isoformat()


def _often(usual: tuple[Any, ...], rare: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """One of ``usual`` about seven times in eight, else one of ``rare``."""
    return st.sampled_from(usual * (7 * len(rare)) + rare * len(usual))


@st.composite
def _order(
    draw: st.DrawFn, oid: str, name: str, start: date, end: date, clean: bool
) -> dict[str, Any]:
    """One order or statement. ``clean``: only what the rule may still drop (as-needed, unknown
    doses, cancelled or proposed orders, statements, other stop reasons); otherwise also what it
    must map in full (open orders, partial or unreadable dates, dose steps, intolerance)."""
    def pick(usual: tuple[Any, ...], rare: tuple[Any, ...], odd: tuple[Any, ...] = ()) -> Any:
        return draw(_often(usual, rare if clean else rare + odd))

    status = pick(("completed", "stopped"),
                  ("active", "on-hold", "cancelled", "unknown", "draft", "entered-in-error"))
    dose = pick((50.0, 100.0, 150.0, 200.0), (None,))
    closed = pick((True,), (True,), (False,))
    start_form = pick(("day", "instant"), ("absent",), ("month", "junk"))
    end_form = pick(("day",), ("day",), ("month", "junk"))
    end_text = _when(end, end_form) if closed else None
    reason = pick((None, "lack"), ("other",), ("intolerance", "allergy"))
    prn = pick((False,), (True,))
    extra: dict[str, Any] = {"asNeededBoolean": True} if prn else {}
    if pick(("request",), ("statement",)) == "statement":
        period = {"start": _when(start, start_form if start_form != "absent" else "day")}
        if end_text is not None:
            period["end"] = end_text
        resource: dict[str, Any] = {
            "resourceType": "MedicationStatement",
            "id": oid,
            "status": "not-taken" if status == "cancelled" else (
                "completed" if status in ("stopped", "unknown", "on-hold") else status),
            "medicationCodeableConcept": _concept(name),
            "subject": {"reference": "Patient/p1"},
            "effectivePeriod": period,
            "dosage": [_line(dose, None, None, **extra)],
        }
        if reason is not None:
            resource["statusReason"] = [_REASONS[reason]]
        return resource
    lines: list[dict[str, Any]]
    bounds_start = start.isoformat()
    if pick((False,), (False,), (True,)):  # a titration in two steps
        middle = start + (end - start) / 2
        lines = [
            _line(None if dose is None else dose / 2, bounds_start, middle.isoformat(),
                  sequence=1, **extra),
            _line(dose, (middle + timedelta(days=1)).isoformat(), end_text, sequence=2, **extra),
        ]
    else:
        lines = [_line(dose, bounds_start, end_text, **extra)]
    resource = {
        "resourceType": "MedicationRequest",
        "id": oid,
        "status": status,
        "intent": pick(("order",), ("plan", "proposal")),
        "medicationCodeableConcept": _concept(name),
        "subject": {"reference": "Patient/p1"},
        "dosageInstruction": lines,
    }
    if start_form != "absent":
        resource["authoredOn"] = _when(start, start_form)
    if reason is not None:
        resource["statusReason"] = _REASONS[reason]
    return resource


@st.composite
def _fill(draw: st.DrawFn, fid: str, name: str, day: date) -> dict[str, Any]:
    """One fill handed over on ``day``: usually dated by ``whenHandedOver`` as a day or
    dateTime with a days' supply; now and then by a month, words or only ``whenPrepared``,
    without a supply, or not completed."""
    form = draw(_often(("instant", "day"), ("month", "junk", "absent")))
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": fid,
        "status": draw(_often(("completed",), ("in-progress", "entered-in-error"))),
        "medicationCodeableConcept": _concept(name),
        "subject": {"reference": "Patient/p1"},
        "quantity": {"value": 30},
    }
    supply = draw(_often((30, 90), (None, 1000)))
    if supply is not None:
        resource["daysSupply"] = {"value": supply, "unit": "d"}
    if form != "absent":
        resource["whenHandedOver"] = _when(day, form)
    if form in ("absent", "junk"):
        resource["whenPrepared"] = day.isoformat()
    return resource


@st.composite
def _history(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Orders of one or two ingredients, oldest first, their fills, some PHQ-9 scores, and
    drafts."""
    names = draw(st.sampled_from(_PAIRS))
    resources: list[dict[str, Any]] = []
    for name in names:
        # An old history: clean or not, renewed without a break (across the cut-off) or not.
        clean = draw(st.sampled_from((True, True, False)))
        gaps = draw(st.sampled_from((_GAPS, _GAPS, (0, 10, GAP - 1, GAP, -20))))
        ago = draw(st.sampled_from((3000, 4400, 2200, 3700, 1500))) + draw(st.integers(0, 90))
        for index in range(draw(st.sampled_from((12, 6, 40, 1, 3)))):
            start = NOW - timedelta(days=ago)
            length = draw(st.sampled_from((30, 60, 14, 1, 120, 28, 400)))
            end = start + timedelta(days=length)
            oid = f"{name.split()[0]}-{index}"
            resources.append(draw(_order(oid, name, start, end, clean)))
            if draw(st.sampled_from((False, False, False, True))):
                ago -= draw(st.sampled_from((7, 20)))  # the next starts while this one runs
            else:
                ago -= length + draw(st.sampled_from(gaps))
            if ago < 0:
                break
        # Often a recent stretch too (a restart long after the cut-off, dose changes).
        ago = draw(st.sampled_from((80, 200, 45, 600, 1000, -1)))
        for index in range(draw(st.sampled_from((3, 1, 5)))):
            if ago < 0:
                break
            start = NOW - timedelta(days=ago)
            length = draw(st.sampled_from((14, 30, 60, 120)))
            end = start + timedelta(days=length)
            oid = f"{name.split()[0]}-recent-{index}"
            resources.append(draw(_order(oid, name, start, end, clean)))
            ago -= length + draw(st.sampled_from((0, 10, GAP + 1)))
    for name in names:
        # Fills of the ingredient over the whole history (``fhir_mappers.fill_horizon``): old and
        # recent, with and without a days' supply, dated in every form the mapper reads.
        days = draw(st.lists(st.integers(0, 4600), max_size=8))
        days += draw(st.lists(st.integers(0, 400), max_size=3))
        for index, ago in enumerate(days):
            resources.append(draw(_fill(f"{name.split()[0]}-fill-{index}", name,
                                        NOW - timedelta(days=ago))))
    for index, ago in enumerate(draw(st.lists(st.integers(0, 1600), max_size=12))):
        resources.append({
            "resourceType": "Observation",
            "id": f"phq-{index}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": (NOW - timedelta(days=ago)).isoformat(),
            "valueInteger": draw(st.integers(5, 24)),
        })
    drafts = [_draft(name, draw(st.sampled_from((50.0, 100.0, 200.0))))
              for name in draw(st.lists(st.sampled_from(names), max_size=1))]
    return draw(st.permutations(resources)), drafts


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=_history(), config=st.sampled_from(sorted(SETTINGS)),
       later=st.sampled_from((0, 0, 31, 365)))
def test_generated_histories_give_the_same_assessment(
    history: tuple[list[dict[str, Any]], list[dict[str, Any]]], config: str, later: int
) -> None:
    resources, draft_resources = history
    drafts, _ = map_draft_orders(draft_resources, TABLE, codes=CODES)
    now = NOW + timedelta(days=later)
    patterns = SETTINGS[config]
    for hook in ("patient-view", "order-sign"):
        assert_same_assessment(resources, drafts, patterns, now, hook)
    # The rule's own promise, stronger than what the detectors happen to show: every episode
    # that reaches past the cut-off is the same, with its gap and previous dose, in each
    # pattern's reading of the courses.
    horizon = order_horizon(patterns, now)
    full = map_record(resources, TABLE, codes=CODES)
    bounded = map_record(resources, TABLE, codes=CODES, order_horizon=horizon)
    assert _read_episodes(bounded, drafts, patterns, now, horizon.cutoff) == _read_episodes(
        full, drafts, patterns, now, horizon.cutoff
    )


def _read_episodes(
    record: PatientRecord, drafts: Any, patterns: Any, now: date, cutoff: date
) -> list[list[tuple[Any, ...]]]:
    """The episodes each episode-reading pattern cuts (its courses, its gap) that last past
    ``cutoff``, with everything an episode carries."""
    signs = signs_of_life(record)
    taken = list(taken_courses(record))
    with_drafts = [*taken, *dated_drafts(drafts, now)]
    escalation = patterns["regimen-escalation"].thresholds
    readings = [
        (taken, patterns["multiple-failed-trials"].thresholds.continuation_gap_days),
        ([c for c in with_drafts if not c.is_prn],
         patterns["visits-lag-changes"].thresholds.continuation_gap_days),
        ([c for c in with_drafts if not c.is_prn
          and not is_stale(c, record, now, escalation.stale_order_days, signs)],
         escalation.continuation_gap_days),
    ]
    return [
        [
            (e.ingredient.name, e.start, e.last_day, e.is_open, e.gap_before, e.previous_dose,
             tuple(c.ref for c in e.courses), e.ending_course.ref)
            for e in episodes(courses, now, continuation_gap_days=gap)
            if e.last_day >= cutoff
        ]
        for courses, gap in readings
    ]


# -- the rule's edges, one by one ----------------------------------------------------------


def _order_of(
    oid: str, name: str, start: str, end: str | None, dose: float | None, *,
    status: str = "completed", reason: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": oid,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": _concept(name),
        "subject": {"reference": "Patient/p1"},
        "authoredOn": start,
        "dosageInstruction": [_line(dose, start, end)],
    }
    if reason is not None:
        resource["statusReason"] = _REASONS[reason]
    return resource


def _dropped(resources: list[dict[str, Any]]) -> set[str]:
    full = map_record(resources, TABLE, codes=CODES)
    bounded = map_record(resources, TABLE, codes=CODES, order_horizon=order_horizon(DEFAULTS, NOW))
    return {c.ref for c in full.courses} - {c.ref for c in bounded.courses}


def test_a_stop_without_a_date_keeps_the_later_agents_of_its_class() -> None:
    """Sertraline stopped for lack of effect without an end date ends where the next other
    antidepressant begins: in full, the escitalopram episode began before it, so the next is
    fluoxetine, in the look-back (a failed trial). Dropping the first escitalopram order would
    make a later escitalopram order begin an episode of its own, end the sertraline trial in
    2013 and lose the finding."""
    resources = [
        _order_of("ser", "sertraline", "2012-03-01", None, 100.0, status="stopped",
                  reason="lack"),
        _order_of("esc-1", "escitalopram", "2011-06-01", "2013-06-01", 10.0),
        _order_of("esc-2", "escitalopram", "2013-06-15", "2013-09-01", 20.0),
        _order_of("flu", "fluoxetine", "2024-01-01", "2024-06-01", 40.0, status="stopped",
                  reason="lack"),
        _order_of("esc-now", "escitalopram", "2026-03-01", None, 10.0, status="active"),
    ]
    assert_same_assessment(resources, (), DEFAULTS, NOW, "patient-view")
    assert assess_findings(resources) == ["multiple-failed-trials"]
    assert _dropped(resources) == set()  # both escitalopram orders last past 2012-03-01


def test_a_restart_keeps_the_episode_before_it_and_its_last_known_dose() -> None:
    """Escitalopram restarted now after years: the restart's gap and the dose before it come
    from the last old order (the sentinel); an older order with an unknown dose does not stop
    the walk, and the orders before the sentinel are dropped."""
    resources = [
        _order_of("esc-1", "escitalopram", "2015-01-01", "2015-03-01", 10.0),
        _order_of("esc-2", "escitalopram", "2015-03-10", "2015-06-01", 20.0),
        _order_of("esc-3", "escitalopram", "2018-01-01", "2018-04-01", 20.0),
        _order_of("esc-4", "escitalopram", "2018-04-15", "2018-08-01", None),
        _order_of("esc-now", "escitalopram", "2026-05-01", None, 10.0, status="active"),
    ]
    assert_same_assessment(resources, (), DEFAULTS, NOW, "patient-view")
    assert _dropped(resources) == {"MedicationRequest/esc-1", "MedicationRequest/esc-2"}


def assess_findings(resources: list[dict[str, Any]]) -> list[str]:
    """The pattern ids of the findings on the record mapped in full, at ``NOW``."""
    record = map_record(resources, TABLE, codes=CODES)
    return [f.pattern_id for f in assess(record, (), DEFAULTS, NOW, raise_errors=True).findings]


def test_orders_without_an_id_keep_their_references() -> None:
    """``#<position>`` counts every resource, dropped or not; dropped orders report nothing."""
    resources = [
        _order_of("x", "escitalopram", "2015-01-01", "2015-03-01", 10.0),
        _order_of("x", "escitalopram", "2015-03-10", "2015-06-01", 20.0),
        _order_of("x", "escitalopram", "2018-01-01", "2018-04-01", 20.0),
        _order_of("x", "escitalopram", "2026-05-01", None, 10.0, status="active"),
    ]
    for resource in resources:
        del resource["id"]
    resources[0]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["unit"] = "drops"
    full = map_record(resources, TABLE, codes=CODES)
    bounded = map_record(resources, TABLE, codes=CODES, order_horizon=order_horizon(DEFAULTS, NOW))
    assert [c.ref for c in full.courses] == ["#0", "#1", "#2", "#3"]
    assert [c.ref for c in bounded.courses] == ["#2", "#3"]
    assert [i.ref for i in full.issues] == ["#0"]  # the dose unit of the first order
    assert bounded.issues == ()


def test_a_quick_reading_that_disagrees_with_the_mapping_drops_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def a_day_early(value: Any) -> date | None:
        day = full_day(value)
        return None if day is None else day - timedelta(days=1)

    resources = [
        _order_of("esc-1", "escitalopram", "2015-01-01", "2015-03-01", 10.0),
        _order_of("esc-2", "escitalopram", "2018-01-01", "2018-04-01", 20.0),
        _order_of("esc-now", "escitalopram", "2026-05-01", None, 10.0, status="active"),
    ]
    assert _dropped(resources) == {"MedicationRequest/esc-1"}
    monkeypatch.setattr(order_candidates_module, "full_day", a_day_early)
    assert _dropped(resources) == set()


# -- old fills (fhir_mappers.fill_horizon) -------------------------------------------------


def _fill_of(fid: str, name: str, day: date, supply: int = 30) -> dict[str, Any]:
    return {
        "resourceType": "MedicationDispense",
        "id": fid,
        "status": "completed",
        "medicationCodeableConcept": _concept(name),
        "subject": {"reference": "Patient/p1"},
        "quantity": {"value": supply},
        "daysSupply": {"value": supply, "unit": "d"},
        "whenHandedOver": f"{day.isoformat()}T11:00:00Z",
    }


def _fills_kept(resources: list[dict[str, Any]]) -> set[str]:
    bounded = map_record(resources, TABLE, codes=CODES, order_horizon=order_horizon(DEFAULTS, NOW))
    return {d.ref for d in bounded.dispenses}


def test_a_trial_that_began_before_the_cutoff_keeps_its_fills_from_its_start() -> None:
    """Sertraline renewed every 90 days from 2021 to its stop for lack of effect in 2024 (inside
    the look-back), filled every 90 days for 30 days until 2023, then monthly. Its days
    covered count from its first fill, years before the cut-off: 57%, below the 80% a trial
    needs, so it is not a failed trial, and one other failed trial (escitalopram) is not
    enough. Without the fills before the cut-off it would read as adherent (100%), and the
    card would fire."""
    cutoff = order_horizon(DEFAULTS, NOW).cutoff
    resources: list[dict[str, Any]] = []
    start = date(2021, 1, 1)
    for index in range(14):
        end = start + timedelta(days=89)
        last = index == 13
        resources.append(_order_of(
            f"ser-{index}", "sertraline", start.isoformat(), end.isoformat(), 100.0,
            status="stopped" if last else "completed", reason="lack" if last else None))
        start = end + timedelta(days=1)
    day, index = date(2021, 1, 1), 0  # the first on the day the first order starts
    while day < date(2024, 5, 20):
        resources.append(_fill_of(f"ser-fill-{index}", "sertraline", day))
        day += timedelta(days=90 if day < date(2023, 1, 1) else 30)
        index += 1
    resources += [
        _order_of("esc", "escitalopram", "2024-07-01", "2025-06-01", 20.0, status="stopped",
                  reason="lack"),
    ]
    old = {f"MedicationDispense/{r['id']}" for r in resources
           if r["resourceType"] == "MedicationDispense" and r["whenHandedOver"] < str(cutoff)}
    assert len(old) >= 8  # the comparison is not vacuous: there are fills before the cut-off
    assert old <= _fills_kept(resources)
    assert assess_findings(resources) == []
    assert_same_assessment(resources, (), DEFAULTS, NOW, "patient-view")


def test_old_fills_are_left_out_only_before_the_first_course_of_their_ingredient() -> None:
    """Lithium filled in 2015-2016 with no lithium course mapped: left out. Sertraline filled
    in 2016, before the first sertraline course of 2020: left out; filled in 2020: kept (the
    course is open and still active, so its last sign of life is read). Quetiapine ordered
    without any date (no start: every fill of it could be its last sign of life): all kept."""
    undated = _order_of("que", "quetiapine", "x", None, 100.0, status="active")
    del undated["authoredOn"]
    del undated["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]
    resources = [
        _fill_of("li-1", "lithium carbonate", date(2015, 3, 1)),
        _fill_of("li-2", "lithium carbonate", date(2016, 3, 1)),
        _fill_of("ser-old", "sertraline", date(2016, 5, 1)),
        _order_of("ser", "sertraline", "2020-02-01", None, 100.0, status="active"),
        _fill_of("ser-2020", "sertraline", date(2020, 2, 3)),
        _fill_of("ser-recent", "sertraline", date(2026, 5, 1)),
        undated,
        _fill_of("que-old", "quetiapine", date(2014, 1, 1)),
    ]
    assert _fills_kept(resources) == {
        "MedicationDispense/ser-2020", "MedicationDispense/ser-recent",
        "MedicationDispense/que-old",
    }
    assert_same_assessment(resources, (), DEFAULTS, NOW, "patient-view")


def test_most_old_fills_of_a_long_history_are_not_mapped() -> None:
    """Rotating agents: most old fills are of episodes the order horizon left out. (A drug
    taken without a break since the first day keeps every fill: a trial's days covered are
    counted from its start.)"""
    bundle = shape_bundle("psych-meds", 3000, as_of=NOW)
    horizon = order_horizon(DEFAULTS, NOW)
    full = map_record([bundle], TABLE, codes=CODES)
    bounded = map_record([bundle], TABLE, codes=CODES, order_horizon=horizon)
    old = [d for d in full.dispenses if d.handed_over and d.handed_over < horizon.cutoff]
    assert len(old) > 300
    assert len(full.dispenses) - len(bounded.dispenses) > 0.9 * len(old)
    assert {d.ref for d in full.dispenses if d not in old} <= {d.ref for d in bounded.dispenses}
