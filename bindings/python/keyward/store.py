"""The :class:`Store`: one keyward key store, opened through the C ABI."""
from __future__ import annotations

import atexit
import datetime as _dt
import json
import os
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Union

from ._ffi import ffi, lib
from .errors import (
    ArgumentError,
    CredentialError,
    InternalError,
    KeywardError,
    failed_call_error,
    last_error_message,
)
from .headers import CREDENTIAL_HEADERS, HeaderSource, credential_headers
from .types import (
    AuditEvent,
    AuditPage,
    CreatedKey,
    IssuedKey,
    Credential,
    CreditBalance,
    Credits,
    DayUsage,
    KeyInfo,
    LegacyImportReport,
    RateLimit,
    KeyPage,
    KeyState,
    OwnerInfo,
    ParsedKey,
    Refill,
    ReplicaStats,
    StoreStats,
    TableStats,
    UsageStats,
    Verdict,
)
from .types import _REASON_HTTP, _REASONS

__all__ = [
    "DEFAULT_ROTATION_GRACE_MS",
    "FLUSH_MANUAL",
    "Store",
    "extract_credential",
    "legacy_key_id",
    "LEGACY_SCHEMES",
    "parse_key",
    "release_persistent",
]

#: Default grace period of :meth:`Store.rotate` (24 hours), in ms.
DEFAULT_ROTATION_GRACE_MS: int = lib.KW_DEFAULT_ROTATION_GRACE_MS
#: ``flush_interval_ms`` value that turns the background usage flush off.
FLUSH_MANUAL: int = lib.KW_FLUSH_MANUAL

Timestamp = Union[int, _dt.datetime]
Duration = Union[int, _dt.timedelta]
Day = Union[int, _dt.date]
Scopes = Union[Sequence[str], Iterable[str]]

_OK = 0
# Hot-path bindings (module globals, looked up once).
_NULL = ffi.NULL
_new = ffi.new
_VERDICT_PTR = ffi.typeof("kw_verdict *")

_DRY_RUN = lib.KW_VERIFY_DRY_RUN  # kw_verify_flags
_RATE = lib.KW_VERIFY_RATE_FIELDS  # our kw_verdict has the rate fields: fill them
# The hot path (cost 0, now, no info): kw_verify_key with flags, so a rate-limited key's
# state comes back in the same call.
_kw_verify_key_ex = lib.kw_verify_key_ex
_kw_verify_ex = lib.kw_verify_ex  # cost, at, info or a dry run
_kw_verify_headers_ex = lib.kw_verify_headers_ex  # the middlewares' hot path
# In API mode (build_api.py), kw_verify_headers_ex for one header given as two bytes objects.
_kwpy_verify_one = getattr(lib, "kwpy_verify_one", None)
_new_uncleared = ffi.new_allocator(should_clear_after_alloc=False)
_HEADER_ARRAY_T = ffi.typeof("kw_header[]")
_from_buffer = ffi.from_buffer
_object_new = object.__new__
_BUFFER_TOO_SMALL = lib.KW_BUFFER_TOO_SMALL
_KEY_INFO_MAX = lib.KW_KEY_INFO_MAX_LEN
_OWNER_INFO_MAX = lib.KW_OWNER_INFO_MAX_LEN
_MAX_KEY = lib.KW_MAX_KEY_LEN
_MAX_SCOPES = lib.KW_MAX_SCOPES
_U32 = 2**32 - 1
_I64 = 2**63 - 1
_EPOCH_DAY = _dt.date(1970, 1, 1)


