//! What a capture says: packets and bytes per protocol (in total and per interval), unique hosts,
//! flows (bidirectional 5-tuple) with TCP handshake and data→ACK round trips and DNS
//! query→response times, top talkers, malformed counts. Memory is bounded: closed and idle
//! flows expire; the host and port tables keep the busiest entries.

use crate::decode::{decode, Decoded, Malformed, Network, Transport};
use crate::hashing::{Distinct, TableHasher, TableMap};
use netpulse_core::stats::RttStats;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

/// Empty intervals reported for a gap in the capture before the rest of it is skipped.
const MAX_EMPTY_INTERVALS: u32 = 1000;

/// The protocols counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// Ethernet frames.
    Ethernet,
    /// ARP.
    Arp,
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP and ICMPv6.
    Icmp,
    /// Anything else (other EtherTypes, other IP protocols).
    Other,
}

impl Protocol {
    /// All, in report order.
    pub const ALL: [Protocol; 8] = [
        Protocol::Ethernet,
        Protocol::Arp,
        Protocol::Ipv4,
        Protocol::Ipv6,
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Icmp,
        Protocol::Other,
    ];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Ethernet => "ethernet",
            Protocol::Arp => "arp",
            Protocol::Ipv4 => "ipv4",
            Protocol::Ipv6 => "ipv6",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Other => "other",
        }
    }
}

/// Packets and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Packets.
    pub packets: u64,
    /// Bytes (on-the-wire length).
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, bytes: u32) {
        self.packets += 1;
        self.bytes += u64::from(bytes);
    }
}

/// One interval's traffic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interval {
    /// Start (capture time, ns).
    pub start_ns: u64,
    /// Length.
    pub length: Duration,
    /// All packets.
    pub total: Count,
    /// Per protocol.
    pub protocols: [Count; 8],
    /// Flows first seen in the interval.
    pub new_flows: u64,
    /// Distinct IP addresses seen.
    pub unique_ips: usize,
    /// Distinct MAC addresses seen.
    pub unique_macs: usize,
}

/// Canonical flow key: protocol and the two endpoints, lower first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// IP protocol number.
    pub proto: u8,
    /// Lower endpoint.
    pub a: (IpAddr, u16),
    /// Higher endpoint.
    pub b: (IpAddr, u16),
}

impl FlowKey {
    /// `tcp` or `udp` (the only protocols flows are kept for).
    pub fn proto_name(&self) -> &'static str {
        if self.proto == 6 {
            "tcp"
        } else {
            "udp"
        }
    }
}

/// The flow table's key: [`FlowKey`] as plain integers, so hashing and comparing it (once per
/// packet) is a few word operations rather than a walk through `IpAddr`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct MapKey {
    a: u128,
    b: u128,
    /// a's port, b's port, protocol, and 1 for IPv6.
    rest: u64,
}

impl MapKey {
    fn of(k: &FlowKey) -> Self {
        MapKey {
            a: ip_bits(k.a.0),
            b: ip_bits(k.b.0),
            rest: u64::from(k.a.1) << 32
                | u64::from(k.b.1) << 16
                | u64::from(k.proto) << 8
                | u64::from(k.a.0.is_ipv6()),
        }
    }
}

fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// A flow as reported when it ends (or at the end of the capture).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    /// Endpoints.
    pub key: FlowKey,
    /// First and last packet (ns).
    pub first_ns: u64,
    /// Last packet.
    pub last_ns: u64,
    /// a→b packets and bytes.
    pub a_to_b: Count,
    /// b→a.
    pub b_to_a: Count,
    /// TCP: SYN → SYN/ACK (the server's side of the handshake), ns; `None` when a timestamp
    /// went backwards or the half was not seen.
    pub syn_to_synack_ns: Option<u64>,
    /// TCP: SYN/ACK → ACK (the client's side), ns; `None` likewise.
    pub synack_to_ack_ns: Option<u64>,
    /// TCP: from the most recent SYN to the first packet with ACK and no SYN after it (the
    /// handshake's ACK, or a RST/ACK refusing it), as Wireshark's `tcp.analysis.initial_rtt`;
    /// measured directly, never the sum of the halves (a timestamp that went backwards would
    /// make one of them nonsense).
    pub initial_rtt_ns: Option<u64>,
    /// TCP: FIN seen / RST seen.
    pub fin: bool,
    /// RST seen.
    pub rst: bool,
}

impl FlowRecord {
    /// Busier first: more bytes, then the earlier, then the lower key — one order whatever
    /// the order flows end in, so the top list is the same however the capture was split.
    pub fn busier(a: &FlowRecord, b: &FlowRecord) -> std::cmp::Ordering {
        let bytes = |f: &FlowRecord| f.a_to_b.bytes + f.b_to_a.bytes;
        bytes(a)
            .cmp(&bytes(b))
            .then(b.first_ns.cmp(&a.first_ns))
            .then(b.key.cmp(&a.key))
    }

    /// SYN → ACK: the handshake round trip as Wireshark's `tcp.analysis.initial_rtt`.
    pub fn initial_rtt_ns(&self) -> Option<u64> {
        self.initial_rtt_ns
    }
}

#[derive(Debug, Clone)]
struct Flow {
    rec: FlowRecord,
    /// Which side sent the SYN (true: a).
    client_is_a: Option<bool>,
    /// The client's initial sequence number: a SYN with another one is a new connection.
    client_isn: Option<u32>,
    /// The server's, from its SYN/ACK.
    server_isn: Option<u32>,
    /// The most recent SYN (no ACK): what the initial RTT is measured from.
    syn_ns: Option<u64>,
    synack_ns: Option<u64>,
    /// The initial RTT was taken (once per connection).
    first_rtt_done: bool,
    fin_dirs: u8,
    /// Per direction: (seq end, time, retransmitted) of the oldest unacknowledged data segment;
    /// a retransmitted one gives no RTT sample (Karn's rule).
    unacked: [Option<(u32, u64, bool)>; 2],
    /// DNS queries waiting: (id, time).
    dns: Vec<(u16, u64)>,
    closed: bool,
    /// Not yet counted as a new flow.
    new: bool,
    /// Slots of the two hosts and two ports in the talker tables (`NO_SLOT`: beyond the cap),
    /// found once when the flow starts so later packets need no lookup.
    host_slots: [u32; 2],
    port_slots: [u32; 2],
    /// The MAC pair of the last packet and the interval it was counted in: the usual packet
    /// needs no MAC lookup either.
    last_macs: Option<([u8; 6], [u8; 6])>,
    macs_interval: u64,
}

/// Hosts and ports by bytes, for the top lists. The host table is a bounded heavy-hitter
/// table: when it is full, the tenth with the fewest bytes makes room (so the busiest hosts
/// stay, whatever the number of addresses seen); ports beyond `max` get no slot.
struct Talkers {
    max: usize,
    /// Host → its slot in `host_slots`.
    hosts: TableMap<IpAddr, u32>,
    host_slots: Vec<HostSlot>,
    /// Slots of evicted hosts, to reuse.
    free: Vec<u32>,
    /// Every address ever given a slot (exact, then estimated).
    unique: Distinct,
    /// (protocol, port) → its slot in `port_slots`.
    ports: TableMap<(u8, u16), u32>,
    port_slots: Vec<(u8, u16, u64)>,
}

impl Talkers {
    fn new(max: usize, hasher: &TableHasher) -> Self {
        Talkers {
            max: max.max(10),
            hosts: TableMap::with_hasher(hasher.clone()),
            host_slots: Vec::new(),
            free: Vec::new(),
            unique: Distinct::default(),
            ports: TableMap::with_hasher(hasher.clone()),
            port_slots: Vec::new(),
        }
    }

