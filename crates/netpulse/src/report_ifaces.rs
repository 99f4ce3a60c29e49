//! `netpulse report --ifaces`: recorded interface traffic per hour, day or month, like
//! `vnstat -h/-d/-m`, from the hourly rollups (kept forever by default).

use crate::cli::{Period, ReportArgs, ReportFormat};
use crate::report_cmd::time_s;
use netpulse_core::rollup::Resolution;
use netpulse_core::traffic::TrafficStats;
use netpulse_core::units::Units;
use netpulse_store::{Store, TrafficRecord};
use serde_json::{json, Value};
use std::collections::BTreeMap;
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

/// Hour rows of one interface with sessions that recorded it at the same time counted once:
/// two recorders watching the same interface (say `ifaces --record` beside `monitor`) saw the
/// same bytes. Of rows whose spans overlap, the one covering more time is kept.
fn without_overlaps(mut rows: Vec<TrafficRecord>) -> (Vec<TrafficRecord>, usize) {
    rows.sort_by(|a, b| {
        (a.ts, std::cmp::Reverse(a.stats.covered_ms))
            .cmp(&(b.ts, std::cmp::Reverse(b.stats.covered_ms)))
    });
    let mut kept: Vec<TrafficRecord> = Vec::with_capacity(rows.len());
    let mut dropped = 0;
    for r in rows {
        let overlaps = kept.iter().rev().take_while(|k| k.ts == r.ts).any(|k| {
            k.session_id != r.session_id
                && r.stats.first_ms < k.stats.last_ms
                && k.stats.first_ms < r.stats.last_ms
        });
        if overlaps {
            dropped += 1;
        } else {
            kept.push(r);
        }
    }
    (kept, dropped)
}

struct Line {
    iface: String,
    period: String,
    start: i64,
    stats: TrafficStats,
}

pub fn run(args: &ReportArgs, store: &Store, from_ms: i64, to_ms: i64) -> anyhow::Result<ExitCode> {
    let from = Resolution::Hour.bucket(from_ms.div_euclid(1000));
    let to = to_ms.div_euclid(1000) + 1;
    let session = args.session;
    let rows = store.traffic(Resolution::Hour, from, to, session, args.iface.as_deref())?;
    if rows.is_empty() {
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
    let mut per_iface: BTreeMap<String, Vec<TrafficRecord>> = BTreeMap::new();
    for r in rows {
        per_iface.entry(r.iface.clone()).or_default().push(r);
    }
    let mut lines: Vec<Line> = Vec::new();
    let mut overlapping = 0;
    for (iface, rows) in per_iface {
        let (rows, dropped) = without_overlaps(rows);
        overlapping += dropped;
        for r in rows {
            let period = period_label(r.ts, args.per);
            match lines.last_mut() {
                Some(l) if l.iface == iface && l.period == period => l.stats.merge(&r.stats),
                _ => lines.push(Line {
                    iface: iface.clone(),
                    period,
                    start: r.ts,
                    stats: r.stats,
                }),
            }
        }
    }
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

    fn rec(session: i64, ts: i64, first: i64, last: i64, rx: u64) -> TrafficRecord {
        let mut stats = TrafficStats {
            covered_ms: (last - first) as u64,
            first_ms: first,
            last_ms: last,
            ..Default::default()
        };
        stats.counts.rx_bytes = rx;
        TrafficRecord {
            session_id: session,
            iface: "eth0".into(),
            ts,
            stats,
        }
    }

    #[test]
    fn overlapping_sessions_count_once_sequential_ones_add_up() {
        // Session 1 watched 10:00–10:30, session 2 10:30–11:00: both count.
        let (kept, dropped) = without_overlaps(vec![
            rec(1, 0, 0, 1_800_000, 100),
            rec(2, 0, 1_800_000, 3_600_000, 50),
        ]);
        assert_eq!((kept.len(), dropped), (2, 0));
        // Session 3 watched the whole hour while session 4 watched 20 minutes of it.
        let (kept, dropped) = without_overlaps(vec![
            rec(4, 0, 600_000, 1_800_000, 40),
            rec(3, 0, 0, 3_600_000, 150),
        ]);
        assert_eq!((kept.len(), dropped), (1, 1));
        assert_eq!(kept[0].session_id, 3);
    }

    #[test]
    fn period_labels() {
        let ts = 1_700_000_000; // 2023-11-14T22:13:20Z
        assert_eq!(period_label(ts, Period::Hour), "2023-11-14 22:13");
        assert_eq!(period_label(ts, Period::Day), "2023-11-14");
        assert_eq!(period_label(ts, Period::Month), "2023-11");
    }
}
