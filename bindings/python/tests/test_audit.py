"""The audit log through the Python binding: an event per change with the actor, filters,
paging, retention, and no secret in any event."""
from __future__ import annotations

import json

import pytest

import keyward


def test_every_change_is_logged_with_its_actor(store: keyward.Store) -> None:
    with store.with_actor("alice") as alice:
        a = alice.create("acct", name="a", scopes=["read"])
        b = store.create("acct")
        alice.update(a.id, name="renamed")
        rotated = alice.rotate(a.id, grace=0)
        alice.revoke(rotated.id, reason="leaked")
        alice.delete(b.id)
        with pytest.raises(keyward.KeyNotFoundError):
            alice.delete(b.id)  # a failed change logs nothing
        assert alice.same_store(store)
    events = store.audit(limit=1000).events
    assert [(e.action, e.key_id, e.actor) for e in events] == [
        ("create", a.id, "alice"),
        ("create", b.id, None),
        ("update", a.id, "alice"),
        ("rotate", a.id, "alice"),
        ("rotate", rotated.id, "alice"),
        ("revoke", rotated.id, "alice"),
        ("delete", b.id, "alice"),
    ]
    assert events[2].changed == ("name",)
    assert events[3].detail == rotated.id
    assert all(e.owner == "acct" for e in events)
    dump = json.dumps([e.__repr__() for e in events])
    for created in (a, b, rotated):
        assert created.key not in dump
        assert created.key[-38:-6] not in dump


def test_policy_refusal_is_logged(store_path: str) -> None:
    with keyward.Store(store_path, keep_last_key=True) as s:
        k = s.create("acct")
        with pytest.raises(keyward.PolicyError):
            s.with_actor("ops").revoke(k.id)
        last = s.audit().events[-1]
        assert (last.action, last.key_id, last.actor, last.detail) == (
            "policy_refused",
            k.id,
            "ops",
            "POLICY_LAST_ACTIVE_KEY",
        )


def test_filters_and_paging(store: keyward.Store) -> None:
    ids = []
    for i in range(7):
        with store.with_actor("even" if i % 2 == 0 else "odd") as h:
            ids.append(h.create(f"acct_{i % 2}").id)
    assert [e.key_id for e in store.audit(actor="odd").events] == ids[1::2]
    assert [e.key_id for e in store.audit(owner="acct_0").events] == ids[0::2]
    assert [e.key_id for e in store.audit(key_id=ids[3]).events] == [ids[3]]
    assert store.audit(since=2**62).events == ()
    assert len(store.audit(until=2**62).events) == 7
    first = store.audit(limit=3)
    assert len(first.events) == 3 and first.next is not None
    assert [e.key_id for e in store.iter_audit(page_size=2)] == ids
    with pytest.raises(keyward.ArgumentError):
        store.audit(limit=5000)


def test_actor_is_checked_and_retention_is_set(store: keyward.Store) -> None:
    with pytest.raises(keyward.ArgumentError):
        store.with_actor("a" * 257)
    store.set_audit_retention(30)
    with pytest.raises(keyward.ArgumentError):
        store.set_audit_retention(-1)
