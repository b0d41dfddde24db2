"""keyward._kw_fast: the middlewares' usual request judged in C answers as the Python path does.

Every request below goes through two middlewares with the same settings: one with its
compiled judges (one per scope list, wrapped in a recorder), one with them turned off
(``guard._use_fast``: the Python path). Each path gets its own keys, made alike, so both
start from the same state; the answers are compared (status, headers, body, what the
application saw) and so are the uses and refusals each key counted. The recorder shows, per request, what the C path did:
``carrier`` (accepted, passed on), ``verdict`` (verified, finished by the Python code),
``error`` (a credential error) or ``left`` (nothing verified: the Python path took it).

Route tables get one compiled judge per distinct scope list; a public route never reaches one.

The suite's installed package is in API mode with the module built (scripts/test-python.sh
checks the wheel carries it, test_api.py that it loads); without it these tests are
skipped, and ABI mode runs the middleware tests through the Python path alone
(test_ffi_api_mode.py).
"""
from __future__ import annotations

import base64
import copy
import gc
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

import keyward
from keyward import _ffi
from keyward.middleware import ASGIMiddleware, Verified, WSGIMiddleware, get_verdict
from test_middleware import asgi_app, asgi_call, wsgi_app, wsgi_call

pytestmark = pytest.mark.skipif(_ffi.fast is None, reason="keyward._kw_fast is not built (ABI mode)")


