""""Today" is the clinic's date: an EHR writes local dateTimes, so a visit this morning in Sydney
is dated 1 December while UTC still says 30 November. With ``service.timezone`` set, the visit
is today's and counts; with the default (UTC) it reads as tomorrow's and is left out, so a site
east of UTC must set its zone (docs/real-world-data.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask

from cds_service.errors import ConfigError
from cds_service.services import site_date
from cds_service.settings import load_settings
from cds_service.web.app import create_app
from tests.realworld.builders import daily, encounter, order, request
from tests.realworld.conftest import SERVICE
from tests.security.conftest import MemoryAuditStore

PID = "rw-sydney"
# 22:30 UTC on 30 November is 09:30 on 1 December in Sydney (AEDT, +11:00).
NOW = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)
PSYCHIATRY = [{"text": "Psychiatry follow-up"}]


def _app(timezone: str | None) -> Flask:
    overrides: dict[str, Any] = {"service": {"select_sign_dedup_minutes": 0}}
    if timezone is not None:
        overrides["service"]["timezone"] = timezone
    app = create_app(load_settings(overrides=overrides), audit_store=MemoryAuditStore(),
                     clock=lambda: NOW)
    app.testing = True
    return app


@pytest.fixture
def apps() -> Iterator[dict[str, Flask]]:
    built = {"sydney": _app("Australia/Sydney"), "default": _app(None)}
    yield built
    for app in built.values():
        app.extensions["psychopharm"].close()


def _signing_after_this_mornings_visit() -> dict[str, Any]:
    # Sertraline raised 50 days ago and quetiapine added 80 days ago, each at a psychiatry visit;
    # this morning's psychiatry visit (local time), then aripiprazole is signed: three changes in
    # 90 days, each with a visit on or before it.
    orders = [
        order("s-1", PID, "sertraline50", authored="2026-09-11T10:00:00+10:00",
              dosage=[daily(50)]),
        order("s-2", PID, "sertraline100", authored="2026-10-11T10:00:00+11:00",
              dosage=[daily(100)]),
    ]
    visits = [
        encounter("e-1", PID, "2026-09-11T09:00:00+10:00", end="2026-09-11T09:30:00+10:00",
                  type=PSYCHIATRY),
        encounter("e-2", PID, "2026-10-11T09:00:00+11:00", end="2026-10-11T09:30:00+11:00",
                  type=PSYCHIATRY),
        encounter("e-today", PID, "2026-12-01T08:30:00+11:00", end="2026-12-01T09:00:00+11:00",
                  type=PSYCHIATRY),
    ]
    draft = order("d-1", PID, "aripiprazole10", authored="2026-12-01T09:25:00+11:00",
                  status="draft", dosage=[daily(10)])
    return request("order-sign", PID, [*orders, *visits], drafts=[draft])


def _topics(app: Flask, body: dict[str, Any]) -> list[str]:
    response = app.test_client().post(f"/cds-services/{SERVICE['order-sign']}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return [c["source"]["topic"]["code"] for c in response.get_json()["cards"]]


def test_a_visit_this_morning_is_todays_in_the_sites_time_zone(
    apps: dict[str, Flask],
) -> None:
    body = _signing_after_this_mornings_visit()

    assert "visits-lag-changes" not in _topics(apps["sydney"], body)
    # The default reads 1 December as tomorrow: the visit is left out (hence the setting).
    assert "visits-lag-changes" in _topics(apps["default"], body)


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [("Australia/Sydney", date(2026, 12, 1)), ("UTC", date(2026, 11, 30)),
     ("America/New_York", date(2026, 11, 30))],
)
def test_the_sites_date_is_the_clock_read_in_its_zone(timezone: str, expected: date) -> None:
    assert site_date(NOW, timezone) == expected
    assert site_date(NOW.replace(tzinfo=None), timezone) == expected  # naive is taken as UTC


def test_an_unknown_time_zone_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigError, match="not an IANA time zone"):
        load_settings(overrides={"service": {"timezone": "Sydney"}})
