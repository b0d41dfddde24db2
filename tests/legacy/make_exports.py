#!/usr/bin/env python3
"""Builds the key exports of four other systems, with their real algorithms, for the legacy-key
tests of every language (Rust tests/legacy.rs, C, CLI, Python, Node, PHP).

    python3 tests/legacy/make_exports.py OUT_DIR

writes into OUT_DIR:
- sanctum.sqlite + sanctum.csv: a `personal_access_tokens` table as Laravel Sanctum's migration
  makes it, filled the way `HasApiTokens::createToken` does (token = token_prefix + Str::random(40)
  + hash('crc32b', those 40); column `token` = hash('sha256', token); the client holds
  "<id>|<token>"), exported like `sqlite3 -csv -header`;
- drf.sqlite + drf.csv: djangorestframework-api-key's `rest_framework_api_key_apikey` table
  (KeyGenerator: prefix 8 + secret 32 characters, key "prefix.secret", hashed_key
  "sha512$$" + sha512(key).hexdigest(), id "prefix.hashed_key");
- unkey.jsonl: Unkey keys (hash = standard base64 of SHA-256 of the key);
- better-auth.sqlite + better-auth.jsonl: Better Auth's `apikey` table (key = unpadded base64url of
  SHA-256 of the key, `defaultKeyHasher`);
- cases.json: per scheme, the keys the clients hold: `valid` (with owner and scopes expected),
  `revoked`, `expired`, `wrong` (valid-looking keys no system issued), and `raw_hashes`: every
  stored hash in every form (hex, base64, base64url, the stored text) that must never appear in
  keyward's files.

Random by default; `--seed N` makes it reproducible. Times are relative to the tests' clock
(1_750_000_000 s); `--now SECONDS` moves them (for suites that judge at the real time).
"""

import base64
import csv
import hashlib
import json
import os
import random
import sqlite3
import string
import sys
import zlib

ALNUM = string.ascii_letters + string.digits
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
NOW = 1_750_000_000  # the tests' clock (seconds); --now changes it


def forms(raw: bytes, stored: str):
    """Every form a raw hash could leak in."""
    return sorted(
        {
            raw.hex(),
            raw.hex().upper(),
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
            stored,
        }
    )


def iso(ts):
    return None if ts is None else __import__("datetime").datetime.fromtimestamp(
        ts, __import__("datetime").timezone.utc
    ).strftime("%Y-%m-%d %H:%M:%S")


def export_csv(db, table, path):
    cur = db.execute(f"SELECT * FROM {table} ORDER BY rowid")
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([d[0] for d in cur.description])
        for row in cur:
            w.writerow(["" if v is None else v for v in row])


def sanctum(out, rng):
    db = sqlite3.connect(os.path.join(out, "sanctum.sqlite"))
    db.execute(
        """CREATE TABLE personal_access_tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tokenable_type VARCHAR NOT NULL, tokenable_id INTEGER NOT NULL,
            name TEXT NOT NULL, token VARCHAR(64) NOT NULL UNIQUE, abilities TEXT,
            last_used_at DATETIME, expires_at DATETIME, created_at DATETIME, updated_at DATETIME)"""
    )
    cases = {"valid": [], "revoked": [], "expired": [], "wrong": [], "raw_hashes": []}
    prefix = "acme_"  # config('sanctum.token_prefix')
    specs = [
        # (user, abilities, expires_at, created, kind)
        (7, ["*"], None, NOW - 86400, "valid"),
        (7, ["servers:read", "servers:write"], NOW + 86400, NOW - 3600, "valid"),
        (8, ["servers:read"], None, NOW - 600, "valid"),
        (8, ["*"], NOW - 60, NOW - 7200, "expired"),
        # Older than the configured expiration (60 days), no expires_at: expired too.
        (9, ["*"], None, NOW - 61 * 86400, "expired"),
    ]
    for user, abilities, expires, created, kind in specs:
        entropy = "".join(rng.choice(ALNUM) for _ in range(40))
        token = prefix + entropy + format(zlib.crc32(entropy.encode()) & 0xFFFFFFFF, "08x")
        stored = hashlib.sha256(token.encode()).hexdigest()
        cur = db.execute(
            "INSERT INTO personal_access_tokens (tokenable_type, tokenable_id, name, token,"
            " abilities, last_used_at, expires_at, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            ("App\\Models\\User", user, f"token of {user}", stored, json.dumps(abilities),
             iso(created + 60), iso(expires), iso(created), iso(created)),
        )
        plain = f"{cur.lastrowid}|{token}"
        scopes = ["deploy", "servers:read", "servers:write"] if abilities == ["*"] else abilities
        cases[kind].append({"key": plain, "owner": str(user), "scopes": sorted(scopes),
                            "source_id": str(cur.lastrowid)})
        cases["raw_hashes"] += forms(bytes.fromhex(stored), stored)
    db.commit()
    export_csv(db, "personal_access_tokens", os.path.join(out, "sanctum.csv"))
    v = cases["valid"][0]["key"]
    sid, tok = v.split("|")
    cases["wrong"] = [
        f"{sid}|{tok[:-1]}{'a' if tok[-1] != 'a' else 'b'}",  # one character off
        f"999|{tok}",  # right token, another id
        "1|" + prefix + "".join(rng.choice(ALNUM) for _ in range(48)),
    ]
    cases["options"] = {"sanctum_expiration_minutes": 60 * 24 * 60,
                        "all_scopes": ["deploy", "servers:read", "servers:write"]}
    return cases


