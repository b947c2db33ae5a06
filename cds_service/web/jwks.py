"""Public keys of the trusted CDS clients (JWK Sets), by issuer and ``kid``.

Each trusted client has one configured source: a ``jwks_file`` (read at start, so a typo fails
the start-up) or a ``jwks_url`` (fetched on first use with a short timeout, then cached). A token
naming an unknown ``kid`` triggers one refresh, because clients rotate keys, but at most once per
``refresh_interval_s`` per source, so a stream of forged ``kid`` values cannot make us hammer
the client's server. A token's ``jku`` header is followed only when that exact URL is on the
client's ``jku_allowlist`` (CDS Hooks 2.0, Trusting CDS Clients: never fetch an arbitrary ``jku``);
otherwise it is ignored and the configured source is used.

Only public members of usable signing keys are kept (EC or RSA, ``use`` absent or ``sig``, a
``kid``): the verifier builds the key for the token's algorithm from them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt
import requests

from cds_service.errors import ConfigError
from cds_service.settings import TrustedClient

log = logging.getLogger(__name__)

Jwk = Mapping[str, Any]

_PUBLIC_MEMBERS = {
    "EC": ("kty", "kid", "use", "alg", "crv", "x", "y"),
    "RSA": ("kty", "kid", "use", "alg", "n", "e"),
}
_MAX_JWKS_BYTES = 256 * 1024


def parse_jwks(data: Any, origin: str) -> dict[str, Jwk]:
    """Usable public signing keys by ``kid``; raises ValueError when the document is no JWK Set.

    ``data`` is the parsed JSON, ``origin`` names its source in messages. Keys that are not EC or
    RSA, not for signing, without a ``kid`` or that PyJWT cannot build are skipped with a warning
    (as is a repeated ``kid``); each kept key holds only its public members.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
        raise ValueError(f"{origin}: not a JWK Set (expected an object with a 'keys' array)")
    keys: dict[str, Jwk] = {}
    for raw in data["keys"]:
        if not isinstance(raw, Mapping):
            continue
        kid, kty = raw.get("kid"), raw.get("kty")
        if not isinstance(kid, str) or not kid or kty not in _PUBLIC_MEMBERS:
            continue
        if raw.get("use", "sig") != "sig":
            continue
        public = {m: raw[m] for m in _PUBLIC_MEMBERS[kty] if m in raw}
        try:
            jwt.PyJWK(public)
        except jwt.PyJWTError:
            log.warning("skipping unusable key in JWK Set", extra={"origin": origin, "kid": kid})
            continue
        if kid in keys:
            log.warning("duplicate kid in JWK Set; keeping the first", extra={"origin": origin})
            continue
        keys[kid] = public
    return keys


