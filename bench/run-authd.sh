#!/usr/bin/env bash
# Starts a release authd on its own fresh database for a benchmark run, in
# the background, and prints its PID. Extra arguments go to `authd serve`.
#   bench/run-authd.sh [--cache-capacity 0] ...
# Uses BENCH_PG's server (default: the local PostgreSQL) and the database
# AUTHD_BENCH_DB (default authd_bench), dropped and created anew. It listens
# on AUTHD_BENCH_GRPC_ADDR (default 127.0.0.1:50061) and
# AUTHD_BENCH_HTTP_ADDR (default 127.0.0.1:8081), so that bench/all.sh can
# run two side by side. Stop it with kill PID.
# It logs as `authd serve` does by default (RUST_LOG=info, one line per
# request): benchmarks measure authd as shipped. The log is
# AUTHD_BENCH_LOG (default /tmp/authd-bench.log).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BASE=${BENCH_PG:-postgres://postgres@127.0.0.1}
DB=${AUTHD_BENCH_DB:-authd_bench}
GRPC_ADDR=${AUTHD_BENCH_GRPC_ADDR:-127.0.0.1:50061}
HTTP_ADDR=${AUTHD_BENCH_HTTP_ADDR:-127.0.0.1:8081}
LOG=${AUTHD_BENCH_LOG:-/tmp/authd-bench.log}
[[ "$DB" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "AUTHD_BENCH_DB must be a plain lowercase name" >&2; exit 2; }
for addr in "$GRPC_ADDR" "$HTTP_ADDR"; do
    case $addr in
        127.*:*|localhost:*) ;;
        *) echo "$addr: only loopback addresses" >&2; exit 2 ;;
    esac
done
# Another authd on the port would answer the healthcheck below in its place.
for addr in "$GRPC_ADDR" "$HTTP_ADDR"; do
    if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
        echo "something already listens on $addr" >&2
        exit 1
    fi
done
psql "$BASE/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
RUST_LOG=${RUST_LOG:-info} DATABASE_URL="$BASE/$DB" ./target/release/authd serve \
    --grpc-addr "$GRPC_ADDR" --http-addr "$HTTP_ADDR" --issuer "http://$HTTP_ADDR" "$@" \
    >"$LOG" 2>&1 &
pid=$!
for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    if ./target/release/authd healthcheck --addr "$GRPC_ADDR" >/dev/null 2>&1; then
        echo "$pid"
        exit 0
    fi
    sleep 0.1
done
echo "authd did not start; see $LOG" >&2
kill "$pid" 2>/dev/null || true
exit 1
