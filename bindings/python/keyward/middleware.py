"""ASGI and WSGI middlewares that require an API key on every request.

Both wrap an application (no framework dependency) and, for each HTTP request:

1. work out the scopes the route requires (see :data:`ScopeRule`); a route mapped to
   ``None`` is public and passes through untouched;
2. verify the request's credential (``x-api-key``, ``Authorization: Bearer`` / ``Basic``,
   or the ``X-Api-Token-Id`` + ``X-Api-Token-Secret-Key`` pair) with :class:`~keyward.Store`;
3. refuse with ``401`` (no, malformed, unknown, revoked or expired key), ``403`` (valid key
   without the scope, usage credits exhausted) or ``429`` (``RATE_LIMITED``: the key's or its
   owner's rate limit, with ``Retry-After``) and a JSON body
   ``{"ok": false, "code": "...", "message": "..."}``;
4. or call the application with the :class:`~keyward.Verdict` attached: ASGI
   ``scope["keyward"]`` and ``scope["state"]["keyward"]`` (Starlette/FastAPI
   ``request.state.keyward``), WSGI ``environ["keyward.verdict"]`` (Flask
   ``request.environ``, Django ``request.META``).

FastAPI / Starlette::

    app.add_middleware(keyward.middleware.ASGIMiddleware, store=store,
                       scopes={"/admin": ["admin"], "/health": None})

Flask::

    app.wsgi_app = keyward.middleware.WSGIMiddleware(app.wsgi_app, store, scopes=["read"])

For a rate-limited key (or owner) every response this middleware lets through or refuses
carries the IETF ``RateLimit-Policy`` and ``RateLimit`` fields (draft-ietf-httpapi-ratelimit-
headers), formatted by the library (:meth:`Verdict.rate_headers`).

Stacking is safe: a request that an outer keyward middleware has already accepted is not
verified again (no second use counted, no second credit spent). The inner middleware
reuses that verdict (it travels as a :class:`Verified` in ``scope["keyward.verified"]`` /
``environ["keyward.verified"]``); when its route needs scopes the outer one did not ask
for, it checks them against the key's record (read with :meth:`Store.get`, which counts
nothing) and answers ``403 INSUFFICIENT_SCOPE`` when the key lacks one.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

from .errors import CredentialError, KeywardError, KeyNotFoundError
from .store import Store
from .types import Reason, Verdict

__all__ = [
    "ASGIMiddleware",
    "Guard",
    "Outcome",
    "ScopeRule",
    "Verified",
    "WSGIMiddleware",
    "get_verdict",
]

#: Which scopes a route requires:
#:
#: - ``None``: every route needs a valid key, no particular scope;
#: - a sequence of scopes: every route needs all of them;
#: - a mapping of path prefix → scopes (or ``None`` for a public route). A key may start
#:   with a method (``"POST /orders"``). The longest matching prefix wins, on a path-segment
#:   boundary (``"/admin"`` covers ``/admin`` and ``/admin/x``, not ``/administrator``).
#:   Paths no prefix covers need a valid key with no particular scope (add ``"/": None``
#:   to make them public instead);
#: - a callable ``(method, path) -> scopes or None`` (``None`` = public).
ScopeRule = Union[
    None,
    Sequence[str],
    Mapping[str, Optional[Sequence[str]]],
    Callable[[str, str], Optional[Sequence[str]]],
]

_PUBLIC = object()


@dataclass(frozen=True)
class Verified:
    """A request a keyward middleware has accepted, for the middlewares stacked inside it.

    The first middleware verifies the request and passes this on (ASGI
    ``scope["keyward.verified"]``, WSGI ``environ["keyward.verified"]``); a later one on the
    same store reuses it instead of verifying again, so a request counts one use and spends
    its credits once however many middlewares it crosses.

    Attributes:
        store: the store that verified the request.
        verdict: its (valid) verdict.
        scopes: the scopes the request has been checked for so far.
        key_scopes: the key's own scopes, once a later middleware has read them.
    """

    store: Store
    verdict: Verdict
    scopes: frozenset[str]
    key_scopes: frozenset[str] | None = None


@dataclass(frozen=True)
class Outcome:
    """What :meth:`Guard.check` decided for one request.

    ``public`` routes have no verdict; otherwise ``verdict`` is set when a credential was
    found and verified, and ``status``/``code``/``message`` say what to answer
    (``200``/``"VALID"`` to let the request through). ``verified`` is set when the request
    may go through: what to hand to middlewares stacked inside (see :class:`Verified`).
    A request refused for a scope an earlier middleware's verdict lacks keeps that earlier
    (valid) verdict in ``verdict``.
    """

    status: int
    code: str
    message: str
    verdict: Verdict | None = None
    public: bool = False
    verified: Verified | None = None

    @property
    def ok(self) -> bool:
        """Whether the request may go through."""
        return self.status == 200

    def body(self) -> bytes:
        """The JSON error body ``{"ok": false, "code": ..., "message": ...}``."""
        return json.dumps({"ok": False, "code": self.code, "message": self.message}).encode()

    def headers(self) -> list[tuple[str, str]]:
        """Response headers of a refusal (``WWW-Authenticate`` on a 401, per RFC 9110)."""
        body_len = len(self.body())
        out = [
            ("content-type", "application/json"),
            ("content-length", str(body_len)),
            ("cache-control", "no-store"),
        ]
        if self.status == 401:
            out.append(("www-authenticate", 'Bearer realm="api"'))
        elif self.status == 403 and self.code == "INSUFFICIENT_SCOPE":
            out.append(("www-authenticate", 'Bearer realm="api", error="insufficient_scope"'))
        out.extend(self.rate_headers())
        return out

    def rate_headers(self) -> list[tuple[str, str]]:
        """``RateLimit-Policy``, ``RateLimit`` (and ``Retry-After`` on a 429) for a
        rate-limited key; empty otherwise."""
        return self.verdict.rate_headers() if self.verdict is not None else []


_PUBLIC_OUTCOME = Outcome(status=200, code="PUBLIC", message="public route", public=True)


def _scope_tuple(scopes: Any, where: str) -> tuple[str, ...]:
    if isinstance(scopes, (str, bytes)):
        raise TypeError(f"{where}: scopes must be a list of str, not a single string")
    out = tuple(scopes)
    for s in out:
        if not isinstance(s, str):
            raise TypeError(f"{where}: each scope must be str, not {type(s).__name__}")
    return out


class Guard:
    """The framework-neutral part of the middlewares: route → scopes, headers → outcome.

    Args:
        store: the open :class:`~keyward.Store` (one per process, shared by all requests).
        scopes: a :data:`ScopeRule`.
        cost: credits a request spends on a limited key (0 = the key's own cost).
    """

    def __init__(self, store: Store, scopes: ScopeRule = None, *, cost: int = 0) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a keyward.Store, not {type(store).__name__}")
        self.store = store
        self.cost = cost
        self._fixed: tuple[str, ...] | None = ()
        self._prefixes: list[tuple[str | None, str, Any]] = []
        self._callable: Callable[[str, str], Optional[Sequence[str]]] | None = None
        if scopes is None:
            pass
        elif isinstance(scopes, Mapping):
            self._fixed = None
            for raw, value in scopes.items():
                if not isinstance(raw, str):
                    raise TypeError(f"route keys must be str, not {type(raw).__name__}")
                method, _, prefix = raw.strip().rpartition(" ")
                if not prefix.startswith("/"):
                    raise ValueError(f"route {raw!r}: the path prefix must start with '/'")
                target = _PUBLIC if value is None else _scope_tuple(value, f"route {raw!r}")
                self._prefixes.append((method.upper() or None, prefix.rstrip("/") or "/", target))
            # Longest prefix first; a method-specific entry before a generic one.
            self._prefixes.sort(key=lambda e: (len(e[1]), e[0] is not None), reverse=True)
        elif callable(scopes):
            self._fixed = None
            self._callable = scopes
        else:
            self._fixed = _scope_tuple(scopes, "scopes")

    def required_scopes(self, method: str, path: str) -> tuple[str, ...] | None:
        """The scopes a request needs, or ``None`` for a public route."""
        if self._fixed is not None:
            return self._fixed
        if self._callable is not None:
            value = self._callable(method, path)
            return None if value is None else _scope_tuple(value, "scope rule result")
        for m, prefix, target in self._prefixes:
            if m is not None and m != method:
                continue
            if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
                return None if target is _PUBLIC else target
        return ()

    def check(self, headers: Any, method: str, path: str, *, earlier: Verified | None = None) -> Outcome:
        """Verifies a request: ``headers`` as :meth:`Store.verify_headers` accepts them
        (an ASGI scope or WSGI environ works as is).

        ``earlier``: what an outer middleware already accepted for this request. When it
        comes from the same store, the request is not verified again (see :meth:`recheck`).
        """
        required = self.required_scopes(method, path)
        if required is None:
            return _PUBLIC_OUTCOME
        if earlier is not None and self._same_store(earlier.store):
            return self.recheck(earlier, required)
        try:
            verdict = self.store.verify_headers(headers, required, cost=self.cost)
        except CredentialError as exc:
            return Outcome(status=401, code=exc.code, message=exc.message)
        if verdict.ok:
            verified = Verified(self.store, verdict, frozenset(required))
            return Outcome(status=200, code="VALID", message=verdict.message, verdict=verdict, verified=verified)
        return Outcome(status=verdict.http_status, code=verdict.code, message=verdict.message, verdict=verdict)

    def recheck(self, earlier: Verified, required: Sequence[str]) -> Outcome:
        """Judges an already accepted request against ``required`` without verifying it
        again: no use is counted and no credit spent (``cost`` is not charged twice either).

        Scopes the earlier check covered pass at once; others are looked up in the key's
        scopes (the verdict's record when it has one, else :meth:`Store.get`, read once per
        request). A missing scope is the ``403 INSUFFICIENT_SCOPE`` a verify would give.
        """
        verdict = earlier.verdict
        extra = [s for s in required if s not in earlier.scopes]
        if not extra:
            return Outcome(status=200, code="VALID", message=verdict.message, verdict=verdict, verified=earlier)
        key_scopes = earlier.key_scopes
        if key_scopes is None:
            info = verdict.info
            if info is None:
                try:
                    info = self.store.get(verdict.key_id or "")
                except KeyNotFoundError:  # deleted since the earlier verify
                    return Outcome(status=401, code=Reason.NOT_FOUND.code, message=Reason.NOT_FOUND.message)
            key_scopes = frozenset(info.scopes)
        if not key_scopes.issuperset(extra):
            r = Reason.INSUFFICIENT_SCOPE
            return Outcome(status=r.http_status, code=r.code, message=r.message, verdict=verdict)
        verified = Verified(earlier.store, verdict, earlier.scopes.union(extra), key_scopes)
        return Outcome(status=200, code="VALID", message=verdict.message, verdict=verdict, verified=verified)

    def _same_store(self, other: Store) -> bool:
        if other is self.store:
            return True
        try:
            return self.store.same_store(other)
        except KeywardError:  # a closed handle: verify afresh
            return False


_REASON_PHRASES = {401: "401 Unauthorized", 403: "403 Forbidden", 429: "429 Too Many Requests", 200: "200 OK"}

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _earlier_verdict(carrier: Mapping[str, Any]) -> Verified | None:
    """The verdict an earlier keyward middleware left on this request (scope or environ)."""
    earlier = carrier.get("keyward.verified")
    return earlier if isinstance(earlier, Verified) else None


class ASGIMiddleware:
    """ASGI middleware (Starlette, FastAPI, Django ASGI, any ASGI 3 app).

    HTTP and WebSocket connections are checked (a refused WebSocket is closed with code
    1008 before it is accepted, which servers answer with HTTP 403); lifespan events pass
    through. See the module docstring for the scope rules and where the verdict goes.

    Args:
        app: the ASGI application to protect.
        store: the open :class:`~keyward.Store`.
        scopes: a :data:`ScopeRule`.
        cost: credits a request spends on a limited key (0 = the key's own cost).
        close_on_shutdown: close the store (flushing its usage counts) when the server's
            lifespan shutdown completes. uvicorn workers end with ``os._exit``, which skips
            interpreter-exit handlers, so set this (or close the store in your own lifespan
            handler) to keep the last second of counts.
    """

    def __init__(
        self,
        app: ASGIApp,
        store: Store,
        scopes: ScopeRule = None,
        *,
        cost: int = 0,
        close_on_shutdown: bool = False,
    ) -> None:
        self.app = app
        self.guard = Guard(store, scopes, cost=cost)
        self.close_on_shutdown = close_on_shutdown

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        kind = scope.get("type")
        if kind == "lifespan" and self.close_on_shutdown:
            await self._lifespan(scope, receive, send)
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        earlier = _earlier_verdict(scope)
        outcome = self.guard.check(
            scope,
            scope.get("method", "GET"),
            scope.get("path") or "/",
            earlier=earlier,
        )
        if outcome.public:
            await self.app(scope, receive, send)
            return
        if not outcome.ok:
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": outcome.code})
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": outcome.status,
                    "headers": [(k.encode(), v.encode()) for k, v in outcome.headers()],
                }
            )
            await send({"type": "http.response.body", "body": outcome.body()})
            return
        scope = dict(scope)
        scope["keyward"] = outcome.verdict
        scope["keyward.verified"] = outcome.verified
        state = dict(scope.get("state") or {})
        state["keyward"] = outcome.verdict
        scope["state"] = state
        extra = outcome.rate_headers() if earlier is None and kind == "http" else []
        if extra:
            encoded = [(k.encode(), v.encode()) for k, v in extra]
            inner_send = send

            async def send_with_rate(message: Any) -> None:
                if message.get("type") == "http.response.start":
                    message = dict(message)
                    message["headers"] = list(message.get("headers") or ()) + encoded
                await inner_send(message)

            send = send_with_rate
        await self.app(scope, receive, send)


    async def _lifespan(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        async def send_then_close(message: Any) -> None:
            if message.get("type") in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self.guard.store.close()
            await send(message)

        await self.app(scope, receive, send_then_close)


class WSGIMiddleware:
    """WSGI middleware (Flask, Django, any PEP 3333 app).

    The route path is ``PATH_INFO`` (the path below the application's mount point). The
    verdict goes to ``environ["keyward.verdict"]``.

    Args:
        app: the WSGI application to protect.
        store: the open :class:`~keyward.Store`.
        scopes: a :data:`ScopeRule`.
        cost: credits a request spends on a limited key (0 = the key's own cost).
    """

    def __init__(self, app: WSGIApp, store: Store, scopes: ScopeRule = None, *, cost: int = 0) -> None:
        self.app = app
        self.guard = Guard(store, scopes, cost=cost)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        earlier = _earlier_verdict(environ)
        outcome = self.guard.check(
            environ,
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO") or "/",
            earlier=earlier,
        )
        if outcome.public:
            return self.app(environ, start_response)
        if not outcome.ok:
            phrase = _REASON_PHRASES.get(outcome.status, f"{outcome.status} Refused")
            start_response(phrase, outcome.headers())
            return [outcome.body()]
        environ["keyward.verdict"] = outcome.verdict
        environ["keyward.verified"] = outcome.verified
        extra = outcome.rate_headers() if earlier is None else []
        if extra:
            inner_start = start_response

            def start_with_rate(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
                return inner_start(status, list(headers) + extra, *rest)

            start_response = start_with_rate
        return self.app(environ, start_response)


def get_verdict(scope_or_environ: Mapping[str, Any]) -> Verdict | None:
    """The verdict a middleware attached to an ASGI scope or a WSGI environ (``None`` on a
    public route or without the middleware)."""
    value = scope_or_environ.get("keyward")
    if value is None:
        value = scope_or_environ.get("keyward.verdict")
    return value if isinstance(value, Verdict) else None
