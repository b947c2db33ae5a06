"""``psychopharm-cds backtest DIR``: how often would each pattern fire on this population?

Runs every configured pattern over a directory of FHIR data (one Bundle per patient in ``*.json``,
and/or Bulk FHIR ``*.ndjson``) through ``engine.evaluate`` at ``--as-of``, exactly as a
patient-view call would, and reports per pattern the patients flagged, the rate per 1,000, and a
what-if table for its main threshold. Silent and active patterns count alike.

How it scales: NDJSON is partitioned on disk by patient in one streaming pass
(``backtest_input``), then JSON file batches and NDJSON buckets are shared among worker processes
(each loads the ingredient table once) with at most two tasks per worker in flight, so memory stays
bounded by a task, not by the dataset. Malformed files and lines are reported and skipped.

Exit codes: 0 done; 1 DIR missing, no readable patients, or an invalid config; 2 bad arguments.

    python -m cds_service.backtest DIR [--config FILE] [--as-of DATE] [--format table|json]
                                       [--workers N] [--quiet]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import orjson

from cds_service.backtest.inputs import Skipped, bucket_count, list_inputs, partition_ndjson
from cds_service.backtest.report import Tally, report_json, report_table, what_if_variants
from cds_service.backtest.worker import Task, WorkerConfig, init_worker, run_task
from cds_service.errors import ConfigError
from cds_service.settings import Settings, load_settings

JSON_FILES_PER_TASK = 32


@dataclass(frozen=True)
class BacktestResult:
    document: dict[str, Any]  # the --format json document
    detector_errors: dict[str, int]
    flags: dict[str, frozenset[str]] | None  # patient key -> pattern ids, when asked for


def run_backtest(
    directory: Path,
    settings: Settings,
    as_of: date,
    *,
    workers: int = 1,
    progress: Progress | None = None,
    collect_flags: bool = False,
    strict: bool = False,
) -> BacktestResult:
    """Evaluates every patient in ``directory``. ``collect_flags`` keeps per-patient results (for
    tests and small audits: it holds patient ids in memory); ``strict`` re-raises mapper and
    detector errors instead of counting them."""
    json_files, ndjson_files = list_inputs(directory)
    variants = what_if_variants(settings.patterns)
    tally = Tally(flags={} if collect_flags else None)
    with tempfile.TemporaryDirectory(prefix="psychopharm-backtest-") as work_dir:
        partition = partition_ndjson(
            ndjson_files,
            Path(work_dir),
            bucket_count(ndjson_files, workers) if ndjson_files else 1,
            on_bytes=progress.read if progress else None,
        )
        tally.skipped.extend(partition.skipped)
        config = WorkerConfig(
            patterns=settings.patterns,
            variants=tuple(variants),
            as_of=as_of,
            medications=partition.medications,
            collect_flags=collect_flags,
            strict=strict,
        )
        tasks = [
            *(
                Task("json", tuple(json_files[i : i + JSON_FILES_PER_TASK]))
                for i in range(0, len(json_files), JSON_FILES_PER_TASK)
            ),
            *(Task("bucket", (bucket,)) for bucket in partition.buckets),
        ]
        if progress:
            progress.start_tasks(len(tasks))
        for result in _run_tasks(tasks, config, workers):
            tally.add(result)
            if progress:
                progress.task_done(tally.patients)
    if progress:
        progress.finish()
    tally.skipped.sort(key=lambda s: (s.file, s.reason))
    document = report_json(
        tally,
        as_of=as_of,
        config_version=settings.config_version,
        patterns=settings.patterns,
        variants=variants,
    )
    return BacktestResult(document, dict(tally.detector_errors), tally.flags)


def _run_tasks(tasks: list[Task], config: WorkerConfig, workers: int) -> Iterator[Tally]:
    if workers <= 1 or len(tasks) <= 1:
        init_worker(config, quiet_engine_log=False)
        yield from (run_task(task) for task in tasks)
        return
    with cf.ProcessPoolExecutor(
        max_workers=workers, initializer=init_worker, initargs=(config,)
    ) as pool:
        pending: set[cf.Future[Tally]] = set()
        queue = iter(tasks)
        # A bounded number of tasks in flight keeps results and inputs from piling up.
        for task in queue:
            pending.add(pool.submit(run_task, task))
            if len(pending) >= workers * 2:
                break
        while pending:
            done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in done:
                yield future.result()
                next_task = next(queue, None)
                if next_task is not None:
                    pending.add(pool.submit(run_task, next_task))


class Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO, total_bytes: int, clock: Callable[[], float]) -> None:
        self.stream = stream
        self.clock = clock
        self.total_bytes = total_bytes
        self.read_bytes = 0
        self.tasks = 0
        self.done = 0
        self.patients = 0
        self._last = 0.0

    def read(self, n: int) -> None:
        self.read_bytes += n
        self._draw(f"reading NDJSON {self._bar(self.read_bytes, self.total_bytes)}")

    def start_tasks(self, tasks: int) -> None:
        self.tasks = tasks

    def task_done(self, patients: int) -> None:
        self.done += 1
        self.patients = patients
        self._draw(
            f"evaluating {self._bar(self.done, self.tasks)} {self.patients:,} patients",
            force=self.done == self.tasks,
        )

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()

    @staticmethod
    def _bar(done: int, total: int, width: int = 30) -> str:
        share = done / total if total else 1.0
        filled = int(share * width)
        return f"[{'#' * filled}{'.' * (width - filled)}] {share:4.0%}"

    def _draw(self, text: str, *, force: bool = False) -> None:
        now = self.clock()
        if force or now - self._last >= 0.1:
            self._last = now
            self.stream.write(f"\r{text}\033[K")
            self.stream.flush()


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
    parser.add_argument("dir", type=Path, metavar="DIR", help="*.json Bundles and/or *.ndjson")
    parser.add_argument("--config", type=Path, default=None, help="site config (YAML)")
    parser.add_argument("--as-of", type=_iso_date, default=None, help="YYYY-MM-DD; default today")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--workers", type=_positive_int, default=None, help="processes; default: all cores"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main_backtest(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    if not directory.is_dir():
        sys.stderr.write(f"backtest: {directory} is not a directory\n")
        return 1
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"backtest: {exc}\n")
        return 1
    as_of = args.as_of or date.today()
    progress = None
    if not args.quiet and sys.stderr.isatty():
        _, ndjson_files = list_inputs(directory)
        total = sum(p.stat().st_size for p in ndjson_files)
        progress = Progress(sys.stderr, total, time.monotonic)
    result = run_backtest(
        directory, settings, as_of, workers=args.workers or os.cpu_count() or 1, progress=progress
    )
    _warn(result.document["skipped_files"], result.detector_errors)
    if args.format == "json":
        sys.stdout.write(orjson.dumps(result.document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(report_table(result.document, settings.patterns))
    if result.document["patients"] == 0:
        sys.stderr.write(f"backtest: no readable patients in {directory}\n")
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
    parser = argparse.ArgumentParser(
        prog="python -m cds_service.backtest",
        description="Report how often each pattern fires on a directory of FHIR data.",
    )
    add_backtest_arguments(parser)
    return main_backtest(parser.parse_args(argv))


__all__ = [
    "BacktestResult",
    "Progress",
    "Skipped",
    "add_backtest_arguments",
    "main",
    "main_backtest",
    "run_backtest",
]

if __name__ == "__main__":
    sys.exit(main())
