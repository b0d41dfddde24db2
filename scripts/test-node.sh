#!/usr/bin/env bash
# The Node binding suite (run by `make test` via scripts/test.sh): installs the npm
# dependencies of bindings/node when missing (npm ci, from the committed package-lock.json),
# builds libkeyward (debug, with the `test-hooks` feature whose kw_test_panic the panic test
# calls: scripts/build-test-lib.sh) when needed, points KEYWARD_LIB at it, and runs the node
# --test suites: the ABI drift check (lib/abi.js is what scripts/gen-abi.js generates from
# include/keyward.h), the shared test vectors, every API
# function and bad input, the Express and node:http middleware, the Fastify plugin
# (keyward/fastify; both against the real frameworks, through every credential style, and
# the README's Express and Fastify examples), a 4-worker cluster over
# loopback, loading and ABI-version refusal, and the TypeScript declarations. Then the
# install test (bindings/node/test/install/install.sh): the README's install commands, run
# as written in a fresh application outside a copy of the repository, without KEYWARD_LIB.
#
#   scripts/test-node.sh              everything
#   scripts/test-node.sh store        only test/store.test.js (any test file name part)
#   scripts/test-node.sh install      only the install test
#
# Non-interactive (CI=true, no stdin). Needs Node >= 18 and npm; the benchmark is separate:
# `node bindings/node/bench.js` (see BENCHMARKS.md, Node).
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}" CARGO_TERM_COLOR=never NO_COLOR=1 npm_config_fund=false npm_config_audit=false
exec </dev/null

ROOT="$PWD"
PKG="$ROOT/bindings/node"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "test-node.sh: node and npm are required (Node >= 18)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "test-node.sh: Node >= 18 is required (found $(node --version))" >&2
  exit 1
fi

# --- npm dependencies (koffi; express, fastify, typescript and @types/node for the tests) ---
# Also when one of package.json's dependencies is not installed (a node_modules from before
# it was added).
missing_dep() {
  (cd "$PKG" && node -e 'const p = require("./package.json");
    const names = Object.keys({ ...p.dependencies, ...p.devDependencies });
    process.exit(names.every((n) => require("fs").existsSync("node_modules/" + n + "/package.json")) ? 1 : 0)')
}
if [ ! -d "$PKG/node_modules" ] || [ "$PKG/package-lock.json" -nt "$PKG/node_modules/.package-lock.json" ] || missing_dep; then
  echo "installing npm dependencies (npm ci)"
  (cd "$PKG" && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- libkeyward ------------------------------------------------------------------------------
if [ -z "${KEYWARD_LIB:-}" ]; then
  echo "building libkeyward (debug, --features test-hooks,postgres, target/test-hooks)"
  KEYWARD_LIB="$(bash "$ROOT/scripts/build-test-lib.sh")/libkeyward.so"
  export KEYWARD_LIB
fi
if [ ! -f "$KEYWARD_LIB" ]; then
  echo "test-node.sh: KEYWARD_LIB=$KEYWARD_LIB does not exist" >&2
  exit 1
fi
echo "KEYWARD_LIB=$KEYWARD_LIB"
# test/upstream.test.js (stores with an upstream PostgreSQL) runs host B's replicator with the
# CLI built with the feature; it starts its own servers (scripts/pg-test-server.sh).
if [ -z "${KEYWARD_CLI:-}" ]; then
  echo "building the CLI (cargo build -p keyward-cli --features postgres) for test/upstream.test.js"
  (cd "$ROOT" && cargo build -p keyward-cli --features postgres --quiet)
  export KEYWARD_CLI="$ROOT/target/debug/keyward"
fi

# --- node --test -----------------------------------------------------------------------------
cd "$PKG"
files=()
for f in test/*.test.js; do
  if [ $# -eq 0 ] || [[ "$f" == *"$1"* ]]; then files+=("$f"); fi
done
install_test=false
if [ $# -eq 0 ] || [[ install == *"$1"* ]]; then install_test=true; fi
if [ ${#files[@]} -eq 0 ] && [ "$install_test" = false ]; then
  echo "test-node.sh: no test file matches '$1'" >&2
  exit 1
fi
if [ ${#files[@]} -gt 0 ]; then
  timeout 600 node --expose-gc --test --test-reporter=spec "${files[@]}"
fi

# --- install as the README says ----------------------------------------------------------------
if [ "$install_test" = true ]; then
  echo "install test (README, Node, Install)"
  timeout 900 bash "$PKG/test/install/install.sh"
fi
