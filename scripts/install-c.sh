#!/usr/bin/env bash
# Installs keyward's C library (the `make install` of README.md, "Use from C"):
#
#   scripts/install-c.sh [--prefix P] [--no-build]      (make install PREFIX=P)
#
#   P/lib/libkeyward.so.<N>          the shared library, stripped, SONAME libkeyward.so.<N>
#                                    (N = KW_ABI_VERSION of src/ffi/mod.rs)
#   P/lib/libkeyward.so              symlink to it, for `cc ... -lkeyward`
#   P/lib/libkeyward.a               the static library (debug info stripped)
#   P/include/keyward.h              the header
#   P/lib/pkgconfig/keyward.pc       pkg-config, shared:  $(pkg-config --cflags --libs keyward)
#   P/lib/pkgconfig/keyward-static.pc  pkg-config, static: $(pkg-config --cflags --libs keyward-static)
#
# P defaults to /usr/local. The release library is built first (`cargo build --release --lib
# --features postgres`, into $CARGO_TARGET_DIR or target/) unless --no-build says to install
# what is already built (e.g. that build as yourself, then `sudo scripts/install-c.sh
# --no-build`). The installed library, like the ones the bindings carry, has PostgreSQL
# support (`kw_options.upstream`, README "Several hosts"): 2.9 MB more, and nothing runs
# until a store is opened with an upstream URL.
# It does not run ldconfig: after installing into a directory the dynamic loader searches
# (/usr/local/lib on Debian), run `ldconfig` as root; elsewhere link with an rpath
# (-Wl,-rpath,"$(pkg-config --variable=libdir keyward)") or set LD_LIBRARY_PATH.
# Non-interactive; needs cargo (unless --no-build), install, strip and sed.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
exec </dev/null

prefix=/usr/local
build=1
while [ $# -gt 0 ]; do
  case "$1" in
  --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
  --prefix=*) prefix=${1#--prefix=}; shift ;;
  --no-build) build=0; shift ;;
  -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
  *) echo "install-c.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$prefix" ] || { echo "install-c.sh: empty --prefix" >&2; exit 2; }
case "$prefix" in /*) ;; *) prefix="$caller_dir/$prefix" ;; esac
case "$prefix" in *[[:space:]'|&\$']*)
  echo "install-c.sh: the prefix cannot contain blanks, |, &, \\ or \$ (they break the pkg-config files)" >&2
  exit 2
  ;;
esac

# The ABI version (the SONAME's number: build.rs reads the same line) and the package version.
abi=$(sed -n 's/^pub const KW_ABI_VERSION: u32 = \([0-9][0-9]*\);$/\1/p' src/ffi/mod.rs)
version=$(awk '/^\[/ { in_package = ($0 == "[package]") }
  in_package && /^version *=/ { sub(/^version *= *"/, ""); sub(/".*$/, ""); print; exit }' Cargo.toml)
[ -n "$abi" ] || { echo "install-c.sh: KW_ABI_VERSION not found in src/ffi/mod.rs" >&2; exit 1; }
[ -n "$version" ] || { echo "install-c.sh: no [package] version in Cargo.toml" >&2; exit 1; }

# What a program linked with libkeyward.a needs besides it: the Rust standard library's system
# libraries on Linux (glibc), as `cargo rustc --release --lib --crate-type staticlib --
# --print native-static-libs` lists them. scripts/test-c.sh links the README example statically
# with exactly this list, so a missing library fails the tests.
native_static_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

release="${CARGO_TARGET_DIR:-$PWD/target}/release"
if [ "$build" -eq 1 ]; then
  echo "building libkeyward $version (release)"
  cargo build --release --lib --features postgres --quiet
fi
for f in libkeyward.so libkeyward.a; do
  [ -f "$release/$f" ] || { echo "install-c.sh: $release/$f is missing (build it: cargo build --release --lib --features postgres)" >&2; exit 1; }
done

libdir="$prefix/lib"
includedir="$prefix/include"
pcdir="$libdir/pkgconfig"
soname="libkeyward.so.$abi"
echo "installing libkeyward $version (ABI $abi) into $prefix"
install -d "$libdir" "$includedir" "$pcdir"

# Each file is written under a temporary name and renamed into place: a running program that
# has the old library mapped keeps it, and nobody sees a half-written file.
install -m 0755 "$release/libkeyward.so" "$libdir/.$soname.tmp"
strip --strip-unneeded "$libdir/.$soname.tmp" # the release profile keeps debug info (debug = 1)
mv -f "$libdir/.$soname.tmp" "$libdir/$soname"
ln -sfn "$soname" "$libdir/libkeyward.so"
install -m 0644 "$release/libkeyward.a" "$libdir/.libkeyward.a.tmp"
strip --strip-debug "$libdir/.libkeyward.a.tmp" # keeps the symbol table a static link needs
mv -f "$libdir/.libkeyward.a.tmp" "$libdir/libkeyward.a"
install -m 0644 include/keyward.h "$includedir/keyward.h"

subst() { # the template without its comment lines, filled in
  echo "# pkg-config file of keyward's C ABI, written by scripts/install-c.sh from include/keyward.pc.in"
  sed -e '/^#/d' -e "s|@PREFIX@|$prefix|g" -e "s|@LIBDIR@|\${prefix}/lib|g" -e "s|@INCLUDEDIR@|\${prefix}/include|g" \
    -e "s|@VERSION@|$version|g" -e "s|@NATIVE_STATIC_LIBS@|$native_static_libs|g" "$1"
}
subst include/keyward.pc.in >"$pcdir/keyward.pc"
# Static linking through pkg-config: `pkg-config --static --libs keyward` gives `-lkeyward`,
# which the linker resolves to libkeyward.so when both are installed; keyward-static names
# the archive itself.
cat >"$pcdir/keyward-static.pc" <<PC
# pkg-config file of keyward's C ABI, static: links libkeyward.a, so the program needs no
# libkeyward.so at run time. Written by scripts/install-c.sh.
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: keyward-static
Description: Embedded API-key engine: issue, verify, revoke and rotate API keys in-process (static library)
Version: $version
Cflags: -I\${includedir}
Libs: \${libdir}/libkeyward.a $native_static_libs
PC
chmod 0644 "$pcdir/keyward.pc" "$pcdir/keyward-static.pc"

echo "installed: $libdir/$soname (+ libkeyward.so, libkeyward.a), $includedir/keyward.h, $pcdir/keyward{,-static}.pc"
