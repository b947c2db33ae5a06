"""The auditor web view: a read-only, server-rendered page over the audit log, and its CSV export.

``GET /auditor/`` shows summary tiles, counts per pattern, the top override reasons, a weekly
SVG plot and a filterable, paginated table of card rows as the prescriber saw them;
``GET /auditor/export.csv`` exports the rows matching the same filters. Filters come from the query
string (``pattern``, ``disposition``, ``outcome``, ``since``, ``until``, ``page``); a bad value is a
400 page that says which one. ``/auditor/cards/<uuid>/timeline`` draws a card's evidence on the
patient's medication timeline (``timeline``). Nothing here writes.

Access needs the admin/auditor token (``auth.admin_token_sha256``), never an EHR JWT: as
``Authorization: Bearer <token>``, or, so that a plain browser can log in, HTTP Basic with any
user name and the token as password. Card text is shown escaped (the Markdown detail as
preformatted text), so nothing a card carries can run in the auditor's browser.
"""

from __future__ import annotations

import binascii
import csv
import io
import json
import math
from base64 import b64decode
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, render_template, request, stream_with_context

from cds_service.errors import AuthError
from cds_service.patterns import PATTERN_IDS
from cds_service.storage.audit import auditor_queries as q
from cds_service.storage.audit.export import FIELDS, export_record, spreadsheet_safe
from cds_service.web.auditor.charts import weekly_chart
from cds_service.web.auditor.timeline import card_timeline
from cds_service.web.auth import check_admin
from cds_service.web.page_headers import STRICT_PAGE_HEADERS

if TYPE_CHECKING:
    from sqlalchemy import Engine

bp = Blueprint(
    "auditor", __name__, url_prefix="/auditor",
    template_folder="templates", static_folder="static", static_url_path="/static",
)

bp.add_url_rule(
    "/cards/<card_uuid>/timeline", view_func=card_timeline, methods=["GET", "POST"]
)

PAGE_SIZE = 50
REALM = 'Basic realm="psychopharm-cds auditor"'


class FilterError(ValueError):
    """A query-string filter the page cannot apply; the message names it."""


