//! Outage detection per target. An outage is *down*, not *lossy*, and needs the same evidence at
//! every interval. It starts when
//! - a run of unanswered probes reaches [`OutageConfig::consecutive`] (3) plus one for each factor
//!   of ten the interval is faster than 1 s: 3 at 1 s, 4 at 100 ms, 5 at 10 ms, 6 at 1 ms. Random
//!   loss at rate p makes such a run by chance about (1/interval)·pⁿ times a second, so this keeps
//!   that rate the same at every interval (on a 1 %-loss link: once in ~12 days; at 10 %: a few
//!   times an hour); or
//! - loss over the sliding window (1 s) exceeds the threshold (30 %) *and* the window holds at
//!   least [`OutageConfig::min_probes`] (100) probes: a loss fraction of a handful of probes is
//!   not evidence, so at the default window this rule needs an interval of 10 ms or less.
//!
//! It ends at the first answered probe after which the window is healthy again. Probes are judged in *send*
//! order (answers arrive out of order: a reply overtakes an earlier probe's timeout), so a short
//! reorder buffer sits in front. Times are send times: an outage runs from the first probe that
//! went unanswered to the first that was answered again.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When a target counts as down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutageConfig {
    /// Length of the sliding loss window.
    pub window: Duration,
    /// Loss fraction in the window above which an outage starts.
    pub loss_threshold: f64,
    /// Failed probes in a row that start an outage at a 1 s interval, whatever the window says;
    /// one more per factor of ten faster (0 = off).
    pub consecutive: u32,
    /// Probes the window must hold before its loss counts.
    pub min_probes: u32,
}

impl OutageConfig {
    /// Failed probes in a row that start an outage for a target probed every `interval`:
    /// [`Self::consecutive`] plus one per factor of ten the interval is faster than 1 s (nearest),
    /// or 0 when the run rule is off.
    pub fn run_needed(&self, interval: Duration) -> u32 {
        if self.consecutive == 0 {
            return 0;
        }
        let per_second = 1.0 / interval.as_secs_f64().max(1e-6);
        let extra = per_second.log10().round().max(0.0) as u32;
        self.consecutive.saturating_add(extra)
    }
}

impl Default for OutageConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(1),
            loss_threshold: 0.30,
            consecutive: 3,
            min_probes: 100,
        }
    }
}

/// One outage.
#[derive(Debug, Clone, PartialEq)]
pub struct Outage {
    /// Send time of the first unanswered probe.
    pub start: SystemTime,
    /// Send time of the first answered probe after it (or the stop time, if `ongoing`).
    pub end: SystemTime,
    /// Probes sent during the outage.
    pub sent: u64,
    /// Of those, answered.
    pub received: u64,
    /// True when the run stopped during the outage.
    pub ongoing: bool,
}

impl Outage {
    /// How long it lasted.
    pub fn duration(&self) -> Duration {
        self.end.duration_since(self.start).unwrap_or_default()
    }

    /// Loss fraction during the outage.
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            1.0 - self.received as f64 / self.sent as f64
        }
    }
}

/// Most probes held back waiting for an earlier one; past this the gap is skipped.
const MAX_REORDER: usize = 1 << 16;

/// The outage state of one target. One is kept per target: 104 bytes, its settings and run
/// kept compact (not a copy of the whole [`OutageConfig`], times as ns).
#[derive(Debug, Clone)]
pub struct OutageDetector {
    pending: BTreeMap<u64, (SystemTime, bool)>,
    next_seq: u64,
    /// The probes in the loss window: (send time as ns since the epoch, answered), 16 bytes
    /// each instead of 24.
    window: VecDeque<(u64, bool)>,
    /// The window's length, ns.
    window_ns: u64,
    /// Send time (ns since the epoch) of the first probe of the current run of failures;
    /// [`NO_RUN`]: none.
    run_start_ns: u64,
    /// Boxed, with its recovery: rare (88 bytes less each).
    current: Option<Box<Ongoing>>,
    window_failed: u32,
    run_len: u32,
    loss_threshold: f32,
    min_probes: u16,
    /// Failed probes in a row that start an outage (0: off), from the target's interval.
    run_needed: u16,
}

/// `run_start_ns` when no run of failures is going on.
const NO_RUN: u64 = u64::MAX;

fn to_ns(t: SystemTime) -> u64 {
    crate::saturating_nanos(t.duration_since(UNIX_EPOCH).unwrap_or_default())
}

