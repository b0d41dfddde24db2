#!/usr/bin/env python3
"""Compiles ``keyward._kw_api``: the binding's declarations in cffi's API (out-of-line) mode.

In ABI mode (what ``keyward/_ffi.py`` does by default) every call goes through libffi, which
classifies each argument at run time. In API mode cffi generates C for each declared
function, compiled against ``include/keyward.h``: a call is a direct C call from a generated
wrapper, and the struct layouts and constants of ``keyward/_cdef.h`` are checked against the
real header by the C compiler. The module is not linked against a particular ``libkeyward``
(no ``DT_NEEDED``): ``keyward/_ffi.py`` first opens the library it chose (``$KEYWARD_LIB``,
the bundled copy or the loader's) with ``RTLD_GLOBAL`` and checks its ABI version, then
imports this module, whose ``kw_*`` references bind to that library. So the override rules
and the version check are the same in both modes.

Usage::

    python3 bindings/python/build_api.py OUTDIR   # writes OUTDIR/keyward/_kw_api.<abi-tag>.so

Needs a C compiler and Python's headers (Debian: ``python3-dev``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import cffi  # type: ignore[import-untyped,unused-ignore]

HERE = Path(__file__).resolve().parent
INCLUDE = HERE.parent.parent / "include"
CDEF = HERE / "keyward" / "_cdef.h"
MODULE = "keyward._kw_api"


def make_ffi() -> cffi.FFI:
    """The API-mode FFI: ``_cdef.h`` declared, ``keyward.h`` included by the generated C."""
    ffi = cffi.FFI()
    ffi.cdef(CDEF.read_text(encoding="utf-8"))
    ffi.set_source(
        MODULE,
        '#include "keyward.h"',
        include_dirs=[str(INCLUDE)],
        extra_compile_args=["-O2"],
    )
    return ffi


def build(outdir: str | os.PathLike[str]) -> str:
    """Compiles the module under ``outdir`` (as ``keyward/_kw_api*.so``); returns its path."""
    out = Path(outdir)
    (out / "keyward").mkdir(parents=True, exist_ok=True)
    return str(make_ffi().compile(tmpdir=str(out), verbose=False))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(build(sys.argv[1]))
