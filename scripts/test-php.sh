#!/usr/bin/env bash
# The PHP binding suite (run by `make test` via scripts/test.sh): builds libkeyward (debug,
# with the `test-hooks` feature whose kw_test_panic the panic test calls:
# scripts/build-test-lib.sh),
# checks that bindings/php's header copies match include/keyward.h, runs the PHPUnit suites
# (unit: the shared vectors, every API function, bad input, the header copy and struct
# layout, middleware, guard, error details; laravel: the Laravel integration in a real Laravel 8
# application from Debian's php-laravel-framework; fpm: two real PHP-FPM pools driven over FastCGI
# with cgi-fcgi), the README's Composer application against the C library installed by
# `make install` to a temporary prefix, and a short run of bindings/php/bench.php.
#
#   scripts/test-php.sh           run everything
#   scripts/test-php.sh --bench   build the release library and record the figures of
#                                 BENCHMARKS.md (PHP) (bench.php + the PHP-FPM per-request
#                                 cost) into target/php-bench/
#
# Non-interactive; installs missing Debian packages with apt-get: php-cli (with FFI),
# php-fpm, libfcgi-bin (cgi-fcgi), phpunit, php-psr-http-message, php-psr-http-factory,
# php-nyholm-psr7, php-sqlite3, php-laravel-framework (the illuminate/* components), gcc, composer,
# php-dev (phpize, for the optional extension).
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
command -v composer >/dev/null || need+=(composer)
command -v phpize >/dev/null || need+=(php-dev)
{ command -v php-fpm || command -v php-fpm8.2 || ls /usr/sbin/php-fpm* ; } >/dev/null 2>&1 || need+=(php-fpm)
for pkg in php-psr-http-message php-psr-http-factory php-nyholm-psr7 php-sqlite3 php-laravel-framework; do
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
echo "building libkeyward (debug, --features test-hooks,postgres, target/test-hooks)"
KEYWARD_LIB="$(bash "$ROOT/scripts/build-test-lib.sh")/libkeyward.so"
export KEYWARD_LIB

echo "header copies (bindings/php/bin/generate-header.php --check)"
php "$PKG/bin/generate-header.php" --check

# tests/Unit/UpstreamTest.php (stores with an upstream PostgreSQL) runs host B's replicator
# with the CLI built with the feature; it starts its own servers (scripts/pg-test-server.sh).
if [ -z "${KEYWARD_CLI:-}" ]; then
  echo "building the CLI (cargo build -p keyward-cli --features postgres) for UpstreamTest"
  (cd "$ROOT" && cargo build -p keyward-cli --features postgres --quiet)
  export KEYWARD_CLI="$ROOT/target/debug/keyward"
fi

# --- PHPUnit -------------------------------------------------------------------------------
echo "PHPUnit (unit + Laravel + PHP-FPM)"
KEYWARD_REQUIRE_FPM=1 KEYWARD_REQUIRE_LARAVEL=1 phpunit -c "$PKG/phpunit.xml.dist" --do-not-cache-result

# --- the optional extension (bindings/php/ext) --------------------------------------------
# Built as its README says (phpize, configure, make: scripts/build-php-ext.sh), then the three
# suites again with it loaded: every verify of Guard, Middleware and the Laravel guard goes
# through it there, ExtensionTest compares it with FFI (required, not skipped) and the pools
# load it from their php.ini.
echo "keyward_native extension (scripts/build-php-ext.sh), the suites again with it loaded"
ext="$(bash "$ROOT/scripts/build-php-ext.sh")"
KEYWARD_REQUIRE_EXTENSION=1 KEYWARD_PHP_EXTENSION="$ext" KEYWARD_REQUIRE_FPM=1 KEYWARD_REQUIRE_LARAVEL=1 \
  php -d extension="$ext" "$(command -v phpunit)" -c "$PKG/phpunit.xml.dist" --do-not-cache-result

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

# --- the README's Composer app, with the C library installed by `make install` -----------
# A fresh application directory beside "keyward" (a symlink to this repository), the README's
# composer.json (bindings/php/examples/app/composer.json: a path repository, packagist off),
# `composer require keyward/keyward` as the README says, the C library installed by
# `make install` to a temporary prefix that the dynamic loader is pointed at with
# LD_LIBRARY_PATH (nothing is written to /usr), and KEYWARD_LIB unset: the binding must find
# libkeyward.so.<N> through the loader by itself.
echo "Composer app (composer require keyward/keyward, make install to a temporary prefix)"
started=$SECONDS
version=$(awk '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { gsub(/^version *= *"|".*$/, ""); print; exit }' Cargo.toml)
composer_version=$(php -r 'echo json_decode(file_get_contents($argv[1]), true)["version"] ?? "";' "$PKG/composer.json")
[ "$composer_version" = "$version" ] ||
  { echo "bindings/php/composer.json has version '$composer_version', Cargo.toml $version: keep them equal" >&2; exit 1; }
