//! Interface traffic rollups at 1 s, 1 min and 1 h, like the probe rollups: seconds from ticks,
//! minutes from closed seconds, hours from closed minutes. Each tick's delta lands in the bucket
//! holding the tick's wall time, together with the time it covers, so the average rate of a
//! bucket is exact whatever the polling interval (bytes / covered time). Buckets close when wall
//! time passes their end, so an interface that vanishes leaves no state behind.

use crate::iface::{IfaceCounters, IfaceRate};
use crate::rollup::{unix_secs, Resolution};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Traffic of one interface over one bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficStats {
    /// Counter increases in the bucket.
    pub counts: IfaceCounters,
    /// Time the deltas span, in milliseconds (the divisor of the average rate).
    pub covered_ms: u64,
    /// Start of the earliest delta (unix ms).
    pub first_ms: i64,
    /// End of the latest delta (unix ms).
    pub last_ms: i64,
    /// Highest per-tick receive rate, bytes/s.
    pub rx_rate_max: f64,
    /// Highest per-tick send rate, bytes/s.
    pub tx_rate_max: f64,
}

impl TrafficStats {
    /// Adds one tick that ended at `end_ms`.
    pub fn record(&mut self, rate: &IfaceRate, end_ms: i64) {
        let Some(delta) = rate.delta.as_ref() else {
            return;
        };
        let covered = rate.elapsed.as_millis() as u64;
        let start_ms = end_ms - covered as i64;
        self.merge(&TrafficStats {
            counts: *delta,
            covered_ms: covered,
            first_ms: start_ms,
            last_ms: end_ms,
            rx_rate_max: rate.rx_bytes_per_sec().unwrap_or(0.0),
            tx_rate_max: rate.tx_bytes_per_sec().unwrap_or(0.0),
        });
    }

    /// Folds another bucket's traffic into this one.
    pub fn merge(&mut self, other: &TrafficStats) {
        if other.covered_ms == 0 && other.counts == IfaceCounters::default() {
            return;
        }
        let empty = self.covered_ms == 0 && self.counts == IfaceCounters::default();
        self.counts = self.counts.add(&other.counts);
        self.covered_ms += other.covered_ms;
        self.first_ms = if empty {
            other.first_ms
        } else {
            self.first_ms.min(other.first_ms)
        };
        self.last_ms = if empty {
            other.last_ms
        } else {
            self.last_ms.max(other.last_ms)
        };
        self.rx_rate_max = self.rx_rate_max.max(other.rx_rate_max);
        self.tx_rate_max = self.tx_rate_max.max(other.tx_rate_max);
    }

    /// Average receive rate over the covered time, bytes/s.
    pub fn rx_rate_avg(&self) -> Option<f64> {
        (self.covered_ms > 0).then(|| self.counts.rx_bytes as f64 * 1000.0 / self.covered_ms as f64)
    }

    /// Average send rate over the covered time, bytes/s.
    pub fn tx_rate_avg(&self) -> Option<f64> {
        (self.covered_ms > 0).then(|| self.counts.tx_bytes as f64 * 1000.0 / self.covered_ms as f64)
    }
}

/// One traffic rollup row.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficRow {
    /// Interface name.
    pub iface: Arc<str>,
    /// Bucket length.
    pub resolution: Resolution,
    /// Bucket start, unix seconds.
    pub start: i64,
    /// Traffic in the bucket.
    pub stats: TrafficStats,
    /// False while the bucket may still change (it will be reported again).
    pub complete: bool,
}

#[derive(Debug, Default)]
struct Open {
    start: i64,
    stats: TrafficStats,
    dirty: bool,
}

#[derive(Debug, Default)]
struct Series {
    /// Second, minute, hour.
    open: [Option<Open>; 3],
    /// Unix second from which open minute/hour rows may be reported again.
    next_provisional: i64,
}

/// Seconds between provisional reports of an open minute or hour: their seconds are written as
/// they close, so a crash loses nothing, and hundreds of idle interfaces cost a few rows a
/// second instead of two each.
const PROVISIONAL_EVERY: i64 = 10;