def drf(out, rng):
    db = sqlite3.connect(os.path.join(out, "drf.sqlite"))
    db.execute(
        """CREATE TABLE rest_framework_api_key_apikey (
            id VARCHAR(150) NOT NULL PRIMARY KEY, created DATETIME NOT NULL,
            name VARCHAR(50) NOT NULL, revoked BOOL NOT NULL, expiry_date DATETIME NULL,
            hashed_key VARCHAR(150) NOT NULL, prefix VARCHAR(8) NOT NULL UNIQUE)"""
    )
    cases = {"valid": [], "revoked": [], "expired": [], "wrong": [], "raw_hashes": []}
    specs = [(False, None, "valid"), (False, NOW + 3600, "valid"), (True, None, "revoked"),
             (False, NOW - 3600, "expired")]
    for revoked, expiry, kind in specs:
        prefix = "".join(rng.choice(ALNUM) for _ in range(8))
        secret = "".join(rng.choice(ALNUM) for _ in range(32))
        key = f"{prefix}.{secret}"
        hashed = "sha512$$" + hashlib.sha512(key.encode()).hexdigest()
        db.execute(
            "INSERT INTO rest_framework_api_key_apikey VALUES (?,?,?,?,?,?,?)",
            (f"{prefix}.{hashed}", iso(NOW - 86400) + ".123456", f"service {prefix}", revoked,
             iso(expiry), hashed, prefix),
        )
        cases[kind].append({"key": key, "owner": "drf-clients", "scopes": [],
                            "source_id": prefix})
        cases["raw_hashes"] += forms(bytes.fromhex(hashed[8:]), hashed)
    db.commit()
    export_csv(db, "rest_framework_api_key_apikey", os.path.join(out, "drf.csv"))
    v = cases["valid"][0]["key"]
    cases["wrong"] = [v[:-1] + ("a" if v[-1] != "a" else "b"),
                      "".join(rng.choice(ALNUM) for _ in range(8)) + "." + v.split(".")[1]]
    cases["options"] = {"default_owner": "drf-clients"}
    return cases