class Recorder:
    """Calls compiled judges and notes what they did with each request."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def wrap(self, judge: Any) -> Any:
        recorder = self

        class Recorded:
            def wsgi(self, environ: Any) -> Any:
                return recorder._record(judge.wsgi, environ)

            def asgi(self, scope: Any) -> Any:
                return recorder._record(judge.asgi, scope)

        return Recorded()

    def _record(self, call: Callable[[Any], Any], carrier: Any) -> Any:
        try:
            judged = call(carrier)
        except keyward.CredentialError:
            self.seen.append("error")
            raise
        self.seen.append("left" if judged is None else "verdict" if type(judged) is keyward.Verdict else "carrier")
        return judged


def pair(kind: str, store: keyward.Store, inner: Any = None, required: tuple[tuple[str, ...], ...] = (("read",),),
         **options: Any) -> tuple[Any, Any, Recorder]:
    """(middleware through C, its judges of the ``required`` scope lists recorded; the same
    middleware on the Python path; the recorder)."""
    make = WSGIMiddleware if kind == "wsgi" else ASGIMiddleware
    inner = inner or (wsgi_app if kind == "wsgi" else asgi_app)
    fast, slow = make(inner, store, **options), make(inner, store, **options)  # type: ignore[operator]
    recorder = Recorder()
    for scopes in required:
        judge = fast.guard._new_judge(scopes)
        assert judge is not None, "API mode with keyward._kw_fast makes compiled judges"
        fast.guard._judges[scopes] = recorder.wrap(judge)
    fixed = fast.guard._fixed
    fast._judge = None if fixed is None else fast.guard._judges[fixed]  # the middleware's own call
    slow.guard._use_fast = False
    slow._judge = None
    return fast, slow, recorder


def direct(kind: str, store: keyward.Store, inner: Any = None, **options: Any) -> Any:
    """The middleware as users make it: its own call straight into the compiled judge
    (nothing recorded)."""
    make = WSGIMiddleware if kind == "wsgi" else ASGIMiddleware
    app = make(inner or (wsgi_app if kind == "wsgi" else asgi_app), store, **options)  # type: ignore[operator]
    assert type(app._judge) is _ffi.fast.Judge
    return app


def answer(kind: str, app: Any, headers: list[tuple[str, str]]) -> Any:
    """What a client and the application see: status, response headers, body."""
    if kind == "wsgi":
        status, response_headers, body = wsgi_call(app, "/items", dict(headers))
        return status, sorted(response_headers.items()), body
    sent = asgi_call(app, "/items", headers)
    return sent[0]["status"], sorted(sent[0]["headers"]), sent[1]["body"]


def usage(store: keyward.Store, key: str) -> tuple[int, int]:
    store.flush()
    u = store.usage(keyward.parse_key(key).id or "")
    return u.uses, u.refused


def basic(key: str) -> str:
    """``Authorization: Basic`` with the key as the user name."""
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


# Each case: a key to make (create options; "then": revoke or delete it), the request's
# headers as a function of the key, how many times to send it, and what the C path must do
# each time (None: see the test).
CASES: dict[str, tuple[dict[str, Any], Callable[[str], list[tuple[str, str]]], int, list[str]]] = {
    "x-api-key": ({"scopes": ["read"]}, lambda k: [("x-api-key", k)], 2, ["carrier"] * 2),
    "bearer": ({"scopes": ["read"]}, lambda k: [("authorization", "Bearer " + k)], 1, ["carrier"]),
    "basic": ({"scopes": ["read"]}, lambda k: [("authorization", basic(k))], 1, ["carrier"]),
    "revoked": ({"scopes": ["read"], "then": "revoke"}, lambda k: [("x-api-key", k)], 1, ["verdict"]),
    "deleted": ({"scopes": ["read"], "then": "delete"}, lambda k: [("x-api-key", k)], 1, ["verdict"]),
    "missing scope": ({"scopes": ["admin"]}, lambda k: [("x-api-key", k)], 1, ["verdict"]),
    "bad checksum": ({"scopes": ["read"]}, lambda k: [("x-api-key", k[:-6] + "AAAAAA")], 1, ["verdict"]),
    "malformed": ({"scopes": ["read"]}, lambda k: [("x-api-key", "not-a-key")], 1, ["verdict"]),
    "bearer without a key": ({"scopes": ["read"]}, lambda k: [("authorization", "Bearer")], 1, ["error"]),
    "no credential": ({"scopes": ["read"]}, lambda k: [], 1, ["error"]),
    "two credentials": ({"scopes": ["read"]}, lambda k: [("x-api-key", k), ("authorization", "Bearer " + k)], 1, ["left"]),
    "same header twice": ({"scopes": ["read"]}, lambda k: [("x-api-key", k), ("x-api-key", k)], 1, None),  # type: ignore[dict-item]
    "half a token pair": ({"scopes": ["read"]}, lambda k: [("x-api-key", k), ("x-api-token-id", "abc")], 1, ["left"]),
    "non-ascii": ({"scopes": ["read"]}, lambda k: [("x-api-key", k + "é")], 1, None),  # type: ignore[dict-item]
    "credits": ({"scopes": ["read"], "credits": keyward.Credits(2)}, lambda k: [("x-api-key", k)], 3,
                ["carrier", "carrier", "verdict"]),
    "rate limited": ({"scopes": ["read"], "rate_limit": keyward.RateLimit(rate=2, period_ms=3_600_000, burst=2)},
                     lambda k: [("x-api-key", k)], 3, ["verdict"] * 3),
}


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_c_path_answers_as_the_python_path(store: keyward.Store, kind: str, case: str) -> None:
    options, headers_for, times, expected = CASES[case]
    options = dict(options)
    then = options.pop("then", None)
    fast, slow, recorder = pair(kind, store, scopes=["read"])
    apps = (fast, slow, direct(kind, store, scopes=["read"]))
    keys = []
    for _ in apps:
        created = store.create("acct_fast", **options)
        if then is not None:
            getattr(store, then)(created.id)
        keys.append(created.key)
    answers = []
    for app, key in zip(apps, keys):
        answers.append([answer(kind, app, headers_for(key)) for _ in range(times)])
    assert answers[0] == answers[1] == answers[2]
    if then != "delete":  # a deleted key has no usage to read
        assert usage(store, keys[0]) == usage(store, keys[1]) == usage(store, keys[2])
    if expected is None:  # depends on the server's form: a WSGI str is left, ASGI bytes are not
        expected = {
            ("wsgi", "same header twice"): ["carrier"],  # an environ holds one value per name
            ("asgi", "same header twice"): ["left"],
            ("wsgi", "non-ascii"): ["left"], ("asgi", "non-ascii"): ["verdict"],
        }[(kind, case)]
    assert recorder.seen == expected


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_the_verdict_made_in_c_reads_as_the_python_one(store: keyward.Store, kind: str) -> None:
    created = store.create("acct_fields", scopes=["read", "admin"], env="live", expires_at=4_102_444_800_000,
                           credits=keyward.Credits(10))
    seen: list[Any] = []

    def keep_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(get_verdict(environ))
        return wsgi_app(environ, start_response)

    async def keep_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(get_verdict(scope))
        await asgi_app(scope, receive, send)

    fast, slow, recorder = pair(kind, store, keep_wsgi if kind == "wsgi" else keep_asgi, scopes=["read"])
    for app in (fast, slow):
        answer(kind, app, [("x-api-key", created.key)])
    assert recorder.seen == ["carrier"]
    names = [n for n, v in vars(keyward.Verdict).items() if isinstance(v, property)]
    assert {"key_id", "owner", "env", "expires_at", "limited", "rate"} <= set(names)
    c_made, python_made = seen
    assert type(c_made) is type(python_made) is keyward.Verdict
    for name in names + ["ok", "reason", "http_status"]:
        assert getattr(c_made, name) == getattr(python_made, name), name
    assert c_made.key_id == created.id and c_made.env == "live"


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_closed_store_raises_the_same_error(store_path: str, kind: str) -> None:
    store = keyward.Store(store_path)
    key = store.create("acct_closed", scopes=["read"]).key
    fast, slow, recorder = pair(kind, store, scopes=["read"])
    unrecorded = direct(kind, store, scopes=["read"])
    store.close()
    errors = []
    for app in (fast, slow, unrecorded):
        with pytest.raises(keyward.KeywardError) as caught:
            answer(kind, app, [("x-api-key", key)])
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1] == errors[2] and errors[0][0] is keyward.StoreClosedError
    assert recorder.seen == []  # raised from inside the judge: not a credential error, not recorded


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_route_tables_get_a_judge_per_scope_list(store: keyward.Store, kind: str) -> None:
    routes = {"/admin": ["admin"], "/public": None, "POST /items": ["write"], "/items": ["read"]}
    required = (("admin",), ("write",), ("read",), ())

    def owner_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        verdict = get_verdict(environ)
        start_response("200 OK", [])
        return [json.dumps(verdict.owner if verdict else None).encode()]

    async def owner_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        verdict = get_verdict(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(verdict.owner if verdict else None).encode()})

    inner = owner_wsgi if kind == "wsgi" else owner_asgi
    fast, slow, recorder = pair(kind, store, inner, required=required, scopes=routes)
    requests = [("GET", "/items", "read"), ("GET", "/admin", "read"), ("GET", "/admin/x", "admin"),
                ("POST", "/items", "read"), ("GET", "/public", None), ("GET", "/other", "read")]
    for app in (fast, slow):
        keys = {name: store.create("acct_routes", scopes=scopes).key
                for name, scopes in (("read", ["read"]), ("admin", ["read", "admin"]))}
        answers = []
        for method, path, key in requests:
            headers = {"x-api-key": keys[key]} if key else {}
            if kind == "wsgi":
                status, _, body = wsgi_call(app, path, headers, method=method)
                body = json.dumps(body).encode()
            else:
                sent = asgi_call(app, path, headers, method=method)
                status, body = sent[0]["status"], sent[1]["body"]
            answers.append((status, body))
        if app is fast:
            fast_answers, fast_keys = answers, keys
        else:
            assert answers == fast_answers
            assert [usage(store, k) for k in keys.values()] == [usage(store, k) for k in fast_keys.values()]
    # /items (read), /admin refused for a reader, /admin/x, POST /items refused (no write), and
    # /other (no scope); the public route never reaches a judge.
    assert recorder.seen == ["carrier", "verdict", "carrier", "verdict", "carrier"]
    assert set(fast.guard._judges) == {("read",), ("admin",), ("write",), ()}


def test_the_c_path_keeps_no_references(store: keyward.Store) -> None:
    """Reference counts of what a request hands the judge are back where they were."""
    key = store.create("acct_refs", scopes=["read"]).key
    judge = WSGIMiddleware(wsgi_app, store, scopes=["read"]).guard._new_judge(("read",))
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_API_KEY": key}
    value = environ["HTTP_X_API_KEY"]
    gc.collect()
    before = (sys.getrefcount(environ), sys.getrefcount(value), sys.getrefcount(store))
    for _ in range(100):
        assert judge.wsgi(environ) is environ
        del environ["keyward.verdict"], environ["keyward.verified"]
    gc.collect()
    assert (sys.getrefcount(environ), sys.getrefcount(value), sys.getrefcount(store)) == before
    assert usage(store, key) == (100, 0)


def test_the_middlewares_own_call_keeps_no_references(store: keyward.Store) -> None:
    """WSGIMiddleware's call in C (keyward._kw_fast.Gate) hands the application what it was
    given and keeps nothing: on an accepted request, a refused one and a credential error."""
    keys = {"reader": store.create("acct_gate", scopes=["read"]).key,
            "writer": store.create("acct_gate", scopes=["write"]).key}
    middleware = direct("wsgi", store, scopes=["read"])
    assert isinstance(middleware, _ffi.fast.Gate)
    for header, status in ((keys["reader"], "200 OK"), (keys["writer"], "403 Forbidden"), ("", "401 Unauthorized")):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_API_KEY": header}
        answered: list[str] = []

        def start_response(status_line: str, headers: list[tuple[str, str]], *rest: Any) -> None:
            answered.append(status_line)

        gc.collect()
        before = (sys.getrefcount(environ), sys.getrefcount(start_response), sys.getrefcount(store))
        for _ in range(50):
            list(middleware(environ, start_response))
            environ.pop("keyward.verdict", None), environ.pop("keyward.verified", None)
        gc.collect()
        assert (sys.getrefcount(environ), sys.getrefcount(start_response), sys.getrefcount(store)) == before
        assert answered == [status] * 50
    assert usage(store, keys["reader"]) == (50, 0) and usage(store, keys["writer"]) == (0, 50)


def test_the_middlewares_own_call_uses_the_app_it_holds_now(store: keyward.Store) -> None:
    """``app`` is read at each call (reassigning it takes effect), and a call the compiled
    path cannot take (keyword arguments) goes to the Python path with the same answer."""
    key = store.create("acct_gate_app", scopes=["read"]).key
    middleware = direct("wsgi", store, scopes=["read"])

    def other(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"other " + environ["keyward.verdict"].key_id.encode()]

    middleware.app = other
    responses = []
    for call in (lambda e, s: middleware(e, s), lambda e, s: middleware(environ=e, start_response=s)):
        responses.append(list(call({"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_API_KEY": key},
                                   lambda *a: None)))
    assert responses == [[b"other " + keyward.parse_key(key).id.encode()]] * 2
    assert usage(store, key) == (2, 0)
    with pytest.raises(TypeError):
        middleware({"HTTP_X_API_KEY": key})  # a WSGI call needs start_response
    copied = copy.copy(middleware)  # the C base's fields travel with the copy
    assert copied.app is other and copied._judge is middleware._judge and copied.guard is middleware.guard
    assert list(copied({"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_API_KEY": key}, lambda *a: None)) \
        == [b"other " + keyward.parse_key(key).id.encode()]
    assert usage(store, key) == (3, 0)
    del middleware.app
    with pytest.raises(AttributeError):
        middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_API_KEY": key}, lambda *a: None)


def test_a_judge_is_set_up_once(store: keyward.Store) -> None:
    """A judge's fields are read without the GIL during a verify: they never change."""
    judge = WSGIMiddleware(wsgi_app, store).guard._new_judge(("read",))
    with pytest.raises(TypeError, match="already initialised"):
        judge.__init__(store, ("write",), frozenset({"write"}), 0, keyward.Verdict, Verified, (), keyward.Reason,
                       lambda status: None)
    key = store.create("acct_once", scopes=["read"]).key
    environ = {"HTTP_X_API_KEY": key}
    assert judge.wsgi(environ) is environ and environ["keyward.verified"].scopes == frozenset({"read"})


