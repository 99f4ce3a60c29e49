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

echo
echo "netpulse ifaces --watch --all --json at 1 Hz for ${watch_secs}s (output to /dev/null):"
ip netns exec "$ns" target/release/netpulse ifaces --watch --all --json --interval 1s >/dev/null &
pid=$!
sleep 2 # let it start; the measurement below is a CPU-time difference over a fixed span
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
sleep "$watch_secs"
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
kill -INT "$pid"; wait "$pid" || true
hz=$(getconf CLK_TCK)
awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" -v t="$watch_secs" -v rss="$rss" 'BEGIN {
  cpu = (u + s) / hz
  printf "  CPU %.2f s over %d s = %.3f %% of one core (user %.2f s, sys %.2f s), RSS %.1f MiB\n",
    cpu, t, cpu / t * 100, u / hz, s / hz, rss / 1024 }'
