#!/usr/bin/env bash
# Builds the PHP binding's optional extension (bindings/php/ext, keyward_native) the way its
# README tells users to (phpize, ./configure, make), in a scratch copy under
# target/php-ext/build so that phpize's files stay out of the source tree, and prints the
# path of the module (target/php-ext/keyward_native.so). Used by scripts/test-php.sh and
# benches/http/run.sh.
#
# Installs the PHP headers (Debian php<major>.<minor>-dev) with apt-get when phpize is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/target/php-ext"
if ! command -v phpize >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  pkg="php$(php -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;')-dev"
  echo "installing $pkg (phpize, the PHP headers)" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$pkg" >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$pkg" >/dev/null; }
fi
rm -rf "$OUT/build" && mkdir -p "$OUT/build"
cp "$ROOT"/bindings/php/ext/{config.m4,keyward_native.c,keyward.h} "$OUT/build/"
(
  cd "$OUT/build"
  phpize
  ./configure CFLAGS="-O2 -g -Wall -Wextra -Werror -Wno-unused-parameter"
  make
) >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log" >&2; echo "building keyward_native failed (log above)" >&2; exit 1; }
cp "$OUT/build/modules/keyward_native.so" "$OUT/keyward_native.so"
echo "$OUT/keyward_native.so"
