//! A capture analysed on more than one core: packets are split by a symmetric hash of their
//! flow (both directions of a conversation go to one shard), each shard is a whole [`Analyzer`]
//! on a thread of its own, and their intervals, seconds and reports are merged here.
//!
//! What makes the merge exact: every per-flow figure (flows, conversations, handshake, data and
//! DNS RTTs, top flows) lives in exactly one shard; sums (packets, bytes, protocols, tunnels,
//! malformed) add; distinct IPs and MACs are sets hashed with one shared hasher, so they unite
//! (per interval too); hosts and ports are summed across shards before the top lists are cut.
//! A tunnel's packet belongs to two flows (outer and inner): each of the two shards counts its
//! own flow of it, and only the inner one counts the packet. Every shard is told the capture's
//! clock (the latest time seen) with each packet and each batch, so all close the same
//! intervals at the same packets as one analyzer would, even a shard with no traffic of its own.

use crate::decode::{Network, Transport};
use crate::hashing::{Distinct, TableHasher};
use crate::stats::{
    Analyzer, AnalyzerConfig, Count, FlowRecord, Interval, IntervalSets, PacketSummary, Part,
    Report, ShardEnd,
};
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

/// Packets handed to the shards at a time (each shard gets its share of them, and the clock).
const BATCH: usize = 4096;
/// Batches queued per shard.
const DEPTH: usize = 4;
/// Most shards: past this, the merge's per-batch messages cost more than a shard saves.
pub const MAX_SHARDS: usize = 16;

type Seconds = Vec<(i64, [Count; 8])>;

enum ToShard {
    /// Intervals and sweeps start at the capture's first packet.
    Start(u64),
    /// Packets with the part to count and the capture's clock at each; then the clock at the
    /// batch's end.
    Batch(Vec<(PacketSummary, Part, u64)>, u64),
}

enum FromShard {
    Done {
        shard: usize,
        spare: Vec<(PacketSummary, Part, u64)>,
        intervals: Vec<(Interval, IntervalSets)>,
        flows: Vec<FlowRecord>,
        seconds: Seconds,
        clock: u64,
    },
    End {
        intervals: Vec<(Interval, IntervalSets)>,
        flows: Vec<FlowRecord>,
        end: Box<ShardEnd>,
    },
}

/// One interval as merged so far.
struct Merging {
    interval: Interval,
    ips: Distinct,
    macs: Distinct,
}

/// [`Analyzer`]'s work spread over shards; the same intervals, flows and report.
pub struct ShardedAnalyzer {
    inputs: Vec<SyncSender<ToShard>>,
    results: Receiver<FromShard>,
    threads: Vec<JoinHandle<()>>,
    batch: Vec<Vec<(PacketSummary, Part, u64)>>,
    spare: Vec<Vec<(PacketSummary, Part, u64)>>,
    in_batch: usize,
    first_ns: Option<u64>,
    clock_ns: u64,
    /// The clock each shard has reached: what ended before the least of them is complete.
    frontier: Vec<u64>,
    every_ns: Option<u64>,
    intervals: BTreeMap<u64, Merging>,
    seconds: BTreeMap<i64, [Count; 8]>,
    ready_seconds: Seconds,
    round_robin: usize,
    route: foldhash::fast::FixedState,
    top_n: usize,
}

impl ShardedAnalyzer {
    /// `shards` analyzers (2 to [`MAX_SHARDS`]) on threads of their own, configured as `cfg`
    /// (the flow table's bound is shared out among them).
    pub fn new(cfg: AnalyzerConfig, top_n: usize, shards: usize) -> std::io::Result<Self> {
        let shards = shards.clamp(2, MAX_SHARDS);
        let hasher = TableHasher::new(cfg.keyed_hash);
        let (done, results) = sync_channel(shards * DEPTH * 2);
        let mut inputs = Vec::with_capacity(shards);
        let mut threads = Vec::with_capacity(shards);
        for shard in 0..shards {
            let (tx, rx) = sync_channel::<ToShard>(DEPTH);
            let shard_cfg = AnalyzerConfig {
                max_flows: (cfg.max_flows / shards).max(1),
                ..cfg.clone()
            };
            let analyzer = Analyzer::with_hasher(shard_cfg, top_n, hasher.clone());
            let done = done.clone();
            let handle = std::thread::Builder::new()
                .name(format!("capture-shard-{shard}"))
                .spawn(move || run_shard(shard, analyzer, &rx, &done))?;
            inputs.push(tx);
            threads.push(handle);
        }
        Ok(ShardedAnalyzer {
            batch: (0..shards).map(|_| Vec::with_capacity(BATCH)).collect(),
            spare: Vec::new(),
            inputs,
            results,
            threads,
            in_batch: 0,
            first_ns: None,
            clock_ns: 0,
            frontier: vec![0; shards],
            every_ns: cfg.interval.map(|d| (d.as_nanos() as u64).max(1)),
            intervals: BTreeMap::new(),
            seconds: BTreeMap::new(),
            ready_seconds: Vec::new(),
            round_robin: 0,
            route: foldhash::fast::FixedState::with_seed(0x6e65_7470_756c_7365),
            top_n: top_n.max(1),
        })
    }

