"""The application factory (flaskr style): ``create_app(settings)`` builds everything a call needs.

Nothing happens at import time. The factory loads the data files once (ingredient table, code
lists, card wording, service definitions), builds the stateful resources (audit store, TTL store,
JWT verifier, FHIR client, metrics) and hangs them off ``app.extensions["psychopharm"]`` as one
``Services`` bundle, which the blueprints read. Gunicorn target:
``cds_service.web.app:create_app()``.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider

from cds_service.gather.fhir_client import FhirClient
from cds_service.gather.service_definitions import enabled_definitions, load_definitions
from cds_service.loaders import load_code_lists, load_ingredient_table, load_wording
from cds_service.runtime.logging_setup import configure_logging
from cds_service.runtime.metrics import Metrics
from cds_service.services import Services, utc_now
from cds_service.settings import Settings, load_settings
from cds_service.storage.audit.records import AuditStore
from cds_service.storage.audit.store import SqlAuditStore
from cds_service.storage.ttl_store import make_ttl_store
from cds_service.web import admin, cors, hooks, openapi, ops
from cds_service.web.auditor import views as auditor
from cds_service.web.auth import JwtVerifier
from cds_service.web.error_handlers import register_error_handlers
from cds_service.web.smart import views as smart

log = logging.getLogger(__name__)


class OrjsonProvider(DefaultJSONProvider):
    """orjson keeps the response time of large card lists low; key order is kept as built."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """``obj`` as compact JSON text; Flask's keyword options are ignored."""
        return orjson.dumps(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON text; raises ``orjson.JSONDecodeError`` (a ``ValueError``) when invalid."""
        return orjson.loads(s)


def build_services(
    settings: Settings,
    *,
    audit_store: AuditStore | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Services:
    """Load the data files and build the stateful resources for ``settings``.

    ``audit_store`` replaces the SQL store (tests; the caller then closes it); ``clock`` returns
    tz-aware UTC (default: the system clock). The shared short-lived store (JWT ``jti`` replay,
    select->sign dedup) is Redis when ``cache.redis_url`` is set, else a table in the SQL audit
    database (shared by every worker), else, with a test's non-SQL ``audit_store``, this
    process's memory. Raises ``ConfigError`` (or ``WordingError``) for an
    invalid service-definition or wording file or an unreadable ``jwks_file``,
    ``IngredientTableError`` / ``CodeListError`` for a bad ingredient table or code list, and
    ``sqlalchemy.exc.SQLAlchemyError`` when the audit database cannot be reached or migrated.
    """
    audit = audit_store if audit_store is not None else SqlAuditStore(settings.storage)
    # Without Redis, jti replay and dedup keys live in the audit database, so that every worker
    # shares them; only a test's in-memory audit store leaves them in this process.
    engine = audit.engine if isinstance(audit, SqlAuditStore) else None
    ttl = make_ttl_store(settings.cache, engine)
    return Services(
        settings=settings,
        definitions=enabled_definitions(load_definitions(), settings),
        table=load_ingredient_table(),
        codes=load_code_lists(overrides=settings.codes),
        wording=load_wording(),
        audit=audit,
        ttl=ttl,
        verifier=JwtVerifier(settings.auth, ttl),
        fhir_client=FhirClient(settings.fhir),
        metrics=Metrics(),
        clock=clock or utc_now,
        owns_audit=audit_store is None,
    )


def create_app(
    settings: Settings | None = None,
    *,
    audit_store: AuditStore | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Flask:
    """The Flask app for ``settings`` (default: the bundled ``config/default.yaml`` alone).

    Configures JSON logging, caps request bodies at ``service.max_body_bytes`` (413 beyond),
    registers CORS, the blueprints and the error handlers, and puts the ``Services`` bundle in
    ``app.extensions["psychopharm"]``; ``audit_store`` and ``clock`` go to ``build_services``.
    Raises what ``load_settings`` and ``build_services`` raise: ``ConfigError`` and the other
    start-up errors listed there.
    """
    settings = settings if settings is not None else load_settings()
    configure_logging("INFO")
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.service.max_body_bytes
    services = build_services(settings, audit_store=audit_store, clock=clock)
    app.extensions["psychopharm"] = services
    # Gunicorn's worker_exit hook closes it too; atexit covers the development server.
    atexit.register(services.close)

    # CORS first: its preflight answer must run before any other before_request hook.
    cors.init_app(app, settings.service.cors_allowed_origins)
    app.register_blueprint(hooks.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(auditor.bp)
    app.register_blueprint(smart.bp)
    register_error_handlers(app)

    @app.after_request
    def _config_version(response: Response) -> Response:
        response.headers["X-Config-Version"] = settings.config_version
        return response

    log.info(
        "service ready: config_version=%s services=%s jwt=%s",
        settings.config_version, sorted(services.definitions), services.verifier.enabled,
    )
    return app
