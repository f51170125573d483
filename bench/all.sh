#!/usr/bin/env bash
# Every target of issue 19 in one run, each a ratio measured in the same run
# in alternating rounds, against `authd serve` with its default settings
# (its default logging, RUST_LOG=info, included):
#   bench/all.sh [--rounds 5] [--duration 10s] [--warmup 2s] [--only ROWS] [--tokens N] \
#       | tee bench/results/$(date +%F)-all.txt
#   bench/report.py bench/results/<that file>    # regenerates BENCHMARKS.md's summary
# A quick try: bench/all.sh --rounds 1 --duration 2s --tokens 20000 (about 2 minutes).
#
# Rows (--only takes a comma-separated subset of grpc,http,cc,cold,memory):
#   grpc    gRPC Introspect of a cached token against the bare tonic echo,
#           c=64 (authd-bench run --rounds N: echo, introspect, echo, ...)
#   http    POST /oauth/introspect with wrk -t2 -c32, in turn against authd,
#           the same build at RUST_LOG=warn (a second authd beside it, for
#           the cost of logging), nginx answering a fixed 100-byte JSON body,
#           and oidc-provider (NODE_ENV=production, running for every round)
#   cc      client_credentials at the token endpoint (wrk), authd then
#           oidc-provider; authd's latency distribution once, in round 1
#   cold    gRPC Introspect of tokens that each miss the cache (COLD_TOKENS,
#           20,000, cycled through --cache-capacity COLD_CACHE, 1,000; the
#           share the cache answered is printed), c=64, from a resource
#           server (not held to --cold-lookup-limit-per-client), against
#           pgbench -S -M prepared -c 64 -j 2 on the same PostgreSQL
#   memory  bytes per cached token at N cached tokens (default 1,000,000,
#           or CACHE_MEMORY_TOKENS): authd-bench cache-memory, once
# Every measurement is one line "MEASURE row=... round=... server=... rps=...";
# bench/report.py computes the ratios from those lines (--summary prints
# them, as at the end of this run). The door's figures come from
# bench/door.sh, the table-size rows from bench/table-size.sh and the
# attack rows from bench/hostile.sh; this script runs none of them.
#
# Needs: the Rust toolchain, a PostgreSQL server reachable at BENCH_PG
# (default postgres://postgres@127.0.0.1, trust auth) with pgbench, node and
# npm (for oidc-provider), wrk and nginx (nginx-light; both installed with
# apt-get if missing), python3. Loopback only. Every process it starts is
# stopped on exit. Ports and databases (change them to run beside another
# benchmark): BENCH_GRPC_PORT (50061) and BENCH_HTTP_PORT (8081) for the
# default authd, +1 for the RUST_LOG=warn one, +2 for the cold one, +3 for
# the memory one; databases BENCH_DB (authd_bench), BENCH_DB_warn,
# BENCH_DB_cold, BENCH_DB_mem and PGBENCH_DB (authd_pgbench); NGINX_PORT
# (8090), PEER_PORT (3000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

ROUNDS=5
DURATION=10s
WARMUP=2s
ONLY=grpc,http,cc,cold,memory
TOKENS=${CACHE_MEMORY_TOKENS:-1000000}
# The cold row: this many tokens cycled through a cache this small, so that
# each introspection misses and is looked up as a cold token is (the client
# stays cached, as a resource server's is).
COLD_TOKENS=${COLD_TOKENS:-20000}
COLD_CACHE=${COLD_CACHE:-1000}
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) [ $# -ge 2 ] || die "$1 needs a value"; ROUNDS=$2; shift 2 ;;
        --duration) [ $# -ge 2 ] || die "$1 needs a value"; DURATION=$2; shift 2 ;;
        --warmup) [ $# -ge 2 ] || die "$1 needs a value"; WARMUP=$2; shift 2 ;;
        --only) [ $# -ge 2 ] || die "$1 needs a value"; ONLY=$2; shift 2 ;;
        --tokens) [ $# -ge 2 ] || die "$1 needs a value"; TOKENS=$2; shift 2 ;;
        -h|--help) sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1" ;;
    esac
