"""The CDS Hooks blueprint: discovery, service calls and feedback.

Thin on purpose: it reads the HTTP request (headers, body, URL), checks the order of refusals
(unknown service 404, auth 401, media type 415, size 413, body 400) and hands plain values to
``pipeline``. Service ids and their hooks are listed in config/services.yaml.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from cds_service.errors import UnknownServiceError, UnsupportedMediaType
from cds_service.gather.hook_request import parse_hook_request, parse_json_object
from cds_service.gather.service_definitions import ServiceDefinition
from cds_service.pipeline import read_hook_body, run_hook
from cds_service.runtime.logging_setup import request_log_context
from cds_service.web.discovery import discovery_document
from cds_service.web.feedback import parse_feedback

if TYPE_CHECKING:
    from cds_service.services import Services

bp = Blueprint("hooks", __name__, url_prefix="/cds-services")


def authenticate(services: Services, authorization: str | None, audience: str) -> None:
    """Verify the client JWT when the site requires one (raises AuthError -> 401)."""
    if services.verifier.enabled:
        services.verifier.verify(authorization, audience)


def _services() -> Services:
    services: Services = current_app.extensions["psychopharm"]
    return services


def _definition(service_id: str) -> ServiceDefinition:
    definition = _services().definitions.get(service_id)
    if definition is None:
        raise UnknownServiceError(
            "no such CDS service; the services are listed at GET /cds-services"
        )
    return definition


def _audience() -> str:
    """The URL the client called, as the JWT `aud` must name it (behind proxies: configured)."""
    base = _services().settings.service.public_base_url
    return base + request.path if base else request.base_url


def _body_bytes() -> bytes:
    if not request.is_json:
        raise UnsupportedMediaType("Content-Type must be application/json")
    # get_data enforces MAX_CONTENT_LENGTH (413) before anything is parsed.
    return request.get_data(cache=False)


def _json_body() -> dict[str, Any]:
    return parse_json_object(_body_bytes())


@bp.before_request
def _start_timer() -> None:
    g.started = time.perf_counter()


@bp.after_request
def _observe(response: Response) -> Response:
    definition = _services().definitions.get((request.view_args or {}).get("service_id", ""))
    # Label only known ids: a raw unknown id from the URL would grow the metric without bound.
    if request.endpoint == "hooks.discovery":
        service_id, hook = "discovery", "-"
    elif definition is None:
        service_id, hook = "unknown", "-"
    else:
        service_id = definition.id
        hook = "feedback" if request.endpoint == "hooks.feedback" else definition.hook
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    _services().metrics.observe_call(service_id, hook, response.status_code, elapsed)
    return response


@bp.get("")
def discovery() -> Response:
    """``GET /cds-services``: the discovery document of the enabled services.

    Raises ``AuthError`` (401) when the site requires JWTs and the call has no valid one.
    """
    # The spec has clients sign every call, discovery included (aud = the discovery URL); a site
    # that requires JWTs does not tell unknown callers which services it runs.
    services = _services()
    authenticate(services, request.headers.get("Authorization"), _audience())
    return jsonify(discovery_document(services.definitions))


@bp.post("/<service_id>")
def call_service(service_id: str) -> Response:
    """``POST /cds-services/<service_id>``: run one hook call, answer ``{"cards": [...]}``.

    Refusals, in this order: ``UnknownServiceError`` 404, ``AuthError`` 401,
    ``UnsupportedMediaType`` 415 (not JSON), werkzeug's ``RequestEntityTooLarge`` 413 (over
    ``service.max_body_bytes``), ``RequestError`` 400 (body or hook context invalid), then
    ``PrefetchError`` 412 when required data is neither prefetched nor fetchable.
    """
    services = _services()
    definition = _definition(service_id)
    authenticate(services, request.headers.get("Authorization"), _audience())
    data = read_hook_body(services, _body_bytes())
    req = parse_hook_request(data, service_id, definition.hook)
    g.hook_instance = req.hook_instance  # the 500 handler logs it
    with request_log_context(req.hook_instance):
        body = run_hook(services, req, definition, raise_errors=current_app.testing)
    response = jsonify(body)
    # The parsed request is freed after the response has been sent, not before it: for a long
    # history, freeing tens of thousands of objects is a measurable part of the EHR's wait
    # (bench/RESULTS.md, round 3).
    response.call_on_close(lambda: data.clear())
    return response


@bp.post("/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    """``POST /cds-services/<service_id>/feedback``: store the items, answer ``{"stored": n}``
    (n new rows; a repeated report is stored once).

    Raises ``UnknownServiceError`` 404, ``AuthError`` 401, ``UnsupportedMediaType`` 415,
    ``RequestError`` 400 (see ``parse_feedback``); a database failure is a 500.
    """
    services = _services()
    _definition(service_id)
    authenticate(services, request.headers.get("Authorization"), _audience())
    items = parse_feedback(_json_body(), service_id, received=services.clock())
    stored = services.audit.record_feedback(items)
    return jsonify({"stored": stored})
