"""Django REST framework: keyward as a Django app.

``settings.py``::

    INSTALLED_APPS = [..., "rest_framework", "keyward.contrib.drf"]
    KEYWARD = {
        "STORE": "/var/lib/myapp/keys.redb",            # a path (opened once per process, lazily),
                                                        # a keyward.Store, or a callable returning one
        "STORE_OPTIONS": {},                            # keyword arguments of keyward.Store(path, ...)
        "USER_FOR_OWNER": "myapp.auth.user_for_owner",  # optional: owner -> user (or None)
    }
    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["keyward.contrib.drf.KeywardAuthentication"],
    }

A view then requires scopes with ``permission_classes = [HasScopes("invoices:read")]``
(``HasScopes()``: any valid key). ``request.auth`` is the :class:`~keyward.Verdict`,
``request.user`` what ``USER_FOR_OWNER`` returned (without it, a :class:`KeyOwner`).
Keys are managed with ``python manage.py keyward create|list|revoke``.

The classes live in :mod:`keyward.contrib.drf.auth` and are loaded on first use, so listing
the app in ``INSTALLED_APPS`` imports nothing from DRF while Django sets up.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth import HasScopes, KeyOwner, KeywardAuthentication, close_store, get_store

__all__ = ["HasScopes", "KeyOwner", "KeywardAuthentication", "close_store", "get_store"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import auth

        return getattr(auth, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
