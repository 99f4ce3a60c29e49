#!/usr/bin/env bash
# HTTPS probing at scale: `netpulse monitor` with N HTTPS targets every 10 s (a new connection
# and TLS handshake each, as by default) against nginx on loopback, beside 10 ICMP targets every
# 100 ms whose send lateness shows whether HTTP disturbs the ICMP engine; then curl doing the
# same number of HTTPS requests in the same run (the reference: a script's curl -w loop).
#
#   bash bench/http_scale.sh [SECONDS] [N]      (default: 60 s, N = 1000; needs nginx, curl,
#                                                openssl)
#
# CPU is utime+stime from /proc/PID/stat over the measured span (after a 12 s warm-up) as % of
# one core; RSS is the peak (VmHWM). "sent/expected" is probes resolved in the span against
# N × span / 10 s; "failed" is those that did not succeed; "late" counts sends that left later
# than their schedule allows (1 % of the interval), from /metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
N=${2:-1000}
WARM=12
for tool in nginx curl openssl; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
cargo build --release -q -p netpulse
BIN=$PWD/target/release/netpulse
TMP=$(mktemp -d)
NGINX_PID=""
MON_PID=""
cleanup() {
  [ -n "$MON_PID" ] && kill "$MON_PID" 2>/dev/null || true
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/key.pem" \
  -out "$TMP/cert.pem" -days 2 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
HTTPS=$(free_port)
cat > "$TMP/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; error_log $TMP/error.log; pid $TMP/nginx.pid;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $TMP/b; proxy_temp_path $TMP/p; fastcgi_temp_path $TMP/f;
  uwsgi_temp_path $TMP/u; scgi_temp_path $TMP/s;
  server { listen 127.0.0.1:$HTTPS ssl; ssl_certificate $TMP/cert.pem; ssl_certificate_key $TMP/key.pem;
    ssl_protocols TLSv1.3; location / { return 200 "ok\n"; } } }
CONF
nginx -c "$TMP/nginx.conf" -p "$TMP" &
NGINX_PID=$!
until [ -f "$TMP/nginx.pid" ]; do sleep 0.1; done

