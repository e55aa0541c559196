#!/usr/bin/env bash
# Builds every adapter plugin (plugins/*) and test guest (tests/guests/*) as a wasm32-wasip2
# component into target/wasm32-wasip2/plugin/. Installs the wasm target if it is missing.
# Cargo's own change tracking means nothing is rebuilt when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 target" >&2
    rustup target add wasm32-wasip2
fi

packages=()
for dir in plugins/*/ tests/guests/*/; do
    [ -f "$dir/Cargo.toml" ] || continue
    name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/Cargo.toml" | head -n1)
    packages+=(-p "$name")
done
cargo build --quiet --profile plugin --target wasm32-wasip2 "${packages[@]}"
ls -1 "${CARGO_TARGET_DIR:-target}"/wasm32-wasip2/plugin/*.wasm >&2
