"""The benchmark's requests: realistic CDS Hooks bodies at fixed sizes, built from the synthetic
patients of ``cds_service.synthetic`` (deterministic by seed, dated relative to ``as_of``).

Named ``workload`` rather than ``requests`` so that running ``python bench/bench.py`` (which puts
``bench/`` first on ``sys.path``) cannot shadow the ``requests`` package the service imports.

Sizes count the resources in the patient's record (prefetch), not the draft order:

- small: 20 resources, a short repeated-intolerance history (fires a card);
- typical: 150, a repeated-intolerance story padded with older visits and PHQ-9 scores;
- large: 1,000, the same with years of history (~630 KB: the synthetic resources carry full
  codings, fullUrls and narrative-free but complete R4 fields, about 630 bytes each).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from cds_service.synthetic.population import BASE_URL, generate_patient, make_hook_request

SIZES: dict[str, int] = {"small": 20, "typical": 150, "large": 1000}
HOOKS: tuple[str, ...] = ("patient-view", "order-sign")
SERVICE_IDS: dict[str, str] = {
    "patient-view": "psychopharm-patient-view",
    "order-sign": "psychopharm-order-sign",
}
ARCHETYPE = "repeated_intolerance"
# The story's own resources (orders, allergies, scores) are kept when trimming; routine visits and
# fills are what a short chart has fewer of.
_TRIMMABLE = ("Encounter", "MedicationDispense")
# The services declare this prefetch key too; a real EHR fills it (empty here: no statements).
_EMPTY_KEYS = ("statements",)


@dataclass(frozen=True)
class Workload:
    """One patient's request at one size and hook, with and without prefetch."""

    size: str
    hook: str
    n_resources: int
    bundle: Mapping[str, Any]  # the patient's record, for the loopback FHIR server
    body: bytes  # with complete prefetch
    fallback_body: bytes  # no prefetch: the service reads everything from fhirServer
    # The same record under other patient ids: a clinic calls for many patients, and the audit
    # rows (and the override lookup over them) grow per patient, not per service.
    variants: tuple[bytes, ...] = ()

    @property
    def path(self) -> str:
        return f"/cds-services/{SERVICE_IDS[self.hook]}"

    def nth(self, i: int) -> bytes:
        return self.variants[i % len(self.variants)] if self.variants else self.body


def patient_bundle(
    n_resources: int, *, seed: int = 1, as_of: date, patient_id: str | None = None
) -> dict[str, Any]:
    """A patient with exactly ``n_resources`` resources whose repeated-intolerance story fires."""
    rng = random.Random(seed)
    pid = patient_id or f"bench-p{seed:06d}"
    probe = generate_patient(
        random.Random(seed), as_of, ARCHETYPE, patient_id=pid, history_years=0
    )
    if len(probe["entry"]) >= n_resources:
        return _trimmed(probe, n_resources)
    return generate_patient(
        rng, as_of, ARCHETYPE, patient_id=pid, history_years=0, n_resources=n_resources
    )


def _trimmed(bundle: dict[str, Any], n_resources: int) -> dict[str, Any]:
    entries = list(bundle["entry"])
    excess = len(entries) - n_resources
    # Routine visits and fills from the end of the bundle; the story's own resources stay.
    for index in range(len(entries) - 1, -1, -1):
        if excess <= 0:
            break
        if entries[index]["resource"]["resourceType"] in _TRIMMABLE:
            del entries[index]
            excess -= 1
    if excess > 0:
        raise ValueError(f"cannot trim the story to {n_resources} resources")
    return {**bundle, "entry": entries}


def hook_body(
    bundle: Mapping[str, Any],
    hook: str,
    *,
    fhir_server: str | None = None,
    hook_instance: str | None = None,
) -> dict[str, Any]:
    """The request as an EHR sends it: with prefetch, or (``fhir_server`` given) without."""
    body = make_hook_request(bundle, hook, hook_instance=hook_instance or str(uuid.uuid4()))
    for key in _EMPTY_KEYS:
        body["prefetch"][key] = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    if fhir_server is not None:
        del body["prefetch"]
        body["fhirServer"] = fhir_server
    return body


def build_workloads(
    as_of: date,
    *,
    fhir_server: str = BASE_URL,
    sizes: Mapping[str, int] = SIZES,
    n_variants: int = 50,
) -> list[Workload]:
    out = []
    for seed, (size, n) in enumerate(sizes.items(), start=1):
        bundle = patient_bundle(n, as_of=as_of, seed=seed)
        pid = bundle["entry"][0]["resource"]["id"].encode()
        for hook in HOOKS:
            body = orjson.dumps(hook_body(bundle, hook))
            out.append(
                Workload(
                    size=size,
                    hook=hook,
                    n_resources=len(bundle["entry"]),
                    bundle=bundle,
                    body=body,
                    fallback_body=orjson.dumps(hook_body(bundle, hook, fhir_server=fhir_server)),
                    # Ids are "bench-p<6 digits>": no other token in the body contains them.
                    variants=tuple(
                        body.replace(pid, pid + b"-v%02d" % v) for v in range(n_variants)
                    ),
                )
            )
    return out


def patient_panel(n_patients: int, n_resources: int, as_of: date) -> list[dict[str, Any]]:
    """Distinct patients of one size, so repeated calls are not all for the same chart."""
    return [
        patient_bundle(n_resources, seed=100 + i, as_of=as_of) for i in range(n_patients)
    ]
