"""The timeline's browser session: encrypted, HttpOnly, SameSite cookies; nothing in process memory.

Two cookies, both Fernet tokens (AES-CBC + HMAC-SHA256, ``cryptography``) keyed from
``smart.session_secret`` by HKDF, so that every worker and host of a site opens what another
sealed, and the browser can neither read nor alter them:

- the launch cookie holds the pending ``state``, the PKCE verifier and the token endpoint between
  ``/app/launch`` and ``/app/callback`` (ten minutes at most);
- the session cookie holds the access token, the patient id from the token response, the FHIR
  base and the card's appContext, and expires with the token (its own ``exp`` and ``Max-Age``).

The token is therefore never in a URL, a log line, the audit store or the memory of a worker beyond
one request. What must be remembered across workers, that a ``state`` was used and that a session
was closed, goes to the shared TTL store (``storage.ttl_store``).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LAUNCH_COOKIE = "psychopharm_smart_launch"
SESSION_COOKIE = "psychopharm_smart_session"
COOKIE_PATH = "/app"
LAUNCH_MAX_AGE_S = 600
# Browsers drop cookies over 4096 bytes (name and attributes included).
MAX_COOKIE_BYTES = 3900


class SessionCodec:
    """Seal and open small JSON objects; ``open`` returns None for anything not sealed by us."""

    def __init__(self, secret: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"psychopharm-cds smart session",
            info=b"cookie v1",
        ).derive(secret.encode("utf-8"))
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, data: Mapping[str, Any]) -> str:
        """An encrypted, authenticated, URL-safe token holding ``data`` (JSON)."""
        return self._fernet.encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()

    def open(self, sealed: str | None, max_age_s: int) -> dict[str, Any] | None:
        """``data`` back from ``seal``; None when absent, forged, altered or older than
        ``max_age_s`` seconds."""
        if not sealed:
            return None
        try:
            raw = self._fernet.decrypt(sealed.encode("ascii"), ttl=max_age_s)
        except (InvalidToken, UnicodeEncodeError, ValueError):
            return None
        data = json.loads(raw)
        return data if isinstance(data, dict) else None


def session_expiry(expires_in: int | None, default_s: int, now: float | None = None) -> int:
    """Unix time at which the session ends: the token's lifetime, or the site default."""
    lifetime = expires_in if expires_in and expires_in > 0 else default_s
    return int((time.time() if now is None else now) + min(lifetime, 86400))


def is_live(session: Mapping[str, Any], now: float | None = None) -> bool:
    """True while the session's ``exp`` (Unix seconds) lies in the future."""
    exp = session.get("exp")
    return isinstance(exp, int) and exp > (time.time() if now is None else now)
