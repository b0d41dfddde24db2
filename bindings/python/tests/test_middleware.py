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


def test_a_suspended_owner_is_answered_403(store: keyward.Store) -> None:
    created = store.create("acct_suspended")
    app = WSGIMiddleware(wsgi_app, store)
    assert wsgi_call(app, "/", {"x-api-key": created.key})[0] == 200
    store.suspend_owner("acct_suspended")
    status, headers, body = wsgi_call(app, "/", {"x-api-key": created.key})
    assert (status, body["code"], body["ok"]) == (403, "OWNER_SUSPENDED", False)
    assert "www-authenticate" not in {k.lower() for k in headers}
    store.resume_owner("acct_suspended")
    assert wsgi_call(app, "/", {"x-api-key": created.key})[0] == 200


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


def asgi_call(app: Any, path: str, headers: dict[str, str] | list[tuple[str, str]] | None = None,
              method: str = "GET", kind: str = "http") -> list[dict[str, Any]]:
    """One request through an ASGI app; ``headers`` as a dict or a list of pairs (repeats kept)."""
    pairs = list(headers.items()) if isinstance(headers, dict) else headers or []
    scope = {
        "type": kind,
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in pairs],
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


# --- stacked middlewares: one verify per request ------------------------------------------------
#
# Today's single middleware, for the record: a request it accepts counts one use (and spends
# the key's cost on a limited key); a request refused for a missing scope counts no use and one
# refusal, and spends nothing (the library checks scopes before credits).


def counts(store: keyward.Store, key: str) -> tuple[int, int]:
    """(uses, refused) of a key, after flushing the pending counts."""
    store.flush()
    usage = store.usage(keyward.parse_key(key).id or "")
    return usage.uses, usage.refused


def wsgi_stack(store: keyward.Store, *scope_rules: Any) -> Any:
    """WSGI middlewares nested around wsgi_app; the first rule is the outermost."""
    app: Any = wsgi_app
    for rule in reversed(scope_rules):
        app = WSGIMiddleware(app, store, scopes=rule)
    return app


def asgi_stack(store: keyward.Store, *scope_rules: Any) -> Any:
    app: Any = asgi_app
    for rule in reversed(scope_rules):
        app = ASGIMiddleware(app, store, scopes=rule)
    return app


