# shellcheck shell=bash
# Shared by bench/peer.sh, bench/authd-wrk.sh and bench/all.sh (sourced, not run).
# Both run the same two wrk workloads with the same parameters:
#   introspect          POST token=...                                (wrk/introspect.lua)
#   client_credentials  POST grant_type=client_credentials&scope=read (wrk/client_credentials.lua)
# and print one line per workload on stdout:
#   <server> <workload> RESULT rps=... p50_ms=... p90_ms=... p99_ms=... max_ms=... errors=... ...
# wrk's own report goes to stderr.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WRK_DIR="$BENCH_DIR/wrk"

DURATION=10s
CONNECTIONS=32
THREADS=2
WARMUP=0s
TOTAL_ERRORS=0

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat >&2 <<EOF
usage: $(basename "$0") [--duration 10s] [--connections 32] [--threads 2] [--warmup 0s]
  --duration     wrk -d for each workload (e.g. 5s, 30s, 1m)
  --connections  wrk -c (open connections, shared by all threads)
  --threads      wrk -t
  --warmup       an unreported wrk run of this length before each measured run (0s: none)
EOF
}

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --duration) [ $# -ge 2 ] || die "$1 needs a value"; DURATION=$2; shift 2 ;;
      --duration=*) DURATION=${1#*=}; shift ;;
      --connections) [ $# -ge 2 ] || die "$1 needs a value"; CONNECTIONS=$2; shift 2 ;;
      --connections=*) CONNECTIONS=${1#*=}; shift ;;
      --threads) [ $# -ge 2 ] || die "$1 needs a value"; THREADS=$2; shift 2 ;;
      --threads=*) THREADS=${1#*=}; shift ;;
      --warmup) [ $# -ge 2 ] || die "$1 needs a value"; WARMUP=$2; shift 2 ;;
      --warmup=*) WARMUP=${1#*=}; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage; die "unknown argument: $1" ;;
    esac
  done
  [[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ ]] || die "--connections must be a positive integer"
  [[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
  [ "$CONNECTIONS" -ge "$THREADS" ] || die "--connections must be >= --threads"
  duration_seconds "$DURATION" >/dev/null || die "bad --duration: $DURATION"
  duration_seconds "$WARMUP" >/dev/null || die "bad --warmup: $WARMUP"
  [ "$(duration_seconds "$DURATION")" -ge 1 ] || die "--duration must be at least 1s"
  [ "$(duration_seconds "$DURATION")" -le 3600 ] || die "--duration must be at most 1h"
  [ "$(duration_seconds "$WARMUP")" -le 600 ] || die "--warmup must be at most 10m"
}

# wrk duration syntax (N, Ns, Nm, Nh) to whole seconds.
duration_seconds() {
  local d=$1
  case "$d" in
    *[!0-9smh]*|'') return 1 ;;
    *h) [[ "${d%h}" =~ ^[0-9]+$ ]] || return 1; echo $(( ${d%h} * 3600 )) ;;
    *m) [[ "${d%m}" =~ ^[0-9]+$ ]] || return 1; echo $(( ${d%m} * 60 )) ;;
    *s) [[ "${d%s}" =~ ^[0-9]+$ ]] || return 1; echo $(( ${d%s} )) ;;
    *) [[ "$d" =~ ^[0-9]+$ ]] || return 1; echo "$d" ;;
  esac
}

# Refuses any target that is not on this machine's loopback interface.
require_loopback_url() {
  local url=$1 host
  host=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).hostname or "")' "$url")
  case "$host" in
    127.*|localhost|::1) ;;
    *) die "$url: only loopback targets (127.0.0.0/8, localhost, [::1]) are allowed" ;;
  esac
}

# ensure_command COMMAND PACKAGE: installs the Debian package if COMMAND is missing.
ensure_command() {
  command -v "$1" >/dev/null 2>&1 && return 0
  log "$1 not found; installing the Debian package $2"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >&2
  command -v "$1" >/dev/null 2>&1 || die "$1 is still missing after apt-get install $2"
}

ensure_wrk() { ensure_command wrk wrk; }

ensure_python() {
  command -v python3 >/dev/null 2>&1 || die "python3 is required (JSON parsing)"
  command -v curl >/dev/null 2>&1 || die "curl is required"
}

# json_field FIELD < json  ->  prints the field, fails if absent.
json_field() {
  python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError as e:
    sys.exit("not JSON: %s" % e)
v = doc.get(sys.argv[1]) if isinstance(doc, dict) else None
if v is None or v == "":
    sys.exit("no %r in %s" % (sys.argv[1], json.dumps(doc)[:300]))
print(v)' "$1"
}

