#!/usr/bin/env python3
"""Generates keys.json, headers.json, verify.json and edge.json, the shared test vectors.

The checksum is computed with zlib.crc32 (an implementation independent of the Rust
crate's crc32fast), so replaying these files checks the key format across languages.
Run from anywhere: python3 tests/vectors/generate.py. The Rust test
`vectors_are_generated_by_the_checked_in_generator` fails if the files differ from its output.
"""
import base64
import hashlib
import json
import os
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LEN, SECRET_LEN, CHECKSUM_LEN = 16, 32, 6
HERE = os.path.dirname(os.path.abspath(__file__))


def checksum(text: str) -> str:
    value = zlib.crc32(text.encode()) & 0xFFFFFFFF
    out = []
    for _ in range(CHECKSUM_LEN):
        out.append(ALPHABET[value % 62])
        value //= 62
    return "".join(reversed(out))


def make_key(prefix, env, key_id, secret):
    head = prefix + "_" + (env + "_" if env else "") + key_id + secret
    return head + checksum(head)


ID1 = "3hZ0bq9XcV1mT7pK"
SECRET1 = "Qw8rT2yU4iO6pA1sD3fG5hJ7kL9zX0cV"
ID2 = "a0B1c2D3e4F5g6H7"
SECRET2 = "ZZZZZZZZZZzzzzzzzzzz000000000099"
LIVE = make_key("kw", "live", ID1, SECRET1)
TEST = make_key("kw", "test", ID2, SECRET2)
BARE = make_key("kw", None, ID1, SECRET1)


def flip(text, pos, to="a"):
    c = text[pos]
    repl = to if c != to else "b"
    return text[:pos] + repl + text[pos + 1:]


keys = {
    "prefix": "kw",
    "layout": {"id_len": ID_LEN, "secret_len": SECRET_LEN, "checksum_len": CHECKSUM_LEN,
               "alphabet": ALPHABET, "checksum": "crc32 (IEEE) of every character before it, base62, zero-padded"},
    "cases": [
        {"name": "valid live key", "key": LIVE, "valid": True, "env": "live", "id": ID1, "secret": SECRET1},
        {"name": "valid test key", "key": TEST, "valid": True, "env": "test", "id": ID2, "secret": SECRET2},
        {"name": "valid key without env", "key": BARE, "valid": True, "env": None, "id": ID1, "secret": SECRET1},
        {"name": "valid key with digits in env", "key": make_key("kw", "eu1", ID2, SECRET1), "valid": True,
         "env": "eu1", "id": ID2, "secret": SECRET1},
        {"name": "wrong checksum (last character)", "key": flip(LIVE, len(LIVE) - 1), "valid": False, "error": "bad_checksum"},
        {"name": "wrong checksum (first id character)", "key": flip(LIVE, 8), "valid": False, "error": "bad_checksum"},
        {"name": "wrong checksum (last secret character)", "key": flip(LIVE, len(LIVE) - 7), "valid": False, "error": "bad_checksum"},
        {"name": "env changed, checksum kept", "key": LIVE.replace("_live_", "_lave_"), "valid": False, "error": "bad_checksum"},
        {"name": "checksum over 32 bits", "key": LIVE[:-6] + "zzzzzz", "valid": False, "error": "bad_checksum"},
        {"name": "another store's prefix", "key": make_key("kx", "live", ID1, SECRET1), "valid": False, "error": "bad_prefix"},
        {"name": "upper-case prefix", "key": make_key("KW", "live", ID1, SECRET1), "valid": False, "error": "bad_prefix"},
        {"name": "prefix too long", "key": make_key("k" * 17, "live", ID1, SECRET1), "valid": False, "error": "bad_prefix"},
        {"name": "leading space", "key": " " + LIVE, "valid": False, "error": "bad_prefix"},
        {"name": "upper-case env", "key": make_key("kw", "LIVE", ID1, SECRET1), "valid": False, "error": "bad_env"},
        {"name": "env too long", "key": make_key("kw", "e" * 17, ID1, SECRET1), "valid": False, "error": "bad_env"},
        {"name": "truncated by one", "key": LIVE[:-1], "valid": False, "error": "bad_length"},
        {"name": "truncated to the id", "key": "kw_live_" + ID1, "valid": False, "error": "bad_length"},
        {"name": "one character too many", "key": LIVE + "0", "valid": False, "error": "bad_length"},
        {"name": "trailing newline", "key": LIVE + "\n", "valid": False, "error": "bad_length"},
        {"name": "dash in the body", "key": LIVE[:20] + "-" + LIVE[21:], "valid": False, "error": "not_base62"},
        {"name": "plus in the body", "key": LIVE[:30] + "+" + LIVE[31:], "valid": False, "error": "not_base62"},
        {"name": "non-ASCII in the body", "key": LIVE[:-8] + "é" + LIVE[-6:], "valid": False, "error": "not_base62"},
        {"name": "empty", "key": "", "valid": False, "error": "empty"},
        {"name": "oversize", "key": "kw_live_" + "A" * 300, "valid": False, "error": "too_long"},
        {"name": "no underscore", "key": "kwlive" + ID1 + SECRET1, "valid": False, "error": "bad_structure"},
        {"name": "four parts", "key": "kw_live_x_" + LIVE[8:], "valid": False, "error": "bad_structure"},
    ],
}

