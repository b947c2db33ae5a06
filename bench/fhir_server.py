"""A loopback FHIR server for the benchmark's fallback variant: the service gets a request without
prefetch and reads the same patient data from here, as it would from an EHR's FHIR API.

Stdlib only (``ThreadingHTTPServer``, HTTP/1.1 keep-alive, bodies serialised once up front) so
that the server's own cost stays small next to the service's. It answers the reads the prefetch
templates in config/services.yaml resolve to:

    GET {base}/Patient/{id}
    GET {base}/{Type}?patient={id}[&...]        -> searchset Bundle of that patient's {Type}

    python -m bench.fhir_server --port 0 --data bundles.json   (prints "READY <port>")
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

BASE_PATH = "/fhir"
_NOT_FOUND = orjson.dumps(
    {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
)


def index_bundles(bundles: Iterable[Mapping[str, Any]]) -> dict[str, bytes]:
    """Response bodies by request path: one read per Patient, one search per patient and type."""
    bodies: dict[str, bytes] = {}
    for bundle in bundles:
        resources = [e["resource"] for e in bundle.get("entry", [])]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        pid = patient["id"]
        bodies[f"Patient/{pid}"] = orjson.dumps(patient)
        by_type: dict[str, list[dict[str, Any]]] = {}
        for resource in resources:
            if resource["resourceType"] != "Patient":
                by_type.setdefault(resource["resourceType"], []).append(resource)
        for rtype in ("MedicationRequest", "MedicationStatement", "AllergyIntolerance",
                      "Encounter", "MedicationDispense", "Observation", "Condition"):
            matches = by_type.get(rtype, [])
            bodies[f"{rtype}?{pid}"] = orjson.dumps({
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(matches),
                "entry": [
                    {"fullUrl": f"{rtype}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                    for r in matches
                ],
            })
    return bodies


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the service's pooled session expects
    # Headers and body go out as two writes: without TCP_NODELAY the body waits for the delayed
    # ACK of the headers (~40 ms on Linux), which would be the server's cost, not the service's.
    disable_nagle_algorithm = True
    bodies: Mapping[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        parts = urlsplit(self.path)
        path = parts.path.removeprefix(BASE_PATH + "/")
        if "/" in path:
            key = path
        else:
            key = f"{path}?{(parse_qs(parts.query).get('patient') or [''])[0]}"
        body = self.bodies.get(key)
        status = 200 if body is not None else 404
        body = body if body is not None else _NOT_FOUND
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # thousands of reads per run; the benchmark reports failures itself


def make_server(bodies: Mapping[str, bytes], port: int = 0) -> ThreadingHTTPServer:
    handler = type("FhirHandler", (_Handler,), {"bodies": dict(bodies)})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fhir_server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data", required=True, help="JSON list of patient Bundles")
    args = parser.parse_args(argv)
    bundles = orjson.loads(Path(args.data).read_bytes())
    server = make_server(index_bundles(bundles), args.port)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