    /// The host's talker slot (made, evicting the least busy hosts if the table is full).
    fn host_slot(&mut self, ip: IpAddr) -> u32 {
        if let Some(&slot) = self.hosts.get(&ip) {
            return slot;
        }
        self.unique.insert_hash(self.hosts.hasher().hash_one(ip));
        if self.free.is_empty() && self.host_slots.len() >= self.max {
            self.evict();
        }
        let host = HostSlot {
            ip,
            bytes: 0,
            seen: 0,
            live: true,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.host_slots[slot as usize] = host;
                slot
            }
            None => {
                self.host_slots.push(host);
                (self.host_slots.len() - 1) as u32
            }
        };
        self.hosts.insert(ip, slot);
        slot
    }

    /// The slot of `ip` if `slot` (cached by a flow) still holds it, else its slot now.
    fn host_slot_cached(&mut self, slot: u32, ip: IpAddr) -> u32 {
        match self.host_slots.get(slot as usize) {
            Some(h) if h.live && h.ip == ip => slot,
            _ => self.host_slot(ip),
        }
    }

    /// Frees the tenth of the host table with the fewest bytes.
    fn evict(&mut self) {
        let mut by_bytes: Vec<(u64, u32)> = self
            .host_slots
            .iter()
            .enumerate()
            .filter(|(_, h)| h.live)
            .map(|(i, h)| (h.bytes, i as u32))
            .collect();
        let k = (by_bytes.len() / 10).max(1).min(by_bytes.len());
        if k == 0 {
            return;
        }
        by_bytes.select_nth_unstable(k - 1);
        for &(_, slot) in &by_bytes[..k] {
            let h = &mut self.host_slots[slot as usize];
            h.live = false;
            self.hosts.remove(&h.ip);
            self.free.push(slot);
        }
    }

    /// The port's talker slot, made if there is room.
    fn port_slot(&mut self, proto: u8, port: u16) -> u32 {
        if let Some(&slot) = self.ports.get(&(proto, port)) {
            return slot;
        }
        if self.port_slots.len() >= self.max {
            return NO_SLOT;
        }
        let slot = self.port_slots.len() as u32;
        self.port_slots.push((proto, port, 0));
        self.ports.insert((proto, port), slot);
        slot
    }
}

/// What the analyzer needs of a packet: its time, length, layers and DNS header (id, is a
/// response) — small and owned, so decoding can run on another thread.
#[derive(Debug, Clone, Copy)]
pub struct PacketSummary {
    /// Capture time (ns since the epoch).
    pub ts_ns: u64,
    /// Length on the wire.
    pub len: u32,
    /// The decoded layers.
    pub decoded: Decoded,
    /// DNS over UDP port 53: the message id and whether it is a response.
    pub dns: Option<(u16, bool)>,
}

/// A packet as one tcpdump-like line (without its time): `TCP 10.0.0.1:40000 > 10.0.0.2:443
/// [S.] 60`, `UDP …`, `ICMP … type 8 code 0 …`, `ARP 42`, `ethertype 0x88cc 60`.
pub struct PacketLine<'a>(&'a PacketSummary);

impl std::fmt::Display for PacketLine<'_> {
    fn fmt(&self, w: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (d, len) = (&self.0.decoded, self.0.len);
        match (d.network, d.transport) {
            (
                Network::Ip { src, dst, .. },
                Transport::Tcp {
                    sport,
                    dport,
                    flags,
                    ..
                },
            ) => {
                let names = [
                    (0x02, 'S'),
                    (0x10, '.'),
                    (0x01, 'F'),
                    (0x04, 'R'),
                    (0x08, 'P'),
                ];
                let f: String = names
                    .iter()
                    .filter(|(b, _)| flags & b != 0)
                    .map(|(_, c)| *c)
                    .collect();
                write!(w, "TCP {src}:{sport} > {dst}:{dport} [{f}] {len}")
            }
            (Network::Ip { src, dst, .. }, Transport::Udp { sport, dport, .. }) => {
                write!(w, "UDP {src}:{sport} > {dst}:{dport} {len}")
            }
            (Network::Ip { src, dst, .. }, Transport::Icmp { kind, code, v6 }) => write!(
                w,
                "{} {src} > {dst} type {kind} code {code} {len}",
                if v6 { "ICMPv6" } else { "ICMP" }
            ),
            (
                Network::Ip {
                    src, dst, proto, ..
                },
                _,
            ) => write!(w, "IP proto {proto} {src} > {dst} {len}"),
            (Network::Arp(Some(a)), _) => match a.op {
                1 => write!(
                    w,
                    "ARP who-has {} tell {} ({}) {len}",
                    a.target_ip,
                    a.sender_ip,
                    Mac(a.sender_mac)
                ),
                2 => write!(
                    w,
                    "ARP {} is-at {} (to {} {}) {len}",
                    a.sender_ip,
                    Mac(a.sender_mac),
                    a.target_ip,
                    Mac(a.target_mac)
                ),
                op => write!(
                    w,
                    "ARP op {op} {} ({}) > {} ({}) {len}",
                    a.sender_ip,
                    Mac(a.sender_mac),
                    a.target_ip,
                    Mac(a.target_mac)
                ),
            },
            (Network::Arp(None), _) => write!(w, "ARP {len}"),
            _ => write!(w, "ethertype 0x{:04x} {len}", d.ethertype),
        }
    }
}

/// A MAC address as `aa:bb:cc:dd:ee:ff`.
pub struct Mac(pub [u8; 6]);

impl std::fmt::Display for Mac {
    fn fmt(&self, w: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(
            w,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// A packet as `tcpdump -e` shows it: the link addresses, then [`PacketLine`].
pub struct PacketLineWithMacs<'a>(&'a PacketSummary);

impl std::fmt::Display for PacketLineWithMacs<'_> {
    fn fmt(&self, w: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.0.decoded;
        if let (Some(src), Some(dst)) = (d.src_mac, d.dst_mac) {
            write!(w, "{} > {}, ", Mac(src), Mac(dst))?;
        }
        write!(w, "{}", PacketLine(self.0))
    }
}

impl PacketSummary {
    /// The packet as one tcpdump-like line (see [`PacketLine`]).
    pub fn line(&self) -> PacketLine<'_> {
        PacketLine(self)
    }

    /// The packet with its link addresses first, as `tcpdump -e` writes it.
    pub fn line_with_macs(&self) -> PacketLineWithMacs<'_> {
        PacketLineWithMacs(self)
    }

    /// Decodes a captured packet.
    pub fn of(ts_ns: u64, len: u32, linktype: u16, data: &[u8]) -> Self {
        let decoded = decode(linktype, data);
        let dns = match decoded.transport {
            Transport::Udp {
                sport,
                dport,
                payload_at,
                payload,
            } if (sport == 53 || dport == 53) && payload >= 12 => {
                let at = usize::from(payload_at);
                data.get(at..at + 12)
                    .map(|h| (u16::from_be_bytes([h[0], h[1]]), h[2] & 0x80 != 0))
            }
            _ => None,
        };
        PacketSummary {
            ts_ns,
            len,
            decoded,
            dns,
        }
    }
}

/// Flows by key: a map to slots in a slab, so the map's entries stay small and the slab's
/// slots are reused as flows end (growing it never copies or re-faults the live flows).
struct FlowTable {
    index: TableMap<MapKey, u32>,
    slab: Vec<Flow>,
    free: Vec<u32>,
}

