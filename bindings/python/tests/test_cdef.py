"""The binding's declarations are the header's, and every ABI function is wrapped."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import keyward
from keyward import _ffi

from conftest import HEADER, HERE

PACKAGE = Path(keyward.__file__).resolve().parent
GEN = HERE.parent / "gen_cdef.py"


def _gen_module():
    spec = importlib.util.spec_from_file_location("gen_cdef", GEN)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_shipped_cdef_matches_the_header() -> None:
    gen = _gen_module()
    fresh = gen.generate(HEADER.read_text(encoding="utf-8"))
    shipped = (PACKAGE / "_cdef.h").read_text(encoding="utf-8")
    assert shipped == fresh, (
        "keyward/_cdef.h drifted from include/keyward.h: run python3 bindings/python/gen_cdef.py"
    )


def test_generator_check_mode_agrees() -> None:
    result = subprocess.run([sys.executable, str(GEN), "--check", "--header", str(HEADER),
                             "--output", str(PACKAGE / "_cdef.h")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_generator_detects_drift(tmp_path: Path) -> None:
    header = tmp_path / "keyward.h"
    header.write_text(HEADER.read_text(encoding="utf-8").replace(
        "uint32_t kw_abi_version(void);", "uint32_t kw_abi_version(void);\nint kw_new_thing(void);"))
    result = subprocess.run([sys.executable, str(GEN), "--check", "--header", str(header),
                             "--output", str(PACKAGE / "_cdef.h")], capture_output=True, text=True)
    assert result.returncode == 1
    assert "out of date" in result.stderr


def test_cdef_has_no_conditionals_or_includes() -> None:
    text = (PACKAGE / "_cdef.h").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"#define KW_[A-Z0-9_]+ \d+", line), line


def test_abi_version_matches_the_header() -> None:
    m = re.search(r"^#define KW_ABI_VERSION (\d+)$", HEADER.read_text(encoding="utf-8"), re.M)
    assert m is not None
    assert keyward.ABI_VERSION == int(m.group(1)) == keyward.abi_version() == _ffi.lib.KW_ABI_VERSION


def _header_functions() -> list[str]:
    return sorted(set(re.findall(r"\b(kw_[a-z_0-9]+)\(", HEADER.read_text(encoding="utf-8")))
                  & set(re.findall(r"^\S.*?\b(kw_[a-z_0-9]+)\(", HEADER.read_text(encoding="utf-8"), re.M)))


def test_every_header_function_is_exported_and_wrapped() -> None:
    functions = _header_functions()
    assert len(functions) >= 30, functions
    source = "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.glob("*.py"))
    unwrapped = []
    for name in functions:
        getattr(_ffi.lib, name)  # resolves the symbol in the loaded library
        # An entry point superseded by its `_ex` variant (with flags) is wrapped through it.
        if not re.search(rf"\blib\.{name}\b", source) and not re.search(rf"\blib\.{name}_ex\b", source):
            unwrapped.append(name)
    assert not unwrapped, f"ABI functions without a Python wrapper: {unwrapped}"


def test_mismatching_abi_version_is_refused() -> None:
    with pytest.raises(keyward.LibraryError) as info:
        _ffi._load(expected=keyward.ABI_VERSION + 1)
    text = str(info.value)
    assert f"C ABI version {keyward.ABI_VERSION}" in text
    assert f"written for version {keyward.ABI_VERSION + 1}" in text


def test_missing_library_is_a_clear_import_error(tmp_path: Path) -> None:
    env = dict(os.environ, KEYWARD_LIB=str(tmp_path / "nope" / "libkeyward.so"))
    result = subprocess.run([sys.executable, "-c", "import keyward"], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "LibraryError" in result.stderr
    assert "cannot load libkeyward" in result.stderr


def test_keyward_lib_may_name_a_directory() -> None:
    lib_dir = os.path.dirname(_ffi.library_path)
    env = dict(os.environ, KEYWARD_LIB=lib_dir)
    code = "import keyward; print(keyward.library_path)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert os.path.dirname(result.stdout.strip()) == lib_dir


def test_the_installed_package_loads_its_own_library(tmp_path: Path) -> None:
    if not os.environ.get("KEYWARD_EXPECT_INSTALLED"):
        pytest.skip("run through scripts/test-python.sh (the package installed from its wheel)")
    env = {k: v for k, v in os.environ.items() if k != "KEYWARD_LIB"}
    code = "import keyward; print(keyward.library_path); print(keyward.abi_version())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    path, abi = result.stdout.split()
    assert path == str(PACKAGE / "keyward" / "libkeyward.so")
    assert int(abi) == keyward.ABI_VERSION
