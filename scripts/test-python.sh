#!/usr/bin/env bash
# The Python binding suite (run by `make test` via scripts/test.sh), in two parts:
#
# 1. Install test: copies the working tree (tracked and untracked, not ignored, files) to a
#    temporary directory, creates a fresh virtualenv there, runs the README's install command
#    (`pip install ./bindings/python`: maturin compiles libkeyward and bundles it) without
#    KEYWARD_LIB, checks that the wheel is tagged for this platform (not py3-none-any) and
#    carries the compiled modules (keyward._kw_api: cffi API mode; keyward._kw_fast: the
#    middlewares' usual request in C), and runs a program that creates a key
#    and verifies it with the bundled library, in API mode.
# 2. The pytest suite: a virtualenv in target/python-venv (created if missing) with cffi,
#    pytest, gunicorn, uvicorn, mypy and the frameworks keyward.contrib integrates with
#    (Django, djangorestframework, fastapi, flask, httpx), the wheel from part 1 installed, and KEYWARD_LIB
#    pointing at target/test-hooks/debug/libkeyward.so (scripts/build-test-lib.sh: a debug
#    build, quick to make, with the `test-hooks` feature whose kw_test_panic the panic test
#    calls).
#
#   scripts/test-python.sh               run both
#   scripts/test-python.sh -k vectors    extra arguments go to pytest
#
# Non-interactive (CI=true, no stdin). pytest's exit status is this script's: "no tests
# collected" (5) is a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}" CARGO_TERM_COLOR=never PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
exec </dev/null

ROOT="$PWD"
VENV="$ROOT/target/python-venv"
PY="$VENV/bin/python"
# The README's install command, run as written (from the repository root, venv active).
INSTALL_CMD="pip install ./bindings/python"

step() { printf '%s\n' "-- $*"; }
die() { printf 'test-python.sh: %s\n' "$*" >&2; exit 1; }

# --- virtualenvs -----------------------------------------------------------------------------
make_venv() { # make_venv DIR
  if ! python3 -m venv "$1" 2>/dev/null; then
    # Debian/Ubuntu ship venv (ensurepip) separately.
    rm -rf "$1"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$1"
  fi
}

# --- 1. install test ----------------------------------------------------------------------------
install_test_started=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/keyward-python-install.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

step "install test: copy of the working tree in $WORK/repo"
grep -qxF "$INSTALL_CMD" <(sed -n '/^## Use from Python/,/^## /p' README.md) ||
  die "README.md's Python section no longer shows \`$INSTALL_CMD\`: update INSTALL_CMD here"
mkdir "$WORK/repo"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Uncommitted work included; ignored files (target/, caches) left out. tar keeps mtimes,
  # so cargo finds its cached build of unchanged sources fresh.
  # (A tracked file deleted in the working tree is left out too.)
  git ls-files -z -co --exclude-standard --deduplicate |
    while IFS= read -r -d '' f; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi; done |
    tar -cf - --null -T - | tar -xf - -C "$WORK/repo"
else
  tar -cf - --exclude=./target --exclude=./.git . | tar -xf - -C "$WORK/repo"
fi

step "install test: fresh virtualenv, \`$INSTALL_CMD\` (KEYWARD_LIB unset; compiles libkeyward, release)"
make_venv "$WORK/venv"
# CARGO_TARGET_DIR: a build cache kept in this repository's target/ (ignored by git), so
# the release build of libkeyward and its dependencies is paid once per machine, not at
# every run. Not a departure from the README: the build is the same, only where cargo keeps
# its intermediate files differs (without it, the copy's own target/ would be used).
if ! (
  cd "$WORK/repo"
  unset KEYWARD_LIB
  export CARGO_TARGET_DIR="$ROOT/target"
  # shellcheck disable=SC1091
  . "$WORK/venv/bin/activate"
  $INSTALL_CMD
) >"$WORK/install.log" 2>&1; then
  cat "$WORK/install.log" >&2
  die "\`$INSTALL_CMD\` failed in a fresh virtualenv"
fi
grep -E "Created wheel for keyward" "$WORK/install.log" | sed 's/^ */   /; s/ sha256=.*//' || true

step "install test: the installed package is tagged for this platform and carries its library"
"$WORK/venv/bin/python" - <<'EOF'
import sys
from importlib.metadata import distribution

dist = distribution("keyward")
wheel = dist.read_text("WHEEL") or ""
tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
assert tags, wheel
for tag in tags:
    platform = tag.rsplit("-", 1)[-1]
    assert platform != "any" and ("linux" in platform or sys.platform != "linux"), f"wheel tag {tag}"
assert "Root-Is-Purelib: false" in wheel, wheel
files = [str(f) for f in dist.files or ()]
assert "keyward/keyward/libkeyward.so" in files or sys.platform != "linux", files
# The compiled modules (build_backend/keyward_build.py compiles them; this machine has a C
# compiler and Python's headers, so a wheel without them is a failure here).
api = [f for f in files if f.startswith("keyward/_kw_api") and f.endswith((".so", ".pyd"))]
assert api, f"the wheel has no keyward/_kw_api module: {files}"
fast = [f for f in files if f.startswith("keyward/_kw_fast") and f.endswith((".so", ".pyd"))]
assert fast, f"the wheel has no keyward/_kw_fast module: {files}"
print(f"   tags: {', '.join(tags)}; {api[0]}")
EOF

