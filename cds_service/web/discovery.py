"""CDS Hooks discovery (spec §Discovery): the JSON document listing the enabled services."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cds_service.gather.service_definitions import ServiceDefinition


def discovery_document(definitions: Mapping[str, ServiceDefinition]) -> dict[str, Any]:
    return {"services": [d.to_json() for d in definitions.values()]}
