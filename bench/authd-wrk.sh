#!/usr/bin/env bash
# Benchmarks an authd that is ALREADY running (this script does not start it)
# with the same wrk workloads bench/peer.sh runs against oidc-provider.
#
#   AUTHD_HTTP=http://127.0.0.1:8080 \
#   bench/authd-wrk.sh [--duration 10s] [--connections 32] [--threads 2] [--warmup 0s]
#
# Registers a fresh app (POST /api/v1/apps, scopes "read"), gets a
# client_credentials token, runs wrk against /oauth/introspect and then
# against /oauth/token, and prints
#   authd introspect RESULT ...
#   authd client_credentials RESULT ...
# on stdout. Exits non-zero if any request failed. Every run leaves one app
# and the access tokens the client_credentials workload issued in authd's
# database.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_args "$@"

AUTHD_HTTP=${AUTHD_HTTP:-http://127.0.0.1:8080}
AUTHD_HTTP=${AUTHD_HTTP%/}
require_loopback_url "$AUTHD_HTTP"
TOKEN_PATH=/oauth/token
INTROSPECT_PATH=/oauth/introspect

ensure_python
ensure_wrk

curl -s -o /dev/null -m 5 "$AUTHD_HTTP/" \
  || die "no authd answers at $AUTHD_HTTP (start it first, or set AUTHD_HTTP)"

APP=$(curl -sS -m 10 -X POST "$AUTHD_HTTP/api/v1/apps" \
  -H 'Content-Type: application/json' \
  -d '{"client_name":"wrk","redirect_uris":"urn:ietf:wg:oauth:2.0:oob","scopes":"read"}') \
  || die "app registration at $AUTHD_HTTP/api/v1/apps failed"
CLIENT_ID=$(printf '%s' "$APP" | json_field client_id) || die "app registration: $APP"
CLIENT_SECRET=$(printf '%s' "$APP" | json_field client_secret) || die "app registration: $APP"

TOKEN=$(curl -sS -m 10 -u "$CLIENT_ID:$CLIENT_SECRET" \
  -d grant_type=client_credentials "$AUTHD_HTTP$TOKEN_PATH" | json_field access_token) \
  || die "could not get a client_credentials token from $AUTHD_HTTP$TOKEN_PATH"
# The token must introspect as active for its own client before we measure.
CHECK=$(curl -sS -m 10 -u "$CLIENT_ID:$CLIENT_SECRET" -d "token=$TOKEN" "$AUTHD_HTTP$INTROSPECT_PATH")
[ "$(printf '%s' "$CHECK" | json_field active)" = "True" ] \
  || die "introspection does not answer active=true: $CHECK"

export WRK_BASIC WRK_TOKEN
WRK_BASIC=$(basic_credentials "$CLIENT_ID" "$CLIENT_SECRET")
WRK_TOKEN=$TOKEN

print_parameters
log "authd at $AUTHD_HTTP: app $CLIENT_ID"
run_wrk authd introspect introspect.lua "$AUTHD_HTTP" "$INTROSPECT_PATH"
run_wrk authd client_credentials client_credentials.lua "$AUTHD_HTTP" "$TOKEN_PATH"

finish