WEB=$(free_port)
config() { # $1: HTTPS targets
  printf '[monitor]\nstatus_every = "1h"\n[ifaces]\nenabled = false\n[record]\nenabled = false\n'
  printf '[listen]\nweb = "127.0.0.1:%s"\n' "$WEB"
  for ((i = 0; i < $1; i++)); do
    printf '[[target]]\ntarget = "https://127.0.0.1:%s/t%d"\ninterval = "10s"\ntimeout = "5s"\ninsecure = true\n' "$HTTPS" "$i"
  done
  for ((i = 1; i <= 10; i++)); do
    printf '[[target]]\ntarget = "127.0.2.%d"\ninterval = "100ms"\n' "$i"
  done
}
config "$N" > "$TMP/monitor.toml"
config 0 > "$TMP/icmp-only.toml"
metric() { # sum of a metric's series whose labels match $2
  curl -s "http://127.0.0.1:$WEB/metrics" | awk -v m="$1" -v k="$2" \
    '$1 ~ "^"m"\\{" && $1 ~ k {s += $2} END {printf "%d", s}'
}
# The ICMP targets alone first: their late sends without HTTP beside them.
"$BIN" monitor --config "$TMP/icmp-only.toml" > /dev/null 2> "$TMP/icmp.err" &
MON_PID=$!
sleep "$WARM"
b0=$(metric netpulse_probe_late_sends_total 'kind="icmp"'); bs0=$(metric netpulse_probes_sent_total 'kind="icmp"')
sleep "$SECS"
b1=$(metric netpulse_probe_late_sends_total 'kind="icmp"'); bs1=$(metric netpulse_probes_sent_total 'kind="icmp"')
kill -INT "$MON_PID"; wait "$MON_PID" 2>/dev/null || true; MON_PID=""
"$BIN" monitor --config "$TMP/monitor.toml" > /dev/null 2> "$TMP/monitor.err" &
MON_PID=$!
sleep "$WARM"
c0=$(cpu_ticks "$MON_PID"); s0=$(metric netpulse_probes_sent_total 'kind="https"')
r0=$(metric netpulse_probes_received_total 'kind="https"')
lh0=$(metric netpulse_probe_late_sends_total 'kind="https"'); li0=$(metric netpulse_probe_late_sends_total 'kind="icmp"')
si0=$(metric netpulse_probes_sent_total 'kind="icmp"')
sleep "$SECS"
c1=$(cpu_ticks "$MON_PID"); s1=$(metric netpulse_probes_sent_total 'kind="https"')
r1=$(metric netpulse_probes_received_total 'kind="https"')
lh1=$(metric netpulse_probe_late_sends_total 'kind="https"'); li1=$(metric netpulse_probe_late_sends_total 'kind="icmp"')
si1=$(metric netpulse_probes_sent_total 'kind="icmp"')
tls=$(curl -s "http://127.0.0.1:$WEB/metrics" | awk '/netpulse_http_phase_seconds_(sum|count)\{.*phase="tls"/ {if ($1 ~ /_sum/) s += $2; else c += $2} END {printf "%.2f", c ? s / c * 1000 : 0}')
rss=$(hwm_kb "$MON_PID")
kill -INT "$MON_PID"; wait "$MON_PID" 2>/dev/null || true; MON_PID=""
sent=$((s1 - s0)); ok=$((r1 - r0)); expected=$((N * SECS / 10))
cpu=$(echo "scale=2; ($c1 - $c0) * 100 / $TICK / $SECS" | bc)
echo "http_scale: $N HTTPS targets every 10 s + 10 ICMP every 100 ms, ${SECS}s after ${WARM}s, $(nproc) CPUs"
echo "| tool | CPU % of one core | CPU s per 1000 requests | peak RSS | requests / expected | failed | late sends (HTTPS, ICMP) | mean TLS |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
echo "| netpulse monitor | $cpu | $(echo "scale=2; ($c1 - $c0) / $TICK * 1000 / $sent" | bc) | $(echo "scale=1; $rss / 1024" | bc) MiB | $sent / $expected | $((sent - ok)) | $((lh1 - lh0)) of $sent, $((li1 - li0)) of $((si1 - si0)) (ICMP alone, same span: $((b1 - b0)) of $((bs1 - bs0))) | ${tls} ms |"

# The reference: curl doing the same requests per second (N / 10), one process each, for the
# same span (at most 60 s of them), measured by its CPU use.
per_sec=$((N / 10)); span=$((SECS < 60 ? SECS : 60)); total=$((per_sec * span))
start=$(date +%s.%N)
usage=$( { /usr/bin/time -f "%U %S" bash -c "
  for ((j = 0; j < $span; j++)); do
    for ((i = 0; i < $per_sec; i++)); do
      curl -sk -o /dev/null -w '%{time_appconnect}\n' https://127.0.0.1:$HTTPS/t\$i &
    done
    wait
  done" > "$TMP/curl.out"; } 2>&1 | tail -1)
end=$(date +%s.%N)
read -r u s <<<"$usage"
wall=$(echo "$end - $start" | bc)
ccpu=$(echo "scale=2; ($u + $s) * 100 / $wall" | bc)
cfail=$(awk '$1 == 0' "$TMP/curl.out" | wc -l)
ctls=$(awk '{s += $1} END {printf "%.2f", s / NR * 1000}' "$TMP/curl.out")
echo "| curl (one per request, $per_sec at a time) | $ccpu (over ${wall%.*} s) | $(echo "scale=2; ($u + $s) * 1000 / $total" | bc) | - | $(wc -l < "$TMP/curl.out") / $total | $cfail | - | ${ctls} ms (connect+TLS, $per_sec processes at once) |"
