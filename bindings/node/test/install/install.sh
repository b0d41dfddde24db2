#!/usr/bin/env bash
# Acceptance test of the README's Node install commands ("### Install"), run by
# scripts/test-node.sh. It copies the repository as a clone would have it (tracked and
# untracked-but-not-ignored files, so uncommitted work is tested too; no target/, no
# node_modules) to a temporary directory outside it, makes a fresh npm application beside
# it, runs each ```sh block of the section exactly as written (with ~/src/keyward replaced by
# the copy), without KEYWARD_LIB, then test/install/check.js: the library loads from the
# application's node_modules, a key is created and served over node:http on 127.0.0.1.
# The clone route is also re-installed with `npm ci` from the lockfile it wrote.
#
# npm comes from the registry only for koffi; our two packages come from the copy.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../../.." && pwd)"
export CI="${CI:-true}" npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
unset KEYWARD_LIB
# The prepare scripts run `cargo build --release` in the copy. A persistent target directory
# under the repository's target/ keeps that build between runs (a fresh clone builds it
# once); cargo hashes the copy's path relative to its workspace, so the copy at a new
# temporary path each run still reuses it.
export CARGO_TARGET_DIR="$ROOT/target"  # the repository's own: its release dependencies (built by `cargo bench --no-run`) are reused

WORK="$(mktemp -d "${TMPDIR:-/tmp}/keyward-node-install.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
CLONE="$WORK/keyward"
mkdir "$CLONE"
(
  cd "$ROOT"
  git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
    if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi  # skip files deleted in the work tree
  done | tar --null -T - -cf -
) | tar -xf - -C "$CLONE"

# The ```sh blocks of the README's Node "### Install" section, one file each.
node - "$CLONE/README.md" "$WORK" <<'JS'
const fs = require('node:fs');
const [readme, work] = process.argv.slice(2);
const text = fs.readFileSync(readme, 'utf8');
const node = text.indexOf('## Use from Node.js');
const install = text.indexOf('### Install', node);
const section = text.slice(install, text.indexOf('\n### ', install + 1));
const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
if (blocks.length !== 2) throw new Error(`expected 2 sh blocks in the Node install section, found ${blocks.length}`);
blocks.forEach((b, i) => fs.writeFileSync(`${work}/readme-${i + 1}.sh`, b));
JS

# Runs README block $1 in a fresh application folder $2, with the copy as ~/src/keyward.
readme_block() {
  local block="$WORK/readme-$1.sh" app="$2"
  mkdir "$app"
  (cd "$app" && npm init -y >/dev/null)
  echo "--- in a fresh application, as the README says:"
  sed 's/^/    /' "$block"
  (cd "$app" && sed "s#~/src/keyward#$CLONE#g" "$block" | bash -euo pipefail)
}

# The check runs as the application's own script (from inside the copied package, Node
# would resolve `keyward` to that package itself).
check() {
  cp "$CLONE/bindings/node/test/install/check.js" "$1/check.js"
  (cd "$1" && node check.js "$2")
}

LIB=@keyward/lib-linux-x64/libkeyward.so
start=$SECONDS

# 1. From the clone, with --install-links: copies, dependencies installed, prepare built.
readme_block 1 "$WORK/app-clone"
check "$WORK/app-clone" "$LIB"
[ ! -e "$CLONE/bindings/node/native" ] || { echo "keyward bundled a library although $LIB carries it" >&2; exit 1; }
# ... and again from the lockfile it wrote, as a deployment would.
(cd "$WORK/app-clone" && rm -rf node_modules && npm ci --loglevel=error)
check "$WORK/app-clone" "$LIB"

# 2. From tarballs: the keyward tarball holds no library, the per-platform one does.
readme_block 2 "$WORK/app-tarball"
main_files="$(tar -tzf "$WORK/app-tarball/keyward-0.1.0.tgz")"
platform_files="$(tar -tzf "$WORK/app-tarball/keyward-lib-linux-x64-0.1.0.tgz")"
grep -qx 'package/lib/store.js' <<<"$main_files"
grep -qx 'package/lib/fastify.js' <<<"$main_files"
grep -qx 'package/lib/fastify.d.ts' <<<"$main_files"
if grep -q 'libkeyward' <<<"$main_files"; then
  echo "keyward-0.1.0.tgz carries a library" >&2
  exit 1
fi
grep -qx 'package/libkeyward.so' <<<"$platform_files"
check "$WORK/app-tarball" "$LIB"
(cd "$WORK/app-tarball" && rm -rf node_modules && npm ci --loglevel=error)
check "$WORK/app-tarball" "$LIB"

echo "install test: both README routes passed in $((SECONDS - start)) s"
