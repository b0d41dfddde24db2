#!/usr/bin/env python3
"""Verify throughput from Python, next to its floor and to what Sanctum/DRF do.

Measures, on the same keys:

- ``loop``: the empty benchmark loop (what every figure below includes);
- ``cffi no-op``: ``lib.kw_abi_version()``, the cheapest call through cffi (ABI mode);
- ``cffi kw_verify``: ``lib.kw_verify(...)`` called directly with a preallocated verdict (the
  binding's floor);
- ``cffi kw_verify_key_ex``: ``lib.kw_verify_key_ex(...)``, the seven-argument hot path with
  ``KW_VERIFY_RATE_FIELDS``, called directly the same way (what ``Store.verify`` calls
  without cost / at / info);
- ``Store.verify``: the Python API, ``store.verify(key).ok``, a new :class:`Verdict` each call;
- ``Store.verify + scope``: ``store.verify(key, ("read",))``;
- ``Store.verify_headers``: ``store.verify_headers({"x-api-key": key})``;
- ``WSGIMiddleware`` / ``ASGIMiddleware``: a request through the middleware (scope ``read``)
  to an app that does nothing, with the environ / scope a server builds (all its headers);
- ``sqlite3 + SHA-256``: ``SELECT ... WHERE token_hash = ?`` on an indexed column of a
  file database holding the same keys, hashed with ``hashlib.sha256`` (what Laravel Sanctum
  and djangorestframework-api-key do per request).

Each figure is the median of ``--repeat`` runs of at least ``--seconds`` each, with the
garbage collector off (as ``timeit`` does); ``best`` is the fastest run and ``cpu ns`` the
median thread CPU time per call (robust on a busy machine). Keys are verified round-robin.

Run against the release library::

    cargo build --release
    KEYWARD_LIB=target/release/libkeyward.so python3 bindings/python/bench.py --keys 1000

With ``--rust-verify-ns`` (the Rust-side cost of one verify, e.g. ``verify_ffi`` of
``cargo bench --bench ffi_reopen``), it also checks the target: a Python verify costs at most
1.5 × (cffi no-op + Rust verify).
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import keyward
from keyward import _ffi
from keyward.middleware import ASGIMiddleware, WSGIMiddleware


def measure(
    run: Callable[[list[Any]], None], make_work: Callable[[int], list[Any]], seconds: float, repeat: int
) -> tuple[float, float, float]:
    """(median wall, best wall, median thread-CPU) nanoseconds per call of ``run(work)``,
    which makes ``len(work)`` calls; a work list is built before each run's clock starts. The
    thread CPU time leaves out the time the thread was not running (a busy machine)."""
    n = 1000
    while True:  # calibrate to about `seconds` per run
        work = make_work(n)
        t0 = time.perf_counter_ns()
        run(work)
        elapsed = time.perf_counter_ns() - t0
        if elapsed >= seconds * 1e9 / 4 or n >= 20_000_000:
            break
        n *= 4
    per_run = max(1000, int(n * seconds * 1e9 / max(elapsed, 1)))
    samples = []
    cpu = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            # Fresh work for every run: a middleware leaves its verdict in the environ /
            # scope, and a request that already carries one is not verified again.
            work = make_work(per_run)
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            run(work)
            samples.append((time.perf_counter_ns() - t0) / per_run)
            cpu.append((time.thread_time_ns() - c0) / per_run)
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(samples), min(samples), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="keyward verify throughput from Python")
    parser.add_argument("--keys", type=int, default=1000, help="keys in the store (default 1000)")
    parser.add_argument("--seconds", type=float, default=0.5, help="length of each run (default 0.5)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (default 5)")
    parser.add_argument("--rust-verify-ns", type=float, default=None,
                        help="Rust-side cost of one verify, to check the 1.5x target")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    ffi, lib = _ffi.ffi, _ffi.lib
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "library": keyward.library_path,
        "library_version": keyward.library_version(),
        "keys": args.keys,
        "figures": {},
    }

    with tempfile.TemporaryDirectory(prefix="keyward-bench-") as tmp:
        path = os.path.join(tmp, "bench.redb")
        store = keyward.Store(path)
        t0 = time.perf_counter()
        keys = [store.create(f"acct_{i % 100}", scopes=["read"]).key for i in range(args.keys)]
        setup_s = time.perf_counter() - t0
        for k in keys:  # warm the verify index
            assert store.verify(k).ok
        # Work lists: the same keys round-robin, in batches as long as a run.
        def batch(n: int) -> list[str]:
            reps = n // len(keys) + 1
            return (keys * reps)[:n]

        # sqlite3 + SHA-256, same keys.
        db = sqlite3.connect(os.path.join(tmp, "sanctum.sqlite3"))
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE personal_access_tokens (id INTEGER PRIMARY KEY, tokenable_id TEXT NOT NULL, "
            "name TEXT, token TEXT NOT NULL UNIQUE, abilities TEXT, last_used_at INTEGER, expires_at INTEGER)"
        )
        db.executemany(
            "INSERT INTO personal_access_tokens (tokenable_id, name, token, abilities) VALUES (?, ?, ?, ?)",
            [(f"acct_{i % 100}", "k", hashlib.sha256(k.encode()).hexdigest(), '["read"]') for i, k in enumerate(keys)],
        )
        db.commit()

        handle = store.handle
        verdict = ffi.new("kw_verdict *")
        NULL = ffi.NULL
        kw_verify = lib.kw_verify
        kw_verify_key_ex = lib.kw_verify_key_ex
        rate_fields = lib.KW_VERIFY_RATE_FIELDS
        kw_abi_version = lib.kw_abi_version
        sha256 = hashlib.sha256
        query = "SELECT id, tokenable_id, abilities, expires_at FROM personal_access_tokens WHERE token = ?"
        cur = db.cursor()
        verify = store.verify
        verify_headers = store.verify_headers
        scope = ("read",)

        def loop(work: list[str]) -> None:
            for _k in work:
                pass

        def noop(work: list[str]) -> None:
            for _k in work:
                kw_abi_version()

        def raw_verify(work: list[bytes]) -> None:
            for k in work:
                kw_verify(handle, k, len(k), NULL, 0, 0, 0, verdict, NULL, 0, NULL)
            if verdict.reason != 0:
                raise AssertionError("refused")

        def raw_verify_key(work: list[bytes]) -> None:
            for k in work:
                kw_verify_key_ex(handle, k, len(k), NULL, 0, rate_fields, verdict)
            if verdict.reason != 0:
                raise AssertionError("refused")

        def api_verify(work: list[str]) -> None:
            for k in work:
                if not verify(k).ok:
                    raise AssertionError("refused")

        def api_verify_scope(work: list[str]) -> None:
            for k in work:
                if not verify(k, scope).ok:
                    raise AssertionError("refused")

        def api_verify_headers(work: list[dict[str, str]]) -> None:
            for h in work:
                if not verify_headers(h).ok:
                    raise AssertionError("refused")

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            pass

        def wsgi_app(environ: dict[str, Any], start: Any) -> list[bytes]:
            return [b"ok"]

        wsgi = WSGIMiddleware(wsgi_app, store, scopes=["read"])

        def api_wsgi(work: list[dict[str, Any]]) -> None:
            for environ in work:
                wsgi(environ, start_response)
                if not environ["keyward.verdict"].ok:
                    raise AssertionError("refused")

        async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
            if not scope["keyward"].ok:
                raise AssertionError("refused")

        asgi = ASGIMiddleware(asgi_app, store, scopes=["read"])

        def api_asgi(work: list[dict[str, Any]]) -> None:
            for scope_ in work:
                try:  # nothing in the path awaits: one send() runs the coroutine to the end
                    asgi(scope_, None, None).send(None)  # type: ignore[arg-type]
                except StopIteration:
                    pass

        def sqlite_lookup(work: list[str]) -> None:
            for k in work:
                if cur.execute(query, (sha256(k.encode()).hexdigest(),)).fetchone() is None:
                    raise AssertionError("not found")

        as_bytes = lambda n: [k.encode() for k in batch(n)]  # noqa: E731
        as_headers = lambda n: [{"x-api-key": k} for k in batch(n)]  # noqa: E731
        # A WSGI environ / ASGI scope as gunicorn / uvicorn build them for `GET /` (made
        # before the clock starts, one per call).
        as_environ = lambda n: [{  # noqa: E731
            "REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.version": (1, 0), "HTTP_HOST": "127.0.0.1", "HTTP_USER_AGENT": "wrk", "HTTP_ACCEPT": "*/*",
            "HTTP_X_API_KEY": k} for k in batch(n)]
        as_scope = lambda n: [{  # noqa: E731
            "type": "http", "method": "GET", "path": "/", "query_string": b"", "state": {},
            "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"wrk"), (b"accept", b"*/*"),
                        (b"x-api-key", k.encode())]} for k in batch(n)]
        plan: list[tuple[str, Callable[[list[Any]], None], Callable[[int], list[Any]]]] = [
            ("loop", loop, batch),
            ("cffi no-op (kw_abi_version)", noop, batch),
            ("cffi kw_verify (direct)", raw_verify, as_bytes),
            ("cffi kw_verify_key_ex (direct)", raw_verify_key, as_bytes),
            ("Store.verify", api_verify, batch),
            ("Store.verify + scope", api_verify_scope, batch),
            ("Store.verify_headers", api_verify_headers, as_headers),
            ("WSGIMiddleware (scope read)", api_wsgi, as_environ),
            ("ASGIMiddleware (scope read)", api_asgi, as_scope),
            ("sqlite3 + SHA-256 lookup", sqlite_lookup, batch),
        ]
        print(f"keyward {results['library_version']} ({keyward.library_path}), Python {results['python']}, "
              f"{args.keys} keys (created in {setup_s:.1f} s), median of {args.repeat} x {args.seconds} s")
        print(f"{'':32} {'ns/call':>9} {'best':>9} {'cpu ns':>9} {'calls/s':>12}")
        for name, fn, make_work in plan:
            median, best, cpu = measure(fn, make_work, args.seconds, args.repeat)
            results["figures"][name] = {"ns_per_call": round(median, 1), "best_ns": round(best, 1),
                                        "thread_cpu_ns": round(cpu, 1), "calls_per_s": round(1e9 / median)}
            print(f"{name:32} {median:9.1f} {best:9.1f} {cpu:9.1f} {1e9 / median:12,.0f}")
        db.close()
        store.close()

    fig = results["figures"]
    noop_ns = fig["cffi no-op (kw_abi_version)"]["ns_per_call"]
    verify_ns = fig["Store.verify"]["ns_per_call"]
    sqlite_ns = fig["sqlite3 + SHA-256 lookup"]["ns_per_call"]
    print(f"\nStore.verify is {sqlite_ns / verify_ns:.1f}x faster than the sqlite3 + SHA-256 lookup")
    status = 0
    if args.rust_verify_ns is not None:
        budget = 1.5 * (noop_ns + args.rust_verify_ns)
        met = verify_ns <= budget
        results["target"] = {"rust_verify_ns": args.rust_verify_ns, "budget_ns": round(budget, 1),
                             "verify_ns": verify_ns, "ratio": round(verify_ns / (noop_ns + args.rust_verify_ns), 2),
                             "met": met}
        print(f"target: Store.verify {verify_ns:.0f} ns <= 1.5 x (no-op {noop_ns:.0f} + Rust verify "
              f"{args.rust_verify_ns:.0f}) = {budget:.0f} ns: {'met' if met else 'NOT met'} "
              f"(ratio {verify_ns / (noop_ns + args.rust_verify_ns):.2f})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
