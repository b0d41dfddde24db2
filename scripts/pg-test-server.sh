#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests of the `postgres` feature (issue 20).
#
#   scripts/pg-test-server.sh start DIR   install Debian's postgresql when missing, initdb a
#                                         cluster in DIR/data (as the `postgres` user, trust
#                                         authentication, fsync=off, no TCP: a Unix socket in
#                                         DIR) and start it; prints the connection URL
#   scripts/pg-test-server.sh stop DIR    stop it (fast shutdown) and delete DIR
#   scripts/pg-test-server.sh kill DIR    stop it at once (immediate shutdown: the tests of
#                                         "PostgreSQL down"); `start DIR` again restarts it
#
# Non-interactive (CI=true, no stdin). DIR must not exist on the first `start` (or be empty).
set -euo pipefail
exec </dev/null

action="${1:-}"
dir="${2:-}"
if [ -z "$action" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|kill DIR" >&2
  exit 2
fi

pg_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
    echo "installing: postgresql" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$bin"
}

# Runs a PostgreSQL program as the `postgres` user when we are root (initdb refuses root).
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

bin=$(pg_bin)
case "$action" in
  start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
    if [ ! -e "$dir/data/PG_VERSION" ]; then
      as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
        --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    # No TCP at all: the socket lives in DIR, so parallel servers never collide on a port.
    # fsync=off only skips flushes to the disk (safe here: the tests kill the server, never
    # the machine). synchronous_commit stays on: with it off an immediate shutdown loses
    # commits already acknowledged, which a real deployment never sees.
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses= -c unix_socket_directories=$dir -c fsync=off \
          -c full_page_writes=off -c max_connections=200" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    # The socket directory, percent-encoded as the URL's host.
    printf 'postgresql://postgres@%s/postgres\n' "$(printf '%s' "$dir" | sed 's,/,%2F,g')"
    ;;
  stop)
    if [ -e "$dir/data/postmaster.pid" ]; then
      as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  kill)
    as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
  *)
    echo "usage: $0 start|stop|kill DIR" >&2
    exit 2
    ;;
esac