# url_path URL  ->  the path part of an absolute URL.
url_path() {
  python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).path or "/")' "$1"
}

basic_credentials() { printf '%s:%s' "$1" "$2" | base64 | tr -d '\n'; }

# run_wrk SERVER WORKLOAD SCRIPT BASE_URL PATH
# Needs WRK_BASIC (and WRK_TOKEN for introspect) in the environment.
run_wrk() {
  local server=$1 workload=$2 script=$3 base=$4 path=$5
  local secs bound out line errors
  if [ "$(duration_seconds "$WARMUP")" -gt 0 ]; then
    log "$server $workload: warm-up $WARMUP"
    WRK_PATH=$path timeout --foreground -k 5 $(( $(duration_seconds "$WARMUP") + 30 )) \
      wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$WRK_DIR/$script" "$base" >/dev/null \
      || die "$server $workload: wrk warm-up failed"
  fi
  secs=$(duration_seconds "$DURATION")
  bound=$(( secs + 30 ))
  log "$server $workload: wrk -t$THREADS -c$CONNECTIONS -d$DURATION $base$path"
  out=$(WRK_PATH=$path timeout --foreground -k 5 "$bound" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$WRK_DIR/$script" "$base") \
    || { printf '%s\n' "${out:-}" >&2; die "$server $workload: wrk failed or timed out"; }
  printf '%s\n' "$out" >&2
  line=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -n 1) \
    || die "$server $workload: wrk printed no RESULT line"
  printf '%s %s %s\n' "$server" "$workload" "$line"
  # With WRK_HISTOGRAM=1 in the environment, common.lua also prints the
  # latency distribution (bench/all.sh asks for it once).
  if printf '%s\n' "$out" | grep -q '^HISTOGRAM '; then
    printf '%s %s %s\n' "$server" "$workload" "$(printf '%s\n' "$out" | grep '^HISTOGRAM ' | tail -n 1)"
  fi
  errors=$(printf '%s\n' "$line" | sed -n 's/.* errors=\([0-9]*\).*/\1/p')
  TOTAL_ERRORS=$(( TOTAL_ERRORS + ${errors:-1} ))
}

print_parameters() {
  log "wrk parameters: threads=$THREADS connections=$CONNECTIONS duration=$DURATION warmup=$WARMUP; $(nproc) CPUs; $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
}

finish() {
  if [ "$TOTAL_ERRORS" -ne 0 ]; then
    die "$TOTAL_ERRORS request(s) failed; the numbers above are not valid"
  fi
}

# authd_app_token BASE_URL: registers a fresh app on a running authd
# (POST /api/v1/apps, scopes "read"), gets a client_credentials token and
# checks that it introspects as active. Sets APP_CLIENT_ID, APP_BASIC (for
# WRK_BASIC) and APP_TOKEN (for WRK_TOKEN).
# shellcheck disable=SC2034 # the caller reads APP_BASIC
authd_app_token() {
  local base=$1 app secret check
  curl -s -o /dev/null -m 5 "$base/" \
    || die "no authd answers at $base (start it first, or set AUTHD_HTTP)"
  app=$(curl -sS -m 10 -X POST "$base/api/v1/apps" \
    -H 'Content-Type: application/json' \
    -d '{"client_name":"wrk","redirect_uris":"urn:ietf:wg:oauth:2.0:oob","scopes":"read"}') \
    || die "app registration at $base/api/v1/apps failed"
  APP_CLIENT_ID=$(printf '%s' "$app" | json_field client_id) || die "app registration: $app"
  secret=$(printf '%s' "$app" | json_field client_secret) || die "app registration: $app"
  APP_TOKEN=$(curl -sS -m 10 -u "$APP_CLIENT_ID:$secret" \
    -d grant_type=client_credentials "$base/oauth/token" | json_field access_token) \
    || die "could not get a client_credentials token from $base/oauth/token"
  # The token must introspect as active for its own client before we measure.
  check=$(curl -sS -m 10 -u "$APP_CLIENT_ID:$secret" -d "token=$APP_TOKEN" "$base/oauth/introspect")
  [ "$(printf '%s' "$check" | json_field active)" = "True" ] \
    || die "introspection does not answer active=true: $check"
  APP_BASIC=$(basic_credentials "$APP_CLIENT_ID" "$secret")
}

# oidc-provider (bench/oidc-provider), for bench/peer.sh and bench/all.sh.
PEER_CLIENT_ID=bench
PEER_CLIENT_SECRET=bench-secret-bench-secret-bench-secret
PEER_DIR="$BENCH_DIR/oidc-provider"
PEER_PID=""
PEER_LOG=""

