#!/usr/bin/env bash
# One end-to-end run against a fresh daemon, with the daemon's CPU time and context switches
# per message (docs/benchmarks.md section 11). Run from the repository root after
#   scripts/build-plugins.sh && cargo build --release -p passerelle
# Usage: scripts/bench-run.sh hold|file CONNECTIONS MESSAGES [passerelle bench options...]
#   hold: nothing routed (journal only); file: every lab result to a file destination, checked.
# Env: BIN (default target/release/passerelle; set it to compare two builds), WORK (default
# /tmp/passerelle-bench-run), PORT (default 2575).
# Prints: msg/s, p50, p99, p99.9 (µs), AA, errors, files missing, daemon CPU µs and context
# switches per message.
set -euo pipefail
MODE=${1:?hold|file}; CONN=${2:?connections}; N=${3:?messages}; shift 3
ROOT=$PWD
B=${BIN:-$ROOT/target/release/passerelle}
W=${WORK:-/tmp/passerelle-bench-run}
PORT=${PORT:-2575}
mkdir -p "$W"
cat > "$W/passerelle.toml" <<TOML
data_dir = "data"
routes = "routes.toml"
[plugins.hl7v2-lab]
path = "$ROOT/target/wasm32-wasip2/plugin/hl7v2_lab.wasm"
[sources.lab-mllp]
type = "mllp"
listen = "127.0.0.1:$PORT"
plugin = "hl7v2-lab"
[destinations.out]
type = "file"
dir = "out"
TOML
check=()
if [ "$MODE" = file ]; then
    printf 'unmatched = "out"\n[[route]]\nname = "lab"\ndestinations = ["out"]\nmatch = { kind = "lab-result" }\n' > "$W/routes.toml"
    check=(--check-dir "$W/data/out")
else
    echo 'unmatched = "hold"' > "$W/routes.toml"
fi
rm -rf "$W/data"
"$B" run --config "$W/passerelle.toml" --data-dir "$W/data" 2>>"$W/daemon.log" & PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
until (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; do sleep 0.05; done
# Warm-up: instances, page cache, the journal's first pages.
"$B" bench --target 127.0.0.1:"$PORT" --connections 8 --messages 2000 --warmup 10 >/dev/null 2>&1
cpu() { awk '{print $14 + $15}' /proc/$PID/stat; }   # clock ticks (1/100 s)
switches() { cat /proc/$PID/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
cpu0=$(cpu); cs0=$(switches)
"$B" bench --target 127.0.0.1:"$PORT" --pid "$PID" --json --connections "$CONN" --messages "$N" \
    --warmup 0 "${check[@]}" "$@" > "$W/report.json" || true
cpu1=$(cpu); cs1=$(switches)
aa=$(jq .aa "$W/report.json")
jq -r '[(.throughput_msg_s|floor), .latency.p50_us, .latency.p99_us, .latency["p99.9_us"], .aa, .errors, (.check.missing // "-")] | @tsv' "$W/report.json" \
    | tr '\n' '\t'
awk -v c=$((cpu1 - cpu0)) -v s=$((cs1 - cs0)) -v n="$aa" \
    'BEGIN { if (n > 0) printf "cpu_us/msg=%d\tctxsw/msg=%.2f\n", c * 10000 / n, s / n; else print "no message acknowledged" }'
