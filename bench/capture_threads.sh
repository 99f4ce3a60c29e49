#!/usr/bin/env bash
# Capture analysis split over threads (`capture --threads N`, flows sharded by a symmetric hash)
# on the lab's synthetic capture: wall time and CPU per N, fastest of RUNS (default 3), and —
# where `perf` is installed — how the CPU divides among the threads (reader, dispatcher,
# shards), which is what lets more cores finish sooner.
#   usage: [RUNS=3] bash bench/capture_threads.sh [PACKETS] [MAX_THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${1:-2000000}
max=${2:-4}
file="/tmp/netpulse-bench-$packets.pcap"
[ -f "$file" ] || python3 ../shared/lab/gen_pcap.py "$file" "$packets" >/dev/null
cargo build --release -q -p netpulse
cat "$file" > /dev/null
runs=${RUNS:-3}
echo "file: $file ($((packets)) packets); $(nproc) cores; fastest of $runs runs"
for n in $(seq 1 "$max"); do
  best=""
  for _ in $(seq "$runs"); do
    t=$( { /usr/bin/time -f "%e %U %S" target/release/netpulse capture -r "$file" --threads "$n" >/dev/null; } 2>&1 | tail -1)
    read -r wall user sys <<<"$t"
    if [ -z "$best" ] || awk -v a="$wall" -v b="${best%% *}" 'BEGIN{exit !(a<b)}'; then
      best="$wall $user $sys"
    fi
  done
  read -r wall user sys <<<"$best"
  split=""
  if command -v perf >/dev/null 2>&1; then
    perf record -q -o /tmp/netpulse-threads.perf target/release/netpulse capture -r "$file" --threads "$n" >/dev/null 2>&1 || true
    split=$(perf report -q -i /tmp/netpulse-threads.perf --sort comm 2>/dev/null \
      | awk '{gsub("%","",$1); printf "%s %.0f%%  ", $2, $1}')
  fi
  printf "threads %-2s %6.3f s wall %6.2f s CPU   %s\n" "$n" "$wall" "$(echo "$user + $sys" | bc)" "$split"
done