impl FlowTable {
    fn new(hasher: &TableHasher) -> Self {
        FlowTable {
            index: TableMap::with_hasher(hasher.clone()),
            slab: Vec::new(),
            free: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn contains_key(&self, k: &MapKey) -> bool {
        self.index.contains_key(k)
    }

    fn get(&self, k: &MapKey) -> Option<&Flow> {
        self.index.get(k).map(|&i| &self.slab[i as usize])
    }

    fn get_or_insert_with(&mut self, k: MapKey, make: impl FnOnce() -> Flow) -> &mut Flow {
        let i = match self.index.entry(k) {
            std::collections::hash_map::Entry::Occupied(o) => *o.get() as usize,
            std::collections::hash_map::Entry::Vacant(v) => {
                let flow = make();
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slab[i as usize] = flow;
                        i
                    }
                    None => {
                        self.slab.push(flow);
                        (self.slab.len() - 1) as u32
                    }
                };
                v.insert(i);
                i as usize
            }
        };
        &mut self.slab[i]
    }

    fn release(&mut self, i: u32) -> FlowRecord {
        let f = &mut self.slab[i as usize];
        f.dns = Vec::new();
        self.free.push(i);
        f.rec.clone()
    }

    fn remove(&mut self, k: &MapKey) -> Option<FlowRecord> {
        let i = self.index.remove(k)?;
        Some(self.release(i))
    }

    /// Removes the flows `done` says are done, adding their records to `expired`.
    fn retain(&mut self, expired: &mut Vec<FlowRecord>, mut done: impl FnMut(&Flow) -> bool) {
        let mut gone = Vec::new();
        self.index.retain(|_, &mut i| {
            let d = done(&self.slab[i as usize]);
            if d {
                gone.push(i);
            }
            !d
        });
        expired.extend(gone.into_iter().map(|i| self.release(i)));
    }

    fn iter(&self) -> impl Iterator<Item = (&MapKey, &Flow)> {
        self.index.iter().map(|(k, &i)| (k, &self.slab[i as usize]))
    }

    fn into_records(mut self) -> Vec<FlowRecord> {
        let slots: Vec<u32> = self.index.drain().map(|(_, i)| i).collect();
        slots.into_iter().map(|i| self.release(i)).collect()
    }
}

/// A talker-table slot that does not exist (the table was full).
const NO_SLOT: u32 = u32::MAX;

/// The service's port of a conversation whose first packet went `sport` → `dport`: the one
/// well-known port (below 1024) if only one is; else the one outside the ephemeral range
/// (49152 and up, and Linux's 32768 and up) if only one is; else the first packet's
/// destination (clients speak first).
fn service_port(sport: u16, dport: u16) -> u16 {
    let well_known = |p: u16| p < 1024;
    let ephemeral = |p: u16| p >= 32768;
    match (well_known(sport), well_known(dport)) {
        (true, false) => return sport,
        (false, true) => return dport,
        _ => {}
    }
    match (ephemeral(sport), ephemeral(dport)) {
        (false, true) => sport,
        _ => dport,
    }
}

/// A host's bytes (sent + received) and the interval it was last seen in.
#[derive(Debug, Clone, Copy)]
struct HostSlot {
    ip: IpAddr,
    bytes: u64,
    seen: u64,
    /// False once evicted (the slot waits for reuse).
    live: bool,
}

/// Latency histograms.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    /// TCP SYN → ACK (initial RTT).
    pub tcp_handshake: RttStats,
    /// TCP data → ACK.
    pub tcp_data: RttStats,
    /// DNS query → response.
    pub dns: RttStats,
}

/// Settings.
#[derive(Debug, Clone)]
pub struct AnalyzerConfig {
    /// Interval reports (`None`: none).
    pub interval: Option<Duration>,
    /// A flow with no packet for this long is expired.
    pub idle_timeout: Duration,
    /// Closed flows (FIN both ways or RST) linger this long for late packets.
    pub close_linger: Duration,
    /// Most flows kept at once; beyond, the stalest are expired early.
    pub max_flows: usize,
    /// Most hosts/ports tracked for top talkers (beyond, the least busy hosts make room).
    pub max_talkers: usize,
    /// Hash the tables with a random key (live traffic: its senders choose the keys).
    pub keyed_hash: bool,
    /// Keep per-second protocol counts for [`Analyzer::take_seconds`] (recording).
    pub per_second: bool,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        Self {
            interval: Some(Duration::from_secs(10)),
            idle_timeout: Duration::from_secs(120),
            close_linger: Duration::from_secs(2),
            max_flows: 1_000_000,
            // ~70 bytes each: 7 MB at most.
            max_talkers: 100_000,
            keyed_hash: false,
            per_second: false,
        }
    }
}

/// The final report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Packets and bytes.
    pub total: Count,
    /// Per protocol.
    pub protocols: [Count; 8],
    /// First and last packet time (ns).
    pub first_ns: u64,
    /// Last packet.
    pub last_ns: u64,
    /// Distinct IPs.
    pub unique_ips: usize,
    /// Distinct MACs.
    pub unique_macs: usize,
    /// The distinct counts are exact (else estimates within ~2 %: beyond 65 536 distinct).
    pub unique_exact: bool,
    /// TCP flows (NetFlow-style: a 4-tuple's packets until 2 s after its close or 120 s idle;
    /// see [`AnalyzerConfig`]).
    pub tcp_flows: u64,
    /// TCP conversations as tshark counts them (`-z conv,tcp`): a 4-tuple's connection, a new
    /// SYN with a new initial sequence number a new one, however long it idles.
    pub tcp_conversations: usize,
    /// UDP conversations (4-tuples).
    pub udp_conversations: usize,
    /// The conversation counts are exact (else estimates within ~2 %, past 65 536).
    pub conversations_exact: bool,
    /// SYNs sent again with the same initial sequence number before any answer: connection
    /// retries.
    pub syn_retransmits: u64,
    /// UDP flows (as TCP's, without the close).
    pub udp_flows: u64,
    /// Malformed packets by reason.
    pub malformed: BTreeMap<Malformed, u64>,
    /// Latencies.
    pub latency: Latency,
    /// Busiest hosts (bytes sent + received), most first.
    pub top_hosts: Vec<(IpAddr, u64)>,
    /// Busiest conversations.
    pub top_flows: Vec<FlowRecord>,
    /// Busiest ports (protocol, port, bytes).
    pub top_ports: Vec<(u8, u16, u64)>,
    /// Packets and bytes per tunnel decapsulated, in [`crate::decode::Tunnel::ALL`]'s order.
    pub tunnels: [Count; 7],
}

/// Feeds on packets, produces intervals, flows and a report.
pub struct Analyzer {
    cfg: AnalyzerConfig,
    report: Report,
    /// The tables' hasher (keyed for live traffic).
    hasher: TableHasher,
    /// Distinct MACs of the whole capture and of the current interval.
    macs: Distinct,
    interval_macs: Distinct,
    /// Distinct IPs of the current interval.
    interval_ips: Distinct,
    /// Distinct conversations (TCP, UDP): a flow's key and, for TCP, its SYN's sequence number.
    conversations: [Distinct; 2],
    interval: Interval,
    interval_no: u64,
    flows: FlowTable,
    talkers: Talkers,
    top_flows: Vec<FlowRecord>,
    top_n: usize,
    last_sweep_ns: u64,
    last_idle_scan_ns: u64,
    /// Flows that closed (FIN both ways or RST), oldest first, with the time they closed: the
    /// one-second sweep looks at these only; idle flows are found by a rarer full scan.
    closing: std::collections::VecDeque<(u64, MapKey)>,
    /// The current second (unix s) and its counts, when `per_second`.
    second: Option<(i64, [Count; 8])>,
    seconds: Vec<(i64, [Count; 8])>,
    /// Intervals and sweeps have a start (the first packet, or [`Analyzer::align`]).
    started: bool,
    /// A shard's: each closed interval's distinct IPs and MACs, for the merge.
    interval_sets: Option<Vec<IntervalSets>>,
}

