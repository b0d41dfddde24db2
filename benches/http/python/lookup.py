"""The two SQLite variants, as Laravel Sanctum does them: the bearer token's SHA-256 (hex) is
looked up in `personal_access_tokens.token` (UNIQUE index), the token's abilities are checked,
and with `update=True` the row's `last_used_at` and `uses` are written on every request
(Sanctum's default). One connection per worker process, opened on first use (never inherited
through gunicorn's --preload fork) and kept: SQLite's best case."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time

_conn: sqlite3.Connection | None = None
_pid = 0


def _db() -> sqlite3.Connection:
    global _conn, _pid
    if _conn is None or _pid != os.getpid():
        _conn = sqlite3.connect(os.environ["KW_BENCH_SQLITE"], isolation_level=None, check_same_thread=False)
        _conn.execute("PRAGMA busy_timeout = 5000")  # 4 workers write the same file
        _conn.execute("PRAGMA synchronous = NORMAL")  # WAL: no fsync per commit, as on every host
        _pid = os.getpid()
    return _conn


_floor: dict[str, tuple[str, ...]] | None = None


def floor_authorized(authorization: str | None) -> bool:
    """The floor: the bearer token looked up as is in a dict of every key (made once per
    process from KW_BENCH_KEYS), its scopes checked. No hashing, no counting, no store: the
    cheapest check of a key a process can make, to show what any lookup of a random key
    among N costs this host."""
    global _floor
    if _floor is None:
        with open(os.environ["KW_BENCH_KEYS"]) as keys:
            _floor = {line.strip(): ("read",) for line in keys if line.strip()}
    if not authorization or not authorization.startswith("Bearer "):
        return False
    scopes = _floor.get(authorization[7:])
    return scopes is not None and "read" in scopes


def authorized(authorization: str | None, update: bool) -> bool:
    """Whether `Authorization: Bearer <token>` names a live token with the "read" ability."""
    if not authorization or not authorization.startswith("Bearer "):
        return False
    digest = hashlib.sha256(authorization[7:].encode()).hexdigest()
    db = _db()
    row = db.execute(
        "SELECT id, abilities, expires_at FROM personal_access_tokens WHERE token = ?", (digest,)
    ).fetchone()
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    if row is None or (row[2] is not None and row[2] <= now) or "read" not in json.loads(row[1]):
        return False
    if update:
        db.execute("UPDATE personal_access_tokens SET last_used_at = ?, uses = uses + 1 WHERE id = ?", (now, row[0]))
    return True
