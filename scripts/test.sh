#!/usr/bin/env bash
# The whole test suite (the README's `make test`). Installs what it needs when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
step() { printf '\n== %s ==\n' "$*"; }

step "format and lint"
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings

step "API docs (every public item documented, no broken links)"
RUSTDOCFLAGS="-D warnings -D missing_docs" cargo doc --no-deps -p keyward --quiet

step "Rust tests"
cargo test --quiet 2>&1 | tee target/rust-tests.log

step "benchmarks build"
cargo bench --no-run --quiet

# Further suites (C ABI, bindings, CLI) live in scripts/test-*.sh and run in name order.
for suite in scripts/test-*.sh; do
  [ -e "$suite" ] || continue
  step "$suite"
  bash "$suite"
done
step "all suites passed"
