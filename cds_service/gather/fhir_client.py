"""Bounded, allow-listed reads from a CDS client's FHIR server.

The service calls back only to base URLs listed in ``fhir.allowed_servers``: ``fhirServer`` comes
from the request body, so without the list any caller could make us send its bearer token (or our
requests) anywhere. Every request is bounded by the per-request timeout and the hook call's
deadline, never follows redirects, and stops reading at ``fhir.max_bytes``.
The access token is sent in the Authorization header and nowhere else: not logged, not stored,
not part of any error reason.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Callable
from http.cookiejar import DefaultCookiePolicy
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from cds_service.settings import FhirSettings

log = logging.getLogger(__name__)

# Lets a read that ends right at the deadline hand back its result instead of being dropped.
DEADLINE_GRACE_S = 0.1

# Connections kept per FHIR host; sized for gather's concurrent fetches across a few workers' calls.
POOL_SIZE = 16
_CHUNK_BYTES = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")


class FhirFetchError(Exception):
    """A FHIR read failed. ``reason`` is safe to log: no token, no query, no patient id."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _Origin(NamedTuple):
    scheme: str
    host: str
    port: int
    path: str


def _parse(url: str) -> _Origin | None:
    """Scheme, lower-case host, explicit port and path without trailing slash; None if unusable."""
    if not isinstance(url, str) or any(c in url for c in "\\\r\n\t "):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    # Dot segments (also percent-encoded) could climb out of the allowed path prefix once the
    # HTTP library normalises them.
    for segment in parts.path.split("/"):
        decoded = unquote(segment)
        if decoded in (".", "..") or "/" in decoded:
            return None
    return _Origin(
        scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], parts.path.rstrip("/")
    )


def _contains(base: _Origin, origin: _Origin) -> bool:
    if (base.scheme, base.host, base.port) != (origin.scheme, origin.host, origin.port):
        return False
    return not base.path or origin.path == base.path or origin.path.startswith(base.path + "/")


def is_under(base_url: str, url: str) -> bool:
    """True when ``url`` lies under ``base_url``: same scheme, host and port, path prefix."""
    base, origin = _parse(base_url), _parse(url)
    return base is not None and origin is not None and _contains(base, origin)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (``127.0.0.0/8``, ``::1``); a lower-case
    host name without brackets, as ``urlsplit(...).hostname`` gives it."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resource_type_of(url: str) -> str:
    """The FHIR resource type a URL reads, for log lines that must not carry the id or query."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return "FHIR"
    for segment in path.split("/"):
        if _RESOURCE_TYPE.fullmatch(segment):
            return segment
    return "FHIR"


class FhirClient:
    """One pooled HTTP session shared by all hook calls of a worker; close() on shutdown.

    ``settings`` gives the allow-list (``allowed_servers``), the per-request ``timeout_s``
    (seconds) and the body cap ``max_bytes``. ``clock`` returns seconds on the same scale as the
    ``deadline`` passed to ``get_json`` (``time.monotonic`` by default; tests inject one).
    """

    def __init__(
        self, settings: FhirSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._allowed = [o for o in (_parse(u) for u in settings.allowed_servers) if o is not None]
        session = requests.Session()
        # No .netrc credentials or proxy settings from the environment, and no cookies carried
        # from one user's call into another's.
        session.trust_env = False
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self._session = session

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be called, as a predicate ("not in fhir.allowed_servers"), or None.

        The reason never echoes the URL, which may carry a patient id in its query.
        """
        origin = _parse(url)
        if origin is None:
            return "not an absolute http(s) URL without credentials or dot segments"
        if origin.scheme != "https" and not is_loopback(origin.host):
            return "not https (required for a non-loopback FHIR server)"
        if any(_contains(base, origin) for base in self._allowed):
            return None
        return "not in fhir.allowed_servers"

    def is_allowed(self, url: str) -> bool:
        """True when ``refusal(url)`` is None."""
        return self.refusal(url) is None

    def get_json(self, url: str, *, token: str | None, deadline: float) -> Any:
        """GET ``url`` and parse the JSON body (any JSON value, usually a resource or Bundle).

        ``token`` is sent as ``Authorization: Bearer`` when given; ``deadline`` is a ``clock()``
        time (seconds) that bounds the connect/read timeouts and the streamed read. Raises
        ``FhirFetchError`` (with ``status`` when the server answered) when the URL is refused,
        the budget is spent, the answer is a redirect or HTTP >= 400, the body exceeds
        ``max_bytes``, the request fails or times out, or the body is not JSON.
        """
        rtype = resource_type_of(url)
        refusal = self.refusal(url)
        if refusal is not None:
            raise FhirFetchError(f"{rtype}: URL refused ({refusal})")
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise FhirFetchError(f"{rtype}: call budget exhausted (fhir.call_budget_s)")
        timeout = min(self.settings.timeout_s, remaining)
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            with self._session.get(
                url,
                headers=headers,
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
            ) as response:
                status = response.status_code
                if 300 <= status < 400:
                    raise FhirFetchError(f"{rtype}: HTTP {status} redirect not followed", status)
                if status >= 400:
                    raise FhirFetchError(f"{rtype}: HTTP {status}", status)
                body = self._read_capped(response, rtype, deadline)
        except requests.Timeout as exc:
            raise FhirFetchError(f"{rtype}: timed out after {timeout:.2f} s") from exc
        except requests.RequestException as exc:
            # The exception text can contain the URL (and so a patient id): name the class only.
            raise FhirFetchError(f"{rtype}: request failed ({type(exc).__name__})") from exc
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise FhirFetchError(f"{rtype}: response is not JSON", status) from exc

    def _read_capped(self, response: requests.Response, rtype: str, deadline: float) -> bytes:
        limit = self.settings.max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FhirFetchError(
                f"{rtype}: response larger than fhir.max_bytes", response.status_code
            )
        chunks: list[bytes] = []
        size = 0
        # Counted after decompression, so a small gzip body cannot expand past the cap.
        for chunk in response.iter_content(_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise FhirFetchError(
                    f"{rtype}: response larger than fhir.max_bytes", response.status_code
                )
            if self.clock() > deadline:
                raise FhirFetchError(f"{rtype}: call budget exhausted while reading")
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()
