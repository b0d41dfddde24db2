"""The README's Python examples run as written."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import REPO

README = REPO / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_five_line_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = _python_blocks()[0]
    assert len([line for line in example.splitlines() if line.strip()]) == 5
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict[str, object] = {}
        exec(compile(example, str(README), "exec"), namespace)  # noqa: S102 - our own README
    finally:
        os.chdir(cwd)
    verdict = namespace["verdict"]
    assert verdict.ok and verdict.owner == "acct_42"  # type: ignore[attr-defined]
    assert capsys.readouterr().out.startswith("kw_live_")
    assert (tmp_path / "keys.redb").exists() and (tmp_path / "keys.redb.pepper").exists()


def test_middleware_example_routes_are_valid(tmp_path: Path) -> None:
    import keyward
    from keyward.middleware import Guard

    block = _python_blocks()[1]
    routes_src = block[block.index("routes = {"):block.index("}", block.index("routes = {")) + 1]
    namespace: dict[str, object] = {}
    exec(routes_src, namespace)  # noqa: S102
    with keyward.Store(str(tmp_path / "k.redb")) as store:
        guard = Guard(store, namespace["routes"])  # type: ignore[arg-type]
        assert guard.required_scopes("GET", "/health") is None
        assert guard.required_scopes("GET", "/admin/x") == ("admin",)
        assert guard.required_scopes("GET", "/administrator") == ()
        assert guard.required_scopes("POST", "/orders") == ("write",)
        assert guard.required_scopes("GET", "/orders/1") == ("read",)