b64 = lambda s: base64.b64encode(s.encode() if isinstance(s, str) else s).decode()
pair = {"id": ID1, "secret": SECRET1}
headers = {
    "key": LIVE,
    "cases": [
        {"name": "x-api-key", "headers": [["x-api-key", LIVE]], "expect": {"key": LIVE}},
        {"name": "x-api-key mixed case", "headers": [["X-Api-Key", LIVE]], "expect": {"key": LIVE}},
        {"name": "x-api-key upper case", "headers": [["X-API-KEY", LIVE]], "expect": {"key": LIVE}},
        {"name": "x-api-key surrounding whitespace", "headers": [["x-api-key", "  " + LIVE + "\t "]], "expect": {"key": LIVE}},
        {"name": "header name with spaces", "headers": [[" x-api-key ", LIVE]], "expect": {"key": LIVE}},
        {"name": "bearer", "headers": [["Authorization", "Bearer " + LIVE]], "expect": {"key": LIVE}},
        {"name": "bearer lower case", "headers": [["authorization", "bearer " + LIVE]], "expect": {"key": LIVE}},
        {"name": "bearer extra whitespace", "headers": [["AUTHORIZATION", "  BEARER    " + LIVE + "  "]], "expect": {"key": LIVE}},
        {"name": "bearer without token", "headers": [["Authorization", "Bearer"]], "expect": {"error": "CREDENTIAL_MISSING"}},
        {"name": "basic key alone", "headers": [["Authorization", "Basic " + b64(LIVE)]], "expect": {"key": LIVE}},
        {"name": "basic key as user", "headers": [["Authorization", "Basic " + b64(LIVE + ":")]], "expect": {"key": LIVE}},
        {"name": "basic key as password with empty user", "headers": [["Authorization", "Basic " + b64(":" + LIVE)]], "expect": {"key": LIVE}},
        {"name": "basic key as user with a password", "headers": [["Authorization", "Basic " + b64(LIVE + ":x")]], "expect": {"key": LIVE}},
        {"name": "basic without padding", "headers": [["Authorization", "Basic " + b64(LIVE + ":").rstrip("=")]], "expect": {"key": LIVE}},
        {"name": "basic lower-case scheme", "headers": [["authorization", "basic " + b64(LIVE)]], "expect": {"key": LIVE}},
        {"name": "basic bad base64", "headers": [["Authorization", "Basic !!!not-base64!!!"]], "expect": {"error": "BAD_BASE64"}},
        {"name": "basic not UTF-8", "headers": [["Authorization", "Basic " + b64(b"\xff\xfe\xfd")]], "expect": {"error": "BAD_BASE64"}},
        {"name": "digest scheme", "headers": [["Authorization", "Digest username=x"]], "expect": {"error": "UNSUPPORTED_SCHEME"}},
        {"name": "token scheme", "headers": [["Authorization", "Token " + LIVE]], "expect": {"error": "UNSUPPORTED_SCHEME"}},
        {"name": "token pair", "headers": [["X-Api-Token-Id", ID1], ["X-Api-Token-Secret-Key", SECRET1]], "expect": {"pair": pair}},
        {"name": "token pair lower case, reversed", "headers": [["x-api-token-secret-key", SECRET1], ["x-api-token-id", ID1]], "expect": {"pair": pair}},
        {"name": "token pair with whitespace", "headers": [["X-API-TOKEN-ID", " " + ID1 + " "], ["X-API-TOKEN-SECRET-KEY", "\t" + SECRET1]], "expect": {"pair": pair}},
        {"name": "only the id", "headers": [["X-Api-Token-Id", ID1]], "expect": {"error": "HALF_PAIR"}},
        {"name": "only the secret", "headers": [["X-Api-Token-Secret-Key", SECRET1]], "expect": {"error": "HALF_PAIR"}},
        {"name": "no headers", "headers": [], "expect": {"error": "CREDENTIAL_MISSING"}},
        {"name": "unrelated headers", "headers": [["Accept", "*/*"], ["Cookie", "a=b"]], "expect": {"error": "CREDENTIAL_MISSING"}},
        {"name": "empty x-api-key", "headers": [["x-api-key", "   "]], "expect": {"error": "CREDENTIAL_MISSING"}},
        {"name": "same key twice", "headers": [["x-api-key", LIVE], ["Authorization", "Bearer " + LIVE]], "expect": {"key": LIVE}},
        {"name": "two different keys", "headers": [["x-api-key", LIVE], ["Authorization", "Bearer " + TEST]], "expect": {"error": "AMBIGUOUS_CREDENTIAL"}},
        {"name": "foreign authorization beside x-api-key", "headers": [["Authorization", "Digest abc"], ["x-api-key", LIVE]], "expect": {"key": LIVE}},
        {"name": "oversize value", "headers": [["x-api-key", "A" * 9000]], "expect": {"error": "MALFORMED_KEY"}},
        {"name": "garbage key is passed on for verify to refuse", "headers": [["x-api-key", "not-a-key"]], "expect": {"key": "not-a-key"}},
    ],
}

