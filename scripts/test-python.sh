#!/usr/bin/env bash
# The Python binding suite (run by `make test` via scripts/test.sh): creates a virtualenv in
# target/python-venv if missing, installs cffi, pytest, gunicorn, uvicorn, mypy and the package
# itself (pip install ./bindings/python), builds libkeyward (debug) if missing, and runs pytest
# over bindings/python/tests with KEYWARD_LIB pointing at the library.
#
#   scripts/test-python.sh               run the suite
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

step() { printf '%s\n' "-- $*"; }

# --- library -----------------------------------------------------------------------------
# KEYWARD_LIB given: test that library as is. Otherwise build (or just check, when fresh)
# target/debug/libkeyward.so, so the tests never run against a stale copy.
if [ -z "${KEYWARD_LIB:-}" ]; then
  step "cargo build --lib (debug)"
  cargo build --lib --quiet
  KEYWARD_LIB="$ROOT/target/debug/libkeyward.so"
fi
[ -e "$KEYWARD_LIB" ] || { echo "KEYWARD_LIB=$KEYWARD_LIB does not exist" >&2; exit 1; }
export KEYWARD_LIB

# --- virtualenv --------------------------------------------------------------------------
if [ ! -x "$PY" ]; then
  step "creating $VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian/Ubuntu ship venv (ensurepip) separately.
    rm -rf "$VENV"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
fi
if ! "$PY" -c "import cffi, pytest, gunicorn, uvicorn, mypy" 2>/dev/null; then
  step "installing test dependencies"
  "$PY" -m pip install --quiet "cffi>=1.15" "pytest>=7" "gunicorn>=21" "uvicorn>=0.20" "mypy>=1.5"
fi
# Always reinstall the package so the tests see the working tree (no compiler involved).
step "pip install ./bindings/python"
"$PY" -m pip install --quiet --no-deps --force-reinstall --no-build-isolation ./bindings/python 2>/dev/null ||
  "$PY" -m pip install --quiet --no-deps --force-reinstall ./bindings/python
rm -rf bindings/python/build bindings/python/keyward.egg-info # setuptools' in-tree leftovers

# --- tests -------------------------------------------------------------------------------
step "pytest (KEYWARD_LIB=$KEYWARD_LIB)"
cd "$ROOT/bindings/python"
# -p no:cacheprovider: leave no .pytest_cache in the source tree.
# The pytest script (not `python -m pytest`) keeps the source tree off sys.path, so the
# tests import the installed package.
export KEYWARD_EXPECT_INSTALLED=1
"$VENV/bin/pytest" -p no:cacheprovider -q "$@"
