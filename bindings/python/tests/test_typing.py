"""The package is fully typed: mypy --strict finds nothing (py.typed is shipped)."""
from __future__ import annotations

import os
import subprocess
import sys
import pytest

from conftest import HERE, REPO


def test_mypy_strict() -> None:
    pytest.importorskip("mypy")
    source = HERE.parent  # bindings/python: the package's source tree (what pip installs)
    cache = REPO / "target" / "python-mypy-cache"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), "--no-error-summary",
         "keyward", "bench.py", "gen_cdef.py", "build_api.py", "build_backend/keyward_build.py"],
        capture_output=True, text=True, cwd=str(source), env=dict(os.environ, MYPYPATH=""),
    )
    assert result.returncode == 0, result.stdout + result.stderr
