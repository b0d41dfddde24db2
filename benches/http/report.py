"""Tabulates a run of benches/http/run.sh and writes its JSON file.

A variant's runs.jsonl lines are its slices in one round (run.sh lets the variants take turns
slice by slice); they are summed into one result per round, host and variant: requests,
duration, errors, server CPU and faults added, p50 and p99 the request-weighted means of the
slices' (an approximation: wrk reports percentiles per run). The table ends with each host's
medians over the rounds.

  report.py RUNS.jsonl CHECKS.jsonl OUT.json --meta key=value ...   table on stdout, JSON to OUT
  report.py --line WRK_RESULT_JSON                                  one run, one line

Exit status 1 when a check failed: a non-2xx answer or a socket error, a server that did not
stop gracefully, or usage counts (keyward's, and the sanctum variant's `uses` column) that do
not match the requests wrk saw, allowing one request in flight per connection when wrk stops.
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict

VARIANTS = ["noauth", "sqlite", "sanctum", "keyward", "floor"]
LABEL = {"noauth": "no auth", "sqlite": "SQLite + SHA-256", "sanctum": "lookup + UPDATE", "keyward": "keyward",
         "floor": "in-memory map (floor)"}


def rps(w: dict) -> float:
    return w["requests"] / w["duration_us"] * 1e6


def cpu_us_per_request(r: dict) -> float | None:
    """The server processes' CPU time (user + system, every worker and master, not wrk's)
    per request of the measured run, in microseconds."""
    ticks, hz, requests = r.get("server_cpu_ticks"), r.get("ticks_per_s"), r["wrk"]["requests"]
    if ticks is None or not hz or not requests:
        return None
    return ticks / hz * 1e6 / requests


def merge_slices(lines: list[dict]) -> list[dict]:
    """One run per (round, host, variant): its slices summed (a line without "slice" is a
    run of one slice), in the order of each run's first slice; per-slice figures kept."""
    groups: dict[tuple, list[dict]] = {}
    for r in lines:
        groups.setdefault((r["round"], r["host"], r["variant"]), []).append(r)
    merged = []
    for (round_, host, variant), parts in groups.items():
        ws = [p["wrk"] for p in parts]
        requests = sum(w["requests"] for w in ws)
        weight = lambda key: (sum(w[key] * w["requests"] for w in ws) / requests) if requests else 0
        errors: dict[str, int] = defaultdict(int)
        for w in ws:
            for k, v in w["errors"].items():
                errors[k] += v
        run = {
            "round": round_, "host": host, "variant": variant, "load": parts[-1]["load"],
            "wrk": {"requests": requests, "duration_us": sum(w["duration_us"] for w in ws),
                    "p50_us": weight("p50_us"), "p99_us": weight("p99_us"), "mean_us": weight("mean_us"),
                    "errors": dict(errors)},
            "warmup_requests": sum(p["warmup_requests"] for p in parts),
            "slices": [{"requests_per_s": round(rps(p["wrk"]), 1),
                        "server_cpu_us_per_request": cpu_round(cpu_us_per_request(p))} for p in parts],
        }
        for key in ("server_cpu_ticks", "server_minor_faults", "flush_cpu_ticks"):
            if all(key in p for p in parts):
                run[key] = sum(p[key] for p in parts)
        if "ticks_per_s" in parts[0]:
            run["ticks_per_s"] = parts[0]["ticks_per_s"]
        merged.append(run)
    return merged


def charge_flush(runs: list[dict], results: list[dict]) -> None:
    """Charges keyward's background flush to keyward's requests. The flusher threads' CPU is
    in whichever window was running when a flush was due (often another variant's); for each
    round and host, the keyward result gets `flush_cpu_us_per_keyward_request` (every window's
    flusher CPU / keyward's requests) and `server_cpu_us_over_noauth_with_flush` (keyward's
    CPU per request without the flushes in its window, plus all of them, minus no auth's
    without the flushes in its window). Runs without flusher figures are left alone."""
    hz = {(r["round"], r["host"]): r.get("ticks_per_s") for r in runs}
    flush: dict[tuple, int] = defaultdict(int)
    own: dict[tuple, float] = {}
    for r in runs:
        if "flush_cpu_ticks" not in r or not r.get("ticks_per_s"):
            continue
        key = (r["round"], r["host"])
        flush[key] += r["flush_cpu_ticks"]
        if r["wrk"]["requests"]:
            own[key + (r["variant"],)] = ((r["server_cpu_ticks"] - r["flush_cpu_ticks"]) / r["ticks_per_s"] * 1e6
                                          / r["wrk"]["requests"])
    for res in results:
        key = (res["round"], res["host"])
        if res["variant"] != "keyward" or key not in flush or not res["requests"]:
            continue
        per_request = flush[key] / hz[key] * 1e6 / res["requests"]
        res["flush_cpu_us_per_keyward_request"] = round(per_request, 2)
        base = own.get(key + ("noauth",))
        mine = own.get(key + ("keyward",))
        if base is not None and mine is not None:
            res["server_cpu_us_over_noauth_with_flush"] = round(mine + per_request - base, 1)


