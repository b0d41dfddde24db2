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
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Union

from ._ffi import fast as _fast_module
from .errors import CredentialError, KeywardError, KeyNotFoundError
from .headers import asgi_credentials, wsgi_credentials
from .store import Store, _header_error, _int, _required_scopes
from .types import _REASONS, Reason, Verdict

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
_UNJUDGED: Any = object()  # a request no compiled judge has seen yet
_VERIFIED = "keyward.verified"  # where an accepted request's Verified travels
_tuple_new = tuple.__new__


class Verified(NamedTuple):
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
    key_scopes: Optional[frozenset[str]] = None


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
        key = (self.code, self.message)
        body = _BODIES.get(key)
        if body is None:  # made once per distinct refusal (a refused request is often a bot's)
            body = json.dumps({"ok": False, "code": self.code, "message": self.message}).encode()
            if len(_BODIES) < 256:
                _BODIES[key] = body
        return body

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


#: The refusals' JSON bodies, by (code, message).
_BODIES: dict[tuple[str, str], bytes] = {}

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
        self.cost = _int(cost, "cost", 0, 2**32 - 1)
        self._scope_sets: dict[tuple[str, ...], frozenset[str]] = {}
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
        # The fixed scopes as the C call takes them, made once (kept alive by this guard).
        self._fixed_c = None if self._fixed is None else _required_scopes(self._fixed)
        # The middlewares' usual request is judged in one C call when keyward._kw_fast is
        # there (API mode): one compiled judge per distinct scope list, see _judge_fast.
        self._use_fast = _fast_module is not None
        self._judges: dict[tuple[str, ...], Any] = {}

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
        return _outcome(self._accept(verdict, required))

    def _judge(
        self, credentials: Callable[[Any], list[tuple[bytes, bytes]]], carrier: Mapping[str, Any],
        required: tuple[str, ...],
    ) -> Verified | Outcome:
        """The middlewares' per-request path: a :class:`Verified` when the request (a WSGI
        environ or ASGI scope, ``carrier``) may go through, else the refusal. The verdict
        an earlier middleware left in ``carrier`` is reused; otherwise ``credentials``
        (:func:`~keyward.headers.wsgi_credentials` / ``asgi_credentials``) picks the
        credential headers and the store verifies them: nothing else is copied or built."""
        earlier = carrier.get(_VERIFIED)
        if earlier is not None and type(earlier) is Verified and self._same_store(earlier.store):
            return self._rejudge(earlier, required)
        try:
            c_scopes = self._fixed_c if required is self._fixed else None
            verdict = self.store._verify_credentials(credentials(carrier), required, self.cost, c_scopes)
        except CredentialError as exc:
            return Outcome(status=401, code=exc.code, message=exc.message)
        return self._accept(verdict, required)

    def _judge_fast(self, carrier: Any, required: tuple[str, ...], asgi: bool) -> Any:
        """The middlewares' per-request path through ``keyward._kw_fast``: the compiled
        judge of ``required`` reads the request's one credential header (WSGI environ or ASGI
        scope, ``carrier``), verifies it and, when the request is accepted without rate-limit
        fields to send, attaches the verdict as :meth:`_judge`'s callers do and returns the
        carrier to pass on (the WSGI environ; a new ASGI scope). Otherwise what :meth:`_judge`
        returns (a :class:`Verified` or the refusal), or ``None`` for a request it leaves to
        :meth:`_judge` (nothing verified yet: no compiled module, several or unusual
        credential headers, a request already verified)."""
        judge = self._judges.get(required) or self._new_judge(required)
        if judge is None:
            return None
        try:
            judged = judge.asgi(carrier) if asgi else judge.wsgi(carrier)
        except CredentialError as exc:
            judged = exc
        return self._finish_fast(judged, required)

    def _finish_fast(self, judged: Any, required: tuple[str, ...]) -> Any:
        """What a compiled judge of ``required`` returned or raised, as :meth:`_judge_fast`
        answers it: a credential error becomes its 401 refusal (any other exception is
        raised again), a Verdict is accepted or refused; the rest is returned as is."""
        if isinstance(judged, BaseException):
            if not isinstance(judged, CredentialError):
                raise judged
            return Outcome(status=401, code=judged.code, message=judged.message)
        if type(judged) is Verdict:
            return self._accept(judged, required)
        return judged

    def _fixed_judge(self) -> Any:
        """The compiled judge of this guard's fixed scopes (for the middlewares' own call
        path), or ``None`` (scopes by route, or no keyward._kw_fast)."""
        if self._fixed is None:
            return None
        return self._judges.get(self._fixed) or self._new_judge(self._fixed)

    def _new_judge(self, required: tuple[str, ...]) -> Any:
        """The compiled judge of a scope list (kept: one per distinct list, not per request),
        or ``None`` without keyward._kw_fast."""
        if not self._use_fast:
            return None
        judge = _fast_module.Judge(
            self.store, required, self._scope_set(required), self.cost, Verdict, Verified, _REASONS, Reason,
            _header_error,
        )
        if len(self._judges) < 1024:
            self._judges[required] = judge
        return judge

    def _accept(self, verdict: Verdict, required: tuple[str, ...]) -> Verified | Outcome:
        if not verdict.ok:
            return Outcome(status=verdict.http_status, code=verdict.code, message=verdict.message, verdict=verdict)
        return _tuple_new(Verified, (self.store, verdict, self._scope_set(required), None))

    def _scope_set(self, required: tuple[str, ...]) -> frozenset[str]:
        scopes = self._scope_sets.get(required)
        if scopes is None:  # one frozenset per distinct route scope list, not per request
            scopes = frozenset(required)
            if len(self._scope_sets) < 1024:
                self._scope_sets[required] = scopes
        return scopes

    def recheck(self, earlier: Verified, required: Sequence[str]) -> Outcome:
        """Judges an already accepted request against ``required`` without verifying it
        again: no use is counted and no credit spent (``cost`` is not charged twice either).

        Scopes the earlier check covered pass at once; others are looked up in the key's
        scopes (the verdict's record when it has one, else :meth:`Store.get`, read once per
        request). A missing scope is the ``403 INSUFFICIENT_SCOPE`` a verify would give.
        """
        return _outcome(self._rejudge(earlier, required))

    def _rejudge(self, earlier: Verified, required: Sequence[str]) -> Verified | Outcome:
        """:meth:`recheck` as the middlewares use it: the (updated) :class:`Verified`, or
        the refusal."""
        verdict = earlier.verdict
        scopes = earlier.scopes
        extra = [s for s in required if s not in scopes]
        if not extra:
            return earlier
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
        return Verified(earlier.store, verdict, scopes.union(extra), key_scopes)

    def _same_store(self, other: Store) -> bool:
        if other is self.store:
            return True
        try:
            return self.store.same_store(other)
        except KeywardError:  # a closed handle: verify afresh
            return False