# peer_start PORT: installs the npm dependencies (npm ci) if missing, starts
# oidc-provider on 127.0.0.1:PORT with NODE_ENV=production in the
# background, gets a client_credentials token and checks that it
# introspects as active. Sets PEER_PID, PEER_BASE, PEER_VERSION,
# PEER_TOKEN_PATH, PEER_INTROSPECT_PATH, PEER_TOKEN and PEER_BASIC. The
# caller stops it with peer_stop (from an EXIT trap).
# shellcheck disable=SC2034 # the caller reads PEER_BASIC
peer_start() {
  local port=$1 discovery check
  [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number"
  command -v node >/dev/null 2>&1 || die "node is required"
  command -v npm >/dev/null 2>&1 || die "npm is required"
  PEER_BASE="http://127.0.0.1:$port"
  # npm dependencies, exactly as locked.
  if [ ! -f "$PEER_DIR/node_modules/oidc-provider/package.json" ] \
    || [ ! -f "$PEER_DIR/node_modules/.package-lock.json" ] \
    || [ "$PEER_DIR/package-lock.json" -nt "$PEER_DIR/node_modules/.package-lock.json" ]; then
    log "installing npm dependencies (npm ci)"
    (cd "$PEER_DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >&2) \
      || die "npm ci failed"
  fi
  PEER_VERSION=$(node -p 'require(process.argv[1]).version' "$PEER_DIR/node_modules/oidc-provider/package.json")
  if curl -s -o /dev/null -m 1 "$PEER_BASE/"; then
    die "something already listens on $PEER_BASE; stop it or set PORT"
  fi
  PEER_LOG=$(mktemp -t oidc-provider.XXXXXX.log)
  log "starting oidc-provider $PEER_VERSION on $PEER_BASE (node $(node -v), NODE_ENV=production)"
  (cd "$PEER_DIR" && exec env NODE_ENV=production PORT="$port" node server.js) >"$PEER_LOG" 2>&1 &
  PEER_PID=$!
  discovery=""
  for _ in $(seq 1 100); do
    kill -0 "$PEER_PID" 2>/dev/null || die "oidc-provider exited during start-up"
    if discovery=$(curl -sf -m 2 "$PEER_BASE/.well-known/openid-configuration"); then
      break
    fi
    discovery=""
    sleep 0.2
  done
  [ -n "$discovery" ] || die "oidc-provider did not answer on $PEER_BASE within 20s"
  sed 's/^/  oidc-provider: /' "$PEER_LOG" >&2
  PEER_TOKEN_PATH=$(url_path "$(printf '%s' "$discovery" | json_field token_endpoint)")
  PEER_INTROSPECT_PATH=$(url_path "$(printf '%s' "$discovery" | json_field introspection_endpoint)")
  PEER_TOKEN=$(curl -sS -m 10 -u "$PEER_CLIENT_ID:$PEER_CLIENT_SECRET" \
    -d grant_type=client_credentials -d scope=read "$PEER_BASE$PEER_TOKEN_PATH" | json_field access_token) \
    || die "could not get a client_credentials token from $PEER_BASE$PEER_TOKEN_PATH"
  # The token must introspect as active for its own client before we measure.
  check=$(curl -sS -m 10 -u "$PEER_CLIENT_ID:$PEER_CLIENT_SECRET" -d "token=$PEER_TOKEN" "$PEER_BASE$PEER_INTROSPECT_PATH")
  [ "$(printf '%s' "$check" | json_field active)" = "True" ] \
    || die "introspection does not answer active=true: $check"
  PEER_BASIC=$(basic_credentials "$PEER_CLIENT_ID" "$PEER_CLIENT_SECRET")
}

# peer_alive: fails if the oidc-provider peer_start started has exited.
peer_alive() { [ -n "$PEER_PID" ] && kill -0 "$PEER_PID" 2>/dev/null; }

# peer_stop [RC]: stops oidc-provider (TERM, then KILL after 5 s); with a
# non-zero RC, prints its log on stderr first. Safe to call twice.
peer_stop() {
  local rc=${1:-0}
  if [ -n "$PEER_PID" ] && kill -0 "$PEER_PID" 2>/dev/null; then
    kill -TERM "$PEER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$PEER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$PEER_PID" 2>/dev/null || true
    wait "$PEER_PID" 2>/dev/null || true
  fi
  PEER_PID=""
  if [ -n "$PEER_LOG" ]; then
    if [ "$rc" -ne 0 ] && [ -s "$PEER_LOG" ]; then
      log "oidc-provider log:"; sed 's/^/  /' "$PEER_LOG" >&2
    fi
    rm -f "$PEER_LOG"
    PEER_LOG=""
  fi
}
