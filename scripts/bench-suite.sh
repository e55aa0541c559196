#!/usr/bin/env bash
# Every figure of the performance issue (#6), measured on the current build in one go, with a
# summary against the targets: docs/benchmarks.md, "The whole suite in one command".
#
#   scripts/bench-suite.sh [OUT_DIR=/tmp/passerelle-bench-suite]
#
# Env: RUNS (runs per end-to-end figure, default 3), BACKLOG (messages ACKed behind a dead
# destination, default 1000000; 0 skips it: about 3 minutes and 3.5 GB of disk per million),
# CRITERION=0 skips the two criterion benchmarks (adapter, routes).
# Writes OUT_DIR/summary.md (the table), one folder per daemon run under OUT_DIR/runs (its
# configuration, the bench's JSON report, the daemon's log and metrics; the data dirs are
# removed at the end) and the raw outputs of the other steps. Takes 20-25 minutes with the
# defaults on the project's 2-core machine; run it on an otherwise idle machine: the load
# generator shares the cores with the daemon, and other work moves the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${1:-/tmp/passerelle-bench-suite}
RUNS=${RUNS:-3}
BACKLOG=${BACKLOG:-1000000}
CRITERION=${CRITERION:-1}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/release/passerelle
WASM=$TARGET_DIR/wasm32-wasip2/plugin/hl7v2_lab.wasm
for tool in jq curl awk; do
    command -v "$tool" >/dev/null || { echo "bench-suite: $tool is needed" >&2; exit 1; }
done

rm -rf "$OUT"
mkdir -p "$OUT/runs"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

log "building the plugins, the daemon and the benchmarks"
scripts/build-plugins.sh 2>/dev/null
cargo build --quiet --release -p passerelle
if [ "$CRITERION" != 0 ]; then
    cargo bench --quiet -p passerelle --bench adapt --bench routes --no-run 2>/dev/null
fi
started=$(date -u +'%Y-%m-%d %H:%M UTC')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# One end-to-end run on a fresh daemon and a fresh data dir (scripts/bench-run.sh). A new
# work dir per run: nothing is deleted while the suite measures (a deletion makes ext4 slower
# to allocate inodes for the next 30 s, see bench-run.sh).
daemon_run() { # NAME MODE CONNECTIONS MESSAGES [passerelle bench options...]
    local name=$1; shift
    local r w line
    for r in $(seq "$RUNS"); do
        w=$OUT/runs/$name-r$r
        mkdir -p "$w"
        line=$(WORK=$w BIN=$BIN WASM=$WASM scripts/bench-run.sh "$@" 2>>"$OUT/stderr.log") || true
        printf '%s\n' "$line" > "$w/line.txt"
        log "$name run $r: $line"
    done
}

if [ "$CRITERION" != 0 ]; then
    log "adapter: native vs sandbox (criterion)"
    cargo bench --quiet -p passerelle --bench adapt -- --noplot > "$OUT/criterion-adapt.txt" 2>&1
    log "routes: 10 / 1,000 / 10,000 rules (criterion)"
    cargo bench --quiet -p passerelle --bench routes -- --noplot > "$OUT/criterion-routes.txt" 2>&1
fi

log "closed loop, 64 connections: journal only, then the file destination"
daemon_run closed-hold hold 64 30000
daemon_run closed-file file 64 30000
for rate in 1000 5000 10000; do
    log "fixed rate $rate msg/s for 10 s, 64 connections"
    daemon_run "rate$rate-hold" hold 64 $((rate * 10)) --rate "$rate"
    daemon_run "rate$rate-file" file 64 $((rate * 10)) --rate "$rate"
done
for obx in 1 10 100 1000; do
    n=$((obx >= 1000 ? 2000 : obx >= 100 ? 10000 : 30000))
    log "message size: $obx OBX, file destination, 32 connections"
    daemon_run "size$obx" file 32 "$n" --obx "$obx"
done

log "start-up of the example configuration (four adapters), cold then warm cache"
"$BIN" bench --startup config/passerelle.toml --runs "$RUNS" --json > "$OUT/startup.json"

