#!/usr/bin/env bash
# Throughput of Passerelle on NATS JetStream (docs/scale-out.md): starts a JetStream of
# SERVERS nats-server processes (streams with as many replicas) and NODES Passerelle nodes on
# loopback, drives each node with `passerelle bench` at the same time (closed loop, 5-OBX
# ORU^R01, file destination shared by the nodes), and prints each bench report.
#
#   scripts/bench-scale-out.sh [SERVERS=1|3] [NODES=1|2] [MESSAGES per node=20000]
#
# Needs nats-server (Debian package) and the plugins (scripts/build-plugins.sh); builds the
# release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVERS=${1:-1}
NODES=${2:-1}
MESSAGES=${3:-20000}
CONNECTIONS=${CONNECTIONS:-8}
NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
[ -x "$NATS" ] || { echo "nats-server is not installed (apt-get install nats-server)" >&2; exit 1; }
cargo build --quiet --release -p passerelle
BIN=${CARGO_TARGET_DIR:-target}/release/passerelle
PLUGIN=$(pwd)/${CARGO_TARGET_DIR:-target}/wasm32-wasip2/plugin/hl7v2_lab.wasm
[ -f "$PLUGIN" ] || scripts/build-plugins.sh

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

urls=()
for i in $(seq 1 "$SERVERS"); do urls+=("\"nats://127.0.0.1:$((24220 + i))\""); done
for i in $(seq 1 "$SERVERS"); do
    args=(-a 127.0.0.1 -p $((24220 + i)) -n "n$i" -js -sd "$WORK/n$i")
    if [ "$SERVERS" -gt 1 ]; then
        routes=$(for j in $(seq 1 "$SERVERS"); do [ "$j" = "$i" ] || printf 'nats://127.0.0.1:%s,' $((26220 + j)); done)
        args+=(--cluster_name bench --cluster "nats://127.0.0.1:$((26220 + i))" --routes "${routes%,}")
    fi
    "$NATS" "${args[@]}" >"$WORK/n$i.log" 2>&1 &
    PIDS+=($!)
done

mkdir -p "$WORK/out"
for n in $(seq 1 "$NODES"); do
    mkdir -p "$WORK/node$n"
    cat >"$WORK/node$n/passerelle.toml" <<EOF
data_dir = "data"
routes = "routes.toml"
[journal.jetstream]
urls = [$(IFS=,; echo "${urls[*]}")]
replicas = $SERVERS
node = "node$n"
[plugins.hl7v2-lab]
path = "$PLUGIN"
[sources.lab-mllp]
type = "mllp"
listen = "127.0.0.1:$((25750 + n))"
plugin = "hl7v2-lab"
[destinations.out]
type = "file"
dir = "$WORK/out"
EOF
    printf '[[route]]\nname = "all"\ndestinations = ["out"]\n' >"$WORK/node$n/routes.toml"
    PASSERELLE_LOG=warn "$BIN" run --config "$WORK/node$n/passerelle.toml" 2>"$WORK/node$n/log" &
    PIDS+=($!)
done
for n in $(seq 1 "$NODES"); do
    for _ in $(seq 1 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$((25750 + n))") 2>/dev/null && break
        sleep 0.1
    done
done

echo "servers=$SERVERS replicas=$SERVERS nodes=$NODES messages/node=$MESSAGES connections/node=$CONNECTIONS"
BENCH=()
for n in $(seq 1 "$NODES"); do
    "$BIN" bench --target "127.0.0.1:$((25750 + n))" --connections "$CONNECTIONS" \
        --messages "$MESSAGES" --warmup 500 --id-prefix "S${n}x" --check-dir "$WORK/out" \
        >"$WORK/bench$n.txt" 2>&1 &
    BENCH+=($!)
done
status=0
for p in "${BENCH[@]}"; do wait "$p" || status=1; done
for n in $(seq 1 "$NODES"); do echo "--- node$n"; cat "$WORK/bench$n.txt"; done
# CPU seconds each process used (user + system), to see where the two cores went.
tick=$(getconf CLK_TCK)
echo "--- CPU seconds (user+system) over the whole run"
for p in "${PIDS[@]}"; do
    [ -r "/proc/$p/stat" ] || continue
    read -r -a f <"/proc/$p/stat"
    printf '%-14s %6.1f\n' "$(tr '\0' ' ' <"/proc/$p/cmdline" | awk '{print ($1 ~ /nats/ ? "nats-server " $7 : "passerelle")}')" \
        "$(echo "(${f[13]} + ${f[14]}) / $tick" | bc -l)"
done
exit $status
