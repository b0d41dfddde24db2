#!/usr/bin/env bash
# The C ABI suite (run by `make test` via scripts/test.sh): builds libkeyward (debug) twice,
# as shipped and with the `test-hooks` feature (scripts/build-test-lib.sh: kw_test_panic, which
# the tests declare themselves), checks that only the second exports the hook and that the
# header never declares it, then compiles tests/c/test_keyward.c as C11 (-Wall -Wextra -Werror
# -pedantic) and as C++17, links it against the test-hooks libkeyward.so and libkeyward.a,
# runs every variant, runs it under
# AddressSanitizer + UndefinedBehaviorSanitizer and under valgrind memcheck, runs the
# README's install and example block (make install to a temporary prefix from a fresh copy of
# the repository, examples/c/quickstart.c linked through pkg-config, shared and static) and
# checks the result (SONAME, stripped library, no libkeyward.so in the static program), and
# checks the ABI of the library as shipped against the abidw baseline in abi/ with abidiff.
#
#   scripts/test-c.sh              run everything
#   scripts/test-c.sh --bless-abi  regenerate abi/libkeyward.abi (after bumping
#                                  KW_ABI_VERSION in src/ffi/mod.rs for an incompatible change)
#
# Non-interactive; installs missing Debian packages (gcc, g++, valgrind, abigail-tools,
# pkg-config) with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}" CARGO_TERM_COLOR=never RUST_BACKTRACE=0
exec </dev/null

ROOT="$PWD"
OUT="$ROOT/target/c-tests"
LIB="$ROOT/target/debug"   # the library as shipped (no test hooks): ABI checks
VECTORS="$ROOT/tests/vectors"
ABI_DIR="$ROOT/abi"
STATIC_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl"
passed=0
failed=0
failures=()

ok() { passed=$((passed + 1)); printf '  ok    %s\n' "$1"; }
ko() { failed=$((failed + 1)); failures+=("$1"); printf '  FAIL  %s\n' "$1"; }

# --- tools -----------------------------------------------------------------------------
need=()
command -v gcc >/dev/null || need+=(gcc)
command -v g++ >/dev/null || need+=(g++)
command -v valgrind >/dev/null || need+=(valgrind)
command -v abidiff >/dev/null || need+=(abigail-tools)
command -v pkg-config >/dev/null || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

abi_version_of_header() {
  sed -n 's/^#define KW_ABI_VERSION \([0-9][0-9]*\)$/\1/p' "$ROOT/include/keyward.h"
}

abidw_current() {
  abidw --no-corpus-path --no-comp-dir-path --no-show-locs "$LIB/libkeyward.so"
}

# --- build -------------------------------------------------------------------------------
echo "building libkeyward (debug)"
cargo build --lib --quiet
mkdir -p "$OUT"
# The library's SONAME is libkeyward.so.<KW_ABI_VERSION> (build.rs): programs linked with
# -lkeyward ask the dynamic loader for that name, so it sits beside the built library as
# `make install` puts it beside the installed one.
ln -sfn libkeyward.so "$LIB/libkeyward.so.$(abi_version_of_header)"

if [ "${1:-}" = "--bless-abi" ]; then
  abidw_current >"$ABI_DIR/libkeyward.abi"
  abi_version_of_header >"$ABI_DIR/ABI_VERSION"
  echo "regenerated abi/libkeyward.abi for ABI version $(cat "$ABI_DIR/ABI_VERSION"); commit it"
  exit 0
fi

echo "building libkeyward (debug, --features test-hooks,postgres) for the tests"
TEST_LIB="$(bash "$ROOT/scripts/build-test-lib.sh")"

echo "test hooks stay out of the shipped library"
# (Symbol lists are captured before grep: see the note on pipefail below.)
shipped_symbols=$(nm -D --defined-only "$LIB/libkeyward.so" 2>&1 || true)
hooks_symbols=$(nm -D --defined-only "$TEST_LIB/libkeyward.so" 2>&1 || true)
if grep -q ' T kw_open$' <<<"$shipped_symbols" && ! grep -q 'kw_test_panic' <<<"$shipped_symbols"; then
  ok "target/debug/libkeyward.so (default features) exports no kw_test_panic"
