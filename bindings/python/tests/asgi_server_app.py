"""The ASGI app test_server.py serves with uvicorn (4 worker processes): one protected
endpoint behind keyward's ASGI middleware, store path from $KEYWARD_TEST_STORE. Each worker
imports this module and opens the store; the middleware closes it at lifespan shutdown."""
from __future__ import annotations

import json
import os
from typing import Any

import keyward
from keyward.middleware import ASGIMiddleware, get_verdict

store = keyward.Store(os.environ["KEYWARD_TEST_STORE"])


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    verdict = get_verdict(scope)
    body = json.dumps({
        "ok": True,
        "owner": verdict.owner if verdict else None,
        "key_id": verdict.key_id if verdict else None,
        "pid": os.getpid(),
    }).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


app = ASGIMiddleware(hello, store, scopes={"/data": ["read"], "/health": None}, close_on_shutdown=True)
