//! What a capture says: packets and bytes per protocol (in total and per interval), unique hosts,
//! flows (bidirectional 5-tuple) with TCP handshake and data→ACK round trips and DNS
//! query→response times, top talkers, malformed counts. Memory is bounded: closed and idle
//! flows expire; the host and port tables keep the busiest entries.

use crate::decode::{decode, Malformed, Network, Transport};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use netpulse_core::stats::RttStats;
use std::collections::BTreeMap;
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
    /// TCP: SYN → SYN/ACK (the server's side of the handshake), ns.
    pub syn_to_synack_ns: Option<u64>,
    /// TCP: SYN/ACK → ACK (the client's side), ns.
    pub synack_to_ack_ns: Option<u64>,
    /// TCP: FIN seen / RST seen.
    pub fin: bool,
    /// RST seen.
    pub rst: bool,
}

impl FlowRecord {
    /// SYN → ACK: the handshake round trip as Wireshark's `tcp.analysis.initial_rtt`.
    pub fn initial_rtt_ns(&self) -> Option<u64> {
        Some(self.syn_to_synack_ns? + self.synack_to_ack_ns?)
    }
}

#[derive(Debug, Clone)]
struct Flow {
    rec: FlowRecord,
    /// Which side sent the SYN (true: a).
    client_is_a: Option<bool>,
    syn_ns: Option<u64>,
    synack_ns: Option<u64>,
    fin_dirs: u8,
    /// Per direction: (seq end, time) of the oldest unacknowledged data segment.
    unacked: [Option<(u32, u64)>; 2],
    /// DNS queries waiting: (id, time).
    dns: Vec<(u16, u64)>,
    closed: bool,
    /// Not yet counted as a new flow.
    new: bool,
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
    /// Most hosts/ports tracked for top talkers.
    pub max_talkers: usize,
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
            max_talkers: 1_000_000,
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
    /// TCP conversations.
    pub tcp_flows: u64,
    /// UDP conversations.
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
}

/// Feeds on packets, produces intervals, flows and a report.
pub struct Analyzer {
    cfg: AnalyzerConfig,
    report: Report,
    /// Beyond `max_talkers` hosts: addresses still counted as unique, without bytes.
    more_ips: HashSet<IpAddr>,
    /// MAC → the interval it was last seen in.
    macs: HashMap<[u8; 6], u64>,
    interval: Interval,
    interval_no: u64,
    flows: HashMap<FlowKey, Flow>,
    /// Host → (bytes, the interval it was last seen in): one lookup per address per packet.
    hosts: HashMap<IpAddr, (u64, u64)>,
    ports: HashMap<(u8, u16), u64>,
    top_flows: Vec<FlowRecord>,
    top_n: usize,
    last_sweep_ns: u64,
    /// The current second (unix s) and its counts, when `per_second`.
    second: Option<(i64, [Count; 8])>,
    seconds: Vec<(i64, [Count; 8])>,
}

fn seq_ge(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) as i32 >= 0
}

