#!/usr/bin/env bash
# All benchmarks in one go: parser (criterion), allocations per reply, round trips
# (criterion + redis-benchmark on the same server), callgrind instructions per GET, and
# pool checkout+GET against redis-rs + r2d2 (benches/pool.rs).
# Repeats RUNS times (default 3) and prints the medians of the per-run ratios.
#
#   scripts/bench.sh                 # full: about 22 minutes on 2 shared cores
#   RUNS=1 QUICK=1 scripts/bench.sh  # smoke: a few minutes
#   ONLY=pool scripts/bench.sh       # just the pool bench, RUNS times (about 10 minutes)
#   ONLY=rt scripts/bench.sh         # just round trips + callgrind, RUNS times (about 2 min a run)
#
# Round trips run with the bench process and the server pinned to one CPU (taskset; see
# benches/roundtrip.rs): VALKIT_RT_PIN=same (default) | split | off, VALKIT_RT_CPU=0.
# Unpinned, loopback round trips on this 2-vCPU VM are bimodal (docs/benchmarks.md).
#
# Results: target/bench-results/run-N/*.json and target/bench-results/summary.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-3}
if [ -n "${QUICK:-}" ]; then
    PARSER_ARGS=(--warm-up-time 0.2 --measurement-time 0.5 --sample-size 10)
    RT_ARGS=(--warm-up-time 0.2 --measurement-time 0.5 --sample-size 10)
    export VALKIT_RT_ROUNDS=${VALKIT_RT_ROUNDS:-3}
    export VALKIT_BENCH_ROUNDS=${VALKIT_BENCH_ROUNDS:-2} VALKIT_BENCH_SECS=${VALKIT_BENCH_SECS:-0.5}
else
    PARSER_ARGS=(--warm-up-time 0.5 --measurement-time 1.5 --sample-size 10)
    RT_ARGS=(--warm-up-time 0.3 --measurement-time 1 --sample-size 20)
fi
TARGET=${CARGO_TARGET_DIR:-target}
OUT=$TARGET/bench-results
CRIT=$TARGET/criterion
rm -rf "$OUT"
mkdir -p "$OUT"

pool_run() {
    local dir=$1
    rm -f "$CRIT/pool.json"
    cargo bench --all-features --bench pool 2>&1 | grep -E '^pool bench|^variant|^pool|^r2d2|^conn|^ratio|^load' || true
    cp "$CRIT/pool.json" "$dir/pool.json"
}

if [ "${ONLY:-}" = pool ]; then
    echo "==> build"
    cargo bench --all-features --bench pool --no-run
    for run in $(seq 1 "$RUNS"); do
        mkdir -p "$OUT/run-$run"
        echo "==> run $run/$RUNS: pool"
        pool_run "$OUT/run-$run"
    done
    {
        echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
        echo "runs: $RUNS; $(date -u +%Y-%m-%dT%H:%MZ); commit $(git rev-parse --short HEAD)"
        echo
        python3 scripts/bench_collect.py --pool-summary "$OUT"
    } | tee "$OUT/summary.md"
    exit 0
fi

command -v taskset >/dev/null || echo "note: taskset missing (util-linux): round trips run unpinned, bimodal here"
command -v redis-benchmark >/dev/null || echo "note: redis-benchmark missing (apt-get install redis-tools): its column stays empty"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)"; exit 1; }

echo "==> build"
if [ "${ONLY:-}" = rt ]; then
    cargo bench --all-features --bench roundtrip --no-run
else
    cargo bench --all-features --bench parser --bench allocs --bench roundtrip --bench pool --no-run
fi
cargo build --profile bench --all-features --example bench_get
BENCH_GET=$TARGET/release/examples/bench_get

if [ "${ONLY:-}" != rt ]; then
    echo "==> allocations per reply (deterministic: once)"
    cargo bench --all-features --bench allocs
    cp "$CRIT/parser-allocs.json" "$OUT/allocs.json"
fi

# Client instructions per GET: N=2000 minus N=1000, over 1000; per pipeline of 64 SETs of
# 16 B: N=200 minus N=100, over 100.
callgrind_run() {
    local dest=$1 port client n total
    coproc SRV { "$BENCH_GET" server; }
    read -r port <&"${SRV[0]}"
    printf '{' >"$dest"
    for client in valkit redis; do
        for n in 1000 2000; do
            valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
                "$BENCH_GET" "$client" "$port" "$n" 2>/dev/null
            total=$(grep -E '^(summary|totals):' "$OUT/callgrind.out" | head -1 | awk '{print $2}')
            printf '"%s_%s": %s, ' "$client" "$n" "$total" >>"$dest"
        done
        for n in 100 200; do
            valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
                "$BENCH_GET" "$client" "$port" "$n" pipe_set 2>/dev/null
            total=$(grep -E '^(summary|totals):' "$OUT/callgrind.out" | head -1 | awk '{print $2}')
            printf '"%s_pipe_set_%s": %s, ' "$client" "$n" "$total" >>"$dest"
        done
    done
    printf '"port": %s}\n' "$port" >>"$dest"
    rm -f "$OUT/callgrind.out"
    eval "exec ${SRV[1]}>&-"
    wait "$SRV_PID" 2>/dev/null || true
}

for run in $(seq 1 "$RUNS"); do
    dir=$OUT/run-$run
    mkdir -p "$dir"
    rm -rf "$CRIT"/parse_* "$CRIT"/rt_* "$CRIT"/rt-interleaved.json "$CRIT"/redis-benchmark.json
    if [ "${ONLY:-}" != rt ]; then
        echo "==> run $run/$RUNS: parser"
        cargo bench --all-features --bench parser -- "${PARSER_ARGS[@]}" 2>&1 | grep -E '^parse_|time:' || true
    fi
    echo "==> run $run/$RUNS: round trips + redis-benchmark (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    cargo bench --all-features --bench roundtrip -- "${RT_ARGS[@]}" 2>&1 | grep -E '^placement|^rt_|time:|^redis-benchmark|^interleaved' || true
    python3 scripts/bench_collect.py "$CRIT" "$dir"
    echo "==> run $run/$RUNS: callgrind"
    callgrind_run "$dir/callgrind.json"
    if [ "${ONLY:-}" != rt ]; then
        echo "==> run $run/$RUNS: pool vs r2d2"
        pool_run "$dir"
    fi
done

{
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "runs: $RUNS; $(date -u +%Y-%m-%dT%H:%MZ); commit $(git rev-parse --short HEAD)"
    echo
    python3 scripts/bench_collect.py --summary "$OUT"
    echo
    python3 scripts/bench_collect.py --pool-summary "$OUT"
} | tee "$OUT/summary.md"
