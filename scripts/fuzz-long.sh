#!/usr/bin/env bash
# Long fuzzing run: every target one after another, SECONDS each (default 300), one job at
# a time. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); runs on the stable
# toolchain through RUSTC_BOOTSTRAP=1 (cargo-fuzz passes nightly-only -Z flags).
#
#   scripts/fuzz-long.sh [SECONDS] [TARGET...]
#
# New inputs go to fuzz/corpus/<target>/ (git-ignored); the committed seeds in
# fuzz/seeds/<target>/ are read only. Crashes land in fuzz/artifacts/<target>/ and make the
# script exit non-zero. Each target's final libFuzzer stats line is printed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

secs=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode decode_chunked roundtrip url)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

# One allocation over 512 MiB is a finding (a pre-allocation from a hostile length); the
# RSS limit is looser because ASan's quarantine and libFuzzer's corpus grow over a long run
# (a 10-minute roundtrip run once crossed 512 MiB RSS with 27 MB of live heap).
# Extra libFuzzer flags: FUZZ_ARGS="-max_len=1024" scripts/fuzz-long.sh 600 roundtrip
read -r -a FUZZ_ARGS <<<"${FUZZ_ARGS:-}"
export RUSTC_BOOTSTRAP=1
mkdir -p logs
failed=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="logs/$t.log"
    echo "==> $t for ${secs}s (log: fuzz/$log)"
    # Default build: optimized, with debug assertions and overflow checks.
    if cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -malloc_limit_mb=512 -rss_limit_mb=2048 -timeout=5 \
        -print_final_stats=1 "${FUZZ_ARGS[@]}" \
        >"$log" 2>&1; then
        status=ok
    else
        status=CRASH
        failed=1
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -5 >&2 || true
    fi
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    speed=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -1 || true)
    summary+=("$t: $status; ${done_line:-no Done line}; exec/s $speed; executions $runs; corpus $(ls "corpus/$t" | wc -l) files")
done
printf '\n==> summary\n'
printf '%s\n' "${summary[@]}"
exit $failed
