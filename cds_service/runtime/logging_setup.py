"""Structured logging: one JSON object per line on stderr.

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and ``request_id``
(the hookInstance of the call being served, set with ``request_log_context``), plus whatever the
caller passed as ``extra``. Callers must not log PHI: resource types, field names, reasons, counts
and keyed hashes only. As defence in depth, a filter replaces anything that looks like a bearer
token or a JWT with ``[REDACTED]`` before a line is written.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

REDACTED = "[REDACTED]"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "psychopharm_request_id", default=None
)

# A JWS always starts with the base64url of '{"'; other dotted triples must be long to count,
# so that module paths and host names stay readable.
_SECRET_PATTERNS = (
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
    re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"),
)

_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}

_HANDLER_MARK = "_psychopharm_handler"


def redact(text: str) -> str:
    """``text`` with bearer tokens (``Bearer [REDACTED]``), JWTs and long dotted base64url
    triples replaced by ``[REDACTED]``."""
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    for pattern in _SECRET_PATTERNS[1:]:
        text = pattern.sub(REDACTED, text)
    return text


def current_request_id() -> str | None:
    """The ``request_id`` set by the enclosing ``request_log_context``, or None."""
    return _request_id.get()


@contextmanager
def request_log_context(request_id: str) -> Iterator[None]:
    """Every log line written inside the block carries ``request_id``."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current ``request_id`` unless the caller set one."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Set ``record.request_id``; always keeps the record."""
        # Stamped in the logging thread, before any handler could hand the record elsewhere.
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        return True


class RedactFilter(logging.Filter):
    """Redacts secrets from the message, string ``extra`` fields and the traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Format and redact the record in place; always keeps it, never raises on bad args."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A bad format string must not turn a log call into a failed hook call.
            message = f"{record.msg} (unformattable log arguments)"
        record.msg = redact(message)
        record.args = None
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRS and isinstance(value, str):
                setattr(record, name, redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record (the fields listed in the module docstring, ``exc`` for a
    traceback); values JSON cannot carry are written with ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRS and name not in entry:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler[IO[str]]):
    """Writes to whatever ``sys.stderr`` is at emit time: test runners and daemons swap it."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def configure_logging(level: str = "INFO", *, stream: IO[str] | None = None) -> None:
    """Send every logger's records to ``stream`` (stderr) as JSON lines; safe to call again."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactFilter())
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # urllib3 logs every request line (with the FHIR query, i.e. the patient id) at DEBUG: keep it
    # quiet even when a site turns the service's own logging up to DEBUG.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
