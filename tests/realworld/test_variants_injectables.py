"""Long-acting injectables as EHRs write them: given in clinic every few weeks, recorded by the
pharmacy with a supply of a day, named "IM SUSR" (Epic) or "intramuscular suspension, extended
release" (Cerner). Their fills are no measure of adherence, and a change from the oral form is a
change of form, not a dose increase."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.realworld.builders import daily, day, dispense, order, request
from tests.realworld.conftest import topics

Post = Callable[[dict[str, Any]], Any]


def _named(resource: dict[str, Any], name: str) -> dict[str, Any]:
    resource["medicationCodeableConcept"] = {"text": name}
    return resource


def _every_4_weeks(mg: float) -> dict[str, Any]:
    return {
        "timing": {"repeat": {"frequency": 1, "period": 4, "periodUnit": "wk"}},
        "route": {"text": "Intramuscular"},
        "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg",
                                          "system": "http://unitsofmeasure.org", "code": "mg"}}],
    }


@pytest.mark.parametrize(
    ("name", "dosage", "fires"),
    [
        ("aripiprazole 400 MG IM SUSR", _every_4_weeks(400), False),
        ("aripiprazole 400 MG intramuscular suspension, extended release", _every_4_weeks(400),
         False),
        ("aripiprazole 400 MG", _every_4_weeks(400), False),  # named plainly, given every 4 weeks
        ("aripiprazole 10 MG Oral Tablet", daily(10), True),  # the same fills of a daily tablet
    ],
    ids=["epic-im-susr", "cerner-words", "schedule-only", "oral-control"],
)
def test_fills_of_a_long_acting_injection_are_no_measure_of_adherence(
    post: Post, name: str, dosage: dict[str, Any], fires: bool
) -> None:
    pid = f"lai-{name.split()[-1].lower()}-{fires}"
    current = _named(order("mr-1", pid, "aripiprazole10", authored=day(170), dosage=[dosage]),
                     name)
    # Given on time every 28 days, recorded with a one-day supply.
    fills = [_named(dispense(f"md-{d}", pid, "aripiprazole10", day(d), days=1, quantity=1), name)
             for d in (168, 140, 112, 84, 56, 28)]
    fired = topics(post(request("patient-view", pid, [current, *fills])))
    assert ("nonadherence" in fired) is fires


def test_oral_to_long_acting_is_a_change_of_form_not_a_dose_increase(post: Post) -> None:
    pid = "lai-escalation"
    oral = _named(order("mr-o", pid, "aripiprazole10", authored=day(150), status="completed",
                        dosage=[daily(10, timing={"repeat": {
                            "frequency": 1, "period": 1, "periodUnit": "d",
                            "boundsPeriod": {"start": day(150), "end": day(60)}}})]),
                  "aripiprazole 10 MG Oral Tablet")
    lai = _named(order("mr-l", pid, "aripiprazole10", authored=day(60),
                       dosage=[_every_4_weeks(400)]), "aripiprazole 400 MG IM SUSR")
    others = [
        _named(order("mr-s", pid, "sertraline50", authored=day(100), dosage=[daily(50)]),
               "sertraline 50 MG Oral Tablet"),
    ]
    # Two changes at most (sertraline new; the LAI is the same agent in another form): under 3.
    body = request("patient-view", pid, [oral, lai, *others])
    assert "regimen-escalation" not in topics(post(body))


# A depot recognised however the chart names it: by the product table's name of a bare RxNorm
# code, a depot salt or brand, an injection route, or a sig given less often than daily. The
# fills are those of a depot given on time every 28 days, recorded with a supply of a day: read
# by oral fill rules they are a PDC near 0.04.
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"


def _depot_case(
    pid: str, medication: dict[str, Any], dosage: list[dict[str, Any]],
    fill_medication: dict[str, Any] | None = None,
) -> dict[str, Any]:
    current = order("mr-1", pid, "aripiprazole10", authored=day(170), dosage=dosage)
    current["medicationCodeableConcept"] = medication
    fills = []
    for d in (168, 140, 112, 84, 56, 28):
        fill = dispense(f"md-{d}", pid, "aripiprazole10", day(d), days=1, quantity=1)
        fill["medicationCodeableConcept"] = fill_medication or medication
        fills.append(fill)
    return request("patient-view", pid, [current, *fills])


def _code_only(code: str) -> dict[str, Any]:
    return {"coding": [{"system": RXNORM, "code": code}]}


def _route(code: str, display: str) -> list[dict[str, Any]]:
    return [{"text": "400 mg", "route": {"coding": [{"system": SNOMED, "code": code,
                                                     "display": display}]}}]


@pytest.mark.parametrize(
    ("medication", "dosage", "fires"),
    [
        # A bare RxNorm code, no display, no sig: the product table names a prefilled syringe.
        pytest.param(_code_only("858054"), [], False, id="code-only-paliperidone-palmitate"),
        pytest.param(_code_only("312941"), [], True, id="code-only-oral-tablet-control"),
        # A depot salt or brand in the name.
        pytest.param({"text": "haloperidol decanoate 100 mg/mL"}, [], False, id="decanoate"),
        pytest.param({"text": "Invega Sustenna 156 MG"}, [], False, id="brand-invega-sustenna"),
        pytest.param({"text": "Abilify Maintena 400 MG"}, [], False, id="brand-abilify-maintena"),
        pytest.param({"text": "Invega 6 MG"}, [], True, id="oral-brand-invega-control"),
        pytest.param({"text": "haloperidol 5 MG Oral Tablet"}, [], True, id="oral-salt-control"),
        # An injection route, coded or in words, with a plain product name.
        pytest.param({"text": "aripiprazole 400 MG"}, _route("78421000", "Intramuscular route"),
                     False, id="route-snomed-im"),
        pytest.param({"text": "aripiprazole 400 MG"}, _route("34206005", ""), False,
                     id="route-snomed-sc-no-display"),
        pytest.param({"text": "aripiprazole 400 MG"}, [{"text": "400 mg", "route": {"text": "IM"}}],
                     False, id="route-text-im"),
        pytest.param({"text": "aripiprazole 400 MG"}, _route("26643006", "Oral route"), True,
                     id="route-oral-control"),
        # A free-text sig given less often than daily.
        pytest.param({"text": "aripiprazole 400 MG"}, [{"text": "400 mg every 4 weeks"}], False,
                     id="sig-every-4-weeks"),
        pytest.param({"text": "aripiprazole 400 MG"}, [{"text": "400 mg monthly"}], False,
                     id="sig-monthly"),
        pytest.param({"text": "aripiprazole 400 MG"}, [{"text": "400 mg q4w"}], False,
                     id="sig-q4w"),
        pytest.param({"text": "aripiprazole 10 MG"},
                     [{"text": "10 mg daily, increase by 5 mg weekly as tolerated"}], True,
                     id="sig-daily-titrated-weekly-control"),
        # A cadence in the sig that is not the dose's: the structured timing, or a time of day,
        # gives a daily dose; "every 3 months" is the blood test's, "monthly" the refill's.
        pytest.param({"text": "aripiprazole 10 MG Oral Tablet"},
                     [daily(10, text="Take 1 tablet by mouth. Blood test every 3 months.")],
                     True, id="structured-daily-sig-names-a-lab-cadence"),
        pytest.param({"text": "aripiprazole 10 MG"},
                     [{"text": "1 tablet by mouth at night. Refill monthly."}], True,
                     id="time-of-day-sig-names-a-refill-cadence"),
        pytest.param({"text": "aripiprazole 10 MG"},
                     [{"text": "1 tablet in the morning; follow up every 4 weeks"}], True,
                     id="morning-sig-names-a-visit-cadence"),
    ],
)
def test_a_depot_is_recognised_by_its_code_salt_brand_route_or_sig(
    post: Post, medication: dict[str, Any], dosage: list[dict[str, Any]], fires: bool
) -> None:
    pid = "lai-" + "".join(ch for ch in f"{medication}{dosage}" if ch.isalnum())[-50:]
    fired = topics(post(_depot_case(pid, medication, dosage)))
    assert ("nonadherence" in fired) is fires


@pytest.mark.parametrize(
    ("fill_name", "fires"),
    [
        pytest.param("Invega Sustenna 234 MG", False, id="fills-of-a-depot"),
        pytest.param("paliperidone 6 MG 24HR Extended Release Oral Tablet", True,
                     id="fills-of-the-oral-tablet"),
    ],
)
def test_fills_of_a_depot_are_no_measure_even_under_a_plain_order(
    post: Post, fill_name: str, fires: bool
) -> None:
    """The order names the ingredient only; the fills, one a day's supply every 28 days, name a
    depot: the fill rules do not apply. Fills of the oral tablet under the same order do."""
    pid = f"lai-fills-{fires}"
    body = _depot_case(pid, {"text": "paliperidone"}, [], {"text": fill_name})
    assert ("nonadherence" in topics(post(body))) is fires
