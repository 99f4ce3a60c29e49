#!/usr/bin/env bash
# Capture analysis speed on the lab's synthetic capture (issue 7's benchmark): netpulse beside
# tshark, tcpdump and cat (the I/O limit), same file, printed side by side. Each tool runs RUNS
# times (default 3; tshark once, it takes long) and its fastest run is shown, since a shared VM's
# noise only ever adds time; peak RSS is the largest of the runs.
#   usage: [RUNS=3] bash bench/capture_bench.sh [PACKETS]   (default 2 000 000; needs python3,
#   tshark, tcpdump)
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${1:-2000000}
file="/tmp/netpulse-bench-$packets.pcap"
[ -f "$file" ] || python3 ../shared/lab/gen_pcap.py "$file" "$packets" >/dev/null
cargo build --release -q -p netpulse
size=$(stat -c %s "$file")
n=$(target/release/netpulse capture -r "$file" --interval 0s --json | python3 -c 'import sys,json; print([json.loads(l) for l in sys.stdin][-1]["packets"])')
# Warm the page cache so every tool reads from memory.
cat "$file" > /dev/null
runs=${RUNS:-3}
run() {
  local name=$1 times=$2; shift 2
  local rss
  rss=$( { /usr/bin/env python3 - "$times" "$@" <<'PY'
import resource, subprocess, sys, time
best = None
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t
    best = wall if best is None else min(best, wall)
print(f"{best:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
  } )
  read -r wall kb <<<"$rss"
  awk -v name="$name" -v w="$wall" -v kb="$kb" -v n="$n" -v size="$size" 'BEGIN {
    printf "%-44s %8.3f s %12.0f packets/s %9.1f MB/s %8.1f MiB peak RSS\n", name, w, n / w, size / w / 1e6, kb / 1024 }'
}
echo "file: $file, $n packets, $((size / 1000000)) MB; fastest of $runs runs (tshark: 1)"
run "netpulse capture -r" "$runs" target/release/netpulse capture -r "$file"
run "tshark -q -z io,stat,1 -z conv,tcp" 1 tshark -r "$file" -q -z io,stat,1 -z conv,tcp
run "tcpdump -r FILE -w /dev/null" "$runs" tcpdump -r "$file" -w /dev/null
run "cat FILE > /dev/null" "$runs" cat "$file"
