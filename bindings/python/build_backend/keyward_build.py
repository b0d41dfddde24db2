"""The PEP 517 build backend of the keyward package: maturin, plus one preparation step.

maturin (``bindings = "cffi"`` in ``pyproject.toml``) compiles ``libkeyward`` from the Rust
crate at the repository root and puts it inside the wheel, tagged for its platform. Its
cffi step must also turn a C header into cffi declarations, and cffi cannot read
``include/keyward.h`` (preprocessor conditionals, macros whose value is an expression).
maturin uses ``<cargo target directory>/header.h`` instead when that file exists (its
documented alternative to running cbindgen), so before each wheel build this backend writes
there ``keyward/_cdef.h``: the directive-free copy of the header that the binding itself
loads (``gen_cdef.py`` makes it, ``tests/test_cdef.py`` keeps it in sync).

Everything else is maturin's own backend, unchanged. (maturin warns that ``build-backend``
is not ``maturin``: it cannot tell that this backend is maturin's own, wrapped.)
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
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


def build_wheel(
    wheel_directory: str,
    config_settings: Mapping[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    _provide_header()
    return str(maturin.build_wheel(wheel_directory, config_settings, metadata_directory))


def build_editable(
    wheel_directory: str,
    config_settings: Mapping[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    _provide_header()
    return str(maturin.build_editable(wheel_directory, config_settings, metadata_directory))