/// One closed interval's distinct IPs and MACs (a shard's share, merged with the others'),
/// in the order the intervals were handed to `on_interval`.
pub(crate) struct IntervalSets {
    pub(crate) ips: Distinct,
    pub(crate) macs: Distinct,
}

/// Which of a packet's flows an analyzer counts: a tunnel's packet belongs to two flows (the
/// outer and the inner), which may live in two shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// Everything.
    All,
    /// Everything but the tunnel's outer flow.
    AllButOuterFlow,
    /// Only the tunnel's outer flow.
    OuterFlow,
}

/// What a shard's analyzer hands over at its end, to be merged with the other shards'.
pub(crate) struct ShardEnd {
    pub(crate) report: Report,
    /// The distinct sets of the intervals closed at the end.
    pub(crate) interval_sets: Vec<IntervalSets>,
    pub(crate) seconds: Vec<(i64, [Count; 8])>,
    pub(crate) ips: Distinct,
    pub(crate) macs: Distinct,
    pub(crate) conversations: [Distinct; 2],
    pub(crate) hosts: Vec<(IpAddr, u64)>,
    pub(crate) ports: Vec<(u8, u16, u64)>,
}

fn seq_ge(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) as i32 >= 0
}

impl Analyzer {
    /// An analyzer keeping `top_n` entries in each top list.
    pub fn new(cfg: AnalyzerConfig, top_n: usize) -> Self {
        let hasher = TableHasher::new(cfg.keyed_hash);
        Self::with_hasher(cfg, top_n, hasher)
    }

    /// An analyzer hashing with `hasher` (shards of one capture share one, so that their
    /// distinct counts merge).
    pub(crate) fn with_hasher(cfg: AnalyzerConfig, top_n: usize, hasher: TableHasher) -> Self {
        Self {
            report: Report::default(),
            macs: Distinct::default(),
            interval_macs: Distinct::default(),
            interval_ips: Distinct::default(),
            conversations: [Distinct::default(), Distinct::default()],
            interval: Interval::default(),
            interval_no: 1,
            flows: FlowTable::new(&hasher),
            talkers: Talkers::new(cfg.max_talkers, &hasher),
            hasher,
            top_flows: Vec::new(),
            top_n: top_n.max(1),
            last_sweep_ns: 0,
            last_idle_scan_ns: 0,
            closing: std::collections::VecDeque::new(),
            second: None,
            seconds: Vec::new(),
            started: false,
            interval_sets: None,
            cfg,
        }
    }

    /// Starts intervals and sweeps at `origin_ns` (a shard's: the capture's first packet,
    /// which another shard may have had), and keeps each interval's distinct sets.
    pub(crate) fn align(&mut self, origin_ns: u64) {
        self.started = true;
        self.interval.start_ns = origin_ns;
        self.last_sweep_ns = origin_ns;
        self.last_idle_scan_ns = origin_ns;
        self.interval_sets = Some(Vec::new());
    }

    /// The distinct sets of the intervals closed since the last call (after [`Analyzer::align`]).
    pub(crate) fn take_interval_sets(&mut self) -> Vec<IntervalSets> {
        self.interval_sets
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Moves the capture's clock to `clock_ns` (a shard's, for packets other shards had):
    /// closes the intervals and seconds that ended before it and expires flows as due.
    pub(crate) fn advance_to(
        &mut self,
        clock_ns: u64,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) {
        if !self.started {
            return;
        }
        self.close_intervals_before(clock_ns, on_interval);
        let sec = (clock_ns / 1_000_000_000) as i64;
        if self.second.is_some_and(|(s, _)| s < sec) {
            if let Some(done) = self.second.take() {
                self.seconds.push(done);
            }
        }
        if clock_ns >= self.last_sweep_ns.saturating_add(1_000_000_000) {
            self.last_sweep_ns = clock_ns;
            self.sweep(clock_ns, on_flow);
        }
    }

    /// Closes every interval that ended at or before `clock_ns`.
    fn close_intervals_before(&mut self, clock_ns: u64, on_interval: &mut dyn FnMut(&Interval)) {
        let Some(every) = self.cfg.interval else {
            return;
        };
        let every = (every.as_nanos() as u64).max(1);
        let mut emitted = 0;
        // `checked_add`: a timestamp near the end of time must not wrap the interval around.
        while self
            .interval
            .start_ns
            .checked_add(every)
            .is_some_and(|end| clock_ns >= end)
        {
            self.close_interval(every, on_interval);
            emitted += 1;
            if emitted >= MAX_EMPTY_INTERVALS {
                // A gap (or a corrupt timestamp) far ahead: skip to it, not through it.
                let skip = (clock_ns - self.interval.start_ns) / every;
                self.interval.start_ns = self
                    .interval
                    .start_ns
                    .saturating_add(skip.saturating_mul(every));
            }
        }
    }

    /// Counts one packet; closed intervals go to `on_interval`, expired flows to `on_flow`.
    pub fn packet(
        &mut self,
        ts_ns: u64,
        len: u32,
        linktype: u16,
        data: &[u8],
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) {
        let summary = PacketSummary::of(ts_ns, len, linktype, data);
        self.summary(&summary, on_interval, on_flow);
    }

    /// [`Analyzer::packet`] for a packet already decoded (on another thread, say).
    pub fn summary(
        &mut self,
        p: &PacketSummary,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) {
        self.summary_part(p, Part::All, p.ts_ns, on_interval, on_flow);
    }

