//! `/metrics`: what netpulse measures, in the Prometheus (OpenMetrics) exposition format.
//! The monitor updates these as results, interface readings and alerts arrive; a scrape only
//! encodes them.

use netpulse_core::iface::IfaceCounters;
use netpulse_core::record::ProbeResult;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

/// Labels of a probe target's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// The target's label.
    pub target: String,
    /// Probe kind.
    pub kind: String,
}

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

/// One target's series, looked up once (each is a shared handle): a result then costs a few
/// atomic increments instead of label allocations and map lookups.
#[derive(Debug, Clone)]
pub struct TargetMetrics {
    rtt: Histogram,
    sent: Counter,
    received: Counter,
    late_sends: Counter,
    outages: Counter,
    in_outage: Gauge,
    send_lateness: Histogram,
}

impl TargetMetrics {
    /// One probe result.
    pub fn probe(&self, r: &ProbeResult) {
        self.sent.inc();
        self.send_lateness.observe(r.send_delay.as_secs_f64());
        if r.late {
            self.late_sends.inc();
        }
        if r.outcome.is_reply() {
            self.received.inc();
            if let Some(rtt) = r.rtt {
                self.rtt.observe(rtt.as_secs_f64());
            }
        }
    }

    /// The target's outage began (`true`) or ended.
    pub fn outage(&self, began: bool) {
        if began {
            self.outages.inc();
        }
        self.in_outage.set(i64::from(began));
    }
}

/// Every metric netpulse exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rtt: Family<TargetLabels, Histogram, fn() -> Histogram>,
    sent: Family<TargetLabels, Counter>,
    received: Family<TargetLabels, Counter>,
    outages: Family<TargetLabels, Counter>,
    in_outage: Family<TargetLabels, Gauge>,
    late_sends: Family<TargetLabels, Counter>,
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
    resident: Gauge,
    cpu: Counter<f64, AtomicU64>,
    start_time: Gauge,
}

fn rtt_histogram() -> Histogram {
    // 50 µs … ~13 s, doubling: from a LAN ping to a stalled HTTP request.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
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
            rtt: Family::new_with_constructor(rtt_histogram as fn() -> Histogram),
            sent: Family::default(),
            received: Family::default(),
            outages: Family::default(),
            in_outage: Family::default(),
            late_sends: Family::default(),
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
            resident: Gauge::default(),
            cpu: Counter::default(),
            start_time: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register_with_unit(
            "probe_rtt",
            "Round-trip time of answered probes",
            Unit::Seconds,
            m.rtt.clone(),
        );
        registry.register(
            "probes_sent",
            "Probes resolved (answered, timed out or failed)",
            m.sent.clone(),
        );
        registry.register("probes_received", "Probes answered", m.received.clone());
        registry.register(
            "outages",
            "Outages that began (loss above the outage threshold)",
            m.outages.clone(),
        );
        registry.register(
            "target_in_outage",
            "1 while the target is in an outage",
            m.in_outage.clone(),
        );
        registry.register(
            "probe_late_sends",
            "Probes that left later than their schedule allows (half the interval, at most 1 ms)",
            m.late_sends.clone(),
        );
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

    /// The series of one target, created if new.
    pub fn target(&self, target: &str, kind: &str) -> TargetMetrics {
        let l = TargetLabels {
            target: target.to_string(),
            kind: kind.to_string(),
        };
        TargetMetrics {
            rtt: self.rtt.get_or_create(&l).clone(),
            sent: self.sent.get_or_create(&l).clone(),
            received: self.received.get_or_create(&l).clone(),
            late_sends: self.late_sends.get_or_create(&l).clone(),
            outages: self.outages.get_or_create(&l).clone(),
            in_outage: self.in_outage.get_or_create(&l).clone(),
            send_lateness: self.send_lateness.clone(),
        }
    }

    /// Removes every series of a target that is no longer probed.
    pub fn remove_target(&self, target: &str, kind: &str) {
        let l = TargetLabels {
            target: target.to_string(),
            kind: kind.to_string(),
        };
        self.rtt.remove(&l);
        self.sent.remove(&l);
        self.received.remove(&l);
        self.outages.remove(&l);
        self.in_outage.remove(&l);
        self.late_sends.remove(&l);
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

    /// Captured packets of one protocol.
    pub fn captured(&self, protocol: &str, packets: u64, bytes: u64) {
        let l = ProtocolLabels {
            protocol: protocol.to_string(),
        };
        self.capture_packets.get_or_create(&l).inc_by(packets);
        self.capture_bytes.get_or_create(&l).inc_by(bytes);
    }

    /// An alert event: firing (or reminder) sets its gauge, resolved clears it.
    pub fn alert(&self, rule: &str, subject: &str, severity: &str, firing: bool) {
        self.alerts_total.inc();
        self.alert_firing
            .get_or_create(&AlertLabels {
                rule: rule.to_string(),
                subject: subject.to_string(),
                severity: severity.to_string(),
            })
            .set(i64::from(firing));
    }

    /// The recording's health: totals of dropped results and failed writes.
    pub fn store(&self, dropped: u64, errors: u64) {
        raise_to(&self.store_dropped, dropped);
        raise_to(&self.store_errors, errors);
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

    /// The OpenMetrics exposition text (what Prometheus asks for when it scrapes).
    pub fn encode(&self) -> String {
        self.refresh_process();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The classic Prometheus text format (0.0.4), for clients that do not ask for OpenMetrics
    /// (curl, `promtool check metrics`): counters are described under their `_total` name, and
    /// there are no `# UNIT` or `# EOF` lines.
    pub fn encode_text(&self) -> String {
        to_text_004(&self.encode())
    }
}

/// Raises a counter to a total kept elsewhere (counters only go up).
fn raise_to(c: &Counter, total: u64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}

/// OpenMetrics text → Prometheus text 0.0.4.
fn to_text_004(open: &str) -> String {
    let counters: std::collections::HashSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let described = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        match described {
            Some(l) => out.push_str(l.trim_end()),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_by_their_samples() {
        let m = Metrics::new();
        m.alert("slow", "gw", "warning", true);
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
        m.alert("slow", "gw", "warning", true);
        m.store(1, 1);
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
