"""The medication-timeline SMART on FHIR app: ``/app/launch``, ``/app/callback``, ``/app/``.

EHR launch (SMART App Launch 2.0): the EHR opens ``/app/launch?iss=&launch=``; the FHIR base must
be allow-listed (``fhir.allowed_servers``), its SMART configuration is read and the browser is sent
to the authorization endpoint with a fresh ``state`` and PKCE challenge (``oauth``). The EHR sends
it back to ``/app/callback?code=&state=``: the state is checked against the launch cookie and used
once (shared TTL store), the code is exchanged, and the token goes into the encrypted session
cookie (``session``). ``/app/`` reads the patient's history with that token and renders the
timeline (``cds_service.timeline``), the card's evidence highlighted.

Every failure is a short HTML page that says what happened and what to do (``errors``), never a
500. Pages are server-rendered without any script, under the same strict CSP as the auditor view.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from markupsafe import Markup

from cds_service.patterns import PATTERN_IDS
from cds_service.services import Services
from cds_service.storage.ttl_store import StoreUnavailable
from cds_service.timeline import (
    build_timeline,
    continuation_gap_days,
    longest_window_days,
    render_svg,
    render_table,
)
from cds_service.web.page_headers import STRICT_PAGE_HEADERS
from cds_service.web.smart import oauth
from cds_service.web.smart.errors import (
    RELAUNCH,
    LaunchError,
    bad_launch,
    not_configured,
    session_ended,
)
from cds_service.web.smart.records import read_history
from cds_service.web.smart.session import (
    COOKIE_PATH,
    LAUNCH_COOKIE,
    LAUNCH_MAX_AGE_S,
    MAX_COOKIE_BYTES,
    SESSION_COOKIE,
    SessionCodec,
    is_live,
    session_expiry,
)

log = logging.getLogger(__name__)

bp = Blueprint(
    "smart", __name__, url_prefix="/app",
    template_folder="templates", static_folder="static", static_url_path="/static",
)

_REF = re.compile(r"^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}$")
MAX_HIGHLIGHTS = 100
# The launch value is opaque but travels in the authorize URL; browsers and servers cap URLs.
MAX_LAUNCH_CHARS = 2048
STATE_KEY = "smart-state:"
REVOKED_KEY = "smart-revoked:"

_View = TypeVar("_View", bound=Callable[..., Response])


def _services() -> Services:
    services: Services = current_app.extensions["psychopharm"]
    return services


def _codec(services: Services) -> SessionCodec:
    return SessionCodec(services.settings.smart.session_secret)


def _redirect_uri(services: Services) -> str:
    return services.settings.service.public_base_url + "/app/callback"


def _secure_cookies(services: Services) -> bool:
    return services.settings.service.public_base_url.startswith("https://")


def error_page(exc: LaunchError) -> Response:
    """The short HTML page for ``exc``, with its status."""
    body = render_template(
        "smart/error.html", title=exc.title, message=exc.message, advice=exc.advice
    )
    return Response(body, status=exc.status, mimetype="text/html")


def _pages(view: _View) -> _View:
    """Turn a LaunchError into its page; configured or not, nothing else reaches the client."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        if not _services().settings.smart.enabled:
            return error_page(not_configured())
        try:
            return view(*args, **kwargs)
        except LaunchError as exc:
            log.info("smart: %s", exc)
            return error_page(exc)

    return wrapper  # type: ignore[return-value]


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers.update(STRICT_PAGE_HEADERS)
    return response


def _set_cookie(
    response: Response, services: Services, name: str, value: str, max_age: int
) -> None:
    if len(name) + len(value) > MAX_COOKIE_BYTES:
        # A token too large for a cookie cannot be kept without a server-side store.
        raise LaunchError(
            502, "The EHR's token is too large",
            "The access token does not fit in a browser cookie.",
            "Tell the informatics team: the timeline cannot keep tokens this large.",
        )
    response.set_cookie(
        name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="Lax",
        secure=_secure_cookies(services),
    )


@bp.get("/launch")
@_pages
def launch() -> Response:
    """EHR launch: check ``iss``, read its SMART configuration, redirect to authorize."""
    services = _services()
    smart = services.settings.smart
    iss = oauth.check_iss(services.fhir_client, request.args.get("iss"))
    launch_id = request.args.get("launch", "")
    if not launch_id:
        raise bad_launch("The EHR did not send a launch context (no launch parameter).")
    if len(launch_id) > MAX_LAUNCH_CHARS:
        raise bad_launch("The EHR's launch parameter is too long to pass on.")
    config = oauth.discover(services.fhir_client, iss, services.settings.fhir.call_budget_s)
    auth = oauth.authorization_request(
        smart, config, iss=iss, launch=launch_id, redirect_uri=_redirect_uri(services)
    )
    pending = {
        "state": auth.state,
        "verifier": auth.code_verifier,
        "iss": iss,
        "token_endpoint": config.token_endpoint,
    }
    log.info("smart launch: redirecting to the authorization endpoint (scopes %s)",
             "v2" if config.v2 else "v1")
    response = redirect(auth.url, code=302)
    _set_cookie(response, services, LAUNCH_COOKIE, _codec(services).seal(pending),
                LAUNCH_MAX_AGE_S)
    return response


