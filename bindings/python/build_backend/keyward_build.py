"""The PEP 517 build backend of the keyward package: maturin, plus one preparation step.

maturin (``bindings = "cffi"`` in ``pyproject.toml``) compiles ``libkeyward`` from the Rust
crate at the repository root and puts it inside the wheel, tagged for its platform. Its
cffi step must also turn a C header into cffi declarations, and cffi cannot read
``include/keyward.h`` (preprocessor conditionals, macros whose value is an expression).
maturin uses ``<cargo target directory>/header.h`` instead when that file exists (its
documented alternative to running cbindgen), so before each wheel build this backend writes
there ``keyward/_cdef.h``: the directive-free copy of the header that the binding itself
loads (``gen_cdef.py`` makes it, ``tests/test_cdef.py`` keeps it in sync).

After maturin has built the wheel, a second step compiles ``keyward._kw_api``, the same
declarations in cffi's API mode (``build_api.py``: a direct C call per function instead of
libffi's generic one; fewer instructions per verify, see BENCHMARKS.md), and
``keyward._kw_fast`` (the middlewares' usual request judged in one C call), and adds them to
the wheel (its RECORD rewritten). It needs a C compiler, which the Rust toolchain needs anyway,
and Python's headers (Debian: ``python3-dev``). When it cannot be built the wheel is left as
maturin made it, with a warning: the package then runs in ABI mode, as before, and
``pip install`` still succeeds. Editable installs skip it (ABI mode).

Everything else is maturin's own backend, unchanged. (maturin warns that ``build-backend``
is not ``maturin``: it cannot tell that this backend is maturin's own, wrapped.)
"""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import maturin  # type: ignore[import-not-found,import-untyped,unused-ignore]
from maturin import (  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: F401
    build_sdist,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_wheel",
]

# PEP 517 runs the backend in the package's directory (bindings/python).
_CDEF = Path("keyward") / "_cdef.h"


def _manifest_path() -> str:
    manifest = maturin.get_config().get("manifest-path", "Cargo.toml")
    return str(manifest)


def _provide_header() -> None:
    """Writes keyward/_cdef.h as <cargo target directory>/header.h for maturin's cffi step."""
    if shutil.which("cargo") is None:
        raise RuntimeError(
            "keyward: installing from source compiles libkeyward and needs a Rust toolchain "
            "(cargo, Rust >= 1.90: https://rustup.rs); a keyward wheel needs none"
        )
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--manifest-path", _manifest_path()],
        check=True, stdout=subprocess.PIPE,
    )
    target_dir = Path(json.loads(metadata.stdout)["target_directory"])
    target_dir.mkdir(parents=True, exist_ok=True)
    header = target_dir / "header.h"
    text = _CDEF.read_bytes()
    if not header.is_file() or header.read_bytes() != text:
        tmp = header.with_name(f"header.h.{os.getpid()}")
        tmp.write_bytes(text)
        os.replace(tmp, header)  # atomic: a concurrent build reads the old or the new file


def _load_build_api() -> Any:
    """build_api.py (beside this directory): ``build_api_module`` and ``build_fast``."""
    spec = importlib.util.spec_from_file_location("keyward_build_api", Path("build_api.py").resolve())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record_row(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"{arcname},sha256={digest},{len(data)}"


def _add_to_wheel(wheel: Path, arcname: str, data: bytes) -> None:
    """Rewrites the wheel with one more file, listed in its RECORD (PEP 427)."""
    tmp = wheel.with_name(wheel.name + ".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        record = next(n for n in src.namelist() if n.endswith(".dist-info/RECORD"))
        for item in src.infolist():
            if item.filename != record:
                dst.writestr(item, src.read(item.filename))
        # The extension keeps the bundled library's mode bits (rwxr-xr-x).
        info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        dst.writestr(info, data)
        rows = src.read(record).decode("utf-8").splitlines()
        rows.insert(len(rows) - 1 if rows and rows[-1].startswith(record + ",") else len(rows),
                    _record_row(arcname, data))
        dst.writestr(src.getinfo(record), "\n".join(rows) + "\n")
    os.replace(tmp, wheel)


def _add_api_modules(wheel: Path) -> None:
    """Adds keyward/_kw_api*.so, then keyward/_kw_fast*.so (used only in API mode), to the
    wheel; each one that cannot be built is left out with a warning (the package works
    without either, more slowly)."""
    builder = _load_build_api()
    steps = [
        (builder.build_api_module, "the cffi API-mode module",
         "the package will call libkeyward in cffi ABI mode (slower per call)"),
        (builder.build_fast, "keyward._kw_fast",
         "the middlewares will judge every request in Python (slower per request)"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for build, what, consequence in steps:
            try:
                built = Path(build(tmp))
            except Exception as exc:  # noqa: BLE001 - any failure: the package still works
                print(
                    f"keyward: WARNING: {what} was not built ({type(exc).__name__}: {exc}); {consequence}. "
                    "It needs a C compiler and Python's headers (Debian: apt-get install python3-dev).",
                    file=sys.stderr,
                )
                return
            _add_to_wheel(wheel, f"keyward/{built.name}", built.read_bytes())


def build_wheel(
    wheel_directory: str,
    config_settings: Mapping[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    _provide_header()
    name = str(maturin.build_wheel(wheel_directory, config_settings, metadata_directory))
    _add_api_modules(Path(wheel_directory) / name)
    return name


def build_editable(
    wheel_directory: str,
    config_settings: Mapping[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    _provide_header()
    return str(maturin.build_editable(wheel_directory, config_settings, metadata_directory))
