//! Latency statistics that are exact where ping is exact and mergeable everywhere, so per-second
//! figures roll up into minutes and hours without keeping samples.

use crate::record::{Outcome, ProbeResult};
use crate::sketch::LatencySketch;
use std::time::Duration;

/// Round-trip-time statistics: exact count/min/avg/max/mdev, histogram percentiles (≤ 1 % error).
#[derive(Debug, Clone)]
pub struct RttStats {
    count: u64,
    sum_ns: u128,
    sum_sq_ns: u128,
    min: Duration,
    max: Duration,
    hist: LatencySketch,
}

impl Default for RttStats {
    fn default() -> Self {
        Self {
            count: 0,
            sum_ns: 0,
            sum_sq_ns: 0,
            min: Duration::MAX,
            max: Duration::ZERO,
            hist: LatencySketch::default(),
        }
    }
}

/// A snapshot of [`RttStats`], every figure as a duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttSummary {
    /// Smallest RTT.
    pub min: Duration,
    /// Mean RTT.
    pub avg: Duration,
    /// Median (from the histogram).
    pub median: Duration,
    /// Largest RTT.
    pub max: Duration,
    /// Mean deviation as ping computes it: sqrt(mean(x²) − mean(x)²).
    pub mdev: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

/// The raw, mergeable parts of [`RttStats`], as they are stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RttParts {
    /// Samples.
    pub count: u64,
    /// Sum of samples, ns.
    pub sum_ns: u128,
    /// Sum of squared samples, ns².
    pub sum_sq_ns: u128,
    /// Smallest sample (meaningless when count is 0).
    pub min: Duration,
    /// Largest sample.
    pub max: Duration,
    /// The histogram.
    pub hist: LatencySketch,
}

impl RttStats {
    /// The raw parts, for storage.
    pub fn parts(&self) -> RttParts {
        RttParts {
            count: self.count,
            sum_ns: self.sum_ns,
            sum_sq_ns: self.sum_sq_ns,
            min: if self.count == 0 {
                Duration::ZERO
            } else {
                self.min
            },
            max: self.max,
            hist: self.hist.clone(),
        }
    }

    /// Rebuilds statistics from stored parts.
    pub fn from_parts(p: RttParts) -> Self {
        Self {
            count: p.count,
            sum_ns: p.sum_ns,
            sum_sq_ns: p.sum_sq_ns,
            min: if p.count == 0 { Duration::MAX } else { p.min },
            max: p.max,
            hist: p.hist,
        }
    }

    /// Smallest sample.
    pub fn min(&self) -> Option<Duration> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest sample.
    pub fn max(&self) -> Option<Duration> {
        (self.count > 0).then_some(self.max)
    }

    /// Adds one sample.
    pub fn record(&mut self, rtt: Duration) {
        let ns = rtt.as_nanos();
        self.count += 1;
        self.sum_ns += ns;
        self.sum_sq_ns += ns * ns;
        self.min = self.min.min(rtt);
        self.max = self.max.max(rtt);
        self.hist.record(u64::try_from(ns).unwrap_or(u64::MAX));
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean, if any sample was recorded.
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| ns_to_duration(self.sum_ns as f64 / self.count as f64))
    }

    /// Adds everything `other` saw, as if its samples had been recorded here.
    pub fn merge(&mut self, other: &RttStats) {
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.sum_sq_ns += other.sum_sq_ns;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.hist.merge(&other.hist);
    }

    /// The value at quantile `q` (0..=1), within 1 %.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let v = Duration::from_nanos(self.hist.quantile(q)?);
        // Within the exact extremes, when they are in order: figures read back from a damaged
        // row or blob may not be (`clamp` would panic on them).
        Some(if self.min <= self.max {
            v.clamp(self.min, self.max)
        } else {
            v
        })
    }

    /// All the figures at once, if any sample was recorded.
    pub fn summary(&self) -> Option<RttSummary> {
        if self.count == 0 {
            return None;
        }
        let n = self.count as f64;
        let mean = self.sum_ns as f64 / n;
        let var = (self.sum_sq_ns as f64 / n - mean * mean).max(0.0);
        Some(RttSummary {
            min: self.min,
            avg: ns_to_duration(mean),
            median: self.quantile(0.5)?,
            max: self.max,
            mdev: ns_to_duration(var.sqrt()),
            p95: self.quantile(0.95)?,
            p99: self.quantile(0.99)?,
        })
    }
}

fn ns_to_duration(ns: f64) -> Duration {
    Duration::from_nanos(ns.round().max(0.0) as u64)
}

