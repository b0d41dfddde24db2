"""The ASGI and WSGI middlewares, driven in-process (the real-server test is test_server.py)."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import keyward
from keyward.middleware import ASGIMiddleware, Guard, WSGIMiddleware, get_verdict


@pytest.fixture
def keys(store: keyward.Store) -> dict[str, str]:
    reader = store.create("acct_r", scopes=["read"])
    admin = store.create("acct_a", scopes=["read", "admin"])
    revoked = store.create("acct_x", scopes=["read"])
    store.revoke(revoked.id)
    return {"read": reader.key, "admin": admin.key, "revoked": revoked.key}


ROUTES = {"/admin": ["admin"], "/public": None, "POST /items": ["write"], "/items": ["read"]}


# --- WSGI ---------------------------------------------------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    verdict = get_verdict(environ)
    body = json.dumps({"owner": verdict.owner if verdict else None}).encode()
    start_response("200 OK", [("content-type", "application/json")])
    return [body]


def wsgi_call(app: Any, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.version": (1, 0)}
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        seen["status"] = int(status.split()[0])
        seen["headers"] = {k.lower(): v for k, v in response_headers}

    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], json.loads(body)


def test_wsgi(store: keyward.Store, keys: dict[str, str]) -> None:
    app = WSGIMiddleware(wsgi_app, store, scopes=ROUTES)
    assert wsgi_call(app, "/items", {"x-api-key": keys["read"]}) == (200, {"content-type": "application/json"}, {"owner": "acct_r"})
    status, headers, body = wsgi_call(app, "/items")
    assert status == 401 and body == {"ok": False, "code": "CREDENTIAL_MISSING", "message": body["message"]}
    assert headers["content-type"] == "application/json" and headers["www-authenticate"].startswith("Bearer")
    assert int(headers["content-length"]) == len(json.dumps(body).encode())
    status, _, body = wsgi_call(app, "/items", {"authorization": "Bearer " + keys["revoked"]})
    assert (status, body["code"]) == (401, "REVOKED")
    status, headers, body = wsgi_call(app, "/admin/users", {"x-api-key": keys["read"]})
    assert (status, body["code"], body["ok"]) == (403, "INSUFFICIENT_SCOPE", False)
    assert "insufficient_scope" in headers["www-authenticate"]
    assert wsgi_call(app, "/admin/users", {"x-api-key": keys["admin"]})[0] == 200
    assert wsgi_call(app, "/administrator", {"x-api-key": keys["read"]})[0] == 200  # not under /admin
    assert wsgi_call(app, "/public/x") == (200, {"content-type": "application/json"}, {"owner": None})
    assert wsgi_call(app, "/items", {"x-api-key": keys["admin"]}, method="POST")[2]["code"] == "INSUFFICIENT_SCOPE"
    assert wsgi_call(app, "/other", {"x-api-key": "garbage"})[2]["code"] == "MALFORMED"
    assert wsgi_call(app, "/other", {"authorization": "Digest x"})[2]["code"] == "UNSUPPORTED_SCHEME"
    # Messages are the library's static texts: no key material in any response.
    for k in keys.values():
        assert k not in json.dumps(wsgi_call(app, "/admin", {"x-api-key": k})[2])


def test_wsgi_fixed_scopes_and_callable_rule(store: keyward.Store, keys: dict[str, str]) -> None:
    app = WSGIMiddleware(wsgi_app, store, scopes=["admin"])
    assert wsgi_call(app, "/x", {"x-api-key": keys["read"]})[0] == 403
    assert wsgi_call(app, "/x", {"x-api-key": keys["admin"]})[0] == 200

    def rule(method: str, path: str) -> list[str] | None:
        return None if path == "/health" else (["admin"] if method == "DELETE" else [])

    app = WSGIMiddleware(wsgi_app, store, scopes=rule)
    assert wsgi_call(app, "/health")[0] == 200
    assert wsgi_call(app, "/x", {"x-api-key": keys["read"]})[0] == 200
    assert wsgi_call(app, "/x", {"x-api-key": keys["read"]}, method="DELETE")[0] == 403
    assert wsgi_call(app, "/x")[0] == 401


def test_guard_rules() -> None:
    with pytest.raises(TypeError):
        Guard("not a store")  # type: ignore[arg-type]


def test_guard_route_table(store: keyward.Store) -> None:
    g = Guard(store, {"/": None, "/api": ["read"], "/api/admin/": ["admin"], "DELETE /api": ["write"]})
    assert g.required_scopes("GET", "/") is None
    assert g.required_scopes("GET", "/docs") is None
    assert g.required_scopes("GET", "/api") == ("read",)
    assert g.required_scopes("GET", "/api/x") == ("read",)
    assert g.required_scopes("DELETE", "/api/x") == ("write",)
    assert g.required_scopes("GET", "/api/admin") == ("admin",)
    assert g.required_scopes("GET", "/api/admin/x") == ("admin",)
    assert g.required_scopes("GET", "/apix") is None
    assert Guard(store, {"/api": ["read"]}).required_scopes("GET", "/other") == ()
    with pytest.raises(ValueError):
        Guard(store, {"api": ["read"]})
    with pytest.raises(TypeError):
        Guard(store, {"/api": "read"})
    with pytest.raises(TypeError):
        Guard(store, "read")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Guard(store, {"/x": [1]})  # type: ignore[list-item]


def test_guard_check_outcomes(store: keyward.Store, keys: dict[str, str]) -> None:
    g = Guard(store, {"/admin": ["admin"]})
    ok = g.check({"x-api-key": keys["read"]}, "GET", "/x")
    assert ok.ok and ok.verdict is not None and ok.verdict.owner == "acct_r"
    refused = g.check({"x-api-key": keys["read"]}, "GET", "/admin")
    assert (refused.status, refused.code, refused.ok) == (403, "INSUFFICIENT_SCOPE", False)
    assert json.loads(refused.body()) == {"ok": False, "code": "INSUFFICIENT_SCOPE", "message": refused.message}


def test_credits_through_the_middleware(store: keyward.Store) -> None:
    limited = store.create("acct", credits=keyward.Credits(remaining=2))
    app = WSGIMiddleware(wsgi_app, store, cost=1)
    assert [wsgi_call(app, "/", {"x-api-key": limited.key})[0] for _ in range(3)] == [200, 200, 403]
    assert wsgi_call(app, "/", {"x-api-key": limited.key})[2]["code"] == "USAGE_EXCEEDED"


# --- ASGI ---------------------------------------------------------------------------------------


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await send({"type": "lifespan.startup.complete"})
        return
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept"})
        return
    verdict = get_verdict(scope)
    assert scope["state"]["keyward"] is verdict
    body = json.dumps({"owner": verdict.owner if verdict else None, "state": sorted(scope["state"])}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def public_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert "keyward" not in scope
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def asgi_call(app: Any, path: str, headers: dict[str, str] | None = None, method: str = "GET",
              kind: str = "http") -> list[dict[str, Any]]:
    scope = {
        "type": kind,
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
        "state": {"db": "x"},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_asgi(store: keyward.Store, keys: dict[str, str]) -> None:
    app = ASGIMiddleware(asgi_app, store, scopes=ROUTES)
    sent = asgi_call(app, "/items", {"authorization": "Bearer " + keys["read"]})
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"]) == {"owner": "acct_r", "state": ["db", "keyward"]}
    for path, headers, status, code in [
        ("/items", {}, 401, "CREDENTIAL_MISSING"),
        ("/items", {"x-api-key": keys["revoked"]}, 401, "REVOKED"),
        ("/admin", {"x-api-key": keys["read"]}, 403, "INSUFFICIENT_SCOPE"),
        ("/items", {"x-api-token-id": "3hZ0bq9XcV1mT7pK"}, 401, "HALF_PAIR"),
    ]:
        sent = asgi_call(app, path, headers)
        assert sent[0]["status"] == status
        assert (b"content-type", b"application/json") in sent[0]["headers"]
        assert json.loads(sent[1]["body"])["code"] == code
    assert asgi_call(ASGIMiddleware(public_app, store, scopes={"/public": None}), "/public")[0]["status"] == 200


def test_asgi_websocket_and_lifespan(store: keyward.Store, keys: dict[str, str]) -> None:
    app = ASGIMiddleware(asgi_app, store)
    assert asgi_call(app, "/ws", kind="websocket") == [{"type": "websocket.close", "code": 1008, "reason": "CREDENTIAL_MISSING"}]
    assert asgi_call(app, "/ws", {"x-api-key": keys["read"]}, kind="websocket") == [{"type": "websocket.accept"}]
    assert asgi_call(app, "/", kind="lifespan") == [{"type": "lifespan.startup.complete"}]


def test_middleware_counts_usage(store: keyward.Store, keys: dict[str, str]) -> None:
    app = ASGIMiddleware(asgi_app, store)
    for _ in range(7):
        asgi_call(app, "/", {"x-api-key": keys["admin"]})
    key_id = keyward.parse_key(keys["admin"]).id or ""
    assert store.usage(key_id).uses == 7
