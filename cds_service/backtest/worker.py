"""One backtest task, run in a worker process: map each patient and ask ``engine.evaluate``.

The backtest has no pattern logic of its own: the hook endpoints and this worker call the same
``evaluate`` with the same thresholds, so a patient flagged here is flagged at patient-view on
the same date. A task is a batch of JSON files or one NDJSON bucket; it returns counts only
(patient ids stay in the worker unless a test asks for per-patient flags).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from cds_service.backtest.inputs import Skipped, read_bucket, read_json_patients
from cds_service.backtest.report import Tally, WhatIf
from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.patterns.engine import evaluate
from cds_service.settings import PatternSettings
from fhir_mappers.codes import CodeLists
from fhir_mappers.mapper import map_record
from fhir_mappers.medications import IngredientTable


@dataclass(frozen=True)
class WorkerConfig:
    patterns: Mapping[str, PatternSettings]
    variants: tuple[WhatIf, ...]
    as_of: date
    medications: Mapping[str, Mapping[str, Any]]
    collect_flags: bool = False
    strict: bool = False  # re-raise mapper and detector errors (tests), instead of counting them


@dataclass(frozen=True)
class Task:
    kind: str  # "json" (a batch of files) or "bucket" (one NDJSON partition)
    paths: tuple[Path, ...]


@dataclass
class _State:
    config: WorkerConfig
    table: IngredientTable
    codes: CodeLists


# Per-process state, set once by ``init_worker`` (the pool initializer): the ingredient table is
# loaded once per worker, not once per task.
_state: _State | None = None


def init_worker(config: WorkerConfig, *, quiet_engine_log: bool = True) -> None:
    global _state
    if quiet_engine_log:
        # Detector failures are counted and summarised once by the parent, instead of one
        # traceback per patient on stderr.
        engine_log = logging.getLogger("cds_service.patterns.engine")
        engine_log.propagate = False
        engine_log.addHandler(logging.NullHandler())
    _state = _State(config, load_ingredient_table(), load_code_lists())


def run_task(task: Task) -> Tally:
    if _state is None:
        raise RuntimeError("init_worker was not called in this process")
    tally = Tally(flags={} if _state.config.collect_flags else None)
    if task.kind == "bucket":
        for path in task.paths:
            _evaluate_all(read_bucket(path), path.name, tally, _state)
        return tally
    for path in task.paths:
        patients, skipped = read_json_patients(path)
        if skipped is not None:
            tally.skipped.append(skipped)
        _evaluate_all(patients, path.name, tally, _state)
    return tally


def _evaluate_all(
    patients: Iterable[tuple[str, list[Any]]], source: str, tally: Tally, state: _State
) -> None:
    config = state.config

    def count_error(pattern_id: str, _exc: Exception) -> None:
        tally.detector_errors[pattern_id] = tally.detector_errors.get(pattern_id, 0) + 1

    for key, resources in patients:
        try:
            record = map_record(
                resources, state.table, medications=config.medications, codes=state.codes
            )
        except Exception as exc:  # a mapper bug must not end a run over thousands of patients
            if config.strict:
                raise
            tally.skipped.append(
                Skipped(source, f"a patient could not be mapped ({type(exc).__name__})")
            )
            continue
        tally.patients += 1
        found = {
            f.pattern_id
            for f in evaluate(
                record,
                (),
                config.patterns,
                config.as_of,
                "patient-view",
                on_error=count_error,
                raise_errors=config.strict,
            )
        }
        for pattern_id in found:
            tally.flagged[pattern_id] = tally.flagged.get(pattern_id, 0) + 1
        for v in config.variants:
            if evaluate(
                record,
                (),
                {v.pattern_id: v.settings},
                config.as_of,
                "patient-view",
                on_error=count_error,
                raise_errors=config.strict,
            ):
                k = (v.pattern_id, v.threshold, v.value)
                tally.what_if[k] = tally.what_if.get(k, 0) + 1
        if tally.flags is not None:
            tally.flags[key] = frozenset(found)
