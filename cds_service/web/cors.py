"""CORS for browser-based CDS clients (the CDS Hooks sandbox, web EHRs), without a dependency.

Browsers send a preflight ``OPTIONS`` without the Authorization header before every discovery,
service and feedback call, so preflights are answered here, before auth and routing, on any path.
Only configured origins are allowed; ``*`` is for local use and is never combined with
credentials (the client JWT travels in a header, not a cookie, so none are needed).
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask, Response, request

ALLOW_HEADERS = "Authorization, Content-Type"
ALLOW_METHODS = "GET, POST, OPTIONS"
MAX_AGE_S = "600"


def allowed_origin(origin: str | None, allowed: Sequence[str]) -> str | None:
    """The Access-Control-Allow-Origin value for this Origin, or None when it is not allowed.

    The origin itself when it is listed in ``allowed`` (scheme://host[:port], no trailing
    slash), else ``"*"`` when ``allowed`` holds ``*``.
    """
    if not origin:
        return None
    if origin in allowed:
        return origin
    if "*" in allowed:
        return "*"
    return None


def init_app(app: Flask, allowed: Sequence[str]) -> None:
    """Answer every ``OPTIONS`` preflight with a 204 (allow headers only for an allowed Origin;
    browsers may cache them ``MAX_AGE_S`` seconds), and stamp Access-Control-Allow-Origin on
    every response whose Origin ``allowed_origin`` accepts (``service.cors_allowed_origins``)."""
    origins = tuple(o.rstrip("/") for o in allowed)

    def _decorate(response: Response) -> Response:
        value = allowed_origin(request.headers.get("Origin"), origins)
        if value is not None:
            response.headers["Access-Control-Allow-Origin"] = value
            response.headers["Access-Control-Expose-Headers"] = "X-Config-Version"
        if value != "*":
            # The answer depends on the Origin: caches must not serve it to another origin.
            response.vary.add("Origin")
        return response

    @app.before_request
    def _preflight() -> Response | None:
        if request.method != "OPTIONS":
            return None
        response = Response(status=204)
        if allowed_origin(request.headers.get("Origin"), origins) is not None:
            response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response.headers["Access-Control-Max-Age"] = MAX_AGE_S
        return response

    app.after_request(_decorate)
