"""Stores opened with an upstream PostgreSQL (``Store(path, upstream=URL)``, README "Several
hosts"): two hosts with one pepper on a real server (scripts/pg-test-server.sh starts it in a
temporary directory); keys created and revoked through host A's ordinary calls reach host B
once its replicator (``keyward replicate --once``, the CLI in $KEYWARD_CLI) ran; a server
that is down, or a URL that is not one, raises the UPSTREAM (or argument) error and changes
nothing. scripts/test-python.sh builds the CLI and sets $KEYWARD_CLI."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import keyward
from keyward import ArgumentError, Reason, UpstreamError

from conftest import REPO

PG_SCRIPT = REPO / "scripts" / "pg-test-server.sh"
CLI = os.environ.get("KEYWARD_CLI")
PEPPER = "07" * 32

pytestmark = pytest.mark.skipif(
    not CLI, reason="needs $KEYWARD_CLI (keyward built with --features postgres; scripts/test-python.sh sets it)"
)


class PgServer:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.url = self._run("start")

    def _run(self, action: str) -> str:
        out = subprocess.run(
            ["bash", str(PG_SCRIPT), action, str(self.dir)], check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    def kill(self) -> None:
        self._run("kill")

    def restart(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")


@pytest.fixture
def pg() -> Iterator[PgServer]:
    server = PgServer(Path(f"/tmp/kw-pg-{os.getpid()}-py-{os.urandom(4).hex()}"))
    try:
        yield server
    finally:
        server.stop()


def replicate_once(db: Path, url: str) -> None:
    """Host B's replicator: catches up with the upstream once."""
    pepper = db.with_name("shared.pepper")
    if not pepper.exists():
        pepper.write_text(PEPPER)
        pepper.chmod(0o600)
    subprocess.run(
        [CLI, "replicate", "--once", "--db", str(db), "--pepper-file", str(pepper), "--upstream", url],
        check=True,
        capture_output=True,
    )


def host(tmp_path: Path, name: str, url: str | None) -> keyward.Store:
    return keyward.Store(tmp_path / name, pepper=PEPPER, upstream=url, flush_interval_ms=keyward.FLUSH_MANUAL)


def test_create_and_revoke_on_host_a_reach_host_b(tmp_path: Path, pg: PgServer) -> None:
    with host(tmp_path, "a.redb", pg.url) as a, host(tmp_path, "b.redb", pg.url) as b:
        created = a.create("acct_1", scopes=["read"])
        other = a.create("acct_2")
        assert a.verify(created.key).reason is Reason.VALID
        assert b.verify(created.key).reason is Reason.NOT_FOUND
        replicate_once(tmp_path / "b.redb", pg.url)
        assert b.verify(created.key).reason is Reason.VALID

        a.revoke(created.id, reason="leaked")
        assert a.verify(created.key).reason is Reason.REVOKED
        assert b.verify(created.key).reason is Reason.VALID  # until B's replicator ran
        replicate_once(tmp_path / "b.redb", pg.url)
        assert b.verify(created.key).reason is Reason.REVOKED
        assert b.verify(other.key).reason is Reason.VALID

        replica = b.stats().replica
        assert replica is not None
        assert replica.cursor == 3
        assert replica.synced_at_ms > 0 and replica.staleness_ms is not None

        # Update, rotate and delete made on B reach the upstream too.
        b.update(other.id, name="renamed on b")
        rotated = b.rotate(other.id, grace=0)
        b.delete(rotated.id)
        replicate_once(tmp_path / "a.redb", pg.url)
        assert a.get(other.id).name == "renamed on b"
        assert a.verify(rotated.key).reason is Reason.NOT_FOUND


def test_a_store_of_its_own_has_no_replica_stats(tmp_path: Path) -> None:
    with host(tmp_path, "own.redb", None) as own:
        assert own.stats().replica is None


def test_server_down_raises_upstream_error_and_loses_nothing(tmp_path: Path, pg: PgServer) -> None:
    with host(tmp_path, "a.redb", pg.url) as a:
        created = a.create("acct_1")
        pg.kill()
        with pytest.raises(UpstreamError) as info:
            a.revoke(created.id)
        assert info.value.code == "UPSTREAM_UNAVAILABLE"
        assert "nothing was changed" in str(info.value)
        with pytest.raises(UpstreamError):
            a.create("acct_2")
        assert a.verify(created.key).reason is Reason.VALID
        assert a.list_keys("acct_2").keys == ()
        pg.restart()
        a.revoke(created.id)  # reconnects by itself
        assert a.verify(created.key).reason is Reason.REVOKED


def test_a_url_that_is_not_one_is_refused_at_open(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError) as info:
        host(tmp_path, "bad.redb", "postgresql://host:notaport/db")
    assert "not a PostgreSQL connection URL" in str(info.value)
    # Well-formed, but nothing listens: the first management call says so.
    with host(tmp_path, "nowhere.redb", "postgresql://kw@%2Fnonexistent%2Fdir/kw") as s:
        with pytest.raises(UpstreamError) as err:
            s.create("acct_1")
        assert err.value.code == "UPSTREAM_UNAVAILABLE"
        assert s.stats().replica is not None
