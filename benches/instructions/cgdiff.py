"""Per-function instructions per request: the difference of two callgrind runs (N1, N2).

  python3 cgdiff.py cg.N1 cg.N2 N2-N1 [--inclusive] [--top 40]
  python3 cgdiff.py cg.N1 cg.N2 N2-N1 --by-object     # per ELF object (libkeyward, libffi, ...)
"""
import re
import subprocess
import sys


def table(path: str, inclusive: bool) -> dict:
    args = ["callgrind_annotate", "--threshold=100"] + (["--inclusive=yes"] if inclusive else []) + [path]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            name = re.sub(r"^/tmp/python-build[^ ]*?/Python-3[^/]*/", "", m.group(2))
            name = re.sub(r" \[.*/(lib[^/\]]*|_cffi[^/\]]*|python3)\]$", r" [\1]", name)
            rows[name] = rows.get(name, 0) + int(m.group(1).replace(",", ""))
    return rows


def by_object(rows: dict) -> dict:
    """Sums the per-function rows by the object callgrind names in brackets."""
    out: dict = {}
    for name, ir in rows.items():
        m = re.search(r" \[([^\]]*)\]$", name)
        obj = m.group(1).rsplit("/", 1)[-1] if m else "?"
        out[obj] = out.get(obj, 0) + ir
    return out


def main() -> None:
    a, b, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    inclusive = "--inclusive" in sys.argv
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 40
    ta, tb = table(a, inclusive), table(b, inclusive)
    if "--by-object" in sys.argv:
        ta, tb = by_object(ta), by_object(tb)
    diff = sorted(((tb.get(k, 0) - ta.get(k, 0)) / n, k) for k in set(ta) | set(tb))
    diff.reverse()
    for d, k in diff[:top]:
        print(f"{d:10.0f}  {k}")


main()