def medians(results: list[dict]) -> list[dict]:
    """Per host and variant, over the rounds: the median ratio to no auth (and its range) and
    the median server CPU per request above no auth."""
    by = defaultdict(list)
    for r in results:
        by[(r["host"], r["variant"])].append(r)
    out = []
    for (host, variant), rows in by.items():
        ratios = [r["ratio_to_noauth"] for r in rows if r["ratio_to_noauth"] is not None]
        over = [r["server_cpu_us_over_noauth"] for r in rows if r["server_cpu_us_over_noauth"] is not None]
        flush = [r["flush_cpu_us_per_keyward_request"] for r in rows if "flush_cpu_us_per_keyward_request" in r]
        charged = [r["server_cpu_us_over_noauth_with_flush"] for r in rows if "server_cpu_us_over_noauth_with_flush" in r]
        out.append({"host": host, "variant": variant, "rounds": len(rows),
                    "flush_cpu_us_per_keyward_request_median": round(statistics.median(flush), 2) if flush else None,
                    "server_cpu_us_over_noauth_with_flush_median": round(statistics.median(charged), 1) if charged else None,
                    "ratio_to_noauth_median": round(statistics.median(ratios), 3) if ratios else None,
                    "ratio_to_noauth_min": min(ratios, default=None), "ratio_to_noauth_max": max(ratios, default=None),
                    "server_cpu_us_over_noauth_median": round(statistics.median(over), 1) if over else None})
    return out


def line(w: dict) -> str:
    return (f"{rps(w):.0f} req/s, p50 {w['p50_us'] / 1000:.2f} ms, p99 {w['p99_us'] / 1000:.2f} ms, "
            f"non-2xx {w['errors']['status']}, socket errors "
            f"{sum(v for k, v in w['errors'].items() if k != 'status')}")


