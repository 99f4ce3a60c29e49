//! `/metrics`: what netpulse measures, in the Prometheus (OpenMetrics) exposition format.
//! The monitor updates these as results, interface readings and alerts arrive; a scrape only
//! encodes them.

use netpulse_core::iface::IfaceCounters;
use netpulse_core::record::{Detail, HttpPhase, ProbeResult};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

/// Labels of an interface's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IfaceLabels {
    /// Interface name.
    pub interface: String,
}

/// Labels of an interface counter with a direction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IfaceDirLabels {
    /// Interface name.
    pub interface: String,
    /// `receive` or `transmit`.
    pub direction: String,
}

/// Labels of an alert.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    /// Rule name.
    pub rule: String,
    /// Target label or interface.
    pub subject: String,
    /// Severity.
    pub severity: String,
}

/// Labels of a pipeline stage where results can be dropped.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// `monitor` (engine → monitor) or `recorder` (monitor → recording).
    pub stage: String,
}

/// Labels of a captured protocol.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    /// Protocol name.
    pub protocol: String,
}

/// How many finite upper bounds the RTT histogram has: 50 µs … ~13 s, doubling, from a LAN ping
/// to a stalled HTTP request (then `+Inf`).
const RTT_BOUNDS: usize = 19;

/// The bucket bounds with `+Inf` last, computed once: every reply looks its bucket up here, and
/// every scrape labels the buckets with them.
fn rtt_bounds() -> &'static [f64] {
    static BOUNDS: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(|| {
        exponential_buckets(0.000_05, 2.0, RTT_BOUNDS as u16)
            .chain([f64::INFINITY])
            .collect()
    })
}

/// One target's counters, updated with atomics (no lock, no lookup per result).
#[derive(Debug, Default)]
struct TargetSeries {
    sent: AtomicU64,
    received: AtomicU64,
    late_sends: AtomicU64,
    outages: AtomicU64,
    in_outage: AtomicBool,
    rtt_sum_ns: AtomicU64,
    /// Replies per bucket (not cumulative), the last one `+Inf`.
    rtt_buckets: [AtomicU64; RTT_BOUNDS + 1],
    /// An HTTP(S) target's phases, statuses and certificate (other kinds: never made).
    http: std::sync::OnceLock<Box<HttpSeries>>,
}

/// An HTTP(S) target's own series.
#[derive(Debug, Default)]
struct HttpSeries {
    /// Per phase ([`HttpPhase::ALL`]'s order): the sum and the buckets, as `rtt_buckets`.
    phase_sum_ns: [AtomicU64; 5],
    phase_buckets: [[AtomicU64; RTT_BOUNDS + 1]; 5],
    /// Responses by status code (at most the 500 codes there are).
    statuses: Mutex<BTreeMap<u16, u64>>,
    /// The earliest notAfter of the chain last seen (Unix seconds; 0: none yet).
    cert_expiry: std::sync::atomic::AtomicI64,
}

/// The bucket of a duration in [`rtt_bounds`].
fn bucket_of(d: std::time::Duration) -> usize {
    let secs = d.as_secs_f64();
    // The last bound is +Inf, so a bucket is always found.
    rtt_bounds()
        .iter()
        .position(|&b| secs <= b)
        .unwrap_or(RTT_BOUNDS)
}

/// Every target's series in one table, encoded at scrape time. ~0.4 KB a target: six
/// prometheus-client families cost ~1.5 KB (the labels cloned into each family's map, an `Arc`
/// per series, a locked 20-bucket histogram), 15 MB of heap at 10 000 targets (heaptrack,
/// `bench/monitor_scale.sh`).
#[derive(Debug, Default)]
struct TargetTable {
    rows: Mutex<BTreeMap<TargetKey, Arc<TargetSeries>>>,
}

