#!/usr/bin/env bash
# Where a host's CPU goes per request, by thread and library, under the load of run.sh: one
# host of benches/http is started (100 000 keys, 4 workers), and while wrk drives each of its
# noauth, keyward and floor endpoints perf samples every CPU; the samples of the host's own
# processes are split by thread name and shared object and printed in microseconds of CPU per
# request. Shows what no loop benchmark can: the library's share under a real server's cache
# pressure (e.g. libkeyward.so ~2.5 us per request inside gunicorn against ~0.3 us in a warm
# loop), the binding's, and the background flusher's (thread keyward-flush, whose work lands
# in whichever window is running when a flush is due).
#
#   bash benches/http/profile.sh                       # gunicorn, 2 repetitions of 6 s each
#   bash benches/http/profile.sh --host node --reps 3 --seconds 8 --symbols
#
# --symbols also lists libkeyward's hottest functions in the keyward windows. Uses the
# library's profiling build (release code with symbols), perf from Debian's linux-perf
# (installed when missing), and what run.sh installs. Sampling (cpu-clock, 4 kHz) costs the
# host a little; compare variants of one run, not figures of this script with run.sh's.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROFILED=gunicorn REPS=2 SECONDS_PER=6 SYMBOLS=0 PROFILE_KEYS=100000
while (($#)); do
  case "$1" in
    --host) PROFILED=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --seconds) SECONDS_PER=$2; shift ;;
    --keys) PROFILE_KEYS=$2; shift ;;
    --symbols) SYMBOLS=1 ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for n in "$REPS" "$SECONDS_PER" "$PROFILE_KEYS"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "--reps, --seconds and --keys take positive integers" >&2; exit 2; }
done
export KW_BENCH_PROFILING=1
# shellcheck source=run.sh
source "$HERE/run.sh" --hosts "$PROFILED" --keys "$PROFILE_KEYS"  # defines only; checks the host
trap cleanup EXIT
command -v perf >/dev/null || { log "installing linux-perf"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null; }
install_apt
build_rust
case $PROFILED in
  gunicorn | uvicorn) install_python ;;
  node) install_node ;;
esac
prepare_data
[[ $PROFILED == php-fpm ]] && prepare_php
start_host "$PROFILED"
for variant in noauth keyward floor; do wrk_run "$PROFILED" "$variant" 2 >/dev/null; done  # warm every worker

PERF_DIR=$(mktemp -d /tmp/keyward-profile.XXXXXX)
report() {  # report DATA REQUESTS: CPU us per request by thread name and object, host processes only
  local pids
  pids=$(server_pids "${SERVER_PIDS[@]}" | paste -sd,)
  perf report -i "$1" --no-children --pid "$pids" --sort comm,dso --stdio -F sample,comm,dso 2>/dev/null |
    awk -v n="$2" -v hz=4000 '!/^#/ && NF >= 3 && $1 + 0 >= 20 {
      dso = $3; for (i = 4; i <= NF; i++) dso = dso " " $i
      printf "  %8.2f us/request  %-16s %s\n", $1 / hz / n * 1e6, $2, dso }'
}
for ((rep = 1; rep <= REPS; rep++)); do
  for variant in keyward noauth floor; do
    data="$PERF_DIR/$variant-$rep.data"
    # wrk_run's command under perf, which samples while wrk runs (its start included: the
    # server is idle then)
    result=$(perf record -q -e cpu-clock -F 4000 -a -o "$data" -- wrk -t"$THREADS" -c"$CONNECTIONS" \
      -d"${SECONDS_PER}s" --timeout 5s -s "$HERE/keys.lua" "http://127.0.0.1:${PORT[$PROFILED]}/$variant" 2>&1 |
      grep '^RESULT ' | cut -d' ' -f2-)
    requests=$(json_get "$result" requests)
    echo "== $PROFILED $variant, repetition $rep: $requests requests in $SECONDS_PER s (load $(loadavg))"
    report "$data" "$requests" | sort -k1,1nr
    if ((SYMBOLS)) && [[ $variant == keyward ]]; then
      echo "  libkeyward.so's hottest functions (share of all samples):"
      perf report -i "$data" --no-children --dso libkeyward.so --sort sym --stdio 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -12 | sed 's/^/  /'
    fi
  done
done
rm -rf "$PERF_DIR"
stop_host "$PROFILED"