def unkey(out, rng):
    cases = {"valid": [], "revoked": [], "expired": [], "wrong": [], "raw_hashes": []}
    lines = []
    specs = [(True, None, ["documents.read"], "valid"), (True, None, [], "valid"),
             (False, None, [], "revoked"), (True, (NOW - 10) * 1000, [], "expired")]
    for n, (enabled, expires, permissions, kind) in enumerate(specs):
        key = "sk_" + "".join(rng.choice(BASE58) for _ in range(24))
        stored = base64.b64encode(hashlib.sha256(key.encode()).digest()).decode()
        kid = f"key_{n}{''.join(rng.choice(ALNUM) for _ in range(10))}"
        lines.append({"id": kid, "hash": stored, "start": key[:6], "ownerId": f"user_{n}",
                      "name": f"unkey {n}", "meta": {"plan": "pro"},
                      "createdAt": (NOW - 86400) * 1000, "expires": expires,
                      "enabled": enabled, "permissions": permissions})
        cases[kind].append({"key": key, "owner": f"user_{n}", "scopes": sorted(permissions),
                            "source_id": kid})
        cases["raw_hashes"] += forms(base64.b64decode(stored), stored)
    # A key deleted in Unkey: not imported.
    gone = "sk_" + "".join(rng.choice(BASE58) for _ in range(24))
    gone_hash = base64.b64encode(hashlib.sha256(gone.encode()).digest()).decode()
    lines.append({"id": "key_deleted", "hash": gone_hash, "ownerId": "user_x",
                  "createdAt": (NOW - 86400) * 1000, "deletedAt": (NOW - 100) * 1000})
    cases["deleted"] = [gone]
    cases["raw_hashes"] += forms(base64.b64decode(gone_hash), gone_hash)
    with open(os.path.join(out, "unkey.jsonl"), "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    v = cases["valid"][0]["key"]
    cases["wrong"] = [v[:-1] + ("a" if v[-1] != "a" else "b"), "sk_" + "1" * 24]
    cases["options"] = {}
    return cases


def better_auth(out, rng):
    db = sqlite3.connect(os.path.join(out, "better-auth.sqlite"))
    db.execute(
        """CREATE TABLE apikey (
            id TEXT PRIMARY KEY, name TEXT, start TEXT, prefix TEXT, key TEXT NOT NULL,
            userId TEXT NOT NULL, refillInterval INTEGER, refillAmount INTEGER,
            lastRefillAt DATE, enabled INTEGER, rateLimitEnabled INTEGER,
            rateLimitTimeWindow INTEGER, rateLimitMax INTEGER, requestCount INTEGER,
            remaining INTEGER, lastRequest DATE, expiresAt DATE, createdAt DATE NOT NULL,
            updatedAt DATE NOT NULL, permissions TEXT, metadata TEXT)"""
    )
    cases = {"valid": [], "revoked": [], "expired": [], "wrong": [], "raw_hashes": []}
    specs = [(1, None, {"files": ["read", "write"]}, "valid"), (1, None, None, "valid"),
             (0, None, None, "revoked"), (1, iso(NOW - 5), None, "expired")]
    for n, (enabled, expires, permissions, kind) in enumerate(specs):
        key = "ba_" + "".join(rng.choice(string.ascii_letters) for _ in range(64))
        stored = base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()).decode().rstrip("=")
        kid = "".join(rng.choice(ALNUM) for _ in range(32))
        db.execute(
            "INSERT INTO apikey (id, name, start, prefix, key, userId, enabled, requestCount,"
            " lastRequest, expiresAt, createdAt, updatedAt, permissions, metadata)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (kid, f"ba {n}", key[:6], "ba_", stored, f"u{n}", enabled, 3, iso(NOW - 30), expires,
             iso(NOW - 86400), iso(NOW - 86400),
             None if permissions is None else json.dumps(permissions), json.dumps({"n": n})),
        )
        scopes = [] if permissions is None else sorted(
            f"{r}:{a}" for r, acts in permissions.items() for a in acts)
        cases[kind].append({"key": key, "owner": f"u{n}", "scopes": scopes, "source_id": kid})
        cases["raw_hashes"] += forms(base64.urlsafe_b64decode(stored + "="), stored)
    db.commit()
    db.row_factory = sqlite3.Row
    with open(os.path.join(out, "better-auth.jsonl"), "w") as f:
        for row in db.execute("SELECT * FROM apikey ORDER BY rowid"):
            f.write(json.dumps(dict(row)) + "\n")
    v = cases["valid"][0]["key"]
    cases["wrong"] = [v[:-1] + ("a" if v[-1] != "a" else "b")]
    cases["options"] = {}
    return cases


def main():
    args = sys.argv[1:]
    seed = None
    if "--seed" in args:
        i = args.index("--seed")
        seed = int(args[i + 1])
        del args[i : i + 2]
    if "--now" in args:
        global NOW
        i = args.index("--now")
        NOW = int(args[i + 1])
        del args[i : i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    out = args[0]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    cases = {
        "sanctum": {"file": "sanctum.csv", **sanctum(out, rng)},
        "drf": {"file": "drf.csv", **drf(out, rng)},
        "unkey": {"file": "unkey.jsonl", **unkey(out, rng)},
        "better-auth": {"file": "better-auth.jsonl", **better_auth(out, rng)},
    }
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


if __name__ == "__main__":
    main()