class KeySource:
    """One JWK Set (a file or a URL), cached and refreshed at most once per interval.

    ``load`` returns the parsed document; ``clock`` is monotonic seconds. Keys older than
    ``max_age_s`` seconds are reloaded on the next lookup, and no two loads start less than
    ``refresh_interval_s`` seconds apart. ``fetch_count`` counts refresh attempts.
    """

    def __init__(
        self,
        origin: str,
        load: Callable[[], Any],
        *,
        clock: Callable[[], float],
        refresh_interval_s: float,
        max_age_s: float,
    ) -> None:
        self.origin = origin
        self._load = load
        self._clock = clock
        self._refresh_interval_s = refresh_interval_s
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._keys: dict[str, Jwk] = {}
        self._loaded_at: float | None = None
        self._last_attempt: float | None = None
        self.fetch_count = 0

    def find(self, kid: str) -> Jwk | None:
        """The key with this ``kid``, reloading first when stale or when the ``kid`` is unknown
        (within the refresh interval); None when the set lacks it. A failed reload keeps the
        cached keys and is logged, never raised."""
        with self._lock:
            now = self._clock()
            stale = self._loaded_at is None or now - self._loaded_at > self._max_age_s
            if stale and self._may_refresh(now):
                self._refresh(now)
            key = self._keys.get(kid)
            if key is None and self._may_refresh(now):
                self._refresh(now)
                key = self._keys.get(kid)
            return key

    def load_now(self) -> None:
        """Load immediately, raising on failure (start-up check for configured files).

    Raises ``OSError`` when the file cannot be read, ``ValueError`` when it is not a JWK Set
    (``json.JSONDecodeError`` included), and ``requests.RequestException`` for a URL source.
    """
        with self._lock:
            now = self._clock()
            self._last_attempt = now
            self._keys = parse_jwks(self._load(), self.origin)
            self._loaded_at = now

    def _may_refresh(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self._refresh_interval_s

    def _refresh(self, now: float) -> None:
        self._last_attempt = now
        self.fetch_count += 1
        try:
            self._keys = parse_jwks(self._load(), self.origin)
            self._loaded_at = now
        except (OSError, ValueError, requests.RequestException) as exc:
            # Keep the keys we had: a client's JWKS endpoint hiccup must not lock every EHR out.
            log.warning(
                "cannot load JWK Set; keeping cached keys",
                extra={"origin": self.origin, "reason": str(exc)[:200]},
            )


def _read_file(path: Path) -> Callable[[], Any]:
    def load() -> Any:
        return json.loads(path.read_text(encoding="utf-8"))

    return load


def _fetch_url(url: str, session: requests.Session, timeout_s: float) -> Callable[[], Any]:
    def load() -> Any:
        # No redirects: the allowlisted URL is the one we trust, not wherever it points.
        with session.get(
            url,
            timeout=timeout_s,
            allow_redirects=False,
            stream=True,
            headers={"Accept": "application/jwk-set+json, application/json"},
        ) as response:
            response.raise_for_status()
            body = response.raw.read(_MAX_JWKS_BYTES + 1, decode_content=True)
        if len(body) > _MAX_JWKS_BYTES:
            raise ValueError(f"{url}: JWK Set larger than {_MAX_JWKS_BYTES} bytes")
        return json.loads(body)

    return load


def _file_problem(client: TrustedClient, path: Path, reason: str) -> str:
    return f"auth.trusted_clients[{client.issuer}].jwks_file: cannot load {path}: {reason}"


def jwks_file_problems(clients: Sequence[TrustedClient]) -> list[str]:
    """One line per pinned ``jwks_file`` that cannot be used: missing, unreadable, not a JWK Set,
    or holding no usable signing key. ``check-config`` and ``serve`` report these before any
    worker starts; ``jwks_url`` sources are fetched later and are not checked here."""
    problems = []
    for client in clients:
        if not client.jwks_file:
            continue
        path = Path(client.jwks_file)
        try:
            keys = parse_jwks(_read_file(path)(), f"file:{path}")
        except OSError as exc:
            problems.append(_file_problem(client, path, exc.strerror or str(exc)))
            continue
        except ValueError as exc:  # json.JSONDecodeError is one
            problems.append(_file_problem(client, path, str(exc)))
            continue
        if not keys:
            problems.append(_file_problem(client, path, "no usable signing key (EC or RSA, kid)"))
    return problems


class KeyStore:
    """Key sources for every trusted client, built once at start-up.

    ``timeout_s`` bounds each JWKS fetch, ``refresh_interval_s`` and ``max_age_s`` are passed to
    each ``KeySource`` (seconds); ``clock`` is monotonic seconds. ``jwks_file`` sources are read
    now; ``jwks_url`` sources on first use. Raises ``ConfigError`` for an issuer listed twice or a
    ``jwks_file`` that cannot be read or is not a JWK Set.
    """

    def __init__(
        self,
        clients: Sequence[TrustedClient],
        *,
        timeout_s: float = 2.0,
        refresh_interval_s: float = 30.0,
        max_age_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self._session = session or requests.Session()
        self._timeout_s = timeout_s
        self._source_args: dict[str, Any] = {
            "clock": clock,
            "refresh_interval_s": refresh_interval_s,
            "max_age_s": max_age_s,
        }
        self._url_sources: dict[str, KeySource] = {}
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[TrustedClient, KeySource]] = {}
        for client in clients:
            if client.issuer in self._clients:
                raise ConfigError(f"auth.trusted_clients: issuer {client.issuer!r} listed twice")
            self._clients[client.issuer] = (client, self._primary_source(client))

    def is_trusted(self, issuer: str) -> bool:
        """Whether ``issuer`` (the JWT ``iss``) is one of ``auth.trusted_clients``."""
        return issuer in self._clients

    def find_key(self, issuer: str, kid: str, jku: str | None = None) -> Jwk | None:
        """The issuer's public key with this ``kid``, or None when no allowed source has it.

    A ``jku`` (the token header's JWKS URL) is tried first when it is on the client's
    ``jku_allowlist``, and ignored otherwise. Never raises for a source that cannot be loaded.
    """
        entry = self._clients.get(issuer)
        if entry is None:
            return None
        client, primary = entry
        sources = [primary]
        if jku is not None and jku in client.jku_allowlist:
            sources.insert(0, self._url_source(jku))
        elif jku is not None:
            log.debug("jku not on the allowlist; ignored", extra={"issuer": issuer})
        for source in sources:
            key = source.find(kid)
            if key is not None:
                return key
        return None

    def _primary_source(self, client: TrustedClient) -> KeySource:
        if client.jwks_url:
            return self._url_source(client.jwks_url)
        path = Path(client.jwks_file or "")
        source = KeySource(f"file:{path}", _read_file(path), **self._source_args)
        try:
            source.load_now()
        except OSError as exc:
            raise ConfigError(_file_problem(client, path, exc.strerror or str(exc))) from exc
        except ValueError as exc:
            raise ConfigError(_file_problem(client, path, str(exc))) from exc
        return source

    def _url_source(self, url: str) -> KeySource:
        # One source per URL, shared by clients and jku headers, so rate limits hold per server.
        with self._lock:
            source = self._url_sources.get(url)
            if source is None:
                load = _fetch_url(url, self._session, self._timeout_s)
                source = KeySource(url, load, **self._source_args)
                self._url_sources[url] = source
            return source
