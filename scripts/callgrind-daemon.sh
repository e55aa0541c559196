#!/usr/bin/env bash
# Instruction counts of the whole daemon per message, independent of the machine's load
# (docs/benchmarks.md section 22): the release daemon under callgrind, journal only, N
# messages from 4 connections. Run from the repository root after
#   scripts/build-plugins.sh && cargo build --release -p passerelle
# Usage: scripts/callgrind-daemon.sh TAG [MESSAGES]   (default 3000)
# Writes $WORK/cg.TAG; read it with
#   callgrind_annotate --inclusive=yes cg.TAG | grep -E 'PROGRAM TOTALS|sqlite3_step \[|…'
# and divide by MESSAGES. Env: BIN (default target/release/passerelle), WORK (default
# /tmp/passerelle-callgrind), PORT (default 2575), WASM (the hl7v2-lab component).
# Caveats: valgrind hides SHA-NI, so SHA-256 runs its portable code here (≈ 130 k instructions
# per message that the real CPU does not spend); the first run compiles the component under
# valgrind (minutes) and keeps it in $WORK/data/cache for the next ones.
set -euo pipefail
TAG=${1:?tag}; N=${2:-3000}
ROOT=$PWD
B=${BIN:-$ROOT/target/release/passerelle}
W=${WORK:-/tmp/passerelle-callgrind}
PORT=${PORT:-2575}
WASM=${WASM:-$ROOT/target/wasm32-wasip2/plugin/hl7v2_lab.wasm}
mkdir -p "$W/data"
cat > "$W/passerelle.toml" <<TOML
data_dir = "data"
routes = "routes.toml"
[plugins.hl7v2-lab]
path = "$WASM"
[sources.lab-mllp]
type = "mllp"
listen = "127.0.0.1:$PORT"
plugin = "hl7v2-lab"
TOML
echo 'unmatched = "hold"' > "$W/routes.toml"
# A fresh journal, the compiled-component cache kept.
find "$W/data" -mindepth 1 -maxdepth 1 ! -name cache -exec rm -rf {} +
cd "$W"
valgrind --tool=callgrind --callgrind-out-file="$W/cg.$TAG" \
    "$B" run --config passerelle.toml --data-dir data > "$W/daemon.$TAG.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
until (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; do
    kill -0 $PID 2>/dev/null || { cat "$W/daemon.$TAG.log"; exit 1; }
    sleep 0.5
done
"$B" bench --target 127.0.0.1:"$PORT" --connections 4 --messages "$N" --warmup 0 | tail -2
kill -TERM $PID
wait $PID || true
trap - EXIT
echo "$W/cg.$TAG"
