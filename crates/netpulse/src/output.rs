//! How results look: ping-like lines, ping's summary words, JSON Lines, the periodic table.

use netpulse_core::record::{dns_rcode_name, Detail, Outcome, ProbeResult};
use netpulse_core::target::TargetKind;
use netpulse_core::window::WindowReport;
use netpulse_probe::{late_threshold, ProbePlan, TargetReport};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Milliseconds as ping shows them: 3 decimals below 1 ms, 2 below 100 ms, then 1.
pub fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 100.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.1}")
    }
}

/// A percentage without trailing zeros: 0, 1, 9.75, 33.33.
pub fn fmt_percent(fraction: f64) -> String {
    let s = format!("{:.2}", fraction * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn ms_value(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn endpoint(plan: &ProbePlan) -> String {
    // An HTTP(S) target by name has no address of its own: each probe resolves it.
    if let (true, Some(h), Some(p)) = (plan.addr.is_unspecified(), &plan.http, plan.kind.port()) {
        return format!("{}:{p}", h.host);
    }
    match plan.kind.port() {
        Some(p) if plan.addr.is_ipv6() => format!("[{}]:{p}", plan.addr),
        Some(p) => format!("{}:{p}", plan.addr),
        None => plan.addr.to_string(),
    }
}

/// The header printed before probing starts, as ping's `PING host (addr) 56(84) bytes of data.`
pub fn header(plan: &ProbePlan, payload: usize, icmp_socket: Option<&str>) -> String {
    match &plan.kind {
        TargetKind::Icmp => {
            let ip_hdr = if plan.addr.is_ipv6() { 48 } else { 28 };
            format!(
                "PING {} ({}) {payload}({}) bytes of data ({} socket).",
                plan.label,
                plan.addr,
                payload + ip_hdr,
                icmp_socket.unwrap_or("icmp")
            )
        }
        TargetKind::Tcp { .. } => {
            format!("TCP {} ({}): connect probes.", plan.label, endpoint(plan))
        }
        TargetKind::Udp { .. } => format!(
            "UDP {} ({}): {payload} bytes of data.",
            plan.label,
            endpoint(plan)
        ),
        TargetKind::Dns { name, qtype, .. } => format!(
            "DNS {} ({}): {name} {qtype} queries.",
            plan.label,
            endpoint(plan)
        ),
        TargetKind::Http { tls, path, .. } => {
            let o = plan.http.as_deref().map(|h| &h.options);
            let method = match o.map(|o| o.method) {
                Some(netpulse_core::target::HttpMethod::Head) => "HEAD",
                _ => "GET",
            };
            format!(
                "{} {} ({}): {method} {path}, expecting {}; the name is resolved on each probe.",
                if *tls { "HTTPS" } else { "HTTP" },
                plan.label,
                endpoint(plan),
                o.map_or_else(|| "200-399".into(), |o| o.expect_status_text())
            )
        }
    }
}

/// An HTTP probe's phases, `dns=0.1 connect=40.2 tls=40.4 first_byte=40.3 body=0.1` (ms).
fn phases_text(d: &netpulse_core::record::HttpDetail) -> String {
    netpulse_core::record::HttpPhase::ALL
        .iter()
        .filter_map(|&p| d.phase(p).map(|t| format!("{}={}", p.name(), fmt_ms(t))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `HTTP/1.1`, `HTTP/2`.
fn http_version_text(v: u8) -> &'static str {
    match v {
        10 => "HTTP/1.0",
        11 => "HTTP/1.1",
        20 => "HTTP/2",
        _ => "HTTP/?",
    }
}

/// The JSON of an HTTP probe's detail.
fn http_json(d: &netpulse_core::record::HttpDetail) -> Value {
    let phases: serde_json::Map<String, Value> = netpulse_core::record::HttpPhase::ALL
        .iter()
        .filter_map(|&p| {
            d.phase(p)
                .map(|t| (p.name().to_string(), json!(ms_value(t))))
        })
        .collect();
    let expiry = d.cert_expiry.map(|e| {
        let now = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |n| n.as_secs() as i64);
        json!({
            "not_after": rfc3339_micros(std::time::UNIX_EPOCH + Duration::from_secs(e.max(0) as u64)),
            "days": ((e - now) as f64 / 86_400.0 * 100.0).round() / 100.0,
        })
    });
    json!({
        "phases_ms": phases,
        "status": (d.status != 0).then_some(d.status),
        "http_version": (d.version != 0).then(|| http_version_text(d.version)),
        "tls_version": match d.tls_version { 12 => Some("TLSv1.2"), 13 => Some("TLSv1.3"), _ => None },
        "certificate": expiry,
        "bytes": d.bytes,
        "redirects": d.redirects,
        "failure": d.failure.map(|f| f.name()),
    })
}

/// One live line for a resolved probe.
pub fn probe_line(plan: &ProbePlan, r: &ProbeResult) -> String {
    let time = r
        .rtt
        .map(|d| format!(" time={} ms", fmt_ms(d)))
        .unwrap_or_default();
    let seq = r.seq;
    if let (TargetKind::Http { .. }, Detail::Http(d)) = (&plan.kind, &r.detail) {
        let mut what = match (&r.outcome, d.failure) {
            (Outcome::Ok, _) => format!(
                "{} {}{}",
                d.status,
                http_version_text(d.version),
                match d.tls_version {
                    12 => " TLSv1.2",
                    13 => " TLSv1.3",
                    _ => "",
                }
            ),
            (Outcome::Error(m), Some(f)) => format!("{}: {m}", f.name()),
            (_, Some(f)) => f.name().to_string(),
            (o, None) => outcome_text(o),
        };
        if d.redirects > 0 {
            what += &format!(" redirects={}", d.redirects);
        }
        let phases = phases_text(d);
        let phases = if phases.is_empty() {
            String::new()
        } else {
            format!(" {phases}")
        };
        return format!(
            "{} {} seq={seq} {what}{phases}{time}",
            plan.kind.name(),
            endpoint(plan)
        );
    }
    match (&plan.kind, &r.outcome) {
        (TargetKind::Icmp, Outcome::Ok) => {
            let (bytes, ttl) = match r.detail {
                Detail::Icmp { bytes, ttl } => (bytes, ttl),
                _ => (0, None),
            };
            let ttl = ttl.map(|t| format!(" ttl={t}")).unwrap_or_default();
            format!(
                "{bytes} bytes from {}: icmp_seq={seq}{ttl}{time}",
                plan.addr
            )
        }
        (TargetKind::Icmp, Outcome::Timeout) => {
            format!(
                "{}: icmp_seq={seq} timeout ({} ms)",
                plan.addr,
                fmt_ms(plan.timeout)
            )
        }
        (TargetKind::Icmp, Outcome::Unreachable(e)) => {
            let from = e.from.unwrap_or(plan.addr);
            format!("From {from} icmp_seq={seq} {}", e.describe())
        }
        (TargetKind::Icmp, other) => {
            format!("{}: icmp_seq={seq} {}", plan.addr, outcome_text(other))
        }
        (kind, outcome) => {
            let what = match (kind, outcome) {
                (TargetKind::Tcp { .. }, Outcome::Ok) => "connected".to_string(),
                (TargetKind::Tcp { .. }, Outcome::Refused) => "refused (port closed)".to_string(),
                (TargetKind::Udp { .. }, Outcome::Ok) => match r.detail {
                    Detail::Udp { bytes } => format!("reply {bytes} bytes"),
                    _ => "reply".to_string(),
                },
                (TargetKind::Udp { .. }, Outcome::Refused) => {
                    "port unreachable (port closed)".to_string()
                }
                (TargetKind::Dns { .. }, Outcome::Ok) => match r.detail {
                    Detail::Dns { rcode, answers } => {
                        format!("{} answers={answers}", dns_rcode_name(rcode))
                    }
                    _ => "answered".to_string(),
                },
                (_, o) => outcome_text(o),
            };
            let query = match kind {
                TargetKind::Dns { name, qtype, .. } => format!(" {name} {qtype}"),
                _ => String::new(),
            };
            format!(
                "{} {}{query} seq={seq} {what}{time}",
                kind.name(),
                endpoint(plan)
            )
        }
    }
}

/// `probe -v`'s line: the live line with when the probe left against its schedule.
pub fn probe_line_verbose(plan: &ProbePlan, r: &ProbeResult) -> String {
    format!(
        "{} sent={} delay={} ms",
        probe_line(plan, r),
        humantime::format_rfc3339_micros(r.sent_at),
        fmt_ms(r.send_delay)
    )
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Ok => "ok".into(),
        Outcome::Timeout => "timeout".into(),
        Outcome::Refused => "refused".into(),
        Outcome::Unreachable(e) => e.to_string(),
        Outcome::Error(m) => format!("error: {m}"),
    }
}

/// The JSON detail of a probe: null for a plain reply, else a short text.
fn detail_value(r: &ProbeResult) -> Value {
    match (&r.outcome, &r.detail) {
        (Outcome::Ok, Detail::Dns { rcode, answers }) => {
            json!(format!("{} answers={answers}", dns_rcode_name(*rcode)))
        }
        (Outcome::Ok, _) | (Outcome::Timeout, _) => Value::Null,
        (Outcome::Refused, _) => json!("port closed"),
        (Outcome::Unreachable(e), _) => json!(e.to_string()),
        (Outcome::Error(m), _) => json!(m),
    }
}

/// RFC 3339 with microseconds, UTC.
pub fn rfc3339_micros(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// One JSON Lines object for a probe.
pub fn probe_json(plan: &ProbePlan, r: &ProbeResult) -> Value {
    let mut v = json!({
        "type": "probe",
        "target": plan.label,
        "kind": plan.kind.name(),
        "address": (!plan.addr.is_unspecified()).then(|| plan.addr.to_string()),
        "seq": r.seq,
        "sent_at": rfc3339_micros(r.sent_at),
        "outcome": r.outcome.name(),
        "rtt_ms": r.rtt.map(ms_value),
        "detail": detail_value(r),
    });
    if let Detail::Icmp { ttl: Some(ttl), .. } = r.detail {
        v["ttl"] = json!(ttl);
    }
    if let Detail::Http(d) = &r.detail {
        v["http"] = http_json(d);
    }
    v
}

/// ping's closing block for one target.
pub fn summary_text(plan: &ProbePlan, rep: &TargetReport) -> String {
    let s = &rep.stats;
    let mut out = format!("--- {} probe statistics ---\n", plan.label);
    let http = matches!(plan.kind, TargetKind::Http { .. });
    let mut line = if http {
        format!("{} requests, {} succeeded", s.sent, s.received)
    } else {
        format!("{} packets transmitted, {} received", s.sent, s.received)
    };
    if s.refused > 0 {
        line += &format!(" ({} refused: port closed)", s.refused);
    }
    if s.icmp_errors + s.local_errors > 0 && !http {
        line += &format!(", +{} errors", s.icmp_errors + s.local_errors);
    }
    line += &format!(
        ", {}% {}, time {}ms\n",
        fmt_percent(s.loss()),
        if http { "failed" } else { "packet loss" },
        rep.elapsed.as_millis()
    );
    out += &line;
    if let Some(r) = s.rtt.summary() {
        out += &format!(
            "rtt min/avg/max/mdev = {}/{}/{}/{} ms\n",
            ms3(r.min),
            ms3(r.avg),
            ms3(r.max),
            ms3(r.mdev)
        );
        let jitter = s
            .jitter
            .rfc3550()
            .map(|j| format!(", jitter {} ms", ms3(j)))
            .unwrap_or_default();
        out += &format!(
            "rtt median/p95/p99 = {}/{}/{} ms{jitter}\n",
            ms3(r.median),
            ms3(r.p95),
            ms3(r.p99)
        );
    }
    if let Some(h) = &rep.http {
        out += &http_summary_text(h);
    }
    if rep.late_sends > 0 {
        out += &format!(
            "late sends: {} of {} left more than {} ms after their time (max {} ms): netpulse's \
             own scheduling, not the network\n",
            rep.late_sends,
            s.sent,
            fmt_ms(late_threshold(plan.interval)),
            fmt_ms(rep.max_lateness)
        );
    }
    out
}

/// An HTTP target's closing lines: each phase's min/avg/median/p95/max, statuses, failures and
/// the certificate's expiry.
fn http_summary_text(h: &netpulse_probe::HttpReport) -> String {
    let mut out = String::new();
    for (phase, s) in netpulse_core::record::HttpPhase::ALL.iter().zip(&h.phases) {
        let (Some(min), Some(avg), Some(max)) = (s.min(), s.mean(), s.max()) else {
            continue;
        };
        let q = |v: f64| s.quantile(v).map_or_else(|| "-".into(), ms3);
        out += &format!(
            "{:<10} min/avg/median/p95/max = {}/{}/{}/{}/{} ms\n",
            phase.name(),
            ms3(min),
            ms3(avg),
            q(0.5),
            q(0.95),
            ms3(max)
        );
    }
    if !h.statuses.is_empty() {
        let list: Vec<String> = h
            .statuses
            .iter()
            .map(|(c, n)| format!("{c} × {n}"))
            .collect();
        out += &format!(
            "statuses: {} ({}{})\n",
            list.join(", "),
            http_version_text(h.versions.0),
            match h.versions.1 {
                12 => ", TLSv1.2",
                13 => ", TLSv1.3",
                _ => "",
            }
        );
    }
    if !h.failures.is_empty() {
        let list: Vec<String> = h
            .failures
            .iter()
            .map(|(f, n)| format!("{f} × {n}"))
            .collect();
        out += &format!("failures: {}\n", list.join(", "));
    }
    if let Some(e) = h.cert_expiry {
        let now = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |n| n.as_secs() as i64);
        out += &format!(
            "certificate: expires {} ({:.1} days)\n",
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + Duration::from_secs(e.max(0) as u64)
            ),
            (e - now) as f64 / 86_400.0
        );
    }
    out
}

/// Targets listed one by one in the monitor's closing summary; past this, the worst by loss.
const SUMMARY_TARGETS: usize = 40;

/// The monitor's closing summary (Ctrl-C): one line per target with what `probe`'s closing
/// block says (sent, received, loss, RTT min/avg/max/mdev, p95, jitter) and its outages, over
/// the run's `elapsed` time. Many targets: the `SUMMARY_TARGETS` with the most loss, and how
/// many more there were.
pub fn monitor_summary(live: &netpulse_core::live::LiveView, elapsed: Duration) -> String {
    let mut targets: Vec<&netpulse_core::live::TargetLive> =
        live.targets.iter().flatten().map(|t| &**t).collect();
    let total = targets.len();
    let mut out = format!(
        "--- netpulse monitor statistics: {total} target{}, {} s ---\n",
        if total == 1 { "" } else { "s" },
        elapsed.as_secs()
    );
    if total == 0 {
        return out;
    }
    if total > SUMMARY_TARGETS {
        // Worst first (stable: equal loss keeps the configured order).
        targets.sort_by(|a, b| b.total.loss().total_cmp(&a.total.loss()));
        targets.truncate(SUMMARY_TARGETS);
    }
    let width = targets
        .iter()
        .map(|t| t.label.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 40);
    out += &format!(
        "{:<width$}  {:>8} {:>8} {:>6}  {:>31}  {:>8} {:>8}  {}\n",
        "TARGET", "SENT", "RECV", "LOSS%", "RTT min/avg/max/mdev ms", "p95 ms", "jitter", "OUTAGES"
    );
    for t in &targets {
        let s = &t.total;
        let (rtt, p95) = match s.rtt.summary() {
            Some(r) => (
                format!(
                    "{}/{}/{}/{}",
                    ms3(r.min),
                    ms3(r.avg),
                    ms3(r.max),
                    ms3(r.mdev)
                ),
                ms3(r.p95),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        let jitter = s.jitter.rfc3550().map_or_else(|| "-".to_string(), ms3);
        let down_ms: i64 = t.outages.iter().map(|o| o.end_ms - o.start_ms).sum();
        let outages = match t.outages.len() {
            0 => "none".to_string(),
            n => format!(
                "{n} ({} s down{})",
                fmt_seconds(down_ms),
                if t.in_outage() { ", one going on" } else { "" }
            ),
        };
        let label: String = t.label.chars().take(width).collect();
        out += &format!(
            "{label:<width$}  {:>8} {:>8} {:>6}  {rtt:>31}  {p95:>8} {jitter:>8}  {outages}\n",
            s.sent,
            s.received,
            fmt_percent(s.loss()),
        );
    }
    if total > targets.len() {
        out += &format!(
            "… and {} more targets with less loss (all of them: `netpulse report`)\n",
            total - targets.len()
        );
    }
    out
}

/// Milliseconds to the µs, as ping writes RTTs.
fn ms3(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn fmt_seconds(ms: i64) -> String {
    let s = format!("{:.1}", ms.max(0) as f64 / 1000.0);
    s.trim_end_matches(".0").to_string()
}

/// The JSON summary object for one target.
pub fn summary_json(plan: &ProbePlan, rep: &TargetReport) -> Value {
    let s = &rep.stats;
    let rtt = s.rtt.summary().map(|r| {
        json!({
            "min": ms_value(r.min), "avg": ms_value(r.avg), "median": ms_value(r.median),
            "max": ms_value(r.max), "mdev": ms_value(r.mdev), "p95": ms_value(r.p95),
            "p99": ms_value(r.p99),
        })
    });
    let mut v = json!({
        "type": "summary",
        "target": plan.label,
        "kind": plan.kind.name(),
        "address": plan.addr.to_string(),
        "sent": s.sent,
        "received": s.received,
        "refused": s.refused,
        "errors": s.icmp_errors + s.local_errors,
        "loss": (s.loss() * 1e6).round() / 1e6,
        "rtt_ms": rtt,
        "jitter_ms": s.jitter.rfc3550().map(ms_value),
        "late_sends": rep.late_sends,
        "max_lateness_ms": ms_value(rep.max_lateness),
        "time_ms": rep.elapsed.as_millis() as u64,
    });
    if let Some(h) = &rep.http {
        let phases: serde_json::Map<String, Value> = netpulse_core::record::HttpPhase::ALL
            .iter()
            .zip(&h.phases)
            .filter(|(_, st)| st.count() > 0)
            .map(|(p, st)| {
                let q = |v: f64| st.quantile(v).map(ms_value);
                (
                    p.name().to_string(),
                    json!({"count": st.count(), "min": st.min().map(ms_value),
                           "avg": st.mean().map(ms_value), "median": q(0.5), "p95": q(0.95),
                           "max": st.max().map(ms_value)}),
                )
            })
            .collect();
        v["http"] = json!({
            "phases_ms": phases,
            "statuses": h.statuses.iter().map(|(c, n)| (c.to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "failures": h.failures,
            "cert_not_after": h.cert_expiry.map(|e| rfc3339_micros(std::time::UNIX_EPOCH + Duration::from_secs(e.max(0) as u64))),
        });
    }
    v
}

/// The periodic table (`--report-every`).
pub fn report_table(at: SystemTime, span: &str, rows: &[(&ProbePlan, WindowReport)]) -> String {
    let width = rows
        .iter()
        .map(|(p, _)| p.label.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!(
        "--- report {} (last {}) ---\n{:<width$}  {:>7} {:>7} {:>7} {:>10}  OUTAGE\n",
        humantime::format_rfc3339_seconds(at),
        span,
        "TARGET",
        "SENT",
        "RECV",
        "LOSS%",
        "AVG ms",
    );
    for (plan, w) in rows {
        let avg = w.avg_rtt.map(fmt_ms).unwrap_or_else(|| "-".into());
        out += &format!(
            "{:<width$}  {:>7} {:>7} {:>7} {:>10}  {}\n",
            plan.label,
            w.sent,
            w.received,
            fmt_percent(w.loss),
            avg,
            if w.outage { "YES" } else { "no" }
        );
    }
    out
}

/// The JSON object for one target's periodic report.
pub fn report_json(at: SystemTime, plan: &ProbePlan, w: &WindowReport) -> Value {
    json!({
        "type": "report",
        "at": rfc3339_micros(at),
        "target": plan.label,
        "kind": plan.kind.name(),
        "sent": w.sent,
        "received": w.received,
        "loss": (w.loss * 1e6).round() / 1e6,
        "avg_rtt_ms": w.avg_rtt.map(ms_value),
        "outage": w.outage,
    })
}

/// The host a plan probes, as written (its label without scheme and port).
fn host_of(plan: &ProbePlan) -> String {
    netpulse_core::target::parse_target(&plan.label)
        .map(|s| s.host)
        .unwrap_or_else(|_| plan.addr.to_string())
}

/// Hosts in the order first given, each with its plans (ping first, then ports in order).
fn by_host<'a>(
    plans: &'a [ProbePlan],
    reports: &'a [TargetReport],
) -> Vec<(String, Vec<(&'a ProbePlan, &'a TargetReport)>)> {
    let mut hosts: Vec<(String, Vec<(&ProbePlan, &TargetReport)>)> = Vec::new();
    for (plan, rep) in plans.iter().zip(reports) {
        let host = host_of(plan);
        match hosts.iter_mut().find(|(h, _)| *h == host) {
            Some((_, v)) => v.push((plan, rep)),
            None => hosts.push((host, vec![(plan, rep)])),
        }
    }
    hosts
}

/// What one check of a host came to: `open`/`closed`/`no answer` for a port, the share
/// answered for a ping.
fn check_result(plan: &ProbePlan, s: &netpulse_core::stats::ProbeStats) -> String {
    match plan.kind {
        TargetKind::Tcp { .. } => {
            let open = s.received - s.refused.min(s.received);
            match (open, s.refused) {
                (0, 0) => "no answer".into(),
                (0, _) => "closed".into(),
                (o, _) if o == s.sent => "open".into(),
                (o, _) => format!("open {o}/{}", s.sent),
            }
        }
        _ => format!("{}% answered", fmt_percent(1.0 - s.loss())),
    }
}

fn check_name(plan: &ProbePlan) -> String {
    match plan.kind {
        TargetKind::Icmp => "ping".into(),
        ref k => match k.port() {
            Some(p) => format!("{}/{p}", k.name()),
            None => k.name().into(),
        },
    }
}

/// Seed 003's "ping + ports": each host's ping and ports together, one row a check.
pub fn hosts_text(plans: &[ProbePlan], reports: &[TargetReport]) -> String {
    let hosts = by_host(plans, reports);
    let width = hosts
        .iter()
        .map(|(h, _)| h.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 40);
    let mut out = format!(
        "--- hosts: ping and ports ---\n{:<width$}  {:<9} {:>6} {:>6}  {:<14} {:>8}\n",
        "HOST", "CHECK", "SENT", "RECV", "RESULT", "AVG ms"
    );
    for (host, checks) in &hosts {
        for (i, (plan, rep)) in checks.iter().enumerate() {
            let s = &rep.stats;
            let avg = s.rtt.mean().map_or_else(|| "-".to_string(), fmt_ms);
            let shown = if i == 0 { host.as_str() } else { "" };
            out += &format!(
                "{shown:<width$}  {:<9} {:>6} {:>6}  {:<14} {:>8}\n",
                check_name(plan),
                s.sent,
                s.received,
                check_result(plan, s),
                avg
            );
        }
    }
    out
}

/// One check's statistics in `-o`'s file: counts, success rate, errors and RTTs.
fn check_json(plan: &ProbePlan, rep: &TargetReport) -> Value {
    let s = &rep.stats;
    let succeeded = match plan.kind {
        // A port check succeeds when the port is open, not when it is refused.
        TargetKind::Tcp { .. } => s.received - s.refused.min(s.received),
        _ => s.received,
    };
    let rtt = s.rtt.summary().map(|r| {
        json!({
            "min": ms_value(r.min), "max": ms_value(r.max), "avg": ms_value(r.avg),
            "median": ms_value(r.median), "p95": ms_value(r.p95), "mdev": ms_value(r.mdev),
        })
    });
    json!({
        "target": plan.label,
        "kind": plan.kind.name(),
        "host": host_of(plan),
        "address": plan.addr.to_string(),
        "port": plan.kind.port(),
        "sent": s.sent,
        "received": s.received,
        "refused": s.refused,
        "timeouts": s.timeouts,
        "errors": s.icmp_errors + s.local_errors,
        "success_rate": if s.sent == 0 { 0.0 } else { succeeded as f64 / s.sent as f64 },
        "result": check_result(plan, s),
        "rtt_ms": rtt,
        "jitter_ms": s.jitter.rfc3550().map(ms_value),
    })
}

/// `probe -o`'s document without its results: the configuration, the totals, each target,
/// each host with its ping and ports, and results the output could not keep.
pub fn session_head(
    args: &crate::cli::ProbeArgs,
    started: SystemTime,
    ended: SystemTime,
    plans: &[ProbePlan],
    reports: &[TargetReport],
    results_dropped: u64,
) -> serde_json::Map<String, Value> {
    let (sent, received) = reports
        .iter()
        .fold((0, 0), |(s, r), t| (s + t.stats.sent, r + t.stats.received));
    let errors: u64 = reports
        .iter()
        .map(|t| t.stats.icmp_errors + t.stats.local_errors)
        .sum();
    let first = plans.first();
    let mut head = serde_json::Map::new();
    head.insert(
        "session".into(),
        json!({
            "started_at": rfc3339_micros(started),
            "ended_at": rfc3339_micros(ended),
            "duration_s": ended.duration_since(started).unwrap_or_default().as_secs_f64(),
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "interval_ms": first.map(|p| ms_value(p.interval)),
            "timeout_ms": first.map(|p| ms_value(p.timeout)),
            "count": args.count,
            "payload_size": args.size,
            "ports": args.ports,
            "targets": plans.len(),
        }),
    );
    head.insert(
        "summary".into(),
        json!({
            "sent": sent, "received": received, "errors": errors,
            "success_rate": if sent == 0 { 0.0 } else { received as f64 / sent as f64 },
        }),
    );
    head.insert(
        "targets".into(),
        plans
            .iter()
            .zip(reports)
            .map(|(p, r)| check_json(p, r))
            .collect(),
    );
    head.insert(
        "hosts".into(),
        by_host(plans, reports)
            .into_iter()
            .map(|(host, checks)| {
                let ping = checks
                    .iter()
                    .find(|(p, _)| p.kind == TargetKind::Icmp)
                    .map(|(p, r)| check_json(p, r));
                let ports: serde_json::Map<String, Value> = checks
                    .iter()
                    .filter_map(|(p, r)| {
                        p.kind
                            .port()
                            .map(|port| (port.to_string(), check_json(p, r)))
                    })
                    .collect();
                json!({"host": host, "ping": ping, "ports": ports})
            })
            .collect(),
    );
    head.insert("results_dropped".into(), json!(results_dropped));
    head
}

#[cfg(test)]
mod tests {
    use super::*;
    use netpulse_core::record::IcmpError;
    use std::net::IpAddr;
    use std::time::UNIX_EPOCH;

    fn plan(kind: TargetKind, label: &str) -> ProbePlan {
        ProbePlan {
            label: label.into(),
            kind,
            addr: IpAddr::from([10, 77, 0, 2]),
            interval: Duration::from_millis(10),
            timeout: Duration::from_secs(1),
            count: Some(200),
            payload_size: None,
            http: None,
        }
    }

    fn result(outcome: Outcome, rtt_us: Option<u64>, detail: Detail) -> ProbeResult {
        ProbeResult {
            target: 0,
            seq: 3,
            sent_at: UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
            rtt: rtt_us.map(Duration::from_micros),
            outcome,
            detail,
            send_delay: std::time::Duration::ZERO,
            late: false,
        }
    }

    #[test]
    fn ping_like_lines() {
        let icmp = plan(TargetKind::Icmp, "10.77.0.2");
        let ok = result(
            Outcome::Ok,
            Some(40_120),
            Detail::Icmp {
                bytes: 64,
                ttl: Some(64),
            },
        );
        assert_eq!(
            probe_line(&icmp, &ok),
            "64 bytes from 10.77.0.2: icmp_seq=3 ttl=64 time=40.12 ms"
        );
        let unreach = Outcome::Unreachable(IcmpError {
            v6: false,
            icmp_type: 3,
            code: 1,
            from: Some(IpAddr::from([10, 77, 0, 1])),
        });
        assert_eq!(
            probe_line(&icmp, &result(unreach, None, Detail::None)),
            "From 10.77.0.1 icmp_seq=3 Destination Host Unreachable"
        );
        assert_eq!(
            probe_line(&icmp, &result(Outcome::Timeout, None, Detail::None)),
            "10.77.0.2: icmp_seq=3 timeout (1000.0 ms)"
        );
        let tcp = plan(TargetKind::Tcp { port: 80 }, "tcp://10.77.0.2:80");
        assert_eq!(
            probe_line(&tcp, &result(Outcome::Ok, Some(210), Detail::None)),
            "tcp 10.77.0.2:80 seq=3 connected time=0.210 ms"
        );
        assert_eq!(
            probe_line(&tcp, &result(Outcome::Refused, Some(50), Detail::None)),
            "tcp 10.77.0.2:80 seq=3 refused (port closed) time=0.050 ms"
        );
        let dns = plan(
            TargetKind::Dns {
                port: 53,
                name: "x.org".into(),
                qtype: "A".into(),
            },
            "dns://10.77.0.2/x.org?type=A",
        );
        assert_eq!(
            probe_line(
                &dns,
                &result(
                    Outcome::Ok,
                    Some(300),
                    Detail::Dns {
                        rcode: 3,
                        answers: 0
                    }
                )
            ),
            "dns 10.77.0.2:53 x.org A seq=3 NXDOMAIN answers=0 time=0.300 ms"
        );
    }

    #[test]
    fn json_probe_object() {
        let icmp = plan(TargetKind::Icmp, "10.77.0.2");
        let v = probe_json(
            &icmp,
            &result(
                Outcome::Ok,
                Some(40_120),
                Detail::Icmp {
                    bytes: 64,
                    ttl: Some(64),
                },
            ),
        );
        assert_eq!(v["type"], "probe");
        assert_eq!(v["kind"], "icmp");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["outcome"], "ok");
        assert_eq!(v["rtt_ms"], 40.12);
        assert_eq!(v["detail"], Value::Null);
        assert_eq!(v["sent_at"], "2023-11-14T22:13:20.123456Z");
        let t = probe_json(&icmp, &result(Outcome::Timeout, None, Detail::None));
        assert_eq!(
            (t["outcome"].as_str(), t["rtt_ms"].is_null()),
            (Some("timeout"), true)
        );
    }

    #[test]
    fn summary_in_pings_words() {
        let icmp = plan(TargetKind::Icmp, "10.77.0.2");
        let mut rep = TargetReport::default();
        for i in 0..200u64 {
            if i % 100 == 99 {
                rep.stats.record_outcome(&Outcome::Timeout, None);
            } else {
                rep.stats.record_outcome(
                    &Outcome::Ok,
                    Some(Duration::from_micros(40_000 + (i % 5) * 100)),
                );
            }
        }
        rep.elapsed = Duration::from_millis(2003);
        let text = summary_text(&icmp, &rep);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "--- 10.77.0.2 probe statistics ---");
        assert_eq!(
            lines[1],
            "200 packets transmitted, 198 received, 1% packet loss, time 2003ms"
        );
        // 198 replies: residues 0..4 (×100 µs) 40 times each, less the two lost 400s
        assert_eq!(
            lines[2],
            "rtt min/avg/max/mdev = 40.000/40.198/40.400/0.141 ms"
        );
        assert!(
            lines[3].starts_with("rtt median/p95/p99 = "),
            "{}",
            lines[3]
        );
        assert!(lines[3].contains(", jitter "), "{}", lines[3]);
        let j = summary_json(&icmp, &rep);
        assert_eq!(
            (j["sent"].as_u64(), j["received"].as_u64()),
            (Some(200), Some(198))
        );
        assert_eq!(j["loss"], 0.01);
        assert_eq!(j["rtt_ms"]["min"], 40.0);
        assert_eq!(j["rtt_ms"]["max"], 40.4);
    }

    #[test]
    fn percent_and_ms_formats() {
        assert_eq!(fmt_percent(0.0), "0");
        assert_eq!(fmt_percent(0.0975), "9.75");
        assert_eq!(fmt_percent(1.0), "100");
        assert_eq!(fmt_ms(Duration::from_micros(45)), "0.045");
        assert_eq!(fmt_ms(Duration::from_micros(123_456)), "123.5");
    }
}
