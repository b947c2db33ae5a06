"""The ``psychopharm-cds`` command: serve, check-config, migrate, audit export / verify, backtest.

Every command loads the settings through ``load_settings`` first, so an invalid site file is
reported (every problem, naming the key and the file) before anything starts. Exit codes are
named below; argparse itself exits with ``EXIT_USAGE`` on bad arguments.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from cds_service.backtest.run import add_backtest_arguments, main_backtest
from cds_service.errors import ConfigError
from cds_service.patterns import PATTERN_IDS
from cds_service.runtime.logging_setup import configure_logging
from cds_service.settings import (
    HOW_TO_SET_PATIENT_KEY,
    Settings,
    load_settings,
    uses_placeholder_secret,
)
from cds_service.timeline_cli import add_timeline_arguments, main_timeline

log = logging.getLogger("cds_service.cli")

# Exit codes: never reuse a number for another meaning; retire a code by commenting it "Obsolete".
EXIT_OK = 0
EXIT_FAILURE = 1  # invalid configuration, audit chain broken, audit database unreachable
EXIT_USAGE = 2  # bad arguments (argparse), or an insecure bind refused

WORKERS_ENV = "WEB_CONCURRENCY"


class CliError(Exception):
    """A command refused or failed: ``main`` prints ``message`` to stderr and exits ``status``."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _out(line: str, stream: IO[str] | None = None) -> None:
    (stream or sys.stdout).write(line + "\n")


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or date-time: {text!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1: {text!r}")
    return int(text)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (``127.0.0.0/8``, ``::1``, bracketed or
    not); any other name is taken as possibly public."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other name may resolve to a public address


def _config_problems(exc: ConfigError, path: str | None) -> list[str]:
    if not exc.problems:
        return [exc.message]
    where = path or "default configuration"
    return [f"{where}: {problem}" for problem in exc.problems]


def _file_problems(settings: Settings, path: str | None) -> list[str]:
    """What the workers could not use although the settings validate: pinned JWK Sets that are
    missing or unreadable, and a site ``codes`` section that breaks the code lists."""
    from cds_service.loaders import load_code_lists
    from cds_service.web.jwks import jwks_file_problems
    from fhir_mappers.codes import CodeListError

    where = path or "default configuration"
    problems = [f"{where}: {p}" for p in jwks_file_problems(settings.auth.trusted_clients)]
    try:
        load_code_lists(overrides=settings.codes)
    except CodeListError as exc:
        problems.append(f"{where}: codes: {exc}")
    return problems


def cmd_check_config(args: argparse.Namespace) -> int:
    """``check-config FILE``: print each problem (invalid settings, unusable ``jwks_file``) and
    return ``EXIT_FAILURE``, or print ``OK <config_version>`` and return ``EXIT_OK``."""
    try:
        settings = load_settings(args.file)
    except ConfigError as exc:
        for line in _config_problems(exc, args.file):
            _out(line)
        return EXIT_FAILURE
    problems = _file_problems(settings, args.file)
    for line in problems:
        _out(line)
    if problems:
        return EXIT_FAILURE
    _out(f"OK {settings.config_version}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """``serve``: migrate the audit database, then run the app under gunicorn until stopped.

    Raises ``CliError`` (``EXIT_FAILURE``) for invalid settings or an unusable ``jwks_file``, and
    (``EXIT_USAGE``) for a bind beyond loopback without JWTs (unless allowed) or with the
    placeholder ``patient_key_secret``; ``DatabaseError`` when the audit database is unreachable.
    """
    from cds_service.runtime.gunicorn_app import PsychopharmApplication, gunicorn_options
    from cds_service.runtime.multiprocess_dir import multiprocess_directory
    from cds_service.storage.audit.store import SqlAuditStore

    settings = _load(args.config)
    # What check-config reports, serve refuses: before the fork, as one line, not as a
    # traceback from every worker that fails to load the app.
    problems = _file_problems(settings, args.config)
    if problems:
        raise CliError("\n".join(problems))
    if not settings.auth.require_jwt:
        log.warning("auth.require_jwt is false: callers are not authenticated (local use only)")
        allowed = args.allow_insecure_bind or settings.auth.allow_insecure_bind
        if not is_loopback(args.host) and not allowed:
            raise CliError(
                f"refusing to listen on {args.host} with auth.require_jwt false: bind to "
                "127.0.0.1, or set auth.require_jwt with trusted_clients, or pass "
                "--allow-insecure-bind (or auth.allow_insecure_bind) if a gateway authenticates",
                EXIT_USAGE,
            )
    if not is_loopback(args.host) and uses_placeholder_secret(settings):
        raise CliError(
            f"refusing to listen on {args.host} with storage.patient_key_secret still a "
            f"placeholder ({settings.storage.patient_key_secret!r}): {HOW_TO_SET_PATIENT_KEY}",
            EXIT_USAGE,
        )
    # Migrate once here, before the workers fork, rather than racing in each of them.
    SqlAuditStore(settings.storage).close()
    options = gunicorn_options(args.host, args.port, args.workers)
    # /metrics totals every worker, whichever one answers the scrape. The app factory is
    # imported only once the directory is set: it imports prometheus_client, which picks its
    # value store at import, and the workers inherit the master's modules.
    with multiprocess_directory():
        from cds_service.web.app import create_app

        PsychopharmApplication(settings, options, app_factory=create_app).run()
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """``migrate``: bring the audit schema to Alembic head and print the revision.

    Raises ``CliError`` for invalid settings, ``DatabaseError`` when the database is unreachable.
    """
    from cds_service.storage.audit.store import SqlAuditStore

    store = SqlAuditStore(_load(args.config).storage, migrate=False)
    try:
        revision = store.migrate()
    finally:
        store.close()
    _out(f"OK audit database at revision {revision}")
    return EXIT_OK


def cmd_audit_export(args: argparse.Namespace) -> int:
    """``audit export``: card rows with their feedback in [``--since``, ``--until``), optionally
    of one ``--pattern``, as jsonl, csv or FHIR, to ``--output`` or stdout (a reader that stops
    early ends the export quietly).

    Raises ``CliError`` for invalid settings, ``DatabaseError`` when the database is unreachable.
    """
    from cds_service.storage.audit.export import export_rows
    from cds_service.storage.audit.store import SqlAuditStore

    store = SqlAuditStore(_load(args.config).storage)
    try:
        chunks = export_rows(
            store, since=args.since, until=args.until, pattern=args.pattern, fmt=args.format
        )
        if args.output is None:
            try:
                sys.stdout.writelines(chunks)
                sys.stdout.flush()
            except BrokenPipeError:
                # The reader stopped early (`... | head`): that ends the export, not an error.
                # Point stdout at /dev/null so the interpreter's last flush cannot fail again.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        else:
            with Path(args.output).open("w", encoding="utf-8", newline="") as out:
                out.writelines(chunks)
    finally:
        store.close()
    return EXIT_OK


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """``audit verify``: check the hash chain; ``OK <rows>`` and ``EXIT_OK``, or ``BROKEN`` with
    each problem and ``EXIT_FAILURE``.

    Raises ``CliError`` for invalid settings, ``DatabaseError`` when the database is unreachable.
    """
    from cds_service.storage.audit.chain import verify_chain
    from cds_service.storage.audit.store import SqlAuditStore

    store = SqlAuditStore(_load(args.config).storage)
    try:
        result = verify_chain(store.engine)
    finally:
        store.close()
    if result.ok:
        _out(f"OK {result.rows_checked} rows")
        return EXIT_OK
    _out(f"BROKEN: {len(result.problems)} problem(s) in {result.rows_checked} rows")
    for problem in result.problems:
        _out(problem)
    return EXIT_FAILURE


def _load(path: str | None) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        raise CliError("\n".join(_config_problems(exc, path))) from exc


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each subcommand sets ``handler`` (args -> exit code)."""
    parser = argparse.ArgumentParser(
        prog="psychopharm-cds", description="CDS Hooks service for psychopharmacology advice"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the service under gunicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8080)
    serve.add_argument("--config", metavar="FILE", help="site YAML over the embedded defaults")
    serve.add_argument(
        "--workers",
        type=_workers,
        # The variable gunicorn and container platforms use for the worker count.
        default=os.environ.get(WORKERS_ENV, "2"),
        help=f"gunicorn worker processes (default: ${WORKERS_ENV}, else 2)",
    )
    serve.add_argument(
        "--allow-insecure-bind",
        action="store_true",
        help="listen beyond loopback although auth.require_jwt is false",
    )
    serve.set_defaults(handler=cmd_serve)

    check = commands.add_parser("check-config", help="validate a site configuration file")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(handler=cmd_check_config)

    migrate = commands.add_parser("migrate", help="bring the audit database schema up to date")
    migrate.add_argument("--config", metavar="FILE")
    migrate.set_defaults(handler=cmd_migrate)

    audit = commands.add_parser("audit", help="export or verify the audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    export = audit_commands.add_parser("export", help="card rows with their feedback")
    export.add_argument("--since", type=_timestamp, help="ISO date/time, inclusive (UTC if naive)")
    export.add_argument("--until", type=_timestamp, help="ISO date/time, exclusive (UTC if naive)")
    export.add_argument("--pattern", choices=PATTERN_IDS)
    export.add_argument("--format", choices=("jsonl", "csv", "fhir"), default="jsonl")
    export.add_argument("--config", metavar="FILE")
    export.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    export.set_defaults(handler=cmd_audit_export)
    verify = audit_commands.add_parser("verify", help="check the audit hash chain")
    verify.add_argument("--config", metavar="FILE")
    verify.set_defaults(handler=cmd_audit_verify)

    backtest = commands.add_parser(
        "backtest", help="firing rates of each pattern over a directory of FHIR data"
    )
    add_backtest_arguments(backtest)
    backtest.set_defaults(handler=main_backtest)

    timeline = commands.add_parser(
        "timeline", help="draw a patient's medication timeline (SVG) from FHIR JSON"
    )
    add_timeline_arguments(timeline)
    timeline.set_defaults(handler=main_timeline)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command from ``argv`` (default ``sys.argv[1:]``) and return its exit code.

    ``CliError`` becomes its message on stderr and its status; ``DatabaseError`` becomes its class
    name on stderr and ``EXIT_FAILURE``. Bad arguments make argparse exit with ``EXIT_USAGE``
    (``SystemExit``).
    """
    args = build_parser().parse_args(argv)
    configure_logging("INFO")
    # Alembic announces its plugins at INFO on every start; the commands report what matters.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from cds_service.storage.audit.database import DatabaseError

    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CliError as exc:
        _out(exc.message, sys.stderr)
        return exc.status
    except DatabaseError as exc:
        # The class only: driver messages can carry connection strings or row values.
        _out(f"audit database error: {type(exc).__name__}", sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