    /// Counts `part` of one packet at capture clock `clock_ns` (the latest time seen so far,
    /// which for one analyzer fed every packet is the packet's own time or later).
    pub(crate) fn summary_part(
        &mut self,
        p: &PacketSummary,
        part: Part,
        clock_ns: u64,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) {
        let (ts_ns, len, d) = (p.ts_ns, p.len, &p.decoded);
        if !self.started {
            self.started = true;
            self.interval.start_ns = ts_ns;
            self.last_sweep_ns = ts_ns;
            self.last_idle_scan_ns = ts_ns;
        }
        self.close_intervals_before(clock_ns, on_interval);
        if part == Part::OuterFlow {
            if let Some((_, Network::Ip { src, dst, .. }, otr)) = d.outer {
                let macs = d.src_mac.zip(d.dst_mac);
                let _ = self.flow(ts_ns, len, src, dst, &otr, macs, None, on_flow);
            }
            if clock_ns >= self.last_sweep_ns.saturating_add(1_000_000_000) {
                self.last_sweep_ns = clock_ns;
                self.sweep(clock_ns, on_flow);
            }
            return;
        }
        if self.report.total.packets == 0 {
            self.report.first_ns = ts_ns;
        }
        self.report.last_ns = self.report.last_ns.max(ts_ns);
        self.report.total.add(len);
        self.interval.total.add(len);
        if let Some(m) = d.malformed {
            *self.report.malformed.entry(m).or_default() += 1;
        }
        if self.cfg.per_second {
            let sec = (ts_ns / 1_000_000_000) as i64;
            match &mut self.second {
                Some((s, _)) if *s == sec => {}
                slot => {
                    if let Some(done) = slot.take() {
                        self.seconds.push(done);
                    }
                    *slot = Some((sec, [Count::default(); 8]));
                }
            }
        }
        let second = &mut self.second;
        // Once per frame each: a tunnel's IPv4 in IPv4 is one IPv4 frame, as analysers count.
        let mut counted = 0u8;
        let mut count = |p: Protocol| {
            if counted & (1 << p as u8) != 0 {
                return;
            }
            counted |= 1 << p as u8;
            self.report.protocols[p as usize].add(len);
            self.interval.protocols[p as usize].add(len);
            if let Some((_, c)) = second.as_mut() {
                c[p as usize].add(len);
            }
        };
        // Counted as an analyser does: a protocol counts once its dissector is reached, even if
        // its header turns out cut short (the reason is counted under malformed).
        if d.ethernet {
            count(Protocol::Ethernet);
        }
        let now = self.interval_no;
        let macs = d.src_mac.zip(d.dst_mac);
        match (d.network, d.ethertype) {
            (
                Network::Ip {
                    src,
                    dst,
                    proto,
                    later_fragment,
                    ..
                },
                _,
            ) => {
                count(if src.is_ipv4() {
                    Protocol::Ipv4
                } else {
                    Protocol::Ipv6
                });
                // A tunnel's outer layers count too (its own protocol in the tunnels table).
                let outer = d.outer;
                if let Some((_, Network::Ip { src: osrc, .. }, otr)) = outer {
                    count(if osrc.is_ipv4() {
                        Protocol::Ipv4
                    } else {
                        Protocol::Ipv6
                    });
                    match otr {
                        Transport::Udp { .. } => count(Protocol::Udp),
                        Transport::Tcp { .. } => count(Protocol::Tcp),
                        _ => {}
                    }
                }
                if !later_fragment {
                    count(match proto {
                        6 => Protocol::Tcp,
                        17 => Protocol::Udp,
                        1 | 58 => Protocol::Icmp,
                        _ => Protocol::Other,
                    });
                }
                if let Some((tunnel, onet, otr)) = outer {
                    self.report.tunnels[tunnel as usize].add(len);
                    // The outer conversation (VXLAN's, Geneve's UDP) is one of its own.
                    if let (
                        Network::Ip {
                            src: osrc,
                            dst: odst,
                            ..
                        },
                        Part::All,
                    ) = (onet, part)
                    {
                        let _ = self.flow(ts_ns, len, osrc, odst, &otr, macs, None, on_flow);
                    }
                }
                let (hosts, macs_counted) =
                    match self.flow(ts_ns, len, src, dst, &d.transport, macs, p.dns, on_flow) {
                        Some(known) => known,
                        None => (
                            [
                                (self.talkers.host_slot(src), src),
                                (self.talkers.host_slot(dst), dst),
                            ],
                            false,
                        ),
                    };
                for (cached, ip) in hosts {
                    // A flow's cached slot may have been given to another host since.
                    let slot = self.talkers.host_slot_cached(cached, ip);
                    if let Some(h) = self.talkers.host_slots.get_mut(slot as usize) {
                        h.bytes += u64::from(len);
                        if h.seen != now {
                            h.seen = now;
                            self.interval_ips.insert(&self.hasher, &ip);
                        }
                    }
                }
                if !macs_counted {
                    self.count_macs(d.src_mac, d.dst_mac);
                }
            }
            (_, ethertype) => {
                match ethertype {
                    0x0806 => count(Protocol::Arp),
                    0x0800 => count(Protocol::Ipv4),
                    0x86dd => count(Protocol::Ipv6),
                    _ if d.malformed.is_none() => count(Protocol::Other),
                    _ => {}
                }
                self.count_macs(d.src_mac, d.dst_mac);
            }
        }
        if clock_ns >= self.last_sweep_ns.saturating_add(1_000_000_000) {
            self.last_sweep_ns = clock_ns;
            self.sweep(clock_ns, on_flow);
        }
    }

    /// Counts unicast MACs as seen this interval.
    fn count_macs(&mut self, src: Option<[u8; 6]>, dst: Option<[u8; 6]>) {
        for m in [src, dst].into_iter().flatten() {
            // Broadcast and multicast destinations are not hosts.
            if m[0] & 1 == 0 {
                let h = self.hasher.hash_one(m);
                self.macs.insert_hash(h);
                self.interval_macs.insert_hash(h);
            }
        }
    }