else
  ko "target/debug/libkeyward.so (default features) exports kw_test_panic (or was not read)"
fi
if grep -q 'kw_test_panic' "$ROOT/include/keyward.h"; then
  ko "include/keyward.h mentions kw_test_panic"
else
  ok "include/keyward.h does not declare kw_test_panic"
fi
if grep -q ' T kw_test_panic$' <<<"$hooks_symbols"; then
  ok "the test library (--features test-hooks,postgres) exports kw_test_panic"
else
  ko "the test library $TEST_LIB/libkeyward.so does not export kw_test_panic"
fi

CFLAGS_C="-std=c11 -Wall -Wextra -Werror -pedantic -g -pthread -I$ROOT/include"
CFLAGS_CXX="-x c++ -std=c++17 -Wall -Wextra -Werror -g -pthread -I$ROOT/include"
SRC="$ROOT/tests/c/test_keyward.c"

compile() { # name, compiler+flags..., then link args
  local name=$1
  shift
  if "$@" 2>"$OUT/$name.build.log"; then
    return 0
  fi
  cat "$OUT/$name.build.log"
  ko "$name: compile"
  return 1
}

run() { # name, command...
  local name=$1
  shift
  if "$@" >"$OUT/$name.log" 2>&1; then
    ok "$name ($(tail -n 1 "$OUT/$name.log"))"
  else
    grep -v 'deliberate panic\|^note: run with' "$OUT/$name.log" | tail -n 40
    ko "$name"
  fi
}

echo "C tests"
# shellcheck disable=SC2086
# This variant runs the fork stress test of issue 13 at full size (1,000 forks from a parent
# with a running flusher and a busy verifying thread); the others run 50 (valgrind none: its slowdown is not what this test is about).
compile c11-shared gcc $CFLAGS_C "$SRC" -o "$OUT/c11-shared" -L"$TEST_LIB" -lkeyward -Wl,-rpath,"$TEST_LIB" &&
  run c11-shared env KW_FORK_CYCLES="${KW_FORK_CYCLES:-1000}" "$OUT/c11-shared" "$VECTORS" &&
  { grep '^fork stress' "$OUT/c11-shared.log" | sed 's/^/        /' || true; }
# shellcheck disable=SC2086
compile c11-static gcc $CFLAGS_C "$SRC" -o "$OUT/c11-static" "$TEST_LIB/libkeyward.a" $STATIC_LIBS &&
  run c11-static "$OUT/c11-static" "$VECTORS"
# shellcheck disable=SC2086
compile cxx17-shared g++ $CFLAGS_CXX "$SRC" -x none -o "$OUT/cxx17-shared" -L"$TEST_LIB" -lkeyward -Wl,-rpath,"$TEST_LIB" &&
  run cxx17-shared "$OUT/cxx17-shared" "$VECTORS"
# shellcheck disable=SC2086
compile cxx17-static g++ $CFLAGS_CXX "$SRC" -x none -o "$OUT/cxx17-static" "$TEST_LIB/libkeyward.a" $STATIC_LIBS &&
  run cxx17-static "$OUT/cxx17-static" "$VECTORS"