    /// The shard of a packet's flow (both directions alike), or of its address pair.
    fn shard_of(&mut self, net: &Network, t: &Transport) -> usize {
        let n = self.inputs.len() as u64;
        let h = match (*net, *t) {
            (Network::Ip { src, dst, .. }, Transport::Tcp { sport, dport, .. })
            | (Network::Ip { src, dst, .. }, Transport::Udp { sport, dport, .. }) => {
                let proto = u8::from(matches!(t, Transport::Udp { .. }));
                let (x, y) = ((src, sport), (dst, dport));
                self.route.hash_one((proto, x.min(y), x.max(y)))
            }
            (Network::Ip { src, dst, .. }, _) => self.route.hash_one((src.min(dst), src.max(dst))),
            _ => {
                self.round_robin = self.round_robin.wrapping_add(1);
                return self.round_robin % n as usize;
            }
        };
        (h % n) as usize
    }

    /// Counts one packet (see [`Analyzer::summary`]); merged intervals and ended flows are
    /// handed to the callbacks as the shards deliver them.
    pub fn summary(
        &mut self,
        p: &PacketSummary,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) {
        if self.first_ns.is_none() {
            self.first_ns = Some(p.ts_ns);
            self.clock_ns = p.ts_ns;
            self.frontier.fill(p.ts_ns);
            for input in &self.inputs {
                // A shard that is gone panicked: its results are missing, said at the end.
                let _ = input.send(ToShard::Start(p.ts_ns));
            }
        }
        self.clock_ns = self.clock_ns.max(p.ts_ns);
        let d = &p.decoded;
        let inner = self.shard_of(&d.network, &d.transport);
        match d.outer {
            Some((_, onet, otr @ (Transport::Tcp { .. } | Transport::Udp { .. }))) => {
                let outer = self.shard_of(&onet, &otr);
                if outer == inner {
                    self.batch[inner].push((*p, Part::All, self.clock_ns));
                } else {
                    self.batch[inner].push((*p, Part::AllButOuterFlow, self.clock_ns));
                    self.batch[outer].push((*p, Part::OuterFlow, self.clock_ns));
                }
            }
            _ => self.batch[inner].push((*p, Part::All, self.clock_ns)),
        }
        self.in_batch += 1;
        if self.in_batch >= BATCH {
            self.flush(on_interval, on_flow);
        }
    }

    /// Hands every shard its share of the batch and the clock (an empty share too: its
    /// intervals must close with everyone's).
    fn flush(
        &mut self,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) {
        self.in_batch = 0;
        for shard in 0..self.inputs.len() {
            let fresh = self.spare.pop().unwrap_or_default();
            let mut msg = ToShard::Batch(
                std::mem::replace(&mut self.batch[shard], fresh),
                self.clock_ns,
            );
            loop {
                match self.inputs[shard].try_send(msg) {
                    Ok(()) => break,
                    // Full: a batch done somewhere makes room (every batch answers).
                    Err(TrySendError::Full(m)) => {
                        msg = m;
                        match self.results.recv() {
                            Ok(r) => self.take(r, on_interval, on_flow),
                            Err(_) => break,
                        }
                    }
                    Err(TrySendError::Disconnected(_)) => break,
                }
            }
        }
        while let Ok(r) = self.results.try_recv() {
            self.take(r, on_interval, on_flow);
        }
        self.emit_complete(on_interval);
    }

    /// One shard's answer: its flows out, its intervals and seconds into the merge.
    fn take(
        &mut self,
        r: FromShard,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) {
        let (intervals, flows) = match r {
            FromShard::Done {
                shard,
                mut spare,
                intervals,
                flows,
                seconds,
                clock,
            } => {
                spare.clear();
                self.spare.push(spare);
                self.frontier[shard] = self.frontier[shard].max(clock);
                for (sec, counts) in seconds {
                    let merged = self.seconds.entry(sec).or_default();
                    for (m, c) in merged.iter_mut().zip(counts) {
                        m.packets += c.packets;
                        m.bytes += c.bytes;
                    }
                }
                (intervals, flows)
            }
            FromShard::End { .. } => return,
        };
        for f in &flows {
            on_flow(f);
        }
        self.merge_intervals(intervals);
        self.emit_complete(on_interval);
    }

