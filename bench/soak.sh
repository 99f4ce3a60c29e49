#!/usr/bin/env bash
# Soak: does `netpulse monitor` level off? 200 ICMP targets at 100 ms, recording and 2 rules,
# interfaces watched while veth pairs are created and deleted every 2 s, and a live capture of
# random-source traffic (every frame a new source MAC and IPv4 address) — all in a private
# network namespace. Prints VmRSS every STEP seconds (the curve), then the first and last
# thirds' averages and what /metrics and the database hold at the end.
#
#   sudo bash bench/soak.sh [SECONDS] [STEP]     (default 1800 s, 30 s steps; needs python3)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-1800}
STEP=${2:-30}
cargo build --release -q -p netpulse
BIN=$PWD/target/release/netpulse
NS=npsoak$$
TMP=$(mktemp -d)
cleanup() {
  # Everything started in the namespace (sender, churn loop, monitor), then the namespace.
  ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns ip link add soak0 type veth peer name soak1
in_ns ip link set soak0 up
in_ns ip link set soak1 up

{
  printf '[monitor]\nstatus_every = "0s"\n[listen]\nweb = "127.0.0.1:9750"\n'
  printf '[record]\ndb = "%s/soak.db"\n[capture]\ninterface = "soak1"\n' "$TMP"
  printf '[[rule]]\nname = "slow"\nmetric = "latency_avg"\nthreshold = 100\nwindow = "10s"\n'
  printf '[[rule]]\nname = "rx"\nmetric = "rx_rate"\nthreshold = 1e12\nwindow = "5s"\n'
  for ((i = 0; i < 200; i++)); do
    printf '[[target]]\ntarget = "127.0.%d.%d"\ninterval = "100ms"\n' $((i / 250)) $((i % 250 + 1))
  done
} > "$TMP/soak.toml"

in_ns "$BIN" monitor --config "$TMP/soak.toml" > "$TMP/out.txt" 2> "$TMP/err.txt" &
MON=$!
sleep 2
PID=$(pgrep -P "$MON" -x netpulse || echo "$MON")

# Random-source frames on soak0 (captured on soak1), ~5 000 a second.
in_ns python3 - <<'PY' &
import os, socket, struct, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("soak0", 0))
i = 0
while True:
    t = time.monotonic()
    for _ in range(500):
        i += 1
        src = struct.pack(">I", (0x0A << 24) | (i * 2654435761 & 0xFFFFFF))
        mac = bytes([2, 0xAA]) + src
        frame = b"\xff" * 6 + mac + b"\x08\x00"
        frame += bytes([0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 17, 0, 0]) + src + bytes([10, 0, 0, 1])
        frame += struct.pack(">HHHH", 40000 + i % 20000, 9, 8, 0)
        s.send(frame)
    time.sleep(max(0, 0.1 - (time.monotonic() - t)))
PY

# Interface churn: a veth pair created and deleted every 2 s (50 live at most).
in_ns bash -c 'i=0; while true; do ip link add ch$((i % 50))a type veth peer name ch$((i % 50))b 2>/dev/null; ip link set ch$((i % 50))a up 2>/dev/null; ip link del ch$(((i + 25) % 50))a 2>/dev/null; i=$((i + 1)); sleep 2; done' &

echo "soak: $SECS s, sampling every $STEP s (pid $PID)"
echo "  t(s)   VmRSS(MiB)"
declare -a rss
for ((t = STEP; t <= SECS; t += STEP)); do
  sleep "$STEP"
  kb=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
  rss+=("$kb")
  printf '%6d   %8.1f\n' "$t" "$(echo "$kb / 1024" | bc -l)"
done
n=${#rss[@]}
third=$((n / 3 > 0 ? n / 3 : 1))
avg() { local s=0 k; for k in "$@"; do s=$((s + k)); done; echo $((s / $#)); }
first=$(avg "${rss[@]:0:$third}")
last=$(avg "${rss[@]:$((n - third)):$third}")
printf 'first third avg %.1f MiB, last third avg %.1f MiB, peak (VmHWM) %.1f MiB\n' \
  "$(echo "$first / 1024" | bc -l)" "$(echo "$last / 1024" | bc -l)" \
  "$(echo "$(awk '/VmHWM/ {print $2}' "/proc/$PID/status") / 1024" | bc -l)"
metrics=$(in_ns python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9750/metrics').read().decode())")
echo "/metrics: $(echo "$metrics" | grep -vc '^#') series, $(echo "$metrics" | grep -c 'interface="ch') of churned interfaces"
kill -INT "$PID"
wait "$MON" || true
echo "stderr of the monitor:"; tail -5 "$TMP/err.txt"
