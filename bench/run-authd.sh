#!/usr/bin/env bash
# Starts a release authd on its own fresh database for a benchmark run, in
# the background, and prints its PID. Extra arguments go to `authd serve`.
#   bench/run-authd.sh [--cache-capacity 0] ...
# Uses DATABASE_URL's server (default: the local PostgreSQL) and the
# database authd_bench, dropped and created anew. Stop it with kill PID.
# It logs as `authd serve` does by default (RUST_LOG=info, one line per
# request): benchmarks measure authd as shipped. The log is
# /tmp/authd-bench.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BASE=${BENCH_PG:-postgres://postgres@127.0.0.1}
psql "$BASE/postgres" -qc "DROP DATABASE IF EXISTS authd_bench WITH (FORCE)" -c "CREATE DATABASE authd_bench" >/dev/null
RUST_LOG=${RUST_LOG:-info} DATABASE_URL="$BASE/authd_bench" ./target/release/authd serve \
    --grpc-addr 127.0.0.1:50061 --http-addr 127.0.0.1:8081 --issuer http://127.0.0.1:8081 "$@" \
    >/tmp/authd-bench.log 2>&1 &
pid=$!
for _ in $(seq 100); do
    if ./target/release/authd healthcheck --addr 127.0.0.1:50061 >/dev/null 2>&1; then
        echo "$pid"
        exit 0
    fi
    sleep 0.1
done
echo "authd did not start; see /tmp/authd-bench.log" >&2
kill "$pid" 2>/dev/null || true
exit 1
