#!/usr/bin/env python3
"""Generates keys.json and headers.json, the shared test vectors.

The checksum is computed with zlib.crc32 (an implementation independent of the Rust
crate's crc32fast), so replaying these files checks the key format across languages.
Run from anywhere: python3 tests/vectors/generate.py. The Rust test
`vectors_are_generated_by_the_checked_in_generator` fails if the files differ from its output.
"""
import base64
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
        {"name": "oversize value", "headers": [["x-api-key", "A" * 9000]], "expect": {"error": "TOO_LONG"}},
        {"name": "garbage key is passed on for verify to refuse", "headers": [["x-api-key", "not-a-key"]], "expect": {"key": "not-a-key"}},
    ],
}

H = 3600 * 1000
verify = {
    "note": "Replay against a fresh store opened with prefix kw. 'key' names a key created earlier in the "
            "scenario; 'at_offset_ms' is added to the time the scenario started, taken before its first step "
            "(default 0; offsets leave a minute for the steps' own commits, so a real clock works); "
            "'pair' verifies (public id, secret) and 'mutate' alters what is sent: wrong_secret_first / "
            "wrong_secret_last change the first / last secret character, unknown_id sends a fresh id.",
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
        {"name": "scope check comes before credits", "steps": [
            {"op": "create", "as": "k", "owner": "acct_7", "scopes": ["read"], "credits": {"remaining": 1, "cost": 1}},
            {"op": "verify", "key": "k", "scopes": ["write"], "expect": "INSUFFICIENT_SCOPE"},
            {"op": "verify", "key": "k", "scopes": ["read"], "expect": "VALID"},
            {"op": "verify", "key": "k", "scopes": ["read"], "expect": "USAGE_EXCEEDED"},
        ]},
    ],
}

for name, data in (("keys.json", keys), ("headers.json", headers), ("verify.json", verify)):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")
