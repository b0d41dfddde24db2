"""A failed call's exception says what went wrong: the library's message about it
(``kw_last_error_message``: which file, which permission, what to do) is its ``cause``."""
from __future__ import annotations

import json
import os
import pickle
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import keyward
from keyward import _ffi
from keyward.errors import error_for_status, last_error_message, status_message


def test_opening_a_directory_says_it_is_a_directory(tmp_path: Path) -> None:
    directory = tmp_path / "keys.redb"
    directory.mkdir()
    with pytest.raises(keyward.ArgumentError) as info:
        keyward.Store(directory)
    err = info.value
    assert err.code == "INVALID_ARGUMENT"
    assert err.cause is not None
    assert f"{directory} is a directory, not a key store file" in err.cause
    assert str(err) == f"INVALID_ARGUMENT: {err.cause} (opening {directory})"
    # The status's own message stays what it was (the middleware shows only that one).
    assert err.message == status_message(err.status)


def test_a_pepper_file_readable_by_others_is_named(tmp_path: Path) -> None:
    path = tmp_path / "keys.redb"
    keyward.Store(path).close()
    pepper = tmp_path / "keys.redb.pepper"
    pepper.chmod(0o644)
    with pytest.raises(keyward.StorageError) as info:
        keyward.Store(path)
    err = info.value
    assert err.code == "PEPPER_PERMISSIONS"
    assert err.cause is not None
    assert f"pepper file {pepper} has mode 644" in err.cause
    assert "chmod 600" in err.cause
    assert str(pepper) in str(err)


def test_an_explicit_pepper_file_is_named_too(tmp_path: Path) -> None:
    pepper = tmp_path / "pepper.hex"
    pepper.write_text("ab" * 32)
    pepper.chmod(0o644)
    with pytest.raises(keyward.StorageError) as info:
        keyward.Store(tmp_path / "keys.redb", pepper_file=pepper)
    assert info.value.code == "PEPPER_PERMISSIONS"
    assert str(pepper) in (info.value.cause or "")


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(keyward.StorageError) as info:
        keyward.Store(tmp_path / "nowhere" / "keys.redb")
    assert info.value.code == "DIRECTORY_MISSING"
    assert f"{tmp_path / 'nowhere'} does not exist" in (info.value.cause or "")


def test_a_message_longer_than_the_first_buffer_is_read_whole(tmp_path: Path) -> None:
    # The binding first offers 1024 bytes; the library answers BUFFER_TOO_SMALL with the
    # size needed, and the binding asks again.
    directory = tmp_path
    while len(str(directory)) < 1500:
        directory = directory / ("d" * 200)
    directory.mkdir(parents=True)
    with pytest.raises(keyward.ArgumentError) as info:
        keyward.Store(directory)
    assert info.value.cause is not None
    assert f"{directory} is a directory, not a key store file" in info.value.cause


def test_management_and_header_failures_carry_their_cause(store: keyward.Store) -> None:
    with pytest.raises(keyward.KeyNotFoundError) as info:
        store.get("ZZZZzzzz00009999")
    assert "ZZZZzzzz00009999" in (info.value.cause or "")
    with pytest.raises(keyward.KeyNotFoundError) as info:
        store.revoke("ZZZZzzzz00009999")
    assert "ZZZZzzzz00009999" in (info.value.cause or "")
    with pytest.raises(keyward.CredentialError) as refused:
        store.verify_headers({"authorization": "Digest abc"})
    assert refused.value.code == "UNSUPPORTED_SCHEME"
    assert '"Digest"' in (refused.value.cause or "")
    with pytest.raises(keyward.CredentialError) as refused:
        keyward.extract_credential({"authorization": "Digest abc"})
    assert '"Digest"' in (refused.value.cause or "")


def test_the_next_call_clears_the_message(store: keyward.Store) -> None:
    with pytest.raises(keyward.KeyNotFoundError):
        store.get("ZZZZzzzz00009999")
    assert "ZZZZzzzz00009999" in last_error_message()  # still there: no call since
    store.stats()
    assert last_error_message() == ""