def _consume_state(services: Services, state: str) -> None:
    """Mark ``state`` used in the shared store; a second use (any worker) is refused."""
    key = STATE_KEY + hashlib.sha256(state.encode()).hexdigest()
    try:
        fresh = services.ttl.add(key, LAUNCH_MAX_AGE_S)
    except StoreUnavailable as exc:
        raise LaunchError(
            503, "The timeline is briefly unavailable",
            "The service could not check this sign-in against its shared store.",
            "Try again in a minute.",
        ) from exc
    if not fresh:
        raise bad_launch("This sign-in response was already used.")


@bp.get("/callback")
@_pages
def callback() -> Response:
    """Check ``state`` (once), exchange the code with the verifier, start the session."""
    services = _services()
    if request.args.get("error"):
        error = request.args.get("error", "")
        log.info("smart callback: authorization refused (error=%s)", error[:40])
        if error == "access_denied":
            raise LaunchError(
                403, "Access was not granted",
                "The timeline was not allowed to read this patient's record.",
                "If you meant to allow it, open the timeline again and accept the request.",
            )
        raise LaunchError(
            400, "The EHR could not sign you in",
            "The EHR's sign-in server returned an error instead of a sign-in.",
            RELAUNCH,
        )
    pending = _codec(services).open(request.cookies.get(LAUNCH_COOKIE), LAUNCH_MAX_AGE_S)
    if pending is None:
        raise bad_launch(
            "This sign-in has expired (after ten minutes) or was started in another browser."
        )
    state, code = request.args.get("state", ""), request.args.get("code", "")
    if not state or not hmac.compare_digest(state, str(pending.get("state", ""))):
        log.warning("smart callback: state does not match the launch")
        raise bad_launch("The sign-in response does not belong to this launch (wrong state).")
    if not code:
        raise bad_launch("The EHR's sign-in server sent no authorization code.")
    _consume_state(services, state)
    smart = services.settings.smart
    grant = oauth.exchange_code(
        smart, token_endpoint=str(pending["token_endpoint"]), code=code,
        code_verifier=str(pending["verifier"]), redirect_uri=_redirect_uri(services),
    )
    session = {
        "sid": secrets.token_urlsafe(16),
        "iss": pending["iss"],
        "patient": grant.patient,
        "token": grant.access_token,
        "exp": session_expiry(grant.expires_in, smart.default_session_s),
        "context": parse_app_context(grant.app_context),
    }
    response = redirect(url_for("smart.timeline"), code=303)
    max_age = max(1, session["exp"] - int(time.time()))
    _set_cookie(response, services, SESSION_COOKIE, _codec(services).seal(session), max_age)
    response.delete_cookie(LAUNCH_COOKIE, path=COOKIE_PATH)
    log.info("smart session started: expires_in=%s", max_age)
    return response


def parse_app_context(raw: Any) -> dict[str, Any]:
    """The card's pattern id and evidence refs from appContext; {} when absent or unusable."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    if not isinstance(raw, Mapping):
        return {}
    pattern = raw.get("pattern")
    evidence = raw.get("evidence")
    refs = [r for r in evidence if isinstance(r, str) and _REF.match(r)] if isinstance(
        evidence, list) else []
    return {
        "pattern": pattern if pattern in PATTERN_IDS else None,
        "evidence": refs[:MAX_HIGHLIGHTS],
    }


def _open_session(services: Services) -> dict[str, Any]:
    sealed = request.cookies.get(SESSION_COOKIE)
    session = _codec(services).open(sealed, 86400)
    if session is None or not is_live(session):
        raise session_ended()
    try:
        revoked = services.ttl.contains(REVOKED_KEY + str(session.get("sid")))
    except StoreUnavailable:
        revoked = False  # a closed session still expires with its token
        log.warning("smart: session store unavailable; closed sessions not checked")
    if revoked:
        raise session_ended()
    return session


@bp.get("/")
@_pages
def timeline() -> Response:
    """The timeline page; ``?window=all`` shows the whole history."""
    services = _services()
    session = _open_session(services)
    history = read_history(
        services, iss=str(session["iss"]), patient=str(session["patient"]),
        access_token=str(session["token"]),
    )
    show_all = request.args.get("window") == "all"
    window_days = longest_window_days(services.settings.patterns)
    context = session.get("context") or {}
    data = build_timeline(
        history.record, now=services.today(),
        window_days=None if show_all else window_days, highlight=context.get("evidence", ()),
        gap_days=continuation_gap_days(services.settings.patterns),
    )
    pattern = context.get("pattern")
    wording = services.wording.get(pattern) if pattern else None
    log.info("timeline shown: lanes=%d whole_history=%s", len(data.lanes), show_all)
    body = render_template(
        "smart/timeline.html",
        svg=Markup(render_svg(data)),  # noqa: S704 - built from escaped values only
        table=Markup(render_table(data)),  # noqa: S704 - built from escaped values only
        timeline=data,
        show_all=show_all,
        window_years=f"{round(window_days / 365.25, 1):g}",
        card_title=wording.title if wording else None,
        evidence_count=len(context.get("evidence", ())),
        unavailable=history.unavailable,
    )
    return Response(body, mimetype="text/html")


@bp.post("/logout")
@_pages
def logout() -> Response:
    """Close the session: forget the cookie and refuse it on every worker until it expires."""
    services = _services()
    session = _codec(services).open(request.cookies.get(SESSION_COOKIE), 86400)
    if session is not None and is_live(session):
        remaining = max(1, int(session["exp"] - time.time()))
        try:
            services.ttl.add(REVOKED_KEY + str(session.get("sid")), remaining)
        except StoreUnavailable:
            log.warning("smart: session store unavailable; the cookie is cleared only")
    response = Response(
        render_template("smart/closed.html"), status=200, mimetype="text/html"
    )
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response
