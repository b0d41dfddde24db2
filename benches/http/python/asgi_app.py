"""uvicorn (ASGI), the same five endpoints as wsgi_app.py; keyward through ASGIMiddleware
with close_on_shutdown=True (uvicorn workers end with os._exit: the middleware closes the
store, flushing its usage counts, when the lifespan shutdown completes). Each worker process
imports this module and opens the store."""
from __future__ import annotations

import os
from typing import Any

import keyward
from keyward.middleware import ASGIMiddleware

import lookup

store = keyward.Store(os.environ["KW_BENCH_STORE"], flush_interval_ms=int(os.environ.get("KW_BENCH_FLUSH_MS", "0")))
BODY = b'{"ok":true}'
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]}
DENIED = {"type": "http.response.start", "status": 401,
          "headers": [(b"content-type", b"application/json"), (b"content-length", b"12")]}


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":  # the keyward middleware hooks the shutdown
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(START)
    await send({"type": "http.response.body", "body": BODY})


protected = ASGIMiddleware(hello, store, scopes=["read"], close_on_shutdown=True)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope.get("path", "")
    if scope["type"] == "lifespan" or path == "/keyward":
        return await protected(scope, receive, send)
    if path in ("/sqlite", "/sanctum", "/floor"):
        authorization = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        if not (lookup.floor_authorized(authorization) if path == "/floor"
                else lookup.authorized(authorization, update=path == "/sanctum")):
            await send(DENIED)
            await send({"type": "http.response.body", "body": b'{"ok":false}'})
            return
    await hello(scope, receive, send)
