"""gunicorn (WSGI): one trivial JSON endpoint behind each variant.

  /noauth    no authentication
  /sqlite    SQLite + SHA-256 lookup            (lookup.py)
  /sanctum   lookup + UPDATE last_used_at, uses (lookup.py)
  /floor     the key looked up in a dict of every key (lookup.py): no hashing, no counting
  /keyward   keyward's WSGIMiddleware, scope "read", as README.md ("Use from Python") shows

The store is opened at import (in the master with --preload; each worker reopens it after
the fork) and closed by gunicorn_conf.py's worker_exit hook, which flushes the usage counts.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable

import keyward
from keyward.middleware import WSGIMiddleware

import lookup

store = keyward.Store(os.environ["KW_BENCH_STORE"], flush_interval_ms=int(os.environ.get("KW_BENCH_FLUSH_MS", "0")))
BODY = b'{"ok":true}'
HEADERS = [("content-type", "application/json"), ("content-length", str(len(BODY)))]
DENIED = b'{"ok":false}'


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]


def denied(start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("401 Unauthorized", [("content-type", "application/json"), ("content-length", str(len(DENIED)))])
    return [DENIED]


protected = WSGIMiddleware(hello, store, scopes=["read"])


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/keyward":
        return protected(environ, start_response)
    if path in ("/sqlite", "/sanctum"):
        if not lookup.authorized(environ.get("HTTP_AUTHORIZATION"), update=path == "/sanctum"):
            return denied(start_response)
    elif path == "/floor" and not lookup.floor_authorized(environ.get("HTTP_AUTHORIZATION")):
        return denied(start_response)
    return hello(environ, start_response)
