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

from ..middleware import Guard, Outcome, Verified
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
    """
    return Guard(store, scopes, cost=cost).check(headers, "GET", "/", earlier=earlier)


def mark(carrier: MutableMapping[str, Any], outcome: Outcome) -> None:
    """Leaves an accepted request's marker for the checks after this one."""
    carrier[VERIFIED] = outcome.verified