class _Unset:
    """Marker of an :meth:`Store.update` field left unchanged."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


# --- argument conversion -------------------------------------------------------------------


_SPEC_FIELDS = frozenset({"owner", "name", "scopes", "env", "metadata", "expires_at", "credits"})


def _fill_new_key(
    nk: Any,
    owner: Any,
    name: Any,
    scopes: Any,
    env: Any,
    metadata: Any,
    expires_at: Any,
    credits: Any,
    keep: list[Any],
) -> None:
    """Fills a ``kw_new_key`` (the buffers it points to are kept alive in ``keep``)."""
    _set_str(nk.owner, _text(owner, "owner"), keep)
    _set_str(nk.name, _opt_text(name, "name"), keep)
    _set_str(nk.env, _opt_text(env, "env"), keep)
    scope_items = _scope_list(scopes)
    if scope_items:
        array, more = _kw_str_array(scope_items)
        keep.append(array)
        keep.extend(more)
        nk.scopes = array
        nk.scopes_len = len(scope_items)
    nk.metadata, nk.metadata_len = _metadata(metadata, keep)
    nk.expires_at_ms = 0 if expires_at is None else _time_ms(expires_at, "expires_at")
    nk.credits = _credits(credits, keep)


#: The systems :meth:`Store.import_legacy` reads, by name, with their ``kw_legacy_scheme``.
LEGACY_SCHEMES: dict[str, int] = {
    "sanctum": lib.KW_LEGACY_SANCTUM,
    "drf": lib.KW_LEGACY_DRF,
    "unkey": lib.KW_LEGACY_UNKEY,
    "better-auth": lib.KW_LEGACY_BETTER_AUTH,
}


def _legacy_scheme(source: Any) -> int:
    if not isinstance(source, str):
        raise TypeError(f"source must be str, not {type(source).__name__}")
    try:
        return LEGACY_SCHEMES[source]
    except KeyError:
        raise ArgumentError(
            lib.KW_INVALID_ARGUMENT,
            f"unknown source {source!r}: expected one of {', '.join(LEGACY_SCHEMES)}",
        ) from None


def legacy_key_id(source: str, source_id: str) -> str:
    """The public id keyward gives the key with id ``source_id`` in system ``source``
    (``"sanctum"``: its numeric id; ``"drf"``: its prefix; ``"unkey"``, ``"better-auth"``:
    its key id). The same on every import."""
    scheme = _legacy_scheme(source)
    raw = _text(source_id, "source_id")
    out = ffi.new("char[]", lib.KW_KEY_ID_LEN + 1)
    status = lib.kw_legacy_key_id(scheme, raw, len(raw), out)
    if status != _OK:
        _raise(status)
    text: bytes = ffi.string(out)
    return text.decode("ascii")


def _raise(status: int, detail: str | None = None) -> None:
    """Raises the exception for a library call that just failed with ``status`` on this
    thread (with the library's message about it: call this before any other keyward call)."""
    raise failed_call_error(status, detail)


def _text(value: Any, what: str) -> bytes:
    """A required text argument as UTF-8 bytes."""
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise ArgumentError(lib.KW_INVALID_UTF8, f"{what} is not valid Unicode text") from None
    raise TypeError(f"{what} must be str, not {type(value).__name__}")


def _key_text(value: Any, what: str) -> bytes:
    """A key or secret as bytes: ``str`` (UTF-8) or ``bytes`` as received."""
    if isinstance(value, str):
        # Lone surrogates pass through as the bytes they stand for, which are not UTF-8: the
        # library answers MALFORMED, as for any other key text that is not a key.
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def _opt_text(value: Any, what: str) -> bytes | None:
    return None if value is None else _text(value, what)


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ArgumentError(lib.KW_INVALID_ARGUMENT, f"{what} out of range: {value}")
    return value


def _time_ms(value: Any, what: str) -> int:
    """A point in time: ms since the epoch (int) or an aware/naive-UTC ``datetime``."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return int(value.timestamp() * 1000)
    return _int(value, what, -(2**63), _I64)


def _duration_ms(value: Any, what: str) -> int:
    if isinstance(value, _dt.timedelta):
        return int(value.total_seconds() * 1000)
    return _int(value, what, 0, 2**64 - 1)


def _day(value: Any, what: str) -> int:
    if isinstance(value, _dt.datetime):
        value = value.date()
    if isinstance(value, _dt.date):
        return (value - _EPOCH_DAY).days
    return _int(value, what, -(2**31), 2**31 - 1)


def _scope_list(scopes: Any, what: str = "scopes") -> list[bytes]:
    if isinstance(scopes, (str, bytes)):
        raise TypeError(f"{what} must be a list of str, not a single {type(scopes).__name__}")
    try:
        items = list(scopes)
    except TypeError:
        raise TypeError(f"{what} must be a list of str, not {type(scopes).__name__}") from None
    return [_text(s, f"each of {what}") for s in items]


def _kw_str_array(items: list[bytes]) -> tuple[Any, list[Any]]:
    """A ``kw_str[]`` over ``items`` plus the buffers that must outlive it."""
    array = ffi.new("kw_str[]", len(items))
    keep = []
    for i, raw in enumerate(items):
        buf = ffi.from_buffer(raw)
        keep.append(buf)
        array[i].ptr = buf
        array[i].len = len(raw)
    return array, keep


# Required-scope arrays of verify, cached by tuple (routes reuse the same few sets).
_SCOPE_CACHE: dict[tuple[Any, ...], tuple[Any, int, Any]] = {}
_SCOPE_CACHE_MAX = 1024


def _required_scopes(scopes: Any) -> tuple[Any, int, Any]:
    """``(kw_str *, count, keepalive)`` of required scopes; tuples are cached. The caller
    must hold ``keepalive`` for the duration of the C call."""
    if scopes is None or (not scopes and (type(scopes) is tuple or type(scopes) is list)):
        return _NULL, 0, None
    key = scopes if type(scopes) is tuple else None
    if key is not None:
        try:
            hit = _SCOPE_CACHE.get(key)
        except TypeError:  # unhashable items: let _scope_list explain
            hit = None
            key = None
        if hit is not None:
            return hit
    items = _scope_list(scopes)
    if len(items) > _MAX_SCOPES:
        raise ArgumentError(lib.KW_TOO_LONG, f"at most {_MAX_SCOPES} required scopes")
    if not items:
        return ffi.NULL, 0, None
    array, keep = _kw_str_array(items)
    entry = (array, len(items), keep)
    if key is not None:
        if len(_SCOPE_CACHE) >= _SCOPE_CACHE_MAX:
            _SCOPE_CACHE.clear()
        _SCOPE_CACHE[key] = entry
    return entry


def _set_str(target: Any, raw: bytes | None, keep: list[Any]) -> None:
    if raw is None:
        target.ptr = ffi.NULL
        target.len = 0
    else:
        buf = ffi.from_buffer(raw)
        keep.append(buf)
        target.ptr = buf
        target.len = len(raw)


def _rate_limit(value: Any, keep: list[Any]) -> Any:
    if value is None:
        return _NULL
    if not isinstance(value, RateLimit):
        raise TypeError(f"rate_limit must be keyward.RateLimit or None, not {type(value).__name__}")
    r = ffi.new("kw_rate_limit *")
    keep.append(r)
    r.rate = _int(value.rate, "rate_limit.rate", 0, 2**64 - 1)
    r.period_ms = _int(value.period_ms, "rate_limit.period_ms", 0, 2**64 - 1)
    r.burst = _int(value.burst, "rate_limit.burst", 0, 2**64 - 1)
    return r


def _credits(value: Any, keep: list[Any]) -> Any:
    if value is None:
        return ffi.NULL
    if not isinstance(value, Credits):
        raise TypeError(f"credits must be keyward.Credits or None, not {type(value).__name__}")
    c = ffi.new("kw_credits *")
    keep.append(c)
    c.remaining = _int(value.remaining, "credits.remaining", 0, 2**64 - 1)
    c.refill_amount = _int(value.refill_amount, "credits.refill_amount", 0, 2**64 - 1)
    c.refill_interval = _int(int(value.refill_interval), "credits.refill_interval", 0, _U32)
    c.cost = _int(value.cost, "credits.cost", 0, _U32)
    return c


def _metadata(value: Any, keep: list[Any]) -> tuple[Any, int]:
    if value is None:
        return ffi.NULL, 0
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"metadata must be bytes or str, not {type(value).__name__}")
    raw = bytes(value)
    buf = ffi.from_buffer(raw)
    keep.append(buf)
    return buf, len(raw)


def _wipe(buf: Any, n: int) -> None:
    if n:
        ffi.memmove(buf, b"\0" * n, n)


# The credential header names as C strings, made once (a request's header array points
# at these instead of wrapping its own copy of each name).
_HEADER_NAMES_C: dict[bytes, Any] = {n.encode(): ffi.new("char[]", n.encode()) for n in CREDENTIAL_HEADERS}


def _header_array(source: HeaderSource) -> tuple[Any, int, list[Any]]:
    return _pairs_array(credential_headers(source))


def _pairs_array(pairs: list[tuple[bytes, bytes]]) -> tuple[Any, int, list[Any]]:
    """``(kw_header[], count, keepalive)`` of credential ``(name, value)`` byte pairs. The
    caller must hold ``keepalive`` for the duration of the C call."""
    if not pairs:
        return _NULL, 0, []
    keep: list[Any] = []
    rows = []
    for name, value in pairs:
        n = _HEADER_NAMES_C.get(name)
        if n is None:  # a name in another case or with blanks: wrap it too
            n = _from_buffer(name)
            keep.append(n)
        v = _from_buffer(value)
        keep.append(v)
        rows.append((n, len(name), v, len(value)))
    return _new(_HEADER_ARRAY_T, rows), len(rows), keep


def _verdict_out(with_info: bool) -> tuple[Any, Any, int, Any]:
    raw = _new(_VERDICT_PTR)
    if not with_info:
        return raw, ffi.NULL, 0, ffi.NULL
    return raw, ffi.new("uint8_t[]", _KEY_INFO_MAX), _KEY_INFO_MAX, ffi.new("size_t *")


def _finish_verdict(raw: Any, info_buf: Any, info_len: Any) -> Verdict:
    info = None
    if info_buf != ffi.NULL and info_len[0]:
        info = KeyInfo.from_json(json.loads(ffi.buffer(info_buf, info_len[0])[:]))
    return Verdict(raw, info)


# --- module-level functions (no store) ------------------------------------------------------


def parse_key(text: str | bytes, prefix: str | None = None) -> ParsedKey:
    """Parses and checks a key offline (structure, charset, CRC32 checksum).

    ``prefix`` is the expected prefix, or ``None`` to accept any valid one. A malformed key
    is not an error: the answer has ``valid=False`` and ``error`` names the problem
    (the names of ``tests/vectors/keys.json``).
    """
    raw = _key_text(text, "key")
    p = _opt_text(prefix, "prefix")
    out = ffi.new("kw_parsed_key *")
    status = lib.kw_parse_key(raw, len(raw), p if p is not None else ffi.NULL, len(p or b""), out)
    if status != _OK:
        _raise(status)
    try:
        if not out.valid:
            return ParsedKey(valid=False, error=ffi.string(lib.kw_key_error_name(out.error)).decode())
        return ParsedKey(
            valid=True,
            error="ok",
            prefix=ffi.string(out.prefix).decode(),
            env=ffi.string(out.env).decode() or None,
            id=ffi.string(out.id).decode(),
            secret=ffi.string(out.secret).decode(),
        )
    finally:
        _wipe(out.secret, ffi.sizeof(out.secret))


def extract_credential(headers: HeaderSource) -> Credential:
    """Finds the credential in request headers without verifying it.

    Accepts what :func:`keyward.headers.credential_headers` accepts (dict, pairs, WSGI
    environ, ASGI scope). Raises :class:`CredentialError` (HTTP 401) when there is none or
    it is unusable: ``CREDENTIAL_MISSING``, ``UNSUPPORTED_SCHEME``, ``BAD_BASE64``,
    ``HALF_PAIR``, ``AMBIGUOUS_CREDENTIAL``, ``MALFORMED_KEY`` (a value over
    ``KW_MAX_HEADER_VALUE_LEN``).
    """
    array, n, _keep = _header_array(headers)
    kind = ffi.new("uint32_t *")
    secret_len = ffi.new("size_t *")
    id_len = ffi.new("size_t *")
    cap_secret = cap_id = 256
    for _ in range(3):
        secret_buf = ffi.new("uint8_t[]", cap_secret)
        id_buf = ffi.new("uint8_t[]", cap_id)
        status = lib.kw_extract_credential(
            array, n, kind, secret_buf, cap_secret, secret_len, id_buf, cap_id, id_len
        )
        if status == _BUFFER_TOO_SMALL:
            cap_secret, cap_id = max(secret_len[0], 1), max(id_len[0], 1)
            continue
        if status != _OK:
            raise _header_error(status)
        try:
            secret = ffi.buffer(secret_buf, secret_len[0])[:].decode("utf-8")
            if kind[0] == lib.KW_CREDENTIAL_PAIR:
                key_id = ffi.buffer(id_buf, id_len[0])[:].decode("utf-8")
                return Credential(kind="pair", id=key_id, secret=secret)
            return Credential(kind="key", key=secret)
        finally:
            _wipe(secret_buf, cap_secret)
    raise InternalError(_BUFFER_TOO_SMALL, "credential buffer kept growing")


def release_persistent() -> None:
    """Releases every store opened with ``persistent=True``: one without open handles is
    flushed and closed now, one with open handles closes with its last :meth:`Store.close`.

    Called automatically at interpreter exit once a persistent store was opened. Raises
    :class:`StorageError` with the first flush failure (every store is released regardless).
    """
    status = lib.kw_release_persistent()
    if status != _OK:
        _raise(status, "releasing persistent stores")


_release_registered = False


def _release_at_exit() -> None:
    lib.kw_release_persistent()


def _header_error(status: int) -> KeywardError:
    """The exception for a header-reading call that just failed (see :func:`_raise`): the
    class of the status's family, so a header problem (what the client sent) is a
    :class:`CredentialError` and a bad scope (what the application passed) an
    :class:`ArgumentError`."""
    return failed_call_error(status)


# --- the store -------------------------------------------------------------------------------


def _close_handle(handle: int) -> int:
    return int(lib.kw_close(handle))


class Store:
    """An open keyward store (a ``redb`` file plus its pepper).

    Thread-safe: one ``Store`` may be shared by every thread of a process, and the C calls
    run without the GIL. Open it once per process and keep it; opening a path this process
    already has open returns a new handle onto the same warm store. After ``fork()`` the child
    may keep using a store opened by the parent (it is reopened in the child on first use),
    so gunicorn ``--preload`` works.

    Use it as a context manager, or call :meth:`close` (which flushes pending usage counts);
    a store that is garbage-collected or still open at interpreter exit is closed then.

    Args:
        path: the database file; its directory must exist; created if missing.
        pepper: the 32-byte pepper (``bytes``) or its 64 hex characters (``str``). With
            neither ``pepper`` nor ``pepper_file``, ``<path>.pepper`` is used (created, mode
            0600, with a new store).
        pepper_file: path of a pepper file instead.
        prefix: key prefix of a new store (``[a-z0-9]{1,16}``; default ``kw``).
        single_process: this process is the only one using the file (faster commits; other
            processes get ``LOCKED``). Default: several processes may share it.
        persistent: keep the store open for the life of the process even after its last
            handle closes.
        max_active_keys_per_owner: policy; 0 = unlimited.
        keep_last_key: policy: refuse to revoke or delete an owner's last active key.
        max_lifetime: policy: longest key lifetime (ms or ``timedelta``); every key then
            needs an expiry. ``None`` = unlimited.
        flush_interval_ms: background usage flush interval; 0 = default (1000 ms);
            :data:`FLUSH_MANUAL` = only :meth:`flush` and :meth:`close` write usage. After a
            long flush the next waits 100 times its duration (at most 30 s, unless the
            interval is longer).
        index_capacity: most key records this process keeps decoded in front of the shared
            verify table; 0 = default (65 536).
        upstream: connection URL of the upstream PostgreSQL this store replicates (several
            hosts, README "Several hosts"), e.g. ``postgresql://keyward@db.internal/keyward``.
            :meth:`create`, :meth:`create_many`, :meth:`update`, :meth:`revoke`,
            :meth:`delete` and :meth:`rotate` are then written to PostgreSQL first and applied
            here once it committed; they raise :class:`UpstreamError` when it cannot be
            reached (nothing was changed). Opening connects to nothing; verifies never use
            it. ``None`` = a store of its own.
    """

    __slots__ = ("_handle", "_finalizer", "_path", "__weakref__")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        pepper: bytes | str | None = None,
        pepper_file: str | os.PathLike[str] | None = None,
        prefix: str | None = None,
        single_process: bool = False,
        persistent: bool = False,
        max_active_keys_per_owner: int = 0,
        keep_last_key: bool = False,
        max_lifetime: Duration | None = None,
        flush_interval_ms: int = 0,
        index_capacity: int = 0,
        upstream: str | None = None,
    ) -> None:
        self._handle = 0
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be str or os.PathLike, not {type(path).__name__}")
        raw_path = os.fsencode(path)
        self._path = os.fsdecode(raw_path)
        keep: list[Any] = []
        o = ffi.new("kw_options *")
        p = ffi.from_buffer(raw_path)
        keep.append(p)
        o.path = p
        o.path_len = len(raw_path)
        if pepper is not None:
            if isinstance(pepper, str):
                pepper = pepper.encode("ascii", "replace")
            if not isinstance(pepper, (bytes, bytearray)):
                raise TypeError(f"pepper must be bytes or str, not {type(pepper).__name__}")
            pb = ffi.from_buffer(bytes(pepper))
            keep.append(pb)
            o.pepper = pb
            o.pepper_len = len(pepper)
        if pepper_file is not None:
            if not isinstance(pepper_file, (str, os.PathLike)):
                raise TypeError(f"pepper_file must be str or os.PathLike, not {type(pepper_file).__name__}")
            raw = os.fsencode(pepper_file)
            pf = ffi.from_buffer(raw)
            keep.append(pf)
            o.pepper_file = pf
            o.pepper_file_len = len(raw)
        if prefix is not None:
            raw = _text(prefix, "prefix")
            pr = ffi.from_buffer(raw)
            keep.append(pr)
            o.prefix = pr
            o.prefix_len = len(raw)
        o.concurrency = (
            lib.KW_CONCURRENCY_SINGLE_PROCESS if single_process else lib.KW_CONCURRENCY_MULTI_PROCESS
        )
        o.flags = lib.KW_OPEN_PERSISTENT if persistent else 0
        if upstream is not None:
            raw = _text(upstream, "upstream")
            up = ffi.from_buffer(raw)
            keep.append(up)
            o.upstream = up
            o.upstream_len = len(raw)
            o.flags |= lib.KW_OPEN_UPSTREAM
        o.max_active_keys_per_owner = _int(max_active_keys_per_owner, "max_active_keys_per_owner", 0, _U32)
        o.keep_last_key = 1 if keep_last_key else 0
        o.max_lifetime_ms = 0 if max_lifetime is None else _duration_ms(max_lifetime, "max_lifetime")
        o.flush_interval_ms = _int(flush_interval_ms, "flush_interval_ms", 0, 2**64 - 1)
        o.index_capacity = _int(index_capacity, "index_capacity", 0, 2**64 - 1)
        out = ffi.new("kw_store *")
        status = lib.kw_open(o, out)
        if status != _OK:
            _raise(status, f"opening {self._path}")
        self._handle = int(out[0])
        self._finalizer = weakref.finalize(self, _close_handle, self._handle)
        if persistent:
            global _release_registered
            if not _release_registered:
                _release_registered = True
                atexit.register(_release_at_exit)  # flush pinned stores at an orderly exit

    # --- life cycle ------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The database path given to the constructor."""
        return self._path

    @property
    def handle(self) -> int:
        """The C ABI handle (``kw_store``), for interop with other C code in the process."""
        return self._handle

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return not self._finalizer.alive

    def close(self) -> None:
        """Closes this handle. Closing twice is a no-op.

        Closing the last handle onto the store (of a store not opened ``persistent``)
        flushes pending usage counts and closes the store; closing another handle only
        releases it. Verifies in flight on other threads finish first; calls started
        afterwards raise :class:`StoreClosedError`. Raises :class:`StorageError` if the final
        flush failed (the handle is closed all the same).
        """
        status = self._finalizer()
        if status:  # None when already closed
            _raise(status, "flushing usage at close")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<keyward.Store {self._path!r} {state}>"

    def _check(self, status: int) -> None:
        if status != _OK:
            _raise(status)

    def flush(self) -> int:
        """Writes this process's pending usage counts now; returns how many keys were written."""
        out = ffi.new("size_t *")
        self._check(lib.kw_flush(self._handle, out))
        return int(out[0])

    def stats(self) -> StoreStats:
        """This process's counters for the store."""
        s = ffi.new("kw_store_stats *")
        self._check(lib.kw_stats(self._handle, s))
        t = ffi.new("kw_store_table_stats *")
        self._check(lib.kw_table_stats(self._handle, t))
        r = ffi.new("kw_store_replica_stats *")
        self._check(lib.kw_replica_stats(self._handle, r))
        replica = None
        if r.is_replica:
            replica = ReplicaStats(
                cursor=r.cursor,
                connected=bool(r.connected),
                synced_at_ms=r.synced_at_ms,
                staleness_ms=None if r.staleness_ms < 0 else r.staleness_ms,
                reported_at_ms=r.reported_at_ms,
            )
        return StoreStats(
            commits=s.commits,
            refreshes=s.refreshes,
            indexed_keys=s.indexed_keys,
            dirty_keys=s.dirty_keys,
            index_complete=bool(s.index_complete),
            table=TableStats(
                generation=t.generation,
                slots=t.slots,
                keys=t.keys,
                lookup_bytes=t.lookup_bytes,
                file_bytes=t.file_bytes,
                cached_records=t.cached_records,
                rebuilds=t.rebuilds,
                slots_repaired=t.slots_repaired,
                mapped=bool(t.mapped),
            ),
            replica=replica,
        )

    def same_store(self, other: Store) -> bool:
        """Whether ``other`` is a handle onto the same open store as this one."""
        if not isinstance(other, Store):
            raise TypeError(f"other must be a keyward.Store, not {type(other).__name__}")
        out = ffi.new("uint32_t *")
        self._check(lib.kw_same_store(self._handle, other._handle, out))
        return bool(out[0])

    # --- verify (the hot path) -------------------------------------------------------------

    def verify(
        self,
        key: str | bytes,
        scopes: Scopes = (),
        *,
        cost: int = 0,
        at: Timestamp | None = None,
        with_info: bool = False,
        dry_run: bool = False,
    ) -> Verdict:
        """Verifies a full key against the scopes a route requires (all are needed).

        Args:
            key: the key as sent (``str`` or ``bytes``). Text that is not a key, or longer
                than ``KW_MAX_PRESENTED_LEN``, is a ``MALFORMED`` verdict, not an error.
            scopes: required scopes (a tuple is cached and cheapest).
            cost: credits to spend if the key is limited; 0 = the key's own cost.
            at: judge expiry at this time (ms or ``datetime``) instead of now.
            with_info: also read the key's full record into :attr:`Verdict.info`.
            dry_run: check without consuming: the full verdict, but no use, refusal or
                last-used time is counted and no credit is spent (a limited key is ``VALID``
                if the credits available now cover the cost, ``USAGE_EXCEEDED`` otherwise).

        Returns a :class:`Verdict`; a refused key is ``verdict.ok == False``. Raises
        :class:`StoreClosedError`, :class:`StorageError`, ``TypeError`` or
        :class:`ArgumentError` only when the call itself fails.
        """
        if type(key) is str:
            try:
                raw = key.encode()
            except UnicodeEncodeError:
                raw = key.encode("utf-8", "surrogatepass")  # not UTF-8: MALFORMED
        else:
            raw = _key_text(key, "key")
        if scopes or not (type(scopes) is tuple or type(scopes) is list):
            sp, sn, _keep = _required_scopes(scopes)
        else:
            sp, sn = _NULL, 0
        if cost or at is not None or with_info or dry_run:
            cost = _int(cost, "cost", 0, _U32)
            at_ms = 0 if at is None else _time_ms(at, "at")
            out, info_buf, info_cap, info_len = _verdict_out(with_info)
            flags = _RATE | (_DRY_RUN if dry_run else 0)
            status = _kw_verify_ex(
                self._handle, raw, len(raw), sp, sn, cost, at_ms, flags, out, info_buf, info_cap, info_len
            )
            if status:
                _raise(status)
            return _finish_verdict(out, info_buf, info_len)
        # The hot path: no info, default cost, now, through kw_verify_key_ex (seven arguments
        # instead of twelve: cffi converts each one); the Verdict is built inline (no Python
        # __new__ frame), its HTTP status taken from the reason table.
        out = _new_uncleared(_VERDICT_PTR)  # with _RATE it writes the whole struct on success
        status = _kw_verify_key_ex(self._handle, raw, len(raw), sp, sn, _RATE, out)
        if status:
            _raise(status)
        r = out.reason
        verdict: Any = _object_new(Verdict)
        verdict._raw = out
        verdict.reason = _REASONS[r]
        verdict.http_status = _REASON_HTTP[r]
        verdict.ok = r == 0
        return verdict  # type: ignore[no-any-return]

    def verify_pair(
        self,
        key_id: str | bytes,
        secret: str | bytes,
        scopes: Scopes = (),
        *,
        cost: int = 0,
        at: Timestamp | None = None,
        with_info: bool = False,
        dry_run: bool = False,
    ) -> Verdict:
        """Verifies a (public id, secret) pair, as sent in ``X-Api-Token-Id`` /
        ``X-Api-Token-Secret-Key`` (the full key is also accepted as the secret).
        Arguments and result as :meth:`verify`."""
        raw_id = _key_text(key_id, "key_id")
        raw_secret = _key_text(secret, "secret")
        sp, sn, _keep_scopes = _required_scopes(scopes)
        cost = _int(cost, "cost", 0, _U32)
        at_ms = 0 if at is None else _time_ms(at, "at")
        out, info_buf, info_cap, info_len = _verdict_out(with_info)
        status = lib.kw_verify_pair_ex(
            self._handle, raw_id, len(raw_id), raw_secret, len(raw_secret), sp, sn, cost, at_ms,
            _RATE | (_DRY_RUN if dry_run else 0), out, info_buf, info_cap, info_len,
        )
        if status != _OK:
            _raise(status)
        return _finish_verdict(out, info_buf, info_len)

    def verify_headers(
        self,
        headers: HeaderSource,
        scopes: Scopes = (),
        *,
        cost: int = 0,
        at: Timestamp | None = None,
        with_info: bool = False,
        dry_run: bool = False,
    ) -> Verdict:
        """Finds the credential in request headers (``x-api-key``, ``Authorization: Bearer``
        / ``Basic``, or the ``X-Api-Token-Id`` + ``X-Api-Token-Secret-Key`` pair) and
        verifies it.

        ``headers`` is a dict, a list of pairs, a WSGI environ or an ASGI scope (see
        :mod:`keyward.headers`). Raises :class:`CredentialError` (HTTP 401, with ``.code``
        such as ``"CREDENTIAL_MISSING"``) when the headers hold no usable credential; else
        returns a :class:`Verdict` as :meth:`verify`.
        """
        if not (cost or at is not None or with_info or dry_run):
            return self._verify_credentials(credential_headers(headers), scopes)
        array, n, _keep = _header_array(headers)
        sp, sn, _keep_scopes = _required_scopes(scopes)
        if cost:
            cost = _int(cost, "cost", 0, _U32)
        at_ms = 0 if at is None else _time_ms(at, "at")
        out, info_buf, info_cap, info_len = _verdict_out(with_info)
        status = lib.kw_verify_headers_ex(
            self._handle, array, n, sp, sn, cost, at_ms, _RATE | (_DRY_RUN if dry_run else 0), out, info_buf,
            info_cap, info_len,
        )
        if status != _OK:
            raise _header_error(status)
        return _finish_verdict(out, info_buf, info_len)

    def _verify_credentials(
        self, pairs: list[tuple[bytes, bytes]], scopes: Scopes, cost: int = 0, c_scopes: Any = None
    ) -> Verdict:
        """The request hot path of :meth:`verify_headers` and the middlewares: ``pairs`` are
        the request's credential headers (:func:`keyward.headers.credential_headers`), judged
        now, without the key's record. ``cost`` must be a checked ``int`` (0 = the key's);
        ``c_scopes``: ``_required_scopes(scopes)`` when the caller keeps it."""
        sp, sn, _keep_scopes = c_scopes or _required_scopes(scopes)
        out = _new_uncleared(_VERDICT_PTR)  # written whole on success
        if len(pairs) == 1:  # the usual request: one credential header, no list to build
            name, value = pairs[0]
            if _kwpy_verify_one is not None and type(name) is bytes and type(value) is bytes:
                # API mode: the two bytes objects go to C as they are (no cffi objects made)
                status = _kwpy_verify_one(self._handle, name, len(name), value, len(value), sp, sn, cost, out)
            else:
                c_name = _HEADER_NAMES_C.get(name)
                c_value = _from_buffer(value)  # held until the call returns
                if c_name is None:
                    array, n, _keep = _pairs_array(pairs)
                else:
                    array, n = _new(_HEADER_ARRAY_T, ((c_name, len(name), c_value, len(value)),)), 1
                status = _kw_verify_headers_ex(self._handle, array, n, sp, sn, cost, 0, _RATE, out, _NULL, 0, _NULL)
        else:
            array, n, _keep = _pairs_array(pairs)
            status = _kw_verify_headers_ex(self._handle, array, n, sp, sn, cost, 0, _RATE, out, _NULL, 0, _NULL)
        if status:
            raise _header_error(status)
        r = out.reason
        verdict: Any = _object_new(Verdict)
        verdict._raw = out
        verdict.reason = _REASONS[r]
        verdict.http_status = _REASON_HTTP[r]
        verdict.ok = r == 0
        return verdict  # type: ignore[no-any-return]

    # --- management ------------------------------------------------------------------------

    def _call_with_key_out(self, call: Any) -> CreatedKey:
        key_buf = ffi.new("uint8_t[]", _MAX_KEY)
        key_len = ffi.new("size_t *")
        info_buf = ffi.new("uint8_t[]", _KEY_INFO_MAX)
        info_len = ffi.new("size_t *")
        try:
            self._check(call(key_buf, _MAX_KEY, key_len, info_buf, _KEY_INFO_MAX, info_len))
            key = ffi.buffer(key_buf, key_len[0])[:].decode("ascii")
        finally:
            _wipe(key_buf, _MAX_KEY)
        info = KeyInfo.from_json(json.loads(ffi.buffer(info_buf, info_len[0])[:]))
        return CreatedKey(key=key, info=info)

    def create(
        self,
        owner: str,
        *,
        name: str | None = None,
        scopes: Scopes = (),
        env: str | None = None,
        metadata: bytes | str | None = None,
        expires_at: Timestamp | None = None,
        credits: Credits | None = None,
        rate_limit: RateLimit | None = None,
    ) -> CreatedKey:
        """Creates a key and returns it with its record.

        The full key (``result.key``) is returned this once: keyward stores only a keyed
        digest of its secret. Hand it to the customer and do not log it.

        Args:
            owner: account or workspace id (required, at most 128 bytes).
            name: a human name (at most 256 bytes).
            scopes: scopes granted (at most 64, each at most 64 bytes).
            env: env tag written into the key (``[a-z0-9]{1,16}``, e.g. ``"live"``).
            metadata: host-defined bytes (often JSON; at most 4096 bytes).
            expires_at: expiry (ms since the epoch or ``datetime``); ``None`` = never.
            credits: usage credits (:class:`Credits`); ``None`` = unlimited.
            rate_limit: the key's own rate limit (:class:`RateLimit`); ``None`` = none. Set
                right after the create (``kw_set_rate_limit``); if that fails the new key is
                deleted and the error raised.

        Raises :class:`ArgumentError`, :class:`PolicyError`, :class:`StoreClosedError`,
        :class:`StorageError`, ``TypeError``.
        """
        keep: list[Any] = []
        limit = _rate_limit(rate_limit, keep)
        nk = ffi.new("kw_new_key *")
        _fill_new_key(nk, owner, name, scopes, env, metadata, expires_at, credits, keep)
        created = self._call_with_key_out(lambda *out: lib.kw_create(self._handle, nk, *out))
        if limit == _NULL:
            return created
        raw_id = created.info.id.encode()
        info_buf = ffi.new("uint8_t[]", _KEY_INFO_MAX)
        info_len = ffi.new("size_t *")
        status = lib.kw_set_rate_limit(self._handle, raw_id, len(raw_id), limit, info_buf, _KEY_INFO_MAX, info_len)
        if status != _OK:
            lib.kw_delete(self._handle, raw_id, len(raw_id))
            self._check(status)
        info = KeyInfo.from_json(json.loads(ffi.buffer(info_buf, info_len[0])[:]))
        return CreatedKey(key=created.key, info=info)

    def set_owner_rate_limit(self, owner: str, limit: RateLimit | None) -> None:
        """Sets (or with ``None`` removes) the rate limit ``owner`` shares among all of its
        keys; a key with its own limit must pass both. Every process of the host applies it
        from its next verify. Raises :class:`ArgumentError` (blank owner, bad terms),
        :class:`PolicyError` (``RATE_SLOTS_EXHAUSTED``)."""
        keep: list[Any] = []
        raw = _text(owner, "owner")
        self._check(lib.kw_set_owner_rate_limit(self._handle, raw, len(raw), _rate_limit(limit, keep)))

    def owner_rate_limit(self, owner: str) -> RateLimit | None:
        """The rate limit ``owner`` shares among its keys, if any."""
        raw = _text(owner, "owner")
        out = ffi.new("kw_rate_limit *")
        found = ffi.new("uint32_t *")
        self._check(lib.kw_owner_rate_limit(self._handle, raw, len(raw), out, found))
        return RateLimit(rate=out.rate, period_ms=out.period_ms, burst=out.burst) if found[0] else None

    def create_many(self, specs: Iterable[dict[str, Any]]) -> list[IssuedKey]:
        """Creates many keys in one durable transaction: all of them, or none.

        Each spec is a ``dict`` of the arguments of :meth:`create` (``owner`` required;
        ``name``, ``scopes``, ``env``, ``metadata``, ``expires_at``, ``credits``). Returns
        the keys in the order of ``specs`` (the full key, this once, and the id); much
        faster than one :meth:`create` per key. At most ``MAX_CREATE_MANY`` (100,000) specs.

        A refused spec raises the error :meth:`create` would raise, and nothing is created;
        its message names the spec's index (``"new key 3 of the batch (0-based) ..."``).
        """
        items = list(specs)
        if not items:
            raise ArgumentError(lib.KW_INVALID_ARGUMENT, "create_many needs at least one spec")
        keep: list[Any] = []
        array = ffi.new("kw_new_key[]", len(items))
        for index, spec in enumerate(items):
            if not isinstance(spec, dict):
                raise TypeError(f"spec {index} must be a dict, not {type(spec).__name__}")
            unknown = set(spec) - _SPEC_FIELDS
            if unknown:
                raise TypeError(f"spec {index} has unknown field(s): {', '.join(sorted(unknown))}")
            if "owner" not in spec:
                raise TypeError(f"spec {index} has no owner")
            _fill_new_key(
                array[index],
                spec["owner"],
                spec.get("name"),
                spec.get("scopes", ()),
                spec.get("env"),
                spec.get("metadata"),
                spec.get("expires_at"),
                spec.get("credits"),
                keep,
            )
        out = ffi.new("kw_created_key[]", len(items))
        count = ffi.new("size_t *")
        try:
            self._check(lib.kw_create_many(self._handle, array, len(items), out, len(items), count))
            return [
                IssuedKey(
                    key=ffi.string(out[i].key, out[i].key_len).decode("ascii"),
                    id=ffi.string(out[i].id).decode("ascii"),
                )
                for i in range(count[0])
            ]
        finally:
            _wipe(out, ffi.sizeof(out))

    def import_legacy(
        self,
        source: str,
        data: bytes | str,
        *,
        dry_run: bool = False,
        sanctum_expiration_minutes: int | None = None,
        all_scopes: Scopes | None = None,
        default_owner: str | None = None,
    ) -> LegacyImportReport:
        """Imports the keys another system issued, from its export, so they keep working as
        they are (no customer gets a new key); each is upgraded to keyward's own digest on
        its first successful verify. All or nothing.

        Args:
            source: ``"sanctum"``, ``"drf"``, ``"unkey"`` or ``"better-auth"``.
            data: the export (CSV with a header row, or JSON lines; the columns are in
                README.md, "Migrating keys from another system").
            dry_run: report what would be imported; write nothing.
            sanctum_expiration_minutes: Sanctum's ``sanctum.expiration`` setting.
            all_scopes: the scopes a Sanctum ability ``"*"`` stands for (rows with ``"*"``
                are refused without it).
            default_owner: owner of rows that name none (DRF keys have none).

        Raises :class:`ArgumentError` (``LEGACY_IMPORT_INVALID``: its message names the line),
        :class:`StoreClosedError`, :class:`StorageError`, ``TypeError``.
        """
        scheme = _legacy_scheme(source)
        raw = data.encode("utf-8") if isinstance(data, str) else _key_text(data, "data")
        keep: list[Any] = []
        options = ffi.new("kw_legacy_import_options *")
        options.dry_run = 1 if dry_run else 0
        if sanctum_expiration_minutes is not None:
            options.sanctum_expiration_minutes = _int(
                sanctum_expiration_minutes, "sanctum_expiration_minutes", 1, 2**64 - 1
            )
        if all_scopes is not None:
            scopes = _scope_list(all_scopes, "all_scopes")
            array = ffi.new("kw_str[]", max(len(scopes), 1))
            for i, scope in enumerate(scopes):
                buf = ffi.from_buffer(scope)
                keep.append(buf)
                array[i].ptr = ffi.cast("const char *", buf)
                array[i].len = len(scope)
            keep.append(array)
            options.all_scopes = array
            options.all_scopes_len = len(scopes)
        if default_owner is not None:
            owner = _text(default_owner, "default_owner")
            buf = ffi.from_buffer(owner)
            keep.append(buf)
            options.default_owner.ptr = ffi.cast("const char *", buf)
            options.default_owner.len = len(owner)
        report = ffi.new("kw_legacy_import_report *")
        self._check(lib.kw_import_legacy(self._handle, scheme, raw, len(raw), options, report))
        return LegacyImportReport(
            scheme=source,
            dry_run=bool(report.dry_run),
            rows=int(report.rows),
            imported=int(report.imported),
            already_present=int(report.already_present),
            deleted=int(report.deleted),
            revoked=int(report.revoked),
            expired=int(report.expired),
        )

    def rotate(self, key_id: str, grace: Duration = DEFAULT_ROTATION_GRACE_MS) -> CreatedKey:
        """Replaces a key with a new one (same owner, name, scopes, env, metadata, lifetime
        length and remaining credits) and returns the new key, this once.

        The old key stays valid for ``grace`` (ms or ``timedelta``; 0 = refused at once;
        default 24 hours). Raises :class:`KeyNotFoundError`, :class:`ArgumentError` (a
        revoked key), and the errors of :meth:`create`.
        """
        raw_id = _text(key_id, "key_id")
        grace_ms = _duration_ms(grace, "grace")
        return self._call_with_key_out(
            lambda *out: lib.kw_rotate(self._handle, raw_id, len(raw_id), grace_ms, *out)
        )

    def _read_json(self, call: Any, initial: int = 16384) -> Any:
        """Runs a call with a (buf, cap, out_len) output, growing the buffer as told."""
        cap = initial
        out_len = ffi.new("size_t *")
        for _ in range(8):
            buf = ffi.new("uint8_t[]", cap)
            status = call(buf, cap, out_len)
            if status == _BUFFER_TOO_SMALL:
                cap = max(int(out_len[0]), cap * 2)
                continue
            self._check(status)
            return json.loads(ffi.buffer(buf, out_len[0])[:])
        raise InternalError(_BUFFER_TOO_SMALL, "output kept growing")

    def get(self, key_id: str) -> KeyInfo:
        """The record of a key. Raises :class:`KeyNotFoundError`."""
        raw = _text(key_id, "key_id")
        return KeyInfo.from_json(self._read_json(lambda b, c, n: lib.kw_get(self._handle, raw, len(raw), b, c, n), 4096))

    def list_keys(
        self,
        owner: str,
        *,
        state: KeyState | int = KeyState.ALL,
        limit: int = 100,
        after: int | None = None,
    ) -> KeyPage:
        """One page of an owner's keys in creation order.

        ``state`` filters (:class:`KeyState`); ``limit`` is 1..1000; ``after`` is the
        previous page's ``next`` (``None`` for the first page).
        """
        raw = _text(owner, "owner")
        st = _int(int(state) if isinstance(state, KeyState) else state, "state", 0, _U32)
        lim = _int(limit, "limit", 1, _U32)
        aft = 0 if after is None else _int(after, "after", 0, 2**64 - 1)
        page = self._read_json(
            lambda b, c, n: lib.kw_list(self._handle, raw, len(raw), aft, lim, st, b, c, n), 65536
        )
        return KeyPage(keys=tuple(KeyInfo.from_json(r) for r in page["keys"]), next=page.get("next"))

    def iter_keys(self, owner: str, *, state: KeyState | int = KeyState.ALL, page_size: int = 100) -> Iterator[KeyInfo]:
        """Every key of an owner, page by page."""
        after: int | None = None
        while True:
            page = self.list_keys(owner, state=state, limit=page_size, after=after)
            yield from page.keys
            if page.next is None:
                return
            after = page.next

    # --- the audit log ---------------------------------------------------------------------

    def with_actor(self, actor: str) -> Store:
        """A second handle onto the same store whose changes are stamped with ``actor`` in the
        audit log (the user, service or request the application acts for). Close it like any
        handle (it is a context manager); an empty actor means none."""
        raw = _text(actor, "actor")
        out = ffi.new("kw_store *")
        self._check(lib.kw_with_actor(self._handle, raw, len(raw), out))
        other = Store.__new__(Store)
        other._path = self._path
        other._handle = int(out[0])
        other._finalizer = weakref.finalize(other, _close_handle, other._handle)
        return other

    def audit(
        self,
        *,
        key_id: str | None = None,
        owner: str | None = None,
        actor: str | None = None,
        since: Timestamp | None = None,
        until: Timestamp | None = None,
        after: int | None = None,
        limit: int = 100,
    ) -> AuditPage:
        """One page of audit events, oldest first, matching every filter given.

        ``since`` is inclusive, ``until`` exclusive (ms or ``datetime``); ``limit`` is
        1..1000; ``after`` is the previous page's ``next``."""
        texts = [None if v is None else _text(v, what) for v, what in ((key_id, "key_id"), (owner, "owner"), (actor, "actor"))]
        args: list[Any] = []
        for raw in texts:
            args += [ffi.NULL, 0] if raw is None else [raw, len(raw)]
        since_ms = 0 if since is None else _time_ms(since, "since")
        until_ms = 0 if until is None else _time_ms(until, "until")
        aft = 0 if after is None else _int(after, "after", 0, 2**64 - 1)
        lim = _int(limit, "limit", 1, _U32)
        page = self._read_json(
            lambda b, c, n: lib.kw_audit(self._handle, *args, since_ms, until_ms, aft, lim, b, c, n), 65536
        )
        return AuditPage(events=tuple(AuditEvent.from_json(e) for e in page["events"]), next=page.get("next"))

    def iter_audit(self, *, page_size: int = 100, **filters: Any) -> Iterator[AuditEvent]:
        """Every audit event matching ``filters`` (those of :meth:`audit`), page by page."""
        after: int | None = None
        while True:
            page = self.audit(limit=page_size, after=after, **filters)
            yield from page.events
            if page.next is None:
                return
            after = page.next

    def set_audit_retention(self, days: int) -> None:
        """Keep ``days`` days of audit events (0 = all); older ones are pruned by later writes.
        Applies to every handle onto this store in this process."""
        self._check(lib.kw_set_audit_retention(self._handle, _int(days, "days", 0, _U32)))

    def all_keys(self) -> list[KeyInfo]:
        """Every key of the store in creation order (an export)."""
        records = self._read_json(lambda b, c, n: lib.kw_all_keys(self._handle, b, c, n), 65536)
        return [KeyInfo.from_json(r) for r in records]

    def update(
        self,
        key_id: str,
        *,
        name: str = UNSET,
        scopes: Scopes = UNSET,
        metadata: bytes | str = UNSET,
        expires_at: Timestamp | None = UNSET,
        credits: Credits | None = UNSET,
        rate_limit: RateLimit | None = UNSET,
    ) -> KeyInfo:
        """Changes the given fields of a key and returns its new record.

        Only the arguments passed are changed; ``expires_at=None`` removes the expiry,
        ``credits=None`` makes the key unlimited, ``rate_limit=None`` removes its rate limit
        (changed by its own call, ``kw_set_rate_limit``, after the other fields) and
        ``metadata=None`` empties the metadata. Raises :class:`KeyNotFoundError`,
        :class:`ArgumentError`, :class:`PolicyError`.
        """
        raw_id = _text(key_id, "key_id")
        keep: list[Any] = []
        if rate_limit is not UNSET:
            limit = _rate_limit(rate_limit, keep)
            if all(v is UNSET for v in (name, scopes, metadata, expires_at, credits)):
                info_buf = ffi.new("uint8_t[]", _KEY_INFO_MAX)
                info_len = ffi.new("size_t *")
                self._check(
                    lib.kw_set_rate_limit(self._handle, raw_id, len(raw_id), limit, info_buf, _KEY_INFO_MAX, info_len)
                )
                return KeyInfo.from_json(json.loads(ffi.buffer(info_buf, info_len[0])[:]))
            self.update(key_id, name=name, scopes=scopes, metadata=metadata, expires_at=expires_at, credits=credits)
            return self.update(key_id, rate_limit=rate_limit)
        u = ffi.new("kw_key_update *")
        fields = 0
        if name is not UNSET:
            _set_str(u.name, _text(name, "name"), keep)
            fields |= lib.KW_UPDATE_NAME
        if scopes is not UNSET:
            items = _scope_list(scopes)
            if items:
                array, more = _kw_str_array(items)
                keep.append(array)
                keep.extend(more)
                u.scopes = array
            u.scopes_len = len(items)
            fields |= lib.KW_UPDATE_SCOPES
        if metadata is not UNSET:
            u.metadata, u.metadata_len = _metadata(metadata if metadata is not None else b"", keep)
            fields |= lib.KW_UPDATE_METADATA
        if expires_at is not UNSET:
            u.expires_at_ms = 0 if expires_at is None else _time_ms(expires_at, "expires_at")
            fields |= lib.KW_UPDATE_EXPIRES_AT
        if credits is not UNSET:
            u.credits = _credits(credits, keep)
            fields |= lib.KW_UPDATE_CREDITS
        u.fields = fields
        info_buf = ffi.new("uint8_t[]", _KEY_INFO_MAX)
        info_len = ffi.new("size_t *")
        self._check(lib.kw_update(self._handle, raw_id, len(raw_id), u, info_buf, _KEY_INFO_MAX, info_len))
        return KeyInfo.from_json(json.loads(ffi.buffer(info_buf, info_len[0])[:]))

    def revoke(self, key_id: str, reason: str | None = None) -> KeyInfo:
        """Revokes a key for good and returns its record (revoking twice changes nothing).

        Every process sharing the store refuses the key on its next verify. Raises
        :class:`KeyNotFoundError`, :class:`PolicyError` (``keep_last_key``)."""
        raw_id = _text(key_id, "key_id")
        raw_reason = _opt_text(reason, "reason")
        info_buf = ffi.new("uint8_t[]", _KEY_INFO_MAX)
        info_len = ffi.new("size_t *")
        self._check(
            lib.kw_revoke(
                self._handle, raw_id, len(raw_id),
                raw_reason if raw_reason is not None else ffi.NULL, len(raw_reason or b""),
                info_buf, _KEY_INFO_MAX, info_len,
            )
        )
        return KeyInfo.from_json(json.loads(ffi.buffer(info_buf, info_len[0])[:]))

    def delete(self, key_id: str) -> None:
        """Deletes a key and its usage history. Raises :class:`KeyNotFoundError`,
        :class:`PolicyError` (``keep_last_key``)."""
        raw = _text(key_id, "key_id")
        self._check(lib.kw_delete(self._handle, raw, len(raw)))

    # --- owner controls --------------------------------------------------------------------

    def _owner_change(self, call: Any) -> OwnerInfo:
        buf = ffi.new("uint8_t[]", _OWNER_INFO_MAX)
        out_len = ffi.new("size_t *")
        self._check(call(buf, _OWNER_INFO_MAX, out_len))
        return OwnerInfo.from_json(json.loads(ffi.buffer(buf, out_len[0])[:]))

    def suspend_owner(self, owner: str, reason: str | None = None) -> OwnerInfo:
        """Suspends an owner: every key of it is refused with ``OWNER_SUSPENDED`` (HTTP 403)
        from the next verify in every process, until :meth:`resume_owner`. Suspending a
        suspended owner changes nothing. Audited (``owner_suspend``)."""
        raw = _text(owner, "owner")
        raw_reason = _opt_text(reason, "reason")
        return self._owner_change(
            lambda b, c, n: lib.kw_owner_suspend(
                self._handle, raw, len(raw),
                raw_reason if raw_reason is not None else ffi.NULL, len(raw_reason or b""), b, c, n,
            )
        )

    def resume_owner(self, owner: str) -> OwnerInfo:
        """Resumes a suspended owner (changes nothing if it is not suspended). Raises
        :class:`KeyNotFoundError` (code ``OWNER_NOT_FOUND``) for an owner with neither a record
        nor keys. Audited (``owner_resume``)."""
        raw = _text(owner, "owner")
        return self._owner_change(lambda b, c, n: lib.kw_owner_resume(self._handle, raw, len(raw), b, c, n))

    def set_owner_scopes(self, owner: str, scopes: Sequence[str] | None) -> OwnerInfo:
        """Sets the scopes an owner's keys may use (``None``: unrestricted). A key's effective
        scopes, checked and reported by verify, are its own within these, from the next verify
        in every process. Audited (``owner_scopes``)."""
        raw = _text(owner, "owner")
        if scopes is None:
            return self._owner_change(
                lambda b, c, n: lib.kw_owner_set_scopes(self._handle, raw, len(raw), ffi.NULL, 0, 1, b, c, n)
            )
        items = _scope_list(scopes)
        array, keep = _kw_str_array(items)
        info = self._owner_change(
            lambda b, c, n: lib.kw_owner_set_scopes(self._handle, raw, len(raw), array, len(items), 0, b, c, n)
        )
        del keep
        return info

    def owner(self, owner: str) -> OwnerInfo:
        """An owner's controls and key count. Raises :class:`KeyNotFoundError` (code
        ``OWNER_NOT_FOUND``) for an owner with neither a record nor keys."""
        raw = _text(owner, "owner")
        return OwnerInfo.from_json(
            self._read_json(lambda b, c, n: lib.kw_owner_get(self._handle, raw, len(raw), b, c, n))
        )

    def owners(self) -> list[OwnerInfo]:
        """Every owner record (owners ever suspended or given allowed scopes), by owner."""
        return [
            OwnerInfo.from_json(o)
            for o in self._read_json(lambda b, c, n: lib.kw_owners_list(self._handle, b, c, n))
        ]

    # --- usage -----------------------------------------------------------------------------

    def usage(self, key_id: str) -> UsageStats:
        """A key's usage: what is stored plus what this process has not flushed yet."""
        raw = _text(key_id, "key_id")
        out = ffi.new("kw_usage_stats *")
        self._check(lib.kw_usage(self._handle, raw, len(raw), out))
        return UsageStats(uses=out.uses, refused=out.refused, last_used_at=out.last_used_ms or None)

    def usage_by_day(self, key_id: str, start: Day, end: Day) -> list[DayUsage]:
        """Uses per UTC day from ``start`` to ``end`` inclusive (``date`` objects or day
        numbers since 1970-01-01); days without use are omitted. Counts are those flushed:
        call :meth:`flush` first for this process's latest."""
        raw = _text(key_id, "key_id")
        a, b = _day(start, "start"), _day(end, "end")
        if b < a or b - a >= lib.KW_MAX_USAGE_DAYS:
            raise ArgumentError(
                lib.KW_INVALID_ARGUMENT,
                f"day range must be ordered and span at most {lib.KW_MAX_USAGE_DAYS} days",
            )
        rows = self._read_json(
            lambda buf, cap, n: lib.kw_usage_by_day(self._handle, raw, len(raw), a, b, buf, cap, n), 4096
        )
        return [DayUsage(day=_dt.date.fromisoformat(r["day"]), uses=r["uses"]) for r in rows]

    def unused_since(self, owner: str, since: Timestamp) -> list[KeyInfo]:
        """An owner's keys not used since ``since`` (never used, or last used before it),
        oldest first."""
        raw = _text(owner, "owner")
        since_ms = _time_ms(since, "since")
        records = self._read_json(
            lambda b, c, n: lib.kw_unused_since(self._handle, raw, len(raw), since_ms, b, c, n)
        )
        return [KeyInfo.from_json(r) for r in records]

    def expiring_within(self, within: Duration) -> list[KeyInfo]:
        """Active keys (neither revoked nor expired, not rotated away) whose expiry falls
        within ``within`` (ms or ``timedelta``) from now, soonest first: keys to warn about."""
        within_ms = min(_duration_ms(within, "within"), 2**63 - 1)
        records = self._read_json(lambda b, c, n: lib.kw_expiring_within(self._handle, within_ms, b, c, n))
        return [KeyInfo.from_json(r) for r in records]

    def credits_below(self, threshold: int) -> list[tuple[KeyInfo, int]]:
        """Active limited keys (not rotated away) with fewer than ``threshold`` credits left
        now, fewest first, each as ``(record, credits left)``: keys to warn about."""
        n_below = _int(threshold, "threshold", 0, 2**64 - 1)
        entries = self._read_json(lambda b, c, n: lib.kw_credits_below(self._handle, n_below, b, c, n))
        return [(KeyInfo.from_json(e["key"]), int(e["remaining"])) for e in entries]

    def credits(self, key_id: str) -> CreditBalance | None:
        """A limited key's credits now, or ``None`` for an unlimited key."""
        raw = _text(key_id, "key_id")
        out = ffi.new("kw_credit_balance *")
        self._check(lib.kw_key_credits(self._handle, raw, len(raw), out))
        if not out.limited:
            return None
        return CreditBalance(
            remaining=out.remaining,
            cost=out.cost,
            refill_amount=out.refill_amount,
            refill_interval=Refill(out.refill_interval),
        )

