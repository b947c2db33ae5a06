"""Trusting CDS clients: verify the EHR's signed JWT, and the separate admin/auditor token.

CDS Hooks 2.0 (Trusting CDS Clients, JWT Signing Algorithm) and the HL7 best-practice note:
the header names an asymmetric ``alg`` we allow (never ``none`` or HS*), ``typ`` JWT and a ``kid``;
``iss`` is a trusted client; the signature verifies with that client's key for ``kid``; ``aud`` is
the URL that was called; ``exp`` has not passed and ``iat`` is not in the future (both with
``clock_skew_s``); the token lives no longer than ``max_token_lifetime_s``; ``jti`` was never
seen. The ``jti`` is then kept in the shared TtlStore until the token expires. ``sub`` is accepted
and ignored (it left the spec before 2.0). Each failure raises ``AuthError`` with its own code
and is logged with issuer, kid, jti and reason; the token itself is never logged.

The admin/auditor token is a different credential: an opaque bearer token whose sha256 is in
the configuration, so EHR keys can never unlock the audit API and vice versa.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import jwt

from cds_service.errors import AuthError
from cds_service.settings import AuthSettings
from cds_service.storage.ttl_store import StoreUnavailable, TtlStore
from cds_service.web.jwks import Jwk, KeyStore

log = logging.getLogger(__name__)

_MAX_TOKEN_CHARS = 16 * 1024
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


@dataclass(frozen=True, slots=True)
class VerifiedClient:
    """The EHR whose JWT passed every check: its ``iss``, the token's ``jti`` (now remembered
    until ``exp``), and the optional ``tenant`` claim (``None`` when absent or not a string)."""

    issuer: str
    jti: str
    tenant: str | None


def bearer_token(authorization_header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive).

    Raises ``AuthError`` with code ``missing-token`` when the header is absent or blank, and
    ``malformed-token`` for another scheme, an empty token or one containing a space.
    """
    if not authorization_header or not authorization_header.strip():
        raise AuthError("authorization required", code="missing-token")
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthError("expected 'Authorization: Bearer <token>'", code="malformed-token")
    return token


def _loggable(value: Any) -> str | None:
    # Header and claim values are unverified input: log them bounded, never whole.
    return value[:128] if isinstance(value, str) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _audience_matches(aud: Any, audience: str) -> bool:
    # A trailing slash is not a different endpoint; anything else must match exactly.
    wanted = audience.rstrip("/")
    values = aud if isinstance(aud, list) else [aud]
    return any(isinstance(v, str) and v.rstrip("/") == wanted for v in values)


def _key_fits(jwk: Jwk, alg: str) -> bool:
    """Whether this key may verify ``alg``: key type, curve and any pinned ``alg`` agree."""
    if jwk.get("alg") not in (None, alg):
        return False
    if alg.startswith("ES"):
        return jwk.get("kty") == "EC" and jwk.get("crv") == _CURVES.get(alg)
    return alg.startswith(("RS", "PS")) and jwk.get("kty") == "RSA"


