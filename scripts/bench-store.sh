#!/usr/bin/env bash
# The record-store destination's rate (docs/benchmarks.md section 20): a fresh daemon whose
# only route goes to a record store, MESSAGES sent with `passerelle bench --ins` (patients with
# a valid INS-NIR, which the store's feed gate requires), then the time from the first message
# to the last record stored, read from the admin API's `passerelle_deliveries_total`.
#
#   scripts/bench-store.sh [MESSAGES=20000] [CONNECTIONS=64]
#
# Run from the repository root after scripts/build-plugins.sh && cargo build --release -p
# passerelle. Env: BIN (the daemon, default target/release/passerelle; the load generator is
# always that default build, which knows --ins), WORK (default /tmp/passerelle-bench-store).
set -euo pipefail
N=${1:-20000}; CONN=${2:-64}
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-target}
case $TARGET in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
LOADGEN=$TARGET/release/passerelle
B=${BIN:-$LOADGEN}
W=${WORK:-/tmp/passerelle-bench-store}
PORT=${PORT:-2575}
ADMIN_PORT=${ADMIN_PORT:-8798}
TOKEN=bench-store-token-only-on-localhost
rm -rf "$W"; mkdir -p "$W"
cat > "$W/passerelle.toml" <<TOML
data_dir = "data"
routes = "routes.toml"
[plugins.hl7v2-lab]
path = "$TARGET/wasm32-wasip2/plugin/hl7v2_lab.wasm"
[sources.lab-mllp]
type = "mllp"
listen = "127.0.0.1:$PORT"
plugin = "hl7v2-lab"
[destinations.store]
type = "record-store"
path = "store.db"
[admin]
listen = "127.0.0.1:$ADMIN_PORT"
token_env = "BENCH_STORE_ADMIN_TOKEN"
TOML
echo 'unmatched = "store"' > "$W/routes.toml"
BENCH_STORE_ADMIN_TOKEN=$TOKEN "$B" run --config "$W/passerelle.toml" --data-dir "$W/data" 2>>"$W/daemon.log" & PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
until (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; do sleep 0.05; done
stored() {
    curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/metrics" \
        | awk '/^passerelle_deliveries_total\{destination="store"\}/ {print $2}'
}
cpu() { awk '{print $14 + $15}' /proc/$PID/stat; }   # clock ticks (1/100 s)
cpu0=$(cpu)
t0=$(date +%s.%N)
"$LOADGEN" bench --target 127.0.0.1:"$PORT" --connections "$CONN" --messages "$N" --ins --json > "$W/report.json"
aa=$(jq .aa "$W/report.json")
deadline=$(( $(date +%s) + 600 ))
until [ "$(stored || echo 0)" = "$aa" ]; do
    if [ "$(date +%s)" -gt "$deadline" ]; then echo "bench-store: $(stored) of $aa stored after 10 minutes" >&2; exit 1; fi
    sleep 0.1
done
t1=$(date +%s.%N)
awk -v n="$aa" -v t0="$t0" -v t1="$t1" -v c=$(( $(cpu) - cpu0 )) -v ingest="$(jq '.throughput_msg_s | floor' "$W/report.json")" \
    'BEGIN { printf "acked=%d ingest=%d msg/s all stored after %.1f s: %d records/s; daemon cpu_us/msg=%d\n", n, ingest, t1 - t0, n / (t1 - t0), c * 10000 / n }'
