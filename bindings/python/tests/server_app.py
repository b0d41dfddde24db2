"""The WSGI app test_server.py serves with gunicorn (4 workers): one protected endpoint
behind keyward's middleware. The store path comes from $KEYWARD_TEST_STORE.

The store is opened at import: in the gunicorn master with --preload (each forked worker
then reopens it on first use), or in each worker without it. gunicorn_conf.py closes it when
a worker exits, which flushes that worker's usage counts.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable

import keyward
from keyward.middleware import WSGIMiddleware, get_verdict

store = keyward.Store(
    os.environ["KEYWARD_TEST_STORE"],
    flush_interval_ms=int(os.environ.get("KEYWARD_TEST_FLUSH_MS", "0")),
)

if os.environ.get("KEYWARD_TEST_BUSY_KEY"):
    # test_server.py's recycling test: a thread of the gunicorn master (--preload) verifies
    # without pause, so workers are forked while it is inside keyward.
    import threading

    def _busy(key: str = os.environ["KEYWARD_TEST_BUSY_KEY"]) -> None:
        try:
            while True:
                store.verify(key)
        except keyward.StoreClosedError:
            return  # the master is exiting: the binding closed its stores

    threading.Thread(target=_busy, daemon=True).start()


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    verdict = get_verdict(environ)
    body = json.dumps({
        "ok": True,
        "owner": verdict.owner if verdict else None,
        "key_id": verdict.key_id if verdict else None,
        "pid": os.getpid(),
    }).encode()
    start_response("200 OK", [("content-type", "application/json"), ("content-length", str(len(body)))])
    return [body]


app = WSGIMiddleware(hello, store, scopes={"/data": ["read"], "/health": None})
