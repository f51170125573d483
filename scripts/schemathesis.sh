#!/usr/bin/env bash
# Property-based checks of the HTTP shim against its own OpenAPI document
# (/openapi.json) with schemathesis: thousands of generated requests, each
# response checked for a documented status, content type and schema, and no
# server error. Starts a debug authd on a fresh database; loopback only.
#   scripts/schemathesis.sh [MAX_EXAMPLES]     (default 100 per operation)
# Needs python3 with venv and a PostgreSQL at BENCH_PG (default
# postgres://postgres@127.0.0.1, trust auth).
#
# One check is expected to report: "schema-valid request rejected" (ST202)
# for POST /api/v1/apps, whose redirect_uris must be absolute URIs or the
# out-of-band URN, which a JSON schema cannot say. Anything else is a bug in
# authd or in the document.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MAX=${1:-100}
BASE=${BENCH_PG:-postgres://postgres@127.0.0.1}
VENV=target/tmp/schemathesis-venv
HTTP=127.0.0.1:8191
[ -x "$VENV/bin/st" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet schemathesis==4.32.5; }
cargo build --quiet
psql "$BASE/postgres" -qc "DROP DATABASE IF EXISTS authd_schemathesis WITH (FORCE)" -c "CREATE DATABASE authd_schemathesis" >/dev/null
# Rate limits off: the generated requests would exhaust them at once.
RUST_LOG=warn ./target/debug/authd serve --grpc-addr 127.0.0.1:50091 --http-addr "$HTTP" \
    --issuer "http://$HTTP" --database-url "$BASE/authd_schemathesis" \
    --app-registration-limit-per-ip off --login-limit-per-ip off --login-limit-per-account off \
    >target/tmp/schemathesis-authd.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -s -m 2 "http://$HTTP/healthz" >/dev/null && break; sleep 1; done
"$VENV/bin/st" run "http://$HTTP/openapi.json" --max-examples "$MAX" --checks all