done
if ! [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || [ "$ROUNDS" -gt 20 ]; then die "--rounds must be 1 to 20"; fi
if ! [[ "$TOKENS" =~ ^[1-9][0-9]*$ ]] || [ "$TOKENS" -gt 10000000 ]; then die "--tokens must be 1 to 10000000"; fi
SECS=$(duration_seconds "$DURATION") || die "bad --duration: $DURATION"
WARM_SECS=$(duration_seconds "$WARMUP") || die "bad --warmup: $WARMUP"
if [ "$SECS" -lt 1 ] || [ "$SECS" -gt 600 ]; then die "--duration must be 1s to 10m"; fi
[ "$WARM_SECS" -le 60 ] || die "--warmup must be at most 1m"
for row in ${ONLY//,/ }; do
    case $row in grpc|http|cc|cold|memory) ;; *) die "--only: unknown row $row" ;; esac
done
wants() { [[ ",$ONLY," == *",$1,"* ]]; }

PG=${BENCH_PG:-postgres://postgres@127.0.0.1}
DB=${BENCH_DB:-authd_bench}
PGBENCH_DB=${PGBENCH_DB:-authd_pgbench}
GRPC_PORT=${BENCH_GRPC_PORT:-50061}
HTTP_PORT=${BENCH_HTTP_PORT:-8081}
NGINX_PORT=${NGINX_PORT:-8090}
PEER_PORT=${PEER_PORT:-3000}
for v in "$DB" "$PGBENCH_DB"; do
    [[ "$v" =~ ^[a-z_][a-z0-9_]*$ ]] || die "database names must be plain lowercase names: $v"
done
for v in "$GRPC_PORT" "$HTTP_PORT" "$NGINX_PORT" "$PEER_PORT"; do
    if ! [[ "$v" =~ ^[0-9]+$ ]] || [ "$v" -le 1024 ] || [ "$v" -ge 65000 ]; then die "bad port $v"; fi
done
AUTHD=./target/release/authd
BENCH=./target/release/authd-bench

RAW=$(mktemp -t authd-all.XXXXXX.txt)
WORK=$(mktemp -d -t authd-all.XXXXXX)
PIDS=()
NGINX_PID=""

# stop_pid PID: TERM, then KILL after 10 s. The authds are not this shell's
# children (bench/run-authd.sh started them), so it polls rather than waits.
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    PIDS=()
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    if [ -n "$NGINX_PID" ]; then stop_pid "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; fi
    peer_stop "$rc"
    rm -rf "$WORK" "$RAW"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

section() { printf '\n=== %s\n' "$*"; }
# emit LINE: to stdout and to the raw file the summary is computed from.
emit() { printf '%s\n' "$*" | tee -a "$RAW"; }
# The ratios of one round (or of every round) so far, from the raw file.
ratios() { python3 bench/report.py --summary "$@" "$RAW"; }

# token_cache_counters HTTP_URL: "HITS MISSES" of the token cache, from
# authd's /metrics.
token_cache_counters() {
    curl -fsS --max-time 10 "$1/metrics" | awk '
        /^authd_cache_hits_total.*cache="token"/ { h = $NF }
        /^authd_cache_misses_total.*cache="token"/ { m = $NF }
        END { if (h == "" || m == "") exit 1; printf "%d %d\n", h, m }' \
        || die "no token cache counters in $1/metrics"
}

# start_authd NAME OFFSET [serve flags]: a fresh authd on database
# $DB$NAME, gRPC port GRPC_PORT+OFFSET, HTTP port HTTP_PORT+OFFSET. Sets
# STARTED_PID, STARTED_GRPC, STARTED_HTTP, STARTED_DB.
start_authd() {
    local name=$1 offset=$2
    shift 2
    STARTED_GRPC=127.0.0.1:$((GRPC_PORT + offset))
    STARTED_HTTP=127.0.0.1:$((HTTP_PORT + offset))
    STARTED_DB=$DB$name
    STARTED_PID=$(AUTHD_BENCH_DB=$STARTED_DB AUTHD_BENCH_GRPC_ADDR=$STARTED_GRPC \
        AUTHD_BENCH_HTTP_ADDR=$STARTED_HTTP AUTHD_BENCH_LOG="/tmp/$STARTED_DB.log" \
        bench/run-authd.sh "$@") || die "authd $STARTED_DB did not start"
    PIDS+=("$STARTED_PID")
    log "authd $STARTED_DB (pid $STARTED_PID${RUST_LOG:+, RUST_LOG=$RUST_LOG}) on $STARTED_GRPC and $STARTED_HTTP, log /tmp/$STARTED_DB.log"
}

# wrk_measure ROW ROUND SERVER WORKLOAD SCRIPT BASE PATH BASIC TOKEN: one wrk
# run (lib.sh's run_wrk: bounded by timeout), as a MEASURE line.
wrk_measure() {
    local row=$1 round=$2 server=$3 workload=$4 script=$5 base=$6 path=$7 out result
    out=$(WRK_BASIC=$8 WRK_TOKEN=$9 run_wrk "$server" "$workload" "$script" "$base" "$path") \
        || die "$server $workload: wrk failed"
    result=$(printf '%s\n' "$out" | grep " RESULT " | head -n 1 | sed 's/.* RESULT //')
    [ -n "$result" ] || die "$server $workload: no RESULT"
    emit "MEASURE row=$row round=$round server=$server $result"
    if printf '%s\n' "$out" | grep -q " HISTOGRAM "; then
        emit "HISTOGRAM row=$row round=$round server=$server $(printf '%s\n' "$out" | grep " HISTOGRAM " | sed 's/.* HISTOGRAM //')"
    fi
    case $result in
        *" errors=0 "*) ;;
        *) die "$server $workload: requests failed; the numbers are not valid" ;;
    esac
}

