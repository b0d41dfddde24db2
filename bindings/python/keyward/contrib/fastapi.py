"""FastAPI: a dependency, ``Depends(require_key("read"))``, that returns the verdict.

::

    import keyward
    from fastapi import Depends, FastAPI
    from keyward.contrib.fastapi import init_app, require_key

    app = FastAPI()
    init_app(app, keyward.Store("keys.redb"))

    @app.get("/invoices")
    async def invoices(verdict: keyward.Verdict = Depends(require_key("invoices:read"))):
        return {"owner": verdict.owner}

The dependency declares two OpenAPI security schemes, ``KeywardApiKey`` (the ``X-API-Key``
header) and ``KeywardBearer`` (``Authorization: Bearer``), as alternatives, so ``/docs``
shows the lock and its "Authorize" dialog; the token pair and ``Basic id:secret`` are
accepted too. A refused request raises :class:`KeyRefused`, an ``HTTPException``: FastAPI
answers ``401`` / ``403`` with ``{"detail": "<message>"}`` (its own convention) and the
middleware's ``WWW-Authenticate``; the keyward code is ``exc.code`` for an exception handler
that wants it in the body. Behind :class:`keyward.middleware.ASGIMiddleware` on the same
store, or with several such dependencies on one route, a request is verified once.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Optional

from fastapi import FastAPI, HTTPException, Request, Response, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..middleware import Outcome
from ..store import Store
from ..types import Verdict
from . import check_request, earlier_verified, mark, scope_tuple

__all__ = ["KeyRefused", "api_key_scheme", "bearer_scheme", "init_app", "require_key"]

#: The OpenAPI security schemes the dependency declares (``auto_error=False``: they only
#: document; keyward reads the credential itself, in every style it accepts).
api_key_scheme = APIKeyHeader(
    name="X-API-Key", scheme_name="KeywardApiKey", auto_error=False,
    description="A keyward API key (kw_...) in the X-API-Key header",
)
bearer_scheme = HTTPBearer(
    scheme_name="KeywardBearer", auto_error=False,
    description="A keyward API key (kw_...) as Authorization: Bearer",
)


class KeyRefused(HTTPException):
    """A request refused by :func:`require_key`: ``status_code`` 401 or 403, ``detail`` the
    message, ``code`` keyward's code (``REVOKED``, ``INSUFFICIENT_SCOPE``, ...), ``outcome``
    the middleware's :class:`~keyward.middleware.Outcome` (``outcome.body()`` is the
    middleware's JSON body)."""

    def __init__(self, outcome: Outcome) -> None:
        headers = {k: v for k, v in outcome.headers() if k not in ("content-type", "content-length")}
        super().__init__(status_code=outcome.status, detail=outcome.message, headers=headers)
        self.code = outcome.code
        self.outcome = outcome


def init_app(app: FastAPI, store: Store) -> None:
    """Makes ``store`` the one :func:`require_key` uses in ``app`` (``app.state.keyward_store``)."""
    if not isinstance(store, Store):
        raise TypeError(f"store must be a keyward.Store, not {type(store).__name__}")
    app.state.keyward_store = store


def _app_store(request: Request) -> Store:
    store = getattr(request.app.state, "keyward_store", None)
    if not isinstance(store, Store):
        raise RuntimeError(
            "keyward: no store for this FastAPI app: call keyward.contrib.fastapi.init_app(app, store) "
            "or pass require_key(..., store=store)"
        )
    return store


def require_key(
    *scopes: str, store: Store | None = None, cost: int = 0
) -> Callable[..., Awaitable[Verdict]]:
    """A dependency accepting a request with a valid key holding all ``scopes`` (none: any
    valid key) and returning its :class:`~keyward.Verdict` (also ``request.state.keyward``).

    ``store``: the store to verify against (default: the app's, from :func:`init_app`).
    ``cost``: credits the request spends on a limited key (0 = the key's own cost).
    """
    required = scope_tuple(scopes, "require_key")
    if store is not None and not isinstance(store, Store):
        raise TypeError(f"store must be a keyward.Store, not {type(store).__name__}")

    async def keyward_key(
        request: Request,
        response: Response,
        _api_key: Optional[str] = Security(api_key_scheme),
        _bearer: Optional[HTTPAuthorizationCredentials] = Security(bearer_scheme),
    ) -> Verdict:
        scope = request.scope
        outcome = check_request(
            store if store is not None else _app_store(request),
            scope, required, earlier=earlier_verified(scope), cost=cost,
        )
        if not outcome.ok or outcome.verdict is None:
            raise KeyRefused(outcome)
        if earlier_verified(scope) is None:
            # A rate-limited key's state goes out with the response (RateLimit-Policy, RateLimit).
            for name, value in outcome.rate_headers():
                response.headers[name] = value
        mark(scope, outcome)
        scope["keyward"] = outcome.verdict
        request.state.keyward = outcome.verdict
        return outcome.verdict

    keyward_key.__qualname__ = f"require_key{required!r}"
    return keyward_key