def _as_bearer(header: str | None) -> str | None:
    """A Basic header becomes ``Bearer <password>``, so one check covers both forms."""
    if not header or not header.strip().lower().startswith("basic "):
        return header
    try:
        decoded = b64decode(header.strip()[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return f"Bearer {password}" if sep and password else None


@bp.before_request
def _require_auditor() -> Response | None:
    settings = current_app.extensions["psychopharm"].settings
    try:
        check_admin(_as_bearer(request.headers.get("Authorization")), settings.auth)
    except AuthError:
        # One answer for every failure (missing, malformed, wrong, disabled); the reason is logged.
        response = Response(render_template("auditor/unauthorized.html"), status=401)
        response.headers["WWW-Authenticate"] = REALM
        return response
    return None


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers.update(STRICT_PAGE_HEADERS)
    return response


def _parse_time(name: str, value: str) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FilterError(
            f"{name}={value!r} is not a date or date-time; use e.g. 2026-06-01 or "
            "2026-06-01T08:00:00Z"
        ) from None
    if day is not None and name == "until":  # a bare date includes that whole day
        parsed = datetime.combine(day, time()) + timedelta(days=1)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _choice(args: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = args.get(name, "").strip()
    if not value:
        return None
    if value not in allowed:
        raise FilterError(f"{name}={value!r} is not one of: {', '.join(allowed)}")
    return value


def parse_filters(args: Mapping[str, str]) -> tuple[q.CardFilter, int]:
    """The filter and page number from a query string; empty fields mean "any".

    ``since``/``until`` take an ISO date or date-time (naive means UTC; a bare ``until`` date
    includes that day); ``page`` counts from 1. Raises ``FilterError`` naming the first bad
    value, or when ``since`` is not before ``until``.
    """
    since_text, until_text = args.get("since", "").strip(), args.get("until", "").strip()
    since = _parse_time("since", since_text) if since_text else None
    until = _parse_time("until", until_text) if until_text else None
    if since is not None and until is not None and since >= until:
        raise FilterError("since must be earlier than until")
    page_text = args.get("page", "").strip() or "1"
    if not page_text.isdigit() or int(page_text) < 1:
        raise FilterError(f"page={page_text!r} must be a whole number from 1")
    flt = q.CardFilter(
        pattern=_choice(args, "pattern", PATTERN_IDS),
        disposition=_choice(args, "disposition", q.DISPOSITIONS),
        outcome=_choice(args, "outcome", q.OUTCOMES),
        since=since,
        until=until,
    )
    return flt, int(page_text)


def _engine() -> Engine:
    # Only the SQL store keeps rows to show; any other AuditStore has no engine.
    engine: Engine | None = getattr(current_app.extensions["psychopharm"].audit, "engine", None)
    if engine is None:
        raise RuntimeError("the auditor view needs the SQL audit store")
    return engine


def _card_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the prescriber saw: the stored card JSON, falling back to the row's own columns."""
    try:
        card = json.loads(row["card_json"] or "{}")
    except ValueError:
        card = {}
    card = card if isinstance(card, dict) else {}
    suggestions = card.get("suggestions")
    return {
        "summary": str(card.get("summary") or row["summary"]),
        "indicator": str(card.get("indicator") or row["indicator"]),
        "detail": str(card.get("detail") or ""),
        "suggestions": [
            str(s.get("label", "")) for s in suggestions if isinstance(s, dict)
        ] if isinstance(suggestions, list) else [],
    }


def _filter_args(flt_args: Mapping[str, str]) -> dict[str, str]:
    names = ("pattern", "disposition", "outcome", "since", "until")
    return {n: flt_args[n].strip() for n in names if flt_args.get(n, "").strip()}


def _bad_filter(exc: FilterError) -> Response:
    body = render_template("auditor/bad_request.html", message=str(exc))
    return Response(body, status=400)


@bp.get("/")
def index() -> Response:
    """``GET /auditor/``: the HTML page (tiles, per-pattern counts, override reasons, weekly
    chart, ``PAGE_SIZE`` rows per page) over the rows matching the query-string filters.

    A bad filter is a 400 page naming it; a missing or wrong auditor token a 401 page.
    """
    try:
        flt, page = parse_filters(request.args)
    except FilterError as exc:
        return _bad_filter(exc)
    engine = _engine()
    total = q.count_rows(engine, flt)
    dispositions = q.disposition_counts(engine, flt)
    patterns = q.pattern_counts(engine, flt)
    accepted = sum(p.accepted for p in patterns)
    overridden = sum(p.overridden for p in patterns)
    answered = accepted + overridden
    rows = [
        {**row, "card": _card_view(row)}
        for row in q.page_rows(engine, flt, page=page, page_size=PAGE_SIZE)
    ]
    body = render_template(
        "auditor/index.html",
        total=total,
        dispositions=[(d, dispositions.get(d, 0)) for d in q.DISPOSITIONS],
        shown=dispositions.get("shown", 0),
        accepted=accepted,
        overridden=overridden,
        answered=answered,
        acceptance_rate=accepted / answered if answered else None,
        override_rate=overridden / answered if answered else None,
        patterns=patterns,
        reasons=q.override_reasons(engine, flt),
        chart=weekly_chart(q.weekly_counts(engine, flt)),
        rows=rows,
        page=page,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        filters=_filter_args(request.args),
        pattern_ids=PATTERN_IDS,
        disposition_ids=q.DISPOSITIONS,
        outcome_ids=q.OUTCOMES,
    )
    return Response(body, mimetype="text/html")


def _csv_lines(engine: Engine, flt: q.CardFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for row in q.iter_rows(engine, flt):
        record = export_record(row)
        writer.writerow([spreadsheet_safe(record[name]) for name in FIELDS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


@bp.get("/export.csv")
def export_csv() -> Response:
    """``GET /auditor/export.csv``: the rows matching the filters as a streamed CSV attachment
    (``export.FIELDS`` columns, formula-safe cells); a bad filter is a 400 page."""
    try:
        flt, _ = parse_filters(request.args)
    except FilterError as exc:
        return _bad_filter(exc)
    response = Response(
        stream_with_context(_csv_lines(_engine(), flt)), mimetype="text/csv; charset=utf-8"
    )
    response.headers["Content-Disposition"] = 'attachment; filename="psychopharm-cds-audit.csv"'
    return response
