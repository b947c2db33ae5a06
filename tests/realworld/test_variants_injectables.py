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