/// Interarrival jitter as RFC 3550 §6.4.1 defines it, applied to round-trip times in arrival order:
/// J += (|D| − J) / 16, where D is the change in RTT between consecutive replies. Also keeps the
/// mean absolute change, which (unlike the running estimate) merges exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Jitter {
    last_rtt_ns: Option<f64>,
    estimate_ns: f64,
    sum_abs_delta_ns: f64,
    deltas: u64,
}

impl Jitter {
    /// Stored form: (RFC 3550 estimate ns, sum of |ΔRTT| ns, number of deltas).
    pub fn parts(&self) -> (f64, f64, u64) {
        (self.estimate_ns, self.sum_abs_delta_ns, self.deltas)
    }

    /// Rebuilds from [`Jitter::parts`] (the last RTT is not stored: a merge continues from it).
    pub fn from_parts(estimate_ns: f64, sum_abs_delta_ns: f64, deltas: u64) -> Self {
        Self {
            last_rtt_ns: None,
            estimate_ns,
            sum_abs_delta_ns,
            deltas,
        }
    }

    /// Where the stream stands (what [`Jitter::continuing`] keeps), in 16 bytes instead of 40.
    pub fn position(&self) -> JitterPosition {
        JitterPosition {
            last_rtt_ns: self.last_rtt_ns.unwrap_or(f64::NAN),
            estimate_ns: self.estimate_ns,
        }
    }

    /// A new period that continues this stream: same last RTT and running estimate, no deltas
    /// of its own yet (so per-period sums stay exact and the estimate stays continuous).
    pub fn continuing(&self) -> Jitter {
        self.position().continuing()
    }

    /// Feeds the RTT of the next reply to arrive.
    pub fn record(&mut self, rtt: Duration) {
        let r = rtt.as_nanos() as f64;
        if let Some(last) = self.last_rtt_ns {
            let d = (r - last).abs();
            self.estimate_ns += (d - self.estimate_ns) / 16.0;
            self.sum_abs_delta_ns += d;
            self.deltas += 1;
        }
        self.last_rtt_ns = Some(r);
    }

    /// The RFC 3550 running estimate; `None` before two replies.
    pub fn rfc3550(&self) -> Option<Duration> {
        (self.deltas > 0).then(|| ns_to_duration(self.estimate_ns))
    }

    /// Mean |ΔRTT| between consecutive replies; `None` before two replies.
    pub fn mean_abs_delta(&self) -> Option<Duration> {
        (self.deltas > 0).then(|| ns_to_duration(self.sum_abs_delta_ns / self.deltas as f64))
    }

    /// Merges a later period into this one: the running estimate continues from `later`'s,
    /// the mean absolute change is exact over both.
    pub fn merge(&mut self, later: &Jitter) {
        if later.deltas > 0 {
            self.estimate_ns = later.estimate_ns;
        }
        if later.last_rtt_ns.is_some() {
            self.last_rtt_ns = later.last_rtt_ns;
        }
        self.sum_abs_delta_ns += later.sum_abs_delta_ns;
        self.deltas += later.deltas;
    }
}

/// Everything known about one target's probes: counts by outcome, RTT statistics and jitter.
#[derive(Debug, Clone, Default)]
pub struct ProbeStats {
    /// Probes resolved (answered, timed out or failed).
    pub sent: u64,
    /// Replies (including refused connections: the host answered).
    pub received: u64,
    /// Of `received`, how many were "port closed".
    pub refused: u64,
    /// Probes that timed out.
    pub timeouts: u64,
    /// Probes answered by an ICMP error (unreachable, TTL exceeded).
    pub icmp_errors: u64,
    /// Probes that failed locally (send error).
    pub local_errors: u64,
    /// RTT of replies.
    pub rtt: RttStats,
    /// Jitter of replies.
    pub jitter: Jitter,
    /// Probes that left later than their schedule allows (the scheduler's own error).
    pub late_sends: u64,
    /// The latest any probe left after its nominal time.
    pub max_send_delay: Duration,
}

/// What counting needs of an [`Outcome`]: its kind, without an error's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutcomeKind {
    Ok,
    Refused,
    Timeout,
    IcmpError,
    LocalError,
}

impl OutcomeKind {
    pub(crate) fn of(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Ok => OutcomeKind::Ok,
            Outcome::Refused => OutcomeKind::Refused,
            Outcome::Timeout => OutcomeKind::Timeout,
            Outcome::Unreachable(_) => OutcomeKind::IcmpError,
            Outcome::Error(_) => OutcomeKind::LocalError,
        }
    }
}

