#!/usr/bin/env bash
# The C ABI suite (run by `make test` via scripts/test.sh): builds libkeyward (debug), then
# compiles tests/c/test_keyward.c as C11 (-Wall -Wextra -Werror -pedantic) and as C++17,
# links it against libkeyward.so and libkeyward.a, runs every variant, runs it under
# AddressSanitizer + UndefinedBehaviorSanitizer and under valgrind memcheck, compiles and
# runs the README example (examples/c/quickstart.c) through the pkg-config file, and checks
# the ABI against the abidw baseline in abi/ with abidiff.
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
LIB="$ROOT/target/debug"
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

if [ "${1:-}" = "--bless-abi" ]; then
  abidw_current >"$ABI_DIR/libkeyward.abi"
  abi_version_of_header >"$ABI_DIR/ABI_VERSION"
  echo "regenerated abi/libkeyward.abi for ABI version $(cat "$ABI_DIR/ABI_VERSION"); commit it"
  exit 0
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
compile c11-shared gcc $CFLAGS_C "$SRC" -o "$OUT/c11-shared" -L"$LIB" -lkeyward -Wl,-rpath,"$LIB" &&
  run c11-shared env KW_FORK_CYCLES="${KW_FORK_CYCLES:-1000}" "$OUT/c11-shared" "$VECTORS" &&
  { grep '^fork stress' "$OUT/c11-shared.log" | sed 's/^/        /' || true; }
# shellcheck disable=SC2086
compile c11-static gcc $CFLAGS_C "$SRC" -o "$OUT/c11-static" "$LIB/libkeyward.a" $STATIC_LIBS &&
  run c11-static "$OUT/c11-static" "$VECTORS"
# shellcheck disable=SC2086
compile cxx17-shared g++ $CFLAGS_CXX "$SRC" -x none -o "$OUT/cxx17-shared" -L"$LIB" -lkeyward -Wl,-rpath,"$LIB" &&
  run cxx17-shared "$OUT/cxx17-shared" "$VECTORS"
# shellcheck disable=SC2086
compile cxx17-static g++ $CFLAGS_CXX "$SRC" -x none -o "$OUT/cxx17-static" "$LIB/libkeyward.a" $STATIC_LIBS &&
  run cxx17-static "$OUT/cxx17-static" "$VECTORS"

# AddressSanitizer + UndefinedBehaviorSanitizer (the C side instrumented; Rust's own
# accesses are checked by the Rust tests and by valgrind below).
# shellcheck disable=SC2086
compile asan-ubsan gcc $CFLAGS_C -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
  "$SRC" -o "$OUT/asan-ubsan" -L"$LIB" -lkeyward -Wl,-rpath,"$LIB" &&
  run asan-ubsan env ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
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

# --- the README example through the pkg-config file ---------------------------------------
echo "example (pkg-config)"
mkdir -p "$OUT/pkgconfig"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
sed -e "s|@PREFIX@|$ROOT|" -e "s|@LIBDIR@|$LIB|" -e "s|@INCLUDEDIR@|$ROOT/include|" -e "s|@VERSION@|$version|" \
  include/keyward.pc.in >"$OUT/pkgconfig/keyward.pc"
export PKG_CONFIG_PATH="$OUT/pkgconfig"
# shellcheck disable=SC2046
if gcc -std=c11 -Wall -Wextra -Werror -pedantic examples/c/quickstart.c $(pkg-config --cflags --libs keyward) \
  -Wl,-rpath,"$LIB" -o "$OUT/quickstart" 2>"$OUT/quickstart.build.log"; then
  rm -f "$OUT/example.redb" "$OUT/example.redb.pepper" "$OUT/example.redb.kwsync"
  run example-shared "$OUT/quickstart" "$OUT/example.redb"
else
  cat "$OUT/quickstart.build.log"
  ko "example: compile"
fi
# shellcheck disable=SC2046
if gcc -std=c11 examples/c/quickstart.c $(pkg-config --cflags keyward) "$LIB/libkeyward.a" \
  $(pkg-config --static --libs-only-l keyward | sed 's/-lkeyward//') -o "$OUT/quickstart-static" \
  2>"$OUT/quickstart-static.build.log"; then
  rm -f "$OUT/example2.redb" "$OUT/example2.redb.pepper" "$OUT/example2.redb.kwsync"
  run example-static "$OUT/quickstart-static" "$OUT/example2.redb"
else
  cat "$OUT/quickstart-static.build.log"
  ko "example-static: compile"
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
