#!/usr/bin/env bash
# Interface polling cost with 200 veth interfaces present (issue 5's benchmark).
# Builds a private network namespace holding 100 veth pairs, runs the poll benchmark inside it
# (netlink RTM_GETSTATS as netpulse does, RTM_GETLINK, /proc/net/dev, `ip -s -j link`), then
# measures `netpulse ifaces --watch` itself at 1 Hz for a while. Root needed; cleans up on exit.
#   usage: sudo bash bench/iface_bench.sh [POLLS] [WATCH_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
polls=${1:-3600}
watch_secs=${2:-60}
ns="npbench$$"
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
for i in $(seq 1 100); do
  ip -n "$ns" link add "va$i" type veth peer name "vb$i"
  ip -n "$ns" link set "va$i" up
  ip -n "$ns" link set "vb$i" up
done
echo "interfaces in $ns: $(ip -n "$ns" -o link | wc -l)"
cargo build --release -q -p netpulse-iface --example iface_bench
cargo build --release -q -p netpulse
ip netns exec "$ns" target/release/examples/iface_bench "$polls"

# CPU of the real binary at 1 Hz, from /proc/PID/schedstat (ns on CPU, all threads).
measure() {
  local label=$1; shift
  ip netns exec "$ns" target/release/netpulse ifaces --watch --all --interval 1s "$@" >/dev/null &
  local pid=$!
  sleep 2 # let it start; what is measured is the CPU-time difference over a fixed span
  local c0 c1
  c0=$(cpu_ns "$pid")
  sleep "$watch_secs"
  c1=$(cpu_ns "$pid")
  local rss
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill -INT "$pid"; wait "$pid" || true
  awk -v ns=$((c1 - c0)) -v t="$watch_secs" -v rss="$rss" -v label="$label" 'BEGIN {
    printf "  %-28s CPU %.1f ms over %d s = %.4f %% of one core, %.0f µs per tick, RSS %.1f MiB\n",
      label, ns / 1e6, t, ns / 1e9 / t * 100, ns / 1e3 / t, rss / 1024 }'
}
# Sum of every thread's on-CPU nanoseconds.
cpu_ns() {
  cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {print s}'
}
echo
echo "netpulse ifaces --watch --all at 1 Hz for ${watch_secs}s each, output to /dev/null:"
measure "--json" --json
measure "table (plain lines)"
measure "--json --record" --json "--record=/tmp/$ns.db"
rm -f "/tmp/$ns.db" "/tmp/$ns.db-wal" "/tmp/$ns.db-shm"