# Legacy keys (issue 18, item 1): a Sanctum token and an Unkey key made by those systems'
# algorithms (fixed, so the vectors are reproducible), in their export shapes.
SANCTUM_ENTROPY = "k7Qd2LmZp9Xs4Vb1Nc8Rt3Yw6Hf0Ja5Ge2Ui7Oq4"
SANCTUM_TOKEN = "kw_" + SANCTUM_ENTROPY + format(zlib.crc32(SANCTUM_ENTROPY.encode()) & 0xFFFFFFFF, "08x")
SANCTUM_KEY = "5|" + SANCTUM_TOKEN
SANCTUM_CSV = (
    "id,tokenable_type,tokenable_id,name,token,abilities,last_used_at,expires_at,created_at,updated_at\n"
    f"5,App\\Models\\User,42,ci,{hashlib.sha256(SANCTUM_TOKEN.encode()).hexdigest()},"
    '"[""read"",""write""]",,,2025-01-01 00:00:00,2025-01-01 00:00:00\n'
)
UNKEY_KEY = "sk_3ZnJpPhMA2vD1u8HcfGYMV1i"
UNKEY_JSONL = json.dumps({
    "id": "key_vector", "hash": base64.b64encode(hashlib.sha256(UNKEY_KEY.encode()).digest()).decode(),
    "ownerId": "acct_u", "createdAt": 1735689600000, "enabled": True, "permissions": ["read"]}) + "\n"

