#!/usr/bin/env bash
# Every figure of BENCHMARKS.md, in one run on one machine:
#   bench/all.sh [--duration 10s] [--warmup 2s] | tee bench/results/$(date +%F).txt
# Needs: the Rust toolchain, a PostgreSQL server reachable at BENCH_PG
# (default postgres://postgres@127.0.0.1, trust auth), node and npm (for
# oidc-provider), wrk (installed with apt-get if missing). Loopback only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION=10s
WARMUP=2s
while [ $# -gt 0 ]; do
    case $1 in
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
AUTHD=./target/release/authd
GRPC=http://127.0.0.1:50061
HTTP=http://127.0.0.1:8081
PID=
stop_authd() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; fi; }
trap stop_authd EXIT
bench() { ./target/release/authd-bench run --grpc "$GRPC" --http "$HTTP" --duration "$DURATION" --warmup "$WARMUP" "$@"; }
section() { printf '\n=== %s\n' "$*"; }

cargo build --release --quiet -p authd -p authd-bench

section "machine"
echo "cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB; kernel $(uname -r)"
echo "PostgreSQL: $(psql "${BENCH_PG:-postgres://postgres@127.0.0.1}/postgres" -Atc 'show server_version') (synchronous_commit $(psql "${BENCH_PG:-postgres://postgres@127.0.0.1}/postgres" -Atc 'show synchronous_commit'))"
echo "$(rustc --version); node $(node --version); wrk: $({ wrk --version 2>&1 || true; } | head -1)"
echo "date: $(date -u +%FT%TZ); commit $(git rev-parse --short HEAD)"

section "1. authd, cache on (the default): every scenario, against the echo ceiling"
PID=$(bench/run-authd.sh)
bench --scenarios echo,introspect-grpc,introspect-batch,introspect-http,client-credentials
stop_authd

section "1b. the door: Policy/Check and Envoy's ext_authz Check (cached read token, GET /api/v1/timelines/home), against the echo, 5 alternating rounds"
PID=$(RUST_LOG=info bench/run-authd.sh)
bench --concurrency 64 --rounds 5 --scenarios echo,policy-check,ext-authz,introspect-grpc
stop_authd

section "1c. the door over HTTP: forward auth behind nginx, and the reverse proxy (bench/door.sh)"
bench/door.sh --rounds 5 --duration "$DURATION"

section "2. authd, cache off (--cache-capacity 0): the database on every call"
PID=$(bench/run-authd.sh --cache-capacity 0)
bench --scenarios echo,introspect-grpc
stop_authd

section "3. login storm: the same run without and with 16 logins in flight"
PID=$(bench/run-authd.sh)
bench --scenarios echo,introspect-grpc
bench --scenarios echo,introspect-grpc --login-storm 16
stop_authd

for n in 1000 1000000; do
    section "4. $n tokens stored"
    PID=$(bench/run-authd.sh)
    bench/seed-tokens.sh "$n"
    bench --scenarios echo,introspect-grpc,client-credentials --tokens 1000
    stop_authd
    PID=$(bench/run-authd.sh --cache-capacity 0)
    bench/seed-tokens.sh "$n"
    echo "(cache off: every introspection is an index lookup)"
    bench --scenarios introspect-grpc --tokens 1000
    stop_authd
done

# The machine's speed drifts from minute to minute, so the two servers take
# turns, three rounds; BENCHMARKS.md reports each round's ratio and the median.
for round in 1 2 3; do
    section "5. HTTP, driven by wrk, round $round: authd, then oidc-provider"
    PID=$(bench/run-authd.sh)
    AUTHD_HTTP=$HTTP bench/authd-wrk.sh --duration "$DURATION" --warmup "$WARMUP" 2>/dev/null
    stop_authd
    bench/peer.sh --duration "$DURATION" --warmup "$WARMUP" 2>/dev/null
done
