"""The benchmark's results as Markdown tables (stdout) with the targets checked beside them."""

from __future__ import annotations

from typing import Any

from bench.stages import STAGES

TARGET_HTTP_RATIO = 2.0  # large request: service p50 / bare-parse endpoint p50
TARGET_PARSE_RATIO = 5.0  # large request: in-process handling p50 / orjson.loads p50
TARGET_TYPICAL_P99_MS = 100.0
TARGET_GROWTH = 1.25  # last-window p50 / first-window p50; more means latency grows with calls


def _ok(passed: bool) -> str:
    return "met" if passed else "**missed**"


def _f(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def render(results: dict[str, Any]) -> str:
    lines: list[str] = []
    env = results["environment"]
    lines += [
        "## Benchmark results",
        "",
        f"{env['date']} · {env['cpu']} · nproc {env['nproc']} · Python {env['python']} · "
        f"load average at start {env['load_start']} · at end {env.get('load_end', '?')} · "
        f"mode {env['mode']}",
        "",
    ]
    if "http" in results:
        lines += [
            "### HTTP, with prefetch (service and bare-parse endpoint interleaved)",
            "",
            "| size | hook | resources | KB | n | p50 ms | p95 ms | p99 ms "
            "| bare p50 ms | bare p99 ms | p50 ratio |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in results["http"]:
            s, b = row["service"], row["bare"]
            lines.append(
                f"| {row['size']} | {row['hook']} | {row['resources']} | {row['bytes'] // 1024} "
                f"| {s['n']} | {_f(s['p50_ms'])} | {_f(s['p95_ms'])} | {_f(s['p99_ms'])} "
                f"| {_f(b['p50_ms'])} | {_f(b['p99_ms'])} | {_f(row['ratio_p50'])} |"
            )
        lines.append("")
    if "fallback" in results:
        lines += [
            "### HTTP, FHIR fallback (no prefetch; reads from a loopback FHIR server)",
            "",
            "| size | hook | n | p50 ms | p95 ms | p99 ms |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for row in results["fallback"]:
            s = row["service"]
            lines.append(
                f"| {row['size']} | {row['hook']} | {s['n']} | {_f(s['p50_ms'])} "
                f"| {_f(s['p95_ms'])} | {_f(s['p99_ms'])} |"
            )
        lines.append("")
    lines += [
        "### In-process (no HTTP): handling vs `orjson.loads` of the same body",
        "",
        "| size | hook | KB | cards | n | handle p50 ms | p95 ms | p99 ms | test-client p50 ms "
        "| orjson.loads p50 ms | p50 ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["in_process"]:
        h = row["handle"]
        lines.append(
            f"| {row['size']} | {row['hook']} | {row['bytes'] // 1024} | {row['cards']} | {h['n']} "
            f"| {_f(h['p50_ms'])} | {_f(h['p95_ms'])} | {_f(h['p99_ms'])} "
            f"| {_f(row['test_client']['p50_ms'])} | {_f(row['orjson_loads_p50_ms'], 3)} "
            f"| {_f(row['ratio_p50'])} |"
        )
    lines.append("")
    if "throughput" in results:
        lines += [
            f"### Throughput ({results['throughput_workload']}, HTTP, 2 workers x 4 threads)",
            "",
            "| concurrency | requests | req/s | p50 ms | p99 ms | errors |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for row in results["throughput"]:
            lines.append(
                f"| {row['concurrency']} | {row['requests']} | {_f(row['per_second'], 1)} "
                f"| {_f(row['p50_ms'])} | {_f(row['p99_ms'])} | {row['errors']} |"
            )
        lines.append("")
    if "memory" in results:
        lines += ["### Peak memory per worker (VmHWM)", "",
                  "| server | pid | VmHWM MiB | VmRSS MiB |", "|---|---:|---:|---:|"]
        for row in results["memory"]:
            lines.append(
                f"| {row['server']} | {row['pid']} | {_f(row['VmHWM'] / 1024, 1)} "
                f"| {_f(row['VmRSS'] / 1024, 1)} |"
            )
        lines.append("")
    lines += render_scaling(results["scaling"])
    g = results["growth"]
    lines += [
        f"### Growth over {g['calls']} in-process calls (typical, 20 patients in turn)",
        "",
        f"| window | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|\n"
        f"| first {g['window']} | {_f(g['first']['p50_ms'])} | {_f(g['first']['p95_ms'])} "
        f"| {_f(g['first']['p99_ms'])} |\n"
        f"| last {g['window']} | {_f(g['last']['p50_ms'])} | {_f(g['last']['p95_ms'])} "
        f"| {_f(g['last']['p99_ms'])} |",
        "",
        f"Benchmark process RSS: {g['rss_kib_before'] // 1024} MiB before, "
        f"{g['rss_kib_after'] // 1024} MiB after.",
        "",
    ]
    lines += render_targets(results)
    return "\n".join(lines)


def render_scaling(rows: list[dict[str, float]]) -> list[str]:
    lines = [
        "### Cost by record size (in-process, patient-view)",
        "",
        "| resources | KB | handle p50 ms | orjson.loads p50 ms | ratio | us/resource "
        "| handle p50 (bar) |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    top = max((r["handle_p50_ms"] for r in rows), default=1.0) or 1.0
    for r in rows:
        bar = "#" * max(1, round(40 * r["handle_p50_ms"] / top))
        lines.append(
            f"| {int(r['resources'])} | {int(r['bytes']) // 1024} | {_f(r['handle_p50_ms'])} "
            f"| {_f(r['loads_p50_ms'], 3)} | {_f(r['ratio_p50'])} | {_f(r['us_per_resource'], 1)} "
            f"| `{bar}` |"
        )
    lines.append("")
    return lines


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    out: list[tuple[str, str, bool]] = []
    large_http = [r for r in results.get("http", []) if r["size"] == "large"]
    if large_http:
        worst = max(r["ratio_p50"] for r in large_http)
        out.append((f"large HTTP p50 / bare p50 <= {TARGET_HTTP_RATIO}", _f(worst),
                    worst <= TARGET_HTTP_RATIO))
    large_in = [r for r in results["in_process"] if r["size"] == "large"]
    if large_in:
        worst = max(r["ratio_p50"] for r in large_in)
        out.append((f"large in-process p50 / orjson.loads p50 <= {TARGET_PARSE_RATIO}",
                    _f(worst), worst <= TARGET_PARSE_RATIO))
    typical = [r for r in results.get("http", []) if r["size"] == "typical"]
    if typical:
        worst = max(r["service"]["p99_ms"] for r in typical)
        out.append((f"typical HTTP p99 < {TARGET_TYPICAL_P99_MS:.0f} ms", f"{_f(worst)} ms",
                    worst < TARGET_TYPICAL_P99_MS))
    g = results["growth"]
    ratio = g["last"]["p50_ms"] / g["first"]["p50_ms"]
    out.append((f"no latency growth (last/first p50 <= {TARGET_GROWTH})", _f(ratio),
                ratio <= TARGET_GROWTH))
    return out


def render_targets(results: dict[str, Any]) -> list[str]:
    lines = ["### Targets", "", "| target | measured | |", "|---|---:|---|"]
    for name, value, passed in targets(results):
        lines.append(f"| {name} | {value} | {_ok(passed)} |")
    lines.append("")
    return lines


TARGET_MATRIX_MIN_RESOURCES = 1000  # the matrix targets apply from this record size up
# The step of the service's cost per resource from the smallest curve size to the largest, in
# parses of the same bodies (``matrix.curve``: its µs per resource over orjson.loads' own).
TARGET_CURVE_STEP = 1.5


def render_matrix(results: dict[str, Any]) -> str:
    """The shape matrix: in-process and HTTP tables, the cost-per-resource curve, the targets,
    and any profiles."""
    env = results["environment"]
    lines = [
        "## Record-shape matrix",
        "",
        f"{env['date']} · {env['cpu']} · nproc {env['nproc']} · Python {env['python']} · "
        f"load average at start {env['load_start']} · at end {env.get('load_end', '?')}",
        "",
    ]
    http = {(r["shape"], r["resources"]): r for r in results.get("matrix_http", [])}
    lines += [
        "| shape | resources | KB | cards | in-process p50 / p95 / p99 ms | orjson.loads p50 ms "
        "| ratio | CPU ratio p50 / min | HTTP p50 / p95 / p99 ms | bare HTTP p50 ms | ratio |",
        "|---|---:|---:|---:|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in results["matrix_in_process"]:
        h = r["handle"]
        row = (f"| {r['shape']} | {r['resources']:,} | {r['bytes'] // 1024:,} | {r['cards']} "
               f"| {_f(h['p50_ms'])} / {_f(h['p95_ms'])} / {_f(h['p99_ms'])} "
               f"| {_f(r['orjson_loads_p50_ms'])} | **{_f(r['ratio_p50'])}** "
               f"| {_f(r.get('ratio_cpu_p50', float('nan')))} / "
               f"{_f(r.get('ratio_cpu_min', float('nan')))} ")
        web = http.get((r["shape"], r["resources"]))
        if web is None:
            row += "| | | |"
        else:
            s, b = web["service"], web["bare"]
            row += (f"| {_f(s['p50_ms'])} / {_f(s['p95_ms'])} / {_f(s['p99_ms'])} "
                    f"| {_f(b['p50_ms'])} | **{_f(web['ratio_p50'])}** |")
        lines.append(row)
    lines.append("")
    if results.get("curve"):
        lines += [
            "### Cost per resource (in process, p50 / resources)",
            "",
            "| shape | resources | µs / resource | CPU µs / resource | orjson.loads µs / resource "
            "| vs smallest (wall / CPU) | orjson.loads vs smallest | vs smallest, in parses |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        nan = float("nan")
        for c in results["curve"]:
            lines.append(
                f"| {c['shape']} | {c['resources']:,} | {_f(c['us_per_resource'], 1)} "
                f"| {_f(c.get('cpu_us_per_resource', nan), 1)} "
                f"| {_f(c['loads_us_per_resource'], 2)} | {_f(c['vs_first'])} / "
                f"{_f(c.get('cpu_vs_first', nan))} | {_f(c.get('loads_vs_first', nan))} "
                f"| **{_f(c.get('parses_vs_first', nan))}** |")
        lines.append("")
    lines += render_stages(results)
    lines += ["### Targets", "", "| target | worst cell | measured | |", "|---|---|---:|---|"]
    for name, cell, value, passed in matrix_targets(results):
        lines.append(f"| {name} | {cell} | {value} | {_ok(passed)} |")
    lines.append("")
    for cell, text in results.get("profiles", {}).items():
        lines += [f"### Profile {cell}", "", "```", text.strip(), "```", ""]
    return "\n".join(lines)


def bound_ratio(service_p50_ms: float, bare_p50_ms: float, own_ms: float,
                *free_ms: float) -> float:
    """The HTTP ratio (service p50 / bare p50) with the stages whose in-process p50s are
    ``free_ms`` costing nothing. Both servers parse the body and pay for the connection, so the
    service's own work over HTTP is ``service - bare``; the stages named take the same share
    of it as they take of ``own_ms`` (the in-process call less its parse) in the stage split.
    Shares, not milliseconds: the split is a pass of its own, and a shared host's speed drifts
    between passes by more than a stage costs. A bound for the stages named: no faster version
    of them alone brings the ratio below it."""
    work = service_p50_ms - bare_p50_ms
    if work <= 0:
        return service_p50_ms / bare_p50_ms
    return (service_p50_ms - work * sum(free_ms) / own_ms) / bare_p50_ms


def map_budget_parses(service_p50_ms: float, bare_p50_ms: float, own_ms: float, map_ms: float,
                      parse_ms: float, target: float = TARGET_HTTP_RATIO) -> float:
    """How much the mapping may cost, in parses of the body (the split's parse stage), for the
    HTTP ratio to be at most ``target`` with every other stage as it is. Over HTTP the own work
    (``service - bare``, as in ``bound_ratio``) must shrink by ``service - target * bare``:
    that share of ``own_ms`` comes off the mapping. Negative when even a mapping that cost
    nothing would leave the ratio above ``target``; infinite when the service is no slower
    than the bare endpoint."""
    work = service_p50_ms - bare_p50_ms
    if work <= 0:
        return float("inf")
    cut = own_ms * (service_p50_ms - target * bare_p50_ms) / work
    return (map_ms - cut) / parse_ms


def render_stages(results: dict[str, Any]) -> list[str]:
    """The stage split (``bench.stages``): p50 ms of each stage in process, the service's own
    work (all but the parse) and the mapping in parses, and, where the cell was measured over
    HTTP, the HTTP ratio with the mapping costing nothing, with the mapping and the detectors
    costing nothing (``bound_ratio``), and what the mapping may cost for the target
    (``map_budget_parses``; "none" when not even a free mapping meets it, "any" when the
    service is no slower than the bare endpoint), beside what a reader with none of the
    mapper's checks costs (``bench.floor``)."""
    rows = results.get("stages") or []
    if not rows:
        return []
    http = {(r["shape"], r["resources"]): r for r in results.get("matrix_http", [])}
    lines = [
        "### Where the service's time goes (in process, p50 ms)",
        "",
        "| shape | resources | parse | gather | map | assess | respond | total "
        "| own work, in parses | map, in parses | HTTP ratio | with map at 0 "
        f"| with map and assess at 0 | map may cost, for <= {TARGET_HTTP_RATIO:g}x, in parses "
        "| unchecked reader, in parses |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        t = r["p50_ms"]
        own = t["total"] - t["parse"]
        row = (f"| {r['shape']} | {r['resources']:,} | "
               + " | ".join(_f(t[stage]) for stage in (*STAGES, "total"))
               + f" | {_f(own / t['parse'])} | {_f(t['map'] / t['parse'])} ")
        web = http.get((r["shape"], r["resources"]))
        unchecked = _f(t["unchecked"] / t["parse"]) if "unchecked" in t else ""
        if web is None:
            row += f"| | | | | {unchecked} |"
        else:
            s, b = web["service"]["p50_ms"], web["bare"]["p50_ms"]
            budget = map_budget_parses(s, b, own, t["map"], t["parse"])
            budget_text = "none" if budget < 0 else "any" if budget == float("inf") else _f(budget)
            row += (f"| {_f(web['ratio_p50'])} | {_f(bound_ratio(s, b, own, t['map']))} "
                    f"| {_f(bound_ratio(s, b, own, t['map'], t['assess']))} "
                    f"| {budget_text} | {unchecked} |")
        lines.append(row)
    lines.append("")
    return lines


def matrix_targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(target, worst cell, measured, met) for the three matrix targets."""
    out: list[tuple[str, str, str, bool]] = []
    big = [r for r in results["matrix_in_process"]
           if r["resources"] >= TARGET_MATRIX_MIN_RESOURCES]
    if big:
        worst = max(big, key=lambda r: r["ratio_p50"])
        out.append((f"in-process p50 / orjson.loads p50 <= {TARGET_PARSE_RATIO:g} "
                    f"(>= {TARGET_MATRIX_MIN_RESOURCES:,} resources)",
                    f"{worst['shape']} {worst['resources']:,}", _f(worst["ratio_p50"]),
                    worst["ratio_p50"] <= TARGET_PARSE_RATIO))
    web = [r for r in results.get("matrix_http", [])
           if r["resources"] >= TARGET_MATRIX_MIN_RESOURCES]
    if web:
        worst = max(web, key=lambda r: r["ratio_p50"])
        out.append((f"HTTP p50 / bare p50 <= {TARGET_HTTP_RATIO:g} "
                    f"(>= {TARGET_MATRIX_MIN_RESOURCES:,} resources)",
                    f"{worst['shape']} {worst['resources']:,}", _f(worst["ratio_p50"]),
                    worst["ratio_p50"] <= TARGET_HTTP_RATIO))
    curve = results.get("curve", [])
    if curve:
        last = {}
        for c in curve:
            last[c["shape"]] = c  # rows are by size: the last one is the largest
        worst = max(last.values(), key=lambda c: c["parses_vs_first"])
        out.append((f"cost per resource in parses, largest / smallest curve size <= "
                    f"{TARGET_CURVE_STEP:g}",
                    f"{worst['shape']} {worst['resources']:,}", _f(worst["parses_vs_first"]),
                    worst["parses_vs_first"] <= TARGET_CURVE_STEP))
    return out
