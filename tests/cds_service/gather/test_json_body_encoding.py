"""Request bodies are UTF-8 JSON; a leading byte order mark is ignored (RFC 8259 §8.1).

A body in another encoding is refused with a message that says so, instead of a bare "not valid
JSON" that would send a client developer hunting for a syntax error.
"""

from __future__ import annotations

import json

import pytest

from cds_service.errors import RequestError
from cds_service.gather.hook_request import parse_json_object

BOM = b"\xef\xbb\xbf"
BODY = {"hook": "patient-view", "context": {"patientId": "pat1", "note": "Zoë, 5 µg"}}
TEXT = json.dumps(BODY, ensure_ascii=False)


def _refusal(raw: bytes) -> RequestError:
    with pytest.raises(RequestError) as excinfo:
        parse_json_object(raw)
    return excinfo.value


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(BOM + TEXT.encode(), id="bom"),
        pytest.param(BOM + b"\r\n  " + TEXT.encode(), id="bom-then-whitespace"),
        pytest.param(TEXT.encode(), id="no-bom"),
    ],
)
def test_utf8_body_with_or_without_bom_is_parsed(raw: bytes) -> None:
    assert parse_json_object(raw) == BODY


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]
)
def test_utf16_or_utf32_body_is_told_to_be_utf8(encoding: str) -> None:
    error = _refusal(TEXT.encode(encoding))

    assert (error.status, error.code) == (400, "malformed-json")
    assert error.message == (
        "request body must be JSON encoded as UTF-8 (RFC 8259 §8.1); "
        "it looks like UTF-16 or UTF-32"
    )


def test_latin1_body_is_told_to_be_utf8() -> None:
    error = _refusal(TEXT.encode("latin-1"))

    assert error.code == "malformed-json"
    assert "must be JSON encoded as UTF-8" in error.message
    assert "not valid UTF-8" in error.message


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(BOM + BOM + TEXT.encode(), id="two-boms"),
        pytest.param(b" " + BOM + TEXT.encode(), id="bom-not-first"),
        pytest.param(BOM + b'{"hook": ', id="bom-then-broken-json"),
        pytest.param(b'{"hook": "patient-view",', id="broken-utf8-json"),
    ],
)
def test_utf8_that_is_not_json_is_still_just_not_json(raw: bytes) -> None:
    error = _refusal(raw)

    assert (error.code, error.message) == ("malformed-json", "request body is not valid JSON")


def test_bom_before_a_non_object_is_still_refused_as_a_non_object() -> None:
    error = _refusal(BOM + b"[1, 2]")

    assert (error.code, error.message) == ("invalid-request", "request body must be a JSON object")
