#!/usr/bin/env bash
# Builds the Python adapter into a passerelle:adapter component with componentize-py:
#   plugins/python-example/build.sh [OUT.wasm]      (default: python_example.wasm here)
# Needs componentize-py (python3 -m pip install componentize-py; COMPONENTIZE_PY=/path/to/it
# when it is not on PATH). It bundles its own CPython for wasm32-wasip2: the local Python
# version does not matter.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-$here/python_example.wasm}")
tool=${COMPONENTIZE_PY:-componentize-py}
if ! command -v "$tool" >/dev/null; then
    echo "componentize-py is not installed: python3 -m pip install componentize-py" >&2
    exit 1
fi
cd "$here"
# -d: the WIT contract shared with the Rust SDK; -w: its world; `app`: the module (app.py)
# whose `WitWorld` class implements the exports.
"$tool" -d ../../plugin-sdk/wit -w adapter componentize app -o "$out"
