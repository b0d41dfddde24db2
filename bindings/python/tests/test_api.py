"""Every function of the Python API, its results and its failures."""
from __future__ import annotations

import datetime as dt
import os
import pickle
import stat
import threading
import time
from pathlib import Path
from typing import Any

import cffi  # type: ignore[import-untyped,unused-ignore]
import pytest

import keyward
from keyward import _ffi
from keyward.errors import error_for_status, status_code


def now_ms() -> int:
    return int(time.time() * 1000)


# --- module level ------------------------------------------------------------------------------


def test_versions() -> None:
    assert keyward.abi_version() == keyward.ABI_VERSION
    assert keyward.library_version().count(".") == 2
    assert os.path.exists(keyward.library_path)


def test_imported_from_the_installed_package() -> None:
    if not os.environ.get("KEYWARD_EXPECT_INSTALLED"):
        pytest.skip("run through scripts/test-python.sh")
    assert "site-packages" in keyward.__file__


def test_the_installed_package_runs_its_compiled_modules() -> None:
    """The wheel's keyward._kw_api and keyward._kw_fast load (the middlewares' C path)."""
    if not os.environ.get("KEYWARD_EXPECT_INSTALLED"):
        pytest.skip("run through scripts/test-python.sh")
    from keyward import _ffi

    assert _ffi.mode == "api" and _ffi.fast is not None


def test_py_typed_is_shipped() -> None:
    assert (Path(keyward.__file__).parent / "py.typed").exists()


def test_reason_enum_matches_the_library() -> None:
    lib, ffi = _ffi.lib, _ffi.ffi
    for reason in keyward.Reason:
        assert reason.code == ffi.string(lib.kw_reason_code(reason)).decode() == reason.name
        assert reason.http_status == lib.kw_reason_http_status(reason)
        assert reason.message
    assert keyward.Reason.VALID.http_status == 200
    assert keyward.Reason.REVOKED.http_status == 401
    assert keyward.Reason.INSUFFICIENT_SCOPE.http_status == 403
    assert keyward.Reason.USAGE_EXCEEDED.http_status == 403


def test_status_names_and_messages() -> None:
    assert status_code(0) == "OK"
    assert status_code(10) == "NOT_FOUND"
    assert status_code(9999) == "UNKNOWN"
    err = error_for_status(10)
    assert isinstance(err, keyward.KeyNotFoundError) and isinstance(err, LookupError)
    assert (err.status, err.code) == (10, "NOT_FOUND")
    assert str(err).startswith("NOT_FOUND: ")


@pytest.mark.parametrize(
    "status, cls",
    [
        (1, keyward.ArgumentError), (2, keyward.ArgumentError), (3, keyward.ArgumentError),
        (4, keyward.ArgumentError), (5, keyward.InternalError), (6, keyward.InternalError),
        (7, keyward.StoreClosedError), (10, keyward.KeyNotFoundError), (20, keyward.PolicyError),
        (21, keyward.PolicyError), (22, keyward.PolicyError), (42, keyward.PolicyError),
        (30, keyward.StorageError), (31, keyward.StorageError), (34, keyward.StorageError),
        (39, keyward.ArgumentError), (40, keyward.StorageError), (50, keyward.CredentialError),
        (55, keyward.CredentialError), (999, keyward.InternalError),
    ],
)
def test_every_status_family(status: int, cls: type) -> None:
    err = error_for_status(status)
    assert type(err) is cls
    assert isinstance(err, keyward.KeywardError)
    assert err.status == status
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cls and again.code == err.code


def test_a_panic_in_the_library_is_an_internal_error() -> None:
    # kw_test_panic is a test hook: exported only by a library built with
    # `cargo build --lib --features test-hooks` (scripts/test-python.sh builds the one
    # KEYWARD_LIB names so) and declared in no header, so the test declares it itself, on the
    # library the package loaded.
    hooks = cffi.FFI()
    hooks.cdef("uint32_t kw_test_panic(void);")
    lib = hooks.dlopen(_ffi.library_path)
    try:
        test_panic = lib.kw_test_panic
    except AttributeError as exc:
        pytest.fail(f"{_ffi.library_path} has no kw_test_panic: build it with "
                    f"`cargo build --lib --features test-hooks` ({exc})")
    status = test_panic()  # prints one line to stderr by design
    assert status == _ffi.lib.KW_PANIC
    assert isinstance(error_for_status(status), keyward.InternalError)
    assert keyward.abi_version() == keyward.ABI_VERSION  # the process goes on