fn from_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// An outage going on.
#[derive(Debug, Clone)]
struct Ongoing {
    outage: Outage,
    /// Where the current run of answered probes began (time, and the outage's sent/received
    /// before it) — the outage's end if the window stays healthy from there on.
    recovery: Option<(SystemTime, u64, u64)>,
}

impl OutageDetector {
    /// A detector for probes numbered from `first_seq`, sent every `interval`.
    pub fn new(cfg: OutageConfig, first_seq: u64, interval: Duration) -> Self {
        Self::with_run_needed(cfg, first_seq, cfg.run_needed(interval))
    }

    /// [`OutageDetector::new`] with the run of failures that starts an outage given (see
    /// [`OutageConfig::run_needed`]): a caller keeping thousands of targets keeps that, not
    /// their intervals.
    pub fn with_run_needed(cfg: OutageConfig, first_seq: u64, run_needed: u32) -> Self {
        Self {
            pending: BTreeMap::new(),
            next_seq: first_seq,
            window: VecDeque::new(),
            window_ns: crate::saturating_nanos(cfg.window),
            run_start_ns: NO_RUN,
            current: None,
            window_failed: 0,
            run_len: 0,
            loss_threshold: cfg.loss_threshold as f32,
            min_probes: cfg.min_probes.min(u32::from(u16::MAX)) as u16,
            run_needed: run_needed.min(u32::from(u16::MAX)) as u16,
        }
    }

    /// A new detector with this one's settings, for probes numbered from `first_seq`.
    pub fn restarted(&self, first_seq: u64) -> Self {
        Self {
            pending: BTreeMap::new(),
            next_seq: first_seq,
            window: VecDeque::new(),
            window_ns: self.window_ns,
            run_start_ns: NO_RUN,
            current: None,
            window_failed: 0,
            run_len: 0,
            loss_threshold: self.loss_threshold,
            min_probes: self.min_probes,
            run_needed: self.run_needed,
        }
    }

    /// True while an outage is going on.
    pub fn in_outage(&self) -> bool {
        self.current.is_some()
    }

    /// Start of the outage going on, if any.
    pub fn current_start(&self) -> Option<SystemTime> {
        self.current.as_ref().map(|o| o.outage.start)
    }

    /// The outage going on, as far as it got: its probes sent and answered so far.
    pub fn current(&self) -> Option<&Outage> {
        self.current.as_ref().map(|o| &o.outage)
    }

    /// Feeds probe `seq` (sent at `sent_at`, answered or not); returns outages that ended.
    pub fn record(&mut self, seq: u64, sent_at: SystemTime, answered: bool) -> Vec<Outage> {
        let mut ended = Vec::new();
        if seq < self.next_seq {
            return ended; // a duplicate
        }
        if seq == self.next_seq && self.pending.is_empty() {
            // In order, as nearly every probe is: judged at once, no reorder map touched.
            self.next_seq = seq + 1;
            if let Some(o) = self.judge(sent_at, answered) {
                ended.push(o);
            }
            return ended;
        }
        self.pending.insert(seq, (sent_at, answered));
        loop {
            let next = match self.pending.first_key_value() {
                Some((&s, _)) if s == self.next_seq => s,
                Some((&s, _)) if self.pending.len() > MAX_REORDER => s,
                _ => break,
            };
            if let Some((t, ok)) = self.pending.remove(&next) {
                self.next_seq = next + 1;
                if let Some(o) = self.judge(t, ok) {
                    ended.push(o);
                }
            }
        }
        ended
    }

    /// Judges everything still held back, and closes an outage going on at `at` (marked ongoing).
    pub fn finish(&mut self, at: SystemTime) -> Vec<Outage> {
        let mut ended = Vec::new();
        while let Some((_, (t, ok))) = self.pending.pop_first() {
            if let Some(o) = self.judge(t, ok) {
                ended.push(o);
            }
        }
        if let Some(ongoing) = self.current.take() {
            let mut o = ongoing.outage;
            o.end = at.max(o.start);
            o.ongoing = true;
            ended.push(o);
        }
        ended
    }

