"""Flask: a decorator per route, ``@require_key("read")``, with the verdict on ``flask.g``.

::

    import keyward
    from flask import Flask, g
    from keyward.contrib.flask import init_app, require_key

    app = Flask(__name__)
    init_app(app, keyward.Store("keys.redb"))

    @app.get("/invoices")
    @require_key("invoices:read")
    def invoices():
        return {"owner": g.keyward.owner}

A refused request gets the middleware's answer: ``401`` / ``403`` with
``{"ok": false, "code": "...", "message": "..."}`` and ``WWW-Authenticate``. The verdict is
``g.keyward`` and ``request.environ["keyward.verdict"]``. Behind
:class:`keyward.middleware.WSGIMiddleware` on the same store the request is not verified
twice (see :mod:`keyward.contrib`).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, overload

from flask import Flask, after_this_request, current_app, g, request

from ..store import Store
from . import check_request, earlier_verified, mark, scope_tuple

__all__ = ["init_app", "require_key"]

F = TypeVar("F", bound=Callable[..., Any])

EXTENSION = "keyward"


def init_app(app: Flask, store: Store) -> None:
    """Makes ``store`` the one :func:`require_key` uses in ``app`` (``app.extensions["keyward"]``)."""
    if not isinstance(store, Store):
        raise TypeError(f"store must be a keyward.Store, not {type(store).__name__}")
    app.extensions[EXTENSION] = store


def _app_store() -> Store:
    store = current_app.extensions.get(EXTENSION)
    if not isinstance(store, Store):
        raise RuntimeError(
            "keyward: no store for this Flask app: call keyward.contrib.flask.init_app(app, store) "
            "or pass require_key(..., store=store)"
        )
    return store


@overload
def require_key(view: F, /) -> F: ...
@overload
def require_key(*scopes: str, store: Store | None = None, cost: int = 0) -> Callable[[F], F]: ...


def require_key(*scopes: Any, store: Store | None = None, cost: int = 0) -> Any:
    """Decorates a view so that it runs only for a request with a valid key holding all
    ``scopes`` (none: any valid key). ``@require_key`` without parentheses works too.

    ``store``: the store to verify against (default: the app's, from :func:`init_app`).
    ``cost``: credits the request spends on a limited key (0 = the key's own cost).
    """
    if len(scopes) == 1 and callable(scopes[0]) and store is None and cost == 0:
        return require_key()(scopes[0])
    required = scope_tuple(scopes, "require_key")
    if store is not None and not isinstance(store, Store):
        raise TypeError(f"store must be a keyward.Store, not {type(store).__name__}")

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            environ = request.environ
            outcome = check_request(
                store if store is not None else _app_store(),
                environ, required, earlier=earlier_verified(environ), cost=cost,
            )
            if not outcome.ok:
                return current_app.response_class(outcome.body(), status=outcome.status, headers=outcome.headers())
            rate = outcome.rate_headers() if earlier_verified(environ) is None else []
            mark(environ, outcome)
            environ["keyward.verdict"] = outcome.verdict
            g.keyward = outcome.verdict
            if rate:
                # A rate-limited key's state goes out with the response (RateLimit-Policy, RateLimit).
                @after_this_request
                def add_rate_headers(response: Any) -> Any:
                    for name, value in rate:
                        response.headers[name] = value
                    return response
            return current_app.ensure_sync(view)(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
