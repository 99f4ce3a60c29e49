//! `netpulse report` and `netpulse sessions`: what a recording saw.

use crate::cli::{ReportArgs, ReportFormat, SessionsArgs};
use crate::output::fmt_percent;
use anyhow::{bail, Context};
use netpulse_core::parse_duration;
use netpulse_core::rollup::Resolution;
use netpulse_core::stats::ProbeStats;
use netpulse_store::{default_db_path, OutageRecord, RollupRecord, SessionRow, Store};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) fn time_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

pub(crate) fn time_s(s: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s.max(0) as u64)).to_string()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Parses a UTC time: RFC 3339 (`2026-11-23T10:00:00Z`), `2026-11-23 10:00[:00]`, or unix seconds.
fn parse_time(text: &str) -> anyhow::Result<i64> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return Ok(secs * 1000);
    }
    let normalized = if t.len() == 16 {
        format!("{t}:00")
    } else {
        t.to_string()
    };
    let parsed = humantime::parse_rfc3339_weak(&normalized)
        .or_else(|_| humantime::parse_rfc3339(&normalized))
        .with_context(|| {
            format!("bad time \"{text}\" (expected e.g. 2026-11-23T10:00:00Z, \"2026-11-23 10:00\" or unix seconds)")
        })?;
    Ok(parsed
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0))
}

/// What to report: a range of time, maybe one session, maybe one target.
pub(crate) struct Scope {
    pub(crate) from_ms: i64,
    pub(crate) to_ms: i64,
    pub(crate) session: Option<SessionRow>,
    pub(crate) target: Option<String>,
}

fn open(db: &Option<std::path::PathBuf>) -> anyhow::Result<Store> {
    let path = db.clone().unwrap_or_else(default_db_path);
    let store = Store::open_read(&path)?;
    crate::record::say_recovered(&store);
    Ok(store)
}

fn scope(args: &ReportArgs, store: &Store) -> anyhow::Result<Scope> {
    let sessions = store.sessions()?;
    let session = match args.session {
        Some(id) => Some(
            sessions
                .iter()
                .find(|s| s.id == id)
                .cloned()
                .with_context(|| {
                    format!(
                        "no session {id} in {} (`netpulse sessions` lists {})",
                        store.path().display(),
                        match (sessions.first(), sessions.last()) {
                            (Some(a), Some(b)) => format!("sessions {} to {}", a.id, b.id),
                            _ => "none: nothing was recorded yet".into(),
                        }
                    )
                })?,
        ),
        None if args.since.is_none() && args.from.is_none() && args.to.is_none() => {
            Some(sessions.last().cloned().with_context(|| {
                format!(
                    "{} holds no session yet (`netpulse monitor` records by default; `netpulse probe --record` and `netpulse capture --record` record too)",
                    store.path().display()
                )
            })?)
        }
        None => None,
    };
    let (from_ms, to_ms) = if let Some(s) = &session {
        let end = match s.ended_at_ms {
            Some(e) => e,
            None => store.session_last_ms(s.id)?.unwrap_or_else(now_ms),
        };
        (s.started_at_ms, end.max(s.started_at_ms))
    } else if let Some(since) = &args.since {
        let d = parse_duration(since).context("bad --since")?;
        let now = now_ms();
        (now - d.as_millis() as i64, now)
    } else {
        let to = args
            .to
            .as_deref()
            .map(parse_time)
            .transpose()?
            .unwrap_or_else(now_ms);
        let from = match args.from.as_deref() {
            Some(f) => parse_time(f)?,
            None => bail!("--to needs --from"),
        };
        (from, to)
    };
    if from_ms >= to_ms && session.is_none() {
        bail!(
            "bad time range: {} is not before {}",
            time_ms(from_ms),
            time_ms(to_ms)
        );
    }
    if let Some(wanted) = &args.target {
        // A name no session recorded is a typo, not an empty report.
        let in_scope: Vec<i64> = session.iter().map(|s| s.id).collect();
        let known = store.targets(&in_scope)?;
        if !known.iter().any(|t| &t.label == wanted) {
            let names: Vec<&str> = known.iter().map(|t| t.label.as_str()).take(10).collect();
            let more = known.len().saturating_sub(names.len());
            bail!(
                "no target \"{wanted}\" in {}{} (targets: {}{})",
                match &session {
                    Some(s) => format!("session {}", s.id),
                    None => "the recording".into(),
                },
                format_args!(" of {}", store.path().display()),
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                },
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(Scope {
        from_ms,
        to_ms,
        session,
        target: args.target.clone(),
    })
}

/// Rows of `res` in scope, one per target and bucket (see [`Store::merged_rollups`]).
pub(crate) fn series(
    store: &Store,
    sc: &Scope,
    res: Resolution,
) -> anyhow::Result<Vec<RollupRecord>> {
    Ok(store.merged_rollups(
        res,
        sc.from_ms,
        sc.to_ms,
        sc.session.as_ref().map(|s| s.id),
        sc.target.as_deref(),
    )?)
}

/// Per-target totals in scope (see [`Store::totals`]).
fn totals(store: &Store, sc: &Scope) -> anyhow::Result<(Resolution, BTreeMap<String, ProbeStats>)> {
    Ok(store.totals(
        sc.from_ms,
        sc.to_ms,
        sc.session.as_ref().map(|s| s.id),
        sc.target.as_deref(),
    )?)
}

fn ms3(d: Option<Duration>) -> Value {
    d.map(|d| json!((d.as_secs_f64() * 1e6).round() / 1000.0))
        .unwrap_or(Value::Null)
}

fn stats_json(s: &ProbeStats) -> Value {
    let r = s.rtt.summary();
    json!({
        "sent": s.sent, "received": s.received, "lost": s.sent - s.received.min(s.sent),
        "loss": (s.loss() * 1e6).round() / 1e6, "refused": s.refused,
        "rtt_ms": r.map(|r| json!({
            "min": ms3(Some(r.min)), "avg": ms3(Some(r.avg)), "median": ms3(Some(r.median)),
            "max": ms3(Some(r.max)), "mdev": ms3(Some(r.mdev)), "p95": ms3(Some(r.p95)), "p99": ms3(Some(r.p99)),
        })),
        "jitter_ms": ms3(s.jitter.rfc3550()),
    })
}

fn outage_json(o: &OutageRecord) -> Value {
    json!({
        "target": o.target, "from": time_ms(o.start_ms), "to": time_ms(o.end_ms),
        "duration_ms": o.duration_ms(), "sent": o.sent, "received": o.received,
        "loss": (o.loss() * 1e6).round() / 1e6, "ongoing_at_end": o.ongoing, "session": o.session_id,
    })
}

fn opt_ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into())
}

