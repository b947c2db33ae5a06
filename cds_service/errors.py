"""One module for errors: each boundary raises its own ServiceError subclass.

``register_error_handlers`` (``cds_service.web.error_handlers``) is the one place that turns
these into HTTP responses. The ``code`` strings are part of the public contract: clients and tests
match on them, so a code is never reused for another meaning.
"""

from __future__ import annotations

from collections.abc import Sequence


class ServiceError(Exception):
    """A refusal the client can act on: ``status`` (HTTP), ``code`` (stable string) and
    ``message`` (what to fix, returned in the body; never PHI). ``code=`` refines the class's
    default code for one case (e.g. ``malformed-json`` for a ``RequestError``)."""

    status = 500
    code = "internal-error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class RequestError(ServiceError):
    """The hook or feedback body is malformed or does not match the hook's contract."""

    status = 400
    code = "invalid-request"


class AuthError(ServiceError):
    """The client JWT (or the admin token) is missing or invalid; the reason is logged, the
    response body is the same for every case."""

    status = 401
    code = "unauthorized"


class UnknownServiceError(ServiceError):
    """The URL names no enabled CDS service."""

    status = 404
    code = "unknown-service"


class PrefetchError(ServiceError):
    """Required data is missing and could not be fetched from the FHIR server (spec: 412)."""

    status = 412
    code = "prefetch-unavailable"


class PayloadTooLarge(ServiceError):
    """The body exceeds ``service.max_body_bytes``. Werkzeug's ``RequestEntityTooLarge`` enforces
    the limit today and gets the same ``code`` and body shape; this class reserves the code."""

    status = 413
    code = "payload-too-large"


class UnsupportedMediaType(ServiceError):
    """The body's Content-Type is not ``application/json``."""

    status = 415
    code = "unsupported-media-type"


class ConfigError(Exception):
    """Startup and CLI only: the configuration is invalid. Carries every problem found."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
