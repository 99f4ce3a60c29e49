//! `netpulse report --charts DIR`: the report's range drawn as SVG and PNG charts.

use crate::report_cmd::{series, Report, Scope};
use anyhow::Context;
use netpulse_chart::{fmt_bits, fmt_count, LatencyPoint};
use netpulse_core::live::TargetSecond;
use netpulse_core::rollup::Resolution;
use netpulse_store::Store;
use std::collections::BTreeMap;
use std::path::Path;

/// (unix second, value) points of one line.
type Line = Vec<(i64, f64)>;

/// A file-name-safe form of a label (`tcp://host:443` → `tcp-host-443`).
fn slug(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if s.is_empty() {
        "target".into()
    } else {
        s
    }
}

/// The finest resolution that keeps a chart under a few thousand points.
/// Smoke buckets across a chart's range.
const SMOKE_BUCKETS: i64 = 120;

fn resolution_for(span_s: i64) -> Resolution {
    if span_s <= 2 * 3600 {
        Resolution::Second
    } else if span_s <= 3 * 86_400 {
        Resolution::Minute
    } else {
        Resolution::Hour
    }
}

/// Draws one chart as both SVG and PNG; returns 2.
pub(crate) fn both(
    dir: &Path,
    name: &str,
    draw: impl Fn(&Path) -> Result<(), netpulse_chart::ChartError>,
) -> anyhow::Result<usize> {
    for ext in ["svg", "png"] {
        let path = dir.join(format!("{name}.{ext}"));
        draw(&path)?;
    }
    Ok(2)
}

/// The histogram bars of `rtt`: 30 bins at most (fewer when the sketch is coarser), each
/// labelled with its start in ms.
pub(crate) fn rtt_bars(rtt: &netpulse_core::stats::RttStats) -> Vec<(String, f64)> {
    rtt.parts()
        .hist
        .linear_bins(30)
        .into_iter()
        .map(|(lo, _, n)| (format!("{:.2}", lo / 1e6), n as f64))
        .collect()
}

/// The capture seconds of the report's scope. A capture's seconds are capture time (a file
/// may be years old): a session takes all of its own, a time range those captured in it.
pub(crate) fn capture_seconds_in(
    store: &Store,
    sc: &Scope,
) -> anyhow::Result<Vec<netpulse_store::CaptureRow>> {
    Ok(match &sc.session {
        Some(s) => store.capture_seconds(i64::MIN, i64::MAX, Some(s.id))?,
        None => store.capture_seconds(
            sc.from_ms.div_euclid(1000),
            sc.to_ms.div_euclid(1000) + 1,
            None,
        )?,
    })
}

