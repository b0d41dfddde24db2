"""Exceptions raised by keyward, mapped from the C ABI's ``kw_status`` codes.

Every exception derives from :class:`KeywardError`, which carries the numeric ``status`` and
its stable ``code`` (the status name without ``KW_``, e.g. ``"NOT_FOUND"``). Subclasses group
the codes by family so callers can catch what they can handle::

    try:
        store.revoke(key_id)
    except keyward.KeyNotFoundError:
        ...
"""
from __future__ import annotations

from typing import ClassVar

from ._ffi import ffi, lib

__all__ = [
    "ArgumentError",
    "CredentialError",
    "InternalError",
    "KeyNotFoundError",
    "KeywardError",
    "PolicyError",
    "StorageError",
    "StoreClosedError",
    "error_for_status",
    "status_code",
    "status_message",
]


def status_code(status: int) -> str:
    """The stable name of a ``kw_status`` without the ``KW_`` prefix (``"UNKNOWN"`` if unknown)."""
    return str(ffi.string(lib.kw_status_name(status)).decode("ascii"))


def status_message(status: int) -> str:
    """The English message of a ``kw_status``."""
    return str(ffi.string(lib.kw_status_message(status)).decode("utf-8"))


class KeywardError(Exception):
    """Base class of every keyward error.

    Attributes:
        status: the numeric ``kw_status`` value.
        code: its stable name, e.g. ``"NOT_FOUND"``.
        message: an English description.
    """

    #: HTTP status a web handler should answer with when this error reaches it.
    http_status: ClassVar[int] = 500

    def __init__(self, status: int, detail: str | None = None) -> None:
        self.status = int(status)
        self.code = status_code(self.status)
        self.message = status_message(self.status)
        self.detail = detail
        text = f"{self.code}: {self.message}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)

    def __reduce__(self) -> tuple[type[KeywardError], tuple[int, str | None]]:
        # Keep the exception picklable (multiprocessing re-raises it in the parent).
        return (type(self), (self.status, self.detail))


class ArgumentError(KeywardError, ValueError):
    """An argument was refused: invalid, NULL, not UTF-8 or too long
    (``INVALID_ARGUMENT``, ``NULL_ARGUMENT``, ``INVALID_UTF8``, ``TOO_LONG``)."""


class InternalError(KeywardError):
    """A bug in keyward or in this binding (``PANIC``, ``BUFFER_TOO_SMALL``)."""


class StoreClosedError(KeywardError):
    """The store was closed (``CLOSED``)."""


class KeyNotFoundError(KeywardError, LookupError):
    """No key with that id exists (``NOT_FOUND``)."""

    http_status = 404


class PolicyError(KeywardError):
    """A store policy refused the change (``POLICY_MAX_ACTIVE_KEYS``,
    ``POLICY_LAST_ACTIVE_KEY``, ``POLICY_MAX_LIFETIME``, ``CREDIT_SLOTS_EXHAUSTED``)."""

    http_status = 409


class StorageError(KeywardError):
    """Opening or using the database failed (``DIRECTORY_MISSING``, ``LOCKED``,
    ``READ_ONLY``, ``CORRUPT``, ``WRONG_PEPPER``, ``NEWER_FORMAT``, ``PEPPER_*``,
    ``CONFIG_MISMATCH``, ``STORAGE``)."""


class CredentialError(KeywardError):
    """The request's headers hold no usable credential: missing, unsupported scheme, bad
    base64, half a token pair, several different credentials, an oversize or non-UTF-8
    credential header, or text that is not a key. Always HTTP 401."""

    http_status = 401


_FAMILIES: dict[int, type[KeywardError]] = {
    1: ArgumentError,
    2: ArgumentError,
    3: ArgumentError,
    4: ArgumentError,
    5: InternalError,
    6: InternalError,
    7: StoreClosedError,
    10: KeyNotFoundError,
    20: PolicyError,
    21: PolicyError,
    22: PolicyError,
    42: PolicyError,
    50: CredentialError,
    51: CredentialError,
    52: CredentialError,
    53: CredentialError,
    54: CredentialError,
    55: CredentialError,
}


def error_for_status(status: int, detail: str | None = None) -> KeywardError:
    """The exception for a non-OK ``kw_status`` (a :class:`StorageError` for 30..49)."""
    cls = _FAMILIES.get(status)
    if cls is None:
        cls = StorageError if 30 <= status < 50 else KeywardError
    return cls(status, detail)
