#!/usr/bin/env bash
# keyward end to end: requests/s of real HTTP servers with and without keyward (issue 15).
#
#   bash benches/http/run.sh              # 100 000 keys, 2 rounds, 8 s per variant in 4 slices
#   bash benches/http/run.sh --quick      # 2 000 keys, 1 round of 2 s: proves the machinery
#   bash benches/http/run.sh --keys N --rounds R --seconds S --slices K --hosts gunicorn,node
#   bash benches/http/run.sh --zipf 1.0    # keys drawn from a Zipf distribution (default: uniform)
#
# Hosts, each with 4 worker processes on 127.0.0.1: gunicorn (sync, WSGI), uvicorn (ASGI),
# PHP-FPM (static pool, opcache.preload + ffi.enable=preload, the README's production set-up)
# behind nginx (FastCGI), and a Node cluster (node:http). Variants, one trivial JSON endpoint
# each: noauth, sqlite (SHA-256 + indexed lookup), sanctum (lookup + UPDATE last_used_at,
# uses), keyward (the binding's own middleware or Guard, scope "read"), floor (the key looked
# up as is in an in-process map of every key: no hashing, no counting, no store; what any
# lookup of a random key among N costs the host, the bound below keyward). Every request carries
# one valid key (wrk + keys.lua), every key equally often by default, or with --zipf s from a
# Zipf distribution of exponent s over the keys in random order (a few keys make most
# requests, as an API's customers do). Rounds are interleaved: in each round every host is
# started, runs every variant and is stopped gracefully, after which keyward's flushed usage
# counts are compared with the requests wrk saw. Inside a round each variant's S seconds are
# cut into K slices (default 4 of 2 s) and the variants take turns slice by slice, the order
# rotated per round and reversed every other slice (A B C D E, E D C B A, ...): a drift of the
# machine's speed during a round (other VMs, the usage flush, a load spike) then falls on
# every variant alike instead of on whichever ran in that window. A variant's figures are the
# sums of its slices (requests, duration, CPU); the table ends with each host's medians over
# the rounds. Beside requests/s, each run reports the server processes' own CPU time per
# request (user + system of every master and worker, from /proc; wrk's share of the CPUs
# excluded) and its excess over the same host's no-auth run: what keyward costs a request, in
# microseconds of CPU; and the CPU of keyward's background usage flush per keyward request.
#
# The bindings as installed: Python's keyward._kw_api (cffi API mode) and keyward._kw_fast (the
# middlewares' usual request in C) are compiled into a copy of the package
# (KW_BENCH_PY_FFI=abi: the package without them, cffi ABI mode; KW_BENCH_PY_FFI=api-no-fast:
# API mode without keyward._kw_fast, the middlewares' Python path). PHP with
# the package's optional extension keyward_native built (bindings/php/ext, phpize) and loaded
# as its README's PHP-FPM set-up says (KW_BENCH_PHP=ffi: without it, FFI only).
#
# KW_BENCH_FLUSH_MS=N opens the Python and Node apps' stores with a flush interval of N ms
# (default 1 000; e.g. 3600000 leaves the usage flush to the graceful stop: what the flush
# costs a request, by A/B). PHP-FPM keeps the default.
#
# KW_BENCH_LIB=path serves that libkeyward.so (e.g. another commit's release build) with this
# tree's bindings and apps: an A/B of a library change. Its C ABI must be this tree's.
#
# KW_BENCH_PROFILING=1 serves the library's profiling build (the release code, with symbols
# for perf and callgrind) instead of the stripped release build.
#
# Installs what is missing (apt: wrk nginx php-fpm php-cli php-sqlite3; a venv and node
# modules under target/http-bench/), builds the release library. Results:
# target/http-bench/results-<time>.json (and latest.json) plus a table on stdout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$ROOT/target/http-bench"

