"""The medication timeline for one audited card: ``/auditor/cards/<uuid>/timeline``.

The audit store keeps evidence references and a pseudonymous key, never the patient's history, so
the auditor brings the history: the page shows the card and a form to load the patient's FHIR R4
JSON (a Bundle or a CDS Hooks request, exported from the EHR for the review). The file is mapped
and drawn in memory by the same renderer as the SMART app, with this card's evidence outlined,
and is neither stored nor logged. ``views`` registers the route on the auditor blueprint, so it
sits behind its token check and its strict CSP.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import orjson
from flask import Response, current_app, render_template, request
from markupsafe import Markup

from cds_service.services import Services
from cds_service.storage.audit import auditor_queries as q
from cds_service.timeline import (
    build_timeline,
    continuation_gap_days,
    longest_window_days,
    render_svg,
    render_table,
    resources_of,
)
from fhir_mappers.mapper import map_record

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)


def _refs(raw: str | None) -> list[str]:
    try:
        refs = json.loads(raw or "[]")
    except ValueError:
        return []
    return [r for r in refs if isinstance(r, str)] if isinstance(refs, list) else []


def _engine(services: Services) -> Engine:
    # Only the SQL store keeps rows to show; any other AuditStore has no engine.
    engine: Engine | None = getattr(services.audit, "engine", None)
    if engine is None:
        raise RuntimeError("the auditor view needs the SQL audit store")
    return engine


def _page(row: dict[str, object], status: int = 200, **extra: object) -> Response:
    body = render_template("auditor/timeline.html", row=row, **extra)
    return Response(body, status=status, mimetype="text/html")


def card_timeline(card_uuid: str) -> Response:
    """GET: the card and the upload form; POST (the patient's FHIR JSON): the timeline too."""
    services: Services = current_app.extensions["psychopharm"]
    row = q.card_row(_engine(services), card_uuid)
    if row is None:
        body = render_template("auditor/bad_request.html", message="No card has this uuid.")
        return Response(body, status=404, mimetype="text/html")
    refs = _refs(str(row.get("evidence_refs") or "[]"))
    row = {**row, "refs": refs}
    if request.method == "GET":
        return _page(row)
    upload = request.files.get("bundle")
    if upload is None or not upload.filename:
        return _page(row, 400, error="Choose the patient's FHIR JSON file to load.")
    try:
        data = orjson.loads(upload.read())
    except orjson.JSONDecodeError:
        return _page(row, 400, error="The file is not valid JSON.")
    record = map_record(resources_of(data), services.table, codes=services.codes)
    show_all = request.form.get("window") == "all"
    timeline = build_timeline(
        record, now=services.today(),
        window_days=None if show_all else longest_window_days(services.settings.patterns),
        highlight=refs,
        gap_days=continuation_gap_days(services.settings.patterns),
    )
    found = sum(1 for lane in timeline.lanes for r in lane.refs if r in set(refs))
    log.info("auditor timeline drawn: lanes=%d evidence_found=%d", len(timeline.lanes), found)
    return _page(
        row,
        svg=Markup(render_svg(timeline)),  # noqa: S704 - built from escaped values only
        table=Markup(render_table(timeline)),  # noqa: S704 - built from escaped values only
        evidence_found=found,
        show_all=show_all,
    )
