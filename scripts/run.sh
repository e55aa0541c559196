#!/usr/bin/env bash
# Runs Passerelle on the example configuration (config/passerelle.toml), after building the
# plugins and the binary. Extra arguments go to `passerelle run` (e.g. --data-dir /tmp/p).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh
cargo build --quiet --release -p passerelle
exec target/release/passerelle run --config config/passerelle.toml "$@"
