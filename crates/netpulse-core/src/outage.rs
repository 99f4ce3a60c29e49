//! Outage detection per target. An outage starts when loss over a sliding window (default 1 s)
//! exceeds a threshold (default 30 %), or when N probes in a row fail (default 5); it ends at the
//! first answered probe after which the window is healthy again. Probes are judged in *send*
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
    /// Failed probes in a row that start an outage whatever the window says (0 = off).
    pub consecutive: u32,
}

impl Default for OutageConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(1),
            loss_threshold: 0.30,
            consecutive: 5,
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

/// The outage state of one target.
#[derive(Debug, Clone)]
pub struct OutageDetector {
    cfg: OutageConfig,
    pending: BTreeMap<u64, (SystemTime, bool)>,
    next_seq: u64,
    /// The probes in the loss window: (send time as ns since the epoch, answered), 16 bytes
    /// each instead of 24 (a detector is kept per target).
    window: VecDeque<(u64, bool)>,
    window_failed: usize,
    run_start: Option<SystemTime>,
    run_len: u64,
    /// Boxed, with its recovery: rare, and one detector is kept per target (88 bytes less each).
    current: Option<Box<Ongoing>>,
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
    /// A detector for probes numbered from `first_seq`.
    pub fn new(cfg: OutageConfig, first_seq: u64) -> Self {
        Self {
            cfg,
            pending: BTreeMap::new(),
            next_seq: first_seq,
            window: VecDeque::new(),
            window_failed: 0,
            run_start: None,
            run_len: 0,
            current: None,
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
        let t_ns = crate::saturating_nanos(t.duration_since(UNIX_EPOCH).unwrap_or_default());
        self.window.push_back((t_ns, answered));
        if !answered {
            self.window_failed += 1;
        }
        let window_ns = crate::saturating_nanos(self.cfg.window);
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
        let loss = self.window_failed as f64 / self.window.len().max(1) as f64;
        if answered {
            self.run_start = None;
            self.run_len = 0;
        } else {
            self.run_start.get_or_insert(t);
            self.run_len += 1;
        }
        match &mut self.current {
            None => {
                let by_window = loss > self.cfg.loss_threshold;
                let by_run =
                    self.cfg.consecutive > 0 && self.run_len >= u64::from(self.cfg.consecutive);
                if !answered && (by_window || by_run) {
                    self.current = Some(Box::new(Ongoing {
                        outage: Outage {
                            start: self.run_start.unwrap_or(t),
                            end: t,
                            sent: self.run_len,
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
                if answered && loss <= self.cfg.loss_threshold {
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
        let mut det = OutageDetector::new(cfg, 1);
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
        // 3 lost in a row at 1 ms: below the run of 5 and far below 30 % of the window.
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
    fn one_lost_probe_per_second_link_is_an_outage_as_the_seed_counts_it() {
        let outs = simulate(OutageConfig::default(), ms(1000), ms(10_000), |t| {
            t == ms(5000)
        });
        assert_eq!(outs.len(), 1);
        assert_eq!(outs[0].duration(), ms(1000));
    }

    #[test]
    fn answers_out_of_order_are_judged_in_send_order() {
        let t0 = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut det = OutageDetector::new(OutageConfig::default(), 1);
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
