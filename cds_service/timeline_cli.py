"""``psychopharm-cds timeline BUNDLE.json --out timeline.svg``: the timeline for offline review.

Reads one patient's FHIR R4 JSON (a Bundle, a list of resources, a single resource, or a CDS
Hooks request whose prefetch holds them), maps it with the service's own mapper and writes the
same SVG the SMART app shows. The window is the longest window of the enabled patterns of the
configuration (``--config``), or the whole history with ``--all``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import orjson

from cds_service.errors import ConfigError
from cds_service.loaders import load_code_lists, load_ingredient_table
from cds_service.settings import load_settings
from cds_service.timeline import (
    build_timeline,
    continuation_gap_days,
    longest_window_days,
    render_svg,
    resources_of,
)
from fhir_mappers.mapper import map_record

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1  # unreadable input or configuration


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {text!r}") from exc


def add_timeline_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``timeline`` sub-command's arguments: BUNDLE.json, --out, --config, --all, ..."""
    parser.add_argument("bundle", metavar="BUNDLE.json", help="the patient's FHIR R4 JSON")
    parser.add_argument("--out", metavar="FILE", required=True, help="the SVG file to write")
    parser.add_argument("--config", metavar="FILE", help="site YAML (for the pattern windows)")
    parser.add_argument("--all", action="store_true", help="show the whole history")
    parser.add_argument("--now", type=_day, help="as-of date (default: today, UTC)")
    parser.add_argument(
        "--highlight", metavar="REF", action="append", default=[],
        help="a FHIR reference to outline as evidence, e.g. MedicationRequest/12 (repeatable)",
    )


def main_timeline(args: argparse.Namespace) -> int:
    """Write the SVG; ``EXIT_FAILURE`` (message on stderr) for unreadable input or config."""
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        sys.stderr.write(str(exc) + "\n")
        return EXIT_FAILURE
    path = Path(args.bundle)
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        sys.stderr.write(f"{path}: cannot read: {exc.strerror or exc}\n")
        return EXIT_FAILURE
    except orjson.JSONDecodeError as exc:
        sys.stderr.write(f"{path}: not valid JSON: {exc}\n")
        return EXIT_FAILURE
    record = map_record(
        resources_of(data), load_ingredient_table(), codes=load_code_lists(overrides=settings.codes)
    )
    if record.issues:
        log.info("mapping issues: %d (resources or fields left out)", len(record.issues))
    now = args.now or datetime.now(UTC).date()
    timeline = build_timeline(
        record, now=now,
        window_days=None if args.all else longest_window_days(settings.patterns),
        highlight=args.highlight,
        gap_days=continuation_gap_days(settings.patterns),
    )
    out = Path(args.out)
    try:
        out.write_text(render_svg(timeline, standalone=True), encoding="utf-8")
    except OSError as exc:
        sys.stderr.write(f"{out}: cannot write: {exc.strerror or exc}\n")
        return EXIT_FAILURE
    sys.stdout.write(
        f"wrote {out}: {len(timeline.lanes)} ingredients, {timeline.start.isoformat()} to "
        f"{timeline.end.isoformat()}\n"
    )
    return EXIT_OK