def test_a_verdict_class_without_those_slots_gets_attributes(store: keyward.Store) -> None:
    """The judge writes the verdict's four fields into its slots when the class has them,
    and sets them as attributes otherwise (the same values either way)."""

    class PlainVerdict:
        pass

    from keyward.store import _header_error
    from keyward.types import _REASONS

    key = store.create("acct_plain_class", scopes=["read"]).key
    made = []
    for verdict_type in (keyward.Verdict, PlainVerdict):
        judge = _ffi.fast.Judge(store, ("read",), frozenset({"read"}), 0, verdict_type, Verified, _REASONS,
                                keyward.Reason, _header_error)
        environ = {"HTTP_X_API_KEY": key}
        assert judge.wsgi(environ) is environ
        verdict = environ["keyward.verdict"]
        assert type(verdict) is verdict_type
        made.append((verdict.reason, verdict.http_status, verdict.ok, len(verdict._data)))
    assert made[0] == made[1] == (keyward.Reason.VALID, 200, True, _ffi.ffi.sizeof("kw_verdict"))


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_framework_checks_take_the_compiled_path(store: keyward.Store, kind: str) -> None:
    """keyward.contrib's check_request (Flask, FastAPI, DRF) uses the same judges, with the
    same outcomes as the Python path."""
    from keyward import contrib

    guard = contrib._guard(store, ("read",), 0)
    assert contrib._guard(store, ("read",), 0) is guard  # made once, not per request
    recorder = Recorder()
    guard._judges[("read",)] = recorder.wrap(guard._new_judge(("read",)))
    keys = {name: store.create("acct_contrib", scopes=scopes).key for name, scopes in
            (("reader", ["read"]), ("writer", ["write"]))}

    def carrier(key: str) -> dict[str, Any]:
        if kind == "wsgi":
            return {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_API_KEY": key}
        return {"type": "http", "method": "GET", "path": "/", "headers": [(b"x-api-key", key.encode())]}

    def summary(outcome: Any) -> Any:
        verdict = outcome.verdict
        return (outcome.status, outcome.code, outcome.message, outcome.ok, verdict.owner, verdict.key_id,
                outcome.verified is not None)

    for name in ("reader", "writer"):
        fast = contrib.check_request(store, carrier(keys[name]), ("read",))
        guard._use_fast = False
        del guard._judges[("read",)]
        slow = contrib.check_request(store, carrier(keys[name]), ("read",))
        guard._use_fast = True
        guard._judges[("read",)] = recorder.wrap(guard._new_judge(("read",)))
        assert summary(fast) == summary(slow)
    assert recorder.seen == ["carrier", "verdict"]
    assert usage(store, keys["reader"]) == (2, 0) and usage(store, keys["writer"]) == (0, 2)
