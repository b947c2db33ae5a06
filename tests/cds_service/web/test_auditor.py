"""The auditor web view over a seeded SQLite audit store: access, figures, filters, escaping.

The store is filled through its public API (record_cards, flush, record_feedback) with a small
log whose figures are easy to check by hand (``seed_audit_log``; the browser test reuses it):

  pattern                     disposition    feedback
  repeated-intolerance        shown          overridden "Already discussed..." + comment
  repeated-intolerance        shown          accepted
  repeated-intolerance        shown          overridden "Already discussed..."
  repeated-intolerance        suppressed     -
  psychotropic-polypharmacy   shown          overridden "Consultation already arranged"
  psychotropic-polypharmacy   silent         -
  nonadherence                silent         -
  regimen-escalation          deduplicated   -
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.settings import Settings
from cds_service.storage.audit.records import AuditStore
from tests.audit_support import card, feedback

TOKEN = "auditor-token-4f9c2e"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
# The last card is logged on Friday 2026-06-12; the first two weeks back are ISO weeks 22 and 23.
LAST = datetime(2026, 6, 12, 9, 30, tzinfo=UTC)
CARD_SYSTEM = "https://psychopharm-cds.org/fhir/CodeSystem/pattern"


def auditor_settings(make_settings: Callable[..., Settings]) -> Settings:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    return make_settings({"auth": {"admin_token_sha256": digest}})


def card_json(pattern: str, summary: str, detail: str) -> str:
    """The card as the pipeline stores it (the raw patient reference already replaced)."""
    return json.dumps({
        "uuid": "placeholder",
        "summary": summary,
        "detail": detail,
        "indicator": "info",
        "source": {"label": "psychopharm-cds", "topic": {"system": CARD_SYSTEM, "code": pattern}},
        "suggestions": [{"label": "Book a follow-up visit within two weeks"}],
    })


SUMMARIES = {
    "repeated-intolerance": "Side effects with several unrelated medicines: explore expectations",
    "psychotropic-polypharmacy": "Five psychotropics together: consider a case consultation",
    "nonadherence": "Refills suggest the medicine is taken less than planned: ask openly",
    "regimen-escalation": "Doses have risen quickly: more frequent visits may help",
}


def logged_card(pattern: str, disposition: str, days_before_last: int, **changes: Any) -> Any:
    summary = changes.pop("summary", SUMMARIES[pattern])
    detail = changes.pop("detail", "**What we found**\n\n- three agents stopped for side effects")
    return card(
        pattern=pattern,
        disposition=disposition,
        shown=disposition == "shown",
        time=changes.pop("time", LAST - timedelta(days=days_before_last)),
        summary=summary,
        card_json=card_json(pattern, summary, detail),
        config_version="cfg-2026-06",
        **changes,
    )


def seed_audit_log(store: AuditStore) -> None:
    rows = [
        logged_card("repeated-intolerance", "shown", 14),
        logged_card("repeated-intolerance", "shown", 7),
        logged_card("repeated-intolerance", "shown", 7),
        logged_card("repeated-intolerance", "suppressed", 1),
        logged_card("psychotropic-polypharmacy", "shown", 7),
        logged_card("psychotropic-polypharmacy", "silent", 2),
        logged_card("nonadherence", "silent", 3),
        logged_card("regimen-escalation", "deduplicated", 0),
    ]
    store.record_cards(rows)
    store.flush()
    answered = LAST + timedelta(minutes=5)
    store.record_feedback([
        feedback(rows[0].card_uuid, outcome_time=answered,
                 override_comment="We talked through her fears at the last visit"),
        feedback(rows[1].card_uuid, outcome="accepted", override_code=None,
                 override_system=None, override_display=None, outcome_time=answered),
        feedback(rows[2].card_uuid, outcome_time=answered),
        feedback(rows[4].card_uuid, outcome_time=answered, override_code="consultation-arranged",
                 override_display="Consultation already arranged"),
    ])


@pytest.fixture
def auditor_app(make_app: Callable[..., Flask], make_settings: Callable[..., Settings]) -> Flask:
    app = make_app(auditor_settings(make_settings))
    seed_audit_log(app.extensions["psychopharm"].audit)
    return app


@pytest.fixture
def client(auditor_app: Flask) -> FlaskClient:
    return auditor_app.test_client()


def page(client: FlaskClient, query: str = "") -> str:
    response = client.get(f"/auditor/{query}", headers=BEARER)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def tile(html: str, name: str) -> str:
    match = re.search(rf'id="tile-{name}"><span class="value">([^<]*)</span>', html)
    assert match, f"tile {name} missing"
    return match.group(1)


def table_rows(html: str) -> list[str]:
    """The pattern of each row in the card table, in order."""
    return re.findall(r'<tr class="card-row" data-disposition="[^"]*" data-pattern="([^"]*)"', html)


# --- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="no-credential"),
    pytest.param({"Authorization": "Bearer not-the-token"}, id="wrong-bearer"),
    pytest.param({"Authorization": "Basic " + base64.b64encode(b"auditor:nope").decode()},
                 id="wrong-basic-password"),
    pytest.param({"Authorization": "Basic %%%"}, id="garbled-basic"),
])
@pytest.mark.parametrize("path", ["/auditor/", "/auditor/export.csv"])
def test_without_the_auditor_token_the_answer_is_401_with_a_basic_challenge(
    client: FlaskClient, headers: dict[str, str], path: str
) -> None:
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="psychopharm-cds auditor"'
    body = response.get_data(as_text=True)
    assert "Sign-in required" in body
    assert "Several medicines" not in body and "repeated-intolerance" not in body


def test_an_ehr_style_jwt_does_not_open_the_auditor_view(client: FlaskClient) -> None:
    jwt_like = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJlaHIifQ.c2ln"
    response = client.get("/auditor/", headers={"Authorization": f"Bearer {jwt_like}"})
    assert response.status_code == 401


def test_bearer_token_opens_the_page(client: FlaskClient) -> None:
    response = client.get("/auditor/", headers=BEARER)
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_basic_with_any_user_name_and_the_token_as_password_opens_the_page(
    client: FlaskClient,
) -> None:
    credentials = base64.b64encode(f"dr-quality-review:{TOKEN}".encode()).decode()
    response = client.get("/auditor/", headers={"Authorization": f"Basic {credentials}"})
    assert response.status_code == 200


def test_the_view_is_closed_when_no_auditor_token_is_configured(
    make_app: Callable[..., Flask], make_settings: Callable[..., Settings]
) -> None:
    app = make_app(make_settings())
    response = app.test_client().get("/auditor/", headers=BEARER)
    assert response.status_code == 401


def test_the_view_is_read_only(client: FlaskClient) -> None:
    for method in ("post", "put", "delete"):
        response = getattr(client, method)("/auditor/", headers=BEARER)
        assert response.status_code == 405
    assert 'method="post"' not in page(client).lower()


def test_the_stylesheet_is_served_locally(client: FlaskClient) -> None:
    html = page(client)
    assert "http://" not in html.split("<main>")[0] and "https://" not in html.split("<main>")[0]
    response = client.get("/auditor/static/auditor.css", headers=BEARER)
    assert response.status_code == 200
    assert "font-family" in response.get_data(as_text=True)
    response.close()


# --- figures --------------------------------------------------------------------------------


def test_summary_tiles_show_the_seeded_counts(client: FlaskClient) -> None:
    html = page(client)
    assert tile(html, "total") == "8"
    assert tile(html, "shown") == "4"
    assert tile(html, "not-shown") == "4"
    assert "silent 2, suppressed 1, deduplicated 1, capped 0" in html
    assert tile(html, "acceptance") == "25%"
    assert tile(html, "override") == "75%"
    assert "overridden (3 of 4 with feedback)" in html


def test_pattern_table_counts_each_pattern(client: FlaskClient) -> None:
    html = page(client)
    row = re.search(r'<tr data-pattern="repeated-intolerance">(.*?)</tr>', html, re.S)
    assert row
    cells = re.findall(r"<td>([^<]*)</td>", row.group(1))
    # cards, shown, silent, other not shown, accepted, overridden, override rate
    assert cells == ["4", "3", "0", "1", "1", "2", "67%"]
    row = re.search(r'<tr data-pattern="nonadherence">(.*?)</tr>', html, re.S)
    assert row
    assert re.findall(r"<td>([^<]*)</td>", row.group(1)) == ["1", "0", "1", "0", "0", "0", "—"]


def test_top_override_reasons_are_counted_with_their_comments(client: FlaskClient) -> None:
    html = page(client)
    section = html.split('id="reason-table"')[1].split("</table>")[0]
    reasons = re.findall(
        r"<tr><td>([^<]*)</td><td><code>([^<]*)</code></td>\s*<td>(\d+)</td><td>(\d+)</td></tr>",
        section,
    )
    assert reasons == [
        ("Already discussed with the patient", "discussed-with-patient", "2", "1"),
        ("Consultation already arranged", "consultation-arranged", "1", "0"),
    ]


def test_rows_show_the_card_as_seen_with_its_feedback(client: FlaskClient) -> None:
    html = page(client)
    assert table_rows(html)[0] == "regimen-escalation"  # newest first
    assert SUMMARIES["psychotropic-polypharmacy"] in html
    assert "**What we found**" in html  # Markdown kept as text, not rendered
    assert "Book a follow-up visit within two weeks" in html
    assert "We talked through her fears at the last visit" in html
    assert "cfg-2026-06" in html
    assert card().patient_key in html  # the pseudonymous key, the only patient identity shown
    assert "2026-06-12 09:30:00Z" in html


def test_the_svg_plot_has_one_series_per_pattern_in_each_panel(client: FlaskClient) -> None:
    html = page(client)
    svg = re.search(r'<svg [^>]*id="weekly-chart".*?</svg>', html, re.S)
    assert svg
    assert '<title id="weekly-chart-title">' in svg.group(0)
    for panel in ("shown", "override-rate"):
        series = re.findall(rf'<g class="series" data-panel="{panel}" data-pattern="([^"]+)"',
                            svg.group(0))
        assert sorted(series) == sorted(SUMMARIES), panel
    assert "Cards shown per week" in svg.group(0)
    assert "week of 2026-06-01: 2" in svg.group(0)  # two repeated-intolerance cards in week 23


# --- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    ("?pattern=psychotropic-polypharmacy", ["psychotropic-polypharmacy"] * 2),
    ("?disposition=silent", ["nonadherence", "psychotropic-polypharmacy"]),
    ("?outcome=overridden", ["psychotropic-polypharmacy"] + ["repeated-intolerance"] * 2),
    ("?outcome=none", ["regimen-escalation", "repeated-intolerance", "psychotropic-polypharmacy",
                       "nonadherence"]),
    ("?since=2026-06-10", ["regimen-escalation", "repeated-intolerance",
                           "psychotropic-polypharmacy"]),
    ("?until=2026-05-29", ["repeated-intolerance"]),  # a bare date includes that whole day
    ("?since=2026-06-05T09:30:00Z&until=2026-06-05T09:30:01Z",
     ["psychotropic-polypharmacy", "repeated-intolerance", "repeated-intolerance"]),
    ("?pattern=repeated-intolerance&outcome=accepted&disposition=", ["repeated-intolerance"]),
])
def test_filters_narrow_the_table_and_the_figures(
    client: FlaskClient, query: str, expected: list[str]
) -> None:
    html = page(client, query)
    assert sorted(table_rows(html)) == sorted(expected)
    assert tile(html, "total") == str(len(expected))


def test_filters_are_kept_in_the_form_and_the_export_link(client: FlaskClient) -> None:
    html = page(client, "?pattern=nonadherence&since=2026-06-01")
    assert '<option value="nonadherence" selected>' in html
    assert 'name="since" value="2026-06-01"' in html
    assert "/auditor/export.csv?pattern=nonadherence&amp;since=2026-06-01" in html


@pytest.mark.parametrize(("query", "message"), [
    ("?since=not-a-date", "since=&#39;not-a-date&#39; is not a date or date-time"),
    ("?until=2026-13-01", "until=&#39;2026-13-01&#39; is not a date"),
    ("?since=2026-06-10&until=2026-06-01", "since must be earlier than until"),
    ("?pattern=drug-seeking", "pattern=&#39;drug-seeking&#39; is not one of"),
    ("?disposition=hidden", "disposition=&#39;hidden&#39; is not one of"),
    ("?outcome=refused", "outcome=&#39;refused&#39; is not one of"),
    ("?page=0", "page=&#39;0&#39; must be a whole number"),
    ("?page=two", "page=&#39;two&#39; must be a whole number"),
])
def test_a_bad_filter_is_a_400_page_that_names_it(
    client: FlaskClient, query: str, message: str
) -> None:
    for path in ("/auditor/", "/auditor/export.csv"):
        response = client.get(path + query, headers=BEARER)
        assert response.status_code == 400
        assert response.mimetype == "text/html"
        assert message in response.get_data(as_text=True)


def test_pages_hold_fifty_rows(
    make_app: Callable[..., Flask], make_settings: Callable[..., Settings]
) -> None:
    app = make_app(auditor_settings(make_settings))
    store = app.extensions["psychopharm"].audit
    store.record_cards([
        logged_card("nonadherence", "shown", 0, time=LAST + timedelta(minutes=i))
        for i in range(53)
    ])
    store.flush()
    client = app.test_client()
    first, second = page(client), page(client, "?page=2&pattern=nonadherence")
    assert len(table_rows(first)) == 50 and "Page 1 of 2" in first
    assert len(table_rows(second)) == 3 and "Page 2 of 2" in second
    assert "/auditor/?page=2" in first
    assert "/auditor/?page=1&amp;pattern=nonadherence" in second
    assert "2026-06-12 10:22:00Z" in first.split('id="card-table"')[1]  # newest on page 1
    assert len(table_rows(page(client, "?page=9"))) == 0


# --- escaping -------------------------------------------------------------------------------


def test_html_in_a_card_or_a_comment_is_shown_as_text(
    make_app: Callable[..., Flask], make_settings: Callable[..., Settings]
) -> None:
    app = make_app(auditor_settings(make_settings))
    store = app.extensions["psychopharm"].audit
    hostile = logged_card(
        "nonadherence", "shown", 0,
        summary='<script>alert("summary")</script> refills',
        detail='<img src=x onerror="alert(1)"> and [link](javascript:alert(2))',
    )
    store.record_cards([hostile])
    store.flush()
    store.record_feedback([feedback(
        hostile.card_uuid, override_display="<b>bold reason</b>",
        override_comment="</td><script>alert(3)</script>",
    )])
    html = page(app.test_client())
    assert "<script" not in html
    assert "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#34;summary&#34;)&lt;/script&gt; refills" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert 'href="javascript' not in html


def test_csv_export_follows_the_filters(client: FlaskClient) -> None:
    response = client.get("/auditor/export.csv?outcome=overridden", headers=BEARER)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sorted(r["override_code"] for r in rows) == [
        "consultation-arranged", "discussed-with-patient", "discussed-with-patient",
    ]
    assert {r["outcome"] for r in rows} == {"overridden"}
    assert all(r["patient_key"] == card().patient_key for r in rows)


def test_a_filter_that_matches_nothing_says_so(client: FlaskClient) -> None:
    html = page(client, "?pattern=visits-lag-changes")
    assert tile(html, "total") == "0"
    assert tile(html, "acceptance") == "—"
    assert table_rows(html) == []
    assert "No cards match these filters." in html.split('id="weekly-chart"')[1]


def test_the_plot_escapes_what_the_log_holds() -> None:
    from datetime import date

    from cds_service.storage.audit.auditor_queries import WeekCounts
    from cds_service.web.auditor.charts import weekly_chart

    svg = str(weekly_chart([
        WeekCounts(date(2026, 6, 1), '"><script>alert(1)</script>', 3, 1, 1),
        WeekCounts(date(2026, 6, 15), "nonadherence", 5, 0, 2),
    ]))
    assert "<script" not in svg
    assert 'data-pattern="&#34;&gt;&lt;script&gt;' in svg
    assert "3 week(s), from the week of 2026-06-01 to the week of 2026-06-15" in svg
    assert "week of 2026-06-15: 100%" in svg  # two of two answered cards overridden
