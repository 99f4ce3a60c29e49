//! `capture --charts DIR`: seed 004's charts, drawn when the capture ends, without a database —
//! throughput per protocol over time, the latency distributions (TCP handshakes, DNS), and the
//! packets per protocol with the unique IP and MAC counts. The time series is kept bounded
//! whatever the capture's length: past [`MAX_POINTS`] buckets, neighbours merge and the bucket
//! doubles (1 s, 2 s, 4 s …).

use crate::report_charts::{both, rtt_bars};
use netpulse_capture::stats::Count;
use netpulse_capture::{Protocol, Report};
use std::path::Path;

/// Most time buckets kept for the throughput chart.
pub const MAX_POINTS: usize = 4096;

/// The protocols drawn over time (the transport and link ones: the IP layer is their sum).
const DRAWN: [Protocol; 5] = [
    Protocol::Tcp,
    Protocol::Udp,
    Protocol::Icmp,
    Protocol::Arp,
    Protocol::Other,
];

/// Bytes per protocol per bucket, for the throughput chart.
#[derive(Debug)]
pub struct Throughput {
    /// Bucket length, seconds (a power of two).
    bucket: i64,
    /// (bucket start, bytes per drawn protocol), in time order.
    points: Vec<(i64, [u64; DRAWN.len()])>,
}

impl Throughput {
    /// An empty series of 1 s buckets.
    pub fn new() -> Self {
        Self {
            bucket: 1,
            points: Vec::new(),
        }
    }

    /// Adds one second's counts (seconds arrive in order).
    pub fn second(&mut self, sec: i64, counts: &[Count; 8]) {
        let start = sec - sec.rem_euclid(self.bucket);
        let bytes = DRAWN.map(|p| counts[p as usize].bytes);
        match self.points.last_mut() {
            Some((t, b)) if *t == start => {
                for (sum, add) in b.iter_mut().zip(bytes) {
                    *sum += add;
                }
            }
            _ => self.points.push((start, bytes)),
        }
        if self.points.len() > MAX_POINTS {
            self.coarsen();
        }
    }

    /// Doubles the bucket, merging neighbours.
    fn coarsen(&mut self) {
        self.bucket *= 2;
        let mut merged: Vec<(i64, [u64; DRAWN.len()])> = Vec::with_capacity(MAX_POINTS / 2 + 1);
        for (t, b) in self.points.drain(..) {
            let start = t - t.rem_euclid(self.bucket);
            match merged.last_mut() {
                Some((m, sum)) if *m == start => {
                    for (s, add) in sum.iter_mut().zip(b) {
                        *s += add;
                    }
                }
                _ => merged.push((start, b)),
            }
        }
        self.points = merged;
    }

    /// The series as bits per second, one per protocol that carried anything.
    fn series(&self) -> Vec<(String, Vec<(i64, f64)>)> {
        DRAWN
            .iter()
            .enumerate()
            .filter(|(i, _)| self.points.iter().any(|(_, b)| b[*i] > 0))
            .map(|(i, p)| {
                let pts = self
                    .points
                    .iter()
                    .map(|(t, b)| (*t, b[i] as f64 * 8.0 / self.bucket as f64))
                    .collect();
                (p.name().to_string(), pts)
            })
            .collect()
    }
}

/// Writes the charts into `dir`; returns how many files.
pub fn write(dir: &Path, report: &Report, throughput: &Throughput) -> anyhow::Result<usize> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = 0;
    let series = throughput.series();
    let title = if throughput.bucket > 1 {
        format!(
            "capture: throughput per protocol ({} s buckets)",
            throughput.bucket
        )
    } else {
        "capture: throughput per protocol".to_string()
    };
    written += both(dir, "capture-throughput", |p| {
        netpulse_chart::lines(
            p,
            &title,
            "bits per second",
            &series,
            netpulse_chart::fmt_bits,
        )
    })?;
    let bars: Vec<(String, f64)> = Protocol::ALL
        .iter()
        .map(|p| {
            (
                p.name().to_string(),
                report.protocols[*p as usize].packets as f64,
            )
        })
        .filter(|(_, n)| *n > 0.0)
        .collect();
    let title = format!(
        "capture: packets per protocol ({}{} unique IPs, {} MACs)",
        if report.unique_exact { "" } else { "~" },
        report.unique_ips,
        report.unique_macs
    );
    written += both(dir, "capture-protocols", |p| {
        netpulse_chart::bars(
            p,
            &title,
            "protocol",
            "packets",
            &bars,
            netpulse_chart::fmt_count,
        )
    })?;
    for (name, what, rtt) in [
        (
            "capture-handshake-rtt",
            "TCP handshake RTT",
            &report.latency.tcp_handshake,
        ),
        (
            "capture-dns-rtt",
            "DNS query → response",
            &report.latency.dns,
        ),
    ] {
        if rtt.count() == 0 {
            continue;
        }
        let title = format!("capture: {what} ({} measured)", rtt.count());
        let bins = rtt_bars(rtt);
        written += both(dir, name, |p| {
            netpulse_chart::bars(
                p,
                &title,
                "RTT (ms, bin start)",
                "count",
                &bins,
                netpulse_chart::fmt_count,
            )
        })?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(tcp: u64) -> [Count; 8] {
        let mut c = [Count::default(); 8];
        c[Protocol::Tcp as usize].bytes = tcp;
        c
    }

    #[test]
    fn a_long_capture_keeps_a_bounded_series_and_every_byte() {
        let mut t = Throughput::new();
        let seconds = 3 * MAX_POINTS as i64 + 7;
        for s in 0..seconds {
            t.second(1_700_000_000 + s, &counts(1000));
        }
        assert!(t.points.len() <= MAX_POINTS, "{}", t.points.len());
        assert_eq!(t.bucket, 4);
        let bytes: u64 = t.points.iter().map(|(_, b)| b[0]).sum();
        assert_eq!(bytes, seconds as u64 * 1000);
        let series = t.series();
        assert_eq!(series.len(), 1, "only tcp carried anything");
        // 1000 B/s is 8000 bit/s whatever the bucket (a full one).
        assert_eq!(series[0].1[1].1, 8000.0);
    }
}
