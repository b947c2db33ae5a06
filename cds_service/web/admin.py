"""Admin API: ``GET /admin/config`` shows the merged configuration the service runs with.

Protected by the admin/auditor bearer token (``auth.admin_token_sha256``; off when empty), which
is separate from the EHRs' JWTs. Secrets are masked: the HMAC key for patient keys, the admin
token hash, and passwords inside database or Redis URLs.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from cds_service.settings import Settings
from cds_service.web.auth import check_admin

bp = Blueprint("admin", __name__, url_prefix="/admin")

MASK = "***"
_URL_PASSWORD = re.compile(r"(?P<head>//[^:/@]*:)[^@/]*@")


def _mask_url(url: str) -> str:
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", url)


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The settings as a JSON-ready dict, thresholds included, with every secret replaced by
    ``***``: ``storage.patient_key_secret``, ``auth.admin_token_sha256`` and the password in
    ``storage.url`` and ``cache.redis_url``. Each pattern appears as mode, priority and its
    thresholds under their config names."""
    data = settings.model_dump(mode="json", exclude={"patterns"})
    data["patterns"] = {
        pid: {"mode": p.mode, "priority": p.priority, **asdict(p.thresholds)}
        for pid, p in settings.patterns.items()
    }
    data["storage"]["patient_key_secret"] = MASK
    data["storage"]["url"] = _mask_url(data["storage"]["url"])
    if data["auth"]["admin_token_sha256"]:
        data["auth"]["admin_token_sha256"] = MASK
    if data["cache"]["redis_url"]:
        data["cache"]["redis_url"] = _mask_url(data["cache"]["redis_url"])
    for secret in ("client_secret", "session_secret"):
        if data["smart"][secret]:
            data["smart"][secret] = MASK
    return data


@bp.get("/config")
def show_config() -> Response:
    """``GET /admin/config``: ``{"config_version", "settings"}`` (masked), for the admin token.

    Raises ``AuthError`` (401) when the admin API is off or the bearer token does not match.
    """
    settings = current_app.extensions["psychopharm"].settings
    check_admin(request.headers.get("Authorization"), settings.auth)
    return jsonify(
        {"config_version": settings.config_version, "settings": masked_settings(settings)}
    )
