#!/usr/bin/env bash
# The fault tests (tests/faults.rs) with a longer load: each phase of load,
# and each PostgreSQL outage, lasts SECONDS (default 30) instead of the 2
# that `cargo test` uses. Release build by default, so the load is closer
# to real; FAULTS_PROFILE=dev reuses `cargo test`'s build (CI's brief run).
#
#   scripts/faults.sh [SECONDS] [extra cargo test arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
case "$seconds" in
    ''|*[!0-9.]*) echo "usage: $0 [SECONDS] [cargo test args...]" >&2; exit 2 ;;
esac
profile=(--release)
case "${FAULTS_PROFILE:-release}" in
    release) ;;
    dev) profile=() ;;
    *) echo "FAULTS_PROFILE must be release or dev" >&2; exit 2 ;;
esac
export AUTHD_FAULT_LOAD_SECS="$seconds"
echo "--- fault tests, ${seconds}s of load and outage per phase (${FAULTS_PROFILE:-release})"
exec cargo test "${profile[@]}" --locked --test faults "$@" -- --nocapture --test-threads 1
