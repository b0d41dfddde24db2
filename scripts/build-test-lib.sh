#!/usr/bin/env bash
# Builds the library the C and binding test suites load: debug libkeyward with the `test-hooks`
# feature (it exports kw_test_panic, the hook that proves the panic boundary; a default build
# and include/keyward.h do not have it) and the `postgres` feature, as every shipped library
# (the suites' upstream tests open stores with an upstream URL). Prints the directory holding libkeyward.so (and the
# libkeyward.so.<KW_ABI_VERSION> symlink programs linked with -lkeyward ask for).
#
# It goes to its own target directory, target/test-hooks/: a cdylib's file name carries no
# hash, so a build with the feature in target/ would overwrite the default
# target/debug/libkeyward.so (and the next default build overwrite it back).
#
#   dir=$(bash scripts/build-test-lib.sh)   # then KEYWARD_LIB="$dir/libkeyward.so"
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="$PWD/target/test-hooks"
cargo build --lib --features test-hooks,postgres --quiet >&2
dir="$CARGO_TARGET_DIR/debug"
abi=$(sed -n 's/^#define KW_ABI_VERSION \([0-9][0-9]*\)$/\1/p' include/keyward.h)
[ -n "$abi" ] || { echo "build-test-lib.sh: no KW_ABI_VERSION in include/keyward.h" >&2; exit 1; }
ln -sfn libkeyward.so "$dir/libkeyward.so.$abi"
echo "$dir"
