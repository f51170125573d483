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

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_args "$@"

AUTHD_HTTP=${AUTHD_HTTP:-http://127.0.0.1:8080}
AUTHD_HTTP=${AUTHD_HTTP%/}
require_loopback_url "$AUTHD_HTTP"
TOKEN_PATH=/oauth/token
INTROSPECT_PATH=/oauth/introspect

ensure_python
ensure_wrk

authd_app_token "$AUTHD_HTTP"
export WRK_BASIC WRK_TOKEN
WRK_BASIC=$APP_BASIC
WRK_TOKEN=$APP_TOKEN

print_parameters
log "authd at $AUTHD_HTTP: app $APP_CLIENT_ID"
run_wrk authd introspect introspect.lua "$AUTHD_HTTP" "$INTROSPECT_PATH"
run_wrk authd client_credentials client_credentials.lua "$AUTHD_HTTP" "$TOKEN_PATH"

finish