def asgi_status(app: Any, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    sent = asgi_call(app, path, headers)
    return sent[0]["status"], json.loads(sent[1]["body"])


def wsgi_status(app: Any, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    status, _, body = wsgi_call(app, path, headers)
    return status, body


CALLS = {"wsgi": (wsgi_stack, wsgi_status), "asgi": (asgi_stack, asgi_status)}


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_stacked_middlewares_count_one_use_per_request(store: keyward.Store, keys: dict[str, str], kind: str) -> None:
    stack, call = CALLS[kind]
    # App-wide (any key), a route table, and a route that needs "read" again.
    app = stack(store, None, ROUTES, ["read"])
    for _ in range(5):
        status, body = call(app, "/items", {"x-api-key": keys["admin"]})
        assert (status, body["owner"]) == (200, "acct_a")
    assert counts(store, keys["admin"]) == (5, 0)


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_stacked_middlewares_spend_one_credit_per_request(store: keyward.Store, kind: str) -> None:
    stack, call = CALLS[kind]
    limited = store.create("acct_l", scopes=["read", "admin"], credits=keyward.Credits(remaining=5))
    app = stack(store, None, ["read"], ["admin"])
    answers = [call(app, "/", {"x-api-key": limited.key}) for _ in range(6)]
    assert [status for status, _ in answers] == [200] * 5 + [403]
    assert answers[5][1]["code"] == "USAGE_EXCEEDED"
    balance = store.credits(limited.id)
    assert balance is not None and balance.remaining == 0
    assert counts(store, limited.key) == (5, 1)  # the 6th: refused once, by the outer layer


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_stacked_route_with_a_missing_scope(store: keyward.Store, keys: dict[str, str], kind: str) -> None:
    stack, call = CALLS[kind]
    # The same route behind one middleware: 403, no use, one refusal (as before this change).
    single_status, single_body = call(stack(store, ["admin"]), "/admin", {"x-api-key": keys["read"]})
    assert (single_status, single_body["code"]) == (403, "INSUFFICIENT_SCOPE")
    assert counts(store, keys["read"]) == (0, 1)
    # Stacked: the outer layer accepted the key (one use, as it would alone); the inner one
    # refuses it with the same answer and counts nothing more.
    status, body = call(stack(store, None, ["admin"]), "/admin", {"x-api-key": keys["read"]})
    assert (status, body) == (single_status, single_body)
    assert counts(store, keys["read"]) == (1, 1)
    # A key that has the scope goes through every layer and counts one use.
    assert call(stack(store, None, ["admin"]), "/admin", {"x-api-key": keys["admin"]})[0] == 200
    assert counts(store, keys["admin"]) == (1, 0)


def test_stacked_refusal_headers_match_the_single_middleware(store: keyward.Store, keys: dict[str, str]) -> None:
    single = wsgi_call(wsgi_stack(store, ["admin"]), "/x", {"x-api-key": keys["read"]})
    stacked = wsgi_call(wsgi_stack(store, ["read"], ["admin"]), "/x", {"x-api-key": keys["read"]})
    assert stacked == single and single[0] == 403
    assert "insufficient_scope" in stacked[1]["www-authenticate"]


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_stacked_refused_request_stops_at_the_first_middleware(store: keyward.Store, keys: dict[str, str], kind: str) -> None:
    stack, call = CALLS[kind]
    app = stack(store, None, ["read"], ["admin"])
    status, body = call(app, "/", {"x-api-key": keys["revoked"]})
    assert (status, body["code"]) == (401, "REVOKED")
    assert counts(store, keys["revoked"]) == (0, 1)
    status, body = call(app, "/", {})
    assert (status, body["code"]) == (401, "CREDENTIAL_MISSING")


def test_stacked_key_scopes_are_read_once_per_request(store: keyward.Store, keys: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real_get = keyward.Store.get

    def counting_get(self: keyward.Store, key_id: str) -> keyward.KeyInfo:
        reads.append(key_id)
        return real_get(self, key_id)

    monkeypatch.setattr(keyward.Store, "get", counting_get)
    # Outer: any key; then "read" (not covered: one read of the record); then "admin"
    # (not covered either: the record read above is reused); then "read" again (covered).
    app = wsgi_stack(store, None, ["read"], ["admin"], ["read"])
    assert wsgi_status(app, "/", {"x-api-key": keys["admin"]})[0] == 200
    assert len(reads) == 1
    # Scopes the outer layer already checked need no record at all.
    reads.clear()
    assert wsgi_status(wsgi_stack(store, ["read"], ["read"]), "/", {"x-api-key": keys["admin"]})[0] == 200
    assert reads == []
    assert counts(store, keys["admin"]) == (2, 0)


def test_stacked_middlewares_on_another_store_verify_again(store: keyward.Store, keys: dict[str, str],
                                                         tmp_path: Any) -> None:
    # A verdict from one store proves nothing to a middleware of another store: the inner
    # layer verifies the key itself, and the other store does not know it.
    with keyward.Store(str(tmp_path / "other.redb")) as other:
        app = WSGIMiddleware(WSGIMiddleware(wsgi_app, other), store)
        status, body = wsgi_status(app, "/", {"x-api-key": keys["read"]})
        assert (status, body["code"]) == (401, "NOT_FOUND")
    assert counts(store, keys["read"]) == (1, 0)  # the outer layer's use
    # A second handle onto the same store is the same store: its verdict is reused.
    with keyward.Store(store.path) as same:
        app = WSGIMiddleware(WSGIMiddleware(wsgi_app, same), store)
        assert wsgi_status(app, "/", {"x-api-key": keys["read"]})[0] == 200
    assert counts(store, keys["read"]) == (2, 0)


# --- rate limits (issue 19) ----------------------------------------------------------------------


def test_rate_limited_keys_get_429_and_the_ietf_fields(store: keyward.Store) -> None:
    limited = store.create("acct_rl", rate_limit=keyward.RateLimit(rate=2, period_ms=60_000, burst=2))
    assert limited.info.rate_limit == keyward.RateLimit(rate=2, period_ms=60_000, burst=2)
    plain = store.create("acct_plain")
    app = WSGIMiddleware(wsgi_app, store)
    status, headers, _ = wsgi_call(app, "/x", {"x-api-key": limited.key})
    assert status == 200
    assert headers["ratelimit-policy"] == '"key";q=2;w=60'
    assert headers["ratelimit"] == '"key";r=1;t=30'
    assert "retry-after" not in headers
    assert wsgi_call(app, "/x", {"x-api-key": limited.key})[0] == 200
    status, headers, body = wsgi_call(app, "/x", {"x-api-key": limited.key})
    assert (status, body["code"]) == (429, "RATE_LIMITED")
    assert headers["ratelimit"].startswith('"key";r=0;t=')
    assert 1 <= int(headers["retry-after"]) <= 30
    # Keys without a limit get none of the fields.
    status, headers, _ = wsgi_call(app, "/x", {"x-api-key": plain.key})
    assert status == 200 and "ratelimit" not in headers
    # ASGI: on the way through and on the refusal.
    store.set_owner_rate_limit("acct_plain", keyward.RateLimit(rate=1, period_ms=1000, burst=1))
    assert store.owner_rate_limit("acct_plain") == keyward.RateLimit(rate=1, period_ms=1000, burst=1)
    asgi = ASGIMiddleware(asgi_app, store)
    sent = asgi_call(asgi, "/x", {"x-api-key": plain.key})
    assert sent[0]["status"] == 200
    assert (b"ratelimit-policy", b'"owner";q=1;w=1') in [(k.lower(), v) for k, v in sent[0]["headers"]]
    sent = asgi_call(asgi, "/x", {"x-api-key": plain.key})
    assert sent[0]["status"] == 429
    names = [k.decode().lower() for k, _ in sent[0]["headers"]]
    assert "retry-after" in names and "ratelimit" in names
    store.set_owner_rate_limit("acct_plain", None)
    assert store.owner_rate_limit("acct_plain") is None


def test_rate_limit_verdicts_update_and_dry_run(store: keyward.Store) -> None:
    created = store.create("acct_rv", rate_limit=keyward.RateLimit(rate=1, period_ms=3_600_000))
    assert store.verify(created.key, dry_run=True).ok
    v = store.verify(created.key)
    assert v.ok and v.rate is not None and v.rate.scope == keyward.RateScope.KEY and v.rate.remaining == 0
    refused = store.verify(created.key)
    assert refused.reason == keyward.Reason.RATE_LIMITED and refused.http_status == 429
    assert refused.code == "RATE_LIMITED" and 0 < (refused.retry_after_ms or 0) <= 3_600_000
    info = store.update(created.info.id, name="renamed", rate_limit=None)
    assert info.name == "renamed" and info.rate_limit is None
    assert store.verify(created.key).ok
    with pytest.raises(keyward.ArgumentError):
        store.set_owner_rate_limit("acct_rv", keyward.RateLimit(rate=0))
    with pytest.raises(TypeError):
        store.create("acct_rv", rate_limit=(1, 2, 3))  # type: ignore[arg-type]
