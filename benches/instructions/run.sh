#!/usr/bin/env bash
# Instructions per request of each binding's request path, counted by valgrind's callgrind
# (deterministic: unlike wall-clock timings, a busy machine does not change them).
#
#   bash benches/instructions/run.sh                    # every binding
#   bash benches/instructions/run.sh python node php    # some of them
#   N1=200 N2=1200 bash benches/instructions/run.sh     # iteration counts (defaults)
#   bash benches/instructions/run.sh python python-api  # cffi ABI mode vs API mode
#   bash benches/instructions/run.sh python-api-no-fast python-api  # without / with keyward._kw_fast
#   KEEP_CG=1 bash benches/instructions/run.sh ...      # keep the callgrind files in
#                                                       # target/instructions/cg (cgdiff.py)
#   bash benches/instructions/run.sh php php-ext        # PHP: FFI only vs the keyward_native extension
#
# "python" runs the binding in cffi ABI mode (KEYWARD_FFI=abi); "python-api" compiles
# keyward._kw_api (bindings/python/build_api.py: cffi API mode, needs a C compiler and
# Python's headers) into a copy of the package and runs the same paths through it.
# "php-ext" builds the PHP binding's optional extension (scripts/build-php-ext.sh: phpize,
# Debian php8.2-dev) and runs the PHP-FPM paths with it loaded.
#
# Each path runs N1 and N2 times (Node: 5000 and 25000 after 20000 warm-up requests) in a
# fresh process under callgrind; (Ir(N2) - Ir(N1)) /
# (N2 - N1) is its cost per request, start-up cancelled. "<host> path" minus the host's
# "noauth" path (the same request loop, no keyward) is what keyward adds per request.
# The store is made once (64 keys, scope "read") with the background flush off (its thread
# would add instructions in proportion to wall time, which callgrind stretches); the
# usage counting itself is in every figure. Needs valgrind, the release library
# (cargo build --release), cffi for python3, koffi for node (bindings/node/node_modules),
# PHP with FFI for php. Results: a table on stdout and target/instructions/latest.json.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$ROOT/target/instructions"
N1=${N1:-200} N2=${N2:-1200}
LANGS=${*:-python node php}
export KEYWARD_LIB=${KEYWARD_LIB:-$ROOT/target/release/libkeyward.so}
[[ -f $KEYWARD_LIB ]] || { echo "no $KEYWARD_LIB: cargo build --release --lib first" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/keyward-instr.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PY=$(python3 -c 'import sys; print(sys.executable)')  # the interpreter itself, not a shim
export PYTHONPATH="$ROOT/bindings/python" PYTHONDONTWRITEBYTECODE=1 PYTHONHASHSEED=0  # one dict layout per run
"$PY" "$HERE/py_driver.py" setup "$WORK/keys.redb" "$WORK/keys.txt"

# ir N cmd...: instructions callgrind counts running cmd (every thread; "@N" replaced by N)
CG_TAG=""
ir() {
  local n=$1; shift
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "${@//@N/$n}" 2>"$WORK/cg.err" >/dev/null ||
    { cat "$WORK/cg.err" >&2; return 1; }
  if [[ -n ${KEEP_CG:-} ]]; then mkdir -p "$OUT/cg" && cp "$WORK/cg.out" "$OUT/cg/$CG_TAG-$n.out"; fi
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$WORK/cg.err"
}

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
measure() {  # measure LANG PATH cmd... (iteration counts N1, N2 unless n1/n2 are set)
  local lang=$1 path=$2 a b per lo=${n1:-$N1} hi=${n2:-$N2}; shift 2
  CG_TAG="$lang-$path"
  a=$(ir "$lo" "$@") b=$(ir "$hi" "$@")
  per=$(((b - a) / (hi - lo)))
  printf '%-7s %-22s %10d instructions/request\n' "$lang" "$path" "$per"
  printf '{"binding":"%s","path":"%s","instructions_per_request":%d,"n1":%d,"n2":%d}\n' "$lang" "$path" "$per" "$lo" "$hi" >>"$RESULTS"
}

for lang in $LANGS; do
  case $lang in
    python)
      for p in wsgi-noauth wsgi wsgi-stacked asgi-noauth asgi asgi-stacked verify verify-headers; do
        KEYWARD_FFI=abi measure python "$p" "$PY" "$HERE/py_driver.py" "$p" "$WORK/keys.redb" "$WORK/keys.txt" @N
      done ;;
    python-api | python-api-no-fast)
      # The package copied with the compiled modules beside it (python-api-no-fast: without
      # keyward._kw_fast, the middlewares' Python path); the same driver.
      pkg="$WORK/$lang"
      mkdir -p "$pkg"
      cp -r "$ROOT/bindings/python/keyward" "$pkg/"
      "$PY" "$ROOT/bindings/python/build_api.py" "$pkg" >/dev/null
      [[ $lang == python-api ]] || rm -f "$pkg"/keyward/_kw_fast*
      for p in wsgi-noauth wsgi wsgi-stacked asgi-noauth asgi asgi-stacked verify verify-headers; do
        PYTHONPATH="$pkg" KEYWARD_FFI=api \
          measure "$lang" "$p" "$PY" "$HERE/py_driver.py" "$p" "$WORK/keys.redb" "$WORK/keys.txt" @N
      done ;;
    node)
      # V8 compiles the path in the first thousands of requests: node_driver.js runs
      # WARMUP requests first and the counts are larger (JIT and GC leave +-2k of noise).
      for p in http-noauth http http-stacked verify verify-headers; do
        WARMUP=20000 n1=5000 n2=25000 measure node "$p" node "$HERE/node_driver.js" "$p" "$WORK/keys.redb" "$WORK/keys.txt" @N
      done ;;
    php)
      for p in psr15-noauth psr15 psr15-stacked guard fpm-first verify verify-headers; do
        measure php "$p" php -d ffi.enable=1 "$HERE/php_driver.php" "$p" "$WORK/keys.redb" "$WORK/keys.txt" @N
      done ;;
    php-ext)
      ext=$(bash "$ROOT/scripts/build-php-ext.sh")
      for p in fpm-noauth guard fpm-first verify-headers; do
        measure php-ext "$p" php -d ffi.enable=1 -d extension="$ext" "$HERE/php_driver.php" "$p" "$WORK/keys.redb" "$WORK/keys.txt" @N
      done ;;
    *) echo "unknown binding $lang (python, python-api, python-api-no-fast, node, php, php-ext)" >&2; exit 2 ;;
  esac
done
python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])], indent=1))' "$RESULTS" >"$OUT/latest.json"
