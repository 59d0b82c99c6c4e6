#!/usr/bin/env bash
# CI smoke for the fuzz targets: replay the committed seeds through every check (plain
# `cargo test`, stable), then run each cargo-fuzz target for a few seconds.
#
#   scripts/fuzz-smoke.sh [SECONDS]     # default 5 s per target
#
# Installs cargo-fuzz when missing (`cargo install cargo-fuzz --locked`: 1 min 40 s measured
# on this 2-core machine while others were building). Set FUZZ_SMOKE_NO_INSTALL=1 to skip
# the libFuzzer part instead of installing. Cost when cargo-fuzz is present: ~2 min to build
# the targets, then 4 x SECONDS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${1:-5}
started=$SECONDS
step() { printf '\n==> %s  (+%ss)\n' "$*" "$((SECONDS - started))"; }

step "seed replay (cargo test in fuzz/)"
cargo test --quiet --manifest-path fuzz/Cargo.toml --lib

if ! cargo fuzz --version >/dev/null 2>&1; then
    if [ "${FUZZ_SMOKE_NO_INSTALL:-0}" = 1 ]; then
        echo "cargo-fuzz not installed and FUZZ_SMOKE_NO_INSTALL=1: libFuzzer runs skipped"
        exit 0
    fi
    step "cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
fi

cd fuzz
export RUSTC_BOOTSTRAP=1
step "cargo fuzz build"
cargo fuzz build
for t in decode decode_chunked roundtrip url; do
    step "fuzz $t for ${secs}s"
    mkdir -p "corpus/$t"
    if ! cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -malloc_limit_mb=512 -rss_limit_mb=2048 -timeout=5 \
        >"/tmp/fuzz-smoke-$t.log" 2>&1; then
        tail -40 "/tmp/fuzz-smoke-$t.log" >&2
        echo "fuzz target $t crashed; the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    grep -E '^Done [0-9]+ runs' "/tmp/fuzz-smoke-$t.log" || true
done
step "fuzz smoke passed"