impl ProbeStats {
    /// Counts one resolved probe.
    pub fn record(&mut self, result: &ProbeResult) {
        self.record_outcome(&result.outcome, result.rtt);
        self.late_sends += u64::from(result.late);
        self.max_send_delay = self.max_send_delay.max(result.send_delay);
    }

    /// Counts one resolved probe from its parts.
    pub fn record_outcome(&mut self, outcome: &Outcome, rtt: Option<Duration>) {
        self.record_kind(OutcomeKind::of(outcome), rtt);
    }

    /// Counts one resolved probe from its outcome's kind.
    pub(crate) fn record_kind(&mut self, kind: OutcomeKind, rtt: Option<Duration>) {
        self.sent += 1;
        match kind {
            OutcomeKind::Ok | OutcomeKind::Refused => {
                self.received += 1;
                if kind == OutcomeKind::Refused {
                    self.refused += 1;
                }
                if let Some(rtt) = rtt {
                    self.rtt.record(rtt);
                    self.jitter.record(rtt);
                }
            }
            OutcomeKind::Timeout => self.timeouts += 1,
            OutcomeKind::IcmpError => self.icmp_errors += 1,
            OutcomeKind::LocalError => self.local_errors += 1,
        }
    }

    /// Fraction of probes without a reply (0..=1); 0 when nothing was sent.
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            1.0 - self.received as f64 / self.sent as f64
        }
    }

    /// Adds a later period's counts.
    pub fn merge(&mut self, later: &ProbeStats) {
        self.sent += later.sent;
        self.received += later.received;
        self.refused += later.refused;
        self.timeouts += later.timeouts;
        self.icmp_errors += later.icmp_errors;
        self.local_errors += later.local_errors;
        self.rtt.merge(&later.rtt);
        self.jitter.merge(&later.jitter);
        self.late_sends += later.late_sends;
        self.max_send_delay = self.max_send_delay.max(later.max_send_delay);
    }
}

/// Where a jitter stream stands: its last RTT and running estimate (kept per open second of
/// every recorded target, so 16 bytes, the last RTT NaN before the first reply).
#[derive(Debug, Clone, Copy)]
pub struct JitterPosition {
    last_rtt_ns: f64,
    estimate_ns: f64,
}

impl Default for JitterPosition {
    fn default() -> Self {
        Jitter::default().position()
    }
}

impl JitterPosition {
    /// A new period continuing the stream from here ([`Jitter::continuing`]).
    pub fn continuing(&self) -> Jitter {
        Jitter {
            last_rtt_ns: (!self.last_rtt_ns.is_nan()).then_some(self.last_rtt_ns),
            estimate_ns: self.estimate_ns,
            sum_abs_delta_ns: 0.0,
            deltas: 0,
        }
    }
}

