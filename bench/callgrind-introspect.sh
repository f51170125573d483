#!/usr/bin/env bash
# Instructions per HTTP introspection (or, with WORKLOAD=forward_auth, per
# forward-auth check at /authd/check), counted by callgrind: steady whatever
# else the machine is doing, so it shows small changes that wrk's noise
# hides. Starts a release authd under valgrind on its own database, warms it
# up, instruments a 20 s wrk run, and prints the total and the count.
#   bench/callgrind-introspect.sh [OUT]      (default /tmp/authd-callgrind.out)
# Then: callgrind_annotate OUT.1 | head -60
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-/tmp/authd-callgrind.out}
BASE=${BENCH_PG:-postgres://postgres@127.0.0.1}
BIN=${AUTHD_BIN:-./target/release/authd}
HTTP=127.0.0.1:8091
command -v valgrind >/dev/null && command -v wrk >/dev/null || { echo "needs valgrind and wrk" >&2; exit 1; }
psql "$BASE/postgres" -qc "DROP DATABASE IF EXISTS authd_callgrind WITH (FORCE)" -c "CREATE DATABASE authd_callgrind" >/dev/null
rm -f "$out"*
RUST_LOG=${RUST_LOG:-warn} valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$BIN" serve --grpc-addr 127.0.0.1:50071 --http-addr "$HTTP" --issuer "http://$HTTP" \
    --database-url "$BASE/authd_callgrind" >/tmp/authd-callgrind.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -s -m 2 "http://$HTTP/healthz" >/dev/null && break; sleep 1; done
json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
APP=$(curl -sS -X POST "http://$HTTP/api/v1/apps" -H 'Content-Type: application/json' \
    -d '{"client_name":"callgrind","redirect_uris":"urn:ietf:wg:oauth:2.0:oob","scopes":"read"}')
CID=$(echo "$APP" | json client_id); CS=$(echo "$APP" | json client_secret)
TOKEN=$(curl -sS -u "$CID:$CS" -d grant_type=client_credentials -d scope=read "http://$HTTP/oauth/token" | json access_token)
export WRK_PATH=/oauth/introspect WRK_TOKEN=$TOKEN WRK_BEARER=$TOKEN WRK_BASIC=$(printf '%s:%s' "$CID" "$CS" | base64 -w0)
script=bench/wrk/${WORKLOAD:-introspect}.lua
wrk -t1 -c4 -d5s -s "$script" "http://$HTTP" >/dev/null   # warm-up, not counted
callgrind_control -i on "$pid" >/dev/null
result=$(wrk -t1 -c4 -d20s -s "$script" "http://$HTTP" | grep RESULT)
callgrind_control -d "$pid" >/dev/null
callgrind_control -i off "$pid" >/dev/null
sleep 2
requests=$(echo "$result" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
total=$(callgrind_annotate "$out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$result"
echo "instructions: $total for $requests requests: $((total / requests)) per request"