# authd-bench's lines ("Echo  12345 req/s  p50 ... p99 1.234 ms ...") as
# MEASURE lines: ROW, then pairs SCENARIO=SERVER; a round begins at each
# line of the first scenario named.
bench_measures() {
    local row=$1
    shift
    awk -v row="$row" -v pairs="$*" '
        BEGIN {
            n = split(pairs, p, " ")
            for (i = 1; i <= n; i++) { split(p[i], kv, "="); name[kv[1]] = kv[2]; if (i == 1) first = kv[1] }
        }
        ($1 in name) && $3 == "req/s" {
            if ($1 == first) round++
            p99 = ""; errors = ""
            for (i = 4; i < NF; i++) { if ($i == "p99") p99 = $(i + 1); if ($i == "errors") errors = $(i + 1) }
            printf "MEASURE row=%s round=%d server=%s rps=%s p99_ms=%s errors=%s\n", row, round, name[$1], $2, p99, errors
        }'
}

# run_bench LIMIT_SECONDS ARGS...: authd-bench, bounded in time; its output
# goes to stdout and to $WORK/bench.out.
run_bench() {
    local limit=$1
    shift
    timeout --foreground -k 5 "$limit" "$BENCH" "$@" | tee "$WORK/bench.out"
}

ensure_python
ensure_wrk
if wants http; then ensure_command nginx nginx-light; fi
if wants cold; then command -v pgbench >/dev/null 2>&1 || die "pgbench is required (postgresql-client)"; fi

timeout 3600 cargo build --release --quiet -p authd -p authd-bench

section "machine"
pg_version=$(psql "$PG/postgres" -Atc 'show server_version')
pg_sync=$(psql "$PG/postgres" -Atc 'show synchronous_commit')
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD 2>/dev/null || commit="$commit (with uncommitted changes)"
emit "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r); PostgreSQL $pg_version (synchronous_commit $pg_sync); $(rustc --version | cut -d' ' -f1-2); node $(node --version 2>/dev/null || echo none); wrk $({ wrk --version 2>&1 || true; } | head -1 | cut -d' ' -f2); nginx $({ nginx -v 2>&1 || echo none; } | sed 's/.*nginx\///'); pgbench $({ pgbench --version 2>/dev/null || echo x x none; } | awk '{print $3}'); commit $commit; $(date -u +%FT%TZ)"
emit "RUN rounds=$ROUNDS duration=$DURATION warmup=$WARMUP rows=$ONLY tokens=$TOKENS"

