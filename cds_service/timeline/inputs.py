"""Which resources a FHIR JSON document holds, for the timeline's offline users (CLI, auditor)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def resources_of(data: Any) -> list[Any]:
    """The resources and Bundles to map from one parsed JSON document.

    A CDS Hooks request gives its prefetch values (``null`` ones left out); a JSON array gives its
    items; anything else (a Bundle, a single resource) is returned as the one item. The mapper
    reads Bundles of any depth and records what it cannot use, so nothing is validated here.
    """
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping) and isinstance(data.get("prefetch"), Mapping):
        return [v for v in data["prefetch"].values() if v is not None]
    return [data]