    fn merge_intervals(&mut self, intervals: Vec<(Interval, IntervalSets)>) {
        for (i, sets) in intervals {
            match self.intervals.entry(i.start_ns) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(Merging {
                        interval: i,
                        ips: sets.ips,
                        macs: sets.macs,
                    });
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let m = o.get_mut();
                    let into = &mut m.interval;
                    into.length = into.length.max(i.length);
                    into.total.packets += i.total.packets;
                    into.total.bytes += i.total.bytes;
                    for (a, b) in into.protocols.iter_mut().zip(i.protocols) {
                        a.packets += b.packets;
                        a.bytes += b.bytes;
                    }
                    into.new_flows += i.new_flows;
                    m.ips.merge(&sets.ips);
                    m.macs.merge(&sets.macs);
                }
            }
        }
    }

    /// Emits the intervals every shard has closed, and makes the seconds every shard has
    /// left ready for [`ShardedAnalyzer::take_seconds`].
    fn emit_complete(&mut self, on_interval: &mut dyn FnMut(&Interval)) {
        let reached = self.frontier.iter().copied().min().unwrap_or(0);
        if let Some(every) = self.every_ns {
            while let Some(entry) = self.intervals.first_entry() {
                if entry.key().saturating_add(every) > reached {
                    break;
                }
                emit(entry.remove(), on_interval);
            }
        }
        let sec = (reached / 1_000_000_000) as i64;
        while let Some(entry) = self.seconds.first_entry() {
            if *entry.key() >= sec {
                break;
            }
            let (s, c) = entry.remove_entry();
            self.ready_seconds.push((s, c));
        }
    }

    /// Per-second counts complete in every shard since the last call (with `per_second`).
    pub fn take_seconds(&mut self) -> Seconds {
        std::mem::take(&mut self.ready_seconds)
    }

    /// Ends the capture: the shards' last intervals and flows, and the merged report with the
    /// seconds not yet taken.
    pub fn finish_with_seconds(
        mut self,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) -> Result<(Report, Seconds), ShardFailed> {
        if self.first_ns.is_some() {
            self.flush(on_interval, on_flow);
        }
        // Closed inputs: each shard winds up and answers with its end.
        self.inputs.clear();
        let mut ends = Vec::new();
        while let Ok(r) = self.results.recv() {
            match r {
                FromShard::End {
                    intervals,
                    flows,
                    end,
                } => {
                    for f in &flows {
                        on_flow(f);
                    }
                    self.merge_intervals(intervals);
                    ends.push(*end);
                }
                done => self.take(done, on_interval, on_flow),
            }
        }
        let shards = self.threads.len();
        for t in std::mem::take(&mut self.threads) {
            // A shard that panicked shows as missing below, not as a second panic here.
            let _ = t.join();
        }
        for (_, m) in std::mem::take(&mut self.intervals) {
            emit(m, on_interval);
        }
        let mut seconds = std::mem::take(&mut self.ready_seconds);
        let mut merged_seconds = std::mem::take(&mut self.seconds);
        for end in &ends {
            for &(sec, counts) in &end.seconds {
                let m = merged_seconds.entry(sec).or_default();
                for (a, b) in m.iter_mut().zip(counts) {
                    a.packets += b.packets;
                    a.bytes += b.bytes;
                }
            }
        }
        seconds.extend(merged_seconds);
        if ends.len() < shards {
            return Err(ShardFailed {
                failed: shards - ends.len(),
                shards,
            });
        }
        let mut report = merge_reports(ends, self.top_n);
        report.first_ns = self.first_ns.unwrap_or(0);
        Ok((report, seconds))
    }
}

/// A shard's thread ended without its report (a bug): the counts would be short, so there is
/// no report.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {shards} analysis threads failed; no report (rerun with --threads 1)")]
pub struct ShardFailed {
    failed: usize,
    shards: usize,
}