step "install test: create a key and verify it (no KEYWARD_LIB)"
(
  cd "$WORK" # not the source tree: import the installed package
  env -u KEYWARD_LIB "$WORK/venv/bin/python" - <<'EOF'
import os
import sys
import tempfile

import keyward

with tempfile.TemporaryDirectory() as d:
    with keyward.Store(os.path.join(d, "keys.redb")) as store:
        created = store.create("acct_install_test", scopes=["read"])
        verdict = store.verify(created.key, ("read",))  # the key itself is never printed
bundled = keyward.library_path.startswith(sys.prefix + os.sep)
print(f"   library: {keyward.library_path} (cffi {keyward.ffi_mode} mode)")
print(f"   verdict: {verdict.code} (HTTP {verdict.http_status}, owner {verdict.owner})")
sys.exit(0 if verdict.ok and bundled and keyward.ffi_mode == "api" else 1)
EOF
)

step "install test: \`pip wheel\` builds the same package as a platform wheel"
# Cargo's cache is warm now: this only repackages (seconds). The wheel is what the pytest
# virtualenv below installs.
(
  cd "$WORK/repo"
  unset KEYWARD_LIB
  export CARGO_TARGET_DIR="$ROOT/target"
  "$WORK/venv/bin/pip" wheel --quiet --no-deps -w "$WORK/wheels" ./bindings/python
) >"$WORK/wheel.log" 2>&1 || { cat "$WORK/wheel.log" >&2; die "pip wheel failed"; }
WHEELS=("$WORK"/wheels/keyward-*.whl)
[ "${#WHEELS[@]}" -eq 1 ] && [ -f "${WHEELS[0]}" ] || die "expected one keyward wheel in $WORK/wheels"
WHEEL="${WHEELS[0]}"
case "$(basename "$WHEEL")" in
  *-none-any.whl) die "$(basename "$WHEEL") is tagged for any platform, but holds a compiled library" ;;
  *) printf '   %s\n' "$(basename "$WHEEL")" ;;
esac
step "install test passed in $((SECONDS - install_test_started)) s"

# --- 2. the pytest suite --------------------------------------------------------------------
# KEYWARD_LIB given: test that library as is (the panic test fails unless it was built with
# `--features test-hooks`). Otherwise build (or just check, when fresh) the test library, so
# the tests never run against a stale copy.
if [ -z "${KEYWARD_LIB:-}" ]; then
  step "cargo build --lib --features test-hooks,postgres (debug, target/test-hooks)"
  KEYWARD_LIB="$(bash "$ROOT/scripts/build-test-lib.sh")/libkeyward.so"
fi
[ -e "$KEYWARD_LIB" ] || die "KEYWARD_LIB=$KEYWARD_LIB does not exist"
export KEYWARD_LIB

if [ ! -x "$PY" ]; then
  step "creating $VENV"
  make_venv "$VENV"
fi
# The frameworks of keyward.contrib (Django + DRF, FastAPI + httpx for its TestClient, Flask)
# are test dependencies only: the package itself needs none of them.
if ! "$PY" -c "import cffi, pytest, gunicorn, uvicorn, mypy, django, rest_framework, fastapi, flask, httpx" 2>/dev/null; then
  step "installing test dependencies"
  "$PY" -m pip install --quiet "cffi>=1.15" "pytest>=7" "gunicorn>=21" "uvicorn>=0.20" "mypy>=1.5" \
    "Django>=4.2" "djangorestframework>=3.14" "fastapi>=0.100" "flask>=2.3" "httpx>=0.24"
fi
# The wheel built above: the tests see the working tree's Python code.
step "pip install $(basename "$WHEEL")"
"$PY" -m pip install --quiet --no-deps --force-reinstall "$WHEEL"

# tests/test_upstream.py (stores with an upstream PostgreSQL) runs host B's replicator with
# the CLI built with the feature; it starts its own servers (scripts/pg-test-server.sh).
if [ -z "${KEYWARD_CLI:-}" ]; then
  step "cargo build -p keyward-cli --features postgres (the replicator of tests/test_upstream.py)"
  (cd "$ROOT" && cargo build -p keyward-cli --features postgres --quiet)
  export KEYWARD_CLI="$ROOT/target/debug/keyward"
fi

step "pytest (KEYWARD_LIB=$KEYWARD_LIB)"
cd "$ROOT/bindings/python"
# -p no:cacheprovider: leave no .pytest_cache in the source tree.
# The pytest script (not `python -m pytest`) keeps the source tree off sys.path, so the
# tests import the installed package.
export KEYWARD_EXPECT_INSTALLED=1
"$VENV/bin/pytest" -p no:cacheprovider -q "$@"
