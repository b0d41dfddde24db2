#!/usr/bin/env bash
# Instructions per request of a real PHP-FPM pool (one static worker under valgrind's
# callgrind, behind nginx, the benches/http application and production php.ini: preload, the
# keyward_native extension unless KW_BENCH_PHP=ffi). Counts the worker's main thread only
# (--separate-threads): the store's background threads are left out, since under valgrind a
# request lasts milliseconds and their timers would weigh far more than at full speed.
#
#   bash benches/instructions/fpm.sh                 # keyward, sqlite (default 100 000 keys)
#   bash benches/instructions/fpm.sh keyward noauth  # noauth: the method's noise (± a few dozen)
#   KEYS=1000 bash benches/instructions/fpm.sh keyward
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

# worker NOAUTH VARIANT N: one worker's life (400 requests); prints its main thread's instructions
worker() {
  local before file i
  before=$(ls "$CG")
  requests noauth "$1"
  requests "$2" "$3"
  for ((i = 0; i < 200; i++)); do
    file=$(comm -13 <(echo "$before") <(ls "$CG") | grep -- '-01$' | head -n1 || true)
    [[ -n $file ]] && grep -q '^totals:' "$CG/$file" 2>/dev/null && break
    sleep 0.3
  done
  [[ -n $file ]] || { echo "no callgrind file from the worker" >&2; return 1; }
  grep -m1 '^totals:' "$CG/$file" | awk '{print $2}'
}

requests noauth 399  # the first worker (it opened nothing; opcache warm for the next)
log "PHP-FPM under callgrind, one worker, ${KEYS:-100000} keys ($PHP_BINDING)"
for variant in "${MEASURED[@]}"; do
  a=$(worker 300 "$variant" 100)
  b=$(worker 100 "$variant" 300)
  printf '%-8s %8d instructions per request above no auth (main thread; workers: %d, %d)\n' \
    "$variant" $(((b - a) / 200)) "$a" "$b"
done
