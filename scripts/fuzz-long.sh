#!/usr/bin/env bash
# Long fuzzing run: every target (or the given ones) one after another, one job at a time.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); runs on the stable toolchain
# through RUSTC_BOOTSTRAP=1 (cargo-fuzz passes nightly-only -Z flags).
#
#   scripts/fuzz-long.sh [SECONDS] [TARGET...]          # time mode: SECONDS each (default 300)
#   RUNS=N scripts/fuzz-long.sh [SECONDS] [TARGET...]   # run mode: N executions each
#
# In run mode libFuzzer gets -runs=N and no time limit, unless SECONDS is also given, which
# then caps each target's time too (the script reports a target stopped short of N).
#
# Environment:
#   RUNS=N          stop each target after N executions (libFuzzer -runs=N)
#   SANITIZER=none  the default: no ASan (valkit is #![forbid(unsafe_code)] and the fuzzed
#                   code uses only std; see docs/fuzzing.md). Debug assertions and overflow
#                   checks stay on. SANITIZER=address gives the ASan build.
#   FUZZ_ARGS=...   extra libFuzzer flags, after the per-target defaults (last one wins)
#
# New inputs go to fuzz/corpus/<target>/ (git-ignored); the committed seeds in
# fuzz/seeds/<target>/ are read only. Crashes land in fuzz/artifacts/<target>/ and make the
# script exit non-zero. Each target's libFuzzer final stats and Done line are printed at the
# end, with the wall time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

secs=
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi
runs=${RUNS:-}
if [ -n "$runs" ] && ! [[ $runs =~ ^[0-9]+$ ]]; then
    echo "RUNS must be a number of executions, not '$runs'" >&2
    exit 2
fi
[ -n "$runs" ] || secs=${secs:-300}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode decode_chunked roundtrip url)

sanitizer=${SANITIZER:-none}
# A separate target dir per sanitizer, so switching does not rebuild the other one
# (plain `cargo fuzz run` uses fuzz/target with ASan).
case $sanitizer in
address) build=(-s address) ;;
*) build=(-s "$sanitizer" --target-dir "target/san-$sanitizer") ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

# Per-target defaults, before FUZZ_ARGS (libFuzzer keeps the last value of a flag).
# decode_chunked and roundtrip cost grows with input length (every input is decoded several
# times, down to 1-byte feeding); docs/fuzzing.md explains the bounds.
target_args() {
    case $1 in
    decode_chunked) echo "-max_len=1024" ;;
    roundtrip) echo "-max_len=256" ;;
    esac
}

# One allocation of 512 MiB or more is a finding (a pre-allocation from a hostile length);
# without a sanitizer the harness enforces it itself (fuzz/src/lib.rs, LimitedAlloc). The
# RSS limit is looser because libFuzzer's corpus (and ASan's quarantine) grow over a long
# run (a 10-minute ASan roundtrip run once crossed 512 MiB RSS with 27 MB of live heap).
# Extra libFuzzer flags: FUZZ_ARGS="-max_len=1024" scripts/fuzz-long.sh 600 roundtrip
read -r -a extra <<<"${FUZZ_ARGS:-}"
stop=()
[ -z "$secs" ] || stop+=(-max_total_time="$secs")
[ -z "$runs" ] || stop+=(-runs="$runs")
if [ -n "$runs" ]; then
    what="$runs runs${secs:+ (at most ${secs}s)}"
else
    what="${secs}s"
fi
# A libFuzzer final stat of the current log, or '?'.
fstat() {
    local v
    v=$(grep -oE "stat::$1: *[0-9]+" "$log" | grep -oE '[0-9]+$' | tail -1 || true)
    echo "${v:-?}"
}
export RUSTC_BOOTSTRAP=1
mkdir -p logs
failed=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="logs/$t.log"
    read -r -a defaults <<<"$(target_args "$t")"
    echo "==> $t: $what, sanitizer $sanitizer, flags ${defaults[*]} ${extra[*]} (log: fuzz/$log)"
    start=$(date +%s)
    if cargo fuzz run "${build[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        "${stop[@]}" -malloc_limit_mb=512 -rss_limit_mb=2048 -timeout=5 \
        -print_final_stats=1 "${defaults[@]}" "${extra[@]}" \
        >"$log" 2>&1; then
        status=ok
    else
        status=CRASH
        failed=1
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -5 >&2 || true
    fi
    wall=$(($(date +%s) - start))
    done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -1 || true)
    executed=$(fstat number_of_executed_units)
    if [ "$status" = ok ] && [ -n "$runs" ] && [ "$executed" != '?' ] && [ "$executed" -lt "$runs" ]; then
        status="ok, stopped short of $runs runs"
    fi
    grep -E '^stat::' "$log" || true
    echo "${done_line:-no Done line}"
    summary+=("$t: $status; ${done_line:-no Done line}; exec/s $(fstat average_exec_per_sec);"\
" executions $executed; wall ${wall}s (incl. build); peak RSS $(fstat peak_rss_mb) MB;"\
" new units $(fstat new_units_added); sanitizer $sanitizer; corpus $(ls "corpus/$t" | wc -l) files")
done
printf '\n==> summary (%s, commit %s)\n' "$(date -u +%FT%TZ)" \
    "$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
printf '%s\n' "${summary[@]}"
exit $failed
