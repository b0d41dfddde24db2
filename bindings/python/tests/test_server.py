"""Real servers: gunicorn (WSGI) and uvicorn (ASGI), 4 worker processes each on 127.0.0.1,
one store file, keyward's middleware.

Requests with a valid key, a revoked key (revoked while the server runs, by this process),
a key lacking the scope and no key get 200/401/403/401; after a graceful stop the use counts
read back from the store are exact. Every wait is bounded and the server is always stopped.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import keyward

HERE = Path(__file__).resolve().parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """gunicorn or uvicorn with 4 workers, logging to ``log``; stopped by :meth:`stop`."""

    def __init__(
        self,
        kind: str,
        store_path: str,
        log: Path,
        preload: bool = False,
        extra_args: tuple[str, ...] = (),
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.log = log
        env = dict(os.environ, KEYWARD_TEST_STORE=store_path, PYTHONUNBUFFERED="1", **(extra_env or {}))
        self.port = 0
        if kind == "gunicorn":
            args = [
                sys.executable, "-m", "gunicorn",
                "-c", str(HERE / "gunicorn_conf.py"),
                "--pythonpath", str(HERE),
                "-b", "127.0.0.1:0",  # a free port, read back from the log: no race
                "--log-level", "info",
            ]
            if preload:
                args.append("--preload")
            args.extend(extra_args)
            args.append("server_app:app")
            self._ready = ("Booting worker", 4)
        else:
            self.port = _free_port()
            args = [
                sys.executable, "-m", "uvicorn", "asgi_server_app:app",
                "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", "4", "--log-level", "info", "--no-access-log",
            ]
            self._ready = ("Application startup complete", 4)
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT, env=env, cwd=str(HERE))
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        marker, count = self._ready
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            m = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", text)
            if m:
                self.port = int(m.group(1))
            if self.port and text.count(marker) >= count:
                try:
                    if self.request("/health")[0] == 200:
                        return
                except OSError:
                    pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"the server did not start:\n{self.log.read_text(errors='replace')}")

    def request(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()

    def stop(self) -> int | None:
        """Graceful stop (SIGTERM: workers finish, flush, exit); SIGKILL past the deadline."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    return self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
                    return None
            return self.proc.returncode
        finally:
            self._log_file.close()


@pytest.mark.parametrize(
    "kind, preload",
    [("gunicorn", True), ("gunicorn", False), ("uvicorn", False)],
    ids=["gunicorn-preload", "gunicorn", "uvicorn"],
)
def test_four_workers(tmp_path: Path, kind: str, preload: bool) -> None:
    pytest.importorskip(kind)
    path = str(tmp_path / "server.redb")
    store = keyward.Store(path)
    valid = store.create("acct_valid", scopes=["read"])
    revoked = store.create("acct_revoked", scopes=["read"])
    lacking = store.create("acct_lacking", scopes=["write"])

    server = Server(kind, path, tmp_path / "server.log", preload)
    counts = {"valid": 0, "revoked_before": 0, "revoked_after": 0, "lacking": 0}
    pids: set[int] = set()
    try:
        for i in range(40):
            hdr = {"x-api-key": valid.key} if i % 2 else {"Authorization": f"Bearer {valid.key}"}
            status, body = server.request("/data", hdr)
            assert (status, body["owner"], body["key_id"]) == (200, "acct_valid", valid.id)
            pids.add(body["pid"])
            counts["valid"] += 1
        for _ in range(8):
            status, body = server.request("/data", {"x-api-key": revoked.key})
            assert status == 200
            counts["revoked_before"] += 1
        store.revoke(revoked.id, "test")  # from this process, while the workers run
        for _ in range(12):
            status, body = server.request("/data", {"x-api-key": revoked.key})
            assert (status, body) == (401, {"ok": False, "code": "REVOKED", "message": body["message"]})
            counts["revoked_after"] += 1
        for _ in range(10):
            status, body = server.request("/data", {"x-api-key": lacking.key})
            assert (status, body["code"]) == (403, "INSUFFICIENT_SCOPE")
            counts["lacking"] += 1
        for _ in range(5):
            status, body = server.request("/data")
            assert (status, body["code"], body["ok"]) == (401, "CREDENTIAL_MISSING", False)
        status, body = server.request("/data", {"x-api-key": "kw_live_nope"})
        assert (status, body["code"]) == (401, "MALFORMED")
    finally:
        exit_code = server.stop()
        store.close()
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert exit_code == 0, log
    assert "Traceback" not in log, log
    for secret in (valid.key, revoked.key, lacking.key):
        assert secret not in log

    with keyward.Store(path) as reopened:
        u = reopened.usage(valid.id)
        assert (u.uses, u.refused) == (counts["valid"], 0)
        u = reopened.usage(revoked.id)
        assert (u.uses, u.refused) == (counts["revoked_before"], counts["revoked_after"])
        u = reopened.usage(lacking.id)
        assert (u.uses, u.refused) == (0, counts["lacking"])
    print(f"served by {len(pids)} worker(s): {sorted(pids)}")


def test_gunicorn_preload_recycles_workers_forked_from_a_busy_master(tmp_path: Path) -> None:
    """Issue 13 through gunicorn --preload: the master's store has its flusher running (5 ms)
    and a master thread verifying without pause; --max-requests makes the master fork a new
    worker every few requests. No worker may hang (each exits, flushing, within the graceful
    timeout) and every request is counted exactly once."""
    pytest.importorskip("gunicorn")
    path = str(tmp_path / "recycle.redb")
    store = keyward.Store(path)
    valid = store.create("acct_valid", scopes=["read"])
    busy = store.create("acct_busy")
    requests = 240
    server = Server(
        "gunicorn",
        path,
        tmp_path / "server.log",
        preload=True,
        extra_args=("--max-requests", "4"),
        extra_env={"KEYWARD_TEST_FLUSH_MS": "5", "KEYWARD_TEST_BUSY_KEY": busy.key},
    )
    pids: set[int] = set()
    try:
        for _ in range(requests):
            status, body = server.request("/data", {"x-api-key": valid.key})
            assert status == 200
            pids.add(body["pid"])
    finally:
        exit_code = server.stop()
        store.close()
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert exit_code == 0, log
    assert "Traceback" not in log, log
    assert "WORKER TIMEOUT" not in log and "SIGKILL" not in log, log
    booted = log.count("Booting worker")
    print(f"{requests} requests served by {len(pids)} workers; {booted} workers forked")
    assert len(pids) >= requests // 8, "workers were recycled (forked again and again)"
    with keyward.Store(path) as reopened:
        assert reopened.usage(valid.id).uses == requests
