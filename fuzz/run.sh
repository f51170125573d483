#!/usr/bin/env bash
# Runs every cargo-fuzz target of authd for a bounded time.
#
#   fuzz/run.sh [--update-corpus] [--no-asan] [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; TARGETs default to all of them. The
# targets are built once, then each runs with fuzz/corpus/<target> and
# fuzz/seeds/<target> as read-only seeds; the inputs it finds go to a
# temporary directory, so a run never changes the tree. Exits non-zero if
# any target crashes, times out or runs out of memory, and prints the path
# of the input that did it (kept under fuzz/artifacts/<target>/).
#
# --update-corpus  merges the new inputs into fuzz/corpus/<target> and
#                  minimizes it (for developers; commit the result).
# --no-asan        builds without AddressSanitizer, for short CI runs: the
#                  build takes ~30% less CPU and runs 3-5x more executions
#                  per second. Panics (every invariant is an assertion),
#                  hangs and memory exhaustion (RSS over 2 GB) are still
#                  caught; a single huge allocation only with ASan.
#
# Needs cargo (crates.io is the only network access it uses: cargo-fuzz
# is installed if missing). Uses the nightly toolchain when rustup has one,
# else the default toolchain with RUSTC_BOOTSTRAP=1.
#
# Environment: FUZZ_TOOLCHAIN (e.g. "nightly" or "stable") overrides that
# choice; CARGO_BUILD_JOBS limits the build's parallelism.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.1
seconds=60
update=0
sanitizer=address
targets=()
for arg in "$@"; do
    case "$arg" in
        --update-corpus) update=1 ;;
        --no-asan) sanitizer=none ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
        *[!0-9]*) targets+=("$arg") ;;
        *) seconds=$arg ;;
    esac
done

cd "$(dirname "$0")"
fuzz_dir=$(pwd)

# The toolchain: nightly if rustup has it, else the default one with the
# unstable flags cargo-fuzz needs allowed.
toolchain=()
if [[ -n "${FUZZ_TOOLCHAIN:-}" ]]; then
    toolchain=("+$FUZZ_TOOLCHAIN")
elif command -v rustup >/dev/null && rustup toolchain list | grep -q '^nightly'; then
    toolchain=(+nightly)
fi
if [[ "${toolchain[*]-}" != "+nightly"* ]]; then
    export RUSTC_BOOTSTRAP=1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
fi

build_flags=(--release --debug-assertions --sanitizer "$sanitizer")
echo "== building ${#targets[@]} targets (cargo ${toolchain[*]-} fuzz build ${build_flags[*]})"
build_start=$(date +%s)
cargo "${toolchain[@]}" fuzz build "${build_flags[@]}"
echo "== built in $(( $(date +%s) - build_start ))s"

triple=$(rustc "${toolchain[@]}" -vV | sed -n 's/^host: //p')
bin_dir="$fuzz_dir/target/$triple/release"

work=$(mktemp -d "${TMPDIR:-/tmp}/authd-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

failed=()
printf '%-18s %12s %9s %8s %s\n' target executions exec/s seconds corpus
for target in "${targets[@]}"; do
    mkdir -p "$work/$target" "corpus/$target" "seeds/$target" "artifacts/$target"
    log="$work/$target.log"
    start=$(date +%s.%N)
    status=0
    # -timeout: one input taking this long is a hang. -malloc_limit_mb: one
    # allocation this big is a bug. -max_len covers every length limit in
    # authd (scope 1 KiB, redirect URI 2000, Basic 2 KiB) with room to spare.
    "$bin_dir/$target" "$work/$target" "corpus/$target" "seeds/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -max_len=8192 -print_final_stats=1 -artifact_prefix="$fuzz_dir/artifacts/$target/" \
        >"$log" 2>&1 || status=$?
    elapsed=$(echo "$start $(date +%s.%N)" | awk '{printf "%.1f", $2 - $1}')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    found=$(find "$work/$target" -type f | wc -l)
    printf '%-18s %12s %9s %8s %s\n' "$target" "${execs:-?}" "${rate:-?}" "$elapsed" \
        "$(find "corpus/$target" -type f | wc -l) kept + $found new"
    if [[ $status -ne 0 ]]; then
        failed+=("$target")
        echo "!! $target failed (exit $status); last lines of its log:" >&2
        grep -v '^#[0-9]' "$log" | tail -n 40 >&2
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
        if [[ -n "$artifact" ]]; then
            echo "!! input: $artifact" >&2
            echo "!! reproduce: cd fuzz && cargo ${toolchain[*]-} fuzz run $target $artifact" >&2
        fi
        continue
    fi
    if [[ $update -eq 1 ]]; then
        # A fresh directory holding the seeds: merge the kept and the new
        # inputs into it, keeping a small set that covers every edge the
        # seeds do not (set cover, edges without hit counts, so the corpus
        # stays a few hundred small files), then drop the seeds again.
        min="$work/$target.min"
        mkdir "$min"
        (cd "seeds/$target" && find . -maxdepth 1 -type f -exec cp {} "$min/" \;)
        "$bin_dir/$target" -set_cover_merge=1 -use_counters=0 "$min" "corpus/$target" "$work/$target" \
            -max_len=8192 -timeout=10 -rss_limit_mb=2048 >"$work/$target.merge.log" 2>&1
        (cd "seeds/$target" && find . -maxdepth 1 -type f -exec rm -f "$min/{}" \;)
        rm -rf "corpus/$target"
        mv "$min" "corpus/$target"
        echo "   corpus/$target: $(find "corpus/$target" -type f | wc -l) files," \
            "$(cat "corpus/$target"/* 2>/dev/null | wc -c) bytes"
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "== FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "== all ${#targets[@]} targets ran ${seconds}s each without a crash"
