"""Prefetch template tokens (CDS Hooks 2.0 §Prefetch tokens): resolve them against a hook context.

A template is a FHIR read or search relative to ``fhirServer``, e.g.
``MedicationRequest?patient={{context.patientId}}``. Tokens are ``{{context.<field>}}`` (root-level,
primitive context fields) or one of the four ``{{user…Id}}`` tokens derived from ``context.userId``.
A template whose token cannot be resolved yields ``None``: the spec treats such a key as absent,
never as a query with an empty value (which would widen a patient search to every patient).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\{\{(.*?)\}\}")
_CONTEXT_FIELD = re.compile(r"context\.([A-Za-z_][A-Za-z0-9_]*)")

# token name -> the FHIR resource type that context.userId must name for the token to resolve
USER_TOKENS: Mapping[str, str] = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}

# Characters that would turn one substituted value into another path segment, another query
# parameter or a fragment: URL-encoding them would hide the attempt, so the value is refused.
_SHAPE_CHARS = frozenset("/?&#")


def resource_type(template: str) -> str:
    """The FHIR resource type a prefetch template reads: "Encounter" for
    "Encounter?patient={{context.patientId}}", "Patient" for "Patient/{{context.patientId}}"."""
    return template.strip().lstrip("/").split("?", 1)[0].split("/", 1)[0]


def template_tokens(template: str) -> set[str]:
    """The token names used in ``template``, without braces or surrounding spaces."""
    return {m.group(1).strip() for m in _TOKEN.finditer(template)}


def is_portable(template: str) -> bool:
    """True when every token is one the spec allows and no stray braces remain."""
    for name in template_tokens(template):
        if name not in USER_TOKENS and not _CONTEXT_FIELD.fullmatch(name):
            return False
    rest = _TOKEN.sub("", template)
    return "{{" not in rest and "}}" not in rest


def user_ids_from_context(context: Mapping[str, Any]) -> dict[str, str]:
    """The ``user…Id`` token values implied by ``context.userId`` ("Practitioner/123")."""
    user = context.get("userId")
    if not isinstance(user, str):
        return {}
    parts = [p for p in user.split("/") if p]
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2:
        return {}
    resource_type, ident = parts[-2], parts[-1]
    return {token: ident for token, rtype in USER_TOKENS.items() if rtype == resource_type}


def resolve_template(
    template: str,
    context: Mapping[str, Any],
    *,
    user_ids: Mapping[str, str] | None = None,
) -> str | None:
    """``template`` with every token substituted (URL-encoded), or None if any cannot be resolved.

    ``user_ids`` overrides the ``user…Id`` values otherwise derived from ``context.userId``.
    """
    users = user_ids_from_context(context)
    if user_ids:
        users.update(user_ids)
    values: dict[str, str] = {}
    for name in template_tokens(template):
        value = _token_value(name, context, users)
        if value is None:
            return None
        values[name] = value
    return _TOKEN.sub(lambda m: values[m.group(1).strip()], template)


def _token_value(name: str, context: Mapping[str, Any], users: Mapping[str, str]) -> str | None:
    raw: Any
    if name in USER_TOKENS:
        raw = users.get(name)
    else:
        match = _CONTEXT_FIELD.fullmatch(name)
        if match is None:
            log.info("prefetch token %r is not supported", name)
            return None
        raw = context.get(match.group(1))
    # bool is an int subclass, but "True" is never a FHIR id or search value
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    text = str(raw)
    if not text or text in (".", "..") or _SHAPE_CHARS & set(text):
        # The value itself is not logged: it may be a patient id.
        log.warning("prefetch token %r has a value that would change the query; not used", name)
        return None
    return quote(text, safe="")
