"""The psychopharm-cds command: exit codes and output of check-config, serve, migrate, audit."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import text

from cds_service import cli
from cds_service.runtime.gunicorn_app import PsychopharmApplication, worker_exit
from cds_service.settings import load_settings
from cds_service.storage.audit.migrate import head_revision
from cds_service.storage.audit.store import SqlAuditStore
from tests.audit_support import card, feedback, storage

pytest_plugins = ["tests.audit_support"]

REPO = Path(__file__).resolve().parents[2]


SECRET = "storage:\n  patient_key_secret: site-secret-for-tests-0123456789\n"


def write_config(tmp_path: Path, body: str, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def site_config(tmp_path: Path, url: str, extra: str = "", *, secret: bool = False) -> Path:
    key = "  patient_key_secret: site-secret-for-tests-0123456789\n" if secret else ""
    return write_config(tmp_path, f'storage:\n  url: "{url}"\n{key}{extra}')


@pytest.fixture
def no_gunicorn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record what serve would start instead of starting it."""
    started: list[dict[str, Any]] = []

    def run(self: PsychopharmApplication) -> None:
        started.append(self.options)

    monkeypatch.setattr(PsychopharmApplication, "run", run)
    return started


# check-config


def test_check_config_prints_ok_and_the_config_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "patterns:\n  nonadherence:\n    mode: silent\n")
    assert cli.main(["check-config", str(path)]) == cli.EXIT_OK
    assert capsys.readouterr().out == f"OK {load_settings(path).config_version}\n"


def test_check_config_lists_every_problem_with_key_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        tmp_path,
        "servce:\n  max_cards: 2\n"
        "storage:\n  queue_size: -5\n"
        "patterns:\n  repeated-intolerance:\n    lookback_days: -30\n",
    )
    assert cli.main(["check-config", str(path)]) == cli.EXIT_FAILURE
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{path}: ") for line in lines)
    joined = "\n".join(lines)
    for key in ("servce", "storage.queue_size", "patterns.repeated-intolerance.lookback_days"):
        assert f": {key}: " in joined


