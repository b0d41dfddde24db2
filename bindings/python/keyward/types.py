"""Value types returned by keyward: verdicts, key records, usage figures.

Times are integers in milliseconds since the Unix epoch (UTC), exactly as the C ABI and
the JSON records carry them; ``None`` means absent (no expiry, never revoked, ...).
"""
from __future__ import annotations

import base64
import datetime as _dt
import enum
from dataclasses import dataclass, field
from typing import Any

from ._ffi import ffi, lib

__all__ = [
    "CreatedKey",
    "IssuedKey",
    "Credential",
    "CreditBalance",
    "CreditTerms",
    "Credits",
    "DayUsage",
    "KeyInfo",
    "KeyPage",
    "KeyState",
    "LegacyImportReport",
    "LegacyOrigin",
    "OwnerInfo",
    "ParsedKey",
    "Reason",
    "Refill",
    "StoreStats",
    "UsageStats",
    "Verdict",
]


class Reason(enum.IntEnum):
    """Why a key was accepted or refused (``kw_reason``); stable numbers."""

    VALID = 0
    MALFORMED = 1
    NOT_FOUND = 2
    REVOKED = 3
    EXPIRED = 4
    INSUFFICIENT_SCOPE = 5
    USAGE_EXCEEDED = 6
    OWNER_SUSPENDED = 7
    RATE_LIMITED = 8

    @property
    def code(self) -> str:
        """The stable code, e.g. ``"INSUFFICIENT_SCOPE"``."""
        return _REASON_CODES[self]

    @property
    def message(self) -> str:
        """A short English message."""
        return _REASON_MESSAGES[self]

    @property
    def http_status(self) -> int:
        """The HTTP status to answer: 200, 401, 403 or 429."""
        return _REASON_HTTP[self]


# Static strings of the library, read once (the hot path indexes these tuples by the reason's
# number; numbers are not contiguous: 7 belongs to another reason).
_REASON_RANGE = range(max(Reason) + 1)
_REASON_CODES: tuple[str, ...] = tuple(ffi.string(lib.kw_reason_code(r)).decode() for r in _REASON_RANGE)
_REASON_MESSAGES: tuple[str, ...] = tuple(ffi.string(lib.kw_reason_message(r)).decode() for r in _REASON_RANGE)
_REASON_HTTP: tuple[int, ...] = tuple(lib.kw_reason_http_status(r) for r in _REASON_RANGE)
_REASONS: tuple[Reason, ...] = tuple(
    Reason(r) if r in Reason._value2member_map_ else Reason.NOT_FOUND for r in _REASON_RANGE
)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A rate limit: ``rate`` requests per ``period_ms``, with bursts of up to ``burst``
    (from rest, ``burst`` requests pass at once; then one every ``period_ms / rate``).
    ``burst`` 0 means ``rate``. Exact across every process of a host."""

    rate: int
    period_ms: int = 1000
    burst: int = 0

    @classmethod
    def from_json(cls, record: dict[str, Any] | None) -> RateLimit | None:
        """From the library's JSON object (``None`` stays ``None``)."""
        if record is None:
            return None
        return cls(rate=record["rate"], period_ms=record["period_ms"], burst=record["burst"])


class RateScope(enum.IntEnum):
    """Whose rate limit a verdict describes (``kw_rate_scope``)."""

    NONE = 0
    KEY = 1
    OWNER = 2


@dataclass(frozen=True, slots=True)
class RateStatus:
    """Where a verified key stands against the tighter of its own and its owner's rate
    limits (:attr:`Verdict.rate`)."""

    scope: RateScope
    limit: RateLimit
    #: Requests that could pass right now.
    remaining: int
    #: Milliseconds until a full burst is available again.
    reset_ms: int
    #: For ``RATE_LIMITED``: milliseconds until the next request would be accepted.
    retry_after_ms: int | None


class Refill(enum.IntEnum):
    """How often a limited key's credits refill (``kw_refill_interval``)."""

    NONE = 0
    DAILY = 1
    MONTHLY = 2


