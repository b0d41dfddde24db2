"""The classes of :mod:`keyward.contrib.drf`: authentication, permission, store access."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from ...middleware import Guard, Outcome, Verified
from ...store import Store
from ...types import Verdict
from .. import VERIFIED, check_request, earlier_verified, scope_tuple

__all__ = ["HasScopes", "KeyOwner", "KeywardAuthentication", "close_store", "get_store"]

# The value of the middleware's 401 WWW-Authenticate header (one source of truth).
_WWW_AUTHENTICATE = dict(Outcome(status=401, code="", message="").headers())["www-authenticate"]

# Credential problems that mean "no keyward credential here": another authentication
# class (session, DRF token, djangorestframework-api-key's "Api-Key" scheme) may take it.
_NOT_MINE = frozenset({"CREDENTIAL_MISSING", "UNSUPPORTED_SCHEME"})

_lock = threading.Lock()
_store: tuple[Any, Store, bool] | None = None  # (STORE setting value, store, opened here)
_user_hook: tuple[Any, Callable[[str], Any] | None] | None = None


def _config() -> dict[str, Any]:
    conf = getattr(settings, "KEYWARD", None)
    if not isinstance(conf, dict) or "STORE" not in conf:
        raise ImproperlyConfigured(
            'keyward: settings.KEYWARD must be a dict with "STORE" (a path, a keyward.Store, '
            "or a callable returning one)"
        )
    return conf


def get_store() -> Store:
    """The store ``settings.KEYWARD["STORE"]`` names, opened once per process on first use
    (so each gunicorn worker opens its own after the fork)."""
    global _store
    value = _config()["STORE"]
    cached = _store
    if cached is not None and cached[0] is value and not cached[1].closed:
        return cached[1]
    with _lock:
        cached = _store
        if cached is not None and cached[0] is value and not cached[1].closed:
            return cached[1]
        if isinstance(value, Store):
            store, owned = value, False
        elif isinstance(value, (str, os.PathLike)):
            store, owned = Store(os.fspath(value), **_config().get("STORE_OPTIONS", {})), True
        elif callable(value):
            store, owned = value(), False
            if not isinstance(store, Store):
                raise ImproperlyConfigured(f'keyward: KEYWARD["STORE"]() returned {type(store).__name__}, not a keyward.Store')
        else:
            raise ImproperlyConfigured(f'keyward: KEYWARD["STORE"] cannot be a {type(value).__name__}')
        if cached is not None and cached[2]:
            cached[1].close()
        _store = (value, store, owned)
        return store


def close_store() -> None:
    """Closes the store :func:`get_store` opened (flushing its usage counts), if any: call it
    from gunicorn's ``worker_exit`` hook. A store given as an object is left to its owner."""
    global _store
    with _lock:
        cached, _store = _store, None
    if cached is not None and cached[2]:
        cached[1].close()


def _reset() -> None:
    global _user_hook
    close_store()
    _user_hook = None