    /// Counts a TCP or UDP packet in its flow; returns the flow's host slots and whether its
    /// MACs were already counted this interval. `None`: not a flow packet.
    #[allow(clippy::too_many_arguments)]
    fn flow(
        &mut self,
        ts: u64,
        len: u32,
        src: IpAddr,
        dst: IpAddr,
        t: &Transport,
        macs: Option<([u8; 6], [u8; 6])>,
        dns: Option<(u16, bool)>,
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) -> Option<([(u32, IpAddr); 2], bool)> {
        let (proto, sport, dport) = match *t {
            Transport::Tcp { sport, dport, .. } => (6u8, sport, dport),
            Transport::Udp { sport, dport, .. } => (17u8, sport, dport),
            _ => return None,
        };
        let (s, dd) = ((src, sport), (dst, dport));
        // Both ends are of one family, whose order is that of the integers.
        let from_a = (ip_bits(src), sport) <= (ip_bits(dst), dport);
        let key = FlowKey {
            proto,
            a: if from_a { s } else { dd },
            b: if from_a { dd } else { s },
        };
        let map_key = MapKey::of(&key);
        // The flow under this key ends here, and this packet starts a new one, when it is a SYN
        // on a closed connection or with another initial sequence number (a new connection, as
        // Wireshark starts a new stream), or when the flow idled past the timeout or lingered
        // past its close (the same conversation; whenever the sweep would have found it).
        let syn_isn = match *t {
            Transport::Tcp { flags, seq, .. } if flags & 0x12 == 0x02 => Some(seq),
            _ => None,
        };
        let (idle, linger) = (
            netpulse_core::saturating_nanos(self.cfg.idle_timeout),
            netpulse_core::saturating_nanos(self.cfg.close_linger),
        );
        let ends = self.flows.get(&map_key).is_some_and(|f| {
            let age = ts.saturating_sub(f.rec.last_ns);
            let new_connection =
                syn_isn.is_some_and(|seq| f.closed || f.client_isn.is_some_and(|isn| isn != seq));
            new_connection || age >= idle || (f.closed && age >= linger)
        });
        if ends {
            if let Some(r) = self.flows.remove(&map_key) {
                self.finish_flow(r, on_flow);
            }
        }
        if self.flows.len() >= self.cfg.max_flows && !self.flows.contains_key(&map_key) {
            self.sweep_oldest(on_flow);
        }
        let f = self.flows.get_or_insert_with(map_key, || {
            let t = &mut self.talkers;
            let host_slots = [t.host_slot(key.a.0), t.host_slot(key.b.0)];
            // Only the service's port counts: a client's ephemeral port would otherwise rank
            // with them (one big download puts its random port at the top).
            let port_slots = [t.port_slot(proto, service_port(sport, dport)), NO_SLOT];
            Flow {
                rec: FlowRecord {
                    key,
                    first_ns: ts,
                    last_ns: ts,
                    a_to_b: Count::default(),
                    b_to_a: Count::default(),
                    syn_to_synack_ns: None,
                    synack_to_ack_ns: None,
                    initial_rtt_ns: None,
                    fin: false,
                    rst: false,
                },
                client_is_a: None,
                client_isn: None,
                server_isn: None,
                syn_ns: None,
                synack_ns: None,
                first_rtt_done: false,
                fin_dirs: 0,
                unacked: [None, None],
                dns: Vec::new(),
                closed: false,
                new: true,
                host_slots,
                port_slots,
                last_macs: None,
                macs_interval: 0,
            }
        });
        if f.new {
            f.new = false;
            self.interval.new_flows += 1;
            // A conversation is its key and, when it opens with a SYN, that SYN's sequence
            // number: a flow that went idle and came back is the same conversation, a new SYN
            // on the same 4-tuple a new one.
            let h = self.hasher.hash_one((map_key, syn_isn));
            if proto == 6 {
                self.report.tcp_flows += 1;
                self.conversations[0].insert_hash(h);
            } else {
                self.report.udp_flows += 1;
                self.conversations[1].insert_hash(h);
            }
        }

        for slot in f.port_slots {
            if let Some(p) = self.talkers.port_slots.get_mut(slot as usize) {
                p.2 += u64::from(len);
            }
        }
        // As an unordered pair: the two directions of a flow carry the same two MACs.
        let macs = macs.map(|(x, y)| (x.min(y), x.max(y)));
        let macs_counted =
            macs.is_some() && f.last_macs == macs && f.macs_interval == self.interval_no;
        f.last_macs = macs;
        f.macs_interval = self.interval_no;
        let known = Some((
            [
                (f.host_slots[0], f.rec.key.a.0),
                (f.host_slots[1], f.rec.key.b.0),
            ],
            macs_counted,
        ));
        // A timestamp that went backwards (a damaged file) does not make the flow older.
        f.rec.last_ns = f.rec.last_ns.max(ts);
        if from_a {
            f.rec.a_to_b.add(len);
        } else {
            f.rec.b_to_a.add(len);
        }
        let dir = usize::from(!from_a);
        match *t {
            Transport::Tcp {
                flags,
                seq,
                ack,
                payload,
                ..
            } => {
                let (syn, ackf, fin, rst) = (
                    flags & 0x02 != 0,
                    flags & 0x10 != 0,
                    flags & 0x01 != 0,
                    flags & 0x04 != 0,
                );
                if syn && !ackf {
                    if f.client_isn == Some(seq) && f.synack_ns.is_none() {
                        // The same SYN again: a connection retry.
                        self.report.syn_retransmits += 1;
                    }
                    // The RTT runs from the SYN the SYN/ACK answers: the latest.
                    f.syn_ns = Some(ts);
                    f.client_is_a = Some(from_a);
                    f.client_isn = Some(seq);
                } else if syn && ackf && f.client_is_a == Some(!from_a) && f.synack_ns.is_none() {
                    f.synack_ns = Some(ts);
                    f.server_isn = Some(seq);
                    f.rec.syn_to_synack_ns = f.syn_ns.and_then(|s| ts.checked_sub(s));
                } else if !syn && ackf && !f.first_rtt_done {
                    // As Wireshark: the first ACK that acknowledges the other side's SYN (the
                    // client's ACK of the SYN/ACK, or the server's RST/ACK refusing the SYN).
                    let other_isn = if f.client_is_a == Some(from_a) {
                        f.server_isn
                    } else {
                        f.client_isn
                    };
                    let acks_syn = other_isn.is_some_and(|isn| ack == isn.wrapping_add(1));
                    if let Some(syn_at) = f.syn_ns.filter(|_| acks_syn) {
                        f.first_rtt_done = true;
                        // Measured whole; a half that went backwards is unknown, not summed.
                        let whole = ts.checked_sub(syn_at);
                        f.rec.initial_rtt_ns = whole;
                        if f.client_is_a == Some(from_a) {
                            f.rec.synack_to_ack_ns = f
                                .synack_ns
                                .and_then(|s| ts.checked_sub(s))
                                .filter(|h| whole.is_some_and(|w| *h <= w));
                        }
                        if let Some(rtt) = whole {
                            self.report
                                .latency
                                .tcp_handshake
                                .record(Duration::from_nanos(rtt));
                        }
                    }
                }
                // Data → ACK: the oldest unacknowledged segment of each direction; one sent
                // again before its ACK gives no sample (Karn's rule: which copy was ACKed?).
                if payload > 0 {
                    match &mut f.unacked[dir] {
                        None => f.unacked[dir] = Some((seq.wrapping_add(payload), ts, false)),
                        Some((end, _, again)) if !seq_ge(seq, *end) => *again = true,
                        Some(_) => {}
                    }
                }
                if ackf {
                    if let Some((end, sent, again)) = f.unacked[1 - dir] {
                        if seq_ge(ack, end) {
                            if !again {
                                self.report
                                    .latency
                                    .tcp_data
                                    .record(Duration::from_nanos(ts.saturating_sub(sent)));
                            }
                            f.unacked[1 - dir] = None;
                        }
                    }
                }
                if fin {
                    f.fin_dirs |= 1 << dir;
                    f.rec.fin = true;
                }
                if rst {
                    f.rec.rst = true;
                }
                if !f.closed && (f.rec.rst || f.fin_dirs == 3) {
                    f.closed = true;
                    self.closing.push_back((ts, map_key));
                }
            }
            Transport::Udp { .. } => {
                if let Some((id, response)) = dns {
                    if !response {
                        if f.dns.len() < 64 {
                            f.dns.push((id, ts));
                        }
                    } else if let Some(i) = f.dns.iter().position(|(q, _)| *q == id) {
                        let (_, sent) = f.dns.swap_remove(i);
                        self.report
                            .latency
                            .dns
                            .record(Duration::from_nanos(ts.saturating_sub(sent)));
                    }
                }
            }
            _ => {}
        }
        known
    }

    fn close_interval(&mut self, every: u64, on_interval: &mut dyn FnMut(&Interval)) {
        self.interval.length = Duration::from_nanos(every);
        self.take_interval_uniques();
        on_interval(&self.interval);
        self.interval = Interval {
            start_ns: self.interval.start_ns.saturating_add(every),
            ..Interval::default()
        };
        self.interval_no += 1;
    }

    /// The interval's distinct counts, and a fresh start for the next.
    fn take_interval_uniques(&mut self) {
        self.interval.unique_ips = self.interval_ips.len();
        self.interval.unique_macs = self.interval_macs.len();
        match &mut self.interval_sets {
            Some(sets) => sets.push(IntervalSets {
                ips: std::mem::take(&mut self.interval_ips),
                macs: std::mem::take(&mut self.interval_macs),
            }),
            None => {
                self.interval_ips.clear();
                self.interval_macs.clear();
            }
        }
    }

    /// Expires closed flows past their linger; every tenth of the idle timeout, idle flows too.
    fn sweep(&mut self, now: u64, on_flow: &mut dyn FnMut(&FlowRecord)) {
        let linger = self.cfg.close_linger.as_nanos() as u64;
        let idle = self.cfg.idle_timeout.as_nanos() as u64;
        let mut expired = Vec::new();
        while let Some(&(closed_at, key)) = self.closing.front() {
            if now.saturating_sub(closed_at) < linger {
                break;
            }
            self.closing.pop_front();
            // The flow may have gone (expired early) or be a new one under the same key.
            if let Some(f) = self.flows.get(&key).filter(|f| f.closed) {
                if now.saturating_sub(f.rec.last_ns) >= linger {
                    if let Some(r) = self.flows.remove(&key) {
                        expired.push(r);
                    }
                } else {
                    // Late packets after the close: look again once they have lingered.
                    self.closing.push_back((f.rec.last_ns, key));
                }
            }
        }
        if now >= self.last_idle_scan_ns.saturating_add(idle / 10) {
            self.last_idle_scan_ns = now;
            self.flows.retain(&mut expired, |f| {
                let age = now.saturating_sub(f.rec.last_ns);
                (f.closed && age >= linger) || age >= idle
            });
        }
        for r in expired {
            self.finish_flow(r, on_flow);
        }
    }