if wants cold; then
    log "pgbench: initialising $PGBENCH_DB (pgbench -i -s 10), once"
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $PGBENCH_DB WITH (FORCE)" -c "CREATE DATABASE $PGBENCH_DB" >/dev/null
    timeout 600 pgbench -q -i -s 10 "$PG/$PGBENCH_DB" >"$WORK/pgbench-init.log" 2>&1 \
        || { cat "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }
    psql "$PG/$PGBENCH_DB" -qc "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
fi

# The default authd: rows grpc, http and cc.
if wants grpc || wants http || wants cc; then
    start_authd "" 0
    A_GRPC=http://$STARTED_GRPC A_HTTP=http://$STARTED_HTTP
fi

if wants grpc; then
    section "1. gRPC Introspect, cache hit, against the bare echo: c=64, $ROUNDS alternating rounds"
    echo "(authd-bench's own \"x echo\" column divides by the first round's echo; the MEASURE lines pair each round with its own)"
    run_bench $(( ROUNDS * 2 * (SECS + WARM_SECS) + 120 )) run --grpc "$A_GRPC" --http "$A_HTTP" \
        --concurrency 64 --rounds "$ROUNDS" --duration "$DURATION" --warmup "$WARMUP" \
        --scenarios echo,introspect-grpc
    bench_measures grpc Echo=echo IntrospectGrpc=authd <"$WORK/bench.out" >"$WORK/measures"
    [ "$(grep -c . "$WORK/measures")" -eq $(( ROUNDS * 2 )) ] || die "authd-bench printed not $ROUNDS rounds"
    while read -r line; do emit "$line"; done <"$WORK/measures"
    ratios --row grpc
fi

if wants http || wants cc; then
    authd_app_token "$A_HTTP"
    A_BASIC=$APP_BASIC A_TOKEN=$APP_TOKEN
    peer_start "$PEER_PORT"
fi

if wants http; then
    section "2. HTTP introspection (wrk -t$THREADS -c$CONNECTIONS): authd, authd at RUST_LOG=warn, nginx's fixed body, oidc-provider; $ROUNDS alternating rounds"
    RUST_LOG=warn start_authd _warn 1
    B_PID=$STARTED_PID B_HTTP=http://$STARTED_HTTP
    authd_app_token "$B_HTTP"
    B_BASIC=$APP_BASIC B_TOKEN=$APP_TOKEN

    # nginx: the same POST answered with a fixed 100-byte JSON body, no
    # access log, keep-alive without a request limit; as many workers as cores.
    BODY='{"active":true,"scope":"read","client_id":"nginx-fixed-body","token_type":"Bearer","exp":1999999999}'
    [ "${#BODY}" -eq 100 ] || die "the nginx body is ${#BODY} bytes, not 100"
    if curl -s -o /dev/null -m 1 "http://127.0.0.1:$NGINX_PORT/"; then die "something already listens on 127.0.0.1:$NGINX_PORT; set NGINX_PORT"; fi
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            default_type application/json;
            return 200 '$BODY';
        }
    }
}
EOF
    nginx -q -t -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" || die "nginx -t failed"
    nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" &
    NGINX_PID=$!
    for _ in $(seq 50); do
        curl -s -o /dev/null -m 1 -X POST -d x "http://127.0.0.1:$NGINX_PORT/oauth/introspect" && break
        sleep 0.1
    done
    got=$(curl -sS -m 2 -X POST -d x "http://127.0.0.1:$NGINX_PORT/oauth/introspect") || die "nginx did not start"
    [ "${#got}" -eq 100 ] || die "nginx answers ${#got} bytes, not 100: $got"
    log "nginx (pid $NGINX_PID) on 127.0.0.1:$NGINX_PORT answers $got"

    print_parameters
    for round in $(seq "$ROUNDS"); do
        wrk_measure http "$round" authd introspect introspect.lua "$A_HTTP" /oauth/introspect "$A_BASIC" "$A_TOKEN"
        wrk_measure http "$round" authd-warn introspect introspect.lua "$B_HTTP" /oauth/introspect "$B_BASIC" "$B_TOKEN"
        wrk_measure http "$round" nginx introspect introspect.lua "http://127.0.0.1:$NGINX_PORT" /oauth/introspect "$A_BASIC" "$A_TOKEN"
        wrk_measure http "$round" oidc-provider introspect introspect.lua "$PEER_BASE" "$PEER_INTROSPECT_PATH" "$PEER_BASIC" "$PEER_TOKEN"
        peer_alive || die "oidc-provider died"
        ratios --row http --round "$round"
    done
    stop_pid "$B_PID"
    stop_pid "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=""
fi

