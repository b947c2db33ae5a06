"""JSON log lines: fields, request id per hook call, and tokens never written out."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cds_service.runtime.logging_setup import (
    REDACTED,
    configure_logging,
    current_request_id,
    redact,
    request_log_context,
)

# A real ES384-shaped compact JWS (header.payload.signature); logs must never carry one.
JWT = (
    "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6IjQ0ODIzZjNkIn0"
    ".eyJpc3MiOiJodHRwczovL3NhbmRib3guY2RzLWhvb2tzLm9yZyIsImp0aSI6IjEyMyJ9"
    ".MGUCMQDxY2mJ0hS4l3k5u8bJvQ2aF7yZ1rX9cW6tE0nP4oL2iK8jH3gD5fS7aA1qR6wT"
)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    out = io.StringIO()
    configure_logging("DEBUG", stream=out)
    yield out
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_line_is_json_with_the_standard_fields(stream: io.StringIO) -> None:
    logging.getLogger("cds_service.gather.prefetch").info(
        "fetched %d resources", 3, extra={"resource_type": "MedicationRequest"}
    )
    (entry,) = lines(stream)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "cds_service.gather.prefetch"
    assert entry["message"] == "fetched 3 resources"
    assert entry["request_id"] is None
    assert entry["resource_type"] == "MedicationRequest"
    assert entry["time"].endswith("Z") and "T" in entry["time"]


def test_level_filters_lines(stream: io.StringIO) -> None:
    configure_logging("WARNING", stream=stream)
    logging.getLogger("x").info("quiet")
    logging.getLogger("x").warning("loud")
    assert [e["message"] for e in lines(stream)] == ["loud"]


def test_request_urls_of_the_http_client_stay_out_even_at_debug(stream: io.StringIO) -> None:
    # urllib3 logs each request line, FHIR query (and so the patient id) included, at DEBUG.
    logging.getLogger("urllib3.connectionpool").debug(
        'http://ehr:80 "GET /fhir/MedicationRequest?patient=p-123 HTTP/1.1" 200 10'
    )
    logging.getLogger("cds_service.gather.prefetch").debug("own debug line")
    assert [e["message"] for e in lines(stream)] == ["own debug line"]


def test_configuring_twice_keeps_one_handler(stream: io.StringIO) -> None:
    configure_logging("INFO", stream=stream)
    logging.getLogger("x").info("once")
    assert len(lines(stream)) == 1


def test_request_id_is_carried_inside_the_context_only(stream: io.StringIO) -> None:
    log = logging.getLogger("cds_service.pipeline")
    with request_log_context("d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"):
        log.info("inside")
        logging.getLogger("cds_service.patterns").info("deeper")
        assert current_request_id() == "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
    log.info("after")
    ids = [e["request_id"] for e in lines(stream)]
    assert ids == ["d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"] * 2 + [None]


def test_request_ids_do_not_leak_between_threads(stream: io.StringIO) -> None:
    def call(request_id: str) -> None:
        with request_log_context(request_id):
            logging.getLogger("t").info(request_id)

    threads = [threading.Thread(target=call, args=(f"hook-{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(e["request_id"] == e["message"] for e in lines(stream))


def test_exceptions_are_included(stream: io.StringIO) -> None:
    try:
        raise ValueError("bad dose unit")
    except ValueError:
        logging.getLogger("x").exception("detector failed")
    (entry,) = lines(stream)
    assert "ValueError: bad dose unit" in entry["exc"]


@pytest.mark.parametrize(
    "emit",
    [
        lambda log: log.warning(f"auth header was Bearer {JWT}"),
        lambda log: log.warning("token %s", JWT),
        lambda log: log.warning("rejected", extra={"detail": f"jwt={JWT}"}),
    ],
    ids=["in-message", "in-args", "in-extra"],
)
def test_tokens_are_redacted(stream: io.StringIO, emit: Any) -> None:
    emit(logging.getLogger("cds_service.web.auth"))
    out = stream.getvalue()
    assert JWT not in out
    assert JWT.split(".")[1] not in out
    assert REDACTED in out


def test_tokens_in_exception_text_are_redacted(stream: io.StringIO) -> None:
    try:
        raise RuntimeError(f"upstream said: Authorization: Bearer {JWT}")
    except RuntimeError:
        logging.getLogger("x").exception("fetch failed")
    assert JWT not in stream.getvalue()


@pytest.mark.parametrize(
    "text",
    [
        "Bearer abc123.opaque-token",
        "authorization: bearer 0123456789abcdef",
        "aaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbb.cccccccccccccccccccc",
    ],
)
def test_redact_catches_bearer_tokens_and_long_dotted_triples(text: str) -> None:
    assert REDACTED in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "cds_service.patterns.repeated_intolerance failed",
        "fetched https://fhir.example.org/MedicationRequest?patient=x",
        "version 1.2.3",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_a_bad_format_string_does_not_raise(stream: io.StringIO) -> None:
    logging.getLogger("x").info("%d items", "not-a-number")
    assert "unformattable" in lines(stream)[0]["message"]


def test_default_stream_is_stderr_at_write_time(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        configure_logging("INFO")
        logging.getLogger("x").info("to stderr")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    assert json.loads(capsys.readouterr().err.splitlines()[-1])["message"] == "to stderr"