def _outcome(judged: Verified | Outcome) -> Outcome:
    """:meth:`Guard.check`'s answer for what :meth:`Guard._judge` decided."""
    if type(judged) is not Verified:
        return judged  # type: ignore[return-value]
    verdict = judged.verdict
    return Outcome(status=200, code="VALID", message=verdict.message, verdict=verdict, verified=judged)


_REASON_PHRASES = {401: "401 Unauthorized", 403: "403 Forbidden", 429: "429 Too Many Requests", 200: "200 OK"}

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _send_with_fields(send: Callable[[Any], Awaitable[None]], fields: list[tuple[bytes, bytes]]) -> Any:
    """``send``, adding ``fields`` to the response's start message (the rate-limit fields)."""

    async def send_with_fields(message: Any) -> None:
        if message.get("type") == "http.response.start":
            message = dict(message)
            message["headers"] = list(message.get("headers") or ()) + fields
        await send(message)

    return send_with_fields


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
        # The compiled judge of the fixed scopes, or None (see Guard._fixed_judge).
        self._judge = self.guard._fixed_judge()

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        judge = self._judge
        if judge is not None and scope.get("type") == "http":  # the usual request, judged in C
            try:
                judged = judge.asgi(scope)
            except CredentialError as exc:
                judged = exc
            if type(judged) is dict:  # accepted, the verdict attached to this copy of the scope
                await self.app(judged, receive, send)
                return
            await self._serve(scope, receive, send, judged)
            return
        await self._serve(scope, receive, send)

    async def _serve(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
        judged: Any = _UNJUDGED,
    ) -> None:
        """Every request but the usual one: ``judged`` is what the compiled judge of the
        fixed scopes returned or raised for it (unset: nothing judged yet)."""
        kind = scope.get("type")
        guard = self.guard
        if judged is _UNJUDGED:
            if kind == "lifespan" and self.close_on_shutdown:
                await self._lifespan(scope, receive, send)
                return
            if kind != "http" and kind != "websocket":
                await self.app(scope, receive, send)
                return
            required = guard._fixed
            if required is None:
                required = guard.required_scopes(scope.get("method", "GET"), scope.get("path") or "/")
                if required is None:  # a public route
                    await self.app(scope, receive, send)
                    return
            judged = guard._judge_fast(scope, required, True)
            if type(judged) is dict:  # accepted, the verdict attached to this copy of the scope
                await self.app(judged, receive, send)
                return
        else:
            required = guard._fixed or ()
            judged = guard._finish_fast(judged, required)
        fresh = True  # _judge_fast leaves a request already verified to _judge
        if judged is None:
            fresh = _VERIFIED not in scope  # an outer keyward middleware sent the rate fields
            judged = guard._judge(asgi_credentials, scope, required)
        if type(judged) is Verified:
            verdict = judged.verdict
            scope = dict(scope)  # the ASGI spec: copy the scope before changing it
            scope["keyward"] = verdict
            scope[_VERIFIED] = judged
            state = scope.get("state")
            scope["state"] = {"keyward": verdict} if not state else {**state, "keyward": verdict}
            extra = verdict.rate_headers() if fresh and kind == "http" else None
            if extra:
                send = _send_with_fields(send, [(k.encode(), v.encode()) for k, v in extra])
            await self.app(scope, receive, send)
            return
        outcome: Outcome = judged
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