H = 3600 * 1000
verify = {
    "note": "Replay against a fresh store opened with prefix kw. 'key' names a key created earlier in the "
            "scenario; 'at_offset_ms' is added to the time the scenario started, taken before its first step "
            "(default 0; offsets leave a minute for the steps' own commits, so a real clock works); "
            "'pair' verifies (public id, secret) and 'dry_run' (default false) verifies without counting a use, spending a credit or taking a rate-limit unit; a create's 'rate_limit' (rate per period_ms, burst) is the key's own rate limit; 'mutate' alters what is sent: wrong_secret_first / "
            "wrong_secret_last change the first / last secret character, unknown_id sends a fresh id. "
            "'import_legacy' imports 'data' (another system's export) from system 'from' with 'options' "
            "(all_scopes, default_owner) and expects 'imported' keys. "
            "'owner_suspend' / 'owner_resume' suspend / resume an owner; 'owner_scopes' sets an owner's "
            "allowed scopes ('clear': true removes them); 'expect_scopes' (optional) is the verdict's "
            "effective scopes.",
    "scenarios": [
        {"name": "scopes", "steps": [
            {"op": "create", "as": "k", "owner": "acct_1", "scopes": ["read", "write"], "env": "live"},
            {"op": "verify", "key": "k", "scopes": [], "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": ["read"], "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": ["read", "write"], "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": ["admin"], "expect": "INSUFFICIENT_SCOPE"},
            {"op": "verify", "key": "k", "scopes": ["read", "admin"], "expect": "INSUFFICIENT_SCOPE"},
        ]},
        {"name": "wrong secrets and unknown ids are not told apart", "steps": [
            {"op": "create", "as": "k", "owner": "acct_1", "scopes": []},
            {"op": "pair", "key": "k", "scopes": [], "expect": "VALID"},
            {"op": "pair", "key": "k", "mutate": "wrong_secret_first", "scopes": [], "expect": "NOT_FOUND"},
            {"op": "pair", "key": "k", "mutate": "wrong_secret_last", "scopes": [], "expect": "NOT_FOUND"},
            {"op": "pair", "key": "k", "mutate": "unknown_id", "scopes": [], "expect": "NOT_FOUND"},
        ]},
        {"name": "malformed text never reaches a lookup", "steps": [
            {"op": "verify_text", "text": "", "scopes": [], "expect": "MALFORMED"},
            {"op": "verify_text", "text": "kw_live_short", "scopes": [], "expect": "MALFORMED"},
            {"op": "verify_text", "text": flip(LIVE, len(LIVE) - 1), "scopes": [], "expect": "MALFORMED"},
            {"op": "verify_text", "text": LIVE, "scopes": [], "expect": "NOT_FOUND"},
            {"op": "verify_text", "text": make_key("zz", "live", ID1, SECRET1), "scopes": [], "expect": "MALFORMED"},
        ]},
        {"name": "expiry", "steps": [
            {"op": "create", "as": "k", "owner": "acct_2", "scopes": ["read"], "expires_in_ms": H},
            {"op": "verify", "key": "k", "scopes": ["read"], "at_offset_ms": H - 1000, "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": ["read"], "at_offset_ms": H + 1000, "expect": "EXPIRED"},
        ]},
        {"name": "revoke", "steps": [
            {"op": "create", "as": "k", "owner": "acct_3", "scopes": ["read"]},
            {"op": "verify", "key": "k", "scopes": ["read"], "expect": "VALID"},
            {"op": "revoke", "key": "k"},
            {"op": "verify", "key": "k", "scopes": ["read"], "expect": "REVOKED"},
            {"op": "verify", "key": "k", "scopes": ["admin"], "expect": "REVOKED"},
            {"op": "pair", "key": "k", "scopes": [], "expect": "REVOKED"},
        ]},
        {"name": "rotation without grace", "steps": [
            {"op": "create", "as": "old", "owner": "acct_4", "scopes": ["read"]},
            {"op": "rotate", "key": "old", "as": "new", "grace_ms": 0},
            {"op": "verify", "key": "old", "scopes": ["read"], "at_offset_ms": 60_000, "expect": "EXPIRED"},
            {"op": "verify", "key": "new", "scopes": ["read"], "expect": "VALID"},
        ]},
        {"name": "rotation with grace", "steps": [
            {"op": "create", "as": "old", "owner": "acct_5", "scopes": ["read"]},
            {"op": "rotate", "key": "old", "as": "new", "grace_ms": H},
            {"op": "verify", "key": "old", "scopes": ["read"], "at_offset_ms": H - 1000, "expect": "VALID"},
            {"op": "verify", "key": "old", "scopes": ["read"], "at_offset_ms": H + 60_000, "expect": "EXPIRED"},
            {"op": "verify", "key": "new", "scopes": ["read"], "at_offset_ms": H + 60_000, "expect": "VALID"},
        ]},
        {"name": "usage credits", "steps": [
            {"op": "create", "as": "k", "owner": "acct_6", "scopes": [], "credits": {"remaining": 3, "cost": 1}},
            {"op": "verify", "key": "k", "scopes": [], "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": [], "cost": 2, "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": [], "expect": "USAGE_EXCEEDED"},
        ]},
        {"name": "dry run: the verdict without counting or spending", "steps": [
            {"op": "create", "as": "k", "owner": "acct_8", "scopes": ["read"], "credits": {"remaining": 2, "cost": 1}},
            {"op": "verify", "key": "k", "scopes": ["read"], "cost": 2, "dry_run": True, "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": ["read"], "cost": 3, "dry_run": True, "expect": "USAGE_EXCEEDED"},
            {"op": "verify", "key": "k", "scopes": ["write"], "dry_run": True, "expect": "INSUFFICIENT_SCOPE"},
            {"op": "verify", "key": "k", "scopes": ["read"], "cost": 2, "dry_run": True, "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": ["read"], "cost": 2, "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": ["read"], "dry_run": True, "expect": "USAGE_EXCEEDED"},
        ]},
        {"name": "owner suspended, and an owner's allowed scopes (effective scopes)", "steps": [
            {"op": "create", "as": "k", "owner": "acct_9", "scopes": ["read", "write"]},
            {"op": "owner_suspend", "owner": "acct_9"},
            {"op": "verify", "key": "k", "scopes": [], "expect": "OWNER_SUSPENDED"},
            {"op": "verify", "key": "k", "scopes": ["read"], "dry_run": True, "expect": "OWNER_SUSPENDED"},
            {"op": "pair", "key": "k", "scopes": [], "expect": "OWNER_SUSPENDED"},
            {"op": "owner_resume", "owner": "acct_9"},
            {"op": "verify", "key": "k", "scopes": ["write"], "expect": "VALID"},
            {"op": "owner_scopes", "owner": "acct_9", "scopes": ["read", "admin"]},
            {"op": "verify", "key": "k", "scopes": ["read"], "expect": "VALID", "expect_scopes": ["read"]},
            {"op": "verify", "key": "k", "scopes": ["write"], "expect": "INSUFFICIENT_SCOPE"},
            {"op": "verify", "key": "k", "scopes": ["admin"], "expect": "INSUFFICIENT_SCOPE"},
            {"op": "owner_scopes", "owner": "acct_9", "clear": True},
            {"op": "verify", "key": "k", "scopes": ["write"], "expect": "VALID", "expect_scopes": ["read", "write"]},
        ]},
        {"name": "rate limit: a burst, then RATE_LIMITED until the rate frees one; a dry run takes none", "steps": [
            {"op": "create", "as": "k", "owner": "acct_9", "scopes": ["read"],
             "rate_limit": {"rate": 2, "period_ms": H, "burst": 2}},
            {"op": "verify", "key": "k", "scopes": ["read"], "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": ["read"], "dry_run": True, "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": ["write"], "expect": "INSUFFICIENT_SCOPE"},
            {"op": "verify", "key": "k", "scopes": ["read"], "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": ["read"], "expect": "RATE_LIMITED"},
            {"op": "verify", "key": "k", "scopes": ["read"], "dry_run": True, "expect": "RATE_LIMITED"},
            {"op": "pair", "key": "k", "scopes": [], "expect": "RATE_LIMITED"},
            {"op": "verify", "key": "k", "scopes": ["read"], "at_offset_ms": H, "expect": "VALID"},
        ]},
        {"name": "rate limit before credits: a rate-limited request spends none", "steps": [
            {"op": "create", "as": "k", "owner": "acct_10", "scopes": [], "credits": {"remaining": 2, "cost": 1},
             "rate_limit": {"rate": 1, "period_ms": H, "burst": 1}},
            {"op": "verify", "key": "k", "scopes": [], "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": [], "expect": "RATE_LIMITED"},
            {"op": "verify", "key": "k", "scopes": [], "expect": "RATE_LIMITED"},
            {"op": "verify", "key": "k", "scopes": [], "at_offset_ms": H, "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": [], "at_offset_ms": 2 * H, "expect": "USAGE_EXCEEDED"},
        ]},
        {"name": "scope check comes before credits", "steps": [
            {"op": "create", "as": "k", "owner": "acct_7", "scopes": ["read"], "credits": {"remaining": 1, "cost": 1}},
            {"op": "verify", "key": "k", "scopes": ["write"], "expect": "INSUFFICIENT_SCOPE"},
            {"op": "verify", "key": "k", "scopes": ["read"], "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": ["read"], "expect": "USAGE_EXCEEDED"},
        ]},
        {"name": "legacy keys: text in another system's format", "steps": [
            # A store without legacy keys: such text is not a key.
            {"op": "verify_text", "text": SANCTUM_KEY, "scopes": [], "expect": "MALFORMED"},
            {"op": "verify_text", "text": UNKEY_KEY, "scopes": [], "expect": "MALFORMED"},
            {"op": "import_legacy", "from": "sanctum", "data": SANCTUM_CSV, "options": {}, "imported": 1},
            {"op": "verify_text", "text": SANCTUM_KEY, "scopes": ["read"], "expect": "VALID"},
            {"op": "verify_text", "text": SANCTUM_KEY, "scopes": ["admin"], "expect": "INSUFFICIENT_SCOPE"},
            {"op": "verify_text", "text": flip(SANCTUM_KEY, len(SANCTUM_KEY) - 1), "scopes": [], "expect": "NOT_FOUND"},
            {"op": "verify_text", "text": "6|" + SANCTUM_TOKEN, "scopes": [], "expect": "NOT_FOUND"},
            # Sanctum also accepts the bare token.
            {"op": "verify_text", "text": SANCTUM_TOKEN, "scopes": [], "expect": "VALID"},
            # Only Sanctum is enabled: other text is looked up as a bare Sanctum token.
            {"op": "verify_text", "text": UNKEY_KEY, "scopes": [], "expect": "NOT_FOUND"},
            {"op": "verify_text", "text": "not a key", "scopes": [], "expect": "MALFORMED"},
            {"op": "verify_text", "text": LIVE, "scopes": [], "expect": "NOT_FOUND"},
            {"op": "import_legacy", "from": "unkey", "data": UNKEY_JSONL, "options": {}, "imported": 1},
            {"op": "verify_text", "text": UNKEY_KEY, "scopes": ["read"], "expect": "VALID"},
            {"op": "verify_text", "text": UNKEY_KEY, "scopes": ["read"], "expect": "VALID"},
            {"op": "verify_text", "text": flip(UNKEY_KEY, 5), "scopes": [], "expect": "NOT_FOUND"},
            {"op": "verify_text", "text": SANCTUM_KEY, "scopes": ["read", "write"], "expect": "VALID"},
            # Importing again changes nothing.
            {"op": "import_legacy", "from": "sanctum", "data": SANCTUM_CSV, "options": {}, "imported": 0},
        ]},
    ],
}

