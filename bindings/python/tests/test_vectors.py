"""Replays the shared test vectors (tests/vectors/*.json), as the Rust and C suites do."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import keyward
from keyward._ffi import lib
from keyward.middleware import Guard

from conftest import load_vectors

KEYS = load_vectors("keys.json")
HEADERS = load_vectors("headers.json")
VERIFY = load_vectors("verify.json")


@pytest.mark.parametrize("case", KEYS["cases"], ids=[c["name"] for c in KEYS["cases"]])
def test_key_vectors(case: dict[str, Any]) -> None:
    parsed = keyward.parse_key(case["key"], KEYS["prefix"])
    assert parsed.valid is case["valid"]
    if case["valid"]:
        assert parsed.error == "ok"
        assert parsed.prefix == KEYS["prefix"]
        assert parsed.env == case["env"]
        assert parsed.id == case["id"]
        assert parsed.secret == case["secret"]
    else:
        assert parsed.error == case["error"]
        assert parsed.id is None and parsed.secret is None


@pytest.mark.parametrize("case", KEYS["cases"], ids=[c["name"] for c in KEYS["cases"]])
def test_key_vectors_as_bytes_and_any_prefix(case: dict[str, Any]) -> None:
    parsed = keyward.parse_key(case["key"].encode("utf-8"))
    if case["valid"]:
        assert parsed.valid and parsed.id == case["id"]
    elif case["error"] != "bad_prefix":
        assert parsed.error == case["error"]


def _shapes(pairs: list[list[str]]) -> list[Any]:
    """The same headers as a list of str pairs, of bytes pairs and (when names are unique
    case-insensitively) as a dict."""
    shapes: list[Any] = [[tuple(p) for p in pairs], [(n.encode(), v.encode()) for n, v in pairs]]
    if len({n.strip().lower() for n, _ in pairs}) == len(pairs):
        shapes.append(dict(pairs))
    return shapes


@pytest.mark.parametrize("case", HEADERS["cases"], ids=[c["name"] for c in HEADERS["cases"]])
def test_header_vectors(case: dict[str, Any]) -> None:
    expect = case["expect"]
    for headers in _shapes(case["headers"]):
        if "error" in expect:
            with pytest.raises(keyward.CredentialError) as info:
                keyward.extract_credential(headers)
            assert info.value.code == expect["error"]
            assert info.value.http_status == 401
        elif "key" in expect:
            cred = keyward.extract_credential(headers)
            assert (cred.kind, cred.key, cred.id, cred.secret) == ("key", expect["key"], None, None)
        else:
            cred = keyward.extract_credential(headers)
            assert (cred.kind, cred.id, cred.secret) == ("pair", expect["pair"]["id"], expect["pair"]["secret"])


def _mutate(secret: str, key_id: str, how: str | None) -> tuple[str, str]:
    flip = lambda c: "b" if c == "a" else "a"  # noqa: E731 - as the C test does
    if how == "wrong_secret_first":
        secret = flip(secret[0]) + secret[1:]
    elif how == "wrong_secret_last":
        secret = secret[:-1] + flip(secret[-1])
    elif how == "unknown_id":
        key_id = "ZZZZzzzz00009999"
    elif how is not None:
        raise AssertionError(f"unknown mutation {how}")
    return key_id, secret


@pytest.mark.parametrize("scenario", VERIFY["scenarios"], ids=[s["name"] for s in VERIFY["scenarios"]])
def test_verify_vectors(scenario: dict[str, Any], tmp_path: Path) -> None:
    keys: dict[str, str] = {}
    start = 0  # the scenario's clock starts at its first verify, as in the C replay
    with keyward.Store(str(tmp_path / "v.redb"), prefix="kw") as store:
        for step in scenario["steps"]:
            op = step["op"]
            if op == "create":
                credits = step.get("credits")
                expires = step.get("expires_in_ms")
                created = store.create(
                    step["owner"],
                    scopes=step["scopes"],
                    env=step.get("env"),
                    expires_at=int(time.time() * 1000) + expires if expires else None,
                    credits=keyward.Credits(remaining=credits["remaining"], cost=credits.get("cost", 1))
                    if credits else None,
                    rate_limit=keyward.RateLimit(**step["rate_limit"]) if "rate_limit" in step else None,
                )
                keys[step["as"]] = created.key
            elif op == "revoke":
                store.revoke(keyward.parse_key(keys[step["key"]]).id or "")
            elif op == "rotate":
                old = keyward.parse_key(keys[step["key"]]).id or ""
                keys[step["as"]] = store.rotate(old, step["grace_ms"]).key
            elif op == "import_legacy":
                options = step["options"]
                report = store.import_legacy(
                    step["from"],
                    step["data"],
                    all_scopes=options.get("all_scopes"),
                    default_owner=options.get("default_owner"),
                )
                assert report.imported == step["imported"], f"step {step}"
            elif op == "owner_suspend":
                store.suspend_owner(step["owner"])
            elif op == "owner_resume":
                store.resume_owner(step["owner"])
            elif op == "owner_scopes":
                store.set_owner_scopes(step["owner"], None if step.get("clear") else step["scopes"])
            elif op in ("verify", "verify_text", "pair"):
                if not start:
                    start = int(time.time() * 1000)
                at = start + step.get("at_offset_ms", 0)
                scopes = tuple(step["scopes"])
                cost = step.get("cost", 0)
                if op == "verify":
                    verdict = store.verify(
                        keys[step["key"]], scopes, cost=cost, at=at, dry_run=step.get("dry_run", False),
                        with_info="expect_scopes" in step,
                    )
                elif op == "verify_text":
                    verdict = store.verify(step["text"], scopes, cost=cost, at=at)
                else:
                    parsed = keyward.parse_key(keys[step["key"]])
                    key_id, secret = _mutate(parsed.secret or "", parsed.id or "", step.get("mutate"))
                    verdict = store.verify_pair(key_id, secret, scopes, cost=cost, at=at)
                assert verdict.code == step["expect"], f"step {step}"
                assert verdict.reason == keyward.Reason[step["expect"]]
                assert verdict.ok is (step["expect"] == "VALID")
                assert verdict.http_status == keyward.Reason[step["expect"]].http_status
                if "expect_scopes" in step:
                    assert verdict.info is not None and list(verdict.info.scopes) == step["expect_scopes"]
            else:
                raise AssertionError(f"unknown op {op}")


EDGE = load_vectors("edge.json")


def _edge_bytes(value: Any) -> bytes:
    """A text of edge.json: a JSON string, or ``{"hex": ...}`` for bytes that are not UTF-8 or
    hold a NUL."""
    return value.encode("utf-8") if isinstance(value, str) else bytes.fromhex(value["hex"])


def _edge_str(value: Any) -> str:
    """A scope or owner, which Python takes only as ``str``: bytes that are not UTF-8 are
    decoded with surrogateescape (the note of edge.json), which the binding refuses as
    ``INVALID_UTF8``."""
    return _edge_bytes(value).decode("utf-8", "surrogateescape")


_FAMILY_NAMES = {
    getattr(lib, name): name[len("KW_FAMILY_"):] for name in dir(lib) if name.startswith("KW_FAMILY_")
}
_FAMILY_CLASS = {"ARGUMENT": keyward.ArgumentError, "CREDENTIAL": keyward.CredentialError}


def _edge_outcome(call: Any) -> tuple[Any, ...]:
    """What a call answered, in edge.json's terms."""
    try:
        result = call()
    except keyward.KeywardError as exc:
        family = _FAMILY_NAMES[lib.kw_status_family(exc.status)]
        assert isinstance(exc, _FAMILY_CLASS.get(family, keyward.KeywardError)), (family, type(exc))
        return ("error", family, exc.code)
    if isinstance(result, keyward.CreatedKey):
        return ("created",)
    if isinstance(result, keyward.Verdict):
        assert result.http_status == result.reason.http_status
        return ("verdict", result.code, result.http_status)
    # A middleware Outcome: the answer to the request.
    return ("verdict", result.code, result.status)


