#!/usr/bin/env bash
# One end-to-end run against a fresh daemon, with the daemon's CPU time and context switches
# per message (docs/benchmarks.md section 11). Run from the repository root after
#   scripts/build-plugins.sh && cargo build --release -p passerelle
# Usage: scripts/bench-run.sh hold|file CONNECTIONS MESSAGES [passerelle bench options...]
#   hold: nothing routed (journal only); file: every lab result to a file destination, checked.
# Env: BIN (default target/release/passerelle; set it to compare two builds), WORK (default
# /tmp/passerelle-bench-run), PORT (default 2575), ADMIN_PORT (default 8798: the admin API,
# for the journal's counters), COMMIT_WAIT (sets [journal] commit_wait, e.g. "1ms"), WASM (the
# hl7v2-lab component; default target/wasm32-wasip2/plugin/hl7v2_lab.wasm).
# Prints: msg/s, p50, p99, p99.9 (µs), AA, errors, files missing, daemon CPU µs and context
# switches per message, and journal writes per commit (the group-commit batch: messages, and
# in file mode the deliveries' marks too). The daemon's metrics at the end: $WORK/metrics.txt.
set -euo pipefail
MODE=${1:?hold|file}; CONN=${2:?connections}; N=${3:?messages}; shift 3
ROOT=$PWD
B=${BIN:-$ROOT/target/release/passerelle}
W=${WORK:-/tmp/passerelle-bench-run}
PORT=${PORT:-2575}
ADMIN_PORT=${ADMIN_PORT:-8798}
WASM=${WASM:-$ROOT/target/wasm32-wasip2/plugin/hl7v2_lab.wasm}
TOKEN=bench-run-token-only-on-localhost
mkdir -p "$W"
cat > "$W/passerelle.toml" <<TOML
data_dir = "data"
routes = "routes.toml"
[plugins.hl7v2-lab]
path = "$WASM"
[sources.lab-mllp]
type = "mllp"
listen = "127.0.0.1:$PORT"
plugin = "hl7v2-lab"
[destinations.out]
type = "file"
dir = "out"
[admin]
listen = "127.0.0.1:$ADMIN_PORT"
token_env = "BENCH_RUN_ADMIN_TOKEN"
TOML
if [ -n "${COMMIT_WAIT:-}" ]; then printf '[journal]\ncommit_wait = "%s"\n' "$COMMIT_WAIT" >> "$W/passerelle.toml"; fi
check=()
if [ "$MODE" = file ]; then
    printf 'unmatched = "out"\n[[route]]\nname = "lab"\ndestinations = ["out"]\nmatch = { kind = "lab-result" }\n' > "$W/routes.toml"
    check=(--check-dir "$W/data/out")
else
    echo 'unmatched = "hold"' > "$W/routes.toml"
fi
# A previous file run leaves tens of thousands of files. ext4 without a journal (this machine's
# file system) scans past inodes deleted in the last 30 s each time it allocates one
# (`recently_deleted`, 17 % of the daemon's samples in a file run started right after a
# deletion): wait that out, or the run measures the previous run's clean-up.
if [ -d "$W/data/out" ]; then rm -rf "$W/data"; sleep 31; fi
rm -rf "$W/data"
BENCH_RUN_ADMIN_TOKEN=$TOKEN "$B" run --config "$W/passerelle.toml" --data-dir "$W/data" 2>>"$W/daemon.log" & PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
until (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; do sleep 0.05; done
# Warm-up: instances, page cache, the journal's first pages.
"$B" bench --target 127.0.0.1:"$PORT" --connections 8 --messages 2000 --warmup 10 >/dev/null 2>&1
cpu() { awk '{print $14 + $15}' /proc/$PID/stat; }   # clock ticks (1/100 s)
switches() { cat /proc/$PID/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
# Journal counters: "requests transactions".
journal() {
    curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/metrics" \
        | awk '/^passerelle_journal_requests_total / {r = $2} /^passerelle_journal_transactions_total / {t = $2} END {print r + 0, t + 0}'
}
cpu0=$(cpu); cs0=$(switches); read -r req0 tx0 < <(journal)
"$B" bench --target 127.0.0.1:"$PORT" --pid "$PID" --json --connections "$CONN" --messages "$N" \
    --warmup 0 "${check[@]}" "$@" > "$W/report.json" || true
cpu1=$(cpu); cs1=$(switches); read -r req1 tx1 < <(journal)
# The daemon's own histograms (ACK, commit, adapter: warm-up included), for a closer look.
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/metrics" > "$W/metrics.txt" || true
aa=$(jq .aa "$W/report.json")
jq -r '[(.throughput_msg_s|floor), .latency.p50_us, .latency.p99_us, .latency["p99.9_us"], .aa, .errors, (.check.missing // "-")] | @tsv' "$W/report.json" \
    | tr '\n' '\t'
awk -v c=$((cpu1 - cpu0)) -v s=$((cs1 - cs0)) -v n="$aa" -v r=$((req1 - req0)) -v t=$((tx1 - tx0)) \
    'BEGIN { if (n > 0) printf "cpu_us/msg=%d\tctxsw/msg=%.2f\twrites/commit=%.1f\n", c * 10000 / n, s / n, (t > 0 ? r / t : 0); else print "no message acknowledged" }'