# A store opened with an upstream PostgreSQL (tests/c/test_upstream.c): a real server started
# by scripts/pg-test-server.sh (installs Debian's postgresql when missing) in a temporary
# directory, and the CLI (`keyward replicate --once`, host B's replicator) built with the
# feature; run as C11 and as C++17.
echo "C tests with an upstream PostgreSQL"
# Each variant gets a server of its own (the test counts the upstream's change sequences).
run_upstream() { # name (the binary in $OUT)
  local pg_dir pg_url
  pg_dir=$(mktemp -u "/tmp/kw-pg-$$-$1.XXXXXX")
  if pg_url=$(bash "$ROOT/scripts/pg-test-server.sh" start "$pg_dir" 2>"$OUT/pg-start.log"); then
    run "$1" env KW_PG_URL="$pg_url" KW_PG_DIR="$pg_dir" \
      KW_PG_SCRIPT="$ROOT/scripts/pg-test-server.sh" KW_CLI="$ROOT/target/debug/keyward" "$OUT/$1"
    bash "$ROOT/scripts/pg-test-server.sh" stop "$pg_dir" || true
  else
    cat "$OUT/pg-start.log"
    ko "$1: PostgreSQL test server (scripts/pg-test-server.sh start)"
  fi
}
if cargo build -p keyward-cli --features postgres --quiet 2>"$OUT/cli-build.log"; then
  # shellcheck disable=SC2086
  compile upstream-c11 gcc $CFLAGS_C "$ROOT/tests/c/test_upstream.c" -o "$OUT/upstream-c11" \
    -L"$TEST_LIB" -lkeyward -Wl,-rpath,"$TEST_LIB" && run_upstream upstream-c11
  # shellcheck disable=SC2086
  compile upstream-cxx17 g++ $CFLAGS_CXX "$ROOT/tests/c/test_upstream.c" -x none -o "$OUT/upstream-cxx17" \
    -L"$TEST_LIB" -lkeyward -Wl,-rpath,"$TEST_LIB" && run_upstream upstream-cxx17
else
  cat "$OUT/cli-build.log"
  ko "cargo build -p keyward-cli --features postgres"
fi

# AddressSanitizer + UndefinedBehaviorSanitizer (the C side instrumented; Rust's own
# accesses are checked by the Rust tests and by valgrind below). Without the fork stress test:
# GCC 12's libasan does not lock its allocator around fork(), so a child forked while another
# thread is inside malloc can hang in libasan itself (seen once in 50 forks; 0 in 1,000 without
# ASan, where the test runs at full size).
# shellcheck disable=SC2086
compile asan-ubsan gcc $CFLAGS_C -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
  "$SRC" -o "$OUT/asan-ubsan" -L"$TEST_LIB" -lkeyward -Wl,-rpath,"$TEST_LIB" &&
  run asan-ubsan env KW_FORK_CYCLES=0 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$OUT/asan-ubsan" "$VECTORS"

# valgrind memcheck: 0 errors, 0 bytes definitely lost (in the test process; the fork test's
# child, which by design never frees the engine it inherited, is not reported).
# Possibly-lost blocks are not errors: they are the engine's process-wide registry (a static
# hash map, whose interior pointers valgrind cannot follow), alive until exit by design.
if [ -x "$OUT/c11-shared" ]; then
  if KW_FORK_CYCLES=0 valgrind --child-silent-after-fork=yes --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --log-file="$OUT/valgrind.memcheck.log" \
    "$OUT/c11-shared" "$VECTORS" >"$OUT/valgrind.log" 2>&1 &&
    grep -q 'ERROR SUMMARY: 0 errors' "$OUT/valgrind.memcheck.log" &&
    grep -q 'definitely lost: 0 bytes\|All heap blocks were freed' "$OUT/valgrind.memcheck.log"; then
    ok "valgrind ($(tail -n 1 "$OUT/valgrind.log"); $(grep -o 'ERROR SUMMARY: [0-9]* errors' "$OUT/valgrind.memcheck.log"), $(grep -o 'definitely lost: [0-9,]* bytes' "$OUT/valgrind.memcheck.log" || echo 'no leaks'))"
  else
    tail -n 60 "$OUT/valgrind.memcheck.log"
    tail -n 5 "$OUT/valgrind.log"
    ko valgrind
  fi
fi

