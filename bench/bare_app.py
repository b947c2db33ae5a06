"""The baseline: a Flask endpoint that only parses the JSON body, under the same gunicorn setup as
the service (worker class, threads, keep-alive from ``cds_service.runtime.gunicorn_app``).

The benchmark compares the service's latency with this one's for the same bodies: the
difference is the service's own work, without Flask, gunicorn, sockets and parsing.

    python -m bench.bare_app --port 8081 --workers 2
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson
from flask import Flask, Response, request
from gunicorn.app.base import BaseApplication

from cds_service.runtime.gunicorn_app import gunicorn_options

_EMPTY = b'{"cards":[]}'


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/cds-services/<service_id>")
    def parse_only(service_id: str) -> Response:
        body = orjson.loads(request.get_data(cache=False))
        # Touch the result so the parse cannot be skipped by any future cleverness.
        return Response(_EMPTY if isinstance(body, dict) else b"{}", mimetype="application/json")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response(b"ok", mimetype="text/plain")

    return app


class _BareApplication(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    options = gunicorn_options(args.host, args.port, args.workers)
    options.pop("worker_exit", None)  # the service's audit flush; nothing to flush here
    options["proc_name"] = "psychopharm-bench-bare"
    _BareApplication(options).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