class KeyOwner:
    """``request.user`` for a keyed request when no ``USER_FOR_OWNER`` hook is set: an
    authenticated, non-staff user whose ``username`` and ``pk`` are the key's owner."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, owner: str) -> None:
        self.owner = self.username = self.pk = self.id = owner

    def get_username(self) -> str:
        return self.owner

    def __str__(self) -> str:
        return self.owner

    def __repr__(self) -> str:
        return f"KeyOwner({self.owner!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyOwner) and other.owner == self.owner

    def __hash__(self) -> int:
        return hash(self.owner)


def _user_for(owner: str) -> Any:
    global _user_hook
    value = getattr(settings, "KEYWARD", {}).get("USER_FOR_OWNER")
    hook_cache = _user_hook
    if hook_cache is None or hook_cache[0] is not value:
        hook = import_string(value) if isinstance(value, str) else value
        if hook is not None and not callable(hook):
            raise ImproperlyConfigured('keyward: KEYWARD["USER_FOR_OWNER"] must be a callable or its dotted path')
        hook_cache = _user_hook = (value, hook)
    hook = hook_cache[1]
    return KeyOwner(owner) if hook is None else hook(owner)


def _django_request(request: Any) -> Any:
    return getattr(request, "_request", request)


def _earlier(django_request: Any) -> Verified | None:
    return earlier_verified(django_request.META, getattr(django_request, "scope", None))


def _mark(django_request: Any, verified: Verified | None, verdict: Verdict | None) -> None:
    django_request.META[VERIFIED] = verified
    django_request.META["keyward.verdict"] = verdict


def _refuse(outcome: Outcome) -> exceptions.APIException:
    if outcome.status == 401:
        return exceptions.AuthenticationFailed(outcome.message, outcome.code)
    if outcome.status == 429:
        # DRF's own 429: its exception handler writes ``Retry-After`` (whole seconds).
        retry_ms = outcome.verdict.retry_after_ms if outcome.verdict is not None else None
        wait = None if retry_ms is None else -(-retry_ms // 1000)
        return exceptions.Throttled(wait=wait, detail=outcome.message, code=outcome.code)
    return exceptions.PermissionDenied(outcome.message, outcome.code)


class KeywardAuthentication(BaseAuthentication):  # type: ignore[misc]
    """Authenticates a request by its API key (``X-API-Key``, ``Authorization: Bearer`` or
    ``Basic id:secret``, or the ``X-Api-Token-Id`` / ``X-Api-Token-Secret-Key`` pair):
    ``request.auth`` is the :class:`~keyward.Verdict`, ``request.user`` the owner's user.

    A request without a keyward credential (no credential header, or an ``Authorization``
    scheme keyward does not read) is left to the other authentication classes. A bad one
    (unknown, malformed, revoked or expired key) is refused with ``401`` and the verdict's
    message, ``{"detail": "..."}``, with ``WWW-Authenticate: Bearer realm="api"`` when this
    class is the first in ``authentication_classes``; a key whose credits are spent with
    ``403``. One use is counted per request; a request an outer keyward middleware (same
    store) accepted is not verified again.
    """

    def authenticate(self, request: Any) -> tuple[Any, Verdict] | None:
        django_request = _django_request(request)
        outcome = check_request(get_store(), django_request.META, (), earlier=_earlier(django_request))
        if not outcome.ok or outcome.verdict is None:
            if outcome.code in _NOT_MINE:
                return None
            raise _refuse(outcome)
        _mark(django_request, outcome.verified, outcome.verdict)
        user = _user_for(outcome.verdict.owner or "")
        if user is None:
            raise exceptions.AuthenticationFailed("no user for this key's owner", "OWNER_UNKNOWN")
        return user, outcome.verdict

    def authenticate_header(self, request: Any) -> str:
        return _WWW_AUTHENTICATE


class _HasScopesBase(BasePermission):  # type: ignore[misc]
    required: tuple[str, ...] = ()
    message = "this endpoint needs an API key"
    code = "CREDENTIAL_MISSING"

    def has_permission(self, request: Any, view: Any) -> bool:
        verdict = request.auth  # runs authentication if it has not run yet
        django_request = _django_request(request)
        earlier = _earlier(django_request)
        if not isinstance(verdict, Verdict) or earlier is None or earlier.verdict is not verdict:
            return False  # not authenticated by a key: 401 (or 403 for another user)
        outcome = Guard(earlier.store, self.required).recheck(earlier, self.required)
        if outcome.ok:
            _mark(django_request, outcome.verified, verdict)
            return True
        if outcome.status == 401:  # the key was deleted in between
            raise _refuse(outcome)
        self.message, self.code = outcome.message, outcome.code
        return False


def HasScopes(*scopes: str) -> type[BasePermission]:  # noqa: N802 - used like a class
    """A permission class requiring a key (authenticated by :class:`KeywardAuthentication`)
    that holds every one of ``scopes`` (none: any valid key):
    ``permission_classes = [HasScopes("invoices:read")]``. It composes with DRF's ``&``,
    ``|`` and ``~``.

    A key lacking a scope gets ``403`` ``{"detail": "key lacks a required scope"}``; a
    request without a key ``401``. The scopes are read from the key's record (the verify
    already counted the request's one use), so a refusal here counts as that use.
    """
    required = scope_tuple(scopes, "HasScopes")
    name = f"HasScopes({', '.join(map(repr, required))})"
    return type(name, (_HasScopesBase,), {"required": required, "__module__": __name__})
