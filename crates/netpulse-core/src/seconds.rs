//! Each target's per-second record: one dense ring of 20-byte seconds that the monitor's model
//! (its rule windows take seconds back out of it) and the live view (sparklines, the last
//! minute's figures) both read. Before there were two rings of the same seconds, 36 bytes a
//! second and target between them; with 10 000 targets that was 22 MB.
//!
//! The ring is dense: second `start + i` is entry `i`, quiet seconds are empty entries, so a
//! second is found without a search and a window's edge is one index.

use crate::duration::saturating_nanos;
use crate::record::ProbeResult;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Most a 48-bit RTT sum holds: 78 hours of RTT in one second of one target.
const SUM_MAX: u64 = (1 << 48) - 1;

/// One second of one target, 20 bytes. Counts are 16 bits (65 535 results in one second, 65
/// times the 1 ms probe rate) and the RTT sum 48 bits of ns; a result that would overflow
/// either is not counted in the second at all (so what a window adds is exactly what it takes
/// back), and [`SecondRing::record`] says so. Times in ms as f32 are exact to 0.1 µs at 10 ms;
/// NaN = no reply with an RTT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Second {
    sent: u16,
    received: u16,
    rtts: u16,
    sum_hi: u16,
    sum_lo: u32,
    min_ms: f32,
    max_ms: f32,
}

impl Default for Second {
    fn default() -> Self {
        Second {
            sent: 0,
            received: 0,
            rtts: 0,
            sum_hi: 0,
            sum_lo: 0,
            min_ms: f32::NAN,
            max_ms: f32::NAN,
        }
    }
}

impl Second {
    /// Probes resolved in it.
    pub fn sent(&self) -> u64 {
        u64::from(self.sent)
    }

    /// Of those, answered.
    pub fn received(&self) -> u64 {
        u64::from(self.received)
    }

    /// Answers with an RTT.
    pub fn rtts(&self) -> u64 {
        u64::from(self.rtts)
    }

    /// Sum of the RTTs, ns.
    pub fn rtt_sum_ns(&self) -> u64 {
        u64::from(self.sum_hi) << 32 | u64::from(self.sum_lo)
    }

    /// Fastest reply (ms).
    pub fn min_ms(&self) -> Option<f64> {
        (!self.min_ms.is_nan()).then_some(f64::from(self.min_ms))
    }

    /// Slowest reply (ms).
    pub fn max_ms(&self) -> Option<f64> {
        (!self.max_ms.is_nan()).then_some(f64::from(self.max_ms))
    }

    /// Mean reply (ms), rounded to the ns.
    pub fn avg_ms(&self) -> Option<f64> {
        (self.rtts > 0).then(|| {
            let ns = (self.rtt_sum_ns() as f64 / f64::from(self.rtts)).round();
            Duration::from_nanos(ns.max(0.0) as u64).as_secs_f64() * 1e3
        })
    }

    /// Counts `r`; false (and nothing counted) when the second is full.
    pub(crate) fn record(&mut self, r: &ProbeResult) -> bool {
        let reply = r.outcome.is_reply();
        let rtt_ns = r.rtt.filter(|_| reply).map(saturating_nanos);
        let sum = match rtt_ns {
            Some(ns) => match self.rtt_sum_ns().checked_add(ns) {
                Some(s) if s <= SUM_MAX => s,
                _ => return false,
            },
            None => self.rtt_sum_ns(),
        };
        if self.sent == u16::MAX || (rtt_ns.is_some() && self.rtts == u16::MAX) {
            return false;
        }
        self.sent += 1;
        if reply {
            self.received += 1;
        }
        if let Some(ns) = rtt_ns {
            self.rtts += 1;
            self.sum_hi = (sum >> 32) as u16;
            self.sum_lo = sum as u32;
            let ms = (Duration::from_nanos(ns).as_secs_f64() * 1e3) as f32;
            // f32::min/max take the number over NaN (none yet): the first RTT is both.
            self.min_ms = self.min_ms.min(ms);
            self.max_ms = self.max_ms.max(ms);
        }
        true
    }
}

/// A target's last seconds, oldest first, the newest being the one filling.
#[derive(Debug, Clone, Default)]
pub struct SecondRing {
    /// Unix second of `seconds[0]`.
    start: i64,
    seconds: VecDeque<Second>,
    /// Seconds kept.
    cap: usize,
}