if [ "$BACKLOG" != 0 ]; then
    log "memory during a backlog of $BACKLOG messages (destination down)"
    scripts/bench-backlog.sh "$BACKLOG" 64 > "$OUT/backlog.json" 2> "$OUT/backlog.log" || true
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
rm -rf "$OUT"/runs/*/data

# ---- the summary ----------------------------------------------------------------------------
# "median (min–max)" of a jq expression over the reports of the runs named PREFIX-r*.
spread() { # PREFIX JQ_EXPR PRINTF_FORMAT
    local f
    for f in "$OUT"/runs/"$1"-r*/report.json; do
        [ -s "$f" ] && jq -r "$2" "$f"
    done | sort -g | awk -v fmt="$3" '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "-"; exit }
            m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            if (NR == 1) printf fmt, m
            else printf fmt " (" fmt "–" fmt ")", m, v[1], v[NR]
        }'
}
median() { # PREFIX JQ_EXPR: the median alone, for the "met?" column
    local f
    for f in "$OUT"/runs/"$1"-r*/report.json; do
        [ -s "$f" ] && jq -r "$2" "$f"
    done | sort -g | awk '{ v[NR] = $1 } END { if (NR) print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else print "nan" }'
}
cpu() { # PREFIX: the daemon's CPU per message, from bench-run.sh's line
    cat "$OUT"/runs/"$1"-r*/line.txt 2>/dev/null | sed -n 's/.*cpu_us\/msg=\([0-9]*\).*/\1/p' \
        | sort -n | awk '{ v[NR] = $1 } END { if (NR > 1) printf "%d–%d µs", v[1], v[NR]; else if (NR) printf "%d µs", v[1]; else print "-" }'
}
met() { # VALUE OP LIMIT
    awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
        if (v == "nan" || v == "") { print "-"; exit }
        ok = (op == ">=") ? v >= l : v <= l
        print ok ? "**yes**" : "no"
    }'
}
crit() { # GROUP_DIR FUNCTION: criterion's median estimate, ns
    local f=$TARGET_DIR/criterion/$1/$2/new/estimates.json
    if [ "$CRITERION" != 0 ] && [ -f "$f" ]; then jq -r '.median.point_estimate' "$f"; else echo nan; fi
}
tput='.throughput_msg_s'
lat() { printf '.latency["%s_us"] / 1000' "$1"; }

