"""The pure core stays pure: importing it must not pull in Flask, SQLAlchemy or requests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import sys
import cds_service.patterns, cds_service.patterns.engine, fhir_mappers, cards
print(",".join(sorted(m for m in ("flask", "sqlalchemy", "requests") if m in sys.modules)))
"""


def test_pure_packages_import_no_io_libraries() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
