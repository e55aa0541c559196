#!/usr/bin/env bash
# The whole test suite: builds the plugins, the binary, then runs every test of the workspace.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh
cargo build --quiet -p passerelle
cargo test --workspace "$@"