# --- the README's install and example, in a fresh copy of the repository ------------------
# The block of README.md ("Use from C") that follows the marker below is run as it stands
# (bash -euo pipefail, HOME set to a temporary directory) in a copy of the repository's files
# (tracked and untracked ones, as git ls-files lists them, so uncommitted work is included;
# never target/) outside the repository: it installs to $HOME/opt/keyward, then builds and
# runs examples/c/quickstart.c linked shared and static.
echo "README install and example (fresh copy, make install to a temporary prefix)"
marker='<!-- scripts/test-c.sh runs the next block -->'
accept="$(mktemp -d)"
trap 'rm -rf "$accept"' EXIT
mkdir -p "$accept/src" "$accept/home"
git ls-files -z -co --exclude-standard |
  tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$accept/src"
block=$(awk -v marker="$marker" '
  $0 == marker { armed = 1; next }
  armed == 1 && /^```sh$/ { armed = 2; next }
  armed == 2 && /^```$/ { exit }
  armed == 2 { print }' README.md)
if [ -z "$block" ]; then
  ko "README.md has no sh block after '$marker'"
else
  # A release build from scratch costs minutes: the copy builds into this repository's own
  # target/, whose release dependencies `cargo bench --no-run` has already built (the same
  # source, so overwriting target/release's library with the copy's is harmless). Only
  # keyward itself is recompiled per run (its path changes).
  # HOME moves, so rustup's and cargo's homes are pinned to where they are now.
  started=$SECONDS
  if (cd "$accept/src" && env HOME="$accept/home" CARGO_TARGET_DIR="$ROOT/target" \
    RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" \
    bash -euo pipefail -c "$block") >"$OUT/readme-install.log" 2>&1; then
    ok "README install + example ran as written ($((SECONDS - started)) s)"
  else
    tail -n 40 "$OUT/readme-install.log"
    ko "README install + example"
  fi
  prefix="$accept/home/opt/keyward"
  abi=$(abi_version_of_header)
  # Both builds printed a verified key (and the example exits 0 only when the revoked key is
  # then refused).
  n=$(grep -c '^verify: VALID -> HTTP 200, key [0-9A-Za-z]* of acct_42$' "$OUT/readme-install.log" || true)
  [ "$n" -eq 2 ] && ok "example printed a verified key, shared and static" ||
    ko "example: expected 2 'verify: VALID' lines, got $n (see $OUT/readme-install.log)"
  # (Outputs are captured before grep: `cmd | grep -q` fails under pipefail when grep exits
  # early and cmd gets SIGPIPE.)
  lib="$prefix/lib/libkeyward.so.$abi"
  dynamic=$(readelf -d "$lib" 2>&1 || true)
  if grep -q "(SONAME).*\[libkeyward.so.$abi\]" <<<"$dynamic"; then
    ok "installed lib/libkeyward.so.$abi has SONAME libkeyward.so.$abi"
  else
    ko "installed libkeyward.so.$abi: no SONAME libkeyward.so.$abi"
  fi
  if [ "$(readlink "$prefix/lib/libkeyward.so" 2>/dev/null)" = "libkeyward.so.$abi" ]; then
    ok "lib/libkeyward.so -> libkeyward.so.$abi"
  else
    ko "lib/libkeyward.so is not a symlink to libkeyward.so.$abi"
  fi
  sections=$(readelf -S "$lib" 2>&1 || true)
  if [ -f "$lib" ] && ! grep -q -E '\.symtab|\.debug_' <<<"$sections"; then
    ok "installed shared library is stripped ($(du -k "$lib" | cut -f1) KiB)"
  else
    ko "installed shared library is not stripped (.symtab or .debug_* present)"
  fi
  needed=$(ldd "$accept/src/quickstart" 2>&1 || true)
  if grep -q "libkeyward.so.$abi => $lib " <<<"$needed"; then
    ok "shared example loads $lib (rpath)"
  else
    echo "$needed"
    ko "shared example does not load the installed libkeyward.so.$abi"
  fi
  static_dynamic=$(readelf -d "$accept/src/quickstart-static" 2>&1 || true)
  static_ldd=$(ldd "$accept/src/quickstart-static" 2>&1 || true)
  static_symbols=$(nm "$accept/src/quickstart-static" 2>&1 || true)
  if [ -x "$accept/src/quickstart-static" ] && ! grep -q libkeyward <<<"$static_dynamic$static_ldd" &&
    grep -q ' T kw_open$' <<<"$static_symbols"; then
    ok "static example defines kw_open itself and needs no libkeyward.so"
  else
    ko "static example depends on libkeyward.so (or was not built)"
  fi
  version=$(awk '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { gsub(/^version *= *"|".*$/, ""); print; exit }' Cargo.toml)
  pc_version=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --modversion keyward 2>/dev/null || true)
  [ "$pc_version" = "$version" ] && ok "keyward.pc: version $version, prefix $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --variable=prefix keyward)" ||
    ko "keyward.pc: version '$pc_version', Cargo.toml says $version"
fi

# The example compiles without a warning under the strictest flags (the README block uses
# plain `cc -std=c11`).
if gcc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I include examples/c/quickstart.c 2>"$OUT/quickstart.warnings.log"; then
  ok "examples/c/quickstart.c: no warning with -Wall -Wextra -Werror -pedantic"
else
  cat "$OUT/quickstart.warnings.log"
  ko "examples/c/quickstart.c: warnings"
fi

# The README section shows the example verbatim.
if python3 -c 'import sys; sys.exit(open(sys.argv[2]).read() not in open(sys.argv[1]).read())' \
  README.md examples/c/quickstart.c; then
  ok "README.md (Use from C) shows examples/c/quickstart.c verbatim"
else
  ko "README.md (Use from C) is out of sync with examples/c/quickstart.c"
fi

# --- ABI stability ---------------------------------------------------------------------------
echo "ABI (abidiff against abi/libkeyward.abi)"
header_version=$(abi_version_of_header)
baseline_version=$(cat "$ABI_DIR/ABI_VERSION" 2>/dev/null || echo missing)
if [ "$header_version" != "$baseline_version" ]; then
  echo "  KW_ABI_VERSION is $header_version but abi/libkeyward.abi is the baseline of version $baseline_version:"
  echo "  regenerate it with scripts/test-c.sh --bless-abi and commit abi/"
  ko "abi-version"
else
  set +e
  abidiff --no-show-locs "$ABI_DIR/libkeyward.abi" "$LIB/libkeyward.so" >"$OUT/abidiff.log" 2>&1
  rc=$?
  set -e
  # abidiff exit status bits: 1 error, 2 usage, 4 ABI change, 8 incompatible ABI change.
  # A changed or removed function or variable (including a changed struct it reaches) is
  # incompatible; added functions alone are compatible.
  changed=$(sed -n 's/^\(Functions\|Variables\) changes summary: \([0-9]*\) Removed[^,]*, \([0-9]*\) Changed.*/\2 \3/p' \
    "$OUT/abidiff.log" | awk '{ n += $1 + $2 } END { print n + 0 }')
  if [ $((rc & 3)) -ne 0 ]; then
    cat "$OUT/abidiff.log"
    ko "abidiff (tool error $rc)"
  elif [ $((rc & 8)) -ne 0 ] || { [ $((rc & 4)) -ne 0 ] && [ "$changed" -gt 0 ]; }; then
    cat "$OUT/abidiff.log"
    echo "  incompatible ABI change: bump KW_ABI_VERSION (src/ffi/mod.rs), regenerate the header"
    echo "  (KEYWARD_BLESS=1 cargo test --test c_header) and the baseline (scripts/test-c.sh --bless-abi)"
    ko "abidiff"
  elif [ $((rc & 4)) -ne 0 ]; then
    cat "$OUT/abidiff.log"
    ok "abidiff (compatible additions; refresh the baseline with --bless-abi when convenient)"
  else
    ok "abidiff (no change against ABI version $baseline_version)"
  fi
fi

echo
if [ "$failed" -ne 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "C ABI suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
