#!/usr/bin/env bash
# The whole test suite: builds the plugins, the binary, then runs every test of the workspace.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests read public sample messages from the shared data folder next to this checkout.
if [ ! -d ../shared/samples ]; then
    echo "scripts/test.sh: $(cd .. && pwd)/shared/samples is missing: the tests read the sample" >&2
    echo "messages there; clone Passerelle next to the shared/ folder." >&2
    exit 1
fi
scripts/build-plugins.sh
cargo build --quiet -p passerelle
cargo test --workspace "$@"