class JwtVerifier:
    """Verifies an EHR's client JWT against ``auth`` (see the module docstring for the checks).

    ``replay`` remembers each accepted ``jti`` until the token expires; share it between workers
    (SQL table or Redis) or a token can be replayed once per worker. ``clock`` returns Unix
    seconds (injected by tests); ``keys`` defaults to a ``KeyStore`` of
    ``auth.trusted_clients``. Only asymmetric ES*/RS*/PS* algorithms of ``auth.algorithms`` are
    ever accepted.
    """

    def __init__(
        self,
        auth: AuthSettings,
        replay: TtlStore,
        *,
        clock: Callable[[], float] = time.time,
        keys: KeyStore | None = None,
    ) -> None:
        self._auth = auth
        self._replay = replay
        self._clock = clock
        self._keys = keys if keys is not None else KeyStore(auth.trusted_clients)
        # Belt and braces: settings already refuse these, but a hand-built AuthSettings might not.
        self._algorithms = tuple(a for a in auth.algorithms if a.startswith(("ES", "RS", "PS")))

    @property
    def enabled(self) -> bool:
        """Whether hook calls must carry a JWT (``auth.require_jwt``)."""
        return self._auth.require_jwt

    def verify(self, authorization_header: str | None, audience: str) -> VerifiedClient:
        """Check the bearer JWT of ``authorization_header`` for a call to the URL ``audience``.

        Returns the ``VerifiedClient`` and remembers its ``jti``. Raises ``AuthError`` whose
        ``code`` names the first failed check: ``missing-token``, ``malformed-token`` (also over
        16,384 characters of token, or ``exp``/``iat``/``jti`` missing), ``algorithm-not-allowed``,
        ``untrusted-issuer``, ``unknown-key``, ``bad-signature``, ``wrong-audience``, ``expired``,
        ``issued-in-future`` (``iat`` or ``nbf``), ``token-lifetime-too-long``, ``replayed-token``
        or ``replay-store-unavailable`` (fails closed). Each rejection is logged without the token.
        """
        token = bearer_token(authorization_header)
        ctx: dict[str, Any] = {}
        if len(token) > _MAX_TOKEN_CHARS:
            self._fail("malformed-token", "token too long", ctx)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.api_jws.PyJWS().decode_complete(
                token, options={"verify_signature": False}
            )
            claims = json.loads(unverified["payload"])
        except (jwt.PyJWTError, ValueError):
            self._fail("malformed-token", "not a JWT", ctx)
        if not isinstance(claims, dict):
            self._fail("malformed-token", "JWT payload is not a JSON object", ctx)

        kid = header.get("kid")
        ctx.update(kid=_loggable(kid))
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            self._fail("algorithm-not-allowed", f"algorithm {alg!r} not allowed", ctx)
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            self._fail("malformed-token", "header typ must be JWT", ctx)
        if not isinstance(kid, str) or not kid:
            self._fail("malformed-token", "header kid is required", ctx)

        issuer = claims.get("iss")
        ctx.update(issuer=_loggable(issuer))
        if not isinstance(issuer, str) or not self._keys.is_trusted(issuer):
            self._fail("untrusted-issuer", "issuer is not trusted", ctx)
        jku = header.get("jku")
        jwk = self._keys.find_key(issuer, kid, jku if isinstance(jku, str) else None)
        if jwk is None:
            self._fail("unknown-key", "no trusted key with this kid", ctx)
        if not _key_fits(jwk, alg):
            self._fail("algorithm-not-allowed", "key does not fit the algorithm", ctx)
        try:
            jwt.api_jws.PyJWS().decode_complete(
                token, key=jwt.PyJWK(dict(jwk), algorithm=alg), algorithms=[alg]
            )
        except jwt.InvalidSignatureError:
            self._fail("bad-signature", "signature does not verify", ctx)
        except (jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
            self._fail("algorithm-not-allowed", "key does not fit the algorithm", ctx)
        except jwt.PyJWTError:
            self._fail("malformed-token", "not a JWS", ctx)

        jti = claims.get("jti")
        ctx.update(jti=_loggable(jti))
        self._check_claims(claims, audience, ctx)
        tenant = claims.get("tenant")
        self._remember_jti(issuer, claims, ctx)
        return VerifiedClient(
            issuer=issuer, jti=claims["jti"], tenant=tenant if isinstance(tenant, str) else None
        )

    def _check_claims(self, claims: Mapping[str, Any], audience: str, ctx: dict[str, Any]) -> None:
        now, skew = self._clock(), self._auth.clock_skew_s
        if not _audience_matches(claims.get("aud"), audience):
            self._fail("wrong-audience", "aud is not this endpoint", ctx)
        if not _is_number(claims.get("exp")) or not _is_number(claims.get("iat")):
            self._fail("malformed-token", "exp and iat are required numbers", ctx)
        exp, iat = float(claims["exp"]), float(claims["iat"])
        if now > exp + skew:
            self._fail("expired", "token expired", ctx)
        nbf = float(claims["nbf"]) if _is_number(claims.get("nbf")) else None
        if iat > now + skew or (nbf is not None and nbf > now + skew):
            self._fail("issued-in-future", "token issued in the future", ctx)
        if exp - iat > self._auth.max_token_lifetime_s:
            self._fail("token-lifetime-too-long", "exp - iat exceeds the allowed lifetime", ctx)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            self._fail("malformed-token", "jti is required", ctx)

    def _remember_jti(self, issuer: str, claims: Mapping[str, Any], ctx: dict[str, Any]) -> None:
        # jti is unique per issuer; hashing bounds key length whatever the client sends.
        digest = hashlib.sha256(f"{issuer}\x00{claims['jti']}".encode()).hexdigest()
        ttl_s = max(1.0, claims["exp"] + self._auth.clock_skew_s - self._clock())
        try:
            is_new = self._replay.add(f"jti:{digest}", ttl_s)
        except StoreUnavailable:
            # Fail closed: without the store a captured token could be replayed at will.
            log.error("replay store unavailable; rejecting token", extra={**ctx})
            raise AuthError("cannot check token replay", code="replay-store-unavailable") from None
        if not is_new:
            self._fail("replayed-token", "token already used", ctx)

    @staticmethod
    def _fail(code: str, message: str, ctx: Mapping[str, Any]) -> NoReturn:
        log.warning("client JWT rejected", extra={"reason": code, **ctx})
        raise AuthError(message, code=code)


def check_admin(authorization_header: str | None, auth: AuthSettings) -> None:
    """Allow the admin/auditor API only with the bearer token whose sha256 is configured.

    Returns ``None`` when the token's sha256 (hex) equals ``auth.admin_token_sha256`` (compared
    in constant time). Raises ``AuthError``: ``admin-disabled`` when no hash is configured,
    ``missing-token``/``malformed-token`` from ``bearer_token``, ``invalid-admin-token``
    otherwise.
    """
    if not auth.admin_token_sha256:
        raise AuthError("admin API is disabled", code="admin-disabled")
    token = bearer_token(authorization_header)
    digest = hashlib.sha256(token.encode()).hexdigest()
    if not hmac.compare_digest(digest, auth.admin_token_sha256):
        log.warning("admin token rejected", extra={"reason": "invalid-admin-token"})
        raise AuthError("invalid admin token", code="invalid-admin-token")