def cpu_round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def cpu_delta(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def main(argv: list[str]) -> int:
    if argv[0] == "--line":
        print(line(json.loads(argv[1])))
        return 0
    runs = merge_slices([json.loads(l) for l in open(argv[0]) if l.strip()])
    checks = [json.loads(l) for l in open(argv[1]) if l.strip()]
    out = argv[2]
    meta = dict(kv.split("=", 1) for kv in argv[argv.index("--meta") + 1:]) if "--meta" in argv else {}

    noauth = {(r["round"], r["host"]): rps(r["wrk"]) for r in runs if r["variant"] == "noauth"}
    noauth_cpu = {(r["round"], r["host"]): cpu_us_per_request(r) for r in runs if r["variant"] == "noauth"}
    results, failures = [], []
    for r in runs:
        w = r["wrk"]
        base = noauth.get((r["round"], r["host"]))
        socket_errors = sum(v for k, v in w["errors"].items() if k != "status")
        results.append({
            "round": r["round"], "host": r["host"], "variant": r["variant"],
            "requests_per_s": round(rps(w), 1),
            "ratio_to_noauth": round(rps(w) / base, 3) if base else None,
            "p50_ms": w["p50_us"] / 1000, "p99_ms": w["p99_us"] / 1000,
            "server_cpu_us_per_request": cpu_round(cpu_us_per_request(r)),
            "server_cpu_us_over_noauth": cpu_round(cpu_delta(cpu_us_per_request(r), noauth_cpu.get((r["round"], r["host"])))),
            "server_minor_faults_per_request": (round(r["server_minor_faults"] / w["requests"], 3)
                                                if "server_minor_faults" in r and w["requests"] else None),
            "requests": w["requests"], "non_2xx": w["errors"]["status"], "socket_errors": socket_errors,
            "warmup_requests": r["warmup_requests"], "load_after_run": r["load"],
            "load_1min": float(r["load"].split()[0]), "slices": r["slices"],
        })
        if w["errors"]["status"] or socket_errors:
            failures.append(f"round {r['round']} {r['host']} {r['variant']}: {w['errors']}")
    for c in checks:
        kw_diff = c["keyward_counted"] - c["keyward_wrk_requests"]
        sa_diff = c["sanctum_counted"] - c["sanctum_wrk_requests"]
        c["keyward_ok"] = 0 <= kw_diff <= c["in_flight_max_keyward"] and c["keyward_refused_total"] == 0
        c["sanctum_ok"] = 0 <= sa_diff <= c["in_flight_max_sanctum"]
        if not (c["keyward_ok"] and c["sanctum_ok"] and c["graceful_stop"]):
            failures.append(f"round {c['round']} {c['host']}: counts or stop {c}")

    charge_flush(runs, results)
    summary = medians(results)
    doc = {"meta": meta, "results": results, "summary": summary, "usage_checks": checks, "failures": failures}
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)

    by = defaultdict(list)
    for r in sorted(results, key=lambda r: r["round"]):
        by[(r["host"], r["variant"])].append(r)
    hosts = list(dict.fromkeys(r["host"] for r in runs))
    rounds = max((r["round"] for r in runs), default=0)
    per = " / ".join(f"r{i}" for i in range(1, rounds + 1))
    print(f"\nkeyward end to end: {meta.get('keys', '?')} keys ({meta.get('key_distribution', 'uniform')}), {meta.get('workers', '?')} workers per host, "
          f"wrk {meta.get('wrk_threads', '?')} threads x {meta.get('connections', '?')} connections, "
          f"{meta.get('seconds', '?')} s per variant and round in {meta.get('slices', '1')} slice(s), {rounds} round(s); load average before {meta.get('load_before', '?')}, "
          f"after {meta.get('load_after', '?')} ({meta.get('cpus', '?')} CPUs)\n")
    print(f"| host | variant | req/s ({per}) | x no-auth ({per}) | server CPU µs/req ({per}) | + over no auth ({per}) "
          f"| p50 ms ({per}) | p99 ms ({per}) | minor faults/req ({per}) | load 1 min ({per}) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for host in hosts:
        for v in VARIANTS:
            rows = by.get((host, v))
            if not rows:
                continue
            join = lambda key, fmt: " / ".join(fmt.format(x[key]) if x[key] is not None else "-" for x in rows)
            print(f"| {host} | {LABEL[v]} | {join('requests_per_s', '{:.0f}')} | {join('ratio_to_noauth', '{:.2f}')} "
                  f"| {join('server_cpu_us_per_request', '{:.0f}')} | {join('server_cpu_us_over_noauth', '{:+.0f}')} "
                  f"| {join('p50_ms', '{:.2f}')} | {join('p99_ms', '{:.2f}')} "
                  f"| {join('server_minor_faults_per_request', '{:.3f}')} | {join('load_1min', '{:.1f}')} |")
    if rounds > 1:
        print(f"\nmedians over the {rounds} rounds:\n")
        print("| host | variant | x no-auth, median (range) | server CPU µs/req over no auth, median "
              "| keyward's flush, µs per keyward request | keyward over no auth with its flush, µs |")
        print("|---|---|---:|---:|---:|---:|")
        for host in hosts:
            for v in VARIANTS:
                m = next((m for m in summary if m["host"] == host and m["variant"] == v), None)
                if m is None or v == "noauth" or m["ratio_to_noauth_median"] is None:
                    continue
                cpu = m["server_cpu_us_over_noauth_median"]
                flush = m["flush_cpu_us_per_keyward_request_median"]
                charged = m["server_cpu_us_over_noauth_with_flush_median"]
                print(f"| {host} | {LABEL[v]} | {m['ratio_to_noauth_median']:.2f} ({m['ratio_to_noauth_min']:.2f}–"
                      f"{m['ratio_to_noauth_max']:.2f}) | {'-' if cpu is None else f'{cpu:+.1f}'} "
                      f"| {'' if flush is None else f'{flush:.2f}'} | {'' if charged is None else f'{charged:+.1f}'} |")
    print("\nusage counted after each graceful stop vs requests wrk saw (warm-up included; the count may exceed wrk's by"
          " at most one in-flight request per connection per wrk run):\n")
    print("| round | host | keyward uses | wrk (keyward) | sanctum `uses` | wrk (sanctum) | ok |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for c in checks:
        ok = "yes" if c["keyward_ok"] and c["sanctum_ok"] and c["graceful_stop"] else "**NO**"
        print(f"| {c['round']} | {c['host']} | {c['keyward_counted']} | {c['keyward_wrk_requests']} "
              f"| {c['sanctum_counted']} | {c['sanctum_wrk_requests']} | {ok} |")
    print(f"\nJSON: {out}")
    if failures:
        print("\nFAILED checks:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
