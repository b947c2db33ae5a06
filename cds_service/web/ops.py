"""Operations endpoints: liveness, readiness and Prometheus metrics.

``GET /healthz`` answers while the process runs; ``GET /readyz`` answers 200 only when the
settings are loaded and every dependency answers (the audit database, and Redis when configured,
else the shared-key table), so a load balancer stops routing to a worker that could not write
its audit rows or check a token for replay; ``GET /metrics`` is the Prometheus text format.

None of them asks for credentials, because probes and scrapers rarely carry any. They reveal no
patient data, but ``/metrics`` does show traffic volumes and error kinds: expose these paths only
to the orchestrator and the monitoring network (reverse-proxy rule or a separate listener), not
to the internet.

They read ``current_app.extensions["psychopharm"]``: an object with ``settings``, ``audit``,
``ttl`` and ``metrics`` attributes, put there by the app factory.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from cds_service.storage.ttl_store import RedisTtlStore, SqlTtlStore

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)

_NO_STORE = {"Cache-Control": "no-store"}


def _services() -> Any:
    return current_app.extensions.get("psychopharm")


@bp.get("/healthz")
def healthz() -> tuple[Response, int, dict[str, str]]:
    """Liveness: always 200 ``{"status": "ok"}`` while the process can answer (no checks)."""
    return jsonify(status="ok"), 200, _NO_STORE


def _answers(dependency: Any) -> bool:
    try:
        return bool(dependency.ping())
    except Exception:  # noqa: BLE001 - a probe must answer, whatever the driver raises
        log.exception("readiness ping raised")
        return False


def _shared_store_name(ttl: Any) -> str | None:
    """What the shared store depends on, or None when it is this process's memory."""
    if isinstance(ttl, RedisTtlStore):
        return "redis"
    if isinstance(ttl, SqlTtlStore):
        return "shared_store"  # the shared_ttl_key table in the audit database
    return None


@bp.get("/readyz")
def readyz() -> tuple[Response, int, dict[str, str]]:
    """200 when every dependency a hook call needs answers; 503 naming the first that does not.

    ``checks`` lists each dependency: ``audit_database`` always; ``redis`` when
    ``cache.redis_url`` is set, else ``shared_store`` (the jti/dedup table in the audit
    database). A hook call with JWTs required cannot be answered without the shared store.
    """
    services = _services()
    if services is None or getattr(services, "settings", None) is None:
        return jsonify(status="unavailable", reason="settings not loaded"), 503, _NO_STORE
    audit = getattr(services, "audit", None)
    if audit is None:
        return jsonify(status="unavailable", reason="audit store not configured"), 503, _NO_STORE
    checks = {"audit_database": "ok" if _answers(audit) else "unreachable"}
    ttl = getattr(services, "ttl", None)
    store_name = _shared_store_name(ttl)
    if store_name is not None:
        checks[store_name] = "ok" if _answers(ttl) else "unreachable"
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        reason = {
            "audit_database": "audit store unreachable",
            "redis": "redis unreachable",
            "shared_store": "shared store unavailable",
        }[failed[0]]
        return jsonify(status="unavailable", reason=reason, checks=checks), 503, _NO_STORE
    return jsonify(status="ready", checks=checks), 200, _NO_STORE


@bp.get("/metrics")
def metrics() -> Response:
    """The Prometheus text exposition of ``services.metrics`` (all workers in multiprocess
    mode); 503 ``text/plain`` when no metrics object is configured."""
    services = _services()
    if services is None or getattr(services, "metrics", None) is None:
        return Response("metrics not configured\n", status=503, mimetype="text/plain")
    payload, content_type = services.metrics.render()
    return Response(payload, status=200, content_type=content_type, headers=_NO_STORE)
