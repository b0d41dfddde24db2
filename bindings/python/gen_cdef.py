#!/usr/bin/env python3
"""Generates ``keyward/_cdef.h``, the declarations cffi reads, from ``include/keyward.h``.

cffi's ``ffi.cdef`` has no preprocessor: it cannot take ``#if``/``#ifdef``/``#include``
lines, nor macros whose value is an expression. This script evaluates the header's
conditionals for a C11 compiler (``__cplusplus`` undefined, ``__STDC_VERSION__`` 201112L),
drops includes, guards and comments, and turns every ``#define NAME <expression>`` into
``#define NAME <integer>`` (the one macro form cffi accepts in ABI mode).

Usage::

    python3 bindings/python/gen_cdef.py            # rewrite keyward/_cdef.h
    python3 bindings/python/gen_cdef.py --check    # exit 1 if it is out of date

The test suite (``tests/test_cdef.py``) fails when the shipped copy drifts from the header.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = HERE.parent.parent / "include" / "keyward.h"
OUTPUT = HERE / "keyward" / "_cdef.h"

# What a C11 compiler sees (the header's C23/C++ branches are not taken).
PREDEFINED: dict[str, int] = {"__STDC_VERSION__": 201112}
# Macros from <stdint.h> a #define may use.
STDINT: dict[str, int] = {
    "UINT8_MAX": 2**8 - 1,
    "UINT16_MAX": 2**16 - 1,
    "UINT32_MAX": 2**32 - 1,
    "UINT64_MAX": 2**64 - 1,
    "INT32_MAX": 2**31 - 1,
    "INT64_MAX": 2**63 - 1,
    "SIZE_MAX": 2**64 - 1,
}

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_INT_LITERAL = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b")
_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")


class HeaderError(Exception):
    """The header uses a preprocessor construct this generator does not understand."""


def _eval_condition(expr: str, defined: dict[str, int | None]) -> bool:
    """Evaluates an ``#if`` expression (defined(), ||, &&, !, comparisons, integers)."""
    expr = re.sub(r"\bdefined\s*\(\s*(\w+)\s*\)", lambda m: "1" if m.group(1) in defined else "0", expr)
    expr = re.sub(r"\bdefined\s+(\w+)", lambda m: "1" if m.group(1) in defined else "0", expr)
    expr = _INT_LITERAL.sub(lambda m: str(int(m.group(1), 0)), expr)
    expr = _IDENT.sub(lambda m: str(defined.get(m.group(0)) or 0), expr)
    expr = expr.replace("||", " or ").replace("&&", " and ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    if not re.fullmatch(r"[\d\s()<>=!+\-*/%a-z]*", expr):
        raise HeaderError(f"cannot evaluate #if {expr!r}")
    return bool(eval(expr, {"__builtins__": {}}, {}))  # noqa: S307 - digits and operators only


def _eval_value(name: str, expr: str, values: dict[str, int]) -> int:
    """Evaluates a ``#define`` body to an integer (literals, known names, + - * / << >> |)."""
    body = _INT_LITERAL.sub(lambda m: str(int(m.group(1), 0)), expr.strip())

    def ident(m: re.Match[str]) -> str:
        if m.group(0) in values:
            return str(values[m.group(0)])
        raise HeaderError(f"#define {name}: unknown name {m.group(0)!r}")

    body = _IDENT.sub(ident, body)
    if not re.fullmatch(r"[\d\s()+\-*/%<>|&]*", body):
        raise HeaderError(f"#define {name}: not an integer expression: {expr!r}")
    value = eval(body.replace("/", "//"), {"__builtins__": {}}, {})  # noqa: S307
    if not isinstance(value, int):
        raise HeaderError(f"#define {name}: not an integer: {expr!r}")
    return value


def generate(header_text: str) -> str:
    """Returns the directive-free declarations of ``header_text``."""
    text = _COMMENT.sub(" ", header_text)
    text = re.sub(r"\\\n", " ", text)  # line continuations
    defined: dict[str, int | None] = dict(PREDEFINED)
    values: dict[str, int] = dict(STDINT)
    out: list[str] = []
    # Stack of (taking this branch, some branch already taken, parent active).
    stack: list[tuple[bool, bool, bool]] = []
    active = True
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("#"):
            if active and line:
                out.append(raw.rstrip())
            continue
        directive, _, rest = line[1:].strip().partition(" ")
        rest = rest.strip()
        if directive in ("if", "ifdef", "ifndef"):
            if directive == "ifdef":
                cond = rest in defined
            elif directive == "ifndef":
                cond = rest not in defined
            else:
                cond = _eval_condition(rest, defined)
            stack.append((active and cond, cond, active))
            active = active and cond
        elif directive == "elif":
            if not stack:
                raise HeaderError("#elif without #if")
            _, taken, parent = stack.pop()
            cond = not taken and _eval_condition(rest, defined)
            stack.append((parent and cond, taken or cond, parent))
            active = parent and cond
        elif directive == "else":
            if not stack:
                raise HeaderError("#else without #if")
            _, taken, parent = stack.pop()
            stack.append((parent and not taken, True, parent))
            active = parent and not taken
        elif directive == "endif":
            if not stack:
                raise HeaderError("#endif without #if")
            _, _, parent = stack.pop()
            active = parent
        elif not active:
            continue
        elif directive == "include":
            continue  # stddef.h / stdint.h: cffi knows size_t and the intN_t types
        elif directive == "define":
            m = re.fullmatch(r"(\w+)(?:\s+(.*))?", rest)
            if not m or "(" in m.group(1):
                raise HeaderError(f"unsupported #define {rest!r}")
            name, body = m.group(1), (m.group(2) or "").strip()
            if not body:
                defined[name] = None  # include guard
                continue
            value = _eval_value(name, body, values)
            values[name] = value
            defined[name] = value
            out.append(f"#define {name} {value}")
        else:
            raise HeaderError(f"unsupported directive #{directive}")
    if stack:
        raise HeaderError("unterminated #if")
    # Collapse runs of blank lines left by removed comments.
    body = re.sub(r"\n{2,}", "\n", "\n".join(out)).strip()
    return (
        "/* Generated from include/keyward.h by bindings/python/gen_cdef.py: the header as a\n"
        "   C11 compiler sees it, without preprocessor conditionals, includes or comments, every\n"
        "   macro evaluated to an integer. Do not edit; tests/test_cdef.py checks it. */\n"
        + body
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if keyward/_cdef.h is out of date")
    parser.add_argument("--header", type=Path, default=HEADER)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    fresh = generate(args.header.read_text(encoding="utf-8"))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != fresh:
            print(f"{args.output} is out of date: run python3 {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
