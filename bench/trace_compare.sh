#!/usr/bin/env bash
# netpulse trace beside mtr and traceroute on the same chain of routers (the trace test's:
# client — R1 — R2 — delay line — R3 — server), in the same run: hops, loss and latency.
#   sudo bash bench/trace_compare.sh [ROUNDS] [DELAY_MS] [LOSS]   (default 100 rounds, 5 ms,
#   10 % each way on the line between R2 and R3; needs mtr-tiny, traceroute, python3, ethtool)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-100}; DELAY=${2:-5}; LOSS=${3:-0.1}
P=bt$$; N=199
for tool in mtr traceroute python3; do command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }; done
cargo build --release -q -p netpulse
BIN=$PWD/target/release/netpulse
cleanup() {
  [ -n "${WIRE:-}" ] && kill "$WIRE" 2>/dev/null || true
  for n in C R1 R2 R3 R4 W S; do ip netns del $P$n 2>/dev/null || true; done
}
trap cleanup EXIT
bash crates/netpulse/tests/chain.sh $P $N
ip netns exec ${P}W python3 ../shared/lab/wire.py wa wb --delay-ms "$DELAY" --loss "$LOSS" >/dev/null 2>&1 &
WIRE=$!
until ip netns exec ${P}C ping -c1 -W1 10.$N.4.2 >/dev/null 2>&1; do :; done
SERVER=10.$N.4.2
echo "chain: 4 hops, ${DELAY} ms and $LOSS loss each way between hops 2 and 3; $ROUNDS rounds at 100 ms, ICMP"
echo "expected: hops 3-4 lose 1-(1-$LOSS)^2 = $(echo "scale=3; 1 - (1 - $LOSS)^2" | bc), avg >= $((2 * DELAY)) ms"
echo
echo "netpulse trace --icmp -r -n -c $ROUNDS -i 100ms:"
ip netns exec ${P}C "$BIN" trace --icmp -r -n -c "$ROUNDS" -i 100ms -W 1s "$SERVER" | tail -n +2
echo
echo "mtr -r -n -c $ROUNDS -i 0.1 (ICMP):"
ip netns exec ${P}C mtr -r -n -c "$ROUNDS" -i 0.1 "$SERVER"
echo
echo "traceroute -n -q 10 (UDP; each probe's time):"
ip netns exec ${P}C traceroute -n -q 10 -w 1 "$SERVER"
