"""Start and stop the processes the benchmark talks to (the service, the bare baseline and the
loopback FHIR server), all on 127.0.0.1, and read their workers' peak memory from /proc."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli_command() -> list[str]:
    """``psychopharm-cds``: the installed console script when present, else the module."""
    script = Path(sys.executable).with_name("psychopharm-cds")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cds_service.cli"]


def service_command(port: int, config: Path, workers: int = 2) -> list[str]:
    return [*cli_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--config", str(config)]


def bare_command(port: int, workers: int = 2) -> list[str]:
    return [sys.executable, "-m", "bench.bare_app", "--port", str(port), "--workers", str(workers)]


@dataclass
class Server:
    """A subprocess serving HTTP on ``port``; ``stop()`` signals it and waits."""

    name: str
    command: Sequence[str]
    port: int
    ready_path: str
    log_path: Path
    stop_signal: signal.Signals = signal.SIGTERM
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> Server:
        return self.launch().wait_ready()

    def launch(self) -> Server:
        self._log = self.log_path.open("wb")
        # gunicorn (>= 24) opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl: one directory
        # per server, or the benchmark's two masters (and any other gunicorn here) would share it.
        runtime_dir = self.log_path.with_suffix(".run")
        runtime_dir.mkdir(mode=0o700, exist_ok=True)
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir), "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))}
        self.proc = subprocess.Popen(  # noqa: S603 - our own fixed command line
            list(self.command), cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        return self

    def wait_ready(self) -> Server:
        if self.proc is None:
            raise RuntimeError("launch() first")
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {START_TIMEOUT_S} s")

    def _answers(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            conn.request("GET", self.ready_path)
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def worker_pids(self) -> list[int]:
        return children(self.proc.pid) if self.proc is not None else []

    def terminate(self) -> None:
        """Signal without waiting, so that several servers shut down at the same time."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)

    def stop(self) -> int | None:
        """Signal, wait (killing after 20 s) and return the exit code; None if never launched."""
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
        return self.proc.returncode if self.proc is not None else None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn's workers of its master), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields resume after the last ")".
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def memory_kib(pid: int) -> dict[str, int]:
    """VmHWM (peak resident set) and VmRSS of a process, in KiB."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out
