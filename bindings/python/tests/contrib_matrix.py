"""Shared by the keyward.contrib tests: the keys, the credential styles and the
200/401/403/401 matrix every integration must pass, with exact use counts."""
from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyward

# (status, lower-case response headers, decoded JSON body)
Response = tuple[int, dict[str, str], Any]
Call = Callable[[dict[str, str]], Response]


def styles(key: str) -> dict[str, dict[str, str]]:
    """The same key in every credential style the engine reads (tests/vectors/headers.json)."""
    parsed = keyward.parse_key(key)
    assert parsed.valid and parsed.id and parsed.secret
    return {
        "x-api-key": {"X-API-Key": key},
        "bearer": {"Authorization": f"Bearer {key}"},
        "basic": {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()},
        "pair": {"X-Api-Token-Id": parsed.id, "X-Api-Token-Secret-Key": parsed.secret},
    }


@dataclass
class Keys:
    store: keyward.Store
    valid: keyward.CreatedKey     # holds the scope
    lacking: keyward.CreatedKey   # a valid key without it
    revoked: keyward.CreatedKey
    unknown: str                  # well-formed, from another store


def make_keys(store: keyward.Store, tmp_path: Path, scope: str = "invoices:read") -> Keys:
    valid = store.create("acct_valid", scopes=[scope, "other"])
    lacking = store.create("acct_lacking", scopes=["other"])
    revoked = store.create("acct_revoked", scopes=[scope])
    store.revoke(revoked.id, "test")
    with keyward.Store(str(tmp_path / "elsewhere.redb")) as other:
        unknown = other.create("acct_elsewhere", scopes=[scope]).key
    return Keys(store, valid, lacking, revoked, unknown)


def counts(keys: Keys) -> dict[str, tuple[int, int]]:
    keys.store.flush()
    out = {}
    for name in ("valid", "lacking", "revoked"):
        u = keys.store.usage(getattr(keys, name).id)
        out[name] = (u.uses, u.refused)
    return out


def run_matrix(call: Call, keys: Keys, *, www_authenticate_on_401: bool = True) -> dict[str, list[Response]]:
    """Every case through every style; asserts the statuses and that each key-found request
    counted exactly one use (or one refusal). Returns the responses by case."""
    before = counts(keys)
    seen: dict[str, list[Response]] = {"valid": [], "missing": [], "unknown": [], "lacking": [], "revoked": []}
    expected = {"valid": 200, "missing": 401, "unknown": 401, "lacking": 403, "revoked": 401}
    seen["missing"].append(call({}))
    for style in ("x-api-key", "bearer", "basic", "pair"):
        for case, key in (("valid", keys.valid.key), ("unknown", keys.unknown),
                          ("lacking", keys.lacking.key), ("revoked", keys.revoked.key)):
            seen[case].append(call(styles(key)[style]))
    for case, responses in seen.items():
        for i, (status, headers, _body) in enumerate(responses):
            assert status == expected[case], (case, i, responses[i])
            if status == 401 and www_authenticate_on_401:
                assert headers.get("www-authenticate", "").startswith("Bearer"), (case, i, headers)
    after = counts(keys)
    n = 4  # styles
    # Exactly one count per request: the valid key's uses, the revoked key's refusals.
    assert after["valid"] == (before["valid"][0] + n, before["valid"][1]), (before, after)
    assert after["revoked"] == (before["revoked"][0], before["revoked"][1] + n), (before, after)
    lacking_delta = (after["lacking"][0] - before["lacking"][0]) + (after["lacking"][1] - before["lacking"][1])
    assert lacking_delta == n, (before, after)
    return seen
