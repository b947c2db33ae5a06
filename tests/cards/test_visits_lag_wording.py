"""The visits-lag-changes card says why it fired: fewer visits than changes, or a change made
long after the visit before it (with the number of days), and names the last visit by its date,
so that one visit never reads "1 prescriber visits" and a visit today never "0 days ago"."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from cards.builder import build_card
from cards.wording import Wording
from cds_service.patterns.visits_lag_changes import PATTERN_ID, detect
from fhir_mappers.record import PatientRecord
from tests.patterns.builders import NOW, days_ago, defaults, visit
from tests.patterns.test_visits_lag_changes import THREE_CHANGES


def _card(visit_days: tuple[int, ...], wording: Mapping[str, Wording]) -> dict[str, object]:
    visits = tuple(visit(days_ago(d)) for d in visit_days)
    record = PatientRecord(courses=THREE_CHANGES, visits=visits)
    finding = detect(record, (), defaults(PATTERN_ID), NOW)
    assert finding is not None
    return build_card(finding, wording[PATTERN_ID], patient_ref="Patient/p",
                      practitioner_ref="Practitioner/d", encounter_ref=None)


def test_a_change_long_after_the_visit_before_it_is_named_as_the_reason(
    wording: Mapping[str, Wording],
) -> None:
    # Visits 200, 15, 10 and 5 days ago: more visits than changes, but the changes 80 and 50
    # days ago and the stop 20 days ago came 120, 150 and 180 days after the visit before them.
    card = _card((200, 15, 10, 5), wording)
    assert "one 180 days after the visit before it" in str(card["summary"])
    assert "one of them 180 days after the prescriber visit before it" in str(card["detail"])
    assert f"the last on {days_ago(5).isoformat()}" in str(card["detail"])


@pytest.mark.parametrize("visits", [(85,), (0,)], ids=["one-visit", "visit-today"])
def test_counts_and_days_read_right_for_one_visit_and_a_visit_today(
    wording: Mapping[str, Wording], visits: tuple[int, ...]
) -> None:
    card = _card(visits, wording)
    text = f"{card['summary']} {card['detail']}"
    assert "1 prescriber visits" not in text
    assert "0 days ago" not in text