/// Why [`ProbeStats::from_bytes`] refused its input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt statistics blob: {0}")]
pub struct StatsDecodeError(&'static str);

impl From<crate::sketch::SketchDecodeError> for StatsDecodeError {
    fn from(_: crate::sketch::SketchDecodeError) -> Self {
        StatsDecodeError("its histogram or a number is damaged")
    }
}

impl ProbeStats {
    /// Every figure, exactly, in a few dozen bytes (varints, the jitter's floats raw, the
    /// histogram as [`LatencySketch::to_bytes`]): how a row waiting for its commit is held.
    pub fn to_bytes(&self) -> Vec<u8> {
        use crate::sketch::put_varint;
        let hist = self.rtt.hist.to_bytes();
        let mut out = Vec::with_capacity(48 + hist.len());
        for v in [
            self.sent,
            self.received,
            self.refused,
            self.timeouts,
            self.icmp_errors,
            self.local_errors,
            self.late_sends,
            self.rtt.count,
        ] {
            put_varint(&mut out, v);
        }
        for v in [
            self.rtt.sum_ns,
            self.rtt.sum_sq_ns,
            self.rtt.min.as_nanos(),
            self.rtt.max.as_nanos(),
            self.max_send_delay.as_nanos(),
        ] {
            put_varint(&mut out, v as u64);
            put_varint(&mut out, (v >> 64) as u64);
        }
        let j = &self.jitter;
        out.push(u8::from(j.last_rtt_ns.is_some()));
        for f in [
            j.last_rtt_ns.unwrap_or(0.0),
            j.estimate_ns,
            j.sum_abs_delta_ns,
        ] {
            out.extend_from_slice(&f.to_le_bytes());
        }
        put_varint(&mut out, j.deltas);
        out.extend_from_slice(&hist);
        out
    }

    /// Reads [`ProbeStats::to_bytes`]' output; never panics on bad input.
    pub fn from_bytes(mut b: &[u8]) -> Result<Self, StatsDecodeError> {
        use crate::sketch::get_varint;
        let b = &mut b;
        let mut counts = [0u64; 8];
        for c in &mut counts {
            *c = get_varint(b)?;
        }
        let mut wide = [0u128; 5];
        for w in &mut wide {
            *w = u128::from(get_varint(b)?) | u128::from(get_varint(b)?) << 64;
        }
        let duration = |ns: u128| -> Result<Duration, StatsDecodeError> {
            let secs = u64::try_from(ns / 1_000_000_000)
                .map_err(|_| StatsDecodeError("a duration out of range"))?;
            Ok(Duration::new(secs, (ns % 1_000_000_000) as u32))
        };
        let (&has_last, rest) = b.split_first().ok_or(StatsDecodeError("truncated"))?;
        *b = rest;
        let mut float = || -> Result<f64, StatsDecodeError> {
            let (bytes, rest) = b
                .split_first_chunk::<8>()
                .ok_or(StatsDecodeError("truncated"))?;
            *b = rest;
            Ok(f64::from_le_bytes(*bytes))
        };
        let (last, estimate_ns, sum_abs_delta_ns) = (float()?, float()?, float()?);
        let deltas = get_varint(b)?;
        let hist = LatencySketch::from_bytes(b)?;
        let [sent, received, refused, timeouts, icmp_errors, local_errors, late_sends, count] =
            counts;
        let [sum_ns, sum_sq_ns, min, max, max_send_delay] = wide;
        Ok(ProbeStats {
            sent,
            received,
            refused,
            timeouts,
            icmp_errors,
            local_errors,
            rtt: RttStats {
                count,
                sum_ns,
                sum_sq_ns,
                min: duration(min)?,
                max: duration(max)?,
                hist,
            },
            jitter: Jitter {
                last_rtt_ns: (has_last != 0).then_some(last),
                estimate_ns,
                sum_abs_delta_ns,
                deltas,
            },
            late_sends,
            max_send_delay: duration(max_send_delay)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(v: f64) -> Duration {
        Duration::from_secs_f64(v / 1000.0)
    }

    fn close(a: Duration, b: Duration, rel: f64) -> bool {
        let (a, b) = (a.as_secs_f64(), b.as_secs_f64());
        (a - b).abs() <= rel * b.abs().max(1e-12)
    }

    #[test]
    fn hand_computed_vector() {
        // RTTs 10, 20, 30, 40 ms: avg 25, mdev = sqrt((100+400+900+1600)/4 - 625) = sqrt(125)
        let mut s = RttStats::default();
        for v in [10.0, 20.0, 30.0, 40.0] {
            s.record(ms(v));
        }
        let sum = s.summary().expect("samples");
        assert_eq!(sum.min, ms(10.0));
        assert_eq!(sum.max, ms(40.0));
        assert_eq!(sum.avg, ms(25.0));
        assert!(close(sum.mdev, ms(125f64.sqrt()), 1e-9), "{:?}", sum.mdev);
        assert!(close(sum.median, ms(20.0), 0.01), "{:?}", sum.median);
        assert!(close(sum.p95, ms(40.0), 0.01), "{:?}", sum.p95);
        assert!(close(sum.p99, ms(40.0), 0.01), "{:?}", sum.p99);
    }

    #[test]
    fn percentiles_within_one_percent_on_1_to_1000() {
        let mut s = RttStats::default();
        for v in 1..=1000u64 {
            s.record(Duration::from_micros(v * 37));
        }
        for (q, exact) in [(0.5, 500u64), (0.95, 950), (0.99, 990)] {
            let got = s.quantile(q).expect("samples");
            assert!(
                close(got, Duration::from_micros(exact * 37), 0.01),
                "q{q}: {got:?}"
            );
        }
    }

    #[test]
    fn rfc3550_jitter_by_hand() {
        // RTTs 10, 12, 11, 15 ms: D = 2, 1, 4
        // J1 = 2/16 = 0.125; J2 = 0.125 + (1-0.125)/16 = 0.1796875; J3 = J2 + (4-J2)/16 = 0.418457...
        let mut j = Jitter::default();
        assert_eq!(j.rfc3550(), None);
        for v in [10.0, 12.0, 11.0, 15.0] {
            j.record(ms(v));
        }
        let j2 = 0.125 + (1.0 - 0.125) / 16.0;
        let j3 = j2 + (4.0 - j2) / 16.0;
        assert!(close(j.rfc3550().expect("two replies"), ms(j3), 1e-6));
        assert!(close(
            j.mean_abs_delta().expect("two replies"),
            ms(7.0 / 3.0),
            1e-6
        ));
    }

    #[test]
    fn counts_and_loss() {
        let mut p = ProbeStats::default();
        p.record_outcome(&Outcome::Ok, Some(ms(1.0)));
        p.record_outcome(&Outcome::Refused, Some(ms(2.0)));
        p.record_outcome(&Outcome::Timeout, None);
        p.record_outcome(&Outcome::Error("x".into()), None);
        assert_eq!(
            (p.sent, p.received, p.refused, p.timeouts, p.local_errors),
            (4, 2, 1, 1, 1)
        );
        assert!((p.loss() - 0.5).abs() < 1e-12);
        assert_eq!(p.rtt.count(), 2);
        assert_eq!(ProbeStats::default().loss(), 0.0);
    }

    #[test]
    fn damaged_extremes_give_figures_not_a_panic() {
        // min above max, or no count with a histogram: what a damaged row or blob can say.
        let mut hist = LatencySketch::default();
        hist.record(5_000_000);
        for (count, min, max) in [(1, ms(9.0), ms(1.0)), (0, Duration::ZERO, Duration::ZERO)] {
            let r = RttStats::from_parts(RttParts {
                count,
                sum_ns: 5_000_000,
                sum_sq_ns: 25_000_000_000_000,
                min,
                max,
                hist: hist.clone(),
            });
            assert!(r.quantile(0.5).is_some());
            let _ = r.summary();
        }
    }

    proptest! {
        #[test]
        fn statistics_bytes_round_trip_exactly(
            probes in proptest::collection::vec((0u8..6, 1u64..50_000_000_000, 0u64..9_000_000_000, any::<bool>()), 0..150)
        ) {
            let kinds = [OutcomeKind::Ok, OutcomeKind::Refused, OutcomeKind::Timeout,
                         OutcomeKind::IcmpError, OutcomeKind::LocalError, OutcomeKind::Ok];
            let mut s = ProbeStats::default();
            for (k, rtt, delay, late) in &probes {
                let kind = kinds[usize::from(*k)];
                let replied = matches!(kind, OutcomeKind::Ok | OutcomeKind::Refused);
                s.record_kind(kind, replied.then(|| Duration::from_nanos(*rtt)));
                s.late_sends += u64::from(*late);
                s.max_send_delay = s.max_send_delay.max(Duration::from_nanos(*delay));
            }
            let bytes = s.to_bytes();
            let back = ProbeStats::from_bytes(&bytes).expect("decodes");
            // Every field is in the encoding, so encoding the result again is the full check.
            prop_assert_eq!(back.to_bytes(), bytes);
            prop_assert_eq!(back.rtt.summary(), s.rtt.summary());
            prop_assert_eq!(back.jitter, s.jitter);
            prop_assert_eq!((back.sent, back.received, back.timeouts, back.late_sends, back.max_send_delay),
                            (s.sent, s.received, s.timeouts, s.late_sends, s.max_send_delay));
        }

        #[test]
        fn damaged_statistics_bytes_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = ProbeStats::from_bytes(&bytes);
        }

        #[test]
        fn merge_equals_union(a in proptest::collection::vec(1u64..5_000_000_000, 0..200),
                              b in proptest::collection::vec(1u64..5_000_000_000, 0..200)) {
            let mut left = RttStats::default();
            let mut right = RttStats::default();
            let mut all = RttStats::default();
            for v in &a { left.record(Duration::from_nanos(*v)); all.record(Duration::from_nanos(*v)); }
            for v in &b { right.record(Duration::from_nanos(*v)); all.record(Duration::from_nanos(*v)); }
            left.merge(&right);
            prop_assert_eq!(left.summary(), all.summary());
            let mut ja = Jitter::default();
            let mut jb = Jitter::default();
            for v in &a { ja.record(Duration::from_nanos(*v)); }
            for v in &b { jb.record(Duration::from_nanos(*v)); }
            let deltas = ja.deltas + jb.deltas;
            ja.merge(&jb);
            prop_assert_eq!(ja.deltas, deltas);
        }

        #[test]
        fn quantiles_within_one_percent(mut v in proptest::collection::vec(1_000u64..10_000_000_000, 1..500),
                                        q in 0.0f64..=1.0) {
            let mut s = RttStats::default();
            for x in &v { s.record(Duration::from_nanos(*x)); }
            v.sort_unstable();
            let got = s.quantile(q).expect("samples").as_nanos() as f64;
            // hdrhistogram's quantile picks the sample at rank ceil(q·n) (at least 1)
            let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
            let exact = v[rank - 1] as f64;
            prop_assert!((got - exact).abs() <= 0.01 * exact, "got {} exact {}", got, exact);
        }
    }
}
