#!/usr/bin/env bash
# The README's "Walk-through with grpcurl", run as written: its sh blocks are
# read out of README.md, only the server's address is changed, and they run
# against a test authd whose admin the test created as the README's CLI step
# does. Prints, last, one JSON line of what the test checks.
set -euo pipefail
: "${AUTHD_GRPC:?}" "${PYTHON:?}"
export PATH="$(dirname "$PYTHON"):$PATH" # the venv's grpcurl
command -v grpcurl >/dev/null || { echo "grpcurl missing from the venv" >&2; exit 1; }
command -v jq >/dev/null || { echo "the walk-through needs jq (apt-get install jq)" >&2; exit 1; }

# The sh blocks of the walk-through section, NUL-separated, but the CLI one
# (the test created the admin already, with the same email and password).
blocks=()
while IFS= read -r -d '' block; do
    blocks+=("${block//127.0.0.1:50051/$AUTHD_GRPC}")
done < <(awk '
    /^## Walk-through with grpcurl/ { inside = 1; next }
    inside && /^## / { inside = 0 }
    inside && /^```sh$/ { block = ""; collecting = 1; next }
    inside && collecting && /^```$/ { collecting = 0; if (block !~ /account create/) printf "%s%c", block, 0; next }
    inside && collecting { block = block $0 "\n" }
' ../../README.md)
[ ${#blocks[@]} -eq 2 ] || { echo "expected two grpcurl blocks in the walk-through, found ${#blocks[@]}" >&2; exit 1; }

# 1. list and describe: text.
listing=$(bash -euo pipefail -c "${blocks[0]}" 2>&1) || { echo "$listing" >&2; exit 1; }
echo "$listing" >&2
grep -qx 'authd.v1.OAuth' <<<"$listing" || { echo "list does not name authd.v1.OAuth" >&2; exit 1; }
grep -q 'rpc Introspect' <<<"$listing" || { echo "describe does not show Introspect" >&2; exit 1; }

# 2. The flow: every command's JSON answer, in order; the last four are
# introspect, revoke, introspect and the health check.
out=$(bash -euo pipefail -c "${blocks[1]}" 2>&1) || { echo "$out" >&2; exit 1; }
echo "$out" >&2
printf '%s\n' "$out" | jq -s -c '{
    decisions: [.[] | objects | keys[] | select(. == "consentNeeded" or . == "issued" or . == "loginRequired")],
    resume_prompt: [.[] | .loginRequired?.resume.prompt | select(. != null)],
    created: [.[] | select(.username? == "alice")] | length,
    first_introspect: .[-4],
    last_introspect: .[-2],
    health: .[-1].status
}'
