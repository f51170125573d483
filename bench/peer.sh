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

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_args "$@"

PORT=${PORT:-3000}
[[ "$PORT" =~ ^[0-9]+$ ]] || die "PORT must be a number"
BASE="http://127.0.0.1:$PORT"
CLIENT_ID=bench
CLIENT_SECRET=bench-secret-bench-secret-bench-secret
PROVIDER_DIR="$BENCH_DIR/oidc-provider"
SERVER_LOG=$(mktemp -t oidc-provider.XXXXXX.log)
SERVER_PID=""

cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -s "$SERVER_LOG" ]; then
    log "oidc-provider log:"; sed 's/^/  /' "$SERVER_LOG" >&2
  fi
  rm -f "$SERVER_LOG"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_python
command -v node >/dev/null 2>&1 || die "node is required"
command -v npm >/dev/null 2>&1 || die "npm is required"
ensure_wrk

# npm dependencies, exactly as locked.
if [ ! -f "$PROVIDER_DIR/node_modules/oidc-provider/package.json" ] \
  || [ ! -f "$PROVIDER_DIR/node_modules/.package-lock.json" ] \
  || [ "$PROVIDER_DIR/package-lock.json" -nt "$PROVIDER_DIR/node_modules/.package-lock.json" ]; then
  log "installing npm dependencies (npm ci)"
  (cd "$PROVIDER_DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >&2) \
    || die "npm ci failed"
fi
VERSION=$(node -p 'require(process.argv[1]).version' "$PROVIDER_DIR/node_modules/oidc-provider/package.json")

if curl -s -o /dev/null -m 1 "$BASE/"; then
  die "something already listens on $BASE; stop it or set PORT"
fi

log "starting oidc-provider $VERSION on $BASE (node $(node -v), NODE_ENV=production)"
(cd "$PROVIDER_DIR" && exec env NODE_ENV=production PORT="$PORT" node server.js) >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

DISCOVERY=""
for _ in $(seq 1 100); do
  kill -0 "$SERVER_PID" 2>/dev/null || die "oidc-provider exited during start-up"
  if DISCOVERY=$(curl -sf -m 2 "$BASE/.well-known/openid-configuration"); then
    break
  fi
  DISCOVERY=""
  sleep 0.2
done
[ -n "$DISCOVERY" ] || die "oidc-provider did not answer on $BASE within 20s"
sed 's/^/  oidc-provider: /' "$SERVER_LOG" >&2

TOKEN_PATH=$(url_path "$(printf '%s' "$DISCOVERY" | json_field token_endpoint)")
INTROSPECT_PATH=$(url_path "$(printf '%s' "$DISCOVERY" | json_field introspection_endpoint)")

TOKEN=$(curl -sS -m 10 -u "$CLIENT_ID:$CLIENT_SECRET" \
  -d grant_type=client_credentials -d scope=read "$BASE$TOKEN_PATH" | json_field access_token) \
  || die "could not get a client_credentials token from $BASE$TOKEN_PATH"
# The token must introspect as active for its own client before we measure.
CHECK=$(curl -sS -m 10 -u "$CLIENT_ID:$CLIENT_SECRET" -d "token=$TOKEN" "$BASE$INTROSPECT_PATH")
[ "$(printf '%s' "$CHECK" | json_field active)" = "True" ] \
  || die "introspection does not answer active=true: $CHECK"

export WRK_BASIC WRK_TOKEN
WRK_BASIC=$(basic_credentials "$CLIENT_ID" "$CLIENT_SECRET")
WRK_TOKEN=$TOKEN

print_parameters
log "oidc-provider $VERSION: token endpoint $TOKEN_PATH, introspection endpoint $INTROSPECT_PATH"
run_wrk oidc-provider introspect introspect.lua "$BASE" "$INTROSPECT_PATH"
run_wrk oidc-provider client_credentials client_credentials.lua "$BASE" "$TOKEN_PATH"

kill -0 "$SERVER_PID" 2>/dev/null || die "oidc-provider died during the run"
finish