class KeyState(enum.IntEnum):
    """Which keys :meth:`Store.list_keys` returns (``kw_state_filter``)."""

    ALL = 0
    ACTIVE = 1
    REVOKED = 2
    EXPIRED = 3


def _str_field(raw: Any) -> str:
    return str(ffi.string(raw).decode("utf-8", "replace"))


class Verdict:
    """The result of a verify. A refused key is a verdict, not an exception.

    ``ok``, ``reason`` and ``http_status`` are read eagerly; the key fields are decoded on
    first access. ``key_found`` is true when the key exists and its secret was right: the
    key fields are then set even for a refused key (revoked, expired, insufficient scope,
    usage exceeded).
    """

    __slots__ = ("_raw", "_data", "reason", "http_status", "ok")

    _raw: Any
    _data: bytes
    reason: Reason
    http_status: int
    ok: bool

    def __getattr__(self, name: str) -> Any:
        # A verdict the middlewares' compiled judge (keyward._kw_fast) made holds its
        # ``kw_verdict`` as bytes (``_data``): the cffi view of it is made on first use.
        if name == "_raw":
            raw = ffi.from_buffer("kw_verdict *", object.__getattribute__(self, "_data"))
            self._raw = raw
            return raw
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __new__(cls, raw: Any, info: KeyInfo | None = None) -> Verdict:
        self = object.__new__(_VerdictWithInfo if info is not None else cls)
        r = raw.reason
        self._raw = raw
        self.reason = _REASONS[r] if r < len(_REASONS) else Reason(r)
        self.http_status = raw.http_status
        self.ok = r == 0
        if info is not None:
            self._info = info  # type: ignore[attr-defined]
        return self

    @property
    def code(self) -> str:
        """The reason's stable code, e.g. ``"VALID"``, ``"REVOKED"``."""
        return _REASON_CODES[self.reason]

    @property
    def message(self) -> str:
        """A short English message for the reason."""
        return _REASON_MESSAGES[self.reason]

    @property
    def key_found(self) -> bool:
        """Whether the key is known and its secret was right."""
        return bool(self._raw.key_found)

    @property
    def retry_after_ms(self) -> int | None:
        """For ``RATE_LIMITED``: milliseconds until the next request would be accepted."""
        return int(self._raw.retry_after_ms) if self.reason == Reason.RATE_LIMITED else None

    @property
    def rate(self) -> RateStatus | None:
        """The key's (or its owner's) rate-limit state, for a rate-limited key that passed
        every other check; else ``None``."""
        raw = self._raw
        if not raw.rate_scope:
            return None
        return RateStatus(
            scope=RateScope(raw.rate_scope),
            limit=RateLimit(rate=raw.rate_limit, period_ms=raw.rate_period_ms, burst=raw.rate_burst),
            remaining=raw.rate_remaining,
            reset_ms=raw.rate_reset_ms,
            retry_after_ms=self.retry_after_ms,
        )

    def rate_headers(self) -> list[tuple[str, str]]:
        """The response header fields for this verdict: ``RateLimit-Policy`` and
        ``RateLimit`` (IETF draft-ietf-httpapi-ratelimit-headers) for a rate-limited key, plus
        ``Retry-After`` for ``RATE_LIMITED``; empty for other keys. Formatted by the library
        (``kw_rate_headers``), as in every binding."""
        if not self._raw.rate_scope:
            return []
        buf = ffi.new("uint8_t[]", lib.KW_RATE_HEADERS_MAX_LEN)
        n = ffi.new("size_t *")
        if lib.kw_rate_headers(self._raw, buf, lib.KW_RATE_HEADERS_MAX_LEN, n) != 0:
            return []
        fields: list[tuple[str, str]] = []
        for line in ffi.buffer(buf, n[0])[:].decode("ascii").split("\r\n"):
            if line:
                name, _, value = line.partition(": ")
                fields.append((name, value))
        return fields

    @property
    def key_id(self) -> str | None:
        """The public key id (safe to log), or ``None`` when the key was not found."""
        return _str_field(self._raw.key_id) if self._raw.key_found else None

    @property
    def owner(self) -> str | None:
        """The key's owner, or ``None`` when the key was not found."""
        return _str_field(self._raw.owner) if self._raw.key_found else None

    @property
    def env(self) -> str | None:
        """The key's env tag (``"live"``, ...), or ``None``."""
        return (_str_field(self._raw.env) or None) if self._raw.key_found else None

    @property
    def created_at(self) -> int | None:
        """Creation time in ms since the epoch, or ``None`` when the key was not found."""
        return self._raw.created_at_ms if self._raw.key_found else None

    @property
    def expires_at(self) -> int | None:
        """Expiry in ms since the epoch, or ``None`` (never, or key not found)."""
        return (self._raw.expires_at_ms or None) if self._raw.key_found else None

    @property
    def limited(self) -> bool:
        """Whether the key has usage credits."""
        return bool(self._raw.key_flags & lib.KW_KEY_LIMITED)

    @property
    def revoked(self) -> bool:
        """Whether the key has been revoked."""
        return bool(self._raw.key_flags & lib.KW_KEY_REVOKED_FLAG)

    @property
    def rotated(self) -> bool:
        """Whether the key was replaced by rotation."""
        return bool(self._raw.key_flags & lib.KW_KEY_ROTATED)

    @property
    def info(self) -> KeyInfo | None:
        """The key's full record, when the verify was asked for it (``with_info=True``)
        and the key is known; else ``None``."""
        return None

    def as_dict(self) -> dict[str, Any]:
        """The verdict as a JSON-ready dict (no secret in it)."""
        return {
            "ok": self.ok,
            "code": self.code,
            "message": self.message,
            "http_status": self.http_status,
            "key_id": self.key_id,
            "owner": self.owner,
            "env": self.env,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }

    def __repr__(self) -> str:
        return (
            f"Verdict(code={self.code!r}, http_status={self.http_status}, "
            f"key_id={self.key_id!r}, owner={self.owner!r})"
        )