fn human_duration(ms: i64) -> String {
    let d = Duration::from_millis(ms.max(0) as u64);
    if d < Duration::from_secs(1) {
        return format!("{ms} ms");
    }
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// Everything a report says, gathered once and rendered in any format.
pub(crate) struct Report {
    scope_text: String,
    scope_json: Value,
    total: ProbeStats,
    /// In the order the targets were first recorded (a config's order), not by name.
    pub(crate) per_target: Vec<(String, ProbeStats)>,
    totals_resolution: Resolution,
    pub(crate) outages: Vec<OutageRecord>,
    /// Times the recording could not write (disk full): what is missing, or was written late.
    gaps: Vec<netpulse_store::GapRecord>,
    /// HTTP(S) targets' phases and results, by label.
    pub(crate) http: std::collections::BTreeMap<String, netpulse_store::HttpMinute>,
}

pub(crate) fn gather(store: &Store, sc: &Scope) -> anyhow::Result<Report> {
    let (totals_resolution, mut by_name) = totals(store, sc)?;
    let in_scope: Vec<i64> = sc.session.iter().map(|s| s.id).collect();
    let mut per_target: Vec<(String, ProbeStats)> = Vec::with_capacity(by_name.len());
    for t in store.targets(&in_scope)? {
        if let Some(stats) = by_name.remove(&t.label) {
            per_target.push((t.label, stats));
        }
    }
    // Anything the target list did not name (it always should) still counts, after them.
    per_target.extend(by_name);
    let mut total = ProbeStats::default();
    for (_, s) in &per_target {
        total.merge(s);
    }
    let outages = store.outages(
        sc.from_ms - 1,
        sc.to_ms + 1,
        sc.session.as_ref().map(|s| s.id),
        sc.target.as_deref(),
    )?;
    let gaps = store.gaps(sc.from_ms, sc.to_ms, sc.session.as_ref().map(|s| s.id))?;
    let http = store.http_minutes(
        sc.from_ms,
        sc.to_ms,
        sc.session.as_ref().map(|s| s.id),
        sc.target.as_deref(),
    )?;
    let duration = sc.to_ms - sc.from_ms;
    let (scope_text, scope_json) = match &sc.session {
        Some(s) => (
            format!(
                "session {} on {} (netpulse {}), {} → {}{}, {}",
                s.id,
                s.host,
                s.version,
                time_ms(sc.from_ms),
                time_ms(sc.to_ms),
                if s.ended_at_ms.is_none() {
                    " (did not end cleanly)"
                } else {
                    ""
                },
                human_duration(duration)
            ),
            json!({"session": s.id, "host": s.host, "version": s.version, "command": s.command,
                   "from": time_ms(sc.from_ms), "to": time_ms(sc.to_ms), "duration_ms": duration,
                   "ended_cleanly": s.ended_at_ms.is_some()}),
        ),
        None => (
            format!(
                "{} → {}, {}",
                time_ms(sc.from_ms),
                time_ms(sc.to_ms),
                human_duration(duration)
            ),
            json!({"session": null, "from": time_ms(sc.from_ms), "to": time_ms(sc.to_ms), "duration_ms": duration}),
        ),
    };
    Ok(Report {
        scope_text,
        scope_json,
        total,
        per_target,
        totals_resolution,
        outages,
        gaps,
        http,
    })
}

/// The HTTP(S) targets' section: where each one's time goes (each phase's median, p95 and
/// mean) and what came back.
fn http_text(r: &Report) -> String {
    if r.http.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nHTTP(S) phases (ms: median / p95 / avg):\n");
    let w = r.http.keys().map(|t| t.len()).max().unwrap_or(6).max(6);
    out += &format!(
        "  {:<w$}  {:>20} {:>20} {:>20} {:>20} {:>20} {:>20}\n",
        "TARGET", "DNS", "CONNECT", "TLS", "FIRST BYTE", "BODY", "TOTAL"
    );
    let cell =
        |s: &netpulse_core::stats::RttStats| match (s.quantile(0.5), s.quantile(0.95), s.mean()) {
            (Some(a), Some(b), Some(c)) => format!(
                "{} / {} / {}",
                opt_ms(Some(a)),
                opt_ms(Some(b)),
                opt_ms(Some(c))
            ),
            _ => "-".into(),
        };
    for (target, m) in &r.http {
        out += &format!("  {target:<w$}");
        for p in &m.phases {
            out += &format!(" {:>20}", cell(p));
        }
        out += "\n";
    }
    out += "  results:\n";
    for (target, m) in &r.http {
        let results: Vec<String> = m
            .results
            .iter()
            .map(|(k, n)| format!("{k} × {n}"))
            .collect();
        let cert = m
            .cert_not_after
            .map(|e| format!("; certificate expires {}", time_ms(e.saturating_mul(1000))))
            .unwrap_or_default();
        out += &format!("  {target:<w$}  {}{cert}\n", results.join(", "));
    }
    out
}

/// The JSON of the HTTP(S) targets' phases and results.
fn http_json(r: &Report) -> Value {
    let per: serde_json::Map<String, Value> = r
        .http
        .iter()
        .map(|(target, m)| {
            let phases: serde_json::Map<String, Value> = netpulse_store::HTTP_PHASE_NAMES
                .iter()
                .zip(&m.phases)
                .filter(|(_, s)| s.count() > 0)
                .map(|(name, s)| {
                    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
                    (
                        name.to_string(),
                        json!({"count": s.count(), "min_ms": ms(s.min()), "avg_ms": ms(s.mean()),
                               "median_ms": ms(s.quantile(0.5)), "p95_ms": ms(s.quantile(0.95)),
                               "max_ms": ms(s.max())}),
                    )
                })
                .collect();
            (
                target.clone(),
                json!({"phases": phases, "results": m.results,
                       "cert_not_after": m.cert_not_after.map(|e| time_ms(e.saturating_mul(1000)))}),
            )
        })
        .collect();
    Value::Object(per)
}

fn summary_text(r: &Report) -> String {
    let t = &r.total;
    let lost = t.sent - t.received.min(t.sent);
    let mut out = format!("netpulse report: {}\n", r.scope_text);
    if t.sent == 0 {
        // Not "sent 0 … avg RTT - ms": a session of interface traffic or a capture only.
        out += "no probes recorded here\n";
    } else {
        out += &format!(
            "sent {}, received {}, lost {} ({}%), avg RTT {} ms, outages {}\n",
            t.sent,
            t.received,
            lost,
            fmt_percent(t.loss()),
            opt_ms(t.rtt.mean()),
            r.outages.len()
        );
        out += &format!("(totals from {} rollups)\n", r.totals_resolution.name());
    }
    if t.sent > 0 || !r.outages.is_empty() {
        out += "\nOutages:\n";
        out += &outages_text(&r.outages);
    }
    if !r.gaps.is_empty() {
        out += "\nRecording interrupted (the database could not be written):\n";
        for g in &r.gaps {
            let what = match g.lost {
                Some((from, to)) if g.rows_lost > 0 => format!(
                    "{} rows lost: no data {} → {}",
                    g.rows_lost,
                    time_ms(from),
                    time_ms(to)
                ),
                _ => "nothing lost (written when it resumed)".to_string(),
            };
            out += &format!(
                "  {} → {} ({}): {}; {what}\n",
                time_ms(g.start_ms),
                time_ms(g.end_ms),
                human_duration(g.end_ms - g.start_ms),
                g.error
            );
        }
    }
    if r.per_target.is_empty() {
        return out;
    }
    out += "\nPer target:\n";
    let w = r
        .per_target
        .iter()
        .map(|(t, _)| t.len())
        .max()
        .unwrap_or(6)
        .max(6);
    out += &format!(
        "  {:<w$}  {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7}\n",
        "TARGET",
        "SENT",
        "RECV",
        "LOSS%",
        "MIN ms",
        "AVG ms",
        "P50 ms",
        "P95 ms",
        "P99 ms",
        "MAX ms",
        "JITTER",
        "OUTAGES"
    );
    for (target, s) in &r.per_target {
        let sum = s.rtt.summary();
        let outages = r.outages.iter().filter(|o| &o.target == target).count();
        out += &format!(
            "  {:<w$}  {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7}\n",
            target,
            s.sent,
            s.received,
            fmt_percent(s.loss()),
            opt_ms(sum.map(|x| x.min)),
            opt_ms(sum.map(|x| x.avg)),
            opt_ms(sum.map(|x| x.median)),
            opt_ms(sum.map(|x| x.p95)),
            opt_ms(sum.map(|x| x.p99)),
            opt_ms(sum.map(|x| x.max)),
            opt_ms(s.jitter.rfc3550()),
            outages
        );
    }
    out += &http_text(r);
    out
}

fn outages_text(outages: &[OutageRecord]) -> String {
    if outages.is_empty() {
        return "  none\n".into();
    }
    let w = outages
        .iter()
        .map(|o| o.target.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!(
        "  {:<24} {:<24} {:>12}  {:<w$} {:>7} {:>7} {:>6}\n",
        "FROM", "TO", "DURATION", "TARGET", "SENT", "RECV", "LOSS%"
    );
    for o in outages {
        out += &format!(
            "  {:<24} {:<24} {:>12}  {:<w$} {:>7} {:>7} {:>6}{}\n",
            time_ms(o.start_ms),
            time_ms(o.end_ms),
            format!("{:.3} s", o.duration_ms() as f64 / 1000.0),
            o.target,
            o.sent,
            o.received,
            fmt_percent(o.loss()),
            if o.ongoing {
                "  (still down when the run ended)"
            } else {
                ""
            }
        );
    }
    out
}

const CSV_HEADER: [&str; 14] = [
    "time",
    "target",
    "sent",
    "received",
    "loss",
    "rtt_min_ms",
    "rtt_avg_ms",
    "rtt_max_ms",
    "rtt_mdev_ms",
    "rtt_p50_ms",
    "rtt_p95_ms",
    "rtt_p99_ms",
    "jitter_ms",
    "refused",
];

fn csv_field(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0))
        .unwrap_or_default()
}