app="$tmp/composer"
mkdir -p "$app/app/examples" "$app/composer-home"
ln -s "$ROOT" "$app/keyward"
# The release build goes to a cache under target/ shared with scripts/test-c.sh (a build from
# scratch costs minutes; cargo reuses it when nothing changed).
CARGO_TARGET_DIR="$ROOT/target" make --no-print-directory install PREFIX="$app/prefix" >"$app/install.log" 2>&1 ||
  { cat "$app/install.log" >&2; exit 1; }
cp "$PKG/examples/app/composer.json" "$app/app/composer.json"
cp "$PKG/examples/quickstart.php" "$app/app/examples/"
(cd "$app/app" && env -u KEYWARD_LIB COMPOSER_ALLOW_SUPERUSER=1 COMPOSER_HOME="$app/composer-home" \
  composer require keyward/keyward) >"$app/composer.log" 2>&1 || { cat "$app/composer.log" >&2; exit 1; }
grep -q '"keyward/keyward": "^'"$version"'"' "$app/app/composer.json" ||
  { cat "$app/app/composer.json" >&2; echo "composer require did not add keyward/keyward ^$version" >&2; exit 1; }
soname="libkeyward.so.$(php -r 'require $argv[1]; echo Keyward\Abi::KW_ABI_VERSION;' "$PKG/src/Abi.php")"
loader_cache=$(ldconfig -p 2>/dev/null || true)
if ! grep -q "$soname " <<<"$loader_cache"; then
  # Control: without the loader path the library is not found, and the message says what to do.
  if out=$(cd "$app/app" && env -u KEYWARD_LIB -u LD_LIBRARY_PATH php examples/quickstart.php keys.redb 2>&1); then
    echo "the app ran without $soname on the loader's path: $out" >&2; exit 1
  fi
  grep -q "cannot load libkeyward from '$soname'.*make install" <<<"$out" ||
    { echo "unexpected message without the library: $out" >&2; exit 1; }
fi
out=$(cd "$app/app" && env -u KEYWARD_LIB LD_LIBRARY_PATH="$app/prefix/lib" php examples/quickstart.php keys.redb)
[ "$out" = "hello acct_42" ] || { echo "unexpected output of the Composer app: $out" >&2; exit 1; }
python3 -c 'import sys; sys.exit(open(sys.argv[2]).read() not in open(sys.argv[1]).read())' \
  README.md "$PKG/examples/app/composer.json" ||
  { echo "README.md (Use from PHP) does not show bindings/php/examples/app/composer.json verbatim" >&2; exit 1; }
echo "  ok: $out (KEYWARD_LIB unset, $soname from $app/prefix/lib; $((SECONDS - started)) s)"

# --- README "Faster under PHP-FPM": the extension built from the installed package ----------
# The README's commands in a fresh directory outside the repository, from the Composer app's
# vendor/keyward/keyward/ext; `make install` goes to INSTALL_ROOT instead of the system's PHP
# (and no phpenmod) so the test leaves the machine as it was; then the app's Guard verifies
# through it.
echo "README: the keyward_native extension from vendor/keyward/keyward/ext (phpize, configure, make)"
readme_copy='build=$(mktemp -d) && cp -r vendor/keyward/keyward/ext/. "$build" && cd "$build"'
readme_build='phpize && ./configure && make && sudo make install'
for line in "$readme_copy" "$readme_build"; do
  grep -qxF "$line" README.md || { echo "README.md no longer shows: $line (update this test)" >&2; exit 1; }
done
# shellcheck disable=SC2016 # the README's line, run as written
(cd "$app/app" && eval "$readme_copy" && trap 'rm -rf "$build"' EXIT &&
  phpize && ./configure && make && make install INSTALL_ROOT="$tmp/ext-root") >"$tmp/ext.log" 2>&1 ||
  { cat "$tmp/ext.log" >&2; echo "the README's extension build failed" >&2; exit 1; }
module="$tmp/ext-root$(php-config --extension-dir)/keyward_native.so"
[ -f "$module" ] || { echo "make install did not install $module" >&2; exit 1; }
# shellcheck disable=SC2016 # PHP code
out=$(cd "$app/app" && env -u KEYWARD_LIB LD_LIBRARY_PATH="$app/prefix/lib" php -d extension="$module" -r '
  require "vendor/autoload.php";
  $store = Keyward\Store::open("ext.redb");
  $key = $store->create("acct_ext", scopes: ["read"])->key;
  $verdict = Keyward\Guard::check(["read"], $store, ["HTTP_X_API_KEY" => $key]);
  $viaExtension = (new ReflectionProperty(Keyward\Store::class, "extensionVerify"))->getValue($store) !== 0;
  echo $verdict->owner(), " ", $viaExtension ? "extension" : "ffi";')
[ "$out" = "acct_ext extension" ] || { echo "unexpected output with the extension: $out" >&2; exit 1; }
echo "  ok: $out"


# --- the benchmark script still runs (a few keys, short; figures not checked) ------------
echo "bench.php (smoke run with the debug library)"
php "$PKG/bench.php" --keys 20 --seconds 0.1 >/dev/null

echo "PHP binding suite passed"