def test_errors_the_binding_raises_itself_have_no_cause(store: keyward.Store) -> None:
    with pytest.raises(keyward.KeyNotFoundError):
        store.get("ZZZZzzzz00009999")  # leaves a message behind on this thread
    with pytest.raises(keyward.ArgumentError) as info:
        store.list_keys("acct", limit=0)  # refused in Python, no library call
    assert info.value.cause is None
    assert error_for_status(10).cause is None


def test_the_cause_survives_pickling(tmp_path: Path) -> None:
    directory = tmp_path / "keys.redb"
    directory.mkdir()
    with pytest.raises(keyward.ArgumentError) as info:
        keyward.Store(directory)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is keyward.ArgumentError
    assert (again.cause, again.detail, str(again)) == (info.value.cause, info.value.detail, str(info.value))


def test_each_thread_reads_its_own_message(store: keyward.Store) -> None:
    # Two threads fail with different messages, in a fixed order, before either reads its
    # own: each must still read the message of its own failure.
    lib, ffi = _ffi.lib, _ffi.ffi
    first_failed = threading.Barrier(2, timeout=60)
    second_failed = threading.Barrier(2, timeout=60)
    read: dict[str, str] = {}

    def fail_then_read(key_id: str, wait_before_failing: bool) -> None:
        raw = key_id.encode()
        if wait_before_failing:
            first_failed.wait()
        assert lib.kw_delete(store.handle, raw, len(raw)) == lib.KW_NOT_FOUND
        if not wait_before_failing:
            first_failed.wait()
        second_failed.wait()
        read[key_id] = last_error_message()

    threads = [
        threading.Thread(target=fail_then_read, args=("AAAAaaaa00001111", False)),
        threading.Thread(target=fail_then_read, args=("BBBBbbbb00002222", True)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert "AAAAaaaa00001111" in read["AAAAaaaa00001111"]
    assert "BBBBbbbb00002222" in read["BBBBbbbb00002222"]


# --- a store created by root, opened by the user the web workers run as ----------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user may enter (pytest's tmp_path is private to root)."""
    with tempfile.TemporaryDirectory(prefix="keyward-owner-") as d:
        os.chmod(d, 0o755)
        yield Path(d)


def _open_as(uid: int, path: Path) -> dict[str, str | None]:
    """Opens ``path`` in a forked child running as ``uid``; returns the error it got."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgid(uid)
            os.setuid(uid)
            try:
                keyward.Store(path).close()
                result: dict[str, str | None] = {"code": "OK", "cause": None}
            except keyward.KeywardError as exc:
                result = {"code": exc.code, "cause": exc.cause}
            os.write(write_end, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(answer)  # type: ignore[no-any-return]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create files another user cannot use")
def test_a_store_created_by_root_names_the_file_another_user_cannot_use(shared_dir: Path) -> None:
    nobody = 65534
    path = shared_dir / "keys.redb"
    keyward.Store(path).close()  # keys.redb, .pepper (0600) and .kwsync, owned by root

    got = _open_as(nobody, path)
    assert got["code"] == "STORAGE"
    assert f"cannot read pepper file {path}.pepper" in (got["cause"] or "")

    os.chown(f"{path}.pepper", nobody, nobody)
    got = _open_as(nobody, path)
    assert got["code"] == "READ_ONLY"
    assert f"{path} cannot be written" in (got["cause"] or "")

    os.chown(path, nobody, nobody)
    got = _open_as(nobody, path)
    assert got["code"] == "READ_ONLY"
    assert f"{path}.kwsync cannot be written" in (got["cause"] or "")

    os.chown(f"{path}.kwsync", nobody, nobody)
    got = _open_as(nobody, path)
    assert got["code"] == "READ_ONLY"
    assert f"{path}.kwtable cannot be written" in (got["cause"] or "")

    os.chown(f"{path}.kwtable", nobody, nobody)
    assert _open_as(nobody, path) == {"code": "OK", "cause": None}