    fn sweep_oldest(&mut self, on_flow: &mut dyn FnMut(&FlowRecord)) {
        // Expire the stalest tenth at once, so a flood of new flows costs one sort per many.
        let mut ages: Vec<(u64, MapKey)> = self
            .flows
            .iter()
            .map(|(k, f)| (f.rec.last_ns, *k))
            .collect();
        ages.sort_unstable();
        for (_, k) in ages.into_iter().take((self.cfg.max_flows / 10).max(1)) {
            if let Some(r) = self.flows.remove(&k) {
                self.finish_flow(r, on_flow);
            }
        }
    }

    fn finish_flow(&mut self, r: FlowRecord, on_flow: &mut dyn FnMut(&FlowRecord)) {
        on_flow(&r);
        if self.top_flows.len() < self.top_n {
            self.top_flows.push(r);
        } else if let Some((i, min)) = self
            .top_flows
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| FlowRecord::busier(a, b))
        {
            if FlowRecord::busier(&r, min).is_gt() {
                self.top_flows[i] = r;
            }
        }
    }

    /// Packets and bytes counted so far.
    pub fn total(&self) -> Count {
        self.report.total
    }

    /// The busiest hosts so far (bytes sent + received), most first: for live views.
    pub fn top_hosts(&self, n: usize) -> Vec<(IpAddr, u64)> {
        let mut hosts: Vec<(IpAddr, u64)> = self
            .talkers
            .host_slots
            .iter()
            .filter(|h| h.live)
            .map(|h| (h.ip, h.bytes))
            .collect();
        let n = n.min(hosts.len());
        if n == 0 {
            return Vec::new();
        }
        hosts.select_nth_unstable_by(n - 1, |a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        hosts.truncate(n);
        hosts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        hosts
    }

    /// Per-second protocol counts completed since the last call (with `per_second`); the last
    /// second comes from [`Analyzer::finish_with_seconds`].
    pub fn take_seconds(&mut self) -> Vec<(i64, [Count; 8])> {
        std::mem::take(&mut self.seconds)
    }

    /// Ends the capture: the partial interval, every flow still open, and the report.
    pub fn finish(
        self,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) -> Report {
        let (report, _) = self.finish_with_seconds(on_interval, on_flow);
        report
    }

    /// The end of the capture: the last second, the partial interval, every flow still open.
    fn wind_up(
        &mut self,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) -> Vec<(i64, [Count; 8])> {
        if let Some(last) = self.second.take() {
            self.seconds.push(last);
        }
        let seconds = std::mem::take(&mut self.seconds);
        // (A shard may hold only a tunnel's outer flows of it: new flows, no packets.)
        if self.interval.total.packets > 0 || self.interval.new_flows > 0 {
            let len = self.report.last_ns.saturating_sub(self.interval.start_ns);
            self.interval.length = Duration::from_nanos(len.max(1));
            self.take_interval_uniques();
            on_interval(&self.interval);
        }
        let flows = std::mem::replace(&mut self.flows, FlowTable::new(&self.hasher));
        let mut rest = flows.into_records();
        rest.sort_by_key(|r| r.first_ns);
        for r in rest {
            self.finish_flow(r, on_flow);
        }
        seconds
    }

    /// A shard's end: its report and the tables the merge needs whole (hosts and ports are
    /// summed across shards, distinct sets united).
    pub(crate) fn finish_shard(
        mut self,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) -> ShardEnd {
        let seconds = self.wind_up(on_interval, on_flow);
        let mut report = std::mem::take(&mut self.report);
        report.top_flows = std::mem::take(&mut self.top_flows);
        let hosts = self
            .talkers
            .host_slots
            .iter()
            .filter(|h| h.live)
            .map(|h| (h.ip, h.bytes))
            .collect();
        ShardEnd {
            report,
            interval_sets: self.take_interval_sets(),
            seconds,
            ips: std::mem::take(&mut self.talkers.unique),
            macs: std::mem::take(&mut self.macs),
            conversations: std::mem::take(&mut self.conversations),
            hosts,
            ports: std::mem::take(&mut self.talkers.port_slots),
        }
    }

    /// [`Analyzer::finish`], also returning the per-second counts not yet taken.
    pub fn finish_with_seconds(
        mut self,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) -> (Report, Vec<(i64, [Count; 8])>) {
        let seconds = self.wind_up(on_interval, on_flow);
        let mut report = std::mem::take(&mut self.report);
        report.top_hosts = self.top_hosts(self.top_n);
        let talkers = self.talkers;
        report.unique_ips = talkers.unique.len();
        report.unique_macs = self.macs.len();
        report.unique_exact = talkers.unique.is_exact() && self.macs.is_exact();
        report.tcp_conversations = self.conversations[0].len();
        report.udp_conversations = self.conversations[1].len();
        report.conversations_exact =
            self.conversations[0].is_exact() && self.conversations[1].is_exact();
        let mut ports = talkers.port_slots;
        ports.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        ports.truncate(self.top_n);
        report.top_ports = ports;
        let mut flows = self.top_flows;
        flows.sort_by(|a, b| FlowRecord::busier(b, a));
        report.top_flows = flows;
        (report, seconds)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_service_port_is_counted_not_the_clients_ephemeral_one() {
        assert_eq!(service_port(51234, 443), 443);
        assert_eq!(
            service_port(443, 51234),
            443,
            "mid-stream: the server spoke first"
        );
        assert_eq!(service_port(40000, 8080), 8080);
        assert_eq!(service_port(8080, 40000), 8080);
        assert_eq!(
            service_port(5000, 6000),
            6000,
            "no telling: the first destination"
        );
    }

    #[test]
    fn packet_log_lines_carry_macs_and_arp_says_who_has_and_is_at() {
        let mut frame = vec![0xff; 6];
        frame.extend([2, 0, 0, 0, 0, 1, 8, 6, 0, 1, 8, 0, 6, 4, 0, 1]);
        frame.extend([2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
        frame.extend([0; 6]);
        frame.extend([10, 0, 0, 2]);
        let p = PacketSummary::of(0, 42, crate::decode::linktype::ETHERNET, &frame);
        assert_eq!(
            p.line_with_macs().to_string(),
            "02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ARP who-has 10.0.0.2 tell 10.0.0.1 (02:00:00:00:00:01) 42"
        );
        // The reply.
        let mut reply = vec![
            2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 6, 0, 1, 8, 0, 6, 4, 0, 2,
        ];
        reply.extend([2, 0, 0, 0, 0, 2, 10, 0, 0, 2, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
        let p = PacketSummary::of(0, 42, crate::decode::linktype::ETHERNET, &reply);
        assert_eq!(
            p.line().to_string(),
            "ARP 10.0.0.2 is-at 02:00:00:00:00:02 (to 10.0.0.1 02:00:00:00:00:01) 42"
        );
    }

    use super::*;
    use std::net::Ipv4Addr;

    fn tcp_frame(flags: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        f.extend([0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
        if sport < dport {
            f.extend([10, 0, 0, 1, 10, 0, 0, 2]);
        } else {
            f.extend([10, 0, 0, 2, 10, 0, 0, 1]);
        }
        f.extend(sport.to_be_bytes());
        f.extend(dport.to_be_bytes());
        // seq 1 and ack 2 both ways: each side's SYN (ISN 1) acknowledged, as in a handshake.
        f.extend([0, 0, 0, 1, 0, 0, 0, 2, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f
    }

    /// An Ethernet/IPv4/ICMP frame from `src` (MAC and IP from the same number) to 10.0.0.1.
    fn icmp_from(src: u32) -> Vec<u8> {
        let b = src.to_be_bytes();
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0xaa, b[0], b[1], b[2], b[3], 8, 0];
        f.extend([0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 1, 0, 0]);
        f.extend(b);
        f.extend([10, 0, 0, 1]);
        f.extend([8, 0, 0, 0, 0, 0, 0, 0]);
        f
    }

    #[test]
    fn a_flood_of_new_addresses_keeps_the_tables_bounded_and_the_busiest_host_on_top() {
        let cfg = AnalyzerConfig {
            max_talkers: 1000,
            ..AnalyzerConfig::default()
        };
        // A fixed seed: the estimates below are checked to 2.5 standard errors, which a
        // random key would miss about once in 80 runs.
        let mut a = Analyzer::with_hasher(cfg, 3, TableHasher::seeded(3));
        let (mut ni, mut nf) = (|_: &Interval| {}, |_: &FlowRecord| {});
        let heavy = u32::from(Ipv4Addr::new(192, 0, 2, 7));
        // 300 000 one-packet sources (as random-source traffic makes), a heavy one among them.
        for i in 0..300_000u32 {
            let src = 0x0a00_0000 | (i.wrapping_mul(2_654_435_761) >> 8);
            a.packet(
                u64::from(i) * 1000,
                1000,
                1,
                &icmp_from(src),
                &mut ni,
                &mut nf,
            );
            if i % 100 == 0 {
                a.packet(
                    u64::from(i) * 1000 + 1,
                    1500,
                    1,
                    &icmp_from(heavy),
                    &mut ni,
                    &mut nf,
                );
            }
        }
        assert!(a.talkers.host_slots.len() <= 1000 && a.talkers.hosts.len() <= 1000);
        let r = a.finish(&mut ni, &mut nf);
        assert!(!r.unique_exact);
        // Each source once (and 10.0.0.1, the destination, and the heavy one).
        let ips = r.unique_ips as f64;
        assert!((ips / 300_002.0 - 1.0).abs() < 0.02, "{ips}");
        let macs = r.unique_macs as f64;
        assert!((macs / 300_003.0 - 1.0).abs() < 0.02, "{macs}");
        assert_eq!(r.top_hosts[0].0, IpAddr::from(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(
            r.top_hosts[1],
            (IpAddr::from(Ipv4Addr::from(heavy)), 3000 * 1500)
        );
    }

    #[test]
    fn handshake_halves_and_flow_counts() {
        let mut a = Analyzer::new(AnalyzerConfig::default(), 5);
        let (mut ni, mut nf) = (|_: &Interval| {}, |_: &FlowRecord| {});
        a.packet(
            1_000_000,
            54,
            1,
            &tcp_frame(0x02, 40000, 443),
            &mut ni,
            &mut nf,
        );
        a.packet(
            1_300_000,
            54,
            1,
            &tcp_frame(0x12, 443, 40000),
            &mut ni,
            &mut nf,
        );
        a.packet(
            1_350_000,
            54,
            1,
            &tcp_frame(0x10, 40000, 443),
            &mut ni,
            &mut nf,
        );
        let mut flows = Vec::new();
        let r = a.finish(&mut ni, &mut |f: &FlowRecord| flows.push(f.clone()));
        assert_eq!((r.tcp_flows, r.total.packets), (1, 3));
        assert_eq!(flows[0].syn_to_synack_ns, Some(300_000));
        assert_eq!(flows[0].synack_to_ack_ns, Some(50_000));
        assert_eq!(flows[0].initial_rtt_ns(), Some(350_000));
        assert_eq!(r.latency.tcp_handshake.count(), 1);
        assert_eq!(r.protocols[Protocol::Tcp as usize].bytes, 162);
    }

    #[test]
    fn closed_flows_expire_after_the_linger_and_idle_ones_after_the_timeout() {
        let cfg = AnalyzerConfig {
            idle_timeout: Duration::from_secs(20),
            close_linger: Duration::from_secs(2),
            ..AnalyzerConfig::default()
        };
        let mut a = Analyzer::new(cfg, 5);
        let mut expired: Vec<(u16, u64)> = Vec::new();
        let s = 1_000_000_000u64;
        let mut feed = |a: &mut Analyzer, at: u64, flags: u8, sport: u16, dport: u16| {
            a.packet(
                at,
                54,
                1,
                &tcp_frame(flags, sport, dport),
                &mut |_| {},
                &mut |f: &FlowRecord| expired.push((f.key.a.1.max(f.key.b.1), at)),
            );
        };
        // Flow 1000: FIN both ways at 1 s. Flow 2000: FIN both ways at 1 s, then a late ACK at
        // 2.5 s. Flow 3000: idle after 1 s.
        for port in [1000, 2000, 3000] {
            feed(&mut a, s, 0x10, port, 80);
        }
        for port in [1000, 2000] {
            feed(&mut a, s, 0x11, port, 80);
            feed(&mut a, s, 0x11, 80, port);
        }
        feed(&mut a, s * 5 / 2, 0x10, 2000, 80);
        // A packet of another flow each second drives the clock.
        for t in 2..=40 {
            feed(&mut a, t * s + 1, 0x10, 9, 10);
        }
        let when = |port: u16| expired.iter().find(|e| e.0 == port).map(|e| e.1 / s);
        // Sweeps run at most once a second, so up to a second late.
        assert!(matches!(when(1000), Some(3..=4)), "{expired:?}");
        // Its late packet at 2.5 s starts the linger again: not before 4.5 s.
        assert!(matches!(when(2000), Some(5)), "{expired:?}");
        // Idle for 20 s from 1 s, found by a scan every 2 s.
        let idle = when(3000).expect("idle flow expired");
        assert!((21..=23).contains(&idle), "{expired:?}");
        assert_eq!(when(9), None);
    }

    #[test]
    fn timestamps_at_the_end_of_time_do_not_wrap() {
        // Found by the capture fuzz target: a timestamp near u64::MAX wrapped the interval start
        // around and the interval loop never ended.
        let mut a = Analyzer::new(AnalyzerConfig::default(), 5);
        let frame = tcp_frame(0x10, 1, 2);
        let mut intervals = 0u32;
        let mut ni = |_: &Interval| intervals += 1;
        a.packet(u64::MAX - 5, 54, 1, &frame, &mut ni, &mut |_| {});
        a.packet(3, 54, 1, &frame, &mut ni, &mut |_| {});
        a.packet(u64::MAX, 54, 1, &frame, &mut ni, &mut |_| {});
        let r = a.finish(&mut ni, &mut |_| {});
        assert_eq!(r.total.packets, 3);
        assert!(intervals <= 2 * MAX_EMPTY_INTERVALS + 2, "{intervals}");
    }

    #[test]
    fn a_timestamp_far_ahead_skips_the_gap_instead_of_looping_through_it() {
        // Found by the capture fuzz target: a corrupt timestamp a century ahead once meant
        // hundreds of millions of empty 10 s intervals.
        let mut a = Analyzer::new(AnalyzerConfig::default(), 5);
        let mut intervals = 0u32;
        let mut ni = |_: &Interval| intervals += 1;
        let frame = tcp_frame(0x10, 1, 2);
        a.packet(0, 54, 1, &frame, &mut ni, &mut |_| {});
        a.packet(
            100 * 365 * 86_400 * 1_000_000_000,
            54,
            1,
            &frame,
            &mut ni,
            &mut |_| {},
        );
        let _ = a.finish(&mut ni, &mut |_| {});
        assert!(intervals <= MAX_EMPTY_INTERVALS + 2, "{intervals}");
    }
}