fn write_csv(w: impl Write, rows: &[RollupRecord]) -> anyhow::Result<()> {
    write_csv_rows(w, rows, true)
}

/// The CSV of `rows`, with the header line or (appending to a file that has one) without.
pub(crate) fn write_csv_rows(
    w: impl Write,
    rows: &[RollupRecord],
    header: bool,
) -> anyhow::Result<()> {
    let mut c = csv::Writer::from_writer(w);
    if header {
        c.write_record(CSV_HEADER)?;
    }
    for r in rows {
        let s = &r.stats;
        let sum = s.rtt.summary();
        c.write_record([
            time_s(r.ts),
            r.target.clone(),
            s.sent.to_string(),
            s.received.to_string(),
            format!("{:.6}", s.loss()),
            csv_field(sum.map(|x| x.min)),
            csv_field(sum.map(|x| x.avg)),
            csv_field(sum.map(|x| x.max)),
            csv_field(sum.map(|x| x.mdev)),
            csv_field(sum.map(|x| x.median)),
            csv_field(sum.map(|x| x.p95)),
            csv_field(sum.map(|x| x.p99)),
            csv_field(s.jitter.rfc3550()),
            s.refused.to_string(),
        ])?;
    }
    c.flush()?;
    Ok(())
}

fn series_json(rows: &[RollupRecord]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                let mut v = stats_json(&r.stats);
                v["time"] = json!(time_s(r.ts));
                v["target"] = json!(r.target);
                v
            })
            .collect(),
    )
}

