#!/usr/bin/env bash
# Checks the container files without a Docker engine (CI has none):
#   1. docker-compose.yml validates (`docker compose config`, or the
#      standalone docker-compose where the compose plugin is missing);
#   2. the Dockerfile's build context is complete: the files its build stage
#      COPYs, and only those, are put in a scratch directory and checked with
#      the same cargo command's manifest and sources (`cargo check --locked`).
# The dependencies are shared with the repository's own target/ directory, so
# after `cargo clippy` this costs about a minute.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "compose file:"
if docker compose version >/dev/null 2>&1; then
    docker compose -f docker-compose.yml config --quiet
elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose -f docker-compose.yml config --quiet
else
    echo "neither 'docker compose' nor 'docker-compose' is installed" >&2
    exit 1
fi
echo "  docker-compose.yml is valid"

echo "Dockerfile build context:"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
# The build stage's COPY lines (not COPY --from), relative to the context.
stage=$(awk '/^FROM /{n++} n==1' Dockerfile)
while read -r _ args; do
    read -r -a parts <<<"$args"
    dest=${parts[-1]}
    for src in "${parts[@]:0:${#parts[@]}-1}"; do
        case $dest in
            ./) cp -r "$src" "$context/" ;;
            *) mkdir -p "$context/$(dirname "$dest")" && cp -r "$src" "$context/$dest" ;;
        esac
    done
done < <(grep -E '^COPY ' <<<"$stage" | grep -v -- '--from')
# Nothing the build needs may be excluded by .dockerignore either.
if [ -f .dockerignore ]; then
    for copied in "$context"/*; do
        name=$(basename "$copied")
        grep -qx "!$name/\?" .dockerignore || { echo ".dockerignore excludes $name, which the Dockerfile copies" >&2; exit 1; }
    done
fi
(cd "$context" && CARGO_TARGET_DIR="$OLDPWD/target" cargo check --locked --quiet --bin authd)
echo "  $(ls "$context" | tr '\n' ' ')build with cargo check --locked"