class _VerdictWithInfo(Verdict):
    """A verdict that carries the key's record (``with_info=True``)."""

    __slots__ = ("_info",)

    _info: KeyInfo

    @property
    def info(self) -> KeyInfo | None:
        return self._info


@dataclass(frozen=True, slots=True)
class Credits:
    """Usage credits of a new or updated key (a limited key).

    Attributes:
        remaining: credits available now (below 2**40).
        refill_amount: credits after each refill (with ``refill_interval``).
        refill_interval: :class:`Refill` (``NONE``, ``DAILY``, ``MONTHLY``).
        cost: default cost of one verify (0 means 1).
    """

    remaining: int
    refill_amount: int = 0
    refill_interval: Refill = Refill.NONE
    cost: int = 1


@dataclass(frozen=True, slots=True)
class CreditTerms:
    """A limited key's credit terms, as recorded (:attr:`KeyInfo.credits`)."""

    cost: int
    refill_amount: int | None = None
    refill_interval: Refill = Refill.NONE


@dataclass(frozen=True, slots=True)
class LegacyOrigin:
    """Where a key imported from another system came from (:meth:`Store.import_legacy`):
    ``scheme`` (``"sanctum"``, ``"drf"``, ``"unkey"``, ``"better-auth"``), its id there, and
    when its first successful verify upgraded it to keyward's own digest (``None`` before)."""

    scheme: str
    source_id: str
    upgraded_at: int | None


