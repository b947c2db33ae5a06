"""Parse and validate a CDS Hooks service request into a ``HookRequest``.

Strict where the spec is strict (required fields, their JSON types, the hook of the service) and
lenient everywhere else: the optional ``fhirAuthorization`` (see ``_access_token``), unknown
fields and ``extension`` objects (hooks evolve by adding optional fields), and the FHIR content
of ``draftOrders`` / ``medications`` / ``prefetch``, which is left to the forgiving mappers.
Error messages name the field, never its value, since values may carry PHI or tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from cds_service.errors import RequestError

log = logging.getLogger(__name__)

# Context fields each hook requires, with their JSON type (CDS Hooks library 1.0.1, see the
# checklist §L). medication-prescribe predates userId being useful to us, so it is optional there.
_STRING = "string"
_ARRAY_OF_STRINGS = "array of strings"
_OBJECT = "object"
CONTEXT_FIELDS: Mapping[str, Mapping[str, str]] = {
    "patient-view": {"userId": _STRING, "patientId": _STRING},
    "order-select": {
        "userId": _STRING,
        "patientId": _STRING,
        "selections": _ARRAY_OF_STRINGS,
        "draftOrders": _OBJECT,
    },
    "order-sign": {"userId": _STRING, "patientId": _STRING, "draftOrders": _OBJECT},
    "medication-prescribe": {"patientId": _STRING, "medications": _OBJECT},
}
_OPTIONAL_CONTEXT: Mapping[str, str] = {"encounterId": _STRING, "userId": _STRING}
_AUTH_FIELDS: Mapping[str, type] = {
    "access_token": str,
    "token_type": str,
    "expires_in": int,
    "scope": str,
    "subject": str,
}
# hookInstance becomes the request id in every log line: keep it short and printable.
_MAX_HOOK_INSTANCE = 128
# orjson's fixed nesting limit for parsing.
MAX_JSON_DEPTH = 1024


@dataclass(frozen=True, slots=True)
class HookRequest:
    """A validated CDS Hooks request for one service.

    ``hook_instance`` (at most 128 printable characters), ``patient_id``, ``user_id`` and
    ``encounter_id`` are the request's strings as sent (``context.patientId`` is a FHIR logical
    id, not yet pseudonymised). ``context`` is the whole ``context`` object; ``draft_bundle`` is
    ``context.draftOrders`` (``context.medications`` for medication-prescribe), unchecked FHIR;
    ``selections`` the order-select references (``"MedicationRequest/123"``), else empty.
    ``fhir_server`` is an http(s) base URL not yet checked against the allow-list; ``prefetch``
    maps template keys to whatever the EHR sent. ``access_token`` is the usable
    ``fhirAuthorization.access_token`` (None otherwise, with ``token_problem`` saying why).
    """

    service_id: str
    hook: str
    hook_instance: str
    patient_id: str
    user_id: str | None
    encounter_id: str | None
    context: Mapping[str, Any]
    draft_bundle: Any  # context.draftOrders, or context.medications for medication-prescribe
    selections: tuple[str, ...]
    fhir_server: str | None
    prefetch: Mapping[str, Any] | None
    # Transient by spec: never logged, stored or shown in a repr.
    access_token: str | None = field(default=None, repr=False)
    # Why a fhirAuthorization that was sent cannot be used (a fetch then fails as for an
    # unreachable server); None when there is none or it is usable.
    token_problem: str | None = None


def parse_json_object(body: bytes, what: str = "request body") -> dict[str, Any]:
    """Parse ``body`` (UTF-8 JSON bytes) into a dict; ``what`` names it in error messages.

    Raises ``RequestError`` with code ``malformed-json`` when it is not JSON or is nested deeper
    than ``MAX_JSON_DEPTH`` (1024) levels, and ``invalid-request`` when it is not an object.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson stops at 1024 levels; say so, or a client would hunt for a syntax error.
        if "depth limit" in exc.msg or "recursion" in exc.msg.lower():
            raise RequestError(
                f"{what} is nested too deeply (at most {MAX_JSON_DEPTH} levels)",
                code="malformed-json",
            ) from exc
        raise RequestError(f"{what} is not valid JSON", code="malformed-json") from exc
    if not isinstance(data, dict):
        raise RequestError(f"{what} must be a JSON object", code="invalid-request")
    return data


def _has_type(value: Any, kind: str) -> bool:
    if kind == _STRING:
        return isinstance(value, str) and bool(value.strip())
    if kind == _OBJECT:
        return isinstance(value, dict)
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and v.strip() for v in value)
    )


def _require(data: Mapping[str, Any], name: str, kind: str, where: str = "") -> None:
    label = f"{where}{name}"
    if name not in data or data[name] is None:
        raise RequestError(f"{label} is required", code="missing-field")
    if not _has_type(data[name], kind):
        raise RequestError(f"{label} must be a non-empty {kind}", code="invalid-field")