if wants cc; then
    section "3. client_credentials over HTTP (wrk -t$THREADS -c$CONNECTIONS): authd, then oidc-provider; $ROUNDS alternating rounds"
    for round in $(seq "$ROUNDS"); do
        if [ "$round" -eq 1 ]; then export WRK_HISTOGRAM=1; fi
        wrk_measure cc "$round" authd client_credentials client_credentials.lua "$A_HTTP" /oauth/token "$A_BASIC" "$A_TOKEN"
        unset WRK_HISTOGRAM
        wrk_measure cc "$round" oidc-provider client_credentials client_credentials.lua "$PEER_BASE" "$PEER_TOKEN_PATH" "$PEER_BASIC" "$PEER_TOKEN"
        peer_alive || die "oidc-provider died"
        ratios --row cc --round "$round"
    done
fi
peer_stop
stop_all

if wants cold; then
    section "4. cold introspection (every token a cache miss: $COLD_TOKENS tokens cycled through a cache of $COLD_CACHE; gRPC, c=64, a resource server) against pgbench -S -M prepared -c 64 -j 2; $ROUNDS alternating rounds"
    start_authd _cold 2 --cache-capacity "$COLD_CACHE"
    C_GRPC=http://$STARTED_GRPC C_HTTP=http://$STARTED_HTTP C_DB=$STARTED_DB
    for round in $(seq "$ROUNDS"); do
        before=$(token_cache_counters "$C_HTTP")
        run_bench $(( 2 * (SECS + WARM_SECS) + 120 )) run --grpc "$C_GRPC" --http "$C_HTTP" \
            --concurrency 64 --duration "$DURATION" --warmup "$WARMUP" --scenarios introspect-grpc \
            --tokens "$COLD_TOKENS" --resource-server --database-url "$PG/$C_DB" --authd-bin "$AUTHD"
        after=$(token_cache_counters "$C_HTTP")
        # The share of this round's introspections (the tokens' issuance
        # and the warm-up included) that the cache answered: near 0, or the
        # row measures the cache instead of the miss.
        hit_share=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " "); h = y[1] - x[1]; m = y[2] - x[2]; printf "%.3f", (h + m > 0) ? h / (h + m) : 0 }')
        bench_measures cold IntrospectGrpc=authd <"$WORK/bench.out" | sed "s/ round=1 / round=$round /; s/\$/ cache_hit_share=$hit_share/" >"$WORK/measures"
        [ "$(grep -c . "$WORK/measures")" -eq 1 ] || die "authd-bench printed no IntrospectGrpc line"
        emit "$(cat "$WORK/measures")"
        if [ "$WARM_SECS" -gt 0 ]; then
            timeout -k 5 $(( WARM_SECS + 60 )) pgbench -n -S -M prepared -c 64 -j 2 -T "$WARM_SECS" "$PG/$PGBENCH_DB" >/dev/null 2>&1 \
                || die "pgbench warm-up failed"
        fi
        timeout -k 5 $(( SECS + 60 )) pgbench -n -S -M prepared -c 64 -j 2 -T "$SECS" "$PG/$PGBENCH_DB" >"$WORK/pgbench.out" 2>&1 \
            || { cat "$WORK/pgbench.out" >&2; die "pgbench failed"; }
        tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$WORK/pgbench.out")
        lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$WORK/pgbench.out")
        failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$WORK/pgbench.out")
        [ -n "$tps" ] || { cat "$WORK/pgbench.out" >&2; die "pgbench printed no tps"; }
        emit "MEASURE row=cold round=$round server=pgbench rps=$tps latency_avg_ms=${lat:-} errors=${failed:-0}"
        ratios --row cold --round "$round"
    done
    stop_all
fi

if wants memory; then
    section "5. memory per cached token at $TOKENS cached tokens (authd-bench cache-memory, default settings)"
    start_authd _mem 3
    run_bench 1800 cache-memory --grpc "http://$STARTED_GRPC" --http "http://$STARTED_HTTP" \
        --database-url "$PG/$STARTED_DB" --pid "$STARTED_PID" --tokens "$TOKENS" --authd-bin "$AUTHD"
    result=$(grep '^cache-memory RESULT ' "$WORK/bench.out" | sed 's/^cache-memory RESULT //')
    [ -n "$result" ] || die "authd-bench cache-memory printed no RESULT"
    emit "MEASURE row=memory round=1 server=authd $result"
    stop_all
fi

section "summary: every ratio over the rounds (median, min-max), its target"
ratios