def test_check_config_on_a_missing_file_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert cli.main(["check-config", str(missing)]) == cli.EXIT_FAILURE
    assert str(missing) in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["check-config"],
        ["audit", "export", "--format", "xml"],
        ["audit", "export", "--since", "last tuesday"],
        ["audit", "export", "--pattern", "no-such-pattern"],
        ["serve", "--port", "eighty"],
        ["serve", "--port", "70000"],
        ["serve", "--workers", "0"],
    ],
    ids=[
        "no-command",
        "no-file",
        "bad-format",
        "bad-since",
        "bad-pattern",
        "bad-port",
        "port-out-of-range",
        "no-workers",
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == cli.EXIT_USAGE


# serve


def test_serve_with_an_invalid_config_exits_1_without_starting(
    tmp_path: Path, no_gunicorn: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "auth:\n  require_jwt: true\n")
    assert cli.main(["serve", "--config", str(path)]) == cli.EXIT_FAILURE
    assert no_gunicorn == []
    assert "require_jwt is true but no trusted_clients" in capsys.readouterr().err


def test_serve_refuses_a_public_bind_without_jwt(
    tmp_path: Path, no_gunicorn: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = site_config(tmp_path, f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    argv = ["serve", "--host", "0.0.0.0", "--config", str(path)]  # noqa: S104
    assert cli.main(argv) == cli.EXIT_USAGE
    assert no_gunicorn == []
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0" in err
    assert "auth.require_jwt is false" in err  # the start-up WARNING


@pytest.mark.parametrize("how", ["flag", "config"])
def test_serve_public_bind_when_explicitly_allowed(
    how: str, tmp_path: Path, no_gunicorn: list[dict[str, Any]]
) -> None:
    extra = "auth:\n  allow_insecure_bind: true\n" if how == "config" else ""
    path = site_config(tmp_path, f"sqlite:///{tmp_path / 'audit.sqlite3'}", extra, secret=True)
    argv = ["serve", "--host", "0.0.0.0", "--port", "9090", "--workers", "3"]  # noqa: S104
    argv += ["--config", str(path)] + (["--allow-insecure-bind"] if how == "flag" else [])
    assert cli.main(argv) == cli.EXIT_OK
    (options,) = no_gunicorn
    assert options["bind"] == ["0.0.0.0:9090"]
    assert options["workers"] == 3
    assert options["accesslog"] is None
    assert options["worker_exit"] is worker_exit
    # serve migrated the database before the workers start
    assert (tmp_path / "audit.sqlite3").exists()


@pytest.mark.parametrize(("environ", "argv", "workers"), [
    ({}, [], 2),
    ({"WEB_CONCURRENCY": "5"}, [], 5),
    ({"WEB_CONCURRENCY": "5"}, ["--workers", "3"], 3),  # the command line wins
])
def test_serve_takes_the_worker_count_from_the_environment(
    environ: dict[str, str], argv: list[str], workers: int, tmp_path: Path,
    no_gunicorn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    path = site_config(tmp_path, f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    assert cli.main(["serve", "--config", str(path), *argv]) == cli.EXIT_OK
    assert no_gunicorn[0]["workers"] == workers


def test_serve_refuses_a_worker_count_from_the_environment_that_is_not_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "many")
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve"])
    assert exc.value.code == cli.EXIT_USAGE
    assert "must be a whole number from 1: 'many'" in capsys.readouterr().err


def test_serve_refuses_the_placeholder_secret_beyond_loopback(
    tmp_path: Path, no_gunicorn: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = site_config(tmp_path, f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    argv = ["serve", "--host", "10.0.0.5", "--allow-insecure-bind", "--config", str(path)]
    assert cli.main(argv) == cli.EXIT_USAGE
    assert no_gunicorn == []
    err = capsys.readouterr().err
    assert "storage.patient_key_secret still a placeholder ('change-me-local-only')" in err
    assert "secrets.token_urlsafe(32)" in err  # how to make one


def test_serve_keeps_the_placeholder_secret_on_loopback(
    tmp_path: Path, no_gunicorn: list[dict[str, Any]]
) -> None:
    path = site_config(tmp_path, f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    assert cli.main(["serve", "--config", str(path)]) == cli.EXIT_OK
    assert len(no_gunicorn) == 1


@pytest.mark.parametrize(
    "auth",
    ["require_jwt: true\n  trusted_clients: [{issuer: https://ehr.example.org, "
     "jwks_url: https://ehr.example.org/jwks.json}]", "allow_insecure_bind: true"],
)
def test_check_config_refuses_the_placeholder_secret_where_others_can_call(
    auth: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, f"auth:\n  {auth}\n")
    assert cli.main(["check-config", str(path)]) == cli.EXIT_FAILURE
    out = capsys.readouterr().out
    assert "storage.patient_key_secret: a placeholder ('change-me-local-only') is refused" in out
    assert "set storage.patient_key_secret in the site file" in out
    fixed = write_config(tmp_path, f"auth:\n  {auth}\n{SECRET}", "fixed.yaml")
    assert cli.main(["check-config", str(fixed)]) == cli.EXIT_OK


def jwt_site(tmp_path: Path, jwks_file: Path) -> Path:
    return write_config(tmp_path, (
        "auth:\n  require_jwt: true\n  trusted_clients:\n"
        f"    - issuer: https://ehr.example.org\n      jwks_file: {jwks_file}\n"
        f"storage:\n  url: sqlite:///{tmp_path / 'audit.sqlite3'}\n"
        "  patient_key_secret: site-secret-for-tests-0123456789\n"
    ))


@pytest.mark.parametrize(
    ("make_file", "reason"),
    [
        (lambda d: d / "missing.json", "No such file or directory"),
        (lambda d: d, "Is a directory"),
        (lambda d: _write(d / "keys.json", "{not json"), "Expecting property name"),
        (lambda d: _write(d / "keys.json", '{"kid": "x"}'), "not a JWK Set"),
        (lambda d: _write(d / "keys.json", '{"keys": []}'), "no usable signing key"),
    ],
    ids=["missing", "a-directory", "not-json", "not-a-jwk-set", "no-keys"],
)
def test_check_config_reports_an_unusable_jwks_file(
    make_file: Any, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jwks = make_file(tmp_path)
    path = jwt_site(tmp_path, jwks)
    assert cli.main(["check-config", str(path)]) == cli.EXIT_FAILURE
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(
        f"{path}: auth.trusted_clients[https://ehr.example.org].jwks_file: cannot load {jwks}: "
    )
    assert reason in line


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_check_config_accepts_a_usable_jwks_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jwks = REPO / "tests" / "fixtures" / "keys" / "sandbox-jwks.json"
    assert cli.main(["check-config", str(jwt_site(tmp_path, jwks))]) == cli.EXIT_OK
    assert capsys.readouterr().out.startswith("OK ")


def test_serve_with_a_missing_jwks_file_prints_one_line_and_starts_no_worker(
    tmp_path: Path,
) -> None:
    path = jwt_site(tmp_path, tmp_path / "missing.json")
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "cds_service.cli", "serve", "--workers", "2", "--port",
         str(_free_port()), "--config", str(path)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == cli.EXIT_FAILURE
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line == (
        f"{path}: auth.trusted_clients[https://ehr.example.org].jwks_file: cannot load "
        f"{tmp_path / 'missing.json'}: No such file or directory"
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_loopback_hosts(host: str) -> None:
    assert cli.is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "cds.example.org"])  # noqa: S104
def test_non_loopback_hosts(host: str) -> None:
    assert not cli.is_loopback(host)


def test_worker_exit_closes_the_apps_services() -> None:
    closed: list[str] = []
    services = SimpleNamespace(close=lambda: closed.append("services"))
    app = SimpleNamespace(extensions={"psychopharm": services})
    worker_exit(server=None, worker=SimpleNamespace(wsgi=app))
    assert closed == ["services"]


def test_worker_exit_falls_back_to_the_audit_store() -> None:
    closed: list[str] = []
    audit = SimpleNamespace(close=lambda: closed.append("audit"))
    app = SimpleNamespace(extensions={"psychopharm": SimpleNamespace(audit=audit)})
    worker_exit(server=None, worker=SimpleNamespace(wsgi=app))
    worker_exit(server=None, worker=SimpleNamespace())  # a worker that never loaded the app
    assert closed == ["audit"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_answers_discovery_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    path = site_config(tmp_path, f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    command = [sys.executable, "-m", "cds_service.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", "1", "--config", str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        status = None
        deadline = time.monotonic() + 60  # a wait limit, not a timing assertion
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = requests.get(
                    f"http://127.0.0.1:{port}/cds-services", timeout=2
                ).status_code
            # Gunicorn accepts before the worker has loaded the app: a busy machine may not
            # answer within the read timeout yet.
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
                continue
            if status == 200:
                break
        assert status == 200, process.stdout.read().decode() if process.poll() is not None else ""
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


# migrate and audit


def test_migrate_brings_a_fresh_database_to_head(
    audit_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = site_config(tmp_path, audit_url)
    assert cli.main(["migrate", "--config", str(path)]) == cli.EXIT_OK
    assert capsys.readouterr().out == f"OK audit database at revision {head_revision()}\n"


def _filled(url: str) -> list[str]:
    store = SqlAuditStore(storage(url))
    try:
        cards = [card(), card(pattern="nonadherence", shown=False, disposition="silent")]
        store.record_cards(cards)
        store.flush()
        store.record_feedback([feedback(cards[0].card_uuid, override_comment="=SUM(A1)")])
    finally:
        store.close()
    return [c.card_uuid for c in cards]


def test_audit_verify_ok_then_tampered(
    audit_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _filled(audit_url)
    path = site_config(tmp_path, audit_url)
    assert cli.main(["audit", "verify", "--config", str(path)]) == cli.EXIT_OK
    assert capsys.readouterr().out == "OK 3 rows\n"

    store = SqlAuditStore(storage(audit_url))
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE audit_card SET summary = 'edited' WHERE seq = 1"))
        connection.execute(text("DELETE FROM audit_card WHERE seq = 2"))
    store.close()

    assert cli.main(["audit", "verify", "--config", str(path)]) == cli.EXIT_FAILURE
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("BROKEN: ")
    assert any(line.startswith("seq 1 (card): hash mismatch") for line in out)
    assert "seq 2: missing (row deleted?)" in out


def test_audit_export_formats(
    audit_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uuids = _filled(audit_url)
    path = site_config(tmp_path, audit_url)

    output = tmp_path / "cards.jsonl"
    argv = ["audit", "export", "--config", str(path), "--output", str(output)]
    assert cli.main(argv) == cli.EXIT_OK
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [r["card_uuid"] for r in rows] == uuids
    assert rows[0]["override_comment"] == "=SUM(A1)"  # JSON is not a spreadsheet

    argv = ["audit", "export", "--config", str(path), "--format", "csv", "--pattern"]
    assert cli.main([*argv, "nonadherence"]) == cli.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("time,hook,hook_instance")
    assert len(lines) == 2 and uuids[1] in lines[1]

    argv = ["audit", "export", "--config", str(path), "--format", "fhir"]
    assert cli.main([*argv, "--since", "2025-03-04", "--until", "2025-03-05T00:00"]) == 0
    bundle = Bundle.model_validate(json.loads(capsys.readouterr().out))
    assert len(bundle.entry or []) == 2

    assert cli.main([*argv, "--since", "2025-03-05"]) == cli.EXIT_OK
    assert "entry" not in json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_audit_export_into_head_ends_without_a_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    store = SqlAuditStore(storage(url))
    store.record_cards([card(card_json="{" + '"x": 1, ' * 200 + '"y": 2}') for _ in range(400)])
    store.close()  # flushes: well over a pipe buffer (64 KiB) of JSON lines
    path = site_config(tmp_path, url)
    export = f"{sys.executable} -m cds_service.cli audit export --config {path}"
    script = f"set -o pipefail; {export} 2>{tmp_path / 'err'} | head -n 2"
    result = subprocess.run(  # noqa: S603 - our own fixed command line
        ["bash", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 2
    assert (tmp_path / "err").read_text() == ""


def test_unreachable_database_exits_1_without_leaking_the_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'audit.sqlite3'}"
    path = site_config(tmp_path, url)
    assert cli.main(["audit", "verify", "--config", str(path)]) == cli.EXIT_FAILURE
    err = capsys.readouterr().err
    assert "audit database error: OperationalError" in err
    assert "no-such-dir" not in err
