#!/usr/bin/env bash
# The README's Rust section, exactly as written (run by `make test` via scripts/test.sh):
# copies the repository's files to a temporary directory, creates a fresh cargo project beside
# it, puts in the README's `[dependencies]` block (path dependency on the copy) and its
# `fn main`, builds, runs, and checks the two answers the README promises.
#
# CARGO_TARGET_DIR is the repository's own target/, so the engine's dependencies, already built
# for the Rust tests, are reused (the project itself is new each time).
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}" CARGO_TERM_COLOR=never
exec </dev/null

ROOT="$PWD"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The repository as a user would have it (tracked and new files, not target/).
mkdir -p "$WORK/keyward"
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$WORK/keyward"

# The README's Rust section: its first toml block and its first rust block.
python3 - "$ROOT/README.md" "$WORK" <<'PY'
import re, sys
readme, work = sys.argv[1], sys.argv[2]
text = open(readme).read()
section = text.split("\n## Rust\n", 1)[1].split("\n## ", 1)[0]
toml = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
rust = re.search(r"```rust\n(.*?)```", section, re.S).group(1)
import os
os.makedirs(f"{work}/app/src")
with open(f"{work}/app/Cargo.toml", "w") as f:
    f.write('[package]\nname = "readme-app"\nversion = "0.1.0"\nedition = "2024"\n\n[workspace]\n\n' + toml)
with open(f"{work}/app/src/main.rs", "w") as f:
    f.write(rust)
PY

cd "$WORK/app"
out=$(CARGO_TARGET_DIR="$ROOT/target" cargo run --quiet 2>&1) || { echo "$out"; echo "0 passed, 1 failed"; exit 1; }
echo "$out" | sed 's/kw_[A-Za-z0-9_]*/kw_<redacted>/'
passed=0
failed=0
check() {
  if grep -qF "$1" <<<"$out"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "missing: $1"; fi
}
check "200 VALID (owner acct_42)"
check "401 CREDENTIAL_MISSING (owner -)"
echo "README Rust example: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
