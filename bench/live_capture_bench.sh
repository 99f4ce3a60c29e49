#!/usr/bin/env bash
# Live capture: the highest UDP rate each tool captures with zero kernel drops (issue 7).
# Two private namespaces joined by a veth pair; Rust blasters in A (BLASTERS of them, default 1,
# each sending its share) send 64-byte datagrams at increasing rates for 3 s each; netpulse and
# tcpdump capture in B with the same BPF filter, one at a time. Root needed; everything is
# removed on exit.
#   usage: sudo [BLASTERS=2] bash bench/live_capture_bench.sh [RATES...]
set -euo pipefail
cd "$(dirname "$0")/.."
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(50000 100000 200000 400000 800000)
a="nplbA$$"; b="nplbB$$"
cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$a"; ip netns add "$b"
ip link add lb0 netns "$a" type veth peer name lb1 netns "$b"
ip -n "$a" addr add 10.252.0.1/24 dev lb0; ip -n "$b" addr add 10.252.0.2/24 dev lb1
ip -n "$a" link set lb0 up; ip -n "$b" link set lb1 up; ip -n "$a" link set lo up; ip -n "$b" link set lo up
# Frames to a MAC nobody has: counted by B's capture, answered by no one.
ip -n "$a" neigh add 10.252.0.99 lladdr 02:00:00:00:00:99 dev lb0 nud permanent
cargo build --release -q -p netpulse -p netpulse-capture --example udp_blast
blast=target/release/examples/udp_blast
blasters=${BLASTERS:-1}
# Sends RATE/s for 3 s from $blasters processes; prints the total rate they reached.
send() {
  local i outs=()
  for ((i = 0; i < blasters; i++)); do
    outs+=("$(mktemp)")
    ip netns exec "$a" "$blast" 10.252.0.99:9999 $(($1 / blasters)) 3 >"${outs[$i]}" &
  done
  wait $(jobs -p | tail -n "$blasters")
  cat "${outs[@]}" | grep -o '([0-9]*/s)' | tr -d '()/s' | awk '{s += $1} END {printf "%d", s}'
  rm -f "${outs[@]}"
}

run_netpulse() {
  local out achieved; out=$(mktemp)
  ip netns exec "$b" target/release/netpulse capture -i lb1 -f "udp port 9999" --interval 0s --json >"$out" 2>"$out.err" &
  local pid=$!
  until grep -q "capturing on" "$out.err" 2>/dev/null; do sleep 0.05; done
  achieved=$(send "$1")
  sleep 0.5; kill -INT "$pid"; wait "$pid" || true
  local got drops
  got=$(python3 -c 'import sys,json; print([json.loads(l) for l in open(sys.argv[1])][-1]["packets"])' "$out")
  drops=$(grep -o '[0-9]* dropped by the kernel' "$out.err" | awk '{print $1}')
  echo "$got ${drops:-?} @$achieved/s"; rm -f "$out" "$out.err"
}
run_tcpdump() {
  local err achieved; err=$(mktemp)
  ip netns exec "$b" tcpdump -i lb1 -w /dev/null -B 65536 "udp port 9999" 2>"$err" &
  local pid=$!
  until grep -q "listening on" "$err" 2>/dev/null; do sleep 0.05; done
  achieved=$(send "$1")
  sleep 0.5; kill -INT "$pid"; wait "$pid" || true
  local got drops
  got=$(grep -o '^[0-9]* packets captured' "$err" | awk '{print $1}')
  drops=$(grep -o '^[0-9]* packets dropped by kernel' "$err" | awk '{print $1}')
  echo "$got ${drops:-?} @$achieved/s"; rm -f "$err"
}
printf "%-10s %-36s %-36s\n" "asked/s" "netpulse (captured, drops @sent/s)" "tcpdump (captured, drops @sent/s)"
for r in "${rates[@]}"; do
  printf "%-10s %-36s %-36s\n" "$r" "$(run_netpulse "$r")" "$(run_tcpdump "$r")"
done
echo "(3 × asked datagrams sent at each step, 64-byte payloads, 106-byte frames; @sent/s is the rate the"
echo " blaster reached — above it the sender, not the capture, is the limit)"
