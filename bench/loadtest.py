"""Bounded load test of ``psychopharm-cds serve --workers N`` with PostgreSQL audit and Redis jti.

Loopback only. Creates a fresh PostgreSQL database for the run (dropped afterwards), writes a site
config that requires client JWTs from one trusted client whose P-384 key this script holds, starts
the server, and sends a fixed number of realistic synthetic hook calls (patient-view and
order-sign, small and typical charts) at each concurrency level, each with a freshly signed token
(unique ``jti``, ``aud`` = the exact service URL). Every level stops at its request count or its
time cap, whichever comes first. The server is then stopped with SIGTERM (which flushes each
worker's audit queue) and the audit log is checked: every card sent has exactly one row with
shown = true, no other shown rows exist, and ``psychopharm-cds audit verify`` passes.

    .venv/bin/python bench/loadtest.py [--workers 2] [--levels 1,4,16] [--requests 400]
    .venv/bin/python bench/loadtest.py --quick      # a few dozen calls, for the smoke test

Prints a Markdown report; exits 0 only when there were no errors and the audit checks pass.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jwt
import psycopg
import redis
import requests
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.servers import Server, cli_command, free_port, service_command  # noqa: E402
from cds_service.synthetic.population import generate_patient, make_hook_request  # noqa: E402
from tests.pg_support import throwaway_database  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
ISSUER = "https://loadtest-ehr.invalid"
KID = "loadtest-key-1"
SERVICES = {"patient-view": "psychopharm-patient-view", "order-sign": "psychopharm-order-sign"}
ARCHETYPES = ["clean", "stable", "repeated_intolerance", "psychotropic_polypharmacy",
              "regimen_escalation", "multiple_failed_trials", "visits_lag_changes",
              "nonadherence", "near_miss_repeated_intolerance", "near_miss_nonadherence"]
SIZES = {"small": None, "typical": 150}  # resources per chart (None = the story alone, ~30-60)


@dataclass
class Level:
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    cards: int = 0
    elapsed_s: float = 0.0
    capped: bool = False


@dataclass
class Client:
    key: ec.EllipticCurvePrivateKey
    base_url: str

    def token(self, path: str) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": self.base_url + path, "iat": now, "exp": now + 300,
                  "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self.key, algorithm="ES384",
                          headers={"kid": KID, "typ": "JWT"})


def write_config(work: Path, database: str, port: int) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": KID, "use": "sig", "alg": "ES384"})
    jwks = work / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
    config = {
        "service": {"public_base_url": f"http://127.0.0.1:{port}"},
        "auth": {"require_jwt": True, "trusted_clients": [
            {"issuer": ISSUER, "jwks_file": str(jwks)}]},
        "storage": {"url": f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}",
                    "patient_key_secret": uuid.uuid4().hex},
        "cache": {"redis_url": REDIS_URL},
    }
    path = work / "site.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, key


def build_requests(count: int, seed: int) -> list[tuple[str, bytes]]:
    """(path, body) pairs: a fixed mix of hooks, archetypes and chart sizes."""
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    charts = [
        generate_patient(random.Random(seed * 1000 + i), today, ARCHETYPES[i % len(ARCHETYPES)],
                         index=i, n_resources=SIZES["typical"] if i % 3 == 0 else None)
        for i in range(min(count, 60))
    ]
    out = []
    for i in range(count):
        hook = "order-sign" if i % 2 else "patient-view"
        body = make_hook_request(rng.choice(charts), hook, hook_instance=str(uuid.uuid4()))
        out.append((f"/cds-services/{SERVICES[hook]}", json.dumps(body).encode()))
    return out


def run_level(client: Client, level: Level, work: list[tuple[str, bytes]], cap_s: float,
              sent_cards: list[str], lock: threading.Lock) -> None:
    local = threading.local()
    started = time.monotonic()

    def one(item: tuple[str, bytes]) -> None:
        if time.monotonic() - started > cap_s:
            level.capped = True
            return
        path, body = item
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        headers = {"Content-Type": "application/json",
                   "Authorization": f"Bearer {client.token(path)}"}
        t0 = time.perf_counter()
        try:
            response = session.post(client.base_url + path, data=body, headers=headers,
                                    timeout=30)
            elapsed = (time.perf_counter() - t0) * 1000
            kind = None if response.status_code == 200 else f"HTTP {response.status_code}"
            cards = response.json().get("cards", []) if kind is None else []
        except (requests.RequestException, ValueError) as exc:
            elapsed, kind, cards = (time.perf_counter() - t0) * 1000, type(exc).__name__, []
        with lock:
            level.sent += 1
            level.latencies_ms.append(elapsed)
            if kind is not None:
                level.errors[kind] = level.errors.get(kind, 0) + 1
            level.cards += len(cards)
            sent_cards.extend(c["uuid"] for c in cards)

    with ThreadPoolExecutor(max_workers=level.concurrency) as pool:
        list(pool.map(one, work))
    level.elapsed_s = time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def check_audit(database: str, sent: list[str]) -> tuple[bool, str]:
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={database} connect_timeout=5"
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT card_uuid, shown, count(*) FROM audit_card GROUP BY card_uuid, shown"
        ).fetchall()
    shown = {u: n for u, s, n in rows if s}
    missing = [u for u in sent if u not in shown]
    duplicated = [u for u in sent if shown.get(u, 0) > 1]
    extra = set(shown) - set(sent)
    silent = sum(n for _, s, n in rows if not s)
    ok = not missing and not duplicated and not extra and len(set(sent)) == len(sent)
    detail = (f"{len(sent)} cards sent, {sum(shown.values())} shown rows; missing {len(missing)}, "
              f"duplicated {len(duplicated)}, unexpected {len(extra)}; {silent} not-shown rows")
    return ok, detail


def verify_chain(config: Path) -> tuple[bool, str]:
    result = subprocess.run([*cli_command(), "audit", "verify", "--config", str(config)],
                            capture_output=True, text=True, timeout=120, cwd=config.parent)
    last = (result.stdout.strip().splitlines() or [result.stderr.strip()])[-1]
    return result.returncode == 0, last


def report(args: argparse.Namespace, levels: list[Level], audit: tuple[bool, str],
           chain: tuple[bool, str], exit_code: int) -> str:
    lines = [
        f"## psychopharm-cds load test ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`serve --workers {args.workers}` (gthread, 4 threads each), require_jwt (ES384, fresh "
        f"jti per call), Redis jti store, PostgreSQL audit; {os.cpu_count()} CPUs, loopback. "
        f"Mix: patient-view / order-sign, small / typical charts (~{SIZES['typical']} resources).",
        "",
        "| concurrency | requests | req/s | p50 ms | p95 ms | p99 ms | errors | cards |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lv in levels:
        rate = lv.sent / lv.elapsed_s if lv.elapsed_s else 0.0
        errors = sum(lv.errors.values())
        note = " (time cap hit)" if lv.capped else ""
        lines.append(
            f"| {lv.concurrency} | {lv.sent}{note} | {rate:.1f} | "
            f"{percentile(lv.latencies_ms, 50):.1f} | {percentile(lv.latencies_ms, 95):.1f} | "
            f"{percentile(lv.latencies_ms, 99):.1f} | {errors} | {lv.cards} |"
        )
    mean = [statistics.fmean(lv.latencies_ms) for lv in levels if lv.latencies_ms]
    lines += [
        "",
        f"- Errors: {sum(sum(lv.errors.values()) for lv in levels)} "
        f"{[lv.errors for lv in levels if lv.errors] or ''}".rstrip(),
        f"- Audit rows: {'OK' if audit[0] else 'FAILED'}: {audit[1]}",
        f"- Hash chain (`psychopharm-cds audit verify`): {'OK' if chain[0] else 'FAILED'}: "
        f"{chain[1]}",
        f"- Server exit after SIGTERM: {exit_code}; mean latency per level (ms): "
        f"{', '.join(f'{m:.1f}' for m in mean)}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--levels", default="1,4,16", help="comma-separated concurrency levels")
    parser.add_argument("--requests", type=int, default=400, help="calls per level")
    parser.add_argument("--time-cap", type=float, default=90.0, help="seconds per level at most")
    parser.add_argument("--quick", action="store_true", help="2 workers, levels 1,4, 24 calls")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.quick:
        args.workers, args.levels, args.requests, args.time_cap = 2, "1,4", 24, 20.0
    concurrency = [int(c) for c in args.levels.split(",")]

    redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()  # fail early, with a clear error
    port = free_port()
    sent_cards: list[str] = []
    lock = threading.Lock()
    levels = [Level(c) for c in concurrency]
    with tempfile.TemporaryDirectory(prefix="pcds-load-") as tmp, \
            throwaway_database("psychopharm_load", keep=args.keep_db) as database:
        work = Path(tmp)
        config, key = write_config(work, database, port)
        client = Client(key, f"http://127.0.0.1:{port}")
        log = work / "server.log"
        server = Server("service", service_command(port, config, args.workers), port,
                        "/readyz", log).start()
        try:
            for n, level in enumerate(levels):
                # Fresh bodies (and hookInstances) per level, built before the clock starts.
                traffic = build_requests(args.requests, args.seed + n)
                run_level(client, level, traffic, args.time_cap, sent_cards, lock)
        finally:
            exit_code = server.stop()
        audit = check_audit(database, sent_cards)
        chain = verify_chain(config)
        print(report(args, levels, audit, chain, exit_code))
        failed = (any(lv.errors or lv.capped for lv in levels) or not audit[0] or not chain[0]
                  or exit_code != 0)
        if failed:
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
            print("\nserver log (last lines):\n" + "\n".join(tail), file=sys.stderr)
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
