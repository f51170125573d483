#!/usr/bin/env bash
# authd as the door in front of a backend (BENCHMARKS.md, "The door"), in
# alternating rounds on one machine, against the same path without authd:
#   A. forward auth: nginx with auth_request asking authd, against the same
#      nginx proxying to the backend with no check;
#   B. the reverse proxy: authd --upstream-api in front of the backend,
#      against the backend alone.
# The backend is nginx answering a fixed 17-byte JSON body. authd runs as
# `authd serve` does by default (RUST_LOG=info: a log line per request).
#
#   bench/door.sh [--rounds 5] [--duration 10s] [--connections 32]
#
# Needs: a release build, nginx (Debian's nginx-light), wrk, PostgreSQL as
# bench/run-authd.sh uses it. Loopback only; every wrk run is bounded.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh
ROUNDS=5
DURATION=10s
CONNECTIONS=32
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
ensure_wrk
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx is required (apt-get install nginx-light)"

HTTP=http://127.0.0.1:8081
BACKEND=18090
DOOR=18091
PLAIN=18092
DIR=$(mktemp -d)
PID=
NGINX_PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

cargo build --release --quiet -p authd
# As shipped: the default log level, unless the caller says otherwise.
export RUST_LOG=${RUST_LOG:-info}
PID=$(bench/run-authd.sh --upstream-api "http://127.0.0.1:$BACKEND")

cat >"$DIR/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $DIR/body;
    proxy_temp_path $DIR/proxy;
    fastcgi_temp_path $DIR/fastcgi;
    uwsgi_temp_path $DIR/uwsgi;
    scgi_temp_path $DIR/scgi;
    upstream backend { server 127.0.0.1:$BACKEND; keepalive 64; }
    upstream authd { server 127.0.0.1:8081; keepalive 64; }
    # The backend: a fixed body.
    server {
        listen 127.0.0.1:$BACKEND;
        location / { default_type application/json; return 200 '{"backend":true}\n'; }
    }
    # The door: auth_request to authd, then the backend (the README's).
    server {
        listen 127.0.0.1:$DOOR;
        location / {
            auth_request /_authd;
            auth_request_set \$authd_account_id \$upstream_http_x_authd_account_id;
            auth_request_set \$authd_client_id \$upstream_http_x_authd_client_id;
            auth_request_set \$authd_scopes \$upstream_http_x_authd_scopes;
            proxy_set_header X-Authd-Account-Id \$authd_account_id;
            proxy_set_header X-Authd-Client-Id \$authd_client_id;
            proxy_set_header X-Authd-Scopes \$authd_scopes;
            proxy_set_header Authorization "";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }
        location = /_authd {
            internal;
            proxy_pass http://authd/authd/check;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header X-Original-Method \$request_method;
        }
    }
    # The same nginx in front of the backend, with no check.
    server {
        listen 127.0.0.1:$PLAIN;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }
    }
}
EOF
"$NGINX" -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log" &
NGINX_PID=$!
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$BACKEND/" && break; sleep 0.1; done

# A read token (client_credentials), active before anything is measured.
APP=$(curl -sS -m 10 -X POST "$HTTP/api/v1/apps" -H 'Content-Type: application/json' \
    -d '{"client_name":"door bench","redirect_uris":"urn:ietf:wg:oauth:2.0:oob","scopes":"read"}')
ID=$(printf '%s' "$APP" | json_field client_id)
SECRET=$(printf '%s' "$APP" | json_field client_secret)
export WRK_BEARER
WRK_BEARER=$(curl -sS -m 10 -u "$ID:$SECRET" -d grant_type=client_credentials -d scope=read \
    "$HTTP/oauth/token" | json_field access_token)
export WRK_PATH=/api/v1/timelines/home
for url in "http://127.0.0.1:$DOOR" "$HTTP"; do
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $WRK_BEARER" "$url$WRK_PATH")
    [ "$status" = 200 ] || die "$url$WRK_PATH answered $status, not 200"
done

THREADS=2
WARMUP=2s
run() { run_wrk "$1" "$2" backend_get.lua "$3" "$WRK_PATH" 2>/dev/null; }
echo "machine: $(nproc) cores; $(nginx -v 2>&1); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); commit $(git rev-parse --short HEAD)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP), $ROUNDS rounds, RUST_LOG=$RUST_LOG"
for round in $(seq "$ROUNDS"); do
    echo "--- round $round"
    run nginx-plain get "http://127.0.0.1:$PLAIN"
    run nginx-door get "http://127.0.0.1:$DOOR"
    run backend get "http://127.0.0.1:$BACKEND"
    run authd-proxy get "$HTTP"
done | tee "$DIR/results"
finish

python3 - "$DIR/results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) get RESULT rps=([\d.]+) p50_ms=([\d.]+) p90_ms=([\d.]+) p99_ms=([\d.]+)", line)
    if m:
        rows.setdefault(m.group(1), []).append((float(m.group(2)), float(m.group(5))))
def pair(door, ceiling, what):
    ratios = [d[0] / c[0] for d, c in zip(rows[door], rows[ceiling])]
    added = [d[1] - c[1] for d, c in zip(rows[door], rows[ceiling])]
    print(f"{what}: {statistics.median(r[0] for r in rows[door]):.0f}/s against {statistics.median(r[0] for r in rows[ceiling]):.0f}/s; "
          f"ratio median {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}); "
          f"p99 {statistics.median(r[1] for r in rows[door]):.2f} ms against {statistics.median(r[1] for r in rows[ceiling]):.2f} ms, "
          f"added {statistics.median(added):.2f} ms ({min(added):.2f}-{max(added):.2f})")
print()
pair("nginx-door", "nginx-plain", "forward auth behind nginx / nginx proxying with no check")
pair("authd-proxy", "backend", "authd --upstream-api / the backend alone")
PY