/// Writes every chart the range has data for; returns how many files.
pub fn write(dir: &Path, store: &Store, sc: &Scope, report: &Report) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let span_s = (sc.to_ms - sc.from_ms).max(1000) / 1000;
    let mut written = 0;

    // Probes: the finest resolution with rows (seconds may be pruned already).
    let mut res = resolution_for(span_s);
    let mut rows = series(store, sc, res)?;
    while rows.is_empty() && res != Resolution::Hour {
        res = if res == Resolution::Second {
            Resolution::Minute
        } else {
            Resolution::Hour
        };
        rows = series(store, sc, res)?;
    }
    // The smoke: buckets of about 1/120 of the range (never finer than the rows), each row's
    // RTT histogram merged into its bucket, the percentiles exact to the sketch's 1 %.
    let smoke_width = (span_s / SMOKE_BUCKETS).max(res.seconds());
    let mut smoke: BTreeMap<(&str, i64), netpulse_core::stats::RttStats> = BTreeMap::new();
    for r in &rows {
        if r.stats.rtt.count() > 0 {
            smoke
                .entry((r.target.as_str(), r.ts - r.ts.rem_euclid(smoke_width)))
                .or_default()
                .merge(&r.stats.rtt);
        }
    }
    let smoke_of = |target: &str| -> Vec<netpulse_chart::Smoke> {
        let ms = |s: &netpulse_core::stats::RttStats, q: f64| {
            s.quantile(q).map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        smoke
            .range((target, i64::MIN)..=(target, i64::MAX))
            .map(|(&(_, t), s)| netpulse_chart::Smoke {
                t,
                width: smoke_width,
                p: [0.10, 0.25, 0.50, 0.75, 0.90].map(|q| ms(s, q)),
            })
            .collect()
    };
    let mut per: BTreeMap<&str, Vec<LatencyPoint>> = BTreeMap::new();
    for r in &rows {
        let p = TargetSecond::of(r.ts, &r.stats);
        per.entry(r.target.as_str())
            .or_default()
            .push(LatencyPoint {
                t: p.sec,
                min: p.min_ms,
                avg: p.avg_ms,
                max: p.max_ms,
                loss: p.loss(),
            });
    }
    for (target, points) in &per {
        let outages: Vec<(i64, i64)> = report
            .outages
            .iter()
            .filter(|o| o.target == *target)
            .map(|o| (o.start_ms.div_euclid(1000), o.end_ms.div_euclid(1000)))
            .collect();
        let title = format!("{target}: latency, loss and outages");
        written += both(dir, &format!("latency-{}", slug(target)), |p| {
            netpulse_chart::latency(
                p,
                &title,
                points,
                &smoke_of(target),
                &outages,
                res.seconds(),
            )
        })?;
        if let Some((_, stats)) = report.per_target.iter().find(|(t, _)| t == *target) {
            let bins = rtt_bars(&stats.rtt);
            let title = format!(
                "{target}: latency histogram ({} replies)",
                stats.rtt.count()
            );
            written += both(dir, &format!("histogram-{}", slug(target)), |p| {
                netpulse_chart::bars(
                    p,
                    &title,
                    "RTT (ms, bin start)",
                    "replies",
                    &bins,
                    fmt_count,
                )
            })?;
        }
    }

    // HTTP(S) targets: where the time goes, each phase's median stacked, per bucket of the
    // range (about 40 bars, whole minutes).
    if !report.http.is_empty() {
        let bucket = (span_s / 40).max(60) / 60 * 60;
        let series = store.http_series(
            sc.from_ms,
            sc.to_ms,
            sc.session.as_ref().map(|s| s.id),
            sc.target.as_deref(),
            bucket,
        )?;
        for target in report.http.keys() {
            let bars: Vec<(String, Vec<f64>)> = series
                .range((target.clone(), i64::MIN)..=(target.clone(), i64::MAX))
                .map(|((_, t), m)| {
                    let medians = m.phases[..5]
                        .iter()
                        .map(|p| p.quantile(0.5).map_or(0.0, |d| d.as_secs_f64() * 1e3))
                        .collect();
                    (netpulse_chart::time_label(*t, span_s), medians)
                })
                .collect();
            let title = format!("{target}: where the time goes (median per phase)");
            written += both(dir, &format!("http-phases-{}", slug(target)), |p| {
                netpulse_chart::stacked_bars(
                    p,
                    &title,
                    "time (UTC)",
                    "ms",
                    &["dns", "connect", "tls", "first byte", "body"],
                    &bars,
                )
            })?;
        }
    }

    // Interfaces: down and up in bits/s.
    let ires = resolution_for(span_s);
    let traffic = store.traffic(
        ires,
        ires.bucket(sc.from_ms.div_euclid(1000)),
        sc.to_ms.div_euclid(1000) + 1,
        sc.session.as_ref().map(|s| s.id),
        None,
    )?;
    let mut ifaces: BTreeMap<&str, (Line, Line)> = BTreeMap::new();
    for t in &traffic {
        if t.stats.covered_ms == 0 {
            continue;
        }
        let secs = t.stats.covered_ms as f64 / 1000.0;
        let e = ifaces.entry(t.iface.as_str()).or_default();
        e.0.push((t.ts, t.stats.counts.rx_bytes as f64 * 8.0 / secs));
        e.1.push((t.ts, t.stats.counts.tx_bytes as f64 * 8.0 / secs));
    }
    for (name, (rx, tx)) in ifaces {
        let series = vec![(format!("{name} down"), rx), (format!("{name} up"), tx)];
        let title = format!("{name}: throughput");
        written += both(dir, &format!("iface-{}", slug(name)), |p| {
            // Down green, up amber: the dashboard's colours.
            netpulse_chart::lines_coloured(
                p,
                &title,
                "bits per second",
                &series,
                fmt_bits,
                &[(60, 207, 145), (240, 180, 41)],
            )
        })?;
    }

    // Capture: throughput per protocol over time (per minute when long) and protocol usage.
    let capture = capture_seconds_in(store, sc)?;
    if let (Some(first), Some(last)) = (capture.first(), capture.last()) {
        let bucket = if last.ts - first.ts > 2 * 3600 { 60 } else { 1 };
        let mut by: BTreeMap<&str, BTreeMap<i64, u64>> = BTreeMap::new();
        let mut totals: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for c in &capture {
            *by.entry(c.protocol.as_str())
                .or_default()
                .entry(c.ts - c.ts.rem_euclid(bucket))
                .or_default() += c.bytes;
            let t = totals.entry(c.protocol.as_str()).or_default();
            t.0 += c.packets;
            t.1 += c.bytes;
        }
        let series: Vec<(String, Vec<(i64, f64)>)> = by
            .into_iter()
            .map(|(p, pts)| {
                let pts = pts
                    .into_iter()
                    .map(|(t, b)| (t, b as f64 * 8.0 / bucket as f64))
                    .collect();
                (p.to_string(), pts)
            })
            .collect();
        written += both(dir, "capture-throughput", |p| {
            netpulse_chart::lines(
                p,
                "capture: throughput per protocol",
                "bits per second",
                &series,
                fmt_bits,
            )
        })?;
        let bars: Vec<(String, f64)> = totals
            .iter()
            .map(|(p, (packets, _))| (p.to_string(), *packets as f64))
            .collect();
        written += both(dir, "capture-protocols", |p| {
            netpulse_chart::bars(
                p,
                "capture: packets per protocol",
                "protocol",
                "packets",
                &bars,
                fmt_count,
            )
        })?;
    }
    if written == 0 {
        anyhow::bail!(
            "nothing to chart between {} and {}: no probes, interface traffic or capture recorded",
            crate::report_cmd::time_ms(sc.from_ms),
            crate::report_cmd::time_ms(sc.to_ms)
        );
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs_are_file_names() {
        assert_eq!(super::slug("tcp://host:443"), "tcp-host-443");
        assert_eq!(super::slug("10.77.0.2"), "10.77.0.2");
        assert_eq!(super::slug("///"), "target");
    }
}