impl Analyzer {
    /// An analyzer keeping `top_n` entries in each top list.
    pub fn new(cfg: AnalyzerConfig, top_n: usize) -> Self {
        Self {
            cfg,
            report: Report::default(),
            more_ips: HashSet::new(),
            macs: HashMap::new(),
            interval: Interval::default(),
            interval_no: 1,
            flows: HashMap::new(),
            hosts: HashMap::new(),
            ports: HashMap::new(),
            top_flows: Vec::new(),
            top_n: top_n.max(1),
            last_sweep_ns: 0,
            second: None,
            seconds: Vec::new(),
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
        if self.report.total.packets == 0 {
            self.report.first_ns = ts_ns;
            self.interval.start_ns = ts_ns;
            self.last_sweep_ns = ts_ns;
        }
        if let Some(every) = self.cfg.interval {
            let every = (every.as_nanos() as u64).max(1);
            let mut emitted = 0;
            // `checked_add`: a timestamp near the end of time must not wrap the interval around.
            while self
                .interval
                .start_ns
                .checked_add(every)
                .is_some_and(|end| ts_ns >= end)
            {
                self.close_interval(every, on_interval);
                emitted += 1;
                if emitted >= MAX_EMPTY_INTERVALS {
                    // A gap (or a corrupt timestamp) far ahead: skip to it, not through it.
                    let skip = (ts_ns - self.interval.start_ns) / every;
                    self.interval.start_ns = self
                        .interval
                        .start_ns
                        .saturating_add(skip.saturating_mul(every));
                }
            }
        }
        self.report.last_ns = self.report.last_ns.max(ts_ns);
        self.report.total.add(len);
        self.interval.total.add(len);
        let d = decode(linktype, data);
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
        let mut count = |p: Protocol| {
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
        for m in [d.src_mac, d.dst_mac].into_iter().flatten() {
            // Broadcast and multicast destinations are not hosts.
            if m[0] & 1 == 0 {
                let seen = self.macs.entry(m).or_insert(0);
                if *seen != now {
                    *seen = now;
                    self.interval.unique_macs += 1;
                }
            }
        }
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
                if !later_fragment {
                    count(match proto {
                        6 => Protocol::Tcp,
                        17 => Protocol::Udp,
                        1 | 58 => Protocol::Icmp,
                        _ => Protocol::Other,
                    });
                }
                for ip in [src, dst] {
                    let full = self.hosts.len() >= self.cfg.max_talkers;
                    match self.hosts.get_mut(&ip) {
                        Some((bytes, seen)) => {
                            *bytes += u64::from(len);
                            if *seen != now {
                                *seen = now;
                                self.interval.unique_ips += 1;
                            }
                        }
                        None if !full => {
                            self.hosts.insert(ip, (u64::from(len), now));
                            self.interval.unique_ips += 1;
                        }
                        None => {
                            self.more_ips.insert(ip);
                        }
                    }
                }
                self.flow(ts_ns, len, src, dst, &d.transport, data, on_flow);
            }
            (_, 0x0806) => count(Protocol::Arp),
            (_, 0x0800) => count(Protocol::Ipv4),
            (_, 0x86dd) => count(Protocol::Ipv6),
            _ if d.malformed.is_none() => count(Protocol::Other),
            _ => {}
        }
        if ts_ns >= self.last_sweep_ns.saturating_add(1_000_000_000) {
            self.last_sweep_ns = ts_ns;
            self.sweep(ts_ns, on_flow);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn flow(
        &mut self,
        ts: u64,
        len: u32,
        src: IpAddr,
        dst: IpAddr,
        t: &Transport,
        data: &[u8],
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) {
        let (proto, sport, dport) = match *t {
            Transport::Tcp { sport, dport, .. } => (6u8, sport, dport),
            Transport::Udp { sport, dport, .. } => (17u8, sport, dport),
            _ => return,
        };
        for (p, port) in [(proto, sport), (proto, dport)] {
            if self.ports.len() < self.cfg.max_talkers || self.ports.contains_key(&(p, port)) {
                *self.ports.entry((p, port)).or_default() += u64::from(len);
            }
        }
        let (s, dd) = ((src, sport), (dst, dport));
        let from_a = s <= dd;
        let key = FlowKey {
            proto,
            a: if from_a { s } else { dd },
            b: if from_a { dd } else { s },
        };
        if self.flows.len() >= self.cfg.max_flows && !self.flows.contains_key(&key) {
            self.sweep_oldest(on_flow);
        }
        let f = self.flows.entry(key).or_insert_with(|| Flow {
            rec: FlowRecord {
                key,
                first_ns: ts,
                last_ns: ts,
                a_to_b: Count::default(),
                b_to_a: Count::default(),
                syn_to_synack_ns: None,
                synack_to_ack_ns: None,
                fin: false,
                rst: false,
            },
            client_is_a: None,
            syn_ns: None,
            synack_ns: None,
            fin_dirs: 0,
            unacked: [None, None],
            dns: Vec::new(),
            closed: false,
            new: true,
        });
        if f.new {
            f.new = false;
            self.interval.new_flows += 1;
            if proto == 6 {
                self.report.tcp_flows += 1;
            } else {
                self.report.udp_flows += 1;
            }
        }

        f.rec.last_ns = ts;
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
                if syn && !ackf && f.syn_ns.is_none() {
                    f.syn_ns = Some(ts);
                    f.client_is_a = Some(from_a);
                } else if syn && ackf && f.client_is_a == Some(!from_a) && f.synack_ns.is_none() {
                    f.synack_ns = Some(ts);
                    f.rec.syn_to_synack_ns = f.syn_ns.map(|s| ts.saturating_sub(s));
                } else if !syn
                    && ackf
                    && f.client_is_a == Some(from_a)
                    && f.synack_ns.is_some()
                    && f.rec.synack_to_ack_ns.is_none()
                {
                    let half = f.synack_ns.map(|s| ts.saturating_sub(s));
                    f.rec.synack_to_ack_ns = half;
                    if let Some(rtt) = f.rec.initial_rtt_ns() {
                        self.report
                            .latency
                            .tcp_handshake
                            .record(Duration::from_nanos(rtt));
                    }
                }
                // Data → ACK: the oldest unacknowledged segment of each direction.
                if payload > 0 && f.unacked[dir].is_none() {
                    f.unacked[dir] = Some((seq.wrapping_add(payload), ts));
                }
                if ackf {
                    if let Some((end, sent)) = f.unacked[1 - dir] {
                        if seq_ge(ack, end) {
                            self.report
                                .latency
                                .tcp_data
                                .record(Duration::from_nanos(ts.saturating_sub(sent)));
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
                f.closed = f.rec.rst || f.fin_dirs == 3;
            }
            Transport::Udp {
                sport,
                dport,
                payload_at,
                payload,
            } => {
                let at = usize::from(payload_at);
                if (sport == 53 || dport == 53) && payload >= 12 && data.len() >= at + 12 {
                    let id = u16::from_be_bytes([data[at], data[at + 1]]);
                    let response = data[at + 2] & 0x80 != 0;
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
    }

    fn close_interval(&mut self, every: u64, on_interval: &mut dyn FnMut(&Interval)) {
        self.interval.length = Duration::from_nanos(every);
        on_interval(&self.interval);
        self.interval = Interval {
            start_ns: self.interval.start_ns.saturating_add(every),
            ..Interval::default()
        };
        self.interval_no += 1;
    }

    /// Expires closed flows past their linger and idle flows.
    fn sweep(&mut self, now: u64, on_flow: &mut dyn FnMut(&FlowRecord)) {
        let linger = self.cfg.close_linger.as_nanos() as u64;
        let idle = self.cfg.idle_timeout.as_nanos() as u64;
        let mut expired = Vec::new();
        self.flows.retain(|_, f| {
            let age = now.saturating_sub(f.rec.last_ns);
            let done = (f.closed && age >= linger) || age >= idle;
            if done {
                expired.push(f.rec.clone());
            }
            !done
        });
        for r in expired {
            self.finish_flow(r, on_flow);
        }
    }

    fn sweep_oldest(&mut self, on_flow: &mut dyn FnMut(&FlowRecord)) {
        // Expire the stalest tenth at once, so a flood of new flows costs one sort per many.
        let mut ages: Vec<(u64, FlowKey)> = self
            .flows
            .values()
            .map(|f| (f.rec.last_ns, f.rec.key))
            .collect();
        ages.sort_unstable();
        for (_, k) in ages.into_iter().take((self.cfg.max_flows / 10).max(1)) {
            if let Some(f) = self.flows.remove(&k) {
                self.finish_flow(f.rec, on_flow);
            }
        }
    }

    fn finish_flow(&mut self, r: FlowRecord, on_flow: &mut dyn FnMut(&FlowRecord)) {
        on_flow(&r);
        let bytes = |r: &FlowRecord| r.a_to_b.bytes + r.b_to_a.bytes;
        if self.top_flows.len() < self.top_n {
            self.top_flows.push(r);
        } else if let Some((i, min)) = self
            .top_flows
            .iter()
            .enumerate()
            .min_by_key(|(_, f)| bytes(f))
            .map(|(i, f)| (i, bytes(f)))
        {
            if bytes(&r) > min {
                self.top_flows[i] = r;
            }
        }
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

    /// [`Analyzer::finish`], also returning the per-second counts not yet taken.
    pub fn finish_with_seconds(
        mut self,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) -> (Report, Vec<(i64, [Count; 8])>) {
        if let Some(last) = self.second.take() {
            self.seconds.push(last);
        }
        let seconds = std::mem::take(&mut self.seconds);
        if self.interval.total.packets > 0 {
            let len = self.report.last_ns.saturating_sub(self.interval.start_ns);
            self.interval.length = Duration::from_nanos(len.max(1));
            on_interval(&self.interval);
        }
        let mut rest: Vec<FlowRecord> = self.flows.drain().map(|(_, f)| f.rec).collect();
        rest.sort_by_key(|r| r.first_ns);
        for r in rest {
            self.finish_flow(r, on_flow);
        }
        let mut report = std::mem::take(&mut self.report);
        report.unique_ips = self.hosts.len() + self.more_ips.len();
        report.unique_macs = self.macs.len();
        let mut hosts: Vec<(IpAddr, u64)> =
            self.hosts.into_iter().map(|(ip, (b, _))| (ip, b)).collect();
        hosts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        hosts.truncate(self.top_n);
        report.top_hosts = hosts;
        let mut ports: Vec<(u8, u16, u64)> = self
            .ports
            .into_iter()
            .map(|((p, n), b)| (p, n, b))
            .collect();
        ports.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        ports.truncate(self.top_n);
        report.top_ports = ports;
        let mut flows = self.top_flows;
        flows.sort_by(|a, b| {
            (b.a_to_b.bytes + b.b_to_a.bytes).cmp(&(a.a_to_b.bytes + a.b_to_a.bytes))
        });
        report.top_flows = flows;
        (report, seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        f.extend([0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f
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
