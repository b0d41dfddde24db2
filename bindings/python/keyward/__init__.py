"""keyward: an embedded API-key engine (issue, verify, revoke, rotate and count API keys
in-process), for Python through cffi over ``libkeyward``'s C ABI.

Quick start::

    import keyward

    with keyward.Store("keys.redb") as store:
        created = store.create("acct_42", scopes=["read"], env="live")
        print(created.key)                      # shown once: give it to the customer
        verdict = store.verify(created.key, ("read",))
        assert verdict.ok and verdict.owner == "acct_42"

Web servers use :class:`keyward.middleware.ASGIMiddleware` or
:class:`keyward.middleware.WSGIMiddleware`.
"""
from __future__ import annotations

from ._ffi import ABI_VERSION, LibraryError, ffi, lib, library_path
from ._ffi import mode as ffi_mode
from .errors import (
    ArgumentError,
    CredentialError,
    InternalError,
    KeyNotFoundError,
    KeywardError,
    PolicyError,
    StorageError,
    UpstreamError,
    StoreClosedError,
)
from .headers import CREDENTIAL_HEADERS, credential_headers
from .store import (
    DEFAULT_ROTATION_GRACE_MS,
    FLUSH_MANUAL,
    UNSET,
    Store,
    LEGACY_SCHEMES,
    extract_credential,
    legacy_key_id,
    parse_key,
    release_persistent,
)
from .types import (
    AuditEvent,
    AuditPage,
    CreatedKey,
    IssuedKey,
    Credential,
    CreditBalance,
    CreditTerms,
    Credits,
    DayUsage,
    KeyInfo,
    KeyPage,
    KeyState,
    LegacyImportReport,
    LegacyOrigin,
    OwnerInfo,
    ParsedKey,
    RateLimit,
    RateScope,
    RateStatus,
    Reason,
    Refill,
    ReplicaStats,
    StoreStats,
    TableStats,
    UsageStats,
    Verdict,
)

from . import middleware  # noqa: E402  (after Store, which it uses)

__version__ = "0.1.0"

#: Limits of the C ABI (``KW_MAX_*``), for callers validating input early.
MAX_OWNER_LEN: int = lib.KW_MAX_OWNER_LEN
MAX_NAME_LEN: int = lib.KW_MAX_NAME_LEN
MAX_SCOPE_LEN: int = lib.KW_MAX_SCOPE_LEN
MAX_SCOPES: int = lib.KW_MAX_SCOPES
MAX_METADATA_LEN: int = lib.KW_MAX_METADATA_LEN
MAX_REASON_LEN: int = lib.KW_MAX_REASON_LEN
MAX_PAGE_SIZE: int = lib.KW_MAX_PAGE_SIZE
MAX_KEY_LEN: int = lib.KW_MAX_KEY_LEN
MAX_PRESENTED_LEN: int = lib.KW_MAX_PRESENTED_LEN


def abi_version() -> int:
    """The C ABI version of the loaded library (equal to :data:`ABI_VERSION`, or the
    import would have failed)."""
    return int(lib.kw_abi_version())


def library_version() -> str:
    """The crate version of the loaded ``libkeyward``, e.g. ``"0.1.0"``."""
    return str(ffi.string(lib.kw_version()).decode("ascii"))


__all__ = [
    "ABI_VERSION",
    "CREDENTIAL_HEADERS",
    "DEFAULT_ROTATION_GRACE_MS",
    "FLUSH_MANUAL",
    "MAX_KEY_LEN",
    "MAX_METADATA_LEN",
    "MAX_NAME_LEN",
    "MAX_OWNER_LEN",
    "MAX_PAGE_SIZE",
    "MAX_PRESENTED_LEN",
    "MAX_REASON_LEN",
    "MAX_SCOPES",
    "MAX_SCOPE_LEN",
    "UNSET",
    "ArgumentError",
    "AuditEvent",
    "AuditPage",
    "CreatedKey",
    "IssuedKey",
    "Credential",
    "CredentialError",
    "CreditBalance",
    "CreditTerms",
    "Credits",
    "DayUsage",
    "InternalError",
    "KeyInfo",
    "KeyNotFoundError",
    "KeyPage",
    "KeyState",
    "OwnerInfo",
    "KeywardError",
    "LEGACY_SCHEMES",
    "LegacyImportReport",
    "LegacyOrigin",
    "LibraryError",
    "ParsedKey",
    "PolicyError",
    "RateLimit",
    "RateScope",
    "RateStatus",
    "Reason",
    "Refill",
    "StorageError",
    "UpstreamError",
    "Store",
    "StoreClosedError",
    "ReplicaStats",
    "StoreStats",
    "TableStats",
    "UsageStats",
    "Verdict",
    "abi_version",
    "credential_headers",
    "extract_credential",
    "ffi_mode",
    "legacy_key_id",
    "library_path",
    "library_version",
    "middleware",
    "parse_key",
    "release_persistent",
]
