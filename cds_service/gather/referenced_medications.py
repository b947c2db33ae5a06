"""Medications referenced by orders (``medicationReference``) but not sent with them.

Best effort within the hook call's deadline: a Medication that cannot be read leaves its order
classified by its other codes and text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from cds_service.gather.bundles import resources_in, type_of
from cds_service.gather.fhir_client import DEADLINE_GRACE_S, FhirClient

log = logging.getLogger(__name__)

# Referenced Medications only add names and codes; past this many the rest stay unresolved.
MAX_MEDICATION_FETCHES = 50
_MEDICATION_USERS = frozenset({"MedicationRequest", "MedicationDispense", "MedicationStatement"})
_MEDICATION_REF = re.compile(r"Medication/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?")


def medication_references(
    values: Mapping[str, Any], context: Mapping[str, Any], server: str
) -> list[str]:
    """Medication references ("Medication/x") to fetch: not contained, not already present.

    Reads ``medicationReference.reference`` of the MedicationRequests, MedicationDispenses and
    MedicationStatements in ``values`` (gathered prefetch values) and ``context`` (draft
    orders), relative or absolute under ``server``; ``#contained`` and foreign-server references
    are skipped. First-seen order, no duplicates, at most ``MAX_MEDICATION_FETCHES`` (50).
    """
    present: set[str] = set()
    wanted: list[str] = []
    # Draft orders in the context reference Medications too.
    for value in [*values.values(), *context.values()]:
        for resource in resources_in(value):
            rtype = type_of(resource)
            if rtype == "Medication" and isinstance(resource.get("id"), str):
                present.add(f"Medication/{resource['id']}")
            elif rtype in _MEDICATION_USERS:
                med = resource.get("medicationReference")
                ref = med.get("reference") if isinstance(med, dict) else None
                if isinstance(ref, str) and ref.startswith(server + "/"):
                    ref = ref[len(server) + 1 :]
                match = _MEDICATION_REF.fullmatch(ref) if isinstance(ref, str) else None
                if match and f"Medication/{match.group(1)}" not in wanted:
                    wanted.append(f"Medication/{match.group(1)}")
    return [ref for ref in wanted if ref not in present][:MAX_MEDICATION_FETCHES]


def fetch_medications(
    refs: list[str],
    server: str,
    executor: ThreadPoolExecutor,
    client: FhirClient,
    token: str | None,
    clock: Callable[[], float],
    deadline: float,
) -> dict[str, Mapping[str, Any]]:
    """Read ``refs`` from ``server`` on ``executor`` within ``deadline`` (a ``clock()`` time,
    seconds); returns ref -> Medication resource for those read.

    Best effort, never raises: a read that fails, is late or answers with something other than
    a Medication is left out (counted in one warning), and its order is classified by other
    means.
    """
    if not refs:
        return {}
    futures = {
        ref: executor.submit(client.get_json, f"{server}/{ref}", token=token, deadline=deadline)
        for ref in refs
    }
    wait(futures.values(), timeout=max(0.0, deadline - clock()) + DEADLINE_GRACE_S)
    found: dict[str, Mapping[str, Any]] = {}
    for ref, future in futures.items():
        if not future.done() or future.exception() is not None:
            future.cancel()
            continue
        resource = future.result()
        if type_of(resource) == "Medication":
            found[ref] = resource
    if len(found) < len(refs):
        log.warning(
            "%d of %d referenced Medications could not be read", len(refs) - len(found), len(refs)
        )
    return found
