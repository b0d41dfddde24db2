#!/usr/bin/env python3
"""Compiles ``keyward._kw_api`` (the binding's declarations in cffi's API mode) and
``keyward._kw_fast`` (the middlewares' usual request in C, ``keyward/_kw_fast.c``).

In ABI mode (what ``keyward/_ffi.py`` does by default) every call goes through libffi, which
classifies each argument at run time. In API mode cffi generates C for each declared
function, compiled against ``include/keyward.h``: a call is a direct C call from a generated
wrapper, and the struct layouts and constants of ``keyward/_cdef.h`` are checked against the
real header by the C compiler. The module is not linked against a particular ``libkeyward``
(no ``DT_NEEDED``): ``keyward/_ffi.py`` first opens the library it chose (``$KEYWARD_LIB``,
the bundled copy or the loader's) with ``RTLD_GLOBAL`` and checks its ABI version, then
imports this module, whose ``kw_*`` references bind to that library. So the override rules
and the version check are the same in both modes. ``keyward._kw_fast`` is a plain CPython
extension built the same way (against ``include/keyward.h``, no fixed library) and loaded
only in API mode.

Usage::

    python3 bindings/python/build_api.py OUTDIR   # writes OUTDIR/keyward/_kw_api.<abi-tag>.so
                                                  # and OUTDIR/keyward/_kw_fast.<abi-tag>.so
                                                  # (one path per line)

Needs a C compiler and Python's headers (Debian: ``python3-dev``).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import cffi  # type: ignore[import-untyped,unused-ignore]

HERE = Path(__file__).resolve().parent
INCLUDE = HERE.parent.parent / "include"
CDEF = HERE / "keyward" / "_cdef.h"
MODULE = "keyward._kw_api"
FAST_MODULE = "keyward._kw_fast"
FAST_SOURCE = HERE / "keyward" / "_kw_fast.c"


# The middlewares' usual request has one credential header: this helper, compiled into the
# module, makes its kw_header on the C stack, so Python passes the name and value as bytes
# objects (cffi hands a ``const char *`` argument the bytes object's own buffer) instead of
# building a cffi array and a buffer view per request. It calls kw_verify_headers_ex and
# nothing else: the C ABI stays the binding's one way into libkeyward.
ONE_HEADER_DECL = """
kw_status kwpy_verify_one(kw_store store, const char *name, size_t name_len, const char *value,
                          size_t value_len, const struct kw_str *scopes, size_t scopes_len,
                          uint32_t cost, struct kw_verdict *out_verdict);
"""
ONE_HEADER_DEF = """
static kw_status kwpy_verify_one(kw_store store, const char *name, size_t name_len,
                                 const char *value, size_t value_len,
                                 const struct kw_str *scopes, size_t scopes_len, uint32_t cost,
                                 struct kw_verdict *out_verdict) {
    const struct kw_header header = {name, name_len, value, value_len};
    return kw_verify_headers_ex(store, &header, 1, scopes, scopes_len, cost, 0,
                                KW_VERIFY_RATE_FIELDS, out_verdict, NULL, 0, NULL);
}
"""


def make_ffi() -> cffi.FFI:
    """The API-mode FFI: ``_cdef.h`` declared, ``keyward.h`` included by the generated C."""
    ffi = cffi.FFI()
    ffi.cdef(CDEF.read_text(encoding="utf-8"))
    ffi.cdef(ONE_HEADER_DECL)
    ffi.set_source(
        MODULE,
        '#include "keyward.h"\n' + ONE_HEADER_DEF,
        include_dirs=[str(INCLUDE)],
        extra_compile_args=["-O2"],
    )
    return ffi


def build_fast(outdir: str | os.PathLike[str]) -> str:
    """Compiles ``keyward._kw_fast`` under ``outdir`` (as ``keyward/_kw_fast*.so``) with
    setuptools' ``build_ext`` (what cffi uses too); returns its path."""
    from setuptools import Distribution, Extension  # type: ignore[import-untyped,unused-ignore]

    extension = Extension(
        FAST_MODULE, [str(FAST_SOURCE)], include_dirs=[str(INCLUDE)], extra_compile_args=["-O2"]
    )
    dist = Distribution({"name": "keyward", "ext_modules": [extension]})
    command = dist.get_command_obj("build_ext")
    with tempfile.TemporaryDirectory() as objects:
        command.build_lib = str(outdir)
        command.build_temp = objects
        command.ensure_finalized()
        command.run()
    return str(Path(command.get_ext_fullpath(FAST_MODULE)).resolve())


def build_api_module(outdir: str | os.PathLike[str]) -> str:
    """Compiles ``keyward._kw_api`` under ``outdir`` (as ``keyward/_kw_api*.so``); returns its
    path."""
    out = Path(outdir)
    (out / "keyward").mkdir(parents=True, exist_ok=True)
    return str(make_ffi().compile(tmpdir=str(out), verbose=False))


def build(outdir: str | os.PathLike[str]) -> list[str]:
    """Compiles both modules under ``outdir/keyward``; returns their paths."""
    return [build_api_module(outdir), build_fast(outdir)]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print("\n".join(build(sys.argv[1])))