def test_parse_key_bad_input() -> None:
    with pytest.raises(TypeError):
        keyward.parse_key(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keyward.parse_key("x", prefix=b"kw")  # type: ignore[arg-type]
    assert keyward.parse_key("k" * 5000).error == "too_long"
    assert keyward.parse_key(b"\xff\xfe").error == "not_base62"
    assert keyward.parse_key("").error == "empty"


def test_parsed_and_extracted_secrets_are_hidden_from_repr(store: keyward.Store) -> None:
    created = store.create("acct")
    parsed = keyward.parse_key(created.key)
    cred = keyward.extract_credential({"x-api-key": created.key})
    pair = keyward.extract_credential({"x-api-token-id": parsed.id, "x-api-token-secret-key": parsed.secret})
    for obj in (created, parsed, cred, pair):
        assert parsed.secret not in repr(obj)
        assert created.key not in repr(obj)
    assert parsed.id in repr(parsed)


def test_extract_credential_bad_input() -> None:
    with pytest.raises(TypeError):
        keyward.extract_credential(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keyward.extract_credential("x-api-key: abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keyward.extract_credential([("x-api-key",)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        keyward.extract_credential({"x-api-key": 5})
    # What the client sent is never an argument error: a value that is not UTF-8 is read with
    # U+FFFD (verify then refuses it as MALFORMED), too many credential headers are ambiguous.
    cred = keyward.extract_credential({"x-api-key": b"\xff\xfe"})
    assert (cred.kind, cred.key) == ("key", "\ufffd\ufffd")
    with pytest.raises(keyward.CredentialError) as info:
        keyward.extract_credential([("x-api-key", "a")] * 2000)
    assert (info.value.code, info.value.http_status) == ("AMBIGUOUS_CREDENTIAL", 401)


# --- open / close ---------------------------------------------------------------------------


def test_context_manager_and_close(store_path: str) -> None:
    with keyward.Store(store_path) as store:
        assert not store.closed
        assert store.path == store_path
        assert store.handle > 0
        assert "open" in repr(store)
    assert store.closed
    assert "closed" in repr(store)
    store.close()  # closing twice is a no-op


def test_pepper_file_is_created_private(store_path: str) -> None:
    keyward.Store(store_path).close()
    mode = stat.S_IMODE(os.stat(store_path + ".pepper").st_mode)
    assert mode == 0o600


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(keyward.StorageError) as info:
        keyward.Store(str(tmp_path / "missing" / "k.redb"))
    assert info.value.code == "DIRECTORY_MISSING"
    assert "missing" in str(info.value)
    with pytest.raises(TypeError):
        keyward.Store(42)  # type: ignore[arg-type]
    with pytest.raises(keyward.ArgumentError) as info:
        keyward.Store("")
    assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(keyward.ArgumentError) as info:
        keyward.Store(str(tmp_path / ("x" * 5000)))
    assert info.value.code == "TOO_LONG"
    with pytest.raises(keyward.ArgumentError):
        keyward.Store(str(tmp_path / "k.redb"), prefix="Bad!")
    with pytest.raises(keyward.StorageError) as info:
        keyward.Store(str(tmp_path / "k.redb"), pepper=b"short")
    assert info.value.code == "PEPPER_INVALID"
    with pytest.raises(keyward.ArgumentError):
        keyward.Store(str(tmp_path / "k.redb"), pepper="00" * 32, pepper_file=str(tmp_path / "p"))
    with pytest.raises(TypeError):
        keyward.Store(str(tmp_path / "k.redb"), pepper=123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keyward.Store(str(tmp_path / "k.redb"), max_active_keys_per_owner="3")  # type: ignore[arg-type]
    with pytest.raises(keyward.ArgumentError):
        keyward.Store(str(tmp_path / "k.redb"), flush_interval_ms=-1)


def test_explicit_pepper_and_wrong_pepper(tmp_path: Path) -> None:
    path = str(tmp_path / "k.redb")
    pepper = bytes(range(32))
    with keyward.Store(path, pepper=pepper) as store:
        key = store.create("acct").key
    with keyward.Store(path, pepper=pepper.hex()) as store:
        assert store.verify(key).ok
    with pytest.raises(keyward.StorageError) as info:
        keyward.Store(path, pepper=bytes(32))
    assert info.value.code == "WRONG_PEPPER"


def test_pepper_file_option(tmp_path: Path) -> None:
    pepper_file = tmp_path / "pepper.hex"
    pepper_file.write_text("ab" * 32)
    pepper_file.chmod(0o600)
    with keyward.Store(tmp_path / "k.redb", pepper_file=pepper_file) as store:
        assert store.verify(store.create("acct").key).ok
    pepper_file.chmod(0o644)
    with pytest.raises(keyward.StorageError) as info:
        keyward.Store(tmp_path / "k2.redb", pepper_file=pepper_file)
    assert info.value.code == "PEPPER_PERMISSIONS"


def test_reopen_shares_the_store_and_config_mismatch(store_path: str) -> None:
    a = keyward.Store(store_path)
    b = keyward.Store(store_path)
    try:
        assert a.same_store(b) and b.same_store(a)
        key = a.create("acct").key
        assert b.verify(key).ok
        with pytest.raises(keyward.ArgumentError) as info:
            keyward.Store(store_path, single_process=True)
        assert info.value.code == "CONFIG_MISMATCH"
        with pytest.raises(TypeError):
            a.same_store("x")  # type: ignore[arg-type]
    finally:
        a.close()
    assert b.verify(key).ok  # the store lives on with its last handle
    b.close()


def test_different_stores_are_not_the_same(tmp_path: Path) -> None:
    with keyward.Store(tmp_path / "a.redb") as a, keyward.Store(tmp_path / "b.redb") as b:
        assert not a.same_store(b)


def test_persistent_and_single_process(tmp_path: Path) -> None:
    with keyward.Store(tmp_path / "p.redb", persistent=True) as store:
        key = store.create("acct").key
        key_id = store.get(keyward.parse_key(key).id or "").id
    with keyward.Store(tmp_path / "p.redb", persistent=True) as again:
        assert again.verify(key).ok
        assert again.stats().dirty_keys == 1  # pinned: no flush at close
    keyward.release_persistent()  # flushes and closes the pinned store
    with keyward.Store(tmp_path / "p.redb") as fresh:
        assert fresh.usage(key_id).uses == 1
    with keyward.Store(tmp_path / "s.redb", single_process=True, flush_interval_ms=keyward.FLUSH_MANUAL,
                       index_capacity=1000) as store:
        key = store.create("acct").key
        store.verify(key)
        assert store.stats().dirty_keys == 1
        assert store.flush() == 1
        assert store.stats().dirty_keys == 0


def test_closed_store_refuses_every_call(store_path: str) -> None:
    store = keyward.Store(store_path)
    other = keyward.Store(store_path)
    key = store.create("acct")
    store.close()
    calls: list[Any] = [
        lambda: store.verify(key.key),
        lambda: store.verify(key.key, ("a",), with_info=True),
        lambda: store.verify_pair(key.id, "x"),
        lambda: store.verify_headers({"x-api-key": key.key}),
        lambda: store.create("acct"),
        lambda: store.get(key.id),
        lambda: store.list_keys("acct"),
        lambda: store.all_keys(),
        lambda: store.update(key.id, name="n"),
        lambda: store.revoke(key.id),
        lambda: store.delete(key.id),
        lambda: store.rotate(key.id),
        lambda: store.flush(),
        lambda: store.stats(),
        lambda: store.same_store(other),
        lambda: store.usage(key.id),
        lambda: store.usage_by_day(key.id, 0, 1),
        lambda: store.unused_since("acct", 0),
        lambda: store.credits(key.id),
    ]
    for call in calls:
        with pytest.raises(keyward.StoreClosedError) as info:
            call()
        assert info.value.code == "CLOSED"
    assert other.verify(key.key).ok
    other.close()


# --- create / get / list -----------------------------------------------------------------


def test_create_returns_the_key_once_with_its_record(store: keyward.Store) -> None:
    expires = now_ms() + 3_600_000
    created = store.create(
        "acct_1", name="CI deploy", scopes=["write", "read", "read"], env="live",
        metadata=b'{"plan":"pro"}', expires_at=expires,
    )
    assert created.key.startswith("kw_live_")
    assert created.id == created.info.id == keyward.parse_key(created.key).id
    info = created.info
    assert (info.owner, info.name, info.scopes, info.env) == ("acct_1", "CI deploy", ("read", "write"), "live")
    assert info.metadata == b'{"plan":"pro"}'
    assert info.expires_at == expires
    assert info.revoked_at is None and not info.revoked
    assert info.active_at(now_ms()) and not info.active_at(expires)
    assert info.credits is None and info.serial >= 1
    assert store.get(created.id) == info
    # The key itself is stored nowhere: no record holds it.
    assert created.key not in repr(store.all_keys())


def test_create_with_datetime_expiry_and_str_metadata(store: keyward.Store) -> None:
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    info = store.create("acct", expires_at=when, metadata="é").info
    assert info.expires_at == int(when.timestamp() * 1000)
    assert info.metadata == "é".encode()
    naive = dt.datetime(2100, 1, 1)
    assert store.create("acct", expires_at=naive).info.expires_at == 4102444800000


def test_create_bad_input(store: keyward.Store) -> None:
    cases: list[tuple[dict[str, Any], type, str | None]] = [
        ({"owner": 5}, TypeError, None),
        ({"owner": ""}, keyward.ArgumentError, "INVALID_ARGUMENT"),
        ({"owner": "   "}, keyward.ArgumentError, "INVALID_ARGUMENT"),
        ({"owner": "o" * 129}, keyward.ArgumentError, "TOO_LONG"),
        ({"owner": "a\ud800"}, keyward.ArgumentError, "INVALID_UTF8"),
        ({"owner": "a", "name": "n" * 257}, keyward.ArgumentError, "TOO_LONG"),
        ({"owner": "a", "name": 3}, TypeError, None),
        ({"owner": "a", "scopes": "read"}, TypeError, None),
        ({"owner": "a", "scopes": [1]}, TypeError, None),
        ({"owner": "a", "scopes": 7}, TypeError, None),
        ({"owner": "a", "scopes": [""]}, keyward.ArgumentError, "INVALID_ARGUMENT"),
        ({"owner": "a", "scopes": ["s" * 65]}, keyward.ArgumentError, "TOO_LONG"),
        ({"owner": "a", "scopes": [f"s{i}" for i in range(65)]}, keyward.ArgumentError, "TOO_LONG"),
        ({"owner": "a", "env": "LIVE"}, keyward.ArgumentError, "INVALID_ARGUMENT"),
        ({"owner": "a", "metadata": b"x" * 4097}, keyward.ArgumentError, "TOO_LONG"),
        ({"owner": "a", "metadata": 5}, TypeError, None),
        ({"owner": "a", "expires_at": -5}, keyward.ArgumentError, "INVALID_ARGUMENT"),
        ({"owner": "a", "expires_at": "tomorrow"}, TypeError, None),
        ({"owner": "a", "expires_at": 1.5}, TypeError, None),
        ({"owner": "a", "credits": 5}, TypeError, None),
        ({"owner": "a", "credits": keyward.Credits(remaining=-1)}, keyward.ArgumentError, "INVALID_ARGUMENT"),
        ({"owner": "a", "credits": keyward.Credits(remaining=2**41)}, keyward.ArgumentError, None),
    ]
    for kwargs, exc, code in cases:
        owner = kwargs.pop("owner")
        with pytest.raises(exc) as info:
            store.create(owner, **kwargs)
        if code is not None:
            assert info.value.code == code, kwargs
    assert store.all_keys() == []


def test_get_and_not_found(store: keyward.Store) -> None:
    with pytest.raises(keyward.KeyNotFoundError) as info:
        store.get("ZZZZzzzz00009999")
    assert info.value.code == "NOT_FOUND" and info.value.status == 10
    with pytest.raises(keyward.KeyNotFoundError):
        store.get("not an id")
    with pytest.raises(TypeError):
        store.get(None)  # type: ignore[arg-type]


def test_list_keys_pages_and_states(store: keyward.Store) -> None:
    ids = [store.create("acct", name=f"k{i}").id for i in range(5)]
    store.create("other")
    store.revoke(ids[1])
    store.update(ids[2], expires_at=now_ms() - 1)
    page = store.list_keys("acct", limit=2)
    assert [k.id for k in page.keys] == ids[:2] and page.next is not None
    page2 = store.list_keys("acct", limit=2, after=page.next)
    assert [k.id for k in page2.keys] == ids[2:4]
    assert [k.id for k in store.iter_keys("acct", page_size=2)] == ids
    assert [k.id for k in store.list_keys("acct", state=keyward.KeyState.REVOKED).keys] == [ids[1]]
    assert [k.id for k in store.list_keys("acct", state=keyward.KeyState.EXPIRED).keys] == [ids[2]]
    assert [k.id for k in store.list_keys("acct", state=keyward.KeyState.ACTIVE).keys] == [ids[0], ids[3], ids[4]]
    assert store.list_keys("nobody").keys == ()
    with pytest.raises(keyward.ArgumentError):
        store.list_keys("acct", limit=0)
    with pytest.raises(keyward.ArgumentError):
        store.list_keys("acct", limit=1001)
    with pytest.raises(keyward.ArgumentError):
        store.list_keys("acct", state=9)
    with pytest.raises(TypeError):
        store.list_keys("acct", limit="2")  # type: ignore[arg-type]
    assert [k.id for k in store.all_keys()][:5] == ids
    assert len(store.all_keys()) == 6


def test_large_outputs_grow_the_buffer(store: keyward.Store) -> None:
    meta = b"m" * 4096
    for _ in range(30):
        store.create("big", metadata=meta)
    assert len(store.all_keys()) == 30
    assert len(store.list_keys("big", limit=1000).keys) == 30
    assert len(store.unused_since("big", now_ms() + 1000)) == 30


# --- update / revoke / delete / rotate ----------------------------------------------------------


def test_update_fields(store: keyward.Store) -> None:
    created = store.create("acct", name="a", scopes=["read"], metadata=b"m")
    info = store.update(created.id, name="b")
    assert (info.name, info.scopes, info.metadata) == ("b", ("read",), b"m")
    info = store.update(created.id, scopes=["write", "admin"], metadata=b"n")
    assert (info.scopes, info.metadata) == (("admin", "write"), b"n")
    assert store.verify(created.key, ("admin",)).ok
    assert store.update(created.id, scopes=[]).scopes == ()
    assert store.verify(created.key, ("admin",)).code == "INSUFFICIENT_SCOPE"
    expires = now_ms() + 10_000
    assert store.update(created.id, expires_at=expires).expires_at == expires
    assert store.update(created.id, expires_at=None).expires_at is None
    info = store.update(created.id, credits=keyward.Credits(10, refill_amount=10, refill_interval=keyward.Refill.DAILY, cost=2))
    assert info.credits == keyward.CreditTerms(cost=2, refill_amount=10, refill_interval=keyward.Refill.DAILY)
    assert store.update(created.id, credits=None).credits is None
    assert store.update(created.id, metadata=None).metadata == b""
    assert store.update(created.id) == store.get(created.id)  # nothing to change
    with pytest.raises(keyward.KeyNotFoundError):
        store.update("ZZZZzzzz00009999", name="x")
    with pytest.raises(keyward.ArgumentError):
        store.update(created.id, scopes=[" "])
    with pytest.raises(TypeError):
        store.update(created.id, name=5)  # type: ignore[arg-type]


def test_revoke(store: keyward.Store) -> None:
    created = store.create("acct")
    info = store.revoke(created.id, "leaked in a log")
    assert info.revoked and info.revoke_reason == "leaked in a log"
    assert store.revoke(created.id).revoked_at == info.revoked_at  # idempotent
    verdict = store.verify(created.key)
    assert (verdict.code, verdict.http_status, verdict.revoked, verdict.key_found) == ("REVOKED", 401, True, True)
    with pytest.raises(keyward.KeyNotFoundError):
        store.revoke("ZZZZzzzz00009999")
    with pytest.raises(keyward.ArgumentError) as err:
        store.revoke(store.create("acct").id, "r" * 513)
    assert err.value.code == "TOO_LONG"


def test_delete(store: keyward.Store) -> None:
    created = store.create("acct")
    store.delete(created.id)
    with pytest.raises(keyward.KeyNotFoundError):
        store.get(created.id)
    assert store.verify(created.key).code == "NOT_FOUND"
    with pytest.raises(keyward.KeyNotFoundError):
        store.delete(created.id)


def test_rotate(store: keyward.Store) -> None:
    old = store.create("acct", name="n", scopes=["read"], env="test")
    new = store.rotate(old.id, dt.timedelta(hours=1))
    assert new.key != old.key and new.key.startswith("kw_test_")
    assert (new.info.name, new.info.scopes, new.info.rotated_from) == ("n", ("read",), old.id)
    assert store.get(old.id).rotated_to == new.id
    assert store.verify(old.key).ok  # in grace
    assert store.verify(old.key).rotated
    assert store.verify(old.key, at=now_ms() + 2 * 3_600_000).code == "EXPIRED"
    again = store.rotate(new.id, 0)
    assert store.verify(new.key, at=now_ms() + 1).code == "EXPIRED"
    assert store.verify(again.key).ok
    store.revoke(again.id)
    with pytest.raises(keyward.ArgumentError):
        store.rotate(again.id)
    with pytest.raises(keyward.KeyNotFoundError):
        store.rotate("ZZZZzzzz00009999")
    with pytest.raises(keyward.ArgumentError):
        store.rotate(old.id, -1)


def test_policies(tmp_path: Path) -> None:
    with keyward.Store(tmp_path / "a.redb", max_active_keys_per_owner=2, keep_last_key=True) as store:
        a = store.create("acct")
        store.create("acct")
        with pytest.raises(keyward.PolicyError) as info:
            store.create("acct")
        assert info.value.code == "POLICY_MAX_ACTIVE_KEYS"
        store.revoke(a.id)
        last = store.list_keys("acct", state=keyward.KeyState.ACTIVE).keys[0]
        with pytest.raises(keyward.PolicyError) as info:
            store.revoke(last.id)
        assert info.value.code == "POLICY_LAST_ACTIVE_KEY"
        with pytest.raises(keyward.PolicyError):
            store.delete(last.id)
    with keyward.Store(tmp_path / "b.redb", max_lifetime=dt.timedelta(days=1)) as store:
        with pytest.raises(keyward.PolicyError) as info:
            store.create("acct")
        assert info.value.code == "POLICY_MAX_LIFETIME"
        with pytest.raises(keyward.PolicyError):
            store.create("acct", expires_at=now_ms() + 2 * 86_400_000)
        assert store.create("acct", expires_at=now_ms() + 3_600_000).info.expires_at


# --- verify ------------------------------------------------------------------------------------


def test_verify_verdict_fields(store: keyward.Store) -> None:
    expires = now_ms() + 60_000
    created = store.create("acct_9", scopes=["read"], env="live", expires_at=expires,
                           credits=keyward.Credits(remaining=5))
    v = store.verify(created.key, ("read",))
    assert v.ok and v.code == "VALID" and v.reason is keyward.Reason.VALID and v.http_status == 200
    assert (v.key_found, v.key_id, v.owner, v.env) == (True, created.id, "acct_9", "live")
    assert v.created_at == created.info.created_at and v.expires_at == expires
    assert v.limited and not v.revoked and not v.rotated
    assert v.info is None
    assert v.as_dict()["key_id"] == created.id and created.key not in repr(v.as_dict())
    assert created.key not in repr(v)
    v = store.verify(created.key.encode(), ["read"], with_info=True)
    assert v.ok and v.info == store.get(created.id)
    unknown = store.verify("kw_live_3hZ0bq9XcV1mT7pKQw8rT2yU4iO6pA1sD3fG5hJ7kL9zX0cV3oGDzY", with_info=True)
    assert unknown.code == "NOT_FOUND" and not unknown.key_found
    assert (unknown.key_id, unknown.owner, unknown.env, unknown.created_at, unknown.expires_at) == (None,) * 5
    assert unknown.info is None


def test_verify_oversize_and_garbage_keys_are_malformed(store: keyward.Store) -> None:
    for text in ("", "x", "kw_" + "A" * 2000, b"kw_" + b"A" * 100_000, "kw_live_\u00e9\u00e9"):
        v = store.verify(text)
        assert (v.code, v.http_status, v.ok) == ("MALFORMED", 401, False)


# --- the six-argument hot path (kw_verify_key) ------------------------------------------


class _Calls:
    """Counts the calls of one ABI function the store module calls through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        from keyward import store as store_module

        self.count = 0
        real = getattr(store_module, name)

        def wrapper(*args: Any) -> Any:
            self.count += 1
            return real(*args)

        monkeypatch.setattr(store_module, name, wrapper)


def test_plain_verify_goes_through_kw_verify_key(store: keyward.Store, monkeypatch: pytest.MonkeyPatch) -> None:
    created = store.create("acct_1", scopes=["read"])
    # kw_verify_key_ex / kw_verify_ex: the entry points with flags (KW_VERIFY_RATE_FIELDS).
    fast = _Calls(monkeypatch, "_kw_verify_key_ex")
    full = _Calls(monkeypatch, "_kw_verify_ex")
    v = store.verify(created.key)
    assert (v.ok, v.code, v.http_status, v.key_id, v.owner) == (True, "VALID", 200, created.id, "acct_1")
    assert store.verify(created.key, ("read",)).ok
    assert store.verify(created.key.encode(), ["read"]).ok
    assert (fast.count, full.count) == (3, 0)
    # cost, at or info: the twelve-argument kw_verify_ex.
    assert store.verify(created.key, cost=1).ok
    assert store.verify(created.key, at=time.time_ns() // 1_000_000).ok
    assert store.verify(created.key, with_info=True).info == store.get(created.id)
    assert (fast.count, full.count) == (3, 3)


def test_verify_key_refuses_a_missing_scope(store: keyward.Store) -> None:
    created = store.create("acct_1", scopes=["read"])
    for scopes in (("write",), ("read", "write"), ["write"]):
        v = store.verify(created.key, scopes)
        assert (v.ok, v.code, v.http_status) == (False, "INSUFFICIENT_SCOPE", 403)
        assert v.key_found and v.key_id == created.id


def test_verify_key_answers_non_utf8_key_bytes_malformed(store: keyward.Store) -> None:
    created = store.create("acct_1", credits=keyward.Credits(remaining=5))
    bad = created.key.encode()[:-2] + b"\xff\xfe"
    for v in (store.verify(bad), store.verify(b"\xc3\x28"), store.verify(bytearray(b"kw_\x80"))):
        assert (v.ok, v.code, v.http_status, v.key_found, v.key_id) == (False, "MALFORMED", 401, False, None)
    # The same answer on the kw_verify path (cost, at, info), which spends nothing.
    for v in (store.verify(bad, cost=2), store.verify(bad, at=1), store.verify(bad, with_info=True)):
        assert (v.ok, v.code, v.key_found, v.info) == (False, "MALFORMED", False, None)
    assert store.credits(created.id).remaining == 5
    # A str key that is not Unicode text (lone surrogates) is client input too: MALFORMED.
    for v in (store.verify("kw_\udcff"), store.verify("kw_\udcff", with_info=True)):
        assert (v.ok, v.code, v.http_status, v.key_found) == (False, "MALFORMED", 401, False)


def test_verify_key_on_a_closed_store(store_path: str) -> None:
    store = keyward.Store(store_path)
    key = store.create("acct").key
    assert store.verify(key).ok
    store.close()
    for call in (lambda: store.verify(key), lambda: store.verify(key, ("read",)),
                 lambda: store.verify(b"kw_\xff")):
        with pytest.raises(keyward.StoreClosedError) as info:
            call()
        assert info.value.code == "CLOSED"


def test_verify_bad_input(store: keyward.Store) -> None:
    key = store.create("acct").key
    with pytest.raises(TypeError):
        store.verify(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.verify(12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.verify(key, "read")
    with pytest.raises(TypeError):
        store.verify(key, [b"read"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        store.verify(key, ([],))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.verify(key, cost="1")  # type: ignore[arg-type]
    with pytest.raises(keyward.ArgumentError):
        store.verify(key, cost=-1)
    with pytest.raises(keyward.ArgumentError):
        store.verify(key, at=-1)
    with pytest.raises(keyward.ArgumentError) as info:
        store.verify(key, tuple(f"s{i}" for i in range(65)))
    assert info.value.code == "TOO_LONG"
    # Key bytes that are not UTF-8 are client input: MALFORMED, not an error (kw_verify_key).
    assert store.verify(b"kw_\xff\xfe").code == "MALFORMED"
    assert store.verify("kw_\ud800").code == "MALFORMED"
    assert store.verify(key, None).ok
    assert store.verify(key, []).ok
    assert store.verify(key, iter(())).ok
    assert store.verify(key, {"a"}).code == "INSUFFICIENT_SCOPE"


def test_verify_scope_arrays_are_cached_and_correct(store: keyward.Store) -> None:
    key = store.create("acct", scopes=["a", "b"]).key
    for _ in range(3):
        assert store.verify(key, ("a",)).ok
        assert store.verify(key, ("a", "b")).ok
        assert store.verify(key, ("a", "c")).code == "INSUFFICIENT_SCOPE"
        assert store.verify(key, ["b"]).ok
        assert store.verify(key, ["c"]).code == "INSUFFICIENT_SCOPE"


def test_verify_at_a_time(store: keyward.Store) -> None:
    expires = now_ms() + 60_000
    key = store.create("acct", expires_at=expires).key
    assert store.verify(key, at=expires - 1).ok
    assert store.verify(key, at=expires).code == "EXPIRED"
    assert store.verify(key, at=dt.datetime.fromtimestamp((expires + 1000) / 1000, dt.timezone.utc)).code == "EXPIRED"


def test_verify_pair(store: keyward.Store) -> None:
    created = store.create("acct", scopes=["read"])
    parsed = keyward.parse_key(created.key)
    assert store.verify_pair(parsed.id, parsed.secret, ("read",)).ok
    assert store.verify_pair(parsed.id, created.key).ok  # the full key as the secret
    assert store.verify_pair(parsed.id, parsed.secret, ["admin"]).code == "INSUFFICIENT_SCOPE"
    assert store.verify_pair(parsed.id, "x" * 32).code == "NOT_FOUND"
    v = store.verify_pair(parsed.id.encode(), parsed.secret.encode(), with_info=True)
    assert v.ok and v.info is not None and v.info.id == created.id
    with pytest.raises(TypeError):
        store.verify_pair(None, "x")  # type: ignore[arg-type]


def test_verify_headers(store: keyward.Store) -> None:
    created = store.create("acct", scopes=["read"])
    parsed = keyward.parse_key(created.key)
    assert store.verify_headers({"Authorization": f"Bearer {created.key}"}, ("read",)).ok
    assert store.verify_headers([("X-Api-Key", created.key)], ["write"]).code == "INSUFFICIENT_SCOPE"
    v = store.verify_headers(
        {"X-Api-Token-Id": parsed.id, "X-Api-Token-Secret-Key": parsed.secret}, with_info=True
    )
    assert v.ok and v.info is not None
    assert store.verify_headers({"x-api-key": "garbage"}).code == "MALFORMED"
    with pytest.raises(keyward.CredentialError) as info:
        store.verify_headers({"Accept": "*/*"})
    assert (info.value.code, info.value.http_status) == ("CREDENTIAL_MISSING", 401)
    with pytest.raises(keyward.CredentialError) as info:
        store.verify_headers({"Authorization": "Digest x"})
    assert info.value.code == "UNSUPPORTED_SCHEME"
    with pytest.raises(keyward.CredentialError) as info:
        store.verify_headers({"x-api-key": "A" * 9000})
    assert (info.value.code, info.value.http_status) == ("MALFORMED_KEY", 401)
    with pytest.raises(keyward.ArgumentError):
        store.verify_headers({"x-api-key": created.key}, tuple(f"s{i}" for i in range(65)))


def test_credits_are_spent_and_refused(store: keyward.Store) -> None:
    created = store.create("acct", credits=keyward.Credits(remaining=3, cost=1))
    bal = store.credits(created.id)
    assert bal == keyward.CreditBalance(remaining=3, cost=1, refill_amount=0, refill_interval=keyward.Refill.NONE)
    assert store.verify(created.key).ok
    assert store.verify(created.key, cost=2).ok
    assert store.credits(created.id).remaining == 0  # type: ignore[union-attr]
    v = store.verify(created.key)
    assert (v.code, v.http_status) == ("USAGE_EXCEEDED", 403)
    assert store.credits(store.create("acct").id) is None
    with pytest.raises(keyward.KeyNotFoundError):
        store.credits("ZZZZzzzz00009999")


# --- usage ------------------------------------------------------------------------------------


def test_usage_counts_and_days(store: keyward.Store) -> None:
    created = store.create("acct", scopes=["read"])
    unused = store.create("acct")
    for _ in range(5):
        store.verify(created.key, ("read",))
    store.verify(created.key, ("admin",))
    usage = store.usage(created.id)
    assert (usage.uses, usage.refused) == (5, 1)
    assert usage.last_used_at is not None and abs(usage.last_used_at - now_ms()) < 60_000
    assert store.usage(unused.id) == keyward.UsageStats(uses=0, refused=0, last_used_at=None)
    store.flush()
    today = dt.datetime.now(dt.timezone.utc).date()
    days = store.usage_by_day(created.id, today - dt.timedelta(days=1), today)
    assert days == [keyward.DayUsage(day=today, uses=5)]
    day_number = (today - dt.date(1970, 1, 1)).days
    assert store.usage_by_day(created.id, day_number, day_number) == days
    assert store.usage_by_day(created.id, today - dt.timedelta(days=9), today - dt.timedelta(days=1)) == []
    with pytest.raises(keyward.ArgumentError):
        store.usage_by_day(created.id, today, today - dt.timedelta(days=1))
    with pytest.raises(keyward.ArgumentError):
        store.usage_by_day(created.id, 0, 4000)
    with pytest.raises(keyward.KeyNotFoundError):
        store.usage_by_day("ZZZZzzzz00009999", today, today)
    with pytest.raises(keyward.KeyNotFoundError):
        store.usage("ZZZZzzzz00009999")
    with pytest.raises(TypeError):
        store.usage_by_day(created.id, "2024-01-01", today)  # type: ignore[arg-type]
    stale = store.unused_since("acct", now_ms() - 60_000)
    assert [k.id for k in stale] == [unused.id]
    assert {k.id for k in store.unused_since("acct", now_ms() + 60_000)} == {created.id, unused.id}
    assert store.unused_since("acct", dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)) == stale
    with pytest.raises(keyward.ArgumentError):
        store.unused_since("acct", -1)


def test_stats(store: keyward.Store) -> None:
    before = store.stats()
    key = store.create("acct").key
    store.verify(key)
    after = store.stats()
    assert after.commits == before.commits + 1
    assert after.indexed_keys >= 1 and after.dirty_keys == 1
    assert isinstance(after.index_complete, bool)
    # The shared verify table: mapped, holding the key, its lookup part a fraction of the file.
    table = after.table
    assert table.mapped and table.generation != 0
    assert table.keys == after.indexed_keys and table.slots >= table.keys
    assert 0 < table.lookup_bytes < table.file_bytes
    # A verify through the C ABI reads the key's record in place: nothing decoded, nothing
    # cached in this process; asking for the record decodes it (and caches it).
    assert table.cached_records == 0
    store.verify(key, with_info=True)
    assert store.stats().table.cached_records == 1


# --- threads --------------------------------------------------------------------------------------


def test_threads_share_one_store_and_counts_are_exact(store: keyward.Store) -> None:
    keys = [store.create("acct", scopes=["read"]) for _ in range(4)]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(300):
                k = keys[(n + i) % len(keys)]
                assert store.verify(k.key, ("read",)).ok
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert sum(store.usage(k.id).uses for k in keys) == 8 * 300


def test_close_while_other_threads_verify(store_path: str) -> None:
    store = keyward.Store(store_path)
    key = store.create("acct").key
    outcomes: list[str] = []
    stop = threading.Event()

    def work() -> None:
        for _ in range(100_000):
            if stop.is_set():
                return
            try:
                store.verify(key)
                outcomes.append("ok")
            except keyward.StoreClosedError:
                outcomes.append("closed")
                return

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    # Close only once the threads are verifying through the store (a counter, not a sleep).
    deadline = time.monotonic() + 60
    while len(outcomes) < 100:
        assert time.monotonic() < deadline, "the threads never verified"
        time.sleep(0)
    store.close()  # each thread's next verify sees it and returns
    for t in threads:
        t.join(timeout=60)
    stop.set()
    assert set(outcomes) <= {"ok", "closed"}
    assert "ok" in outcomes and "closed" in outcomes, "the close raced verifies in flight"
    with pytest.raises(keyward.StoreClosedError):
        store.verify(key)


def test_reads_by_id_on_a_store_without_keys_are_not_found(store: keyward.Store) -> None:
    # A new store has every table from its creation: the library itself answers NOT_FOUND
    # (the binding passes the status through unchanged; the cause is the library's).
    for call in (store.get, store.usage, store.credits, lambda i: store.usage_by_day(i, 0, 1)):
        with pytest.raises(keyward.KeyNotFoundError) as info:
            call("ZZZZzzzz00009999")
        assert info.value.status == _ffi.lib.KW_NOT_FOUND
        assert "ZZZZzzzz00009999" in (info.value.cause or "")


# --- dry run (issue 18, item 5) ---------------------------------------------------------------


def test_dry_run_counts_no_use_and_spends_no_credit(store: keyward.Store) -> None:
    plain = store.create("acct", scopes=["read"])
    limited = store.create("acct", credits=keyward.Credits(remaining=5, cost=1))
    secret = keyward.parse_key(limited.key).secret  # type: ignore[union-attr]
    for _ in range(100):
        v = store.verify(plain.key, ("read",), dry_run=True, with_info=True)
        assert v.ok and v.info is not None and v.info.owner == "acct"
        assert store.verify(plain.key, ("admin",), dry_run=True).code == "INSUFFICIENT_SCOPE"
        assert store.verify_pair(plain.id, secret, dry_run=True).code == "NOT_FOUND"
        assert store.verify(limited.key, cost=5, dry_run=True).ok
        assert store.verify_pair(limited.id, secret, cost=6, dry_run=True).code == "USAGE_EXCEEDED"
        assert store.verify_headers({"x-api-key": limited.key}, dry_run=True).ok
    store.flush()
    assert store.usage(plain.id) == keyward.UsageStats(uses=0, refused=0, last_used_at=None)
    assert store.usage(limited.id) == keyward.UsageStats(uses=0, refused=0, last_used_at=None)
    assert store.credits(limited.id).remaining == 5  # type: ignore[union-attr]
    assert store.verify(limited.key, cost=5).ok  # a real verify spends
    assert store.verify(limited.key, dry_run=True).code == "USAGE_EXCEEDED"
    assert store.usage(limited.id).uses == 1


# --- warnings (issue 18, item 4) --------------------------------------------------------------


def test_warnings_expiring_keys_and_low_credits(store: keyward.Store) -> None:
    day = 86_400_000
    soon = store.create("acct", expires_at=now_ms() + day)
    later = store.create("acct", expires_at=now_ms() + 3 * day)
    store.create("acct", expires_at=now_ms() + 30 * day)
    store.create("acct")
    assert [k.id for k in store.expiring_within(dt.timedelta(days=7))] == [soon.id, later.id]
    assert [k.id for k in store.expiring_within(2 * day)] == [soon.id]
    assert store.expiring_within(0) == []
    low = store.create("acct", credits=keyward.Credits(remaining=2, cost=1))
    store.create("acct", credits=keyward.Credits(remaining=100, cost=1))
    assert [(k.id, n) for k, n in store.credits_below(10)] == [(low.id, 2)]
    assert store.verify(low.key).ok
    assert [(k.id, n) for k, n in store.credits_below(2)] == [(low.id, 1)]
    assert store.credits_below(1) == []
    with pytest.raises(TypeError):
        store.credits_below("5")  # type: ignore[arg-type]


def test_create_many_makes_every_key_valid_or_none_of_them(store: keyward.Store) -> None:
    specs = [{"owner": f"bulk_{i % 3}", "scopes": ["read"], "env": "live"} for i in range(300)]
    issued = store.create_many(specs)
    assert len(issued) == 300
    for i, item in enumerate(issued):
        assert item.key.startswith("kw_live_") and item.id == keyward.parse_key(item.key).id
        assert "kw_live_" not in repr(item)
        verdict = store.verify(item.key, scopes=["read"])
        assert verdict.ok and verdict.owner == f"bulk_{i % 3}" and verdict.key_id == item.id
    bad = [{"owner": "atomic"} for _ in range(10)]
    bad[6] = {"owner": "   "}
    with pytest.raises(keyward.ArgumentError) as err:
        store.create_many(bad)
    assert "new key 6 of the batch" in str(err.value)
    bad[6] = {"owner": "atomic", "name": "n" * 10_000}
    with pytest.raises(keyward.ArgumentError, match="new key 6 of the batch"):
        store.create_many(bad)
    assert store.list_keys("atomic").keys == ()
    with pytest.raises(keyward.ArgumentError):
        store.create_many([])
    with pytest.raises(TypeError, match="spec 1"):
        store.create_many([{"owner": "a"}, {"owner": "b", "colour": "red"}])
    assert store.list_keys("a").keys == ()
