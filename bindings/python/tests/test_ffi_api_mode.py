"""cffi API mode: the binding uses the compiled ``keyward._kw_api`` when it is present.

The module is compiled here (``build_api.py``: a C compiler and Python's headers) into a copy
of the imported package, and another copy has no module; every check runs in a subprocess
importing one of them. With ``KEYWARD_FFI=api`` the loader either uses the compiled module or
fails, with ``abi`` it never does: a passing run is a run through the mode named. (The wheel
``scripts/test-python.sh`` installs carries the module, so the rest of the suite runs in API
mode; ``test_the_suites_pass_in_each_mode`` covers ABI mode.)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import keyward

HERE = Path(__file__).resolve().parent
BUILD_API = HERE.parent / "build_api.py"


def copy_package(root: Path) -> Path:
    """A copy of the imported package without the compiled ``_kw_api`` and ``_kw_fast``
    (its parent dir)."""
    shutil.copytree(Path(keyward.__file__).parent, root / "keyward",
                    ignore=shutil.ignore_patterns("_kw_api*", "_kw_fast*", "__pycache__"))
    return root


@pytest.fixture(scope="module")
def abi_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_package(tmp_path_factory.mktemp("abi"))


@pytest.fixture(scope="module")
def api_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the imported package with ``_kw_api`` and ``_kw_fast`` compiled beside it
    (its parent dir)."""
    if shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler: API mode cannot be built here")
    root = copy_package(tmp_path_factory.mktemp("api"))
    result = subprocess.run([sys.executable, str(BUILD_API), str(root)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    built = [Path(line) for line in result.stdout.split()]
    assert [p.parent for p in built] == [root / "keyward"] * 2, built
    assert [p.name.split(".")[0] for p in built] == ["_kw_api", "_kw_fast"], built
    return root


def run(copy: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("KEYWARD_FFI", "KEYWARD_EXPECT_INSTALLED")}
    full.update(PYTHONPATH=str(copy), COPY=str(copy), **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, cwd=str(HERE))


SMOKE = """
import os, tempfile, keyward
from keyward import _ffi
assert keyward.__file__.startswith(os.environ["COPY"]), keyward.__file__
with tempfile.TemporaryDirectory() as d, keyward.Store(os.path.join(d, "k.redb")) as s:
    c = s.create("acct_1", scopes=["read"])
    ok = s.verify(c.key, ("read",))
    hdr = s.verify_headers({"x-api-key": c.key}, ("read",))
    scope = s.verify(c.key, ("write",))
    bad = s.verify(c.key[:-1] + ("A" if c.key[-1] != "A" else "B"))
    s.flush()
    assert keyward.ffi_mode == _ffi.mode
    print(_ffi.mode, _ffi.fast is not None, ok.ok, ok.owner, hdr.ok, scope.reason.name, bad.ok, s.usage(c.id).uses, s.usage(c.id).refused)
"""


# The same in both modes: two uses and one refusal counted for the key.
EXPECTED = ["True", "acct_1", "True", "INSUFFICIENT_SCOPE", "False", "2", "1"]


def test_api_mode_is_used_when_built(api_copy: Path) -> None:
    for choice in ("api", "auto"):
        result = run(api_copy, SMOKE, KEYWARD_FFI=choice)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["api", "True", *EXPECTED]


def test_abi_mode_can_be_forced(api_copy: Path) -> None:
    result = run(api_copy, SMOKE, KEYWARD_FFI="abi")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["abi", "False", *EXPECTED]  # no compiled middleware path


def test_without_the_module_auto_is_abi_mode_and_api_an_error(abi_copy: Path) -> None:
    result = run(abi_copy, SMOKE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["abi", "False", *EXPECTED]
    code = "import keyward"
    result = run(abi_copy, code, KEYWARD_FFI="api")
    assert result.returncode != 0
    assert "KEYWARD_FFI=api, but keyward._kw_api does not load" in result.stderr
    bogus = run(abi_copy, code, KEYWARD_FFI="fast")
    assert bogus.returncode != 0 and "KEYWARD_FFI='fast': expected auto, api or abi" in bogus.stderr


def test_api_mode_checks_the_abi_version(api_copy: Path) -> None:
    code = (
        "from keyward import _ffi\n"
        "try:\n    _ffi._load(expected=_ffi.ABI_VERSION + 1)\n"
        "except _ffi.LibraryError as e:\n    print('refused', 'C ABI version' in str(e))\n"
    )
    result = run(api_copy, code, KEYWARD_FFI="api")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["refused", "True"]


@pytest.mark.parametrize("mode", ["api", "abi"])
def test_the_suites_pass_in_each_mode(api_copy: Path, mode: str) -> None:
    """The shared vectors, the API tests, the error messages and the middlewares, through
    each mode (the middlewares through keyward._kw_fast in API mode, in Python in ABI mode)."""
    env = {k: v for k, v in os.environ.items() if k != "KEYWARD_EXPECT_INSTALLED"}
    env.update(PYTHONPATH=str(api_copy), KEYWARD_FFI=mode)
    files = ["test_vectors.py", "test_api.py", "test_error_messages.py", "test_headers.py", "test_middleware.py",
             "test_middleware_fast.py"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *files],
        capture_output=True, text=True, env=env, cwd=str(HERE),
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
    # test_middleware_fast.py runs only where the compiled path is in use (-rs: skip reasons).
    assert ("keyward._kw_fast is not built" in result.stdout) == (mode == "abi"), result.stdout[-2000:]
