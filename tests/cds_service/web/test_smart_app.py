"""The medication-timeline SMART app end to end, against a loopback EHR (``smart_ehr.FakeEhr``).

The app is the real one (``create_app``) driven by Flask's test client; the EHR's authorization
server and FHIR server are real HTTP on 127.0.0.1. Where a browser would follow the EHR's redirect
to /app/callback, the test calls it with the code the EHR issued (the browser test follows it for
real).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer

from cds_service.settings import Settings
from cds_service.web.smart.session import LAUNCH_COOKIE, SESSION_COOKIE, SessionCodec
from tests.cds_service.timeline.history import (
    expected_lanes,
    expected_stops,
    fifteen_ingredient_history,
)
from tests.cds_service.web.smart_ehr import (
    ACCESS_TOKEN,
    FakeEhr,
    query,
    s256,
    smart_overrides,
)

PID = "pt-timeline-15"
LAUNCH = "launch-ctx-7f3a"
SEARCHED = {"MedicationRequest", "MedicationStatement", "MedicationDispense",
            "AllergyIntolerance", "Encounter", "Observation", "Condition"}


@pytest.fixture
def ehr(fhir: HTTPServer) -> FakeEhr:
    return FakeEhr(fhir, PID, fifteen_ingredient_history(PID)).install()


@pytest.fixture
def make_client(
    make_app: Callable[..., Flask], make_settings: Callable[..., Settings], ehr: FakeEhr
) -> Callable[..., FlaskClient]:
    def make(**smart: Any) -> FlaskClient:
        app = make_app(make_settings(smart_overrides(ehr.iss, **smart)))
        return app.test_client()

    return make


@pytest.fixture
def client(make_client: Callable[..., FlaskClient]) -> FlaskClient:
    return make_client()


def launch(client: FlaskClient, ehr: FakeEhr, iss: str | None = None) -> dict[str, str]:
    response = client.get("/app/launch", query_string={"iss": iss or ehr.iss, "launch": LAUNCH})
    assert response.status_code == 302, response.text
    return query(response.headers["Location"])


def authorize(ehr: FakeEhr, params: dict[str, str]) -> str:
    """What the user's browser does at the EHR: /authorize answers with a redirect to us."""
    import requests

    answer = requests.get(ehr.server.url_for("/auth/authorize"), params=params,
                          allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith("http://localhost/app/callback?")
    return location.removeprefix("http://localhost")


def sign_in(client: FlaskClient, ehr: FakeEhr) -> Any:
    callback = authorize(ehr, launch(client, ehr))
    return client.get(callback)


# --- the launch -------------------------------------------------------------------------------

def test_the_launch_redirect_carries_every_parameter(client: FlaskClient, ehr: FakeEhr) -> None:
    response = client.get("/app/launch", query_string={"iss": ehr.iss, "launch": LAUNCH})

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(ehr.server.url_for("/auth/authorize") + "?")
    params = query(location)
    assert params["response_type"] == "code"
    assert params["client_id"] == "timeline-app"
    assert params["redirect_uri"] == "http://localhost/app/callback"
    assert params["launch"] == LAUNCH
    assert params["aud"] == ehr.iss
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43  # base64url of a SHA-256 digest, no padding
    assert len(params["state"]) >= 32
    scopes = params["scope"].split()
    assert scopes[:3] == ["launch", "openid", "fhirUser"]
    assert {f"patient/{t}.rs" for t in SEARCHED} <= set(scopes)
    assert not any(s.endswith(".read") for s in scopes)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/app" in cookie
    assert params["state"] not in cookie and "code_verifier" not in cookie  # sealed, not plain


def test_each_launch_gets_its_own_state_and_challenge(client: FlaskClient, ehr: FakeEhr) -> None:
    first, second = launch(client, ehr), launch(client, ehr)
    assert first["state"] != second["state"]
    assert first["code_challenge"] != second["code_challenge"]


def test_a_smart_v1_server_is_asked_for_v1_scopes(client: FlaskClient, ehr: FakeEhr) -> None:
    ehr.v2 = False
    scopes = launch(client, ehr)["scope"].split()
    assert {f"patient/{t}.read" for t in SEARCHED} <= set(scopes)
    assert not any(s.endswith(".rs") for s in scopes)


def test_an_iss_that_is_not_allow_listed_is_refused_with_a_page(
    client: FlaskClient, ehr: FakeEhr
) -> None:
    elsewhere = ehr.server.url_for("/other-fhir").rstrip("/")
    response = client.get("/app/launch", query_string={"iss": elsewhere, "launch": LAUNCH})

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "not in fhir.allowed_servers" in response.text
    assert "What to do" in response.text
    assert ehr.authorize_requests == [] and ehr.server.log == []  # nothing was fetched from it


@pytest.mark.parametrize("query_string", [{"launch": LAUNCH}, {"iss": "", "launch": LAUNCH}])
def test_a_launch_without_iss_is_a_400_page(client: FlaskClient, query_string: Any) -> None:
    response = client.get("/app/launch", query_string=query_string)
    assert response.status_code == 400 and "no iss parameter" in response.text


@pytest.mark.parametrize("launch_value, message", [
    ("", "no launch parameter"), ("x" * 2049, "too long"),
])
def test_a_launch_without_a_usable_launch_value_is_a_400_page(
    client: FlaskClient, ehr: FakeEhr, launch_value: str, message: str
) -> None:
    response = client.get("/app/launch", query_string={"iss": ehr.iss, "launch": launch_value})
    assert response.status_code == 400 and message in response.text
    assert ehr.authorize_requests == []


def test_an_unconfigured_site_has_no_app(
    make_app: Callable[..., Flask], settings: Settings, ehr: FakeEhr
) -> None:
    client = make_app(settings).test_client()
    response = client.get("/app/launch", query_string={"iss": ehr.iss, "launch": LAUNCH})
    assert response.status_code == 404
    assert "smart.client_id is empty" in response.text


def test_an_unreachable_smart_configuration_is_a_502_page(
    client: FlaskClient, ehr: FakeEhr
) -> None:
    ehr.server.clear()  # the EHR answers nothing at all (500 "no handler")
    response = client.get("/app/launch", query_string={"iss": ehr.iss, "launch": LAUNCH})
    assert response.status_code == 502
    assert "SMART configuration could not be read" in response.text


# --- the callback -----------------------------------------------------------------------------

def test_a_wrong_state_is_refused_and_no_code_is_exchanged(
    client: FlaskClient, ehr: FakeEhr
) -> None:
    params = launch(client, ehr)
    callback = authorize(ehr, {**params, "state": "forged-" + params["state"][7:]})

    response = client.get(callback)

    assert response.status_code == 400
    assert "wrong state" in response.text
    assert ehr.token_requests == []


def test_a_callback_without_the_launch_cookie_is_refused(client: FlaskClient,
                                                         ehr: FakeEhr) -> None:
    callback = authorize(ehr, launch(client, ehr))
    client.delete_cookie("psychopharm_smart_launch", path="/app")
    response = client.get(callback)
    assert response.status_code == 400 and "another browser" in response.text
    assert ehr.token_requests == []


def test_the_token_exchange_sends_the_pkce_verifier_as_a_public_client(
    client: FlaskClient, ehr: FakeEhr
) -> None:
    params = launch(client, ehr)
    response = client.get(authorize(ehr, params))

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/app/")
    [(form, headers)] = ehr.token_requests
    assert form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == "http://localhost/app/callback"
    assert form["client_id"] == "timeline-app"
    assert s256(form["code_verifier"]) == params["code_challenge"]
    assert "Authorization" not in headers


def test_a_confidential_client_authenticates_with_http_basic(
    make_client: Callable[..., FlaskClient], ehr: FakeEhr
) -> None:
    ehr.client_secret = "s3cret-for-the-test"
    client = make_client(client_secret="s3cret-for-the-test")

    response = sign_in(client, ehr)

    assert response.status_code == 303
    [(form, headers)] = ehr.token_requests
    expected = base64.b64encode(b"timeline-app:s3cret-for-the-test").decode()
    assert headers["Authorization"] == f"Basic {expected}"
    assert "client_secret" not in form and "code_verifier" in form


def test_a_state_is_used_only_once(client: FlaskClient, ehr: FakeEhr) -> None:
    callback = authorize(ehr, launch(client, ehr))
    pending = client.get_cookie("psychopharm_smart_launch", path="/app")
    assert pending is not None
    assert client.get(callback).status_code == 303
    # Replayed with the very launch cookie it belongs to (state and cookie match):
    client.set_cookie("psychopharm_smart_launch", pending.value, path="/app")
    replay = client.get(callback)
    assert replay.status_code == 400
    assert "already used" in replay.text
    assert len(ehr.token_requests) == 1


def test_consent_denied_is_a_page_that_says_so(client: FlaskClient, ehr: FakeEhr) -> None:
    params = launch(client, ehr)
    response = client.get("/app/callback", query_string={"error": "access_denied",
                                                         "state": params["state"]})
    assert response.status_code == 403 and "Access was not granted" in response.text


def test_a_failing_token_endpoint_is_a_502_page(client: FlaskClient, ehr: FakeEhr) -> None:
    ehr.token_status = 500
    response = sign_in(client, ehr)
    assert response.status_code == 502
    assert "sign-in server" in response.text


# --- the timeline -----------------------------------------------------------------------------

def test_the_page_lists_one_lane_per_ingredient_with_doses_and_stop_reasons(
    client: FlaskClient, ehr: FakeEhr
) -> None:
    assert sign_in(client, ehr).status_code == 303
    page = client.get("/app/", query_string={"window": "all"})

    assert page.status_code == 200
    html = page.text
    lanes = expected_lanes()
    assert html.count('<g class="lane') == len(lanes) == 15
    for ingredient, doses in lanes.items():
        assert f'data-ingredient="{ingredient}"' in html
        row = _table_row(html, ingredient)
        written = [d for d in doses if f"{d:g} mg/day" in row]
        assert written == doses, (ingredient, doses, row)
    for ingredient, reason in expected_stops().items():
        assert f'<span class="reason">{reason}</span>' in _table_row(html, ingredient)
    for still_taken in set(lanes) - set(expected_stops()):
        assert 'class="reason"' not in _table_row(html, still_taken)
    assert "Nausea" in _table_row(html, "sertraline")
    # Every resource type was searched with the token, and the 31 orders took 4 pages.
    searched = {p.split("?")[0].rsplit("/", 1)[1] for p in ehr.fhir_requests}
    assert SEARCHED <= searched
    order_pages = [p for p in ehr.fhir_requests if p.startswith("/fhir/MedicationRequest?")]
    assert len(order_pages) == 4


def test_the_default_window_is_the_longest_pattern_window_with_a_link_to_everything(
    client: FlaskClient, ehr: FakeEhr
) -> None:
    sign_in(client, ehr)
    page = client.get("/app/").text
    assert 'id="window-all" href="/app/?window=all"' in page
    assert "2023-06-16 to 2026-06-15" in page  # 1095 days (multiple-failed-trials) before NOW
    assert page.count('<g class="lane') == 15  # lanes used only earlier are kept
    assert "used only before this window" in page


def test_the_cards_evidence_is_highlighted(client: FlaskClient, ehr: FakeEhr) -> None:
    ehr.app_context = json.dumps({"pattern": "repeated-intolerance", "evidence": [
        "MedicationRequest/mr-sertraline-3", "AllergyIntolerance/ai-lithium"]})
    sign_in(client, ehr)
    page = client.get("/app/?window=all").text
    assert "Side effects with medications from several unrelated classes" in page  # card title
    assert 'class="course evidence" data-ref="MedicationRequest/mr-sertraline-3"' in page
    assert 'class="reaction evidence" data-ref="AllergyIntolerance/ai-lithium"' in page
    assert page.count('class="course evidence"') == 1


def test_the_page_has_a_strict_csp_and_no_script(client: FlaskClient, ehr: FakeEhr) -> None:
    sign_in(client, ehr)
    page = client.get("/app/")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "<script" not in page.text and " style=" not in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"


def test_the_token_is_never_in_a_url_a_log_line_or_a_plain_cookie(
    client: FlaskClient, ehr: FakeEhr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = sign_in(client, ehr)
    page = client.get("/app/")

    assert page.status_code == 200
    assert ACCESS_TOKEN not in response.headers["Location"]
    assert ACCESS_TOKEN not in response.headers["Set-Cookie"]
    assert ACCESS_TOKEN not in page.text
    # Our log lines (the fake EHR's own werkzeug access log is not ours).
    ours = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")
    )
    assert "smart session started" in ours
    assert ACCESS_TOKEN not in ours and PID not in ours
    session_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    assert "Max-Age=3600" in session_cookie or "Max-Age=3599" in session_cookie


def test_the_session_ends_with_the_token(client: FlaskClient, ehr: FakeEhr) -> None:
    sign_in(client, ehr)
    cookie = client.get_cookie("psychopharm_smart_session", path="/app")
    assert cookie is not None
    codec = SessionCodec("s" * 40)
    session = codec.open(cookie.value, 60)
    assert session is not None and session["token"] == ACCESS_TOKEN
    assert 3590 <= session["exp"] - time.time() <= 3600  # expires_in of the token response
    expired = codec.seal({**session, "exp": int(time.time()) - 1})
    client.set_cookie("psychopharm_smart_session", expired, path="/app")
    assert client.get("/app/").status_code == 401


def test_without_a_session_the_page_asks_to_launch_again(client: FlaskClient) -> None:
    response = client.get("/app/")
    assert response.status_code == 401 and "Open the medication timeline again" in response.text


def test_a_tampered_session_cookie_is_refused(client: FlaskClient, ehr: FakeEhr) -> None:
    sign_in(client, ehr)
    cookie = client.get_cookie("psychopharm_smart_session", path="/app")
    assert cookie is not None
    client.set_cookie("psychopharm_smart_session", cookie.value[:-4] + "AAAA", path="/app")
    assert client.get("/app/").status_code == 401


def test_closing_the_timeline_ends_the_session(client: FlaskClient, ehr: FakeEhr) -> None:
    sign_in(client, ehr)
    stolen = client.get_cookie("psychopharm_smart_session", path="/app")
    assert stolen is not None
    assert client.post("/app/logout").status_code == 200
    client.set_cookie("psychopharm_smart_session", stolen.value, path="/app")  # replayed
    assert client.get("/app/").status_code == 401


def test_a_failing_fhir_server_is_a_502_page(client: FlaskClient, ehr: FakeEhr) -> None:
    sign_in(client, ehr)
    ehr.failing_types.add("MedicationRequest")
    response = client.get("/app/")
    assert response.status_code == 502
    assert "medication orders could not be read" in response.text


def test_missing_optional_data_is_named_on_the_page(client: FlaskClient, ehr: FakeEhr) -> None:
    sign_in(client, ehr)
    ehr.failing_types.add("Observation")
    page = client.get("/app/")
    assert page.status_code == 200
    assert "PHQ-9/GAD-7 scores" in page.text.split('id="unavailable"')[1].split("</p>")[0]


def _table_row(html: str, ingredient: str) -> str:
    start = html.index(f'<tr class="lane-row" data-ingredient="{ingredient}">')
    return html[start:html.index("</tr>", start)]


# --- several workers --------------------------------------------------------------------------

@pytest.mark.parametrize("cache", [
    pytest.param({}, id="audit-database"),
    pytest.param({"redis_url": "redis://127.0.0.1:6379/0"}, id="redis", marks=pytest.mark.redis),
])
def test_two_workers_share_sessions_used_states_and_closed_sessions(
    make_app: Callable[..., Flask], make_settings: Callable[..., Settings], ehr: FakeEhr,
    cache: dict[str, str],
) -> None:
    # Two apps = two gunicorn workers: nothing in common but the settings and the shared store
    # (the audit database both use, or Redis).
    settings = make_settings({**smart_overrides(ehr.iss), "cache": cache})
    worker_a, worker_b = make_app(settings).test_client(), make_app(settings).test_client()

    callback = authorize(ehr, launch(worker_a, ehr))
    pending = worker_a.get_cookie(LAUNCH_COOKIE, path="/app")
    assert pending is not None
    worker_b.set_cookie(LAUNCH_COOKIE, pending.value, path="/app")
    assert worker_b.get(callback).status_code == 303  # the callback lands on the other worker
    session = worker_b.get_cookie(SESSION_COOKIE, path="/app")
    assert session is not None
    worker_a.set_cookie(SESSION_COOKIE, session.value, path="/app")
    assert worker_a.get("/app/").status_code == 200  # and the page on the first one

    worker_a.set_cookie(LAUNCH_COOKIE, pending.value, path="/app")
    replay = worker_a.get(callback)
    assert replay.status_code == 400 and "already used" in replay.text
    assert len(ehr.token_requests) == 1

    assert worker_a.post("/app/logout").status_code == 200
    assert worker_b.get("/app/").status_code == 401  # closed on A, refused on B
