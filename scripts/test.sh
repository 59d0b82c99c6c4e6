#!/usr/bin/env bash
# The one test command: provision, format, lint, build every feature combination,
# check the layering, run all tests (against both Valkey and Redis; the tests choose).
# Budget: well under 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$SECONDS
step() { printf '\n==> %s  (+%ss)\n' "$*" "$((SECONDS - started))"; }

# Imports only point down (docs/architecture.md). Each row: a file or directory under
# src/ and the crate modules it must not use. Missing paths are skipped (not written yet).
PATTERNS="cache|lock|limit|queue|write_behind"
LAYERS=(
    "src/error.rs        config|resp|cmd|conn|pool|cluster|client|testkit|$PATTERNS"
    "src/resp            config|cmd|conn|pool|cluster|client|testkit|$PATTERNS"
    "src/config          cmd|conn|pool|cluster|client|testkit|$PATTERNS"
    "src/cmd.rs          config|conn|pool|cluster|client|testkit|$PATTERNS"
    "src/cmd             config|conn|pool|cluster|client|testkit|$PATTERNS"
    "src/commands        config|conn|pool|cluster|client|testkit|$PATTERNS"
    "src/script          config|conn|pool|cluster|client|testkit|$PATTERNS"
    "src/conn            commands|script|pool|cluster|client|testkit|$PATTERNS"
    "src/pool            cluster|client|testkit|$PATTERNS"
    "src/cluster         client|testkit|$PATTERNS"
    "src/client          testkit|$PATTERNS"
    "src/testkit         pool|cluster|client|$PATTERNS"
    "src/pubsub          pool|cluster|client|testkit|near|$PATTERNS"
    "src/near            pool|cluster|client|testkit|$PATTERNS"
    "src/cache           conn|pool|cluster|client|testkit|limit|queue|write_behind"
    "src/lock            conn|pool|client|testkit|cache|limit|queue|cluster|write_behind"
    "src/limit           conn|pool|cluster|client|testkit|cache|lock|queue|write_behind"
    "src/queue           conn|pool|cluster|client|testkit|cache|lock|limit|write_behind"
    "src/write_behind    conn|pool|cluster|client|testkit|cache|lock|limit|queue"
    "src/admin           conn|pool|cluster|client|testkit|cache|lock|limit|write_behind"
)

check_layers() {
    local row path forbidden names pattern hits failed=0 reexports
    # `module name` for every name src/lib.rs re-exports at the crate root
    # (`pub use module::{A, B as C};` gives `module A` and `module C`).
    reexports=$(
        perl -0777 -ne '
            while (/^pub use (\w+)::(\{[^}]*\}|\w+);/mg) {
                my ($module, $list) = ($1, $2);
                $list =~ s/[{}]//g;
                for my $item (split /,/, $list) {
                    $item =~ s/^\s+|\s+$//g;
                    next if $item eq "" || $item eq "self";
                    $item = $1 if $item =~ /\bas\s+(\w+)$/;
                    $item =~ s/.*:://;
                    print "$module $item\n";
                }
            }' src/lib.rs
    )
    for row in "${LAYERS[@]}"; do
        read -r path forbidden <<<"$row"
        [ -e "$path" ] || continue
        # The names re-exported at the crate root from a forbidden module are forbidden too:
        # `use crate::Client` is `crate::client::Client`.
        names=$(awk -v re="^(${forbidden})$" '$1 ~ re { print $2 }' <<<"$reexports" | paste -sd'|')
        # `crate::conn`, `crate::conn::x`, and `crate::{resp, conn}` on one line;
        # comment lines are ignored.
        pattern="crate::(${forbidden})\b|crate::\{[^}]*\b(${forbidden})\b"
        if [ -n "$names" ]; then
            pattern+="|crate::(${names})\b|crate::\{[^}]*\b(${names})\b"
        fi
        hits=$(grep -rnE "$pattern" --include='*.rs' "$path" |
            grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)
        if [ -n "$hits" ]; then
            echo "layering: $path must not use crate::{${forbidden//|/,}} (nor what the crate root re-exports from them):"
            echo "$hits" | sed 's/^/    /'
            failed=1
        fi
    done
    return $failed
}

step "provision"
scripts/provision.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features)"
cargo clippy --quiet --all-targets --all-features -- -D warnings

for features in "--no-default-features" \
    "--no-default-features --features tls" \
    "--no-default-features --features testkit" \
    "--all-features"; do
    step "cargo build $features"
    # shellcheck disable=SC2086 # intentional word splitting of the flags
    cargo build --quiet $features
done

step "cargo doc (warnings are errors: broken links, missing docs)"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --all-features --no-deps

step "layering"
check_layers
echo "layering ok"

step "promtool: alert rules (ops/alerts.yml) and their unit tests"
promtool check rules ops/alerts.yml
promtool test rules ops/alerts_test.yml

step "cargo test --all-features (build)"
# Compiling is not bounded by the test timeout: on a loaded machine it alone can take minutes.
cargo test --all-features --no-run --quiet

step "cargo test --all-features (run)"
timeout --foreground "${VALKIT_TEST_TIMEOUT:-720}" cargo test --all-features

step "cluster suites again, on a Redis 7.0 cluster"
# The same cluster tests and pattern suites, the shared cluster made of redis-server
# (VALKIT_CLUSTER_KIND); single-server-only tests run once more on Valkey alone.
VALKIT_CLUSTER_KIND=redis VALKIT_ONLY=cluster timeout --foreground 300 \
    cargo test --all-features --test cluster --test cache --test lock --test limit \
    --test queue --test write_behind

step "fuzz smoke (seed replay + 5 s per target)"
scripts/fuzz-smoke.sh 5

step "all green in $((SECONDS - started))s"
