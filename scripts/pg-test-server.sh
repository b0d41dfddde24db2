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
# With KW_PG_TLS=1 on the first `start`, the server also listens on 127.0.0.1 (a free port)
# with TLS (ssl=on): a test CA (DIR/ca.crt) signs the server's certificate for `localhost` only,
# and DIR/other-ca.crt is a CA that signed nothing (the "wrong root"); the URL printed is then
# postgresql://postgres@localhost:PORT/postgres (add sslmode= and sslrootcert= to it).
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
    tcp="-c listen_addresses="
    if [ "${KW_PG_TLS:-0}" = 1 ] && [ ! -e "$dir/port" ]; then
      # A CA, a server certificate it signs (for localhost, not for 127.0.0.1), another CA.
      (cd "$dir" &&
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=keyward test CA" \
          -keyout ca.key -out ca.crt 2>/dev/null &&
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=keyward other CA" \
          -keyout other-ca.key -out other-ca.crt 2>/dev/null &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key \
          -out server.csr 2>/dev/null &&
        printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >server.ext &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
          -extfile server.ext -out server.crt 2>/dev/null &&
        chmod 600 server.key) || { echo "pg-test-server.sh: openssl failed" >&2; exit 1; }
      [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"/server.key "$dir"/server.crt
      python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$dir/port"
    fi
    if [ -e "$dir/port" ]; then
      tcp="-c listen_addresses=127.0.0.1 -c port=$(cat "$dir/port") -c ssl=on \
        -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
    fi
    # No TCP (unless KW_PG_TLS): the socket lives in DIR, so parallel servers never collide on a port.
    # fsync=off only skips flushes to the disk (safe here: the tests kill the server, never
    # the machine). synchronous_commit stays on: with it off an immediate shutdown loses
    # commits already acknowledged, which a real deployment never sees.
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "$tcp -c unix_socket_directories=$dir -c fsync=off \
          -c full_page_writes=off -c max_connections=200" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    if [ -e "$dir/port" ]; then
      printf 'postgresql://postgres@localhost:%s/postgres\n' "$(cat "$dir/port")"
    else
      # The socket directory, percent-encoded as the URL's host.
      printf 'postgresql://postgres@%s/postgres\n' "$(printf '%s' "$dir" | sed 's,/,%2F,g')"
    fi
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
