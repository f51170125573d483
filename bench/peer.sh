#!/usr/bin/env bash
# Benchmarks the reference server, panva's oidc-provider (bench/oidc-provider),
# with the same wrk workloads bench/authd-wrk.sh runs against authd.
#
#   bench/peer.sh [--duration 10s] [--connections 32] [--threads 2] [--warmup 0s]
#
# Installs the npm dependencies (npm ci) and wrk if missing, starts
# oidc-provider on 127.0.0.1:${PORT:-3000} with NODE_ENV=production, gets a
# client_credentials token, runs wrk against the introspection endpoint and
# then against the token endpoint, prints
#   oidc-provider introspect RESULT ...
#   oidc-provider client_credentials RESULT ...
# on stdout, and stops the server (always, via an EXIT trap). Exits non-zero
# if any request failed.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_args "$@"

PORT=${PORT:-3000}

cleanup() {
  local rc=$?
  peer_stop "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_python
ensure_wrk
peer_start "$PORT"

export WRK_BASIC WRK_TOKEN
WRK_BASIC=$PEER_BASIC
WRK_TOKEN=$PEER_TOKEN

print_parameters
log "oidc-provider $PEER_VERSION: token endpoint $PEER_TOKEN_PATH, introspection endpoint $PEER_INTROSPECT_PATH"
run_wrk oidc-provider introspect introspect.lua "$PEER_BASE" "$PEER_INTROSPECT_PATH"
run_wrk oidc-provider client_credentials client_credentials.lua "$PEER_BASE" "$PEER_TOKEN_PATH"

peer_alive || die "oidc-provider died during the run"
finish