impl TargetTable {
    fn rows(&self) -> std::sync::MutexGuard<'_, BTreeMap<TargetKey, Arc<TargetSeries>>> {
        // A panic while holding the lock leaves only counters behind: still worth serving.
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A target's labels: its name (shared with the scrape's snapshot, not copied) and its kind's
/// static name.
type TargetKey = (Arc<str>, &'static str);

/// Picks one counter of a target's series.
type SeriesField = fn(&TargetSeries) -> &AtomicU64;

fn labels((target, kind): &TargetKey) -> [(&'static str, &str); 2] {
    [("target", target), ("kind", kind)]
}

impl Collector for TargetTable {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A snapshot, so the table's lock is not held while a (slow) scraper reads: adding
        // and removing targets (a reload) must never wait on a client.
        let rows: Vec<(TargetKey, Arc<TargetSeries>)> = self
            .rows()
            .iter()
            .map(|(k, s)| (k.clone(), Arc::clone(s)))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let mut buckets: Vec<(f64, u64)> = Vec::with_capacity(RTT_BOUNDS + 1);
        let mut e = encoder.encode_descriptor(
            "probe_rtt",
            "Round-trip time of answered probes",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (key, s) in rows.iter() {
            buckets.clear();
            buckets.extend(
                rtt_bounds()
                    .iter()
                    .zip(&s.rtt_buckets)
                    .map(|(&b, n)| (b, n.load(Relaxed))),
            );
            let count = buckets.iter().map(|(_, n)| n).sum();
            let sum = s.rtt_sum_ns.load(Relaxed) as f64 / 1e9;
            let l = labels(key);
            e.encode_family(&l)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        let counters: [(&str, &str, SeriesField); 4] = [
            (
                "probes_sent",
                "Probes resolved (answered, timed out or failed)",
                |s| &s.sent,
            ),
            ("probes_received", "Probes answered", |s| &s.received),
            (
                "outages",
                "Outages that began (loss above the outage threshold)",
                |s| &s.outages,
            ),
            (
                "probe_late_sends",
                "Probes that left later than their schedule allows (1 % of the interval, at least 1 ms)",
                |s| &s.late_sends,
            ),
        ];
        for (name, help, field) in counters {
            let mut e = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (key, s) in rows.iter() {
                let l = labels(key);
                e.encode_family(&l)?
                    .encode_counter::<NoLabelSet, _, u64>(&field(s).load(Relaxed), None)?;
            }
        }
        let mut e = encoder.encode_descriptor(
            "target_in_outage",
            "1 while the target is in an outage",
            None,
            MetricType::Gauge,
        )?;
        for (key, s) in rows.iter() {
            let l = labels(key);
            e.encode_family(&l)?
                .encode_gauge(&i64::from(s.in_outage.load(Relaxed)))?;
        }
        let http: Vec<(&TargetKey, &HttpSeries)> = rows
            .iter()
            .filter_map(|(k, s)| s.http.get().map(|h| (k, &**h)))
            .collect();
        if http.is_empty() {
            return Ok(());
        }
        let mut e = encoder.encode_descriptor(
            "http_phase",
            "Time of each phase of HTTP(S) probes: dns, connect, tls, first_byte, body",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (key, h) in &http {
            for (i, phase) in HttpPhase::ALL.iter().enumerate() {
                buckets.clear();
                buckets.extend(
                    rtt_bounds()
                        .iter()
                        .zip(&h.phase_buckets[i])
                        .map(|(&b, n)| (b, n.load(Relaxed))),
                );
                let count: u64 = buckets.iter().map(|(_, n)| n).sum();
                if count == 0 {
                    continue;
                }
                let sum = h.phase_sum_ns[i].load(Relaxed) as f64 / 1e9;
                let l = [
                    ("target", &*key.0),
                    ("kind", key.1),
                    ("phase", phase.name()),
                ];
                e.encode_family(&l)?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }
        let mut e = encoder.encode_descriptor(
            "http_responses",
            "HTTP(S) responses by status code",
            None,
            MetricType::Counter,
        )?;
        for (key, h) in &http {
            let statuses = h.statuses.lock().unwrap_or_else(|e| e.into_inner()).clone();
            for (code, n) in statuses {
                let code = code.to_string();
                let l = [("target", &*key.0), ("kind", key.1), ("status", &code)];
                e.encode_family(&l)?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        let mut e = encoder.encode_descriptor(
            "tls_cert_expiry_timestamp",
            "When the earliest certificate of an HTTPS target's chain expires (Unix time)",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for (key, h) in &http {
            let at = h.cert_expiry.load(Relaxed);
            if at != 0 {
                e.encode_family(&labels(key))?.encode_gauge(&at)?;
            }
        }
        Ok(())
    }
}

/// One target's series, looked up once: a result then costs a few atomic increments.
#[derive(Debug, Clone)]
pub struct TargetMetrics {
    series: Arc<TargetSeries>,
    send_lateness: Histogram,
}

impl TargetMetrics {
    /// One probe result.
    pub fn probe(&self, r: &ProbeResult) {
        let s = &self.series;
        s.sent.fetch_add(1, Relaxed);
        self.send_lateness.observe(r.send_delay.as_secs_f64());
        if r.late {
            s.late_sends.fetch_add(1, Relaxed);
        }
        if let Detail::Http(d) = &r.detail {
            let h = s.http.get_or_init(Box::default);
            for (i, took) in d.phases.iter().enumerate() {
                if let Some(t) = took {
                    h.phase_buckets[i][bucket_of(*t)].fetch_add(1, Relaxed);
                    h.phase_sum_ns[i].fetch_add(netpulse_core::saturating_nanos(*t), Relaxed);
                }
            }
            if d.status != 0 {
                *h.statuses
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(d.status)
                    .or_default() += 1;
            }
            if let Some(e) = d.cert_expiry {
                h.cert_expiry.store(e, Relaxed);
            }
        }
        if r.outcome.is_reply() {
            s.received.fetch_add(1, Relaxed);
            if let Some(rtt) = r.rtt {
                s.rtt_buckets[bucket_of(rtt)].fetch_add(1, Relaxed);
                s.rtt_sum_ns
                    .fetch_add(netpulse_core::saturating_nanos(rtt), Relaxed);
            }
        }
    }

    /// The target's outage began (`true`) or ended.
    pub fn outage(&self, began: bool) {
        if began {
            self.series.outages.fetch_add(1, Relaxed);
        }
        self.series.in_outage.store(began, Relaxed);
    }
}

/// Every metric netpulse exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    targets: Arc<TargetTable>,
    send_lateness: Histogram,
    dropped_results: Family<StageLabels, Counter>,
    iface_bytes: Family<IfaceDirLabels, Counter>,
    iface_packets: Family<IfaceDirLabels, Counter>,
    iface_errors: Family<IfaceDirLabels, Counter>,
    iface_drops: Family<IfaceDirLabels, Counter>,
    iface_rate: Family<IfaceDirLabels, Gauge<f64, AtomicU64>>,
    capture_packets: Family<ProtocolLabels, Counter>,
    capture_bytes: Family<ProtocolLabels, Counter>,
    alert_firing: Family<AlertLabels, Gauge>,
    alerts_total: Counter,
    store_dropped: Counter,
    store_errors: Counter,
    store_rows_lost: Counter,
    resident: Gauge,
    cpu: Counter<f64, AtomicU64>,
    start_time: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every netpulse metric, all empty.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("netpulse");
        let m = Metrics {
            targets: Arc::default(),
            send_lateness: Histogram::new(exponential_buckets(0.000_01, 2.0, 20)),
            dropped_results: Family::default(),
            iface_bytes: Family::default(),
            iface_packets: Family::default(),
            iface_errors: Family::default(),
            iface_drops: Family::default(),
            iface_rate: Family::default(),
            capture_packets: Family::default(),
            capture_bytes: Family::default(),
            alert_firing: Family::default(),
            alerts_total: Counter::default(),
            store_dropped: Counter::default(),
            store_errors: Counter::default(),
            store_rows_lost: Counter::default(),
            resident: Gauge::default(),
            cpu: Counter::default(),
            start_time: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register_collector(Box::new(Arc::clone(&m.targets)));
        registry.register_with_unit(
            "probe_send_lateness",
            "How long after its nominal time each probe left (all targets)",
            Unit::Seconds,
            m.send_lateness.clone(),
        );
        registry.register(
            "dropped_results",
            "Probe results dropped on the way through the monitor, by stage",
            m.dropped_results.clone(),
        );
        registry.register_with_unit(
            "interface",
            "Bytes counted by the interface since netpulse started",
            Unit::Bytes,
            m.iface_bytes.clone(),
        );
        registry.register(
            "interface_packets",
            "Packets counted by the interface",
            m.iface_packets.clone(),
        );
        registry.register(
            "interface_errors",
            "Interface errors",
            m.iface_errors.clone(),
        );
        registry.register(
            "interface_drops",
            "Packets the interface dropped",
            m.iface_drops.clone(),
        );
        registry.register_with_unit(
            "interface_rate",
            "Bytes per second over the latest reading",
            Unit::Other("bytes_per_second".into()),
            m.iface_rate.clone(),
        );
        registry.register(
            "capture_packets",
            "Packets captured, per protocol",
            m.capture_packets.clone(),
        );
        registry.register_with_unit(
            "capture",
            "Bytes captured, per protocol",
            Unit::Bytes,
            m.capture_bytes.clone(),
        );
        registry.register(
            "alert_firing",
            "1 while an alert fires",
            m.alert_firing.clone(),
        );
        registry.register(
            "alert_events",
            "Alert events (fired, reminder, resolved)",
            m.alerts_total.clone(),
        );
        registry.register(
            "store_dropped_results",
            "Results the recording could not keep up with",
            m.store_dropped.clone(),
        );
        registry.register(
            "store_errors",
            "Failed writes to the history database",
            m.store_errors.clone(),
        );
        registry.register(
            "store_rows_lost",
            "Rows lost because the history database could not be written for longer than memory kept them",
            m.store_rows_lost.clone(),
        );
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory of the netpulse process",
            Unit::Bytes,
            m.resident.clone(),
        );
        registry.register_with_unit(
            "process_cpu",
            "CPU time used by the netpulse process",
            Unit::Seconds,
            m.cpu.clone(),
        );
        registry.register_with_unit(
            "process_start_time",
            "Start time of the netpulse process since the Unix epoch",
            Unit::Seconds,
            m.start_time.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The series of one target, created if new (a second target with the same label and
    /// kind shares them, as it would a Prometheus series).
    pub fn target(&self, target: impl Into<Arc<str>>, kind: &'static str) -> TargetMetrics {
        let series = Arc::clone(
            self.targets
                .rows()
                .entry((target.into(), kind))
                .or_default(),
        );
        TargetMetrics {
            series,
            send_lateness: self.send_lateness.clone(),
        }
    }

    /// Removes every series of a target that is no longer probed.
    pub fn remove_target(&self, target: &str, kind: &'static str) {
        self.targets.rows().remove(&(Arc::from(target), kind));
    }

    /// Raises the drop counter of `stage` to `total` (totals are kept by the monitor).
    pub fn dropped(&self, stage: &str, total: u64) {
        raise_to(
            &self.dropped_results.get_or_create(&StageLabels {
                stage: stage.to_string(),
            }),
            total,
        );
    }

    /// An interface reading: counts since the previous one and the rates (bytes/s).
    pub fn iface(&self, name: &str, delta: &IfaceCounters, rx_rate: f64, tx_rate: f64) {
        for (dir, bytes, packets, errors, drops, rate) in [
            (
                "receive",
                delta.rx_bytes,
                delta.rx_packets,
                delta.rx_errors,
                delta.rx_dropped,
                rx_rate,
            ),
            (
                "transmit",
                delta.tx_bytes,
                delta.tx_packets,
                delta.tx_errors,
                delta.tx_dropped,
                tx_rate,
            ),
        ] {
            let l = IfaceDirLabels {
                interface: name.to_string(),
                direction: dir.to_string(),
            };
            self.iface_bytes.get_or_create(&l).inc_by(bytes);
            self.iface_packets.get_or_create(&l).inc_by(packets);
            self.iface_errors.get_or_create(&l).inc_by(errors);
            self.iface_drops.get_or_create(&l).inc_by(drops);
            self.iface_rate.get_or_create(&l).set(rate);
        }
    }

    /// Interface `name` vanished: its series go (a rate gauge left behind would show its
    /// last rate forever, and deleted interfaces would grow the scrape without bound).
    pub fn remove_iface(&self, name: &str) {
        for dir in ["receive", "transmit"] {
            let l = IfaceDirLabels {
                interface: name.to_string(),
                direction: dir.to_string(),
            };
            self.iface_bytes.remove(&l);
            self.iface_packets.remove(&l);
            self.iface_errors.remove(&l);
            self.iface_drops.remove(&l);
            self.iface_rate.remove(&l);
        }
    }

    /// Captured packets of one protocol.
    pub fn captured(&self, protocol: &str, packets: u64, bytes: u64) {
        let l = ProtocolLabels {
            protocol: protocol.to_string(),
        };
        self.capture_packets.get_or_create(&l).inc_by(packets);
        self.capture_bytes.get_or_create(&l).inc_by(bytes);
    }

    /// An alert event: firing (or reminder) sets its gauge, resolved clears it, and resolved
    /// because its subject is gone (a removed target, a vanished interface) deletes the series,
    /// so subjects that come and go never grow the scrape.
    pub fn alert(&self, rule: &str, subject: &str, severity: &str, firing: bool, gone: bool) {
        self.alerts_total.inc();
        let labels = AlertLabels {
            rule: rule.to_string(),
            subject: subject.to_string(),
            severity: severity.to_string(),
        };
        if gone && !firing {
            self.alert_firing.remove(&labels);
        } else {
            self.alert_firing
                .get_or_create(&labels)
                .set(i64::from(firing));
        }
    }

    /// The recording's health: totals of dropped results and failed writes.
    pub fn store(&self, dropped: u64, errors: u64, rows_lost: u64) {
        raise_to(&self.store_dropped, dropped);
        raise_to(&self.store_errors, errors);
        raise_to(&self.store_rows_lost, rows_lost);
    }

    /// The process's own figures (from `/proc/self`), refreshed before each scrape.
    pub fn refresh_process(&self) {
        if let Some(p) = crate::process::read() {
            self.resident.set(p.resident_bytes as i64);
            // A counter (CPU time only grows): raised to the kernel's figure.
            let now = self.cpu.get();
            if p.cpu_seconds > now {
                self.cpu.inc_by(p.cpu_seconds - now);
            }
            self.start_time.set(p.start_time_s as i64);
        }
    }

    /// The OpenMetrics exposition text (what Prometheus asks for when it scrapes), whole.
    pub fn encode(&self) -> String {
        self.encode_whole(true)
    }

    /// The classic Prometheus text format (0.0.4), for clients that do not ask for OpenMetrics
    /// (curl, `promtool check metrics`): counters are described under their `_total` name, and
    /// there are no `# UNIT` or `# EOF` lines. Whole; `/metrics` streams it instead.
    pub fn encode_text(&self) -> String {
        self.encode_whole(false)
    }

    /// [`Metrics::encode_chunked`]'s chunks joined.
    fn encode_whole(&self, open: bool) -> String {
        let mut out = String::new();
        self.encode_chunked(open, &mut |chunk| {
            out.push_str(&chunk);
            true
        });
        out
    }

    /// The scrape (OpenMetrics when `open`, else 0.0.4 text, converted line by line as it is
    /// encoded) in chunks of ~256 KB, each passed to `send` as it is ready; stops early when
    /// `send` returns false (client gone).
    pub fn encode_chunked(&self, open: bool, send: &mut dyn FnMut(String) -> bool) {
        let mut chunked = Chunked {
            buf: String::with_capacity(SCRAPE_CHUNK + 4096),
            send,
        };
        let done = if open {
            self.encode_into(&mut chunked)
        } else {
            let mut w = Text004 {
                out: &mut chunked,
                line: String::new(),
                held_help: None,
            };
            self.encode_into(&mut w)
        };
        if done.is_ok() {
            let _ = chunked.hand_on();
        }
    }

    fn encode_into(&self, w: &mut impl std::fmt::Write) -> std::fmt::Result {
        self.refresh_process();
        prometheus_client::encoding::text::encode(w, &self.registry)
    }
}

/// Raises a counter to a total kept elsewhere (counters only go up).
fn raise_to(c: &Counter, total: u64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}

/// Rewrites OpenMetrics text to Prometheus text 0.0.4 as it is written: `# UNIT` and `# EOF`
/// lines go, and a counter's `# HELP`/`# TYPE` lines name it `…_total` as its samples do (the
/// `# HELP` line is held until its `# TYPE` line tells whether it is a counter).
///
/// Hand-written because no crate does this work: prometheus-client, which encodes the registry,
/// writes OpenMetrics only; the `prometheus` crate's `TextEncoder` writes 0.0.4 only from its own
/// registry types (every family registered twice); a text-format parser crate would parse and
/// re-encode the whole scrape (21 MB at 10 000 targets) where this copies sample lines as they
/// are and looks only at the comment lines.
struct Text004<W: std::fmt::Write> {
    out: W,
    line: String,
    held_help: Option<String>,
}

impl<W: std::fmt::Write> Text004<W> {
    fn line_done(&mut self) -> std::fmt::Result {
        let line = std::mem::take(&mut self.line);
        if line.starts_with("# HELP ") {
            self.flush_help(false)?;
            self.held_help = Some(line);
            return Ok(());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let counter = rest.ends_with(" counter");
            self.flush_help(counter)?;
            match rest.split_once(' ').filter(|_| counter) {
                Some((name, kind)) => self.push(&format!("# TYPE {name}_total {kind}"))?,
                None => self.push(&line)?,
            }
        } else if !(line.starts_with("# UNIT ") || line == "# EOF") {
            self.flush_help(false)?;
            self.push(&line)?;
        }
        // Reuse the line buffer's allocation.
        self.line = line;
        self.line.clear();
        Ok(())
    }

    fn flush_help(&mut self, counter: bool) -> std::fmt::Result {
        let Some(help) = self.held_help.take() else {
            return Ok(());
        };
        let rest = &help["# HELP ".len()..];
        match rest.split_once(' ') {
            Some((name, text)) if counter => self.push(&format!("# HELP {name}_total {text}")),
            None if counter => self.push(&format!("# HELP {rest}_total")),
            _ => self.push(help.trim_end()),
        }
    }

    fn push(&mut self, line: &str) -> std::fmt::Result {
        self.out.write_str(line.trim_end())?;
        self.out.write_char('\n')
    }
}

impl<W: std::fmt::Write> std::fmt::Write for Text004<W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find('\n') {
            self.line.push_str(&rest[..i]);
            self.line_done()?;
            rest = &rest[i + 1..];
        }
        self.line.push_str(rest);
        Ok(())
    }
}

/// Bytes of a scrape handed to the client at a time: a scrape of 10 000 targets (~21 MB of
/// text) then holds a few of these, not the whole text. 64 KB, under the allocator's mmap
/// threshold: with 256 KB chunks a scrape left 2.4 MB more resident at 10 000 targets, with
/// these 1.4 MB (`/metrics` three times, RSS before and after).
const SCRAPE_CHUNK: usize = 64 * 1024;

/// A writer that hands its text on in chunks of about [`SCRAPE_CHUNK`]; fails (ending the
/// encoding) once `send` says the client is gone.
struct Chunked<'a> {
    buf: String,
    send: &'a mut dyn FnMut(String) -> bool,
}

impl Chunked<'_> {
    fn hand_on(&mut self) -> std::fmt::Result {
        let full = std::mem::replace(&mut self.buf, String::with_capacity(SCRAPE_CHUNK + 4096));
        if full.is_empty() || (self.send)(full) {
            Ok(())
        } else {
            Err(std::fmt::Error)
        }
    }
}

impl std::fmt::Write for Chunked<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= SCRAPE_CHUNK {
            self.hand_on()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_by_their_samples() {
        let m = Metrics::new();
        m.alert("slow", "gw", "warning", true, false);
        let text = m.encode_text();
        assert!(
            text.contains("# TYPE netpulse_alert_events_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP netpulse_alert_events_total Alert events"),
            "{text}"
        );
        assert!(text.contains("netpulse_alert_events_total 1\n"), "{text}");
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(text.contains(
            "netpulse_alert_firing{rule=\"slow\",subject=\"gw\",severity=\"warning\"} 1"
        ));
        let open = m.encode();
        assert!(open.contains("# TYPE netpulse_alert_events counter") && open.ends_with("# EOF\n"));
        // Resolved: 0; resolved because the subject is gone: no series at all.
        m.alert("slow", "gw", "warning", false, false);
        assert!(m.encode_text().contains(
            "netpulse_alert_firing{rule=\"slow\",subject=\"gw\",severity=\"warning\"} 0"
        ));
        m.alert("slow", "gw", "warning", false, true);
        assert!(!m.encode_text().contains("subject=\"gw\""));
    }

    fn reply(ms: u64) -> ProbeResult {
        ProbeResult {
            target: 0,
            seq: 0,
            sent_at: std::time::SystemTime::now(),
            rtt: Some(std::time::Duration::from_millis(ms)),
            outcome: netpulse_core::record::Outcome::Ok,
            detail: netpulse_core::record::Detail::default(),
            send_delay: std::time::Duration::ZERO,
            late: ms > 100,
        }
    }

    #[test]
    fn target_series_encode_as_prometheus_families_and_go_when_removed() {
        let m = Metrics::new();
        let gw = m.target("gw", "icmp");
        gw.probe(&reply(3));
        gw.probe(&reply(3));
        gw.probe(&reply(200));
        gw.outage(true);
        m.target("dns", "dns").probe(&ProbeResult {
            outcome: netpulse_core::record::Outcome::Timeout,
            rtt: None,
            ..reply(1)
        });
        let text = m.encode_text();
        let gw_l = "{target=\"gw\",kind=\"icmp\"}";
        for line in [
            "# TYPE netpulse_probe_rtt_seconds histogram".to_string(),
            "netpulse_probe_rtt_seconds_count{target=\"gw\",kind=\"icmp\"} 3".into(),
            "netpulse_probe_rtt_seconds_sum{target=\"gw\",kind=\"icmp\"} 0.206".into(),
            // 3 ms falls in the 3.2 ms bucket, 200 ms in 204.8 ms; buckets are cumulative.
            "netpulse_probe_rtt_seconds_bucket{le=\"0.0016\",target=\"gw\",kind=\"icmp\"} 0".into(),
            "netpulse_probe_rtt_seconds_bucket{le=\"0.0032\",target=\"gw\",kind=\"icmp\"} 2".into(),
            "netpulse_probe_rtt_seconds_bucket{le=\"0.2048\",target=\"gw\",kind=\"icmp\"} 3".into(),
            "netpulse_probe_rtt_seconds_bucket{le=\"+Inf\",target=\"gw\",kind=\"icmp\"} 3".into(),
            "# TYPE netpulse_probes_sent_total counter".into(),
            format!("netpulse_probes_sent_total{gw_l} 3"),
            format!("netpulse_probes_received_total{gw_l} 3"),
            format!("netpulse_probe_late_sends_total{gw_l} 1"),
            format!("netpulse_outages_total{gw_l} 1"),
            format!("netpulse_target_in_outage{gw_l} 1"),
            "netpulse_probes_sent_total{target=\"dns\",kind=\"dns\"} 1".into(),
            "netpulse_probes_received_total{target=\"dns\",kind=\"dns\"} 0".into(),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        gw.outage(false);
        assert!(m
            .encode_text()
            .contains(&format!("netpulse_target_in_outage{gw_l} 0")));
        m.remove_target("gw", "icmp");
        m.remove_target("dns", "dns");
        let text = m.encode_text();
        assert!(
            !text.contains("target=") && !text.contains("netpulse_probes_sent"),
            "{text}"
        );
    }

    #[test]
    fn every_metric_the_deploy_files_use_is_exported() {
        use netpulse_core::record::{Detail, Outcome};
        let m = Metrics::new();
        // Families show once they have a series; a target's are created as the monitor does.
        let gw = m.target("gw", "icmp");
        gw.probe(&ProbeResult {
            target: 0,
            seq: 0,
            sent_at: std::time::SystemTime::now(),
            rtt: Some(std::time::Duration::from_millis(3)),
            outcome: Outcome::Ok,
            detail: Detail::default(),
            send_delay: std::time::Duration::ZERO,
            late: false,
        });
        gw.outage(true);
        m.iface("eth0", &IfaceCounters::default(), 1.0, 2.0);
        m.captured("tcp", 1, 60);
        m.alert("slow", "gw", "warning", true, false);
        m.store(1, 1, 1);
        let text = m.encode_text();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        for file in ["grafana-dashboard.json", "netpulse-rules.yml"] {
            let body = std::fs::read_to_string(root.join(file)).expect("deploy file");
            let mut used = 0;
            for (i, _) in body.match_indices("netpulse_") {
                let name: String = body[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name);
                assert!(
                    text.contains(&format!("# TYPE {family} ")),
                    "{file} uses {name}, which netpulse does not export"
                );
                used += 1;
            }
            assert!(used > 3, "{file} uses no netpulse metric");
        }
    }
}