@dataclass(frozen=True, slots=True)
class LegacyImportReport:
    """What :meth:`Store.import_legacy` did (or, for a dry run, would do)."""

    scheme: str
    dry_run: bool
    rows: int
    imported: int
    already_present: int
    deleted: int
    revoked: int
    expired: int


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """The public record of a key: everything but its secret. Times in ms since the epoch.
    ``legacy`` is set for a key imported from another system."""

    id: str
    owner: str
    name: str
    scopes: tuple[str, ...]
    env: str | None
    created_at: int
    expires_at: int | None
    metadata: bytes
    revoked_at: int | None
    revoke_reason: str | None
    rotated_from: str | None
    rotated_to: str | None
    credits: CreditTerms | None
    serial: int
    legacy: LegacyOrigin | None = None
    #: The key's own rate limit.
    rate_limit: RateLimit | None = None

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> KeyInfo:
        """Builds a record from the library's JSON object."""
        credits = record.get("credits")
        terms = None
        if credits is not None:
            refill = credits.get("refill")
            terms = CreditTerms(
                cost=credits.get("cost", 1),
                refill_amount=refill["amount"] if refill else None,
                refill_interval=Refill[refill["interval"].upper()] if refill else Refill.NONE,
            )
        return cls(
            id=record["id"],
            owner=record["owner"],
            name=record.get("name") or "",
            scopes=tuple(record.get("scopes") or ()),
            env=record.get("env"),
            created_at=record["created_at"],
            expires_at=record.get("expires_at"),
            metadata=base64.b64decode(record.get("metadata") or ""),
            revoked_at=record.get("revoked_at"),
            revoke_reason=record.get("revoke_reason"),
            rotated_from=record.get("rotated_from"),
            rotated_to=record.get("rotated_to"),
            credits=terms,
            serial=record.get("serial", 0),
            legacy=LegacyOrigin(
                scheme=legacy["scheme"],
                source_id=legacy["source_id"],
                upgraded_at=legacy.get("upgraded_at"),
            )
            if (legacy := record.get("legacy"))
            else None,
            rate_limit=RateLimit.from_json(record.get("rate_limit")),
        )

    @property
    def revoked(self) -> bool:
        """Whether the key was revoked."""
        return self.revoked_at is not None

    def active_at(self, at_ms: int) -> bool:
        """Whether the key is neither revoked nor expired at ``at_ms``."""
        return self.revoked_at is None and (self.expires_at is None or at_ms < self.expires_at)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A key just created or rotated. ``key`` is the full secret key: it is returned this
    once and exists nowhere else; hand it to the customer and drop it. It never appears in
    ``repr()``."""

    key: str = field(repr=False)
    info: KeyInfo

    @property
    def id(self) -> str:
        """The public key id."""
        return self.info.id

    def __repr__(self) -> str:
        return f"CreatedKey(id={self.info.id!r}, owner={self.info.owner!r}, key=<hidden>)"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key made by :meth:`Store.create_many`: the full secret key (returned this once,
    never in ``repr()``) and its public id. ``store.get(id)`` gives its record."""

    key: str = field(repr=False)
    id: str

    def __repr__(self) -> str:
        return f"IssuedKey(id={self.id!r}, key=<hidden>)"


@dataclass(frozen=True, slots=True)
class KeyPage:
    """One page of :meth:`Store.list_keys`; pass ``next`` as ``after`` for the next page."""

    keys: tuple[KeyInfo, ...]
    next: int | None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One event of the audit log (:meth:`Store.audit`): never a secret or a digest.

    ``action`` is ``"create"``, ``"update"``, ``"rotate"``, ``"revoke"``, ``"delete"``,
    ``"import"``, ``"policy_refused"``, ``"owner_suspend"``, ``"owner_resume"`` or
    ``"owner_scopes"`` (owner changes carry no ``key_id``); ``changed`` names the fields changed; ``detail`` is
    the other key of a rotation or the error code of a refusal. ``at`` is ms since the epoch.
    """

    seq: int
    at: int
    actor: str | None
    action: str
    key_id: str | None
    owner: str | None
    changed: tuple[str, ...]
    detail: str | None

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> AuditEvent:
        """Builds an event from the library's JSON object."""
        return cls(
            seq=record["seq"],
            at=record["at"],
            actor=record.get("actor"),
            action=record["action"],
            key_id=record.get("key_id"),
            owner=record.get("owner"),
            changed=tuple(record.get("changed", ())),
            detail=record.get("detail"),
        )


