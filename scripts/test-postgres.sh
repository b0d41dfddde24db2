#!/usr/bin/env bash
# The PostgreSQL suite (run by `make test` via scripts/test.sh): the `postgres` feature
# (several hosts on one PostgreSQL, issue 20) against real servers. Each test starts its own
# server in a temporary directory under /tmp through scripts/pg-test-server.sh (which installs
# Debian's postgresql when missing: initdb + pg_ctl as the `postgres` user, Unix socket only,
# fsync off) and stops it when done.
#
#   - lint of the feature's code (the default lint in scripts/test.sh builds without it)
#   - tests/upstream.rs: the library (changes, pepper/schema checks, pruned-log resync, usage
#     sums, credit leases across three hosts, PostgreSQL down, owners and rate limits, legacy
#     imports, refills once per period and rotation of leased credits across three hosts,
#     migration from schema 1)
#   - tests/replicate_cmd.rs: three hosts, each with its own `keyward replicate` process
#     (revoke propagation under load, a PostgreSQL outage under load)
#   - tests/upstream_store.rs: stores opened with an upstream URL (StoreOptions::upstream: the
#     store's own management calls go upstream), replica staleness in Store::stats, TLS
#   - tests/upstream_cmd.rs: `keyward --upstream URL create|update|rotate|revoke|delete`
#   - the C ABI and the bindings with an upstream are in their own suites (scripts/test-c.sh,
#     test-python.sh, test-node.sh, test-php.sh), which start a server the same way
#
# KEYWARD_PG_OUTAGE_SECS (default 3) and KEYWARD_PG_REVOKES (default 100) lengthen the runs:
# KEYWARD_PG_OUTAGE_SECS=30 KEYWARD_PG_REVOKES=1000 for the figures in BENCHMARKS.md.
# Non-interactive (CI=true, no stdin).
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}" CARGO_TERM_COLOR=never
exec </dev/null

# Installs the server once up front (and proves the script works) rather than in a test.
probe=$(mktemp -u /tmp/kw-pg-probe.XXXXXX)
bash scripts/pg-test-server.sh start "$probe" >/dev/null
bash scripts/pg-test-server.sh stop "$probe"
# Servers a killed run left behind (their directories name the test process).
for dir in /tmp/kw-pg-*; do
  [ -d "$dir" ] || continue
  pid=${dir#/tmp/kw-pg-}
  pid=${pid%%-*}
  if ! kill -0 "$pid" 2>/dev/null; then
    bash scripts/pg-test-server.sh stop "$dir" || true
  fi
done

echo "== lint with --features postgres =="
cargo clippy --all-targets --features postgres --quiet -- -D warnings
cargo clippy -p keyward-cli --all-targets --features postgres --quiet -- -D warnings

echo "== API docs and the module's example (doctest) with --features postgres =="
RUSTDOCFLAGS="-D warnings -D missing_docs" cargo doc --no-deps -p keyward --features postgres --quiet
cargo test --quiet --features postgres --doc upstream

echo "== tests/upstream.rs =="
cargo test --quiet --features postgres --test upstream
echo "== tests/upstream_store.rs =="
cargo test --quiet --features postgres --test upstream_store
echo "== tests/upstream_cmd.rs =="
cargo test --quiet -p keyward-cli --features postgres --test upstream_cmd
echo "== tests/replicate_cmd.rs =="
cargo test --quiet -p keyward-cli --features postgres --test replicate_cmd -- --nocapture
echo "postgres suite passed"
