"""The CDS services this deployment offers (data in config/services.yaml): hook, prefetch templates.

A definition is loaded once at startup and validated there, so that a broken services file stops
the service before the first call instead of serving a half-empty discovery document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from cds_service.errors import ConfigError
from cds_service.settings import HOOK_IDS, Settings
from config import CONFIG_DIR

SERVICES_FILE = CONFIG_DIR / "services.yaml"

# CDS Hooks 2.0 §Prefetch tokens: root-level context fields or the user*Id tokens only.
_ALLOWED_TOKEN = re.compile(
    r"^(context\.[A-Za-z][A-Za-z0-9]*"
    r"|userPractitionerId|userPractitionerRoleId|userPatientId|userRelatedPersonId)$"
)
_TOKEN = re.compile(r"\{\{\s*(.*?)\s*\}\}")


@dataclass(frozen=True, slots=True)
class ServiceDefinition:
    """One CDS service of ``config/services.yaml``, as its discovery entry describes it.

    ``hook`` is a CDS Hooks hook id (one of ``HOOK_IDS``); ``prefetch`` maps each key to its
    template (relative FHIR read or search); ``required`` are the keys without which a call gets
    412 (a subset of ``prefetch``). Text fields have their whitespace collapsed.
    """

    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str
    prefetch: Mapping[str, str]
    required: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        """The discovery entry; optional attributes without a value are omitted (spec §JSON)."""
        entry: dict[str, Any] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
        }
        if self.prefetch:
            entry["prefetch"] = dict(self.prefetch)
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return {k: v for k, v in entry.items() if v}


def _text(raw: Mapping[str, Any], key: str, where: str, problems: list[str]) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}.{key}: must be a non-empty string")
        return ""
    return " ".join(value.split())


def _definition(raw: Any, where: str, problems: list[str]) -> ServiceDefinition | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be a mapping")
        return None
    hook = _text(raw, "hook", where, problems)
    if hook and hook not in HOOK_IDS:
        problems.append(f"{where}.hook: unknown hook {hook!r}; known: {list(HOOK_IDS)}")
    prefetch = raw.get("prefetch") or {}
    if not isinstance(prefetch, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in prefetch.items()
    ):
        problems.append(f"{where}.prefetch: must map keys to template strings")
        prefetch = {}
    for key, template in prefetch.items():
        bad = [t for t in _TOKEN.findall(template) if not _ALLOWED_TOKEN.match(t)]
        if bad:
            problems.append(f"{where}.prefetch.{key}: token(s) {bad} are not allowed")
    required = raw.get("required") or []
    if not isinstance(required, list) or not set(required) <= set(prefetch):
        problems.append(f"{where}.required: must list prefetch keys")
        required = []
    definition = ServiceDefinition(
        id=_text(raw, "id", where, problems),
        hook=hook,
        title=_text(raw, "title", where, problems),
        description=_text(raw, "description", where, problems),
        usage_requirements=" ".join(str(raw.get("usageRequirements") or "").split()),
        prefetch=MappingProxyType(dict(prefetch)),
        required=frozenset(required),
    )
    return definition


def load_definitions(path: Path | None = None) -> Mapping[str, ServiceDefinition]:
    """All service definitions by id, in file order, from ``path`` (default
    ``config/services.yaml``).

    Raises ``ConfigError`` when the file cannot be read or parsed, or naming every problem found
    (missing text fields, unknown hooks, tokens outside CDS Hooks 2.0 §Prefetch tokens, required
    keys without a template, duplicate ids).
    """
    path = path or SERVICES_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read service definitions: {exc}") from exc
    problems: list[str] = []
    raw_services = data.get("services") if isinstance(data, Mapping) else None
    if not isinstance(raw_services, list):
        raise ConfigError(f"{path}: invalid service definitions", ["services: must be a list"])
    definitions: dict[str, ServiceDefinition] = {}
    for index, raw in enumerate(raw_services):
        definition = _definition(raw, f"services[{index}]", problems)
        if definition is None:
            continue
        if definition.id in definitions:
            problems.append(f"services[{index}].id: duplicate id {definition.id!r}")
        definitions[definition.id] = definition
    if problems:
        raise ConfigError(f"{path}: invalid service definitions", problems)
    return MappingProxyType(definitions)


def enabled_definitions(
    definitions: Mapping[str, ServiceDefinition], settings: Settings
) -> Mapping[str, ServiceDefinition]:
    """The services this site switched on (service.hooks); the others are unlisted and 404."""
    hooks = settings.service.hooks
    return MappingProxyType(
        {sid: d for sid, d in definitions.items() if hooks.get(d.hook, True)}
    )