KEYS=100000 ROUNDS=2 DURATION=8 SLICES=4 ZIPF="" WARMUP=1 CONNECTIONS=16 THREADS=2 WORKERS=4 QUICK=0
HOSTS="gunicorn uvicorn php-fpm node"
VARIANTS=(noauth sqlite sanctum keyward floor)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --keys) KEYS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --seconds) DURATION=$2; shift ;;
    --slices) SLICES=$2; shift ;;
    --zipf) ZIPF=$2; shift ;;
    --hosts) HOSTS=${2//,/ }; shift ;;
    --quick) QUICK=1 KEYS=2000 ROUNDS=1 DURATION=2 SLICES=2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for n in "$KEYS" "$ROUNDS" "$DURATION" "$SLICES"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "--keys, --rounds, --seconds and --slices take positive integers" >&2; exit 2; }
done
((DURATION % SLICES == 0)) || { echo "--seconds ($DURATION) must be a multiple of --slices ($SLICES): wrk runs whole seconds" >&2; exit 2; }
SLICE_SECONDS=$((DURATION / SLICES))
[[ -z $ZIPF || $ZIPF =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "--zipf takes an exponent, e.g. 1.0" >&2; exit 2; }
export KW_BENCH_ZIPF=$ZIPF  # read by keys.lua in every wrk thread
KEY_DISTRIBUTION=uniform
[[ -z $ZIPF ]] || KEY_DISTRIBUTION="zipf $ZIPF"
for h in $HOSTS; do
  [[ " gunicorn uvicorn php-fpm node " == *" $h "* ]] || { echo "unknown host $h" >&2; exit 2; }
done
PHP_BINDING=${KW_BENCH_PHP:-extension}
[[ $PHP_BINDING == extension || $PHP_BINDING == ffi ]] || { echo "KW_BENCH_PHP is extension (default) or ffi" >&2; exit 2; }

log() { printf '[http-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---------------------------------------------------------------- cleanup: every server stops
RUN=""          # scratch directory: store, SQLite file, keys (mode 0600), configs, logs
SERVER_PIDS=()  # pids of the servers this script started and has not stopped yet
POLICY_RC=""    # a policy-rc.d this script wrote (so apt starts no service), removed at exit

# Stops one process we started: $2 (TERM, QUIT) first, KILL (it and its children) after 30 s.
stop_pid() {
  local pid=$1 sig=$2 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -s "$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "pid $pid did not stop within 30 s after SIG$sig: killing it and its children"
  pkill -KILL -P "$pid" 2>/dev/null || true
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return 1
}

cleanup() {
  local status=$? pid
  for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid" TERM || true; done
  SERVER_PIDS=()
  [[ -n $POLICY_RC ]] && rm -f "$POLICY_RC"
  if [[ -n $RUN && -d $RUN ]]; then
    if ((status != 0)); then
      rm -rf "$OUT/failed-logs" && mkdir -p "$OUT/failed-logs"
      cp "$RUN"/logs/* "$OUT/failed-logs/" 2>/dev/null || true
      log "failed (exit $status); server logs copied to $OUT/failed-logs/"
    fi
    rm -rf "$RUN"  # the key file too
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- install what is missing
install_apt() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
  command -v php >/dev/null || missing+=(php-cli)
  compgen -G '/usr/sbin/php-fpm*' >/dev/null || command -v php-fpm >/dev/null || missing+=(php-fpm)
  if command -v php >/dev/null; then
    php -m | grep -qx pdo_sqlite || missing+=(php-sqlite3)
    php -m | grep -qx FFI || missing+=(php-common)
    php -m | grep -qx 'Zend OPcache' || missing+=(php-opcache)
  else
    missing+=(php-sqlite3)
  fi
  ((${#missing[@]})) || return 0
  log "apt-get install ${missing[*]}"
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then  # installing must start no service (nginx on :80)
    POLICY_RC=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC" && chmod 755 "$POLICY_RC"
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build_rust() {
  log "cargo build --release --lib -p keyward; benches/http/kwtool"
  (cd "$ROOT" && cargo build --quiet --release --lib -p keyward)
  cargo build --quiet --release --manifest-path "$HERE/kwtool/Cargo.toml" --target-dir "$OUT/cargo"
  KWTOOL="$OUT/cargo/release/kwtool"
  LIB="$ROOT/target/release/libkeyward.so"
  if [[ -n ${KW_BENCH_PROFILING:-} ]]; then  # symbols for perf and callgrind, same optimisation
    (cd "$ROOT" && cargo build --quiet --profile profiling --lib -p keyward)
    LIB="$ROOT/target/profiling/libkeyward.so"
    log "library: the profiling build (release code with symbols)"
  fi
  if [[ -n ${KW_BENCH_LIB:-} ]]; then  # another build's library, for an A/B of library changes
    [[ -f $KW_BENCH_LIB ]] || { echo "KW_BENCH_LIB=$KW_BENCH_LIB: no such file" >&2; exit 2; }
    LIB=$(cd "$(dirname "$KW_BENCH_LIB")" && pwd)/$(basename "$KW_BENCH_LIB")
    log "library: $LIB (KW_BENCH_LIB)"
  fi
}

install_python() {
  VENV="$OUT/venv"
  if ! "$VENV/bin/python" -c 'import gunicorn, uvicorn, uvloop, httptools, cffi, setuptools' 2>/dev/null; then
    log "venv $VENV: pip install gunicorn uvicorn[standard] cffi setuptools"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check gunicorn 'uvicorn[standard]' cffi setuptools
  fi
}

install_node() {
  local dir="$OUT/node"
  if ! (cd "$dir" 2>/dev/null && node -e "require('koffi'); new (require('better-sqlite3'))(':memory:')" 2>/dev/null); then
    log "npm install koffi better-sqlite3 in $dir (better-sqlite3 compiles from source: minutes)"
    mkdir -p "$dir"
    [[ -f $dir/package.json ]] || echo '{"name": "keyward-http-bench-deps", "private": true}' >"$dir/package.json"
    # better-sqlite3 12: 13.x needs Node 22. nodedir: the installed Node's headers (no download).
    (cd "$dir" && npm_config_nodedir=/usr npm install --silent --no-audit --no-fund koffi@3.3.4 better-sqlite3@12.11.1)
  fi
  ln -sfn "$ROOT/bindings/node" "$dir/node_modules/keyward"  # require('keyward'): the repo's package
}

# ---------------------------------------------------------------- keys and data
prepare_data() {
  RUN=$(mktemp -d /tmp/keyward-http-bench.XXXXXX)
  chmod 755 "$RUN"
  mkdir -p "$RUN/data" "$RUN/logs" "$RUN/lib" "$RUN/php/app" "$RUN/php/tmp"
  mkdir -m 700 "$RUN/secret"
  log "creating $KEYS keys (keyward store, then the SQLite table)"
  "$KWTOOL" create "$RUN/data/keys.redb" "$KEYS" "$RUN/secret/keys.txt" >/dev/null
  python3 "$HERE/python/make_sqlite.py" "$RUN/secret/keys.txt" "$RUN/data/tokens.sqlite" >/dev/null
  cp "$LIB" "$RUN/lib/libkeyward.so.1"  # readable by the PHP-FPM workers (www-data)
  # The Python package as pip installs it: with keyward._kw_api and keyward._kw_fast (API mode)
  # unless KW_BENCH_PY_FFI says otherwise.
  PY_FFI=${KW_BENCH_PY_FFI:-api} PYPKG="$RUN/python"
  [[ $PY_FFI == api || $PY_FFI == abi || $PY_FFI == api-no-fast ]] ||
    { echo "KW_BENCH_PY_FFI is api (default), abi or api-no-fast" >&2; exit 2; }
  mkdir -p "$PYPKG" && cp -r "$ROOT/bindings/python/keyward" "$PYPKG/"
  rm -f "$PYPKG"/keyward/_kw_api* "$PYPKG"/keyward/_kw_fast*
  if [[ -n ${VENV:-} ]]; then
    [[ $PY_FFI == abi ]] || "$VENV/bin/python" "$ROOT/bindings/python/build_api.py" "$PYPKG" >/dev/null
    [[ $PY_FFI != api-no-fast ]] || rm -f "$PYPKG"/keyward/_kw_fast*
    log "Python binding: cffi $PY_FFI mode"
  fi
  export KW_BENCH_KEYS="$RUN/secret/keys.txt" KW_BENCH_STORE="$RUN/data/keys.redb" KW_BENCH_SQLITE="$RUN/data/tokens.sqlite"
}

# The PHP application as production lays it out: the package in vendor/keyward/keyward, a
# php.ini with the README's preload lines (root master, workers as www-data), a static pool.
prepare_php() {
  local app="$RUN/php/app" pkg="$RUN/php/app/vendor/keyward/keyward"
  FPM=$(command -v php-fpm || compgen -G '/usr/sbin/php-fpm*' | head -n1)
  mkdir -p "$pkg"
  cp -r "$ROOT/bindings/php/"{preload.php,keyward.h,keyward.preload.h,keyward-libc.preload.h,src,bin} "$pkg/"
  cp "$HERE/php/"*.php "$app/"
  # The floor variant's array of every key (floor.php).
  # shellcheck disable=SC2016 # PHP code: the $ signs are PHP's
  php -r '$keys = array_fill_keys(file($argv[1], FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES), ["read"]);
          file_put_contents($argv[2], "<?php\nreturn " . var_export($keys, true) . ";\n");' \
    "$KW_BENCH_KEYS" "$app/floor_keys.php"
  if [[ $PHP_BINDING == extension ]]; then
    cp "$(bash "$ROOT/scripts/build-php-ext.sh")" "$RUN/lib/keyward_native.so"
    log "PHP: the keyward_native extension loaded (KW_BENCH_PHP=ffi: FFI only)"
  fi
  touch "$RUN/logs/php-errors.log" && chown www-data: "$RUN/logs/php-errors.log"
  # The header naming the library's path, for ffi.preload. (bin/preload-header.php, which the
  # README names for this, fails: it does not load Keyward\Abi. The same call, autoloaded:)
  # shellcheck disable=SC2016 # PHP code: the $ signs are PHP's
  php -r 'spl_autoload_register(fn ($c) => require $argv[1] . "/src/" . strtr(substr($c, 8), "\\", "/") . ".php");
          file_put_contents($argv[3], Keyward\Library::preloadHeader($argv[2]));' \
    "$pkg" "$RUN/lib/libkeyward.so.1" "$RUN/php/keyward.h"
  cat >"$RUN/php/php.ini" <<EOF
ffi.enable = preload
opcache.enable = 1
opcache.preload = $pkg/preload.php
opcache.preload_user = www-data
ffi.preload = $RUN/php/keyward.h:$pkg/keyward-libc.preload.h
display_errors = 0
log_errors = 1
error_log = $RUN/logs/php-errors.log
EOF
  [[ $PHP_BINDING != extension ]] || echo "extension = $RUN/lib/keyward_native.so" >>"$RUN/php/php.ini"
  cat >"$RUN/php/php-fpm.conf" <<EOF
[global]
pid = $RUN/php/fpm.pid
error_log = $RUN/logs/php-fpm.log
daemonize = no
process_control_timeout = 10s

[bench]
user = www-data
group = www-data
listen = $RUN/php/fpm.sock
listen.owner = www-data
listen.group = www-data
pm = static
pm.max_children = $WORKERS
clear_env = yes
env[KEYWARD_STORE] = $KW_BENCH_STORE
env[KW_BENCH_SQLITE] = $KW_BENCH_SQLITE
EOF
  cat >"$RUN/php/nginx.conf" <<EOF
daemon off;
user www-data;
worker_processes auto;
pid $RUN/php/nginx.pid;
error_log $RUN/logs/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $RUN/php/tmp/body;
  fastcgi_temp_path $RUN/php/tmp/fastcgi;
  proxy_temp_path $RUN/php/tmp/proxy;
  uwsgi_temp_path $RUN/php/tmp/uwsgi;
  scgi_temp_path $RUN/php/tmp/scgi;
  server {
    listen 127.0.0.1:18103;
    location ~ ^/(noauth|sqlite|sanctum|keyward|floor)\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $app/\$1.php;
      fastcgi_pass unix:$RUN/php/fpm.sock;
    }
  }
}
EOF
}

# ---------------------------------------------------------------- hosts: start, stop
declare -A PORT=([gunicorn]=18101 [uvicorn]=18102 [php-fpm]=18103 [node]=18104)

start_host() {
  local host=$1 log="$RUN/logs/$1.log" port=${PORT[$1]}
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
    echo "port $port is already in use: stop what listens there" >&2; return 1
  fi
  chown -R www-data:www-data "$RUN/data"  # PHP's workers write the store and the SQLite file
  local pyenv=(env KEYWARD_LIB="$LIB" KEYWARD_FFI="${PY_FFI%-no-fast}" PYTHONPATH="$PYPKG:$HERE/python" PYTHONPYCACHEPREFIX="$OUT/pycache")
  case $host in
    gunicorn)
      "${pyenv[@]}" "$VENV/bin/gunicorn" -c "$HERE/python/gunicorn_conf.py" --preload \
        -b "127.0.0.1:$port" wsgi_app:app >>"$log" 2>&1 </dev/null &
      SERVER_PIDS+=($!) ;;
    uvicorn)
      "${pyenv[@]}" "$VENV/bin/uvicorn" asgi_app:app --host 127.0.0.1 --port "$port" \
        --workers "$WORKERS" --no-access-log --log-level warning >>"$log" 2>&1 </dev/null &
      SERVER_PIDS+=($!) ;;
    php-fpm)
      "$FPM" --nodaemonize --fpm-config "$RUN/php/php-fpm.conf" -c "$RUN/php/php.ini" >>"$log" 2>&1 </dev/null &
      SERVER_PIDS+=($!)
      wait_for "php-fpm socket" test -S "$RUN/php/fpm.sock"
      nginx -c "$RUN/php/nginx.conf" -e "$RUN/logs/nginx-error.log" >>"$log" 2>&1 </dev/null &
      SERVER_PIDS+=($!) ;;
    node)
      env KEYWARD_LIB="$LIB" NODE_PATH="$OUT/node/node_modules" PORT="$port" WORKERS="$WORKERS" \
        node "$HERE/node/cluster.js" >>"$log" 2>&1 </dev/null &
      SERVER_PIDS+=($!) ;;
  esac
  wait_for "$host on port $port" curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/noauth"
}

# Runs "$@" until it succeeds, 60 s at most, while the servers we started are alive.
wait_for() {
  local what=$1 i pid; shift
  for ((i = 0; i < 300; i++)); do
    "$@" 2>/dev/null && return 0
    for pid in "${SERVER_PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null || { echo "a server exited while waiting for $what; log:" >&2; tail -n 30 "$RUN"/logs/*.log >&2; return 1; }
    done
    sleep 0.2
  done
  echo "timed out waiting for $what" >&2; tail -n 30 "$RUN"/logs/*.log >&2; return 1
}

# Graceful stop, as the README says to stop each host so that usage counts are flushed:
# gunicorn and uvicorn SIGTERM, nginx and PHP-FPM SIGQUIT, Node's primary SIGTERM.
stop_host() {
  local host=$1 pid ok=0
  if [[ $host == php-fpm ]]; then
    stop_pid "${SERVER_PIDS[1]}" QUIT || ok=1  # nginx first, then the pool
    stop_pid "${SERVER_PIDS[0]}" QUIT || ok=1
  else
    for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid" TERM || ok=1; done
  fi
  SERVER_PIDS=()
  return $ok
}

# ---------------------------------------------------------------- measuring
# wrk against host $1, variant $2, for $3 seconds; prints the RESULT JSON of keys.lua.
wrk_run() {
  local out
  out=$(timeout $(($3 + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$3s" --timeout 5s \
    -s "$HERE/keys.lua" "http://127.0.0.1:${PORT[$1]}/$2" 2>&1) || { echo "wrk failed: $out" >&2; return 1; }
  grep '^RESULT ' <<<"$out" | cut -d' ' -f2-
}

# CPU time (clock ticks, user + system) and minor page faults of every process under the
# servers we started: what the host itself spends, without wrk's share of the same 2 CPUs (a
# per-request figure that a busy machine changes far less than requests/s). The third figure
# is the CPU of keyward's background flusher threads (named "keyward-flush"), included in
# the first: the flush of the usage counts runs when it is due, so its work lands in whichever
# variant's window is running then, and the report charges it to keyward's requests instead.
# Prints "ticks faults flush_ticks".
server_pids() { local p; for p in "$@"; do echo "$p"; server_pids $(pgrep -P "$p" || true); done; }
server_counters() {
  local ticks=0 faults=0 flush=0 p t fields minflt utime stime
  for p in $(server_pids "${SERVER_PIDS[@]}"); do
    fields=$(cut -d' ' -f10,14,15 "/proc/$p/stat" 2>/dev/null) || continue  # minflt utime stime
    read -r minflt utime stime <<<"$fields"
    ticks=$((ticks + utime + stime)) faults=$((faults + minflt))
    for t in /proc/"$p"/task/*; do
      [[ $(cat "$t/comm" 2>/dev/null) == keyward-flush ]] || continue
      fields=$(sed 's/.*) //' "$t/stat" 2>/dev/null | cut -d' ' -f12,13) || continue  # utime stime
      read -r utime stime <<<"$fields"
      flush=$((flush + utime + stime))
    done
  done
  echo "$ticks $faults $flush"
}

json_get() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, d))' "$1" "$2"; }
sanctum_uses() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select sum(uses) from personal_access_tokens").fetchone()[0])' "$KW_BENCH_SQLITE"; }

main() {
  mkdir -p "$OUT"
  local started load_before stamp
  started=$(date +%s)
  load_before=$(loadavg)
  log "load average before: $load_before ($(nproc) CPUs)"
  install_apt
  build_rust
  [[ " $HOSTS " == *" gunicorn "* || " $HOSTS " == *" uvicorn "* ]] && install_python
  [[ " $HOSTS " == *" node "* ]] && install_node
  prepare_data
  [[ " $HOSTS " == *" php-fpm "* ]] && prepare_php

  local runs="$RUN/runs.jsonl" checks="$RUN/checks.jsonl" round host variant i r requests
  : >"$runs"; : >"$checks"
  for ((round = 1; round <= ROUNDS; round++)); do
    for host in $HOSTS; do
      local kw_before sanctum_before kw_expected=0 kw_windows=0 sanctum_expected=0 sanctum_windows=0
      kw_before=$("$KWTOOL" uses "$KW_BENCH_STORE" | cut -d' ' -f1)  # "<uses> <refused>"
      sanctum_before=$(sanctum_uses)
      log "round $round/$ROUNDS: starting $host"
      start_host "$host"
      local order=() s
      for ((i = 0; i < ${#VARIANTS[@]}; i++)); do order+=("${VARIANTS[$(((i + round - 1) % ${#VARIANTS[@]}))]}"); done
      for ((s = 1; s <= SLICES; s++)); do
        local turn=("${order[@]}")
        if ((s % 2 == 0)); then  # every other slice in reverse: each variant's mean position alike
          turn=(); for ((i = ${#order[@]} - 1; i >= 0; i--)); do turn+=("${order[$i]}"); done
        fi
        for variant in "${turn[@]}"; do
          local warm='{"requests":0}' result before after
          if ((s == 1)); then warm=$(wrk_run "$host" "$variant" "$WARMUP"); fi  # first requests of each worker
          before=$(server_counters)
          result=$(wrk_run "$host" "$variant" "$SLICE_SECONDS")
          after=$(server_counters)
          for r in "$warm" "$result"; do
            requests=$(json_get "$r" requests)
            ((requests > 0)) || continue
            if [[ $variant == keyward ]]; then kw_expected=$((kw_expected + requests)) kw_windows=$((kw_windows + 1)); fi
            if [[ $variant == sanctum ]]; then sanctum_expected=$((sanctum_expected + requests)) sanctum_windows=$((sanctum_windows + 1)); fi
          done
          local b=($before) a=($after)
          printf '{"round":%d,"slice":%d,"host":"%s","variant":"%s","load":"%s","wrk":%s,"warmup_requests":%s,"server_cpu_ticks":%d,"server_minor_faults":%d,"flush_cpu_ticks":%d,"ticks_per_s":%d}\n' \
            "$round" "$s" "$host" "$variant" "$(loadavg)" "$result" "$(json_get "$warm" requests)" \
            $((a[0] - b[0])) $((a[1] - b[1])) $((a[2] - b[2])) "$(getconf CLK_TCK)" >>"$runs"
          log "  $host $variant (slice $s/$SLICES): $(python3 "$HERE/report.py" --line "$result")"
        done
      done
      log "round $round/$ROUNDS: stopping $host (graceful)"
      local stopped=true
      stop_host "$host" || stopped=false
      local kw_after kw_refused sanctum_after counts
      counts=$("$KWTOOL" uses "$KW_BENCH_STORE")
      kw_after=${counts% *} kw_refused=${counts#* }
      sanctum_after=$(sanctum_uses)
      # wrk stops with up to one request in flight per connection: the server may have
      # answered (and counted) it without wrk counting it.
      printf '{"round":%d,"host":"%s","graceful_stop":%s,"keyward_counted":%d,"keyward_wrk_requests":%d,"keyward_refused_total":%d,"sanctum_counted":%d,"sanctum_wrk_requests":%d,"in_flight_max_keyward":%d,"in_flight_max_sanctum":%d}\n' \
        "$round" "$host" "$stopped" $((kw_after - kw_before)) "$kw_expected" "$kw_refused" \
        $((sanctum_after - sanctum_before)) "$sanctum_expected" $((kw_windows * CONNECTIONS)) $((sanctum_windows * CONNECTIONS)) >>"$checks"
    done
  done

  local load_after
  load_after=$(loadavg)
  log "load average after: $load_after"
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  python3 "$HERE/report.py" "$runs" "$checks" "$OUT/results-$stamp.json" \
    --meta "keys=$KEYS" "rounds=$ROUNDS" "seconds=$DURATION" "slices=$SLICES" "key_distribution=$KEY_DISTRIBUTION" "warmup_seconds=$WARMUP" \
    "connections=$CONNECTIONS" "wrk_threads=$THREADS" "workers=$WORKERS" "quick=$QUICK" \
    "load_before=$load_before" "load_after=$load_after" "cpus=$(nproc)" \
    "elapsed_seconds=$(($(date +%s) - started))" "versions=$(versions)" \
    "python_ffi=${PY_FFI:-api}" "php_keyward=$PHP_BINDING"
  ln -sfn "results-$stamp.json" "$OUT/latest.json"
}

versions() {
  printf 'wrk %s; nginx %s; php %s; node %s; python %s; gunicorn %s; uvicorn %s' \
    "$(wrk -v 2>&1 | head -n1 | awk '{print $2}')" \
    "$(nginx -v 2>&1 | sed 's|.*nginx/||')" \
    "$(php -r 'echo PHP_VERSION;')" "$(node -v)" \
    "$(python3 -c 'import platform; print(platform.python_version())')" \
    "$("$OUT/venv/bin/python" -c 'import gunicorn; print(gunicorn.__version__)' 2>/dev/null || echo -)" \
    "$("$OUT/venv/bin/python" -c 'import uvicorn; print(uvicorn.__version__)' 2>/dev/null || echo -)"
}

# Sourced (benches/instructions/fpm.sh uses these functions): define only.
[[ ${BASH_SOURCE[0]} != "$0" ]] || main
