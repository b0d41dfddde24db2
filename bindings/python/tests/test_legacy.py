"""Legacy keys through the Python binding (issue 18, item 1): exports made with the real
algorithms of Sanctum, djangorestframework-api-key, Unkey and Better Auth
(tests/legacy/make_exports.py: hashlib, SQLite tables shaped like theirs) are imported with
``Store.import_legacy``; their keys verify VALID, wrong ones are refused, the first use
upgrades the record (``KeyInfo.legacy.upgraded_at``), a second process sees the keys and the
upgrade, and the store's files hold no raw legacy hash."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import keyward
from conftest import REPO

SCHEMES = ["sanctum", "drf", "unkey", "better-auth"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("exports")
    subprocess.run(
        [sys.executable, str(REPO / "tests" / "legacy" / "make_exports.py"), "--now",
         str(int(time.time())), str(out)],
        check=True,
    )
    return out, json.loads((out / "cases.json").read_text())


def _options(case: dict[str, Any]) -> dict[str, Any]:
    o = case["options"]
    return {
        "sanctum_expiration_minutes": o.get("sanctum_expiration_minutes"),
        "all_scopes": o.get("all_scopes"),
        "default_owner": o.get("default_owner"),
    }


@pytest.mark.parametrize("source", SCHEMES)
def test_imported_keys_verify_and_upgrade(
    source: str, exports: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, cases = exports
    case = cases[source]
    data = (out / case["file"]).read_bytes()
    path = str(tmp_path / "keys.redb")
    store = keyward.Store(path)
    first = case["valid"][0]["key"]
    assert store.verify(first).reason == keyward.Reason.MALFORMED

    importable = len(case["valid"]) + len(case["revoked"]) + len(case["expired"])
    dry = store.import_legacy(source, data, dry_run=True, **_options(case))
    assert dry.dry_run and dry.imported == importable and dry.scheme == source
    assert store.verify(first).reason == keyward.Reason.MALFORMED
    report = store.import_legacy(source, data, **_options(case))
    assert (report.imported, report.revoked, report.expired) == (
        importable,
        len(case["revoked"]),
        len(case["expired"]),
    )
    # A second process's view of the same file.
    other = subprocess.run(
        [sys.executable, "-c", _CHILD, path, json.dumps([k["key"] for k in case["valid"]])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(other.stdout) == ["VALID"] * len(case["valid"])
    for valid in case["valid"]:
        key_id = keyward.legacy_key_id(source, valid["source_id"])
        info = store.get(key_id)
        assert info.legacy is not None and info.legacy.scheme == source
        assert info.owner == valid["owner"]
        assert list(info.scopes) == valid["scopes"]
        # The child's verify upgraded it: this process sees it.
        assert info.legacy.upgraded_at is not None
        verdict = store.verify(valid["key"], valid["scopes"])
        assert verdict.reason == keyward.Reason.VALID and verdict.key_id == key_id
    for wrong in case["wrong"]:
        assert store.verify(wrong).reason == keyward.Reason.NOT_FOUND
    for revoked in case["revoked"]:
        assert store.verify(revoked["key"]).reason == keyward.Reason.REVOKED
    for expired in case["expired"]:
        assert store.verify(expired["key"]).reason == keyward.Reason.EXPIRED
    store.close()
    for file in tmp_path.iterdir():
        raw = file.read_bytes()
        for h in case["raw_hashes"]:
            assert h.encode() not in raw, f"{file.name} holds a raw legacy hash"


_CHILD = """
import json, sys, keyward
store = keyward.Store(sys.argv[1])
print(json.dumps([store.verify(k).reason.name for k in json.loads(sys.argv[2])]))
store.close()
"""


def test_bad_exports_and_arguments(exports: tuple[Path, dict[str, Any]], store: keyward.Store) -> None:
    out, cases = exports
    data = (out / "sanctum.csv").read_bytes()
    with pytest.raises(keyward.ArgumentError) as error:
        store.import_legacy("sanctum", data)  # "*" abilities without all_scopes
    assert error.value.code == "LEGACY_IMPORT_INVALID"
    assert "line 2" in str(error.value)
    with pytest.raises(keyward.ArgumentError):
        store.import_legacy("lotus-notes", data)
    with pytest.raises(TypeError):
        store.import_legacy("drf", 42)  # type: ignore[arg-type]
    with pytest.raises(keyward.ArgumentError):
        keyward.legacy_key_id("sanctum", "")
    assert keyward.legacy_key_id("sanctum", "7") == keyward.legacy_key_id("sanctum", "7")
    assert keyward.legacy_key_id("sanctum", "7") != keyward.legacy_key_id("unkey", "7")