def _check_hook_instance(value: str) -> None:
    if len(value) > _MAX_HOOK_INSTANCE or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise RequestError(
            f"hookInstance must be at most {_MAX_HOOK_INSTANCE} characters, no control characters",
            code="invalid-field",
        )


def _access_token(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(access token, why it cannot be used) from the optional ``fhirAuthorization``.

    It is optional, and only needed when something must be fetched, so its faults never refuse
    the call. Cosmetic ones (no ``expires_in``, ``"bearer"`` in lower case, a number as a
    string, no ``scope`` or ``subject``) are logged and the token is used. A token that cannot
    be used (none, not a bearer token, no fhirServer to send it to) leaves the call without
    one: when a fetch is needed it then goes as for an unreachable server. The log lines name
    fields, never values.
    """
    auth = data.get("fhirAuthorization")
    if auth is None:
        return None, None
    if not isinstance(auth, dict):
        log.warning("fhirAuthorization is not an object; no token for this call")
        return None, "fhirAuthorization is not an object"
    notes: list[str] = []
    for name, kind in _AUTH_FIELDS.items():
        value = auth.get(name)
        if value is None:
            notes.append(f"{name} missing")
        elif kind is int and not _is_integer(value):
            notes.append(f"{name} not an integer")
        elif kind is str and (not isinstance(value, str) or not value.strip()):
            notes.append(f"{name} not a non-empty string")
    if notes:
        log.warning("fhirAuthorization is not as the spec has it: %s", ", ".join(notes))
    token = auth.get("access_token")
    if not isinstance(token, str) or not token.strip():
        return None, "fhirAuthorization has no access_token"
    token_type = auth.get("token_type")
    if token_type is not None and (
        not isinstance(token_type, str) or token_type.strip().lower() != "bearer"
    ):
        return None, "fhirAuthorization.token_type is not Bearer"
    if not data.get("fhirServer"):
        log.warning("fhirAuthorization without fhirServer; the token is not used")
        return None, "fhirAuthorization comes without a fhirServer"
    return token.strip(), None


def _is_integer(value: Any) -> bool:
    """A JSON integer (300, 300.0, 3e2), or a string of digits as some EHRs send it."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, str) and value.strip().isdigit()


def parse_hook_request(data: Mapping[str, Any], service_id: str, hook: str) -> HookRequest:
    """Validate the JSON object posted to ``service_id`` (whose hook is ``hook``, a key of
    ``CONTEXT_FIELDS``) and return it as a ``HookRequest``.

    Raises ``RequestError``: ``missing-field`` for a required field absent or null (``hook``,
    ``hookInstance``, ``context`` and the hook's ``CONTEXT_FIELDS``), ``invalid-field`` for a
    wrong JSON type or empty value, a ``hookInstance`` over 128 characters or with control
    characters, a ``fhirServer`` that is not an http(s) URL or a ``prefetch`` that is not an
    object, and ``hook-mismatch`` when ``hook`` is not this service's. A faulty
    ``fhirAuthorization`` never raises (see ``_access_token``).
    """
    _require(data, "hook", _STRING)
    _require(data, "hookInstance", _STRING)
    _check_hook_instance(data["hookInstance"])
    if data["hook"] != hook:
        raise RequestError(
            f"hook does not match this service: {service_id} answers {hook!r}",
            code="hook-mismatch",
        )
    _require(data, "context", _OBJECT)
    context: dict[str, Any] = data["context"]
    for name, kind in CONTEXT_FIELDS[hook].items():
        _require(context, name, kind, "context.")
    for name, kind in _OPTIONAL_CONTEXT.items():
        if context.get(name) is not None:
            _require(context, name, kind, "context.")
    fhir_server = data.get("fhirServer")
    if fhir_server is not None and not (
        isinstance(fhir_server, str) and fhir_server.startswith(("http://", "https://"))
    ):
        raise RequestError("fhirServer must be an absolute http(s) URL", code="invalid-field")
    token, token_problem = _access_token(data)
    prefetch = data.get("prefetch")
    if prefetch is not None and not isinstance(prefetch, dict):
        raise RequestError("prefetch must be an object", code="invalid-field")
    draft_bundle = context.get("medications" if hook == "medication-prescribe" else "draftOrders")
    return HookRequest(
        service_id=service_id,
        hook=hook,
        hook_instance=data["hookInstance"],
        patient_id=context["patientId"],
        user_id=context.get("userId"),
        encounter_id=context.get("encounterId"),
        context=context,
        draft_bundle=draft_bundle,
        selections=tuple(context.get("selections") or ()),
        fhir_server=fhir_server or None,
        prefetch=prefetch,
        access_token=token,
        token_problem=token_problem,
    )
