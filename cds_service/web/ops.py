"""Operations endpoints: liveness, readiness and Prometheus metrics.

``GET /healthz`` answers while the process runs; ``GET /readyz`` answers 200 only when the
settings are loaded and the audit store answers, so a load balancer stops routing to a worker
that could not write its audit rows; ``GET /metrics`` is the Prometheus text format.

None of them asks for credentials, because probes and scrapers rarely carry any. They reveal no
patient data, but ``/metrics`` does show traffic volumes and error kinds: expose these paths only
to the orchestrator and the monitoring network (reverse-proxy rule or a separate listener), not
to the internet.

They read ``current_app.extensions["psychopharm"]``: an object with ``settings``, ``audit`` and
``metrics`` attributes, put there by the app factory.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)

_NO_STORE = {"Cache-Control": "no-store"}


def _services() -> Any:
    return current_app.extensions.get("psychopharm")


@bp.get("/healthz")
def healthz() -> tuple[Response, int, dict[str, str]]:
    return jsonify(status="ok"), 200, _NO_STORE


@bp.get("/readyz")
def readyz() -> tuple[Response, int, dict[str, str]]:
    services = _services()
    if services is None or getattr(services, "settings", None) is None:
        return jsonify(status="unavailable", reason="settings not loaded"), 503, _NO_STORE
    audit = getattr(services, "audit", None)
    if audit is None:
        return jsonify(status="unavailable", reason="audit store not configured"), 503, _NO_STORE
    try:
        audit_ok = bool(audit.ping())
    except Exception:  # noqa: BLE001 - a probe must answer, whatever the store raises
        log.exception("audit store ping raised")
        audit_ok = False
    if not audit_ok:
        return jsonify(status="unavailable", reason="audit store unreachable"), 503, _NO_STORE
    return jsonify(status="ready"), 200, _NO_STORE


@bp.get("/metrics")
def metrics() -> Response:
    services = _services()
    if services is None or getattr(services, "metrics", None) is None:
        return Response("metrics not configured\n", status=503, mimetype="text/plain")
    payload, content_type = services.metrics.render()
    return Response(payload, status=200, content_type=content_type, headers=_NO_STORE)