@dataclass(frozen=True, slots=True)
class OwnerInfo:
    """An owner's controls and key count (:meth:`Store.owner`, :meth:`Store.owners`).

    ``allowed_scopes`` is ``None`` when the owner's keys are unrestricted; ``created_at`` and
    ``updated_at`` are ``None`` for an owner that has keys but no record. Times are ms since
    the epoch.
    """

    owner: str
    suspended_at: int | None
    suspend_reason: str | None
    allowed_scopes: tuple[str, ...] | None
    created_at: int | None
    updated_at: int | None
    keys: int

    @property
    def suspended(self) -> bool:
        """Whether every key of the owner is refused (``OWNER_SUSPENDED``)."""
        return self.suspended_at is not None

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> OwnerInfo:
        """Builds an owner record from the library's JSON object."""
        allowed = record.get("allowed_scopes")
        return cls(
            owner=record["owner"],
            suspended_at=record.get("suspended_at"),
            suspend_reason=record.get("suspend_reason"),
            allowed_scopes=None if allowed is None else tuple(allowed),
            created_at=record.get("created_at"),
            updated_at=record.get("updated_at"),
            keys=record["keys"],
        )


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of :meth:`Store.audit`, oldest first; pass ``next`` as ``after`` for the next."""

    events: tuple[AuditEvent, ...]
    next: int | None


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A key split into its parts by :func:`keyward.parse_key` (no store involved).

    ``error`` is ``"ok"`` for a well-formed key, else the name of the problem
    (``"bad_checksum"``, ``"bad_prefix"``, ...). ``secret`` is hidden from ``repr()``."""

    valid: bool
    error: str
    prefix: str | None = None
    env: str | None = None
    id: str | None = None
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential found in request headers by :func:`keyward.extract_credential`.

    ``kind`` is ``"key"`` (a full key: ``key`` is set) or ``"pair"`` (``id`` + ``secret``).
    Secrets are hidden from ``repr()``."""

    kind: str
    key: str | None = field(default=None, repr=False)
    id: str | None = None
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class TableStats:
    """The shared verify table as this process sees it (``StoreStats.table``)."""

    generation: int
    slots: int
    keys: int
    lookup_bytes: int
    file_bytes: int
    cached_records: int
    rebuilds: int
    slots_repaired: int
    mapped: bool


@dataclass(frozen=True, slots=True)
class ReplicaStats:
    """A replica store's state against its upstream PostgreSQL (``StoreStats.replica``):
    the last upstream change applied (``cursor``), whether the host's replicator was
    connected at its last report, when the store was last known up to date
    (``synced_at_ms``, 0 = never) and how long ago that was (``staleness_ms``, ``None`` =
    never synced)."""

    cursor: int
    connected: bool
    synced_at_ms: int
    staleness_ms: int | None
    reported_at_ms: int


@dataclass(frozen=True, slots=True)
class StoreStats:
    """This process's counters for a store (:meth:`Store.stats`); ``replica`` is ``None``
    for a store of its own."""

    commits: int
    refreshes: int
    indexed_keys: int
    dirty_keys: int
    index_complete: bool
    table: TableStats
    replica: ReplicaStats | None = None


@dataclass(frozen=True, slots=True)
class UsageStats:
    """A key's usage (:meth:`Store.usage`): stored plus this process's unflushed counts."""

    uses: int
    refused: int
    last_used_at: int | None


@dataclass(frozen=True, slots=True)
class CreditBalance:
    """A limited key's credits (:meth:`Store.credits`)."""

    remaining: int
    cost: int
    refill_amount: int
    refill_interval: Refill


@dataclass(frozen=True, slots=True)
class DayUsage:
    """Uses of a key on one UTC day (:meth:`Store.usage_by_day`)."""

    day: _dt.date
    uses: int
