"""Owner controls through the Python binding: suspend / resume (OWNER_SUSPENDED, 403),
allowed scopes (effective scopes), owner records, audit events, bad input."""
from __future__ import annotations

import pytest

import keyward


def test_suspend_resume_and_scopes(store: keyward.Store) -> None:
    key = store.create("acct", scopes=["read", "write"]).key
    with store.with_actor("ops") as ops:
        info = ops.suspend_owner("acct", reason="unpaid")
        assert info.suspended and info.suspend_reason == "unpaid" and info.keys == 1
        verdict = store.verify(key)
        assert verdict.reason is keyward.Reason.OWNER_SUSPENDED
        assert verdict.code == "OWNER_SUSPENDED" and verdict.http_status == 403 and not verdict.ok
        assert ops.resume_owner("acct").suspended is False
        assert store.verify(key, ["write"]).ok
        ops.set_owner_scopes("acct", ["read"])
        assert store.verify(key, ["write"]).reason is keyward.Reason.INSUFFICIENT_SCOPE
        assert store.verify(key, ["read"], with_info=True).info.scopes == ("read",)
        assert ops.set_owner_scopes("acct", None).allowed_scopes is None
    assert store.verify(key, ["write"]).ok
    assert [o.owner for o in store.owners()] == ["acct"]
    assert store.owner("acct").created_at is not None
    events = [e for e in store.audit(owner="acct").events if e.key_id is None]
    assert [(e.action, e.actor) for e in events] == [
        ("owner_suspend", "ops"),
        ("owner_resume", "ops"),
        ("owner_scopes", "ops"),
        ("owner_scopes", "ops"),
    ]
    assert events[0].changed == ("suspended_at", "suspend_reason")


def test_bad_owners(store: keyward.Store) -> None:
    with pytest.raises(keyward.KeyNotFoundError) as missing:
        store.owner("nobody")
    assert missing.value.code == "OWNER_NOT_FOUND"
    with pytest.raises(keyward.KeyNotFoundError):
        store.resume_owner("nobody")
    with pytest.raises(keyward.ArgumentError):
        store.suspend_owner(" ")
    with pytest.raises(keyward.ArgumentError):
        store.set_owner_scopes("acct", ["has space"])
    with pytest.raises(TypeError):
        store.set_owner_scopes("acct", "read")
    assert store.owners() == []