fn report_json(r: &Report, series: Option<(Resolution, &[RollupRecord])>) -> Value {
    let mut v = json!({
        "type": "report",
        "scope": r.scope_json,
        "summary": stats_json(&r.total),
        "outage_count": r.outages.len(),
        "outages": r.outages.iter().map(outage_json).collect::<Vec<_>>(),
        "recording_gaps": r.gaps.iter().map(|g| json!({
            "session": g.session_id, "start": time_ms(g.start_ms), "end": time_ms(g.end_ms),
            "duration_ms": g.end_ms - g.start_ms, "error": g.error, "rows_lost": g.rows_lost,
            "lost_from": g.lost.map(|(a, _)| time_ms(a)), "lost_to": g.lost.map(|(_, b)| time_ms(b)),
        })).collect::<Vec<_>>(),
        "targets": r.per_target.iter().map(|(t, s)| {
            let mut v = stats_json(s);
            v["target"] = json!(t);
            v["outages"] = json!(r.outages.iter().filter(|o| &o.target == t).count());
            v
        }).collect::<Vec<_>>(),
        "totals_resolution": r.totals_resolution.name(),
    });
    if !r.http.is_empty() {
        v["http"] = http_json(r);
    }
    if let Some((res, rows)) = series {
        v["series"] = json!({"resolution": res.name(), "rows": series_json(rows)});
    }
    v
}

