#!/usr/bin/env bash
# Memory while a backlog builds (docs/benchmarks.md, "Memory during a backlog"): one daemon
# whose only destination is down (HTTP to a closed loopback port: every attempt is refused and
# retried with back-off), driven by `passerelle bench` until MESSAGES are ACKed. Prints the
# daemon's RSS and the data dir's size every 10 s, then the bench report.
#
#   scripts/bench-backlog.sh [MESSAGES=1000000] [CONNECTIONS=64]
#
# Needs the plugins (scripts/build-plugins.sh) and about 9.5 GB of disk per million messages
# (the journal, in a temporary directory removed at the end); builds the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-1000000}
CONNECTIONS=${2:-64}
PORT=${PORT:-2577}
cargo build --quiet --release -p passerelle
BIN=$(pwd)/${CARGO_TARGET_DIR:-target}/release/passerelle
PLUGIN=$(pwd)/${CARGO_TARGET_DIR:-target}/wasm32-wasip2/plugin/hl7v2_lab.wasm
[ -f "$PLUGIN" ] || scripts/build-plugins.sh

WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cat > "$WORK/passerelle.toml" <<TOML
data_dir = "data"
routes = "routes.toml"
[plugins.hl7v2-lab]
path = "$PLUGIN"
[sources.lab-mllp]
type = "mllp"
listen = "127.0.0.1:$PORT"
plugin = "hl7v2-lab"
# Down for the whole run: port 9 (discard) is closed on loopback.
[destinations.dmp]
type = "http"
url = "http://127.0.0.1:9/records"
[delivery]
# Above the backlog, so that back-pressure does not stop the run at 1,000,000.
max_pending = $((MESSAGES + MESSAGES / 10))
TOML
printf 'unmatched = "dmp"\n' > "$WORK/routes.toml"
"$BIN" run --config "$WORK/passerelle.toml" --data-dir "$WORK/data" 2>"$WORK/daemon.log" &
PID=$!
until (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; do sleep 0.05; done
(
    start=$(date +%s)
    while kill -0 "$PID" 2>/dev/null; do
        rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$PID/status" 2>/dev/null || true)
        echo "t=$(($(date +%s) - start))s rss=${rss}MiB journal=$(du -sm "$WORK/data" | cut -f1)MB" >&2
        sleep 10
    done
) &
"$BIN" bench --target "127.0.0.1:$PORT" --pid "$PID" --connections "$CONNECTIONS" \
    --messages "$MESSAGES" --max-duration 30m --json
kill -TERM "$PID"
wait "$PID" || true
PID=
