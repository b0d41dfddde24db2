"""The build backend's API-mode step (build_backend/keyward_build.py): the compiled module is
added to maturin's wheel with a correct RECORD, and a failed compile leaves the wheel as it
was (ABI mode) with a warning. maturin itself is replaced by a stub: only our step runs."""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import shutil
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent  # bindings/python: where PEP 517 runs the backend
BACKEND = SOURCE / "build_backend" / "keyward_build.py"
RECORD = "keyward-0.1.0.dist-info/RECORD"


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Any:
    stub = types.ModuleType("maturin")
    for name in ("build_sdist", "get_requires_for_build_sdist", "get_requires_for_build_wheel",
                 "prepare_metadata_for_build_wheel", "build_wheel", "build_editable", "get_config"):
        setattr(stub, name, lambda *a, **k: None)
    monkeypatch.setitem(sys.modules, "maturin", stub)
    monkeypatch.chdir(SOURCE)
    spec = importlib.util.spec_from_file_location("keyward_build_under_test", BACKEND)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_wheel(path: Path) -> bytes:
    files = {"keyward/__init__.py": b"# package\n", "keyward/keyward/libkeyward.so": b"\x7fELF..."}
    rows = []
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
            rows.append(f"{name},sha256={digest(data)},{len(data)}")
        rows.append(f"{RECORD},,")
        z.writestr(RECORD, "\n".join(rows) + "\n")
    return path.read_bytes()


def digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_a_file_added_to_the_wheel_is_in_its_record(backend: Any, tmp_path: Path) -> None:
    wheel = tmp_path / "keyward-0.1.0-py3-none-linux_x86_64.whl"
    make_wheel(wheel)
    backend._add_to_wheel(wheel, "keyward/_kw_api.test.so", b"module bytes")
    with zipfile.ZipFile(wheel) as z:
        assert z.read("keyward/_kw_api.test.so") == b"module bytes"
        assert z.read("keyward/__init__.py") == b"# package\n"
        rows = z.read(RECORD).decode().splitlines()
        mode = z.getinfo("keyward/_kw_api.test.so").external_attr >> 16
    assert f"keyward/_kw_api.test.so,sha256={digest(b'module bytes')},12" in rows
    assert rows[-1] == f"{RECORD},,"  # RECORD's own row stays last
    assert len(rows) == 4 and mode == 0o100755


def test_a_failed_compile_leaves_the_wheel_unchanged_with_a_warning(
    backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = tmp_path / "keyward-0.1.0-py3-none-linux_x86_64.whl"
    before = make_wheel(wheel)

    def no_compiler(outdir: str) -> str:
        raise OSError("cc: not found")

    monkeypatch.setattr(backend, "_load_build_api", lambda: types.SimpleNamespace(build_api_module=no_compiler,
                                                                             build_fast=no_compiler))
    backend._add_api_modules(wheel)
    assert wheel.read_bytes() == before
    err = capsys.readouterr().err
    assert "the cffi API-mode module was not built (OSError: cc: not found)" in err
    assert "_kw_fast" not in err  # not tried: it is used only in API mode
    assert "ABI mode" in err


def test_without_the_fast_module_the_wheel_keeps_api_mode(
    backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = tmp_path / "keyward-0.1.0-py3-none-linux_x86_64.whl"
    make_wheel(wheel)

    def api_module(outdir: str) -> str:
        built = Path(outdir) / "keyward" / "_kw_api.test.so"
        built.parent.mkdir(parents=True, exist_ok=True)
        built.write_bytes(b"api module")
        return str(built)

    def no_fast(outdir: str) -> str:
        raise RuntimeError("structmember.h: no such file")

    monkeypatch.setattr(backend, "_load_build_api", lambda: types.SimpleNamespace(build_api_module=api_module,
                                                                                   build_fast=no_fast))
    backend._add_api_modules(wheel)
    with zipfile.ZipFile(wheel) as z:
        assert z.read("keyward/_kw_api.test.so") == b"api module"
        assert not [n for n in z.namelist() if "_kw_fast" in n]
    err = capsys.readouterr().err
    assert "keyward._kw_fast was not built (RuntimeError: structmember.h: no such file)" in err
    assert "the middlewares will judge every request in Python" in err


@pytest.mark.parametrize("module", ["_kw_api", "_kw_fast"])
def test_the_compiled_modules_go_into_the_wheel(backend: Any, tmp_path: Path, module: str) -> None:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    wheel = tmp_path / "keyward-0.1.0-py3-none-linux_x86_64.whl"
    make_wheel(wheel)
    backend._add_api_modules(wheel)
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.startswith(f"keyward/{module}")]
        assert len(names) == 1 and names[0].endswith(".so"), z.namelist()
        data = z.read(names[0])
        assert f"{names[0]},sha256={digest(data)},{len(data)}" in z.read(RECORD).decode().splitlines()
    assert data[:4] == b"\x7fELF"
