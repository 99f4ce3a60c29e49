#!/usr/bin/env bash
# Capture analysis speed on the lab's synthetic capture (issue 7's benchmark): netpulse beside
# tshark, tcpdump and cat (the I/O limit), one run each, same file, printed side by side.
#   usage: bash bench/capture_bench.sh [PACKETS]   (default 2 000 000; needs python3, tshark, tcpdump)
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
run() {
  local name=$1; shift
  local t0 t1 rss
  rss=$( { /usr/bin/env python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
wall = time.perf_counter() - t
print(f"{wall:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
  } )
  read -r wall kb <<<"$rss"
  awk -v name="$name" -v w="$wall" -v kb="$kb" -v n="$n" -v size="$size" 'BEGIN {
    printf "%-44s %8.3f s %12.0f packets/s %9.1f MB/s %8.1f MiB peak RSS\n", name, w, n / w, size / w / 1e6, kb / 1024 }'
}
echo "file: $file, $n packets, $((size / 1000000)) MB"
run "netpulse capture -r" target/release/netpulse capture -r "$file"
run "tshark -q -z io,stat,1 -z conv,tcp" tshark -r "$file" -q -z io,stat,1 -z conv,tcp
run "tcpdump -r FILE -w /dev/null" tcpdump -r "$file" -w /dev/null
run "cat FILE > /dev/null" cat "$file"
