"""Exceptions raised by keyward, mapped from the C ABI's ``kw_status`` codes.

Every exception derives from :class:`KeywardError`, which carries the numeric ``status``, its
stable ``code`` (the status name without ``KW_``, e.g. ``"NOT_FOUND"``) and, for a failed
library call, the library's own account of the ``cause`` (which file, which permission, what
to do), read with ``kw_last_error_message`` right after the call. Subclasses group the codes
by family so callers can catch what they can handle::

    try:
        store.revoke(key_id)
    except keyward.KeyNotFoundError:
        ...
"""
from __future__ import annotations

from typing import ClassVar

from ._ffi import ffi, lib

_new = ffi.new
_kw_last_error_message = lib.kw_last_error_message
_BUFFER_TOO_SMALL = lib.KW_BUFFER_TOO_SMALL

__all__ = [
    "ArgumentError",
    "CredentialError",
    "InternalError",
    "KeyNotFoundError",
    "KeywardError",
    "PolicyError",
    "StorageError",
    "UpstreamError",
    "StoreClosedError",
    "error_for_status",
    "failed_call_error",
    "last_error_message",
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

    ``str(error)`` is ``"CODE: cause (detail)"``, or ``"CODE: message (detail)"`` when the
    library gave no cause.

    Attributes:
        status: the numeric ``kw_status`` value.
        code: its stable name, e.g. ``"NOT_FOUND"``.
        message: the English description of the status (the same for every error with
            this code; safe to show to an HTTP client).
        cause: what the library said about this failure, e.g. ``"pepper file
            /srv/keys.redb.pepper has mode 644 and is readable by others; run `chmod 600`
            on it"``, or ``None``. It may name server paths: log it, do not send it to
            clients.
        detail: what the binding was doing (``"opening keys.redb"``), or ``None``.
    """

    #: HTTP status a web handler should answer with when this error reaches it.
    http_status: ClassVar[int] = 500

    def __init__(self, status: int, detail: str | None = None, cause: str | None = None) -> None:
        self.status = int(status)
        self.code = status_code(self.status)
        self.message = status_message(self.status)
        self.detail = detail
        self.cause = cause or None
        text = f"{self.code}: {self.cause or self.message}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)

    def __reduce__(self) -> tuple[type[KeywardError], tuple[int, str | None, str | None]]:
        # Keep the exception picklable (multiprocessing re-raises it in the parent).
        return (type(self), (self.status, self.detail, self.cause))


class ArgumentError(KeywardError, ValueError):
    """An argument was refused: invalid, NULL, not UTF-8 or too long, or options that do not
    fit the store (``INVALID_ARGUMENT``, ``NULL_ARGUMENT``, ``INVALID_UTF8``, ``TOO_LONG``,
    ``CONFIG_MISMATCH``)."""


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
    ``STORAGE``)."""


class UpstreamError(KeywardError):
    """The store replicates an upstream PostgreSQL (``UPSTREAM_REQUIRED``: make the change
    through the upstream), or the upstream is unreachable or of another schema
    (``UPSTREAM_UNAVAILABLE``, ``UPSTREAM_SCHEMA``); nothing was changed."""


class CredentialError(KeywardError):
    """The request's headers hold no usable credential: missing, unsupported scheme, bad
    base64, half a token pair, several different credentials, an oversize or non-UTF-8
    credential header, or text that is not a key. Always HTTP 401."""

    http_status = 401


# The exception class follows the family the library gives each code (kw_status_family, from
# its one table of codes), so a code added to the library lands in the right class without a
# change here. Two codes have a class of their own.
_BY_FAMILY: dict[int, type[KeywardError]] = {
    lib.KW_FAMILY_ARGUMENT: ArgumentError,
    lib.KW_FAMILY_NOT_FOUND: KeyNotFoundError,
    lib.KW_FAMILY_POLICY: PolicyError,
    lib.KW_FAMILY_STORAGE: StorageError,
    lib.KW_FAMILY_PEPPER: StorageError,
    lib.KW_FAMILY_CREDENTIAL: CredentialError,
    lib.KW_FAMILY_INTERNAL: InternalError,
    lib.KW_FAMILY_UPSTREAM: UpstreamError,
}
_BY_STATUS: dict[int, type[KeywardError]] = {
    lib.KW_CLOSED: StoreClosedError,
    # A buffer the binding sized is too small: the binding's bug.
    lib.KW_BUFFER_TOO_SMALL: InternalError,
}


def error_for_status(status: int, detail: str | None = None, cause: str | None = None) -> KeywardError:
    """The exception for a non-OK ``kw_status``: its class follows the library's family of
    the code (``kw_status_family``)."""
    cls = _BY_STATUS.get(status) or _BY_FAMILY.get(lib.kw_status_family(status), KeywardError)
    return cls(status, detail, cause)


_MESSAGE_CAP = 1024


def last_error_message() -> str:
    """The library's detailed message about the last keyward call on this thread that
    failed (``""`` if it had none to add to its status).

    Read it right after the failing call: the next keyward call on the thread clears it.
    The binding does this itself; every :class:`KeywardError` raised for a failed call
    carries it as :attr:`KeywardError.cause`.
    """
    out_len = _new("size_t *")
    buf = _new("uint8_t[]", _MESSAGE_CAP)
    status = _kw_last_error_message(buf, _MESSAGE_CAP, out_len)
    if status == _BUFFER_TOO_SMALL:
        cap = int(out_len[0])
        buf = _new("uint8_t[]", cap)
        status = _kw_last_error_message(buf, cap, out_len)
    if status != 0:
        return ""
    return str(ffi.buffer(buf, out_len[0])[:].decode("utf-8", "replace"))


def failed_call_error(status: int, detail: str | None = None) -> KeywardError:
    """The exception for a library call that just returned ``status`` on this thread, with
    the library's message about it as its ``cause``. Call it before any other keyward
    call."""
    return error_for_status(status, detail, last_error_message() or None)