/// Traffic rollups of every interface seen.
#[derive(Debug, Default)]
pub struct TrafficRollups {
    series: HashMap<Arc<str>, Series>,
    closed: Vec<TrafficRow>,
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl TrafficRollups {
    /// Nothing recorded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one tick of rates, read at wall time `at`.
    pub fn record(&mut self, at: SystemTime, rates: &[IfaceRate]) {
        let (sec, end_ms) = (unix_secs(at), unix_ms(at));
        for rate in rates.iter().filter(|r| r.delta.is_some()) {
            let series = match self.series.get_mut(&rate.name) {
                Some(s) => s,
                None => self.series.entry(Arc::clone(&rate.name)).or_default(),
            };
            // A tick in a later second closes the earlier one now, not at the next flush.
            close_until(&rate.name, series, sec, &mut self.closed);
            let open = series.open[0].get_or_insert_with(|| Open {
                start: sec,
                ..Open::default()
            });
            open.stats.record(rate, end_ms);
            open.dirty = true;
        }
    }

    /// Closes buckets that ended before wall time `now` (all of them when `finish`) and appends
    /// every row that changed since the last call: closed ones complete, open ones provisional.
    pub fn flush(&mut self, now: SystemTime, finish: bool, out: &mut Vec<TrafficRow>) {
        let now = if finish { i64::MAX } else { unix_secs(now) };
        for (name, series) in self.series.iter_mut() {
            close_until(name, series, now, &mut self.closed);
        }
        // Seconds without traffic are not written: the minute and hour they fold into keep the
        // time they cover.
        out.extend(self.closed.drain(..).filter(|r| {
            r.resolution != Resolution::Second || r.stats.counts != IfaceCounters::default()
        }));
        for (name, series) in self.series.iter_mut() {
            let coarse_due = now >= series.next_provisional;
            if coarse_due {
                series.next_provisional = now.saturating_add(PROVISIONAL_EVERY);
            }
            for (res, slot) in Resolution::ALL.iter().zip(series.open.iter_mut()) {
                let due = match res {
                    Resolution::Second => true,
                    _ => coarse_due,
                };
                if let Some(open) = slot.as_mut().filter(|o| o.dirty && due) {
                    if *res == Resolution::Second && open.stats.counts == IfaceCounters::default() {
                        continue;
                    }
                    open.dirty = false;
                    out.push(TrafficRow {
                        iface: Arc::clone(name),
                        resolution: *res,
                        start: open.start,
                        stats: open.stats.clone(),
                        complete: false,
                    });
                }
            }
        }
        self.series
            .retain(|_, s| s.open.iter().any(Option::is_some));
    }
}

/// Closes the buckets of `series` that end at or before unix second `now`, cascading each closed
/// bucket into the next resolution.
fn close_until(name: &Arc<str>, series: &mut Series, now: i64, out: &mut Vec<TrafficRow>) {
    for level in 0..3 {
        let res = Resolution::ALL[level];
        let ended = series.open[level]
            .as_ref()
            .is_some_and(|o| now == i64::MAX || o.start + res.seconds() <= now);
        if !ended {
            continue;
        }
        if let Some(done) = series.open[level].take() {
            close_into(name, res, done, series, level, out);
        }
    }
}

/// Emits the closed bucket `done` of `level` and merges it into the level above (closing that
/// one first if it is an older bucket).
fn close_into(
    name: &Arc<str>,
    res: Resolution,
    done: Open,
    series: &mut Series,
    level: usize,
    out: &mut Vec<TrafficRow>,
) {
    if level + 1 < 3 {
        let up = Resolution::ALL[level + 1];
        let start = up.bucket(done.start);
        if series.open[level + 1]
            .as_ref()
            .is_some_and(|o| o.start != start)
        {
            if let Some(stale) = series.open[level + 1].take() {
                close_into(name, up, stale, series, level + 1, out);
            }
        }
        let parent = series.open[level + 1].get_or_insert_with(|| Open {
            start,
            ..Open::default()
        });
        parent.stats.merge(&done.stats);
        parent.dirty = true;
    }
    out.push(TrafficRow {
        iface: Arc::clone(name),
        resolution: res,
        start: done.start,
        stats: done.stats,
        complete: true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iface::Continuity;
    use std::time::Duration;

    const T0: u64 = 1_700_000_000 - 1_700_000_000 % 3600;

    fn rate(name: &str, rx: u64, tx: u64, elapsed_ms: u64) -> IfaceRate {
        IfaceRate {
            index: 1,
            name: name.into(),
            totals: IfaceCounters::default(),
            delta: Some(IfaceCounters {
                rx_bytes: rx,
                tx_bytes: tx,
                rx_packets: 1,
                ..Default::default()
            }),
            elapsed: Duration::from_millis(elapsed_ms),
            continuity: Continuity::Continuing,
        }
    }

    fn at_ms(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(T0 * 1000 + ms)
    }

    fn complete(rows: &[TrafficRow], res: Resolution) -> Vec<&TrafficRow> {
        rows.iter()
            .filter(|r| r.resolution == res && r.complete)
            .collect()
    }

    #[test]
    fn two_hours_at_one_hertz_roll_up_exactly() {
        let mut r = TrafficRollups::new();
        let mut rows = Vec::new();
        for s in 0..7200u64 {
            // Ticks at .300 of each second; 1 000 B/s down, 100 B/s up, one burst of 10 kB.
            let rx = if s == 90 { 10_000 } else { 1_000 };
            r.record(at_ms(s * 1000 + 300), &[rate("eth0", rx, 100, 1000)]);
            r.flush(at_ms(s * 1000 + 800), false, &mut rows);
        }
        r.flush(at_ms(7_200_000), true, &mut rows);
        let secs = complete(&rows, Resolution::Second);
        assert_eq!(secs.len(), 7200);
        let mins = complete(&rows, Resolution::Minute);
        assert_eq!(mins.len(), 120);
        assert_eq!(mins[1].stats.counts.rx_bytes, 59 * 1000 + 10_000);
        assert_eq!(mins[1].stats.rx_rate_max, 10_000.0);
        assert_eq!(mins[0].stats.rx_rate_max, 1_000.0);
        let hours = complete(&rows, Resolution::Hour);
        assert_eq!(hours.len(), 2);
        assert_eq!(hours[0].start, T0 as i64);
        assert_eq!(hours[0].stats.counts.rx_bytes, 3599 * 1000 + 10_000);
        assert_eq!(hours[0].stats.counts.tx_bytes, 360_000);
        assert_eq!(hours[0].stats.covered_ms, 3_600_000);
        assert_eq!(hours[1].stats.tx_rate_avg(), Some(100.0));
        // The hour spans from the first delta's start to the last tick.
        assert_eq!(hours[0].stats.first_ms, (T0 * 1000) as i64 - 700);
        assert_eq!(hours[0].stats.last_ms, (T0 * 1000 + 3_599_300) as i64);
    }

    #[test]
    fn slow_polling_keeps_average_rates_exact() {
        let mut r = TrafficRollups::new();
        let mut rows = Vec::new();
        // One tick every 5 s with 5 000 B: the 1 s rows each hold 5 s of traffic.
        for k in 1..=24u64 {
            r.record(at_ms(k * 5000), &[rate("wan", 5_000, 0, 5000)]);
        }
        r.flush(at_ms(200_000), false, &mut rows);
        let mins = complete(&rows, Resolution::Minute);
        assert_eq!(mins.len(), 3, "ticks at 5…55 s, 60…115 s and 120 s");
        assert_eq!(mins[0].stats.counts.rx_bytes, 11 * 5_000);
        assert_eq!(mins[0].stats.rx_rate_avg(), Some(1_000.0));
        let secs = complete(&rows, Resolution::Second);
        assert!(secs.iter().all(|s| s.stats.rx_rate_avg() == Some(1_000.0)));
    }

    #[test]
    fn open_buckets_are_provisional_and_vanished_interfaces_are_forgotten() {
        let mut r = TrafficRollups::new();
        let mut rows = Vec::new();
        r.record(at_ms(100), &[rate("veth9", 10, 10, 1000)]);
        r.flush(at_ms(500), false, &mut rows);
        assert_eq!(rows.len(), 1, "the open second, provisional");
        assert!(!rows[0].complete);
        rows.clear();
        r.flush(at_ms(600), false, &mut rows);
        assert!(rows.is_empty(), "nothing changed");
        r.flush(at_ms(1000), false, &mut rows);
        let kinds: Vec<_> = rows.iter().map(|x| (x.resolution, x.complete)).collect();
        assert_eq!(kinds, [(Resolution::Second, true)]);
        rows.clear();
        // Open minutes and hours are reported at most every 10 s.
        r.flush(at_ms(9_000), false, &mut rows);
        assert!(rows.is_empty());
        r.flush(at_ms(10_000), false, &mut rows);
        let kinds: Vec<_> = rows.iter().map(|x| (x.resolution, x.complete)).collect();
        assert_eq!(
            kinds,
            [(Resolution::Minute, false)],
            "the hour fills as minutes close"
        );
        rows.clear();
        // The interface is gone; an hour later everything has closed and been forgotten.
        r.flush(at_ms(3_600_000), false, &mut rows);
        let closed: Vec<_> = rows.iter().map(|x| (x.resolution, x.complete)).collect();
        assert_eq!(
            closed,
            [(Resolution::Minute, true), (Resolution::Hour, true)]
        );
        assert_eq!(rows[1].stats.counts.rx_bytes, 10);
        assert!(r.series.is_empty());
    }

    #[test]
    fn idle_seconds_are_not_written_but_their_time_counts() {
        let mut r = TrafficRollups::new();
        let mut rows = Vec::new();
        for s in 0..60u64 {
            let mut tick = rate("idle0", 500, 0, 1000);
            if s != 30 {
                tick.delta = Some(IfaceCounters::default());
            }
            r.record(at_ms(s * 1000 + 100), &[tick]);
            r.flush(at_ms(s * 1000 + 200), false, &mut rows);
        }
        r.flush(at_ms(60_000), true, &mut rows);
        let secs = complete(&rows, Resolution::Second);
        assert_eq!(secs.len(), 1, "only the second with traffic");
        let mins = complete(&rows, Resolution::Minute);
        assert_eq!(mins[0].stats.covered_ms, 60_000);
        assert_eq!(mins[0].stats.counts.rx_bytes, 500);
    }

    #[test]
    fn ticks_without_a_delta_count_nothing() {
        let mut r = TrafficRollups::new();
        let mut first = rate("eth0", 0, 0, 0);
        first.delta = None;
        r.record(at_ms(0), &[first]);
        let mut rows = Vec::new();
        r.flush(at_ms(5000), true, &mut rows);
        assert!(rows.is_empty());
    }
}