/// The shards' reports as one: sums, unions, and the top lists cut after summing.
fn merge_reports(ends: Vec<ShardEnd>, top_n: usize) -> Report {
    let mut r = Report::default();
    let mut ips = Distinct::default();
    let mut macs = Distinct::default();
    let mut conversations = [Distinct::default(), Distinct::default()];
    let mut hosts: HashMap<IpAddr, u64> = HashMap::new();
    let mut ports: HashMap<(u8, u16), u64> = HashMap::new();
    let add = |a: &mut Count, b: &Count| {
        a.packets += b.packets;
        a.bytes += b.bytes;
    };
    for end in ends {
        let s = end.report;
        add(&mut r.total, &s.total);
        for (a, b) in r.protocols.iter_mut().zip(&s.protocols) {
            add(a, b);
        }
        for (a, b) in r.tunnels.iter_mut().zip(&s.tunnels) {
            add(a, b);
        }
        r.last_ns = r.last_ns.max(s.last_ns);
        for (m, n) in s.malformed {
            *r.malformed.entry(m).or_default() += n;
        }
        r.tcp_flows += s.tcp_flows;
        r.udp_flows += s.udp_flows;
        r.syn_retransmits += s.syn_retransmits;
        r.latency.tcp_handshake.merge(&s.latency.tcp_handshake);
        r.latency.tcp_data.merge(&s.latency.tcp_data);
        r.latency.dns.merge(&s.latency.dns);
        r.top_flows.extend(s.top_flows);
        ips.merge(&end.ips);
        macs.merge(&end.macs);
        for (all, one) in conversations.iter_mut().zip(&end.conversations) {
            all.merge(one);
        }
        for (ip, bytes) in end.hosts {
            *hosts.entry(ip).or_default() += bytes;
        }
        for (proto, port, bytes) in end.ports {
            *ports.entry((proto, port)).or_default() += bytes;
        }
    }
    r.unique_ips = ips.len();
    r.unique_macs = macs.len();
    r.unique_exact = ips.is_exact() && macs.is_exact();
    r.tcp_conversations = conversations[0].len();
    r.udp_conversations = conversations[1].len();
    r.conversations_exact = conversations.iter().all(Distinct::is_exact);
    r.top_flows.sort_by(|a, b| FlowRecord::busier(b, a));
    r.top_flows.truncate(top_n);
    let mut hosts: Vec<(IpAddr, u64)> = hosts.into_iter().collect();
    hosts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    hosts.truncate(top_n);
    r.top_hosts = hosts;
    let mut ports: Vec<(u8, u16, u64)> = ports.into_iter().map(|((p, n), b)| (p, n, b)).collect();
    ports.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
    ports.truncate(top_n);
    r.top_ports = ports;
    r
}

fn emit(mut m: Merging, on_interval: &mut dyn FnMut(&Interval)) {
    m.interval.unique_ips = m.ips.len();
    m.interval.unique_macs = m.macs.len();
    on_interval(&m.interval);
}

fn run_shard(
    shard: usize,
    mut analyzer: Analyzer,
    input: &Receiver<ToShard>,
    out: &SyncSender<FromShard>,
) {
    let mut intervals: Vec<Interval> = Vec::new();
    let mut flows: Vec<FlowRecord> = Vec::new();
    let pair = |intervals: &mut Vec<Interval>, a: &mut Analyzer| {
        std::mem::take(intervals)
            .into_iter()
            .zip(a.take_interval_sets())
            .collect::<Vec<_>>()
    };
    while let Ok(msg) = input.recv() {
        match msg {
            ToShard::Start(origin) => analyzer.align(origin),
            ToShard::Batch(mut packets, clock) => {
                {
                    let mut on_interval = |i: &Interval| intervals.push(i.clone());
                    let mut on_flow = |f: &FlowRecord| flows.push(f.clone());
                    for (p, part, at) in &packets {
                        analyzer.summary_part(p, *part, *at, &mut on_interval, &mut on_flow);
                    }
                    analyzer.advance_to(clock, &mut on_interval, &mut on_flow);
                }
                packets.clear();
                let done = FromShard::Done {
                    shard,
                    spare: packets,
                    intervals: pair(&mut intervals, &mut analyzer),
                    flows: std::mem::take(&mut flows),
                    seconds: analyzer.take_seconds(),
                    clock,
                };
                if out.send(done).is_err() {
                    return;
                }
            }
        }
    }
    let end = {
        let mut on_interval = |i: &Interval| intervals.push(i.clone());
        let mut on_flow = |f: &FlowRecord| flows.push(f.clone());
        analyzer.finish_shard(&mut on_interval, &mut on_flow)
    };
    let mut end = Box::new(end);
    let _ = out.send(FromShard::End {
        intervals: std::mem::take(&mut intervals)
            .into_iter()
            .zip(std::mem::take(&mut end.interval_sets))
            .collect(),
        flows,
        end,
    });
}
