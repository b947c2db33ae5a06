"""``psychopharm-cds backtest DIR``: how often would each pattern fire on this population?

Runs every configured pattern over folders of FHIR data (Bulk FHIR ``*.ndjson`` of any resource
types, and/or ``*.json`` Bundles; local paths or fsspec URLs) through ``engine.evaluate`` at
``--as-of``, exactly as a patient-view call would, and reports per pattern the patients flagged,
the rate per 1,000, a what-if table for its main threshold, and what the data could not give
(data quality). Silent and active patterns count alike. ``--output DIR`` also writes every
finding as Parquet, by pseudonymous patient key, with the prescriber and organization of the
patient's latest psychotropic order.

How it scales (Dask): NDJSON files are read in blocks by many tasks (``inputs.read_piece``), each
line keyed by the patient it names; a Dask DataFrame shuffle (peer-to-peer, which spills to each
worker's disk) brings every patient's rows into one partition; each partition then maps and
evaluates its patients (``worker.evaluate_partition``) and returns counts only. Worker memory is
bounded by a block and a partition, not by the population. The run uses a local cluster on this
machine's cores, or an existing one (``--scheduler``).

Exit codes: 0 done; 1 input missing or unreadable, no readable patients, an invalid config, or
the scheduler unreachable; 2 bad arguments.

    psychopharm-cds backtest DIR [DIR...] [--config FILE] [--as-of DATE] [--format table|json]
                             [--output DIR] [--scheduler ADDRESS | --workers N] [--quiet]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cds_service.backtest.report import Tally, report_json, report_table, what_if_variants
from cds_service.errors import ConfigError
from cds_service.patterns.engine import evidence_horizon
from cds_service.settings import Settings, load_settings

if TYPE_CHECKING:
    from distributed import Client, Future

    from cds_service.backtest.cluster import Progress

# Dask, pandas and pyarrow are imported when a backtest runs, not when ``psychopharm-cds`` starts
# (the same console script serves hook calls, which never need them).

# Sizes measured on the synthetic population (bench/RESULTS.md, "Backtest on Dask"): a 64 MB
# NDJSON block parses to ~64 MB of rows; a 64 MB partition holds ~1,700 patients.
BLOCK_BYTES = 64 * 1024 * 1024
PARTITION_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class BacktestResult:
    """What ``run_backtest`` returns: the report and the counts the CLI prints on stderr."""
    document: dict[str, Any]  # the --format json document
    detector_errors: dict[str, int]
    flags: dict[str, frozenset[str]] | None  # patient key -> pattern ids, when asked for
    partitions: int = 0
    findings_written: int = 0


def run_backtest(
    inputs: list[str] | str | Path,
    settings: Settings,
    as_of: date,
    client: Client,
    *,
    output: str | None = None,
    progress: Progress | None = None,
    show_bar: bool = False,
    collect_flags: bool = False,
    strict: bool = False,
    block_bytes: int = BLOCK_BYTES,
    partition_bytes: int = PARTITION_BYTES,
) -> BacktestResult:
    """Evaluates every patient in ``inputs`` (folders or files, local or fsspec URLs) on the
    cluster behind ``client``.

    ``output``: a folder (local or URL, writable by the workers) for ``part-NNNNN.parquet``
    findings files; earlier part files there are removed first. ``collect_flags`` keeps
    per-patient results (for tests and small audits: it holds patient ids in memory); ``strict``
    re-raises mapper and detector errors instead of counting them.
    Raises ``InputError`` when an input cannot be listed.
    """
    import dask
    import dask.dataframe as dd

    from cds_service.backtest.inputs import (
        ROW_META,
        first_resource_type,
        list_inputs,
        plan_pieces,
        read_medications,
        read_piece,
    )
    from cds_service.backtest.worker import TALLY_META, WorkerConfig, evaluate_partition

    locations = [str(inputs)] if isinstance(inputs, str | Path) else [str(i) for i in inputs]
    files = list_inputs(locations)
    variants = what_if_variants(settings.patterns)
    tally = Tally(flags={} if collect_flags else None)
    medications: dict[str, Any] = {}
    data_files = []
    for f in files:
        if f.kind == "ndjson" and first_resource_type(f.url) == "Medication":
            medications.update(read_medications(f.url, tally.inputs))
        else:
            data_files.append(f)
    if output is not None:
        _prepare_output(output)
    config = WorkerConfig(
        patterns=settings.patterns,
        variants=tuple(variants),
        as_of=as_of,
        medications=medications,
        patient_key_secret=settings.storage.patient_key_secret,
        codes=settings.codes,
        # What the hooks do: resources older than any pattern can read are not mapped. The
        # what-if variants count too (they evaluate "off" patterns as silent).
        horizon=evidence_horizon(
            {**settings.patterns, **{str(i): v.settings for i, v in enumerate(variants)}}, as_of
        ),
        output=output,
        collect_flags=collect_flags,
        strict=strict,
    )
    pieces = plan_pieces(data_files, block_bytes)
    partitions = 0
    if pieces:
        total = sum(f.size for f in data_files)
        threads = sum(client.nthreads().values()) or 1
        partitions = max(1, min(len(pieces) * 64, max(math.ceil(total / partition_bytes), threads)))
        rows = dd.from_map(read_piece, pieces, meta=ROW_META, enforce_metadata=False)
        grouped = rows.shuffle("patient", npartitions=partitions, shuffle_method="p2p")
        tallies = grouped.map_partitions(
            evaluate_partition, dask.delayed(config, traverse=False), meta=TALLY_META
        )
        futures = client.compute(tallies.to_delayed())
        for result in _results(futures, progress, show_bar):
            tally.add(result)
    document = report_json(
        tally,
        as_of=as_of,
        config_version=settings.config_version,
        patterns=settings.patterns,
        variants=variants,
    )
    return BacktestResult(
        document, dict(tally.detector_errors), tally.flags, partitions, tally.findings_written
    )


def _results(
    futures: list[Future], progress: Progress | None, show_bar: bool
) -> Iterable[Tally]:
    from distributed import progress as progress_bar
    from distributed import wait

    if show_bar:
        # Dask's console bar (returns when all are done) writes to stdout, which carries the
        # report: on stderr it cannot end up in a redirected report file.
        with contextlib.redirect_stdout(sys.stderr):
            progress_bar(futures, multi=False)
    if progress is not None:
        progress.start(len(futures))
    pending = set(futures)
    while pending:
        try:
            timeout = progress.every_s if progress else None
            done, pending = wait(pending, timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            if progress is not None:
                progress.tick()
            continue
        for future in done:
            frame = future.result()
            future.release()
            for tally in frame["tally"]:
                if progress is not None:
                    progress.partition_done(tally.patients)
                yield tally


def _prepare_output(output: str) -> None:
    import fsspec

    fs, root = fsspec.core.url_to_fs(output)
    fs.makedirs(root, exist_ok=True)
    for old in fs.glob(f"{root.rstrip('/')}/part-*.parquet"):
        fs.rm(old)


# -- command line -------------------------------------------------------------------------------


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {value!r}") from exc


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from exc
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def add_backtest_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``backtest`` options, for ``psychopharm-cds backtest`` and ``python -m``."""
    parser.add_argument(
        "dirs",
        nargs="+",
        metavar="DIR",
        help="folder of *.ndjson and/or *.json Bundles: a path or an fsspec URL (s3://...)",
    )
    parser.add_argument("--config", type=Path, default=None, help="site config (YAML)")
    parser.add_argument("--as-of", type=_iso_date, default=None, help="YYYY-MM-DD; default today")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--output", default=None, metavar="DIR", help="write findings as Parquet to this folder"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="existing Dask scheduler (tcp://...)"
    )
    where.add_argument(
        "--workers", type=_positive_int, default=None, help="local worker processes; default: cores"
    )
    parser.add_argument(
        "--partition-mb",
        type=_positive_int,
        default=PARTITION_BYTES // 2**20,
        help="input read per task and data per evaluated partition, in MB (default 64)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress report")


