"""Drop-in integrations for web frameworks, one thin module each:

- :mod:`keyward.contrib.drf`: Django REST framework (a Django app: authentication class,
  ``HasScopes`` permission, ``manage.py keyward`` command);
- :mod:`keyward.contrib.fastapi`: a FastAPI dependency, ``Depends(require_key("read"))``;
- :mod:`keyward.contrib.flask`: a Flask route decorator, ``@require_key("read")``.

Each module imports its framework; this package and the rest of ``keyward`` import none,
so the framework is needed only by the application that imports the module.

They decide nothing themselves: every request goes through
:class:`keyward.middleware.Guard`, the middlewares' core, so the statuses (401/403), codes,
messages and ``WWW-Authenticate`` values are the middlewares' own, and a request an outer
keyward middleware has already accepted (the :class:`~keyward.middleware.Verified` marker
in ``environ["keyward.verified"]`` / ``scope["keyward.verified"]``) is not verified again:
one use counted per request however many checks it crosses.
"""
from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from ..middleware import Guard, Outcome, Verified, _outcome
from ..store import Store

__all__ = ["VERIFIED", "check_request", "earlier_verified", "scope_tuple"]

#: Where the middlewares and these integrations leave the accepted request's
#: :class:`~keyward.middleware.Verified` (WSGI environ, ASGI scope, Django ``META``).
VERIFIED = "keyward.verified"


def scope_tuple(scopes: Iterable[Any], where: str) -> tuple[str, ...]:
    """``scopes`` checked (each a ``str``) and frozen, at declaration time."""
    out = tuple(scopes)
    for s in out:
        if not isinstance(s, str):
            raise TypeError(f"{where}: each scope must be str, not {type(s).__name__}")
    return out


def earlier_verified(*carriers: Any) -> Verified | None:
    """The marker an earlier keyward check left in one of ``carriers`` (mappings or ``None``)."""
    for carrier in carriers:
        if carrier is not None:
            value = carrier.get(VERIFIED)
            if isinstance(value, Verified):
                return value
    return None


def check_request(
    store: Store,
    headers: Any,
    scopes: tuple[str, ...],
    *,
    earlier: Verified | None = None,
    cost: int = 0,
) -> Outcome:
    """Verifies one request for ``scopes`` exactly as the middlewares do.

    ``headers``: a WSGI environ, an ASGI scope or anything
    :meth:`Store.verify_headers` accepts. ``earlier``: the marker an outer check left
    (:func:`earlier_verified`); on the same store the request is then re-judged for
    ``scopes`` without a second verify (nothing counted, no credit spent).

    The guard for ``(scopes, cost)`` is made once and kept; with ``keyward._kw_fast`` (API
    mode) the usual request of a scope, environ or ``META`` dict is judged by its compiled
    path, as behind the middlewares (about 2 µs a check instead of 4 in a loop).
    """
    guard = _guard(store, scopes, cost)
    if earlier is None and type(headers) is dict:
        # An ASGI scope, a WSGI environ or Django's META: the middlewares' compiled judge
        # takes the usual request (keyward._kw_fast, API mode), as it does behind them.
        if "headers" in headers and "type" in headers:
            judged = guard._judge_fast(headers, guard._fixed, True)  # type: ignore[arg-type]
        elif "REQUEST_METHOD" in headers:
            judged = guard._judge_fast(headers, guard._fixed, False)  # type: ignore[arg-type]
        else:
            judged = None
        if judged is not None:
            # An accepted request comes back as the carrier it was attached to.
            return _outcome(judged[VERIFIED] if type(judged) is dict else judged)
    return guard.check(headers, "GET", "/", earlier=earlier)


#: The guard of each (scopes, cost) a check site asked for, with the store it was made for:
#: made once, not per request (a guard keeps its compiled judges). One store per entry, so a
#: store that was replaced is let go when its entry is next used.
_GUARDS: dict[tuple[tuple[str, ...], int], Guard] = {}


def _guard(store: Store, scopes: tuple[str, ...], cost: int) -> Guard:
    key = (scopes, cost)
    guard = _GUARDS.get(key)
    if guard is None or guard.store is not store:
        guard = Guard(store, scopes, cost=cost)
        if len(_GUARDS) >= 256:
            _GUARDS.clear()
        _GUARDS[key] = guard
    return guard


def mark(carrier: MutableMapping[str, Any], outcome: Outcome) -> None:
    """Leaves an accepted request's marker for the checks after this one."""
    carrier[VERIFIED] = outcome.verified
