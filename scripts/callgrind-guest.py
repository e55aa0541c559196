#!/usr/bin/env python3
"""Names the guest's functions in a callgrind profile of the adapt bench.

Usage: callgrind-guest.py CALLGRIND_OUT PERF_MAP CALLS [TOP]

CALLGRIND_OUT comes from `valgrind --tool=callgrind` on the adapt bench with
PASSERELLE_BENCH_PERFMAP=1, PERF_MAP is the /tmp/perf-PID.map wasmtime wrote for that run
(docs/benchmarks.md, sections 9 and 10), CALLS the number of adapt calls profiled (2000 with
PASSERELLE_ADAPT_LOOP=raw:2000). Prints, per call, the instructions spent in each guest
function (self cost) and how many times each was called, the largest first.
"""
import bisect
import re
import subprocess
import sys


def main():
    out, perf_map, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    syms = []
    with open(perf_map) as f:
        for line in f:
            addr, size, name = line.rstrip("\n").split(" ", 2)
            syms.append((int(addr, 16), int(size, 16), re.sub(r"wasm\[\d+\]::function\[\d+\]::", "", name)))
    syms.sort()
    starts = [s[0] for s in syms]

    def name(addr):
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0 and addr < syms[i][0] + syms[i][1]:
            return syms[i][2]
        return hex(addr)

    def annotate(*args):
        return subprocess.run(["callgrind_annotate", "--threshold=100", *args, out],
                              capture_output=True, text=True, check=True).stdout

    cost = {}
    for line in annotate().splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+\?\?\?:0x([0-9a-f]+)", line)
        if m:
            n = name(int(m.group(2), 16))
            cost[n] = cost.get(n, 0) + int(m.group(1).replace(",", ""))
    called = {}
    for block in annotate("--tree=caller").split("\n\n"):
        lines = block.strip().split("\n")
        star = [l for l in lines if " *  " in l]
        m = re.search(r"\?\?\?:0x([0-9a-f]+)", star[0]) if star else None
        if not m:
            continue
        callee = name(int(m.group(1), 16))
        for l in lines:
            c = re.match(r"\s*[\d,]+.*< .*\(([\d,]+)x\)", l)
            if c:
                called[callee] = called.get(callee, 0) + int(c.group(1).replace(",", ""))

    print(f"{'instr/call':>10} {'calls/call':>10}  function")
    for n, v in sorted(cost.items(), key=lambda x: -x[1])[:top]:
        print(f"{v / calls:10.0f} {called.get(n, 0) / calls:10.1f}  {n[:120]}")
    print(f"\n{'calls/call':>10}  most called")
    for n, v in sorted(called.items(), key=lambda x: -x[1])[:top]:
        print(f"{v / calls:10.1f}  {n[:120]}")


if __name__ == "__main__":
    main()
