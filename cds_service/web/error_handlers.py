"""The one place that turns errors into HTTP responses: a FHIR OperationOutcome body for all.

CDS Hooks 3.0 (and good manners in 2.0) put an OperationOutcome in every non-2xx body. Its
``details.coding`` carries our stable error ``code`` (cds_service.errors) so that clients and tests
can match on it; ``details.text`` says what to fix. Auth failures get one detail-free body (the
specific reason is logged, not returned), and a 500 says nothing about the request at all.
A 500 is logged once, here; a database error without its text (it can hold row values).
"""

from __future__ import annotations

import logging
import traceback
from types import TracebackType
from typing import Any

from flask import Flask, Response, current_app, g, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

from cds_service.errors import AuthError, ServiceError
from cds_service.storage.audit.database import DatabaseError
from cds_service.storage.audit.writer import describe_error

log = logging.getLogger(__name__)

ERROR_SYSTEM = "https://psychopharm-cds.org/fhir/CodeSystem/error"

# FHIR issue-type for each status (http://hl7.org/fhir/issue-type).
_ISSUE_TYPE = {
    400: "invalid",
    401: "security",
    403: "security",
    404: "not-found",
    405: "not-supported",
    412: "incomplete",
    413: "too-costly",
    415: "not-supported",
}
# Codes for errors werkzeug raises before our code runs (routing, body limits).
_HTTP_CODES = {
    400: "invalid-request",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
}
_HTTP_TEXT = {
    404: "no such endpoint; the services are listed at GET /cds-services",
    405: "method not allowed on this endpoint",
    413: "request body is larger than service.max_body_bytes",
}


def operation_outcome(status: int, code: str, text: str) -> dict[str, Any]:
    """An R4 OperationOutcome with one ``error`` issue: ``issue.code`` from the HTTP ``status``
    (FHIR issue-type), ``details.coding`` our ``code`` under ``ERROR_SYSTEM``, ``details.text``."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": _ISSUE_TYPE.get(status, "exception" if status >= 500 else "invalid"),
                "details": {"coding": [{"system": ERROR_SYSTEM, "code": code}], "text": text},
            }
        ],
    }


def error_response(status: int, code: str, text: str) -> Response:
    """The JSON response for an error (``operation_outcome``), counted in the error metric."""
    services = current_app.extensions.get("psychopharm")
    if services is not None:
        services.metrics.count_error(code)
    response = jsonify(operation_outcome(status, code, text))
    response.status_code = status
    return response


def _hook_instance() -> str:
    return str(g.get("hook_instance") or "-")


def handle_service_error(exc: ServiceError) -> Response:
    """``exc.status`` with its code and message, logged as a warning; every ``AuthError`` gets one
    detail-free 401 with ``WWW-Authenticate: Bearer``."""
    if isinstance(exc, AuthError):
        # Never tell an unauthenticated caller which check failed (spec best practice).
        log.warning("request rejected: status=401 code=%s", exc.code)
        response = error_response(401, "unauthorized", "valid credentials are required")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    log.warning(
        "request rejected: status=%s code=%s hookInstance=%s reason=%s",
        exc.status, exc.code, _hook_instance(), exc.message,
    )
    return error_response(exc.status, exc.code, exc.message)


def handle_http_exception(exc: HTTPException) -> Response:
    """Werkzeug's errors (routing 404/405, 413 body limit...) keep their status and headers and
    get the same OperationOutcome body."""
    status = exc.code or 500
    code = _HTTP_CODES.get(status, "http-error")
    log.warning("request rejected: status=%s code=%s", status, code)
    response = error_response(status, code, _HTTP_TEXT.get(status, exc.name))
    # Keep werkzeug's headers that matter to clients (Allow on 405, Retry-After, ...).
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, oldest first (the order
    a traceback prints them in)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and not any(current is seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return chain[::-1]


def _frames_only(chain: list[BaseException]) -> str:
    """The traceback of every exception in ``chain``: frames and class names, no messages."""
    return "\n\nfollowed by:\n".join(
        "Traceback (most recent call last):\n"
        + "".join(traceback.format_tb(exc.__traceback__))
        + f"{type(exc).__module__}.{type(exc).__qualname__}: (message not logged)"
        for exc in chain
    )


def handle_internal_error(exc: InternalServerError) -> Response:
    """Any unhandled exception: logged with its traceback and hookInstance, answered with a 500
    whose body says nothing about the request.

    When a database error is among the exceptions the traceback would print, their messages are
    left out: the engines hide statement parameters, but PostgreSQL's own text can still quote
    row values ("Failing row contains (...)", "Key (...)=(...)").
    """
    original = exc.original_exception or exc
    chain = _chain(original)
    if any(isinstance(link, DatabaseError) for link in chain):
        log.error(
            "unhandled error hookInstance=%s type=%s (database error: messages not logged)\n%s",
            _hook_instance(), describe_error(original), _frames_only(chain),
        )
    else:
        log.error(
            "unhandled error hookInstance=%s type=%s",
            _hook_instance(), type(original).__name__,
            exc_info=(type(original), original, original.__traceback__),
        )
    return error_response(
        500, "internal-error",
        "the service failed to process this call; it has been logged under its hookInstance",
    )


def _logged_by_handler(
    exc_info: tuple[type, BaseException, TracebackType] | tuple[None, None, None],
) -> None:
    """Stands in for ``Flask.log_exception``: ``handle_internal_error`` logs the error."""


def register_error_handlers(app: Flask) -> None:
    """Register the three handlers above on ``app``, by exception class, and make
    ``handle_internal_error`` the only place an unhandled exception is logged."""
    app.register_error_handler(ServiceError, handle_service_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(InternalServerError, handle_internal_error)
    # Flask logs every unhandled exception itself, with its full text, just before calling the
    # 500 handler: the error would be logged twice, and a database error's row values with it.
    app.log_exception = _logged_by_handler  # type: ignore[method-assign]
