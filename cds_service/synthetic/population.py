"""Synthetic FHIR R4 patients with known answers, for the backtest, the benchmark and tests.

Deterministic by seed (stdlib ``random.Random`` only; no clock). Each patient follows one archetype
from ``archetypes`` (``clean``, ``stable``, one per pattern, ``near_miss_<pattern>``), on
a background of routine visits and non-psychotropic noise (metformin, lisinopril, atorvastatin).
Names and ids are obviously fake ("Synthetic", ``s<seed>-p000001``).

    python -m cds_service.synthetic OUT_DIR --patients 1000 --seed 7 [--format bundles|ndjson]

writes one Bundle per patient (``bundles``) or Bulk-FHIR style ``<ResourceType>.ndjson`` files,
plus ``manifest.json`` with every patient's archetype and the patterns it is expected to fire.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import IO, Any

import orjson

from cds_service.patterns import PATTERN_IDS
from cds_service.synthetic.archetypes import ARCHETYPES
from cds_service.synthetic.catalogue import NOISE_DRUGS
from cds_service.synthetic.requests import (
    BASE_URL,
    as_bundle,
    draft_medication_request,
    make_hook_request,
)
from cds_service.synthetic.resources import PatientBuilder

# A population that looks like a psychiatric outpatient panel: half without any pattern.
DEFAULT_MIX: dict[str, float] = {
    "clean": 0.30,
    "stable": 0.20,
    **{
        name: 0.05
        for name in ARCHETYPES
        if name not in ("clean", "stable") and not name.startswith("near_miss_")
    },
    **{name: 0.2 / 6 for name in ARCHETYPES if name.startswith("near_miss_")},
}


def expected_patterns(archetype: str) -> frozenset[str]:
    """The pattern ids an archetype fires under the default configuration."""
    return ARCHETYPES[archetype].expected


def generate_patient(
    rng: random.Random,
    as_of: date,
    archetype: str,
    *,
    index: int = 0,
    patient_id: str | None = None,
    history_years: float = 2.0,
    n_resources: int | None = None,
    bundle_type: str = "collection",
) -> dict[str, Any]:
    """One patient as a Bundle. ``history_years`` sets how far routine care and noise drugs go
    back; ``n_resources`` pads with older visits and PHQ-9 scores (outside every lookback) until
    the bundle holds that many resources (about 600 bytes each), for latency benchmarks."""
    if archetype not in ARCHETYPES:
        raise ValueError(f"unknown archetype {archetype!r}; known: {sorted(ARCHETYPES)}")
    b = PatientBuilder(rng, as_of, patient_id or f"syn-p{index:06d}")
    b.patient(index)
    care_start = ARCHETYPES[archetype].story(b)
    _background(b, max(int(history_years * 365), care_start + 60))
    if n_resources is not None:
        _pad(b, n_resources, start=max(int(history_years * 365), care_start, 1100) + 30)
    return as_bundle(b.resources, bundle_type)


def _background(b: PatientBuilder, history_days: int) -> None:
    """Primary care: visits until four months ago, noise drugs filled every 90 days."""
    day = history_days
    while day >= 120:
        b.encounter(day)
        day -= b.rng.randint(100, 140)
    n_noise = b.rng.choice((0, 1, 1, 2))
    for drug, mg, doses in b.rng.sample(NOISE_DRUGS, n_noise):
        ref = b.medication_request(drug, mg, start_ago=history_days, doses_per_day=doses)
        b.regular_dispenses(ref, start_ago=history_days, every=90)
    if b.rng.random() < 0.3:
        b.penicillin_allergy(history_days)


def _pad(b: PatientBuilder, n_resources: int, start: int) -> None:
    day = start
    while len(b.resources) < n_resources:
        b.encounter(day)
        if len(b.resources) < n_resources:
            b.phq9(day, b.rng.randint(2, 8))
        day += 7


def apportion(n: int, mix: Mapping[str, float]) -> list[str]:
    """Exactly ``n`` archetype labels in proportion to ``mix`` (largest remainder, stable order)."""
    unknown = sorted(set(mix) - set(ARCHETYPES))
    if unknown:
        raise ValueError(f"unknown archetype(s) {unknown}; known: {sorted(ARCHETYPES)}")
    if any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError("mix weights must be non-negative and not all zero")
    total = sum(mix.values())
    quotas = {name: n * w / total for name, w in mix.items()}
    counts = {name: int(q) for name, q in quotas.items()}
    by_remainder = sorted(mix, key=lambda name: -(quotas[name] - counts[name]))
    for name in by_remainder[: n - sum(counts.values())]:
        counts[name] += 1
    return [name for name in mix for _ in range(counts[name])]


def generate_population(
    n: int,
    seed: int,
    as_of: date,
    mix: Mapping[str, float] | None = None,
    *,
    history_years: float = 2.0,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yields ``(archetype, bundle)`` for ``n`` patients, lazily, identical for the same seed."""
    # Reproducible test data, not secrets: the stdlib generator is the point.
    master = random.Random(seed)  # noqa: S311
    labels = apportion(n, mix or DEFAULT_MIX)
    master.shuffle(labels)
    for index, archetype in enumerate(labels):
        rng = random.Random(master.getrandbits(64))  # noqa: S311
        bundle_type = "searchset" if rng.random() < 0.2 else "collection"
        yield (
            archetype,
            generate_patient(
                rng,
                as_of,
                archetype,
                index=index,
                patient_id=f"s{seed}-p{index:06d}",
                history_years=history_years,
                bundle_type=bundle_type,
            ),
        )