impl SecondRing {
    /// A ring keeping `cap` seconds (at least one).
    pub fn new(cap: usize) -> Self {
        SecondRing {
            start: 0,
            seconds: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Seconds kept.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Keeps `cap` seconds from now on (at least one), dropping the oldest beyond.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
        self.trim();
        self.seconds.shrink_to(self.cap);
    }

    fn trim(&mut self) {
        while self.seconds.len() > self.cap {
            self.seconds.pop_front();
            self.start += 1;
        }
    }

    /// True before the first result.
    pub fn is_empty(&self) -> bool {
        self.seconds.is_empty()
    }

    /// Unix second of the oldest second kept.
    pub fn first_sec(&self) -> Option<i64> {
        (!self.seconds.is_empty()).then_some(self.start)
    }

    /// Unix second of the newest second (the one filling).
    pub fn last_sec(&self) -> Option<i64> {
        (!self.seconds.is_empty()).then(|| self.start + self.seconds.len() as i64 - 1)
    }

    /// Moves the ring on to second `sec` (quiet seconds in between become empty ones); a step
    /// back of the wall clock leaves the newest second filling.
    pub fn open(&mut self, sec: i64) {
        let Some(last) = self.last_sec() else {
            self.start = sec;
            self.seconds.reserve_exact(self.cap);
            self.seconds.push_back(Second::default());
            return;
        };
        if sec <= last {
            return;
        }
        if sec - last >= self.cap as i64 {
            self.seconds.clear();
            self.start = sec;
            self.seconds.push_back(Second::default());
            return;
        }
        for _ in last..sec {
            // Room first: a push into a full deque would double its allocation.
            if self.seconds.len() >= self.cap {
                self.seconds.pop_front();
                self.start += 1;
            }
            self.seconds.push_back(Second::default());
        }
    }

    /// Counts `r` in second `sec` (or the newest, if the clock stepped back); false when that
    /// second is full and `r` was not counted.
    pub fn record(&mut self, sec: i64, r: &ProbeResult) -> bool {
        self.open(sec);
        self.seconds.back_mut().is_some_and(|s| s.record(r))
    }

    /// Second `sec`, if kept.
    pub fn get(&self, sec: i64) -> Option<&Second> {
        let i = usize::try_from(sec.checked_sub(self.start)?).ok()?;
        self.seconds.get(i)
    }

    /// Every second kept with its unix second, oldest first (quiet ones included).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (i64, &Second)> + '_ {
        let start = self.start;
        self.seconds
            .iter()
            .enumerate()
            .map(move |(i, s)| (start + i as i64, s))
    }
}

/// Where the model finds each target's ring: the live view (the monitor), or a plain map
/// (tests, and whatever runs the model without views).
pub trait SecondRings {
    /// Target `id`'s ring, if it has one.
    fn ring(&self, id: usize) -> Option<&SecondRing>;
    /// Target `id`'s ring to write, if it has one.
    fn ring_mut(&mut self, id: usize) -> Option<&mut SecondRing>;
}

/// Rings in a map: one of `cap` seconds for every id written.
#[derive(Debug, Clone, Default)]
pub struct RingMap {
    /// Seconds each new ring keeps.
    pub cap: usize,
    /// The rings by id.
    pub rings: HashMap<usize, SecondRing>,
}

impl SecondRings for RingMap {
    fn ring(&self, id: usize) -> Option<&SecondRing> {
        self.rings.get(&id)
    }

    fn ring_mut(&mut self, id: usize) -> Option<&mut SecondRing> {
        let cap = self.cap;
        Some(self.rings.entry(id).or_insert_with(|| SecondRing::new(cap)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Outcome;
    use std::time::UNIX_EPOCH;

    fn reply(ms: f64) -> ProbeResult {
        ProbeResult {
            target: 0,
            seq: 1,
            sent_at: UNIX_EPOCH,
            rtt: Some(Duration::from_secs_f64(ms / 1e3)),
            outcome: Outcome::Ok,
            detail: crate::record::Detail::None,
            send_delay: Duration::ZERO,
            late: false,
        }
    }

    #[test]
    fn a_second_is_twenty_bytes() {
        assert_eq!(std::mem::size_of::<Second>(), 20);
    }

    #[test]
    fn seconds_are_dense_and_bounded() {
        let mut ring = SecondRing::new(4);
        assert!(ring.record(10, &reply(1.0)));
        assert!(ring.record(10, &reply(3.0)));
        assert!(ring.record(12, &reply(2.0)));
        let s = ring.get(10).expect("second 10");
        assert_eq!((s.sent(), s.received(), s.rtts()), (2, 2, 2));
        assert_eq!(s.rtt_sum_ns(), 4_000_000);
        assert_eq!(
            (s.min_ms(), s.avg_ms(), s.max_ms()),
            (Some(1.0), Some(2.0), Some(3.0))
        );
        assert_eq!(
            ring.get(11).map(Second::sent),
            Some(0),
            "a quiet second is kept, empty"
        );
        ring.open(14);
        assert_eq!((ring.first_sec(), ring.last_sec()), (Some(11), Some(14)));

        assert!(ring.get(10).is_none());
        // The clock stepping back counts in the newest second.
        assert!(ring.record(5, &reply(1.0)));
        assert_eq!(ring.get(14).map(Second::sent), Some(1));
        // A jump longer than the ring starts it again.
        ring.open(100);
        assert_eq!((ring.first_sec(), ring.last_sec()), (Some(100), Some(100)));
        for sec in 101..200 {
            ring.open(sec);
        }
        assert_eq!(
            ring.seconds.capacity(),
            4,
            "moving on never grows the allocation"
        );
    }

    #[test]
    fn a_full_second_counts_nothing_more() {
        let mut ring = SecondRing::new(2);
        for _ in 0..u16::MAX {
            assert!(ring.record(1, &reply(1.0)));
        }
        assert!(!ring.record(1, &reply(1.0)));
        let s = ring.get(1).expect("second 1");
        assert_eq!((s.sent(), s.rtts()), (65_535, 65_535));
        assert_eq!(s.rtt_sum_ns(), 65_535 * 1_000_000);
        // An RTT sum beyond 48 bits is refused whole.
        let mut ring = SecondRing::new(2);
        let long = ProbeResult {
            rtt: Some(Duration::from_secs(200_000)),
            ..reply(0.0)
        };
        assert!(ring.record(1, &long));
        assert!(!ring.record(1, &long));
        assert_eq!(ring.get(1).map(Second::sent), Some(1));
    }
}
