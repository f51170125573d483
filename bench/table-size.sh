#!/usr/bin/env bash
# Introspection and issuance over 1,000 and over 1,000,000 stored tokens:
# two release authds side by side, one over each table, measured in turns
# (A B A B A B) so that the machine's drift falls on both alike. Each turn
# starts right after a CHECKPOINT, so that both pay the same full-page
# writes, and ends with the WAL written per token issued, which, unlike
# requests/s, does not drift with the machine.
#   bench/table-size.sh | tee bench/results/$(date +%F)-table-size-alternating.txt
#   ROUNDS=5 bench/table-size.sh
#   SERVE_FLAGS="--cache-capacity 0" bench/table-size.sh   # every introspection an index lookup
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BASE=${BENCH_PG:-postgres://postgres@127.0.0.1}
pids=()
trap 'kill ${pids[@]} 2>/dev/null || true' EXIT
start() { # db grpc http
  psql "$BASE/postgres" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
  RUST_LOG=warn DATABASE_URL="$BASE/$1" ./target/release/authd serve --grpc-addr 127.0.0.1:$2 --http-addr 127.0.0.1:$3 --issuer http://127.0.0.1:$3 ${SERVE_FLAGS:-} >/tmp/$1.log 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do ./target/release/authd healthcheck --addr 127.0.0.1:$2 >/dev/null 2>&1 && return; sleep 0.1; done
}
seed() { # db n
  sed "s|authd_bench|$1|g" bench/seed-tokens.sh > /tmp/seed-$1.sh
  bash /tmp/seed-$1.sh "$2"
}
start authd_small 50062 8082
start authd_large 50063 8083
seed authd_small 1000
seed authd_large 1000000
echo "date: $(date -u +%FT%TZ); commit $(git rev-parse --short HEAD)"
wal_and_tokens() { # db
  psql "$BASE/$1" -Atc "SELECT pg_current_wal_lsn() - '0/0', (SELECT count(*) FROM access_tokens)" | tr '|' ' '
}
for round in $(seq "${ROUNDS:-3}"); do
  for which in small:50062:8082 large:50063:8083; do
    IFS=: read name g h <<<"$which"
    echo "--- round $round: $name"
    psql "$BASE/authd_$name" -qc CHECKPOINT
    read -r wal0 tokens0 < <(wal_and_tokens "authd_$name")
    ./target/release/authd-bench run --grpc http://127.0.0.1:$g --http http://127.0.0.1:$h --duration 8s --warmup 2s \
        --scenarios introspect-grpc,client-credentials --tokens 1000 2>&1 | grep -E "Introspect|Client"
    read -r wal1 tokens1 < <(wal_and_tokens "authd_$name")
    echo "WAL per token issued: $(( (wal1 - wal0) / (tokens1 - tokens0) )) bytes ($(( tokens1 - tokens0 )) tokens)"
  done
done
