#!/usr/bin/env bash
# Introspection of a cached token under the attacks of issue 14, against the
# same figure measured quiet, in alternating rounds of one run:
#   bench/hostile.sh [--rounds 5] [--duration 5s] | tee bench/results/$(date +%F)-hostile.txt
# The attacks (src/bench/hostile.rs): 1000 idle connections to the two
# listeners (half of them sending half an HTTP/2 preface), reopened as soon
# as authd closes them; oversized RegisterApp calls (46,000 redirect URIs),
# one at a time; 64 IntrospectBatch calls of 1000 unknown tokens in flight.
# authd runs as shipped: `authd serve` with its defaults, its default
# logging included, on a fresh database. Loopback only; every load is
# bounded by the rounds and the duration.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=5
DURATION=5s
WARMUP=1s
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
BASE=${BENCH_PG:-postgres://postgres@127.0.0.1}
AUTHD=./target/release/authd
cargo build --release --quiet -p authd -p authd-bench
psql "$BASE/postgres" -qc "DROP DATABASE IF EXISTS authd_bench WITH (FORCE)" -c "CREATE DATABASE authd_bench" >/dev/null
env -u RUST_LOG DATABASE_URL="$BASE/authd_bench" "$AUTHD" serve \
    --grpc-addr 127.0.0.1:50061 --http-addr 127.0.0.1:8081 --issuer http://127.0.0.1:8081 \
    >/tmp/authd-hostile.log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    "$AUTHD" healthcheck --addr 127.0.0.1:50061 >/dev/null 2>&1 && break
    sleep 0.1
done
echo "machine: $(nproc) cores; commit $(git rev-parse --short HEAD); $(date -u +%FT%TZ)"
./target/release/authd-bench run --grpc http://127.0.0.1:50061 --http http://127.0.0.1:8081 \
    --scenarios introspect-grpc --concurrency 64 \
    --duration "$DURATION" --warmup "$WARMUP" --rounds "$ROUNDS" --hostile ${HOSTILE_ARGS:-}
echo "authd's log: $(wc -l </tmp/authd-hostile.log) lines, of which WARN $(grep -c WARN /tmp/authd-hostile.log || true), ERROR $(grep -c ERROR /tmp/authd-hostile.log || true)"
