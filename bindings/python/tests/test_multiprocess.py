"""Several processes on one store file: exact usage counts and cross-process revocation."""
from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import pytest

import keyward

WORKERS = 4
VERIFIES = 200
TIMEOUT = 60  # seconds, for every wait below: the test never hangs


def _count_worker(path: str, keys: list[str], results: Any) -> None:
    try:
        with keyward.Store(path) as store:
            for i in range(VERIFIES):
                for key in keys:
                    assert store.verify(key, ("read",)).ok
            results.put(("ok", os.getpid()))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        results.put(("error", repr(exc)))


def _revoke_worker(n: int, path: str, key: str, barrier: Any, results: Any) -> None:
    try:
        with keyward.Store(path) as store:
            first = store.verify(key).code  # warms this process's index
            barrier.wait(TIMEOUT)
            if n == 0:
                store.revoke(keyward.parse_key(key).id or "", "revoked by worker 0")
            barrier.wait(TIMEOUT)
            # The very next verify after the revoke committed elsewhere must refuse it.
            results.put((n, first, store.verify(key).code))
    except BaseException as exc:  # noqa: BLE001
        results.put((n, "error", repr(exc)))


def _collect(results: Any, n: int) -> list[Any]:
    return [results.get(timeout=TIMEOUT) for _ in range(n)]


def _join(procs: list[Any]) -> None:
    for p in procs:
        p.join(TIMEOUT)
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(5)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_counts_are_exact_after_close(tmp_path: Path, method: str) -> None:
    ctx = mp.get_context(method)
    path = str(tmp_path / "mp.redb")
    with keyward.Store(path) as store:
        created = [store.create(f"acct_{i}", scopes=["read"]) for i in range(3)]
    results = ctx.Queue()
    procs = [ctx.Process(target=_count_worker, args=(path, [c.key for c in created], results)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    outcomes = _collect(results, WORKERS)
    _join(procs)
    assert [o[0] for o in outcomes] == ["ok"] * WORKERS, outcomes
    assert len({o[1] for o in outcomes}) == WORKERS
    with keyward.Store(path) as store:
        for c in created:
            usage = store.usage(c.id)
            assert (usage.uses, usage.refused) == (WORKERS * VERIFIES, 0)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_revoke_in_one_worker_is_refused_by_the_others(tmp_path: Path, method: str) -> None:
    ctx = mp.get_context(method)
    path = str(tmp_path / "mp.redb")
    with keyward.Store(path) as store:
        key = store.create("acct", scopes=["read"]).key
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [ctx.Process(target=_revoke_worker, args=(n, path, key, barrier, results)) for n in range(WORKERS)]
    for p in procs:
        p.start()
    outcomes = sorted(_collect(results, WORKERS))
    _join(procs)
    assert outcomes == [(n, "VALID", "REVOKED") for n in range(WORKERS)]
    with keyward.Store(path) as store:
        assert store.get(keyward.parse_key(key).id or "").revoke_reason == "revoked by worker 0"
        assert store.usage(keyward.parse_key(key).id or "").uses == WORKERS


def _inherited_worker(store: keyward.Store, key: str, results: Any) -> None:
    # A store opened by the parent before fork (gunicorn --preload): reopened on first use.
    try:
        codes = [store.verify(key).code for _ in range(50)]
        store.close()
        results.put(("ok", codes.count("VALID")))
    except BaseException as exc:  # noqa: BLE001
        results.put(("error", repr(exc)))


def test_store_opened_before_fork_is_usable_in_children(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    path = str(tmp_path / "fork.redb")
    store = keyward.Store(path)
    try:
        created = store.create("acct")
        assert store.verify(created.key).ok  # the parent uses it too
        results = ctx.Queue()
        procs = [ctx.Process(target=_inherited_worker, args=(store, created.key, results)) for _ in range(WORKERS)]
        for p in procs:
            p.start()
        outcomes = _collect(results, WORKERS)
        _join(procs)
        assert outcomes == [("ok", 50)] * WORKERS
        assert store.verify(created.key).ok  # the parent's store is untouched
        store.flush()
    finally:
        store.close()
    with keyward.Store(path) as again:
        assert again.usage(created.id).uses == 2 + WORKERS * 50


def test_forks_from_a_busy_parent_never_hang(tmp_path: Path) -> None:
    """Issue 13: children forked while the parent's flusher runs (5 ms) and another parent
    thread is inside verify. Each child verifies and closes under alarm(20): a hang ends it
    with SIGALRM. KEYWARD_FORK_CYCLES sets the count (1,000 by default)."""
    import signal
    import threading

    cycles = int(os.environ.get("KEYWARD_FORK_CYCLES", "1000"))
    path = str(tmp_path / "forks.redb")
    store = keyward.Store(path, flush_interval_ms=5)
    created = store.create("acct_forks")
    busy_verifies = 0
    stop = threading.Event()

    def busy() -> None:
        nonlocal busy_verifies
        while not stop.is_set():
            assert store.verify(created.key).ok
            busy_verifies += 1

    thread = threading.Thread(target=busy)
    thread.start()
    hangs = failures = overlapped = 0
    try:
        while busy_verifies == 0:
            pass
        for _ in range(cycles):
            before = busy_verifies
            pid = os.fork()
            if pid == 0:
                code = 3
                try:
                    signal.alarm(20)  # a deadlock never ends; a loaded machine is slow
                    if store.verify(created.key).ok:
                        store.close()
                        code = 0
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
                hangs += 1
            elif not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                failures += 1
            if busy_verifies != before:
                overlapped += 1
    finally:
        stop.set()
        thread.join(TIMEOUT)
    print(f"{cycles} forks: {hangs} hangs, {failures} failures; the busy thread verified across {overlapped}")
    assert (hangs, failures) == (0, 0)
    assert overlapped * 2 >= cycles, "the parent thread was verifying while the forks happened"
    store.flush()
    assert store.usage(created.id).uses == busy_verifies + cycles
    store.close()
