"""Parse and validate a CDS Hooks service request into a ``HookRequest``.

Strict where the spec is strict (required fields, their JSON types, the hook of the service) and
lenient everywhere else: the optional ``fhirAuthorization`` (see ``_access_token``), unknown
fields and ``extension`` objects (hooks evolve by adding optional fields), and the FHIR content
of ``draftOrders`` / ``medications`` / ``prefetch``, which is left to the forgiving mappers.
Error messages name the field, never its value, since values may carry PHI or tokens.

``context.patientId`` and ``context.encounterId`` are FHIR ids: a ``Patient/`` (``Encounter/``)
prefix is dropped here, once, so that every reference, query, pseudonym and log downstream sees
the bare id; what is not an R4 id after that is refused. Strings the audit log stores
(``hookInstance``, ``context.userId``) are refused when longer than it can hold.
"""

from __future__ import annotations

import logging
import re
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
# The longest values the audit log stores: storage.audit.models CardRow.hook_instance (which is
# also the request id of every log line, so it must stay short and printable) and
# CardRow.practitioner. A longer value would fail the audit insert on PostgreSQL and lose the
# row. gather may not import storage (.importlinter), so
# tests/cds_service/gather/test_hook_request_ids.py holds these to the column lengths.
MAX_LENGTHS: Mapping[str, int] = {"hookInstance": 128, "context.userId": 256}
# R4 id (http://hl7.org/fhir/R4/datatypes.html#id): nothing else can name a resource, and the
# value goes into references ("Patient/<id>") and search URLs.
FHIR_ID_PATTERN = r"[A-Za-z0-9\-.]{1,64}"
_FHIR_ID = re.compile(FHIR_ID_PATTERN)
# Two ids that match it but are URL dot-segments: "Patient/.." would resolve to the server base.
_DOT_SEGMENTS = frozenset({".", ".."})
# Context fields holding the FHIR id of a resource of this type; "<type>/<id>" (a relative
# reference to the same resource, as some EHRs send it) is taken as the id.
ID_FIELDS: Mapping[str, str] = {"patientId": "Patient", "encounterId": "Encounter"}
# orjson's fixed nesting limit for parsing.
MAX_JSON_DEPTH = 1024
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class HookRequest:
    """A validated CDS Hooks request for one service.

    ``hook_instance`` (at most 128 printable characters) and ``user_id`` (at most 256) are the
    request's strings as sent; ``patient_id`` and ``encounter_id`` are bare FHIR ids (a
    ``Patient/`` or ``Encounter/`` prefix removed; not yet pseudonymised). ``context`` is the
    whole ``context`` object, a copy holding those bare ids; ``draft_bundle`` is
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
    """Parse ``body`` (UTF-8 JSON bytes, a leading byte order mark ignored) into a dict; ``what``
    names it in error messages.

    Raises ``RequestError`` with code ``malformed-json`` when it is not JSON, not UTF-8 (UTF-16
    or UTF-32, or bytes that are not valid UTF-8: the message says it must be UTF-8) or nested
    deeper than ``MAX_JSON_DEPTH`` (1024) levels, and ``invalid-request`` when it is not an
    object.
    """
    text: bytes | memoryview = body
    if body.startswith(_UTF8_BOM):
        # RFC 8259 §8.1 lets a parser ignore it, and Windows/.NET clients send one. A view, not
        # a copy: the body may be megabytes.
        text = memoryview(body)[len(_UTF8_BOM):]
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        # orjson stops at 1024 levels; say so, or a client would hunt for a syntax error.
        if "depth limit" in exc.msg or "recursion" in exc.msg.lower():
            raise RequestError(
                f"{what} is nested too deeply (at most {MAX_JSON_DEPTH} levels)",
                code="malformed-json",
            ) from exc
        encoding = _wrong_encoding(text)
        if encoding is not None:
            raise RequestError(
                f"{what} must be JSON encoded as UTF-8 (RFC 8259 §8.1); it {encoding}",
                code="malformed-json",
            ) from exc
        raise RequestError(f"{what} is not valid JSON", code="malformed-json") from exc
    if not isinstance(data, dict):
        raise RequestError(f"{what} must be a JSON object", code="invalid-request")
    return data


def _wrong_encoding(text: bytes | memoryview) -> str | None:
    """How a body that failed to parse is not UTF-8 ("looks like UTF-16 or UTF-32", "holds bytes
    that are not valid UTF-8"), or None when it is UTF-8 (then it is simply not JSON)."""
    head = bytes(text[:4])
    # JSON text starts with ASCII (RFC 4627 §3): in UTF-16/32 one of its first 4 bytes is a NUL,
    # unless a UTF-16/32 byte order mark comes first.
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")) or b"\x00" in head:
        return "looks like UTF-16 or UTF-32"
    try:
        str(text, "utf-8")
    except UnicodeDecodeError:
        return "holds bytes that are not valid UTF-8"
    return None


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
    limit = MAX_LENGTHS["hookInstance"]
    if len(value) > limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise RequestError(
            f"hookInstance must be at most {limit} characters, no control characters",
            code="invalid-field",
        )


def _check_length(value: str | None, name: str) -> None:
    """Raises ``RequestError`` (``invalid-field``) naming ``name`` when ``value`` is longer than
    ``MAX_LENGTHS[name]``."""
    limit = MAX_LENGTHS[name]
    if value is not None and len(value) > limit:
        raise RequestError(
            f"{name} must be at most {limit} characters (the longest the audit log stores)",
            code="invalid-field",
        )


def bare_id(value: str, name: str) -> str:
    """The FHIR id in ``context.<name>`` (a key of ``ID_FIELDS``): ``value`` itself, or what
    follows its ``"<type>/"`` prefix ("Patient/123" -> "123").

    Raises ``RequestError`` (``invalid-field``) naming ``context.<name>``, never the value, when
    that is not an R4 id (1-64 ASCII letters, digits, "-" and ".") or is "." or "..".
    """
    resource_type = ID_FIELDS[name]
    prefix = resource_type + "/"
    ident = value.removeprefix(prefix)
    if _FHIR_ID.fullmatch(ident) is None or ident in _DOT_SEGMENTS:
        raise RequestError(
            f"context.{name} must be the {resource_type} id: 1-64 ASCII letters, digits, '-' "
            f"or '.' (not '.' or '..'), optionally written as '{prefix}<id>'; no absolute URL, "
            "version or query",
            code="invalid-field",
        )
    return ident


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
    characters, a ``context.userId`` over 256 characters, a ``context.patientId`` or
    ``context.encounterId`` that is not a FHIR id (``bare_id``), a ``fhirServer`` that is not an
    http(s) URL or a ``prefetch`` that is not an object, and ``hook-mismatch`` when ``hook`` is
    not this service's. A faulty ``fhirAuthorization`` never raises (see ``_access_token``).
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
    _check_length(context.get("userId"), "context.userId")
    # Prefetch templates and medication references are filled from the context: it must carry
    # the bare ids too (a copy: the caller's body is left as sent).
    ids = {name: bare_id(context[name], name) for name in ID_FIELDS if context.get(name)}
    context = {**context, **ids}
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
        patient_id=ids["patientId"],
        user_id=context.get("userId"),
        encounter_id=ids.get("encounterId"),
        context=context,
        draft_bundle=draft_bundle,
        selections=tuple(context.get("selections") or ()),
        fhir_server=fhir_server or None,
        prefetch=prefetch,
        access_token=token,
        token_problem=token_problem,
    )