def write_population(
    out_dir: str | Path,
    n: int,
    seed: int,
    as_of: date,
    fmt: str = "bundles",
    *,
    mix: Mapping[str, float] | None = None,
    history_years: float = 2.0,
) -> Path:
    """Writes the population and ``manifest.json``; returns the manifest's path."""
    if fmt not in ("bundles", "ndjson"):
        raise ValueError(f"format must be 'bundles' or 'ndjson', not {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    patients: list[dict[str, Any]] = []
    ndjson_files: dict[str, IO[bytes]] = {}
    try:
        for archetype, bundle in generate_population(
            n, seed, as_of, mix, history_years=history_years
        ):
            patient_id = bundle["entry"][0]["resource"]["id"]
            if fmt == "bundles":
                name = f"{patient_id}.json"
                (out / name).write_bytes(orjson.dumps(bundle))
            else:
                name = ""
                for entry in bundle["entry"]:
                    _ndjson_handle(out, ndjson_files, entry["resource"]["resourceType"]).write(
                        orjson.dumps(entry["resource"]) + b"\n"
                    )
            patients.append(
                {
                    "patient": patient_id,
                    "archetype": archetype,
                    "expected": sorted(expected_patterns(archetype)),
                    **({"file": name} if name else {}),
                }
            )
    finally:
        for handle in ndjson_files.values():
            handle.close()
    manifest = _manifest(patients, seed=seed, as_of=as_of, fmt=fmt)
    path = out / "manifest.json"
    path.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return path


def _ndjson_handle(out: Path, handles: dict[str, IO[bytes]], resource_type: str) -> IO[bytes]:
    if resource_type not in handles:
        handles[resource_type] = (out / f"{resource_type}.ndjson").open("wb")
    return handles[resource_type]


def _manifest(
    patients: list[dict[str, Any]], *, seed: int, as_of: date, fmt: str
) -> dict[str, Any]:
    archetype_counts: dict[str, int] = {}
    expected = dict.fromkeys(PATTERN_IDS, 0)
    for p in patients:
        archetype_counts[p["archetype"]] = archetype_counts.get(p["archetype"], 0) + 1
        for pattern_id in p["expected"]:
            expected[pattern_id] += 1
    return {
        "generator": "psychopharm-cds synthetic",
        "note": "synthetic data; expectations hold for config/default.yaml thresholds",
        "seed": seed,
        "as_of": as_of.isoformat(),
        "format": fmt,
        "patients": len(patients),
        "archetypes": archetype_counts,
        "expected_flagged": expected,
        "patient_archetypes": patients,
    }


# -- command line -------------------------------------------------------------------------------


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {value!r}") from exc


def main(argv: list[str] | None = None) -> int:
    """``python -m cds_service.synthetic``: write a population (see the module docstring).

    ``argv`` defaults to ``sys.argv[1:]``. Returns 0; bad arguments (a negative ``--patients``, a
    date that is not ISO) make argparse exit with status 2 (``SystemExit``).
    """
    parser = argparse.ArgumentParser(
        prog="python -m cds_service.synthetic",
        description="Write a synthetic FHIR R4 population with known pattern answers.",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("bundles", "ndjson"), default="bundles")
    parser.add_argument("--as-of", type=_iso_date, default=None, help="default: today")
    parser.add_argument("--history-years", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.patients < 0:
        parser.error("--patients must be >= 0")
    as_of = args.as_of or date.today()
    manifest = write_population(
        args.out_dir,
        args.patients,
        args.seed,
        as_of,
        args.format,
        history_years=args.history_years,
    )
    sys.stdout.write(f"wrote {args.patients} patients as of {as_of} ({args.format}); {manifest}\n")
    return 0


__all__ = [
    "BASE_URL",
    "DEFAULT_MIX",
    "apportion",
    "draft_medication_request",
    "expected_patterns",
    "generate_patient",
    "generate_population",
    "make_hook_request",
    "write_population",
]

if __name__ == "__main__":
    sys.exit(main())