DOORS = ["rust", "c", "cli", "python", "node", "php"]
NOT_RUST = [d for d in DOORS if d != "rust"]  # Rust takes &str: it cannot be handed bytes that are not UTF-8
hexb = lambda b: {"hex": b.hex()}
LIVE_BYTES = LIVE.encode()
malformed = {"reason": "MALFORMED", "http_status": 401}
def refused(code):
    """A header problem: verdict-style calls answer `code` with HTTP 401, error-style calls
    fail with status `code` of the CREDENTIAL family."""
    return {"code": code, "http_status": 401, "family": "CREDENTIAL"}
def app_error(status):
    return {"family": "ARGUMENT", "status": status}
edge_cases = [
    # --- a key presented (kw_verify / verify) --------------------------------------------------
    {"name": "key not UTF-8", "op": "verify", "key": hexb(LIVE_BYTES[:20] + b"\xff" + LIVE_BYTES[21:]),
     "doors": NOT_RUST, "expect": malformed},
    {"name": "key with an embedded NUL", "op": "verify", "key": hexb(LIVE_BYTES[:20] + b"\x00" + LIVE_BYTES[21:]),
     "expect": malformed},
    {"name": "key at the presented limit (1024 bytes)", "op": "verify", "key": LIVE + "A" * (1024 - len(LIVE)), "expect": malformed},
    {"name": "key beyond the presented limit (1025 bytes)", "op": "verify", "key": LIVE + "A" * (1025 - len(LIVE)), "expect": malformed},
    {"name": "key far beyond the limit (100 KiB)", "op": "verify", "key": "A" * 102400, "expect": malformed},
    {"name": "empty key", "op": "verify", "key": "", "expect": malformed},
    {"name": "whitespace-only key", "op": "verify", "key": "   ", "expect": malformed},
    {"name": "wrong prefix", "op": "verify", "key": make_key("zz", "live", ID1, SECRET1), "expect": malformed},
    {"name": "bad CRC", "op": "verify", "key": flip(LIVE, len(LIVE) - 1), "expect": malformed},
    {"name": "non-ASCII text", "op": "verify", "key": LIVE[:-8] + "é" + LIVE[-6:], "expect": malformed},
    {"name": "well-formed unknown key", "op": "verify", "key": LIVE, "expect": {"reason": "NOT_FOUND", "http_status": 401}},
    # --- an id and secret presented (kw_verify_pair / verify_pair; the CLI has no pair input) ---
    {"name": "pair with a secret not UTF-8", "op": "pair", "id": ID1, "secret": hexb(b"\xff" + SECRET1.encode()[1:]),
     "doors": ["c", "python", "node", "php"], "expect": malformed},
    {"name": "pair with an id not UTF-8", "op": "pair", "id": hexb(b"\xfe" + ID1.encode()[1:]), "secret": SECRET1,
     "doors": ["c", "python", "node", "php"], "expect": malformed},
    {"name": "pair with an over-long secret", "op": "pair", "id": ID1, "secret": "A" * 1025,
     "doors": ["rust", "c", "python", "node", "php"], "expect": malformed},
    {"name": "pair with an empty id", "op": "pair", "id": "", "secret": SECRET1,
     "doors": ["rust", "c", "python", "node", "php"], "expect": malformed},
    # --- request headers (verify_http-style: a verdict; verify_headers-style: a CREDENTIAL error) ---
    {"name": "no headers", "op": "headers", "headers": [], "expect": refused("CREDENTIAL_MISSING")},
    {"name": "empty x-api-key", "op": "headers", "headers": [["x-api-key", ""]], "expect": refused("CREDENTIAL_MISSING")},
    {"name": "unsupported scheme", "op": "headers", "headers": [["Authorization", "Digest username=x"]], "expect": refused("UNSUPPORTED_SCHEME")},
    {"name": "Basic with bad base64", "op": "headers", "headers": [["Authorization", "Basic !!!"]], "expect": refused("BAD_BASE64")},
    {"name": "Basic of bytes not UTF-8", "op": "headers", "headers": [["Authorization", "Basic " + b64(b"\xff\xfe")]], "expect": refused("BAD_BASE64")},
    {"name": "half pair (id only)", "op": "headers", "headers": [["X-Api-Token-Id", ID1]], "expect": refused("HALF_PAIR")},
    {"name": "half pair (secret only)", "op": "headers", "headers": [["X-Api-Token-Secret-Key", SECRET1]], "expect": refused("HALF_PAIR")},
    {"name": "several credentials", "op": "headers", "headers": [["x-api-key", LIVE], ["Authorization", "Bearer " + TEST]],
     "expect": refused("AMBIGUOUS_CREDENTIAL")},
    {"name": "credential header value at its limit (8192 bytes)", "op": "headers", "headers": [["x-api-key", "A" * 8192]], "expect": malformed},
    {"name": "credential header value over its limit (8193 bytes)", "op": "headers", "headers": [["x-api-key", "A" * 8193]],
     "expect": refused("MALFORMED_KEY")},
    {"name": "over-long Authorization", "op": "headers", "headers": [["Authorization", "Bearer " + "A" * 9000]],
     "expect": refused("MALFORMED_KEY")},
    {"name": "1024 credential headers (the limit)", "op": "headers", "headers": [["x-api-key", LIVE]], "repeat": 1024,
     "expect": {"reason": "NOT_FOUND", "http_status": 401}},
    {"name": "1025 credential headers (over the limit)", "op": "headers", "headers": [["x-api-key", LIVE]], "repeat": 1025,
     "expect": refused("AMBIGUOUS_CREDENTIAL")},
    {"name": "over-long header name is no credential header", "op": "headers", "headers": [["x" * 300, "y"], ["x-api-key", LIVE]],
     "expect": {"reason": "NOT_FOUND", "http_status": 401}},
    {"name": "x-api-key not UTF-8", "op": "headers", "headers": [["x-api-key", hexb(LIVE_BYTES[:20] + b"\xff" + LIVE_BYTES[21:])]],
     "doors": NOT_RUST, "expect": malformed},
    {"name": "Bearer not UTF-8", "op": "headers", "headers": [["Authorization", hexb(b"Bearer " + LIVE_BYTES[:-1] + b"\xff")]],
     "doors": NOT_RUST, "expect": malformed},
    {"name": "token secret not UTF-8", "op": "headers", "headers": [["X-Api-Token-Id", ID1], ["X-Api-Token-Secret-Key", hexb(b"\xff" * 32)]],
     "doors": NOT_RUST, "expect": malformed},
    {"name": "scheme not UTF-8", "op": "headers", "headers": [["Authorization", hexb(b"\xffearer " + LIVE_BYTES)]],
     "doors": NOT_RUST, "expect": refused("UNSUPPORTED_SCHEME")},
    # --- the route's scopes: the application's errors, whatever the client sent ----------------
    {"name": "empty scope", "op": "verify", "key": LIVE, "scopes": [""], "expect": app_error("INVALID_ARGUMENT")},
    {"name": "scope with whitespace", "op": "verify", "key": LIVE, "scopes": ["a b"], "expect": app_error("INVALID_ARGUMENT")},
    {"name": "over-long scope (65 bytes)", "op": "verify", "key": LIVE, "scopes": ["s" * 65], "expect": app_error("TOO_LONG")},
    {"name": "scope at its limit (64 bytes)", "op": "verify", "key": LIVE, "scopes": ["s" * 64], "expect": {"reason": "NOT_FOUND", "http_status": 401}},
    {"name": "too many scopes (65)", "op": "verify", "key": LIVE, "scopes": ["s%d" % i for i in range(65)], "expect": app_error("TOO_LONG")},
    {"name": "scope not UTF-8", "op": "verify", "key": LIVE, "scopes": [hexb(b"\xff")],
     "doors": ["c", "cli", "python", "php"], "expect": app_error("INVALID_UTF8")},
    {"name": "bad scope beats a malformed key", "op": "verify", "key": "", "scopes": [""], "expect": app_error("INVALID_ARGUMENT")},
    {"name": "bad scope beats a key not UTF-8", "op": "verify", "key": hexb(b"\xff"), "scopes": ["s" * 65],
     "doors": NOT_RUST, "expect": app_error("TOO_LONG")},
    {"name": "bad scope beats missing headers", "op": "headers", "headers": [], "scopes": [""], "expect": app_error("INVALID_ARGUMENT")},
    {"name": "bad scope with a pair", "op": "pair", "id": ID1, "secret": SECRET1, "scopes": ["s" * 65],
     "doors": ["rust", "c", "python", "node", "php"], "expect": app_error("TOO_LONG")},
    # --- create: limits on what the application passes ------------------------------------------
    {"name": "create: over-long owner (129 bytes)", "op": "create", "owner": "o" * 129, "scopes": [], "expect": app_error("TOO_LONG")},
    {"name": "create: owner at its limit (128 bytes)", "op": "create", "owner": "o" * 128, "scopes": [], "expect": {"created": True}},
    {"name": "create: empty owner", "op": "create", "owner": "", "scopes": [], "expect": app_error("INVALID_ARGUMENT")},
    {"name": "create: too many scopes (65)", "op": "create", "owner": "o", "scopes": ["s%d" % i for i in range(65)], "expect": app_error("TOO_LONG")},
    {"name": "create: over-long scope", "op": "create", "owner": "o", "scopes": ["s" * 65], "expect": app_error("TOO_LONG")},
    {"name": "create: owner not UTF-8", "op": "create", "owner": hexb(b"acct\xff"), "scopes": [],
     "doors": NOT_RUST, "expect": app_error("INVALID_UTF8")},
]
for case in edge_cases:
    case.setdefault("scopes", [])
    case.setdefault("doors", DOORS)