fn resolution_arg(text: Option<&str>) -> anyhow::Result<Option<Resolution>> {
    text.map(|t| {
        Resolution::parse(t).with_context(|| format!("bad --resolution \"{t}\" (1s, 1m or 1h)"))
    })
    .transpose()
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let resolution = resolution_arg(args.resolution.as_deref())?;
    let store = open(&args.db)?;
    if args.ifaces {
        let whole_history = args.session.is_none() && args.since.is_none() && args.from.is_none();
        let (from_ms, to_ms) = if whole_history {
            if args.to.is_some() {
                bail!("--to needs --from");
            }
            (0, now_ms())
        } else {
            let sc = scope(&args, &store)?;
            (sc.from_ms, sc.to_ms)
        };
        return crate::report_ifaces::run(&args, &store, from_ms, to_ms);
    }
    let sc = scope(&args, &store)?;
    if args.alerts {
        return alerts_report(&args, &store, &sc);
    }
    let report = gather(&store, &sc)?;
    if let Some(dir) = &args.charts {
        let written = crate::report_charts::write(dir, &store, &sc, &report)?;
        eprintln!(
            "netpulse: wrote {} charts (SVG and PNG) to {}",
            written,
            dir.display()
        );
        if args.out.is_none() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if let Some(dir) = &args.out {
        write_folder(dir, &store, &sc, &report, "")?;
        eprintln!("netpulse: wrote the report to {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = io::BufWriter::new(io::stdout());
    match args.format {
        ReportFormat::Text => {
            out.write_all(summary_text(&report).as_bytes())?;
            if report.per_target.is_empty() {
                let traffic = store.traffic(
                    Resolution::Hour,
                    Resolution::Hour.bucket(sc.from_ms.div_euclid(1000)),
                    sc.to_ms.div_euclid(1000) + 1,
                    sc.session.as_ref().map(|s| s.id),
                    None,
                )?;
                let session_arg = sc
                    .session
                    .as_ref()
                    .map(|s| format!(" --session {}", s.id))
                    .unwrap_or_default();
                if !traffic.is_empty() {
                    writeln!(
                        out,
                        "\nNo probes here, but interface traffic: see `netpulse report --ifaces{session_arg}`."
                    )?;
                }
                let capture = crate::report_charts::capture_seconds_in(&store, &sc)?;
                if !capture.is_empty() {
                    let mut by: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
                    for c in &capture {
                        let e = by.entry(c.protocol.as_str()).or_default();
                        e.0 += c.packets;
                        e.1 += c.bytes;
                    }
                    let parts: Vec<String> = by
                        .iter()
                        .filter(|(p, _)| **p != "ethernet")
                        .map(|(p, (n, b))| format!("{p} {n} packets, {b} bytes"))
                        .collect();
                    writeln!(
                        out,
                        "\nNo probes here, but a capture ({} s recorded): {}. Charts: `netpulse report{session_arg} --charts DIR`.",
                        capture.iter().map(|c| c.ts).collect::<std::collections::BTreeSet<_>>().len(),
                        parts.join("; ")
                    )?;
                }
            }
            if let Some(res) = resolution {
                let rows = series(&store, &sc, res)?;
                writeln!(out, "\nTime series ({}):", res.name())?;
                writeln!(
                    out,
                    "  {:<22} {:<20} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9}",
                    "TIME", "TARGET", "SENT", "RECV", "LOSS%", "AVG ms", "P95 ms", "MAX ms"
                )?;
                for r in &rows {
                    let sum = r.stats.rtt.summary();
                    writeln!(
                        out,
                        "  {:<22} {:<20} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9}",
                        time_s(r.ts),
                        r.target,
                        r.stats.sent,
                        r.stats.received,
                        fmt_percent(r.stats.loss()),
                        opt_ms(sum.map(|x| x.avg)),
                        opt_ms(sum.map(|x| x.p95)),
                        opt_ms(sum.map(|x| x.max))
                    )?;
                }
            }
        }
        ReportFormat::Json => {
            let res = resolution.unwrap_or(Resolution::Minute);
            let rows = series(&store, &sc, res)?;
            serde_json::to_writer(&mut out, &report_json(&report, Some((res, &rows))))?;
            out.write_all(b"\n")?;
        }
        ReportFormat::Csv => {
            let rows = series(&store, &sc, resolution.unwrap_or(Resolution::Minute))?;
            write_csv(&mut out, &rows)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `report --alerts`: each alert in scope (of the session, if one is), its deliveries and the
/// path traced when it fired.
fn alerts_report(args: &ReportArgs, store: &Store, sc: &Scope) -> anyhow::Result<ExitCode> {
    let alerts: Vec<netpulse_store::AlertRecord> = store
        .alerts(sc.from_ms, sc.to_ms + 1)?
        .into_iter()
        .filter(|a| sc.session.as_ref().is_none_or(|s| s.id == a.session_id))
        .filter(|a| sc.target.as_ref().is_none_or(|t| *t == a.subject))
        .collect();
    let mut out = io::BufWriter::new(io::stdout());
    if matches!(args.format, ReportFormat::Json) {
        let v: Vec<Value> = alerts
            .iter()
            .map(|a| {
                json!({
                    "at": time_ms(a.at_ms), "session": a.session_id, "rule": a.rule,
                    "subject": a.subject, "status": a.status, "value": a.value,
                    "deliveries": a.deliveries.iter().map(|(n, attempt, ok, detail)| json!({
                        "notifier": n, "attempt": attempt, "ok": ok, "detail": detail,
                    })).collect::<Vec<_>>(),
                    "trace": a.trace.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok()),
                })
            })
            .collect();
        serde_json::to_writer(&mut out, &json!({"type": "alerts", "alerts": v}))?;
        out.write_all(b"\n")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "netpulse alerts: {} in {} → {}",
        alerts.len(),
        time_ms(sc.from_ms),
        time_ms(sc.to_ms)
    )?;
    for a in &alerts {
        writeln!(
            out,
            "\n{} {} {} on {} (value {})",
            time_ms(a.at_ms),
            a.status,
            a.rule,
            a.subject,
            a.value
        )?;
        for (n, attempt, ok, detail) in &a.deliveries {
            writeln!(
                out,
                "  sent to {n} (attempt {attempt}): {} {detail}",
                if *ok { "ok" } else { "failed" }
            )?;
        }
        let Some(trace) = a
            .trace
            .as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
        else {
            continue;
        };
        writeln!(out, "  path when it fired:")?;
        for h in trace["hops"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "  {:>3}. {:<40} {:>5.1}% loss  avg {} ms",
                h["hop"],
                h["address"].as_str().unwrap_or("???"),
                h["loss"].as_f64().unwrap_or(0.0) * 100.0,
                h["avg_ms"]
                    .as_f64()
                    .map_or_else(|| "-".into(), |v| format!("{v:.1}"))
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn write_folder(
    dir: &Path,
    store: &Store,
    sc: &Scope,
    report: &Report,
    header: &str,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_summaries(dir, report, header)?;
    for (res, stem) in [
        (Resolution::Second, "per_second"),
        (Resolution::Minute, "per_minute"),
        (Resolution::Hour, "per_hour"),
    ] {
        let rows = series(store, sc, res)?;
        write_atomically(&dir.join(format!("{stem}.csv")), |w| write_csv(w, &rows))?;
        write_atomically(&dir.join(format!("{stem}.json")), |w| {
            Ok(serde_json::to_writer(w, &series_json(&rows))?)
        })?;
    }
    Ok(())
}

/// A folder's summary (`header` first: a session folder's configuration, or nothing),
/// summary.json and the outage log, each replaced atomically.
pub(crate) fn write_summaries(dir: &Path, report: &Report, header: &str) -> anyhow::Result<()> {
    let summary = format!("{header}{}", summary_text(report));
    write_atomically(&dir.join("summary.txt"), |w| {
        Ok(w.write_all(summary.as_bytes())?)
    })?;
    let json = report_json(report, None);
    write_atomically(&dir.join("summary.json"), |w| {
        Ok(serde_json::to_writer_pretty(w, &json)?)
    })?;
    write_atomically(&dir.join("outages.txt"), |w| {
        Ok(w.write_all(outages_text(&report.outages).as_bytes())?)
    })?;
    write_atomically(&dir.join("outages.json"), |w| {
        Ok(serde_json::to_writer_pretty(
            w,
            &report.outages.iter().map(outage_json).collect::<Vec<_>>(),
        )?)
    })
}

/// Writes `path` through a scratch file beside it, renamed over it once complete: a reader (a
/// `tail`, a spreadsheet refreshing a live session folder) never sees half a file.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut part = path.as_os_str().to_os_string();
    part.push(".part");
    let part = std::path::PathBuf::from(part);
    let done = (|| -> anyhow::Result<()> {
        let mut w = io::BufWriter::new(std::fs::File::create(&part)?);
        write(&mut w)?;
        w.flush()?;
        std::fs::rename(&part, path)?;
        Ok(())
    })();
    if done.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    done.with_context(|| format!("cannot write {}", path.display()))
}

pub fn sessions(args: SessionsArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.db)?;
    let list = store.sessions()?;
    let mut out = io::BufWriter::new(io::stdout());
    if args.json {
        for s in &list {
            serde_json::to_writer(
                &mut out,
                &json!({"type": "session", "id": s.id, "started_at": time_ms(s.started_at_ms),
                        "ended_at": s.ended_at_ms.map(time_ms), "host": s.host, "version": s.version,
                        "targets": s.targets, "command": s.command}),
            )?;
            out.write_all(b"\n")?;
        }
    } else if list.is_empty() {
        writeln!(out, "no sessions in {}", store.path().display())?;
    } else {
        writeln!(
            out,
            "{:>4}  {:<24} {:>12}  {:<16} {:>7}  COMMAND",
            "ID", "STARTED", "DURATION", "HOST", "TARGETS"
        )?;
        for s in &list {
            let duration = match s.ended_at_ms {
                Some(e) => human_duration(e - s.started_at_ms),
                None => "(no end)".into(),
            };
            writeln!(
                out,
                "{:>4}  {:<24} {:>12}  {:<16} {:>7}  {}",
                s.id,
                time_ms(s.started_at_ms),
                duration,
                s.host,
                s.targets,
                s.command
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000").ok(), Some(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").ok(),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14 22:13:20").ok(),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_time("2023-11-14 22:13").ok(), Some(1_699_999_980_000));
        assert!(parse_time("yesterday").is_err());
    }
}
