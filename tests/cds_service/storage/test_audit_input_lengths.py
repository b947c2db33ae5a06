"""Inputs the audit cannot store are refused at the door, and a failed insert logs no row values.

On SQLite and on the real PostgreSQL (127.0.0.1:5432; lengths only matter there: SQLite stores a
longer string, PostgreSQL fails the whole insert). A feedback ``card`` or a hook ``userId`` that
does not fit its column is a 400 naming the field, not a 500 (feedback) or a 200 whose audit row
is silently lost (hook call). When an insert does fail, neither the exception's text nor the log
carries the row's values: the engines hide statement parameters, and the 500 handler leaves out
the database's messages (PostgreSQL's "Failing row contains (...)").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from cds_service.storage.audit.models import CARD, FEEDBACK, max_lengths
from cds_service.storage.audit.records import FeedbackRecord
from cds_service.storage.audit.store import SqlAuditStore
from tests.audit_support import _pg_schema_url, feedback
from tests.cds_service.conftest import hook_body, service_url
from tests.cds_service.web.test_errors import assert_error

pytest_plugins = ["tests.audit_support"]

FEEDBACK_URL = "/cds-services/psychopharm-order-sign/feedback"
SECRET = "patient said her brother-in-law Jonas Weber"
CARD_LIMIT = max_lengths(FEEDBACK)["card_uuid"]
USER_LIMIT = max_lengths(CARD)["practitioner"]


@pytest.fixture
def make_audit_app(
    make_settings: Callable[..., Any], make_app: Callable[..., Flask]
) -> Callable[[str], Flask]:
    def make(url: str) -> Flask:
        return make_app(make_settings({"storage": {"url": url}}))

    return make


@pytest.fixture
def audit_app(make_audit_app: Callable[[str], Flask], audit_url: str) -> Flask:
    """The service on a fresh audit database, SQLite or PostgreSQL."""
    return make_audit_app(audit_url)


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    yield from _pg_schema_url(pg_database)


def feedback_body(card: str) -> dict[str, Any]:
    return {"feedback": [{
        "card": card,
        "outcome": "overridden",
        "outcomeTimestamp": "2026-06-15T10:00:00Z",
        "overrideReason": {"userComment": SECRET},
    }]}


def cards_audited(app: Flask) -> list[dict[str, Any]]:
    audit = app.extensions["psychopharm"].audit
    audit.flush(timeout_s=10)
    return list(audit.query_cards())


def test_feedback_card_longer_than_its_column_is_400_and_nothing_is_stored(
    audit_app: Flask,
) -> None:
    card = "Side effects with medications from several unrelated classes: explore expectations"

    response = audit_app.test_client().post(FEEDBACK_URL, json=feedback_body(card))

    assert_error(response, 400, "invalid-field", "invalid")
    assert response.get_json()["issue"][0]["details"]["text"] == (
        f"feedback[0].card: must be at most {CARD_LIMIT} characters (the audit log stores no more)"
    )
    store: SqlAuditStore = audit_app.extensions["psychopharm"].audit
    with store.engine.connect() as connection:
        assert connection.execute(FEEDBACK.select()).first() is None


def test_feedback_card_that_just_fits_is_stored(audit_app: Flask) -> None:
    response = audit_app.test_client().post(FEEDBACK_URL, json=feedback_body("c" * CARD_LIMIT))

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"stored": 1}


def _hook_call(app: Flask, user: str) -> Any:
    body = hook_body("patient-view", "pat-len-1", user=user)
    return app.test_client().post(service_url("patient-view"), json=body)


def test_user_id_longer_than_its_column_is_400(audit_app: Flask) -> None:
    response = _hook_call(audit_app, "Practitioner/" + "p" * 300)

    assert_error(response, 400, "invalid-field")
    assert response.get_json()["issue"][0]["details"]["text"].startswith(
        f"context.userId must be at most {USER_LIMIT} characters"
    )


def test_user_id_that_just_fits_is_audited(
    make_audit_app: Callable[[str], Flask], audit_url: str, load_fixture: Callable[[str], Any]
) -> None:
    app = make_audit_app(audit_url)
    user = "Practitioner/" + "p" * (USER_LIMIT - len("Practitioner/"))
    body = load_fixture("repeated-intolerance/positive-patient-view-three-classes.json")
    body["context"]["userId"] = user

    response = app.test_client().post(service_url("patient-view"), json=body)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["cards"]
    rows = cards_audited(app)
    assert rows and {row["practitioner"] for row in rows} == {user}
    assert app.extensions["psychopharm"].audit.stats()["dropped"] == 0


def test_statement_errors_carry_no_parameters(store: SqlAuditStore) -> None:
    broken = feedback("card-7a1", outcome=None, override_comment=SECRET)  # NOT NULL violated

    with pytest.raises(SQLAlchemyError) as excinfo:
        store.record_feedback([broken])

    assert "[SQL parameters hidden due to hide_parameters=True]" in str(excinfo.value)
    assert "[parameters:" not in str(excinfo.value)


def _break_feedback(monkeypatch: pytest.MonkeyPatch, record: FeedbackRecord) -> None:
    """Hand the store a record the parser would refuse, to make its insert fail."""
    monkeypatch.setattr(
        "cds_service.web.hooks.parse_feedback", lambda *args, **kwargs: [record]
    )


def _error_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line["level"] == "ERROR"]


def _post_failing(app: Flask, capsys: pytest.CaptureFixture[str]) -> tuple[Any, str]:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    capsys.readouterr()
    response = app.test_client().post(FEEDBACK_URL, json=feedback_body("card-7a1"))
    return response, capsys.readouterr().err


def test_failing_feedback_insert_is_one_500_log_line_without_row_values(
    audit_app: Flask, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # NOT NULL violated: on PostgreSQL the error's DETAIL quotes the whole row.
    _break_feedback(monkeypatch, feedback("card-secret-7a1", outcome=None,
                                          override_comment=SECRET))

    response, stderr = _post_failing(audit_app, capsys)

    assert_error(response, 500, "internal-error", "exception")
    (line,) = _error_lines(stderr)
    assert line["message"].startswith("unhandled error hookInstance=- type=IntegrityError(")
    assert "record_feedback" in line["message"]  # the frames are kept
    assert SECRET not in stderr and "card-secret-7a1" not in stderr


def test_value_too_long_for_postgres_logs_no_row_values(
    make_audit_app: Callable[[str], Flask], pg_url: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    long_card = "Side effects with medications from several unrelated classes: explore"
    _break_feedback(monkeypatch, feedback(long_card, override_comment=SECRET))

    response, stderr = _post_failing(make_audit_app(pg_url), capsys)

    assert_error(response, 500, "internal-error")
    (line,) = _error_lines(stderr)
    assert "type=DataError(StringDataRightTruncation)" in line["message"]
    assert SECRET not in stderr and long_card not in stderr