edge = {
    "note": "Edge inputs every entry point must answer alike. Replay against a fresh store opened with prefix kw "
            "(no key in it, except those the create cases make). A text is a JSON string (UTF-8) or {\"hex\": ...} "
            "for bytes that are not UTF-8 or hold a NUL: passed as bytes (C pointer and length, Python bytes, "
            "Node Buffer, PHP binary string, CLI argv or stdin bytes; a Python scope or owner as str decoded with "
            "surrogateescape, since those take only str). 'repeat' repeats the header list. 'doors' lists the entry "
            "points that can express the input (Rust's &str cannot hold bytes that are not UTF-8; Node takes scopes "
            "only as strings; the CLI has no id/secret input). expect: {reason, http_status}: a verdict at every door; "
            "{code, http_status, family: CREDENTIAL}: a header problem (what the client sent): verdict-style calls "
            "(Rust verify_http, Node and PHP verifyHeaders, the Python middleware's Guard.check, the CLI's verify "
            "--header: exit 1) answer code with HTTP 401, error-style calls (Rust verify_headers, C kw_verify_headers, "
            "Python verify_headers, extract_credential in every binding) fail with that status, of the CREDENTIAL "
            "family; {family: ARGUMENT, status}: the application's error at every door (CLI exit 2); {created: true}: "
            "create succeeds. 'applicable' is how many cases each door must replay.",
    "cases": edge_cases,
    "applicable": {d: sum(d in c["doors"] for c in edge_cases) for d in DOORS},
}

for name, data in (("keys.json", keys), ("headers.json", headers), ("verify.json", verify), ("edge.json", edge)):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")
