#!/usr/bin/env bash
# The PHP binding suite (run by `make test` via scripts/test.sh): builds libkeyward (debug),
# checks that bindings/php's header copies match include/keyward.h, runs the PHPUnit suites
# (unit: the shared vectors, every API function, bad input, the header copy and struct
# layout, middleware, guard; fpm: two real PHP-FPM pools driven over FastCGI with cgi-fcgi)
# and a short run of bindings/php/bench.php.
#
#   scripts/test-php.sh           run everything
#   scripts/test-php.sh --bench   build the release library and record the figures of
#                                 BENCHMARKS.md (PHP) (bench.php + the PHP-FPM per-request
#                                 cost) into target/php-bench/
#
# Non-interactive; installs missing Debian packages with apt-get: php-cli (with FFI),
# php-fpm, libfcgi-bin (cgi-fcgi), phpunit, php-psr-http-message, php-psr-http-factory,
# php-nyholm-psr7, php-sqlite3, gcc.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}" CARGO_TERM_COLOR=never RUST_BACKTRACE=0 COLUMNS="${COLUMNS:-100}"
exec </dev/null

ROOT="$PWD"
PKG="$ROOT/bindings/php"

# --- tools -------------------------------------------------------------------------------
need=()
command -v php >/dev/null || need+=(php-cli)
command -v phpunit >/dev/null || need+=(phpunit)
command -v cgi-fcgi >/dev/null || need+=(libfcgi-bin)
command -v gcc >/dev/null || need+=(gcc)
{ command -v php-fpm || command -v php-fpm8.2 || ls /usr/sbin/php-fpm* ; } >/dev/null 2>&1 || need+=(php-fpm)
for pkg in php-psr-http-message php-psr-http-factory php-nyholm-psr7 php-sqlite3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! php -r 'exit(extension_loaded("ffi") ? 0 : 1);'; then
  echo "the PHP FFI extension is not loaded (Debian: part of php8.x-common; enable extension=ffi)" >&2
  exit 1
fi
echo "$(php -r 'echo "PHP ", PHP_VERSION;'), $(phpunit --version | head -n 1)"

# --- bench mode ----------------------------------------------------------------------------
if [ "${1:-}" = "--bench" ]; then
  cargo build --release --lib --quiet
  out="$ROOT/target/php-bench"
  mkdir -p "$out"
  export KEYWARD_LIB="$ROOT/target/release/libkeyward.so"
  php "$PKG/bench.php" --keys 1000 --seconds 2 --json "$out/bench.json"
  KEYWARD_REQUIRE_FPM=1 KEYWARD_FPM_TIMING_DIR="$out" \
    phpunit -c "$PKG/phpunit.xml.dist" --testsuite fpm --filter 'testThePool|testPerRequestCost' >/dev/null
  cat "$out"/fpm-timing-*.json
  exit 0
fi

# --- build and header copy ---------------------------------------------------------------
echo "building libkeyward (debug)"
cargo build --lib --quiet
export KEYWARD_LIB="$ROOT/target/debug/libkeyward.so"

echo "header copies (bindings/php/bin/generate-header.php --check)"
php "$PKG/bin/generate-header.php" --check

# --- PHPUnit -------------------------------------------------------------------------------
echo "PHPUnit (unit + PHP-FPM)"
KEYWARD_REQUIRE_FPM=1 phpunit -c "$PKG/phpunit.xml.dist" --do-not-cache-result

# --- the README example, as a Composer project would run it -------------------------------
echo "example (bindings/php/examples/quickstart.php)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/examples" "$tmp/vendor"
cp "$PKG/examples/quickstart.php" "$tmp/examples/"
printf '<?php require %s;\n' "'$PKG/tests/autoload.php'" >"$tmp/vendor/autoload.php"
out="$(php "$tmp/examples/quickstart.php" "$tmp/keys.redb")"
[ "$out" = "hello acct_42" ] || { echo "unexpected output: $out" >&2; exit 1; }
python3 -c 'import sys; sys.exit(open(sys.argv[2]).read() not in open(sys.argv[1]).read())' \
  README.md "$PKG/examples/quickstart.php" ||
  { echo "README.md (Use from PHP) does not show bindings/php/examples/quickstart.php verbatim" >&2; exit 1; }

# --- the benchmark script still runs (a few keys, short; figures not checked) ------------
echo "bench.php (smoke run with the debug library)"
php "$PKG/bench.php" --keys 20 --seconds 0.1 >/dev/null

echo "PHP binding suite passed"