    fn judge(&mut self, t: SystemTime, answered: bool) -> Option<Outage> {
        let t_ns = to_ns(t);
        self.window.push_back((t_ns, answered));
        if !answered {
            self.window_failed += 1;
        }
        let window_ns = self.window_ns;
        while let Some(&(old, ok)) = self.window.front() {
            // Half-open window (t − window, t]
            if t_ns.saturating_sub(old) < window_ns {
                break;
            }
            self.window.pop_front();
            if !ok {
                self.window_failed -= 1;
            }
        }
        // Too few probes in the window: its loss is no evidence either way.
        let window_counts = self.window.len() >= usize::from(self.min_probes.max(1));
        let window_bad = window_counts
            && f64::from(self.window_failed) / self.window.len() as f64
                > f64::from(self.loss_threshold);
        if answered {
            self.run_start_ns = NO_RUN;
            self.run_len = 0;
        } else {
            if self.run_start_ns == NO_RUN {
                self.run_start_ns = t_ns;
            }
            self.run_len = self.run_len.saturating_add(1);
        }
        match &mut self.current {
            None => {
                let by_run = self.run_needed > 0 && self.run_len >= u32::from(self.run_needed);
                if !answered && (window_bad || by_run) {
                    let start = if self.run_start_ns == NO_RUN {
                        t
                    } else {
                        from_ns(self.run_start_ns)
                    };
                    self.current = Some(Box::new(Ongoing {
                        outage: Outage {
                            start,
                            end: t,
                            sent: u64::from(self.run_len),
                            received: 0,
                            ongoing: false,
                        },
                        recovery: None,
                    }));
                }
                None
            }
            Some(ongoing) => {
                let o = &mut ongoing.outage;
                if answered && ongoing.recovery.is_none() {
                    ongoing.recovery = Some((t, o.sent, o.received));
                } else if !answered {
                    ongoing.recovery = None;
                }
                if answered && !window_bad {
                    let ended = *self.current.take()?;
                    let mut o = ended.outage;
                    if let Some((at, sent, received)) = ended.recovery {
                        (o.end, o.sent, o.received) = (at, sent, received);
                    }
                    return Some(o);
                }
                o.sent += 1;
                if answered {
                    o.received += 1;
                }
                o.end = t;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FakeClock};

    /// Probes every `interval` on a fake clock; `down(t)` says whether the link is down at t.
    fn simulate(
        cfg: OutageConfig,
        interval: Duration,
        total: Duration,
        down: impl Fn(Duration) -> bool,
    ) -> Vec<Outage> {
        let clock = FakeClock::new(1_700_000_000);
        let mut det = OutageDetector::new(cfg, 1, interval);
        let mut out = Vec::new();
        let mut seq = 1;
        while clock.monotonic() < total {
            out.extend(det.record(seq, clock.wall(), !down(clock.monotonic())));
            seq += 1;
            clock.advance(interval);
        }
        out.extend(det.finish(clock.wall()));
        out
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_50ms_blackout_at_1ms_is_found_and_timed() {
        let outs = simulate(OutageConfig::default(), ms(1), ms(3000), |t| {
            (ms(1000)..ms(1050)).contains(&t)
        });
        assert_eq!(outs.len(), 1, "{outs:?}");
        let o = &outs[0];
        let d = o.duration().as_secs_f64() * 1000.0;
        assert!((d - 50.0).abs() <= 5.0, "duration {d} ms");
        assert_eq!((o.sent, o.received, o.ongoing), (50, 0, false));
        assert!((o.loss() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn short_glitches_are_not_outages() {
        // 3 lost in a row at 1 ms: below the run of 6 and far below 30 % of the window.
        let outs = simulate(OutageConfig::default(), ms(1), ms(2000), |t| {
            (ms(500)..ms(503)).contains(&t)
        });
        assert!(outs.is_empty(), "{outs:?}");
    }

    #[test]
    fn flapping_link_yields_one_outage_per_bad_stretch() {
        // down 200 ms, up 800 ms, three times
        let outs = simulate(OutageConfig::default(), ms(10), ms(3000), |t| {
            t.as_millis() % 1000 < 200
        });
        assert_eq!(outs.len(), 3, "{outs:?}");
        for o in &outs {
            let d = o.duration().as_millis();
            assert!((195..=215).contains(&d), "{d} ms");
        }
    }

    #[test]
    fn window_rule_fires_on_heavy_random_like_loss() {
        // every other probe lost (50 %): no run of 5, but the window is above 30 %
        let outs = simulate(OutageConfig::default(), ms(10), ms(3000), |t| {
            (ms(1000)..ms(2000)).contains(&t) && (t.as_millis() / 10) % 2 == 0
        });
        assert_eq!(outs.len(), 1, "{outs:?}");
        assert!(
            outs[0].received > 0 && outs[0].loss() > 0.3,
            "{:?}",
            outs[0]
        );
    }

    #[test]
    fn trailing_outage_is_closed_at_shutdown() {
        let outs = simulate(OutageConfig::default(), ms(100), ms(5000), |t| {
            t >= ms(4000)
        });
        assert_eq!(outs.len(), 1);
        assert!(outs[0].ongoing);
        assert_eq!(outs[0].duration(), ms(1000));
    }

    #[test]
    fn a_detector_is_small() {
        // One is kept per target: 10 000 targets, 1 MB.
        assert!(std::mem::size_of::<OutageDetector>() <= 104);
    }

    #[test]
    fn run_needed_grows_by_one_per_factor_of_ten_in_rate() {
        let cfg = OutageConfig::default();
        let needed = |i| cfg.run_needed(i);
        assert_eq!(
            [ms(10_000), ms(1000), ms(500), ms(100), ms(10), ms(1)].map(needed),
            [3, 3, 3, 4, 5, 6]
        );
        let off = OutageConfig {
            consecutive: 0,
            ..cfg
        };
        assert_eq!(off.run_needed(ms(1)), 0);
    }

    #[test]
    fn one_or_two_lost_probes_at_1s_are_loss_three_in_a_row_an_outage() {
        let lost_at =
            |from: u64, n: u64| move |t: Duration| (ms(from)..ms(from + n * 1000)).contains(&t);
        let cfg = OutageConfig::default();
        assert!(simulate(cfg, ms(1000), ms(20_000), lost_at(5000, 1)).is_empty());
        assert!(simulate(cfg, ms(1000), ms(20_000), lost_at(5000, 2)).is_empty());
        let outs = simulate(cfg, ms(1000), ms(20_000), lost_at(5000, 3));
        assert_eq!(outs.len(), 1, "{outs:?}");
        assert_eq!(
            (outs[0].start, outs[0].duration()),
            (t0() + ms(5000), ms(3000))
        );
    }

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    /// A deterministic stand-in for random loss: the same sequence every run.
    fn lossy(rate: f64) -> impl FnMut() -> bool {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64 <= rate
        }
    }

    /// Outages found over `total` of 10 % random loss with a real `blackout` in the middle.
    fn random_loss_with_blackout(
        interval: Duration,
        total: Duration,
        blackout: Duration,
    ) -> Vec<Outage> {
        let mut lose = lossy(0.10);
        let from = total / 2;
        let lost = std::cell::RefCell::new(move |t: Duration| {
            (from..from + blackout).contains(&t) || lose()
        });
        simulate(OutageConfig::default(), interval, total, |t| {
            (lost.borrow_mut())(t)
        })
    }

    #[test]
    fn ten_percent_random_loss_is_not_a_stream_of_outages_at_any_interval_but_a_blackout_is_one() {
        // Expected by chance: ~3 an hour at every interval (0.9 · 0.1ⁿ per probe). One outage per
        // lost probe, as before, would be ~360 an hour at 1 s and thousands at 100 ms.
        for (interval, total, blackout) in [
            (ms(1000), ms(3_600_000), ms(4000)),
            (ms(100), ms(3_600_000), ms(500)),
            (ms(1), ms(600_000), ms(20)),
        ] {
            let outs = random_loss_with_blackout(interval, total, blackout);
            assert!(
                (1..=10).contains(&outs.len()),
                "{} outages at {interval:?}",
                outs.len()
            );
            let mid = t0() + total / 2;
            let found = outs
                .iter()
                .find(|o| o.start <= mid + interval && o.end >= mid + blackout)
                .unwrap_or_else(|| panic!("the {blackout:?} blackout at {interval:?}: {outs:?}"));
            assert!(found.duration() >= blackout, "{found:?}");
        }
    }

    #[test]
    fn answers_out_of_order_are_judged_in_send_order() {
        let t0 = t0();
        let mut det = OutageDetector::new(OutageConfig::default(), 1, ms(10));
        let mut ended = Vec::new();
        // probes 1..=10 lost (their timeouts arrive late), 11.. answered — answers arrive first
        for seq in 11..=60u64 {
            ended.extend(det.record(seq, t0 + ms(seq * 10), true));
        }
        assert!(
            ended.is_empty() && !det.in_outage(),
            "held back until 1..=10 resolve"
        );
        for seq in 1..=10u64 {
            ended.extend(det.record(seq, t0 + ms(seq * 10), false));
        }
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].start, t0 + ms(10));
        assert_eq!(ended[0].end, t0 + ms(110));
    }
}
