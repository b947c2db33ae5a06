"""Run the Flask app under gunicorn from Python, with settings already loaded and validated.

``load()`` runs in each worker (no preload), so every worker builds its own app, audit store,
writer thread and connection pool after the fork. On a clean shutdown (SIGTERM to the master)
each worker's ``worker_exit`` closes the audit store, which writes out the rows still queued.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from cds_service.runtime.gc_tuning import tune_for_worker
from cds_service.settings import Settings

GRACEFUL_TIMEOUT_S = 15  # long enough for the audit writer to flush its queue
REQUEST_TIMEOUT_S = 30  # hook calls have a FHIR budget of a few seconds; this is the backstop


def bind_address(host: str, port: int) -> str:
    """Gunicorn's ``bind`` string ``host:port``, an IPv6 literal bracketed (``[::1]:8080``)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def close_services(app: Any) -> None:
    """Close the app's services (flushing the audit queue): the bundle's own ``close`` when it
    has one, else its audit store's."""
    services = (getattr(app, "extensions", None) or {}).get("psychopharm")
    close = getattr(services, "close", None)
    if not callable(close):
        close = getattr(getattr(services, "audit", None), "close", None)
    if callable(close):
        close()


def worker_exit(server: Any, worker: Any) -> None:
    """Gunicorn's hook in a worker that is exiting: close its services (see ``close_services``)."""
    close_services(getattr(worker, "wsgi", None))


def child_exit(server: Any, worker: Any) -> None:
    """Gunicorn's hook in the master when a worker exits: forget its live metrics."""
    # In the master: a dead worker's live gauges must not be merged into later scrapes. Imported
    # here, once the workers run: the master must not import prometheus_client before ``serve``
    # has set the multiprocess directory (see ``runtime.multiprocess_dir``).
    from cds_service.runtime.metrics import mark_worker_dead

    mark_worker_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    """Gunicorn's hook in a worker once its app is loaded: tune garbage collection for it."""
    # The app is loaded by now: freeze its heap so full collections stop walking it.
    tune_for_worker()


def gunicorn_options(host: str, port: int, workers: int) -> dict[str, Any]:
    """Gunicorn settings for ``serve``: ``workers`` gthread workers of 4 threads each on
    ``host:port``, request timeout ``REQUEST_TIMEOUT_S`` and graceful timeout
    ``GRACEFUL_TIMEOUT_S`` (seconds), no access log, and this module's worker hooks."""
    return {
        "bind": [bind_address(host, port)],
        "workers": workers,
        # Threads, because a hook call mostly waits on FHIR reads.
        "worker_class": "gthread",
        "threads": 4,
        "timeout": REQUEST_TIMEOUT_S,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "keepalive": 5,
        # Access logs would carry request paths and client addresses; the audit store is the log.
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "psychopharm-cds",
        "worker_exit": worker_exit,
        "child_exit": child_exit,
        "post_worker_init": post_worker_init,
        # Gunicorn 27 opens one control socket per user by default; two services on one host
        # would share it (and one of them would fail to stop cleanly).
        "control_socket_disable": True,
    }


class PsychopharmApplication(BaseApplication):  # type: ignore[misc]
    """Gunicorn running ``app_factory(settings)`` in each worker (``web.app.create_app``, passed
    in by the CLI so that the runtime does not import the web edge)."""

    def __init__(
        self,
        settings: Settings,
        options: Mapping[str, Any],
        app_factory: Callable[[Settings], Any],
    ) -> None:
        self.settings = settings
        self.options = dict(options)
        self.app_factory = app_factory
        super().__init__()

    def load_config(self) -> None:
        """Apply ``options`` to gunicorn's config (BaseApplication protocol)."""
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Build the WSGI app in the worker (BaseApplication protocol)."""
        return self.app_factory(self.settings)  # in the worker, after the fork
