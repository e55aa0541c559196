#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted input, each target for SECONDS (default 60) on top of
# a seed corpus built here from ../shared/samples, config/ and tests/data/ (never committed).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      # all targets when none is named
#
# Targets (fuzz/fuzz_targets/): hl7_parse hl7_escape hprim cda mllp_codec config routes.
# Targets run FUZZ_JOBS at a time (default: the number of cores), each for SECONDS.
# A crash fails the script; the input is in fuzz/artifacts/TARGET/ (replay it with
# `cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...`). Honours CARGO_TARGET_DIR.
#
# No sanitizer (`--sanitizer none`): the fuzzed code is safe Rust, so AddressSanitizer would
# only find what the borrow checker already rules out, at the price of a far slower build
# (wasmtime and SQLite instrumented too) and about half the executions per second. Panics,
# arithmetic overflows (debug assertions are on), timeouts and runaway memory are still caught.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${1:-60}
shift || true
all=(hl7_parse hl7_escape hprim cda mllp_codec config routes)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

samples=${PASSERELLE_SAMPLES:-$root/../shared/samples}
[ -d "$samples" ] || { echo "fuzz.sh: no samples at $samples (set PASSERELLE_SAMPLES)" >&2; exit 1; }

[ -n "${FUZZ_SEEDS_ONLY:-}" ] || command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz needs nightly flags: the nightly toolchain when installed, else stable told to
# accept them.
if rustup run nightly rustc --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

# seeds TARGET: fills fuzz/corpus/TARGET (kept between runs: libFuzzer adds what it finds).
seeds() {
    local dir=$root/fuzz/corpus/$1 f
    mkdir -p "$dir"
    case $1 in
    hl7_parse | hl7_escape)
        find "$samples" -type f \( -name '*.hl7' -o -name '*.er7' \) -print0 |
            xargs -0 -I{} sh -c 'cp "$1" "$2/$(basename "$1" | tr " " _)"' _ {} "$dir" ;;
    mllp_codec)
        # One read-size byte, then MLLP frames (two per file, with noise between them).
        while IFS= read -r -d '' f; do
            { printf '\x07\x0b'; head -c 2000 "$f"; printf '\x1c\r\r\n\x0b'; head -c 300 "$f"; printf '\x1c'; } \
                >"$dir/$(basename "$f" | tr ' ' _)"
        done < <(find "$samples" -type f \( -name '*.hl7' -o -name '*.er7' \) -print0) ;;
    hprim)
        find "$samples" "$root/tests/data" -type f \( -iname '*.hpr' -o -iname '*.hpm' -o -path '*hprim*' \) \
            ! -name '*.md' -print0 | xargs -0 -I{} sh -c 'cp "$1" "$2/$(basename "$1" | tr " " _)"' _ {} "$dir" ;;
    cda)
        find "$samples" -type f \( -name '*.xml' -o -name '*.ccda' \) -print0 |
            xargs -0 -I{} sh -c 'cp "$1" "$2/$(basename "$1" | tr " " _)"' _ {} "$dir" ;;
    config)
        find "$root/config" -maxdepth 1 -name '*.toml' ! -name 'routes*' -exec cp {} "$dir/" \;
        # The configuration examples of the documentation, one file per block.
        for f in "$root"/docs/*.md; do
            awk '/^```toml/{n++; p=1; next} /^```/{p=0} p{print > (d "/" b "-" n ".toml")}' \
                d="$dir" b="$(basename "$f" .md)" "$f"
        done ;;
    routes)
        find "$root/config" -maxdepth 1 -name 'routes*.toml' -exec cp {} "$dir/" \;
        # The examples in the routes documentation, one file each.
        awk '/^\/\/! ```toml/{n++; f=1; next} /^\/\/! ```/{f=0} f{sub(/^\/\/! ?/, ""); print > (d "/doc-" n ".toml")}' \
            d="$dir" "$root/core/src/route/mod.rs" ;;
    esac
    # Hand-written seeds (valid files reaching deep paths), kept in git.
    [ ! -d "$root/fuzz/seeds/$1" ] || cp "$root/fuzz/seeds/$1"/* "$dir/"
    [ -n "$(ls -A "$dir")" ] || { echo "fuzz.sh: no seeds for $1" >&2; exit 1; }
}

if [ -n "${FUZZ_SEEDS_ONLY:-}" ]; then
    # Only (re)build the corpus directories (e.g. to run the binaries by hand).
    for t in "${targets[@]}"; do seeds "$t"; done
    exit 0
fi

# `--features core` for every target: one build (the plugin-side targets alone build
# without it, much faster: `cargo fuzz build --fuzz-dir fuzz --sanitizer none`).
flags=(--fuzz-dir fuzz --sanitizer none --debug-assertions --features core)
"${fuzz[@]}" build "${flags[@]}"

# Targets run side by side, FUZZ_JOBS at a time (default: one per core). libFuzzer runs on
# one thread and -max_total_time is wall-clock time, so on two cores two targets each get
# their whole time for the wall-clock cost of one. Each run's output goes to a log, printed
# (its statistics, or its end on a failure) once all have finished.
jobs_max=${FUZZ_JOBS:-$(nproc)}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
for t in "${targets[@]}"; do
    seeds "$t"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
    # Whole documents for the parsers; the escapes and the framing do not need 300 kB inputs
    # (a smaller bound means many more executions per second).
    max_len=()
    case $t in hl7_escape | mllp_codec) max_len=(-max_len=4096) ;; esac
    echo "=== fuzz $t: ${seconds}s, $(ls "$root/fuzz/corpus/$t" | wc -l) inputs in the corpus"
    # -timeout: an input taking over 10 s is a hang (libFuzzer fails on it).
    (
        rc=0
        "${fuzz[@]}" run "${flags[@]}" "$t" "fuzz/corpus/$t" -- \
            -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
            "${max_len[@]}" >"$logs/$t.log" 2>&1 || rc=$?
        echo "$rc" >"$logs/$t.rc"
    ) &
done
wait

failed=()
for t in "${targets[@]}"; do
    rc=$(cat "$logs/$t.rc" 2>/dev/null || echo "no exit status")
    if [ "$rc" = 0 ]; then
        echo "=== fuzz $t: no crash; $(grep -E '^Done [0-9]+ runs' "$logs/$t.log" | tail -1)"
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$logs/$t.log" || true
    else
        echo "=== fuzz $t: FAILED ($rc); the end of its output:"
        tail -n 80 "$logs/$t.log"
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: failed: ${failed[*]} (the inputs are in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
