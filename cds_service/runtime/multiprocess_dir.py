"""The directory where prometheus_client's multiprocess mode keeps every worker's metrics.

Kept apart from ``metrics`` on purpose: ``serve`` must set ``PROMETHEUS_MULTIPROC_DIR`` before
prometheus_client is imported in the gunicorn master (it picks its value store at import, and the
workers inherit the master's modules when they fork), so this module must not import it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

log = logging.getLogger(__name__)


@contextmanager
def multiprocess_directory(
    environ: MutableMapping[str, str] = os.environ,
) -> Iterator[Path]:
    """The directory where every worker writes its metrics, set in ``environ`` for the workers.

    Without ``PROMETHEUS_MULTIPROC_DIR`` a private temporary directory is created and removed on
    exit (also when the server exits with an error). With it, that directory is used and kept,
    but the ``*.db`` files of a previous run are deleted first: prometheus_client would otherwise
    add the old counts to the new ones. Must be entered before prometheus_client is imported.
    """
    given = environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        log.info("metrics: multiprocess mode, directory %s (kept)", path)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="psychopharm-metrics-"))
    environ[MULTIPROC_ENV] = str(path)
    log.info("metrics: multiprocess mode, directory %s", path)
    try:
        yield path
    finally:
        environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)
