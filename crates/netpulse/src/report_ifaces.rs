//! `netpulse report --ifaces`: recorded interface traffic per hour, day or month, like
//! `vnstat -h/-d/-m`, from the hourly rollups (kept forever by default).

use crate::cli::{Period, ReportArgs, ReportFormat};
use crate::report_cmd::time_s;
use netpulse_core::traffic::TrafficStats;
use netpulse_core::units::Units;
use netpulse_store::{Calendar, Store};
use serde_json::{json, Value};
use std::io::{self, Write};
use std::process::ExitCode;

/// The period label of unix second `ts` (UTC): `2026-11-23 10:00`, `2026-11-23` or `2026-11`.
fn period_label(ts: i64, per: Period) -> String {
    let t = time_s(ts).replace('T', " ");
    match per {
        Period::Hour => t.get(..16).unwrap_or(&t).to_string(),
        Period::Day => t.get(..10).unwrap_or(&t).to_string(),
        Period::Month => t.get(..7).unwrap_or(&t).to_string(),
    }
}

struct Line {
    iface: String,
    period: String,
    start: i64,
    stats: TrafficStats,
}

pub fn run(args: &ReportArgs, store: &Store, from_ms: i64, to_ms: i64) -> anyhow::Result<ExitCode> {
    let calendar = match args.per {
        Period::Hour => Calendar::Hour,
        Period::Day => Calendar::Day,
        Period::Month => Calendar::Month,
    };
    // Overlapping sessions and calendar grouping are the store's (see `Store::traffic_per`).
    let (periods, overlapping) = store.traffic_per(
        calendar,
        from_ms,
        to_ms,
        args.session,
        args.iface.as_deref(),
    )?;
    if periods.is_empty() {
        let known = store.ifaces()?;
        if let Some(name) = args
            .iface
            .as_deref()
            .filter(|n| !known.iter().any(|k| k == n))
        {
            anyhow::bail!(
                "no traffic recorded for interface \"{name}\" in {}; recorded: {}",
                store.path().display(),
                if known.is_empty() {
                    "none (record with `netpulse ifaces --watch --record`)".into()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    let lines: Vec<Line> = periods
        .into_iter()
        .map(|p| Line {
            period: period_label(p.period, args.per),
            iface: p.iface,
            start: p.first,
            stats: p.stats,
        })
        .collect();
    let units = Units {
        si: args.si,
        bits: args.bits,
    };
    let mut out = io::BufWriter::new(io::stdout());
    match args.format {
        ReportFormat::Text => write_text(&mut out, &lines, args.per, &units, store)?,
        ReportFormat::Json => {
            let v = json!({
                "type": "iface_report",
                "per": per_name(args.per),
                "rows": lines.iter().map(line_json).collect::<Vec<_>>(),
                "overlapping_rows_skipped": overlapping,
            });
            serde_json::to_writer(&mut out, &v)?;
            out.write_all(b"\n")?;
        }
        ReportFormat::Csv => {
            // The `csv` crate quotes what needs it: interface names may hold commas.
            let mut w = csv::Writer::from_writer(&mut out);
            w.write_record([
                "interface",
                "period",
                "start",
                "rx_bytes",
                "tx_bytes",
                "total_bytes",
                "rx_packets",
                "tx_packets",
                "rx_errors",
                "tx_errors",
                "rx_dropped",
                "tx_dropped",
                "covered_s",
                "rx_rate_avg",
                "tx_rate_avg",
                "rx_rate_max",
                "tx_rate_max",
            ])?;
            for l in &lines {
                let s = &l.stats;
                let c = &s.counts;
                let f = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
                w.write_record([
                    l.iface.to_string(),
                    l.period.to_string(),
                    time_s(l.start),
                    c.rx_bytes.to_string(),
                    c.tx_bytes.to_string(),
                    (c.rx_bytes + c.tx_bytes).to_string(),
                    c.rx_packets.to_string(),
                    c.tx_packets.to_string(),
                    c.rx_errors.to_string(),
                    c.tx_errors.to_string(),
                    c.rx_dropped.to_string(),
                    c.tx_dropped.to_string(),
                    format!("{:.3}", s.covered_ms as f64 / 1000.0),
                    f(s.rx_rate_avg()),
                    f(s.tx_rate_avg()),
                    format!("{:.3}", s.rx_rate_max),
                    format!("{:.3}", s.tx_rate_max),
                ])?;
            }
            w.flush()?;
        }
    }
    if overlapping > 0 {
        eprintln!(
            "netpulse: {overlapping} hourly rows were recorded twice at the same time by different sessions; counted once"
        );
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn per_name(per: Period) -> &'static str {
    match per {
        Period::Hour => "hour",
        Period::Day => "day",
        Period::Month => "month",
    }
}

fn line_json(l: &Line) -> Value {
    let s = &l.stats;
    let c = &s.counts;
    json!({
        "interface": l.iface, "period": l.period, "start": time_s(l.start),
        "rx_bytes": c.rx_bytes, "tx_bytes": c.tx_bytes, "total_bytes": c.rx_bytes + c.tx_bytes,
        "rx_packets": c.rx_packets, "tx_packets": c.tx_packets,
        "rx_errors": c.rx_errors, "tx_errors": c.tx_errors,
        "rx_dropped": c.rx_dropped, "tx_dropped": c.tx_dropped,
        "covered_s": s.covered_ms as f64 / 1000.0,
        "rx_rate_avg": s.rx_rate_avg(), "tx_rate_avg": s.tx_rate_avg(),
        "rx_rate_max": s.rx_rate_max, "tx_rate_max": s.tx_rate_max,
    })
}

fn write_text(
    out: &mut impl Write,
    lines: &[Line],
    per: Period,
    u: &Units,
    store: &Store,
) -> io::Result<()> {
    if lines.is_empty() {
        return writeln!(
            out,
            "No interface traffic recorded in this range in {} (record with `netpulse ifaces --watch --record`).",
            store.path().display()
        );
    }
    let title = match per {
        Period::Hour => "hour (UTC)",
        Period::Day => "day (UTC)",
        Period::Month => "month (UTC)",
    };
    let mut current = "";
    for l in lines {
        if l.iface != current {
            if !current.is_empty() {
                writeln!(out)?;
            }
            current = &l.iface;
            writeln!(out, " {}", l.iface)?;
            writeln!(
                out,
                "  {:<16} {:>11} {:>11} {:>11} {:>12} {:>12} {:>12} {:>12} {:>9}",
                title, "rx", "tx", "total", "avg rx", "avg tx", "peak rx", "peak tx", "observed"
            )?;
        }
        let s = &l.stats;
        let c = &s.counts;
        writeln!(
            out,
            "  {:<16} {:>11} {:>11} {:>11} {:>12} {:>12} {:>12} {:>12} {:>9}",
            l.period,
            u.bytes(c.rx_bytes),
            u.bytes(c.tx_bytes),
            u.bytes(c.rx_bytes + c.tx_bytes),
            u.rate(s.rx_rate_avg()),
            u.rate(s.tx_rate_avg()),
            u.rate(Some(s.rx_rate_max)),
            u.rate(Some(s.tx_rate_max)),
            observed(s.covered_ms),
        )?;
    }
    Ok(())
}

/// How much of the period was watched: `59m 58s`, `23h 12m`, `12d 3h`.
fn observed(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m) = (s / 86400, s % 86400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {}s", s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_labels() {
        let ts = 1_700_000_000; // 2023-11-14T22:13:20Z
        assert_eq!(period_label(ts, Period::Hour), "2023-11-14 22:13");
        assert_eq!(period_label(ts, Period::Day), "2023-11-14");
        assert_eq!(period_label(ts, Period::Month), "2023-11");
    }
}