if TYPE_CHECKING or _fast_module is None:

    class _WSGIGate:
        """WSGIMiddleware's base without keyward._kw_fast: every request takes ``_serve``."""

        app: WSGIApp
        _judge: Any

        def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            return self._serve(environ, start_response)  # type: ignore[attr-defined, no-any-return]

else:
    # keyward._kw_fast.Gate: the middleware's call in C; the usual request is judged and handed
    # to the application there, every other goes to `_serve` (see _kw_fast.c).
    _WSGIGate = _fast_module.Gate


class WSGIMiddleware(_WSGIGate):
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
        # The compiled judge of the fixed scopes, or None (see Guard._fixed_judge): with
        # keyward._kw_fast the base class's call judges the usual request with it in C.
        self._judge = self.guard._fixed_judge()

    def __getstate__(self) -> dict[str, Any]:
        """For ``copy.copy()``: the C base keeps ``app`` and ``_judge`` outside ``__dict__``."""
        return {**self.__dict__, "app": self.app, "_judge": self._judge}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def _serve(
        self, environ: dict[str, Any], start_response: Callable[..., Any], judged: Any = _UNJUDGED,
    ) -> Iterable[bytes]:
        """Every request but the usual one: ``judged`` is what the compiled judge of the
        fixed scopes returned or raised for it (unset: nothing judged yet)."""
        guard = self.guard
        if judged is _UNJUDGED:
            required = guard._fixed
            if required is None:
                required = guard.required_scopes(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO") or "/")
                if required is None:  # a public route
                    return self.app(environ, start_response)
            judged = guard._judge_fast(environ, required, False)
            if judged is environ:  # accepted, the verdict attached
                return self.app(environ, start_response)
        else:
            required = guard._fixed or ()
            judged = guard._finish_fast(judged, required)
        fresh = True  # _judge_fast leaves a request already verified to _judge
        if judged is None:
            fresh = _VERIFIED not in environ  # an outer keyward middleware sent the rate fields
            judged = guard._judge(wsgi_credentials, environ, required)
        if type(judged) is Verified:
            environ["keyward.verdict"] = judged.verdict
            environ[_VERIFIED] = judged
            extra = judged.verdict.rate_headers() if fresh else None
            if extra:
                inner_start = start_response

                def start_with_rate(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
                    return inner_start(status, list(headers) + extra, *rest)

                return self.app(environ, start_with_rate)
            return self.app(environ, start_response)
        outcome: Outcome = judged
        phrase = _REASON_PHRASES.get(outcome.status, f"{outcome.status} Refused")
        start_response(phrase, outcome.headers())
        return [outcome.body()]


def get_verdict(scope_or_environ: Mapping[str, Any]) -> Verdict | None:
    """The verdict a middleware attached to an ASGI scope or a WSGI environ (``None`` on a
    public route or without the middleware)."""
    value = scope_or_environ.get("keyward")
    if value is None:
        value = scope_or_environ.get("keyward.verdict")
    return value if isinstance(value, Verdict) else None
