#!/usr/bin/env bash
# Builds the keyward_native experiment (keyward_native.c) against include/keyward.h and the
# release libkeyward, in a scratch copy (phpize writes its files there, not here).
#
#   bash benches/php-ext/build.sh      # prints the path of keyward_native.so
#
# Needs phpize (Debian: php8.2-dev; installed with apt-get when missing) and
# target/release/libkeyward.so (cargo build --release --lib). The module's rpath points at
# target/release: load it with php -d extension=<printed path>.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$ROOT/target/php-ext"
LIBDIR=${KEYWARD_LIBDIR:-$ROOT/target/release}
[[ -f $LIBDIR/libkeyward.so ]] || { echo "no $LIBDIR/libkeyward.so: cargo build --release --lib first" >&2; exit 2; }
if ! command -v phpize >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "php$(php -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;')-dev" >/dev/null
fi
# The module needs the library by its soname (libkeyward.so.1), which cargo does not create.
soname=$(objdump -p "$LIBDIR/libkeyward.so" | awk '/SONAME/ { print $2 }')
[[ -z $soname || -e $LIBDIR/$soname ]] || ln -s libkeyward.so "$LIBDIR/$soname"
rm -rf "$OUT/build" && mkdir -p "$OUT/build"
cp "$HERE/config.m4" "$HERE/keyward_native.c" "$OUT/build/"
(
  cd "$OUT/build"
  phpize >/dev/null
  KEYWARD_ROOT="$ROOT" KEYWARD_LIBDIR="$LIBDIR" ./configure --enable-keyward-native CFLAGS="-O2 -Wall -Wextra -Werror -Wno-unused-parameter" >/dev/null
  make -s >/dev/null
) >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log" >&2; exit 1; }
cp "$OUT/build/modules/keyward_native.so" "$OUT/keyward_native.so"
echo "$OUT/keyward_native.so"
