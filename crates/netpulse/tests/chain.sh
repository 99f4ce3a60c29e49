#!/usr/bin/env bash
# A chain of routers in network namespaces, for `netpulse trace`'s test and bench/trace_compare.sh:
# ${P}C — ${P}R1 — ${P}R2 — ${P}W (a delay line, started by the caller: wire.py wa wb) — ${P}R3 — ${P}S,
# and ${P}R4 between R2 and S for a second path. IPv4 10.N.x.0/24 and IPv6 fd00:N:x::/64.
#   usage: chain.sh PREFIX N
set -e
P=$1; N=$2
for n in C R1 R2 R3 R4 W S; do ip netns add $P$n; ip -n $P$n link set lo up; done
link() { ip link add $3 netns $P$1 type veth peer name $4 netns $P$2; }
link C R1 c0 r1a; link R1 R2 r1b r2a; link R2 W r2b wa; link W R3 wb r3a; link R3 S r3b s0
link R2 R4 r2c r4a; link R4 S r4b s1
addr() { ip -n $P$1 addr add 10.$N.$3.$4/24 dev $2; ip -n $P$1 addr add fd00:$N:$3::$4/64 dev $2 nodad; ip -n $P$1 link set $2 up; }
addr C c0 1 1; addr R1 r1a 1 2
addr R1 r1b 2 1; addr R2 r2a 2 2
addr R2 r2b 3 1; addr R3 r3a 3 2
addr R3 r3b 4 1; addr S s0 4 2
addr R2 r2c 5 1; addr R4 r4a 5 2
addr R4 r4b 6 1; addr S s1 6 2
ip -n ${P}W link set wa up; ip -n ${P}W link set wb up
for x in "R2 r2b" "W wa" "W wb" "R3 r3a"; do set -- $x; ip netns exec $P$1 ethtool -K $2 tso off gso off gro off tx off rx off >/dev/null 2>&1 || true; done
for n in R1 R2 R3 R4; do
  ip netns exec $P$n sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
done
# Answer every probe: no ICMP rate limit on the routers and the server (the test probes fast).
for n in R1 R2 R3 R4 S; do
  ip netns exec $P$n sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
done
route() { ip -n $P$1 route add 10.$N.$2.0/24 via 10.$N.$3; ip -n $P$1 -6 route add fd00:$N:$2::/64 via fd00:$N:$(echo $3 | sed "s/\./::/"); }
ip -n ${P}C route add default via 10.$N.1.2; ip -n ${P}C -6 route add default via fd00:$N:1::2
ip -n ${P}R1 route add default via 10.$N.2.2; ip -n ${P}R1 -6 route add default via fd00:$N:2::2
for s in 4 6; do route R2 $s 3.2; done; route R2 1 2.1
for s in 1 2 5; do route R3 $s 3.1; done
for s in 1 2 3 4; do route R4 $s 5.1; done
ip -n ${P}S route add default via 10.$N.4.1; ip -n ${P}S -6 route add default via fd00:$N:4::1
