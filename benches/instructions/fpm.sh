#!/usr/bin/env bash
# Instructions per request of a real PHP-FPM pool (one static worker under valgrind's
# callgrind, behind nginx, the benches/http application and production php.ini: preload, the
# keyward_native extension unless KW_BENCH_PHP=ffi). Counts the worker's main thread only
# (--separate-threads), without the usage flush: the store's background threads are left out,
# since under valgrind a request lasts milliseconds and their timers would weigh far more than
# at full speed, and so is the flush kw_close makes when the worker exits.
#
#   bash benches/instructions/fpm.sh                 # keyward, sqlite (default 100 000 keys)
#   bash benches/instructions/fpm.sh keyward noauth  # noauth: the method's noise (± a few dozen)
#   KEYS=1000 bash benches/instructions/fpm.sh keyward
#   KEEP_CG=1 bash benches/instructions/fpm.sh keyward  # keep each variant's two callgrind files
#                                                       # in target/instructions/cg (cgdiff.py)
#
# Method: pm.max_requests = 400, so each worker exits after 400 requests and callgrind writes
# its file then. One worker serves 300 no-auth + 100 <variant> requests, the next 100 + 300;
# (second − first) / 200 is what the variant adds to a request, the worker's start and
# exit cancelled. Every request carries one of the keys (Authorization: Bearer), spread over
# all of them. Needs what benches/http/run.sh installs, and valgrind.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MEASURED=("$@")  # (run.sh, sourced below, has its own VARIANTS)
((${#MEASURED[@]})) || MEASURED=(keyward sqlite)
# shellcheck source=../http/run.sh
source "$HERE/../http/run.sh" --hosts php-fpm --keys "${KEYS:-100000}"
trap cleanup EXIT
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
WORKERS=1
install_apt
build_rust
prepare_data
prepare_php
echo "pm.max_requests = 400" >>"$RUN/php/php-fpm.conf"
chown -R www-data:www-data "$RUN/data"
CG="$RUN/callgrind"
mkdir -p "$CG" && chmod 777 "$CG"
valgrind --tool=callgrind --separate-threads=yes --trace-children=yes --callgrind-out-file="$CG/cg.%p" \
  "$FPM" --nodaemonize --fpm-config "$RUN/php/php-fpm.conf" -c "$RUN/php/php.ini" >"$RUN/logs/valgrind.log" 2>&1 </dev/null &
SERVER_PIDS+=($!)
wait_for "php-fpm socket" test -S "$RUN/php/fpm.sock"
nginx -c "$RUN/php/nginx.conf" -e "$RUN/logs/nginx-error.log" </dev/null &
SERVER_PIDS+=($!)
wait_for "nginx" curl -sf -o /dev/null --max-time 30 "http://127.0.0.1:${PORT[php-fpm]}/noauth"

# requests VARIANT N: N keep-alive requests, each with the next key
requests() {
  python3 - "$KW_BENCH_KEYS" "${PORT[php-fpm]}" "$1" "$2" <<'PY'
import http.client, sys
keys = [line.strip() for line in open(sys.argv[1]) if line.strip()]
port, variant, n = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for i in range(n):
    conn.request("GET", "/" + variant, headers={"Authorization": "Bearer " + keys[(i * 7919) % len(keys)]})
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, (variant, response.status, body)
PY
}

# worker NOAUTH VARIANT N: one worker's life (400 requests); sets WORKER_IR to its main
# thread's instructions without kw_close (the flush of the worker's last counts when it exits: a
# background thread's work at full speed, and under valgrind a share that varies run to run;
# the flush's cost per key is `cargo bench --bench write -- flush_steady`)
worker() {
  local pid file i child
  # The pool's one worker now (it serves the next 400 requests, then exits).
  pid=""
  for ((i = 0; i < 200; i++)); do
    for child in $(pgrep -P "${SERVER_PIDS[0]}" || true); do
      [[ " ${MEASURED_PIDS[*]} " == *" $child "* ]] || pid=$child  # not one measured, exiting
    done
    [[ -n $pid ]] && break
    sleep 0.3
  done
  MEASURED_PIDS+=("$pid")
  [[ -n $pid ]] || { echo "no PHP-FPM worker" >&2; return 1; }
  requests noauth "$1"
  requests "$2" "$3"
  file="$CG/cg.$pid-01"
  for ((i = 0; i < 200; i++)); do
    grep -q '^totals:' "$file" 2>/dev/null && break
    sleep 0.3
  done
  grep -q '^totals:' "$file" || { echo "no callgrind file from worker $pid" >&2; return 1; }
  local total close
  total=$(grep -m1 '^totals:' "$file" | awk '{print $2}')
  close=$(callgrind_annotate --inclusive=yes --threshold=100 "$file" 2>/dev/null | awk '!v && /:kw_close /{gsub(",", "", $1); v = $1} END {print v}')
  WORKER_IR=$((total - ${close:-0}))
}

MEASURED_PIDS=()
worker 399 noauth 0  # the first worker (it opened nothing; opcache warm for the next)
log "PHP-FPM under callgrind, one worker, ${KEYS:-100000} keys ($PHP_BINDING)"
for variant in "${MEASURED[@]}"; do
  worker 300 "$variant" 100
  a=$WORKER_IR
  worker 100 "$variant" 300
  b=$WORKER_IR
  printf '%-8s %8d instructions per request above no auth (main thread; workers: %d, %d)\n' \
    "$variant" $(((b - a) / 200)) "$a" "$b"
  if [[ -n ${KEEP_CG:-} ]]; then
    mkdir -p "$ROOT/target/instructions/cg"
    cp "$CG/cg.${MEASURED_PIDS[-2]}-01" "$ROOT/target/instructions/cg/fpm-$variant-100.out"
    cp "$CG/cg.${MEASURED_PIDS[-1]}-01" "$ROOT/target/instructions/cg/fpm-$variant-300.out"
  fi
done