def _edge_expected(expect: dict[str, Any], style: str) -> tuple[Any, ...]:
    if expect.get("created"):
        return ("created",)
    if "reason" in expect:
        return ("verdict", expect["reason"], expect["http_status"])
    if expect["family"] == "CREDENTIAL" and style == "verdict":
        return ("verdict", expect["code"], expect["http_status"])
    return ("error", expect["family"], expect.get("status") or expect["code"])


def test_edge_vectors(tmp_path: Path) -> None:
    """Replays tests/vectors/edge.json: a key through ``verify`` (the six-argument hot path
    and, with ``with_info``, ``kw_verify``), a pair through ``verify_pair``, headers through
    ``verify_headers`` and ``extract_credential`` (a header problem raises
    :class:`keyward.CredentialError`) and through the middlewares' ``Guard.check`` (it answers
    401 with the code), and ``create``. Counts
    the cases run against the number edge.json records for the python door."""
    run = 0
    failures: list[str] = []
    with keyward.Store(str(tmp_path / "edge.redb"), prefix="kw") as store:
        for case in EDGE["cases"]:
            if "python" not in case["doors"]:
                continue
            scopes = [_edge_str(s) for s in case["scopes"]]
            calls: list[tuple[str, str, Any]] = []  # (call name, style, thunk)
            op = case["op"]
            if op == "verify":
                key = _edge_bytes(case["key"])
                calls.append(("verify", "error", lambda: store.verify(key, scopes)))
                calls.append(("verify(with_info)", "error", lambda: store.verify(key, scopes, with_info=True)))
                if not isinstance(case["key"], dict):
                    text = case["key"]
                    calls.append(("verify(str)", "error", lambda: store.verify(text, tuple(scopes))))
            elif op == "pair":
                key_id, secret = _edge_bytes(case["id"]), _edge_bytes(case["secret"])
                calls.append(("verify_pair", "error", lambda: store.verify_pair(key_id, secret, scopes)))
            elif op == "headers":
                headers = [(_edge_bytes(n), _edge_bytes(v)) for n, v in case["headers"]] * case.get("repeat", 1)
                calls.append(("verify_headers", "error", lambda: store.verify_headers(headers, scopes)))
                guard = Guard(store, scopes)
                calls.append(("Guard.check", "verdict", lambda: guard.check(headers, "GET", "/")))
                if case["expect"].get("family") == "CREDENTIAL":
                    calls.append(("extract_credential", "error", lambda: keyward.extract_credential(headers)))
            elif op == "create":
                owner = _edge_str(case["owner"])
                calls.append(("create", "error", lambda: store.create(owner, scopes=scopes)))
            else:
                raise AssertionError(f"{case['name']}: unknown op {op}")
            for name, style, call in calls:
                got = _edge_outcome(call)
                want = _edge_expected(case["expect"], style)
                if got != want:
                    failures.append(f"{case['name']} ({name}): got {got}, expected {want}")
            run += 1
    assert not failures, "\n".join(failures)
    assert run == EDGE["applicable"]["python"], f"ran {run} edge cases, edge.json says {EDGE['applicable']['python']}"
    assert run == sum("python" in c["doors"] for c in EDGE["cases"])