{
    echo "# Passerelle benchmark suite"
    echo
    echo "Commit \`$(git rev-parse --short HEAD)\`$(git diff --quiet HEAD || echo ' (with uncommitted changes)'), started $started;"
    echo "$(nproc) cores, load average at the start $load_start, at the end $load_end."
    echo "Each end-to-end figure is the median (min–max) of $RUNS runs, each on a fresh daemon."
    echo
    echo "## Against the targets"
    echo
    echo "| figure | target | measured | met? |"
    echo "|---|---|---|---|"
    v=$(median closed-file "$tput")
    echo "| durable throughput, file destination (64 connections, closed loop) | ≥ 25,000 msg/s | $(spread closed-file "$tput" '%.0f') msg/s | $(met "$v" '>=' 25000) |"
    v=$(median closed-hold "$tput")
    echo "| durable throughput, journal only | ≥ 25,000 msg/s | $(spread closed-hold "$tput" '%.0f') msg/s | $(met "$v" '>=' 25000) |"
    v=$(median rate5000-file "$(lat p99)")
    echo "| p99 ACK at 5,000 msg/s, file destination | ≤ 5 ms | $(spread rate5000-file "$(lat p99)" '%.1f') ms | $(met "$v" '<=' 5) |"
    v=$(median rate5000-hold "$(lat p99)")
    echo "| p99 ACK at 5,000 msg/s, journal only | ≤ 5 ms | $(spread rate5000-hold "$(lat p99)" '%.1f') ms | $(met "$v" '<=' 5) |"
    r10=$(crit route_few-wildcards 10); r10k=$(crit route_few-wildcards 10000)
    ratio=$(awk -v a="$r10" -v b="$r10k" 'BEGIN { if (a == "nan" || b == "nan") print "nan"; else printf "%.2f", b / a }')
    echo "| routing, 10,000 rules vs 10 | ≤ 2× | $(awk -v a="$r10" -v b="$r10k" -v r="$ratio" 'BEGIN { if (r == "nan") print "-"; else printf "%.0f ns vs %.0f ns: %.2f×", b, a, r }') | $(met "$ratio" '<=' 2) |"
    if [ -s "$OUT/backlog.json" ]; then
        rss=$(jq -r '.daemon_memory.max_rss_kib / 1024 | floor' "$OUT/backlog.json")
        echo "| RSS during a $BACKLOG-message backlog | ≤ 200 MB (190 MiB) | peak $rss MiB ($(jq -r '.aa' "$OUT/backlog.json") ACKed at $(jq -r '.throughput_msg_s | floor' "$OUT/backlog.json") msg/s) | $(met "$rss" '<=' 190) |"
    else
        echo "| RSS during a 1,000,000-message backlog | ≤ 200 MB | not run (BACKLOG=0) | - |"
    fi
    warm=$(jq -r '.warm.median_ms' "$OUT/startup.json")
    echo "| start-up, four adapters, warm cache | ≤ 1 s | $(jq -r '"\(.warm.median_ms | floor) ms (\(.warm.min_ms | floor)–\(.warm.max_ms | floor)); cold \(.cold.median_ms / 1000 * 10 | floor / 10) s"' "$OUT/startup.json") | $(met "$warm" '<=' 1000) |"
    native=$(crit adapt_oru-5obx native); raw=$(crit adapt_oru-5obx wasm-raw-call); full=$(crit adapt_oru-5obx wasm-plugin-adapt)
    echo "| adapter through the sandbox (5 OBX, \`Plugin::adapt\`) | ≥ 40,000 msg/s per core | $(awk -v f="$full" 'BEGIN { if (f == "nan") print "-"; else printf "%.1f µs: %.0f msg/s", f / 1000, 1e9 / f }') | $(met "$(awk -v f="$full" 'BEGIN { print f == "nan" ? "nan" : 1e9 / f }')" '>=' 40000) |"
    for way in raw full; do
        t=$([ $way = raw ] && echo "$raw" || echo "$full")
        label=$([ $way = raw ] && echo "the raw call" || echo "\`Plugin::adapt\` (with the host's check)")
        ratio=$(awk -v a="$native" -v b="$t" 'BEGIN { if (a == "nan" || b == "nan") print "nan"; else printf "%.2f", b / a }')
        echo "| sandbox / native, $label | ≤ 1.5 | $(awk -v a="$native" -v b="$t" -v r="$ratio" 'BEGIN { if (r == "nan") print "-"; else printf "%.1f / %.1f µs: %.2f×", b / 1000, a / 1000, r }') | $(met "$ratio" '<=' 1.5) |"
    done
    echo
    echo "## End to end, every run"
    echo
    echo "Latencies are the load generator's (from sending a message to reading its ACK), in ms."
    echo
    echo "| runs | msg/s | p50 | p99 | p99.9 | daemon CPU per message | daemon peak RSS (MiB) |"
    echo "|---|---|---|---|---|---|---|"
    for name in closed-hold closed-file rate1000-hold rate1000-file rate5000-hold rate5000-file \
        rate10000-hold rate10000-file size1 size10 size100 size1000; do
        echo "| $name | $(spread "$name" "$tput" '%.0f') | $(spread "$name" "$(lat p50)" '%.1f') | $(spread "$name" "$(lat p99)" '%.1f') | $(spread "$name" "$(lat p99.9)" '%.1f') | $(cpu "$name") | $(spread "$name" '.daemon_memory.max_rss_kib / 1024' '%.0f') |"
    done
    echo
    errors=$(cat "$OUT"/runs/*/report.json 2>/dev/null | jq -s 'map(.errors + .ae + .ar + .not_sent) | add // 0')
    missing=$(cat "$OUT"/runs/*/report.json 2>/dev/null | jq -s 'map(.check.missing // 0) | add // 0')
    reports=$(ls "$OUT"/runs/*/report.json 2>/dev/null | wc -l)
    echo "$reports reports; messages not acknowledged AA (errors, AE, AR, not sent): $errors;"
    echo "records missing at the file destination: $missing."
} > "$OUT/summary.md"
log "done: $OUT/summary.md"
cat "$OUT/summary.md"