def main_backtest(args: argparse.Namespace) -> int:
    """Runs ``psychopharm-cds backtest`` with parsed ``args``; returns the exit code."""
    from cds_service.backtest.cluster import (
        ClusterError,
        Progress,
        dashboard_link,
        open_client,
        worker_usage,
    )
    from cds_service.backtest.inputs import InputError, list_inputs

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"backtest: {exc}\n")
        return 1
    as_of = args.as_of or date.today()
    default_secret = type(settings.storage).model_fields["patient_key_secret"].default
    if args.output and settings.storage.patient_key_secret == default_secret:
        sys.stderr.write(
            "backtest: storage.patient_key_secret is the development default; the patient keys "
            "in --output are not the site's\n"
        )
    started = time.monotonic()
    try:
        list_inputs(args.dirs)  # fails early and clearly, before a cluster starts
        with open_client(args.scheduler, workers=args.workers) as client:
            link = dashboard_link(client)
            if link and not args.quiet:
                sys.stderr.write(f"backtest: Dask dashboard at {link}\n")
            on_terminal = not args.quiet and sys.stderr.isatty()
            result = run_backtest(
                args.dirs,
                settings,
                as_of,
                client,
                output=args.output,
                progress=None if args.quiet or on_terminal else Progress(sys.stderr),
                show_bar=on_terminal,
                block_bytes=args.partition_mb * 2**20,
                partition_bytes=args.partition_mb * 2**20,
            )
            usage = worker_usage(client)
    except (InputError, ClusterError) as exc:
        sys.stderr.write(f"backtest: {exc}\n")
        return 1
    seconds = time.monotonic() - started
    _warn(result.document["skipped_files"], result.detector_errors)
    patients = result.document["patients"]
    if not args.quiet:
        peak = max((u.peak_rss for u in usage.values()), default=0)
        cpu = sum(u.cpu_s for u in usage.values())
        sys.stderr.write(
            f"backtest: {patients:,} patients in {seconds:,.1f} s "
            f"({patients / seconds if seconds else 0:,.0f} patients/s), "
            f"{result.partitions} partitions, {len(usage)} workers, peak worker memory "
            f"{peak / 2**20:,.0f} MiB, worker CPU {cpu:,.1f} s since the workers started\n"
        )
        if args.output:
            sys.stderr.write(
                f"backtest: {result.findings_written:,} findings written to {args.output}\n"
            )
    if args.format == "json":
        sys.stdout.write(orjson.dumps(result.document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(report_table(result.document, settings.patterns))
    if patients == 0:
        sys.stderr.write(f"backtest: no readable patients in {' '.join(args.dirs)}\n")
        return 1
    return 0


def _warn(skipped: Iterable[dict[str, str]], detector_errors: dict[str, int]) -> None:
    for s in skipped:
        sys.stderr.write(f"backtest: skipped {s['file']}: {s['reason']}\n")
    for pattern_id, n in sorted(detector_errors.items()):
        sys.stderr.write(
            f"backtest: pattern {pattern_id} raised an error {n} time(s); "
            "those patients count as not flagged\n"
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m cds_service.backtest``: parses ``argv`` and runs ``main_backtest``."""
    parser = argparse.ArgumentParser(
        prog="python -m cds_service.backtest",
        description="Report how often each pattern fires on a directory of FHIR data.",
    )
    add_backtest_arguments(parser)
    return main_backtest(parser.parse_args(argv))


__all__ = [
    "BacktestResult",
    "add_backtest_arguments",
    "main",
    "main_backtest",
    "run_backtest",
]

if __name__ == "__main__":
    sys.exit(main())
