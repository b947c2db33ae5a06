"""CDS Hooks discovery (spec §Discovery): the JSON document listing the enabled services."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cds_service.gather.service_definitions import ServiceDefinition


def discovery_document(definitions: Mapping[str, ServiceDefinition]) -> dict[str, Any]:
    """``{"services": [...]}``: each definition's discovery JSON (hook, id, title, description,
    prefetch...), in the order of ``definitions``."""
    return {"services": [d.to_json() for d in definitions.values()]}
