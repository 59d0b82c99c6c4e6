#!/usr/bin/env bash
# Provision, then run the tour example (it starts its own throwaway servers).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/provision.sh
if [ ! -f examples/tour.rs ] && [ ! -f examples/tour/main.rs ]; then
    echo "tour: examples/tour.rs does not exist yet" >&2
    exit 1
fi
exec cargo run --release --example tour --features testkit -- "$@"
