#!/usr/bin/env bash
# netpulse monitor at scale, beside fping on the same targets in the same run.
#
#   sudo bash bench/monitor_scale.sh [SECONDS] [N ...]      (default: 60 s; N = 100 1000 10000)
#
# For each N: N ICMP targets on loopback addresses (127.1.x.y) probed every 1 s by
#   - `netpulse monitor` with interfaces watched, recording on (a temporary database) and 4 rules
#     (latency_avg, loss, jitter, latency_p95 over 10 s … 60 s windows), metrics on 127.0.0.1;
#   - `fping -l -i 1 -p 1000 -f TARGETS` (its -i 1: at most one ping per ms in all, so past
#     1 000 targets it cannot keep 1 s per target; its replies are counted to show it);
#   - `netpulse probe -i 1s` on the same targets (at N = 10 000 only).
# Each runs alone for SECONDS after a 5 s warm-up. CPU is utime+stime from /proc/PID/stat over the
# measured span, as % of one core; RSS is the peak (VmHWM) in MB (10^6 bytes) beside the goal
# (20 MB + 5 kB a target); threads from /proc/PID/status at the end.
# "sent" is what each tool counted in the span, "expected" is N × span.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
shift || true
NS=("$@")
[ ${#NS[@]} -gt 0 ] || NS=(100 1000 10000)
WARM=5
command -v fping >/dev/null || { echo "needs fping (apt-get install fping)" >&2; exit 1; }
cargo build --release -q -p netpulse
BIN=$PWD/target/release/netpulse
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
TICK=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
threads() { awk '/Threads/ {print $2}' "/proc/$1/status"; }
metric_sum() { # metric name → sum over its series from /metrics
  curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 ~ "^"m"(\\{|$)" {s += $2} END {printf "%d", s}'
}

targets() {
  local n=$1 i
  for ((i = 0; i < n; i++)); do echo "127.1.$((i / 250)).$((i % 250 + 1))"; done
}

row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
# Peak RSS from kB (KiB) in MB (10^6 bytes, the unit of the goal), one decimal.
mb() { echo "scale=1; $1 * 1024 / 1000000" | bc; }

echo "monitor_scale: ${SECS}s per run after ${WARM}s warm-up, $(nproc) CPUs, $(uname -r)"
row N tool "CPU % of one core" "peak RSS" threads "sent / expected (late)"
row --- --- --- --- --- ---
for N in "${NS[@]}"; do
  targets "$N" > "$TMP/targets"
  PORT=$((19000 + RANDOM % 1000))
  {
    echo '[monitor]'
    echo 'status_every = "0s"'
    echo '[listen]'
    echo "metrics = \"127.0.0.1:$PORT\""
    echo '[ifaces]'
    echo 'enabled = true'
    echo '[record]'
    echo 'enabled = true'
    echo "db = \"$TMP/scale.db\""
    for r in 'latency_avg|100|10s' 'loss|0.5|30s' 'jitter|50|10s' 'latency_p95|200|60s'; do
      IFS='|' read -r metric threshold window <<< "$r"
      echo '[[rule]]'
      echo "name = \"$metric\""
      echo "metric = \"$metric\""
      echo "threshold = $threshold"
      echo "window = \"$window\""
      echo 'for = "5s"'
    done
    while read -r a; do
      echo '[[target]]'
      echo "target = \"$a\""
      echo 'interval = "1s"'
      echo 'timeout = "1s"'
    done < "$TMP/targets"
  } > "$TMP/scale.toml"
  rm -f "$TMP"/scale.db*

  # netpulse monitor
  "$BIN" monitor --config "$TMP/scale.toml" > "$TMP/monitor.out" 2> "$TMP/monitor.err" &
  PID=$!
  sleep "$WARM"
  c0=$(cpu_ticks $PID); s0=$(metric_sum netpulse_probes_sent_total); l0=$(metric_sum netpulse_probe_late_sends_total)
  sleep "$SECS"
  c1=$(cpu_ticks $PID); s1=$(metric_sum netpulse_probes_sent_total); l1=$(metric_sum netpulse_probe_late_sends_total)
  d0=$(metric_sum netpulse_dropped_results_total)
  rss=$(hwm_kb $PID); th=$(threads $PID)
  kill -INT $PID; wait $PID || true
  row "$N" "netpulse monitor" "$(echo "scale=2; ($c1 - $c0) * 100 / $TICK / $SECS" | bc)" \
    "$(mb "$rss") MB (goal $(echo "scale=1; 20 + 5 * $N / 1000" | bc))" "$th" "$((s1 - s0)) / $((N * SECS)) ($((l1 - l0)) late, $d0 dropped)"

  # fping
  fping -l -i 1 -p 1000 -f "$TMP/targets" > "$TMP/fping.out" 2>/dev/null &
  PID=$!
  sleep "$WARM"
  c0=$(cpu_ticks $PID); r0=$(wc -l < "$TMP/fping.out")
  sleep "$SECS"
  c1=$(cpu_ticks $PID); r1=$(wc -l < "$TMP/fping.out")
  rss=$(hwm_kb $PID); th=$(threads $PID)
  kill $PID; wait $PID 2>/dev/null || true
  row "$N" "fping -l -i 1 -p 1000" "$(echo "scale=2; ($c1 - $c0) * 100 / $TICK / $SECS" | bc)" \
    "$(mb "$rss") MB" "$th" "$((r1 - r0)) / $((N * SECS)) (replies)"

  if [ "$N" -ge 10000 ]; then
    # netpulse probe: JSON lines counted as they come.
    # shellcheck disable=SC2046
    "$BIN" probe -i 1s --json $(cat "$TMP/targets") > "$TMP/probe.out" 2>/dev/null &
    PID=$!
    sleep "$WARM"
    c0=$(cpu_ticks $PID); p0=$(grep -c '"type":"probe"' "$TMP/probe.out" || true)
    sleep "$SECS"
    c1=$(cpu_ticks $PID); p1=$(grep -c '"type":"probe"' "$TMP/probe.out" || true)
    rss=$(hwm_kb $PID); th=$(threads $PID)
    kill -INT $PID; wait $PID || true
    row "$N" "netpulse probe -i 1s" "$(echo "scale=2; ($c1 - $c0) * 100 / $TICK / $SECS" | bc)" \
      "$(mb "$rss") MB" "$th" "$((p1 - p0)) / $((N * SECS))"
  fi
done
