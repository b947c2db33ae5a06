"""The load-test script itself works: a quick run against a real multi-worker server.

``bench/loadtest.py --quick`` starts ``psychopharm-cds serve --workers 2`` with PostgreSQL audit,
Redis jti store and required client JWTs, sends a few dozen calls, stops the server with SIGTERM
and checks that every card sent has exactly one audit row and that the hash chain verifies.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def test_quick_load_test_passes_with_zero_errors_and_complete_audit() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "loadtest.py"), "--quick"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "| 4 | 24 |" in result.stdout
    assert "Audit rows: OK" in result.stdout
    assert "Hash chain (`psychopharm-cds audit verify`): OK" in result.stdout
