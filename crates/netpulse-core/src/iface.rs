//! Interface traffic: raw kernel counters in, rates out. Rates are counter deltas over the real
//! (monotonic) time between two readings of the same interface, and they never go negative or
//! spike: a counter that moved backwards is either a 32-bit wrap (counted across the wrap) or a
//! reset (that tick has no rate; the next one starts from the new baseline). Interfaces are
//! followed by kernel index, so a rename keeps its history and a re-created interface (new index,
//! counters from zero) starts afresh.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The counters the kernel keeps per interface (`rtnl_link_stats64`), all monotonic totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IfaceCounters {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Packets dropped on receive.
    pub rx_dropped: u64,
    /// Packets dropped on send.
    pub tx_dropped: u64,
    /// Multicast packets received.
    pub multicast: u64,
}

impl IfaceCounters {
    /// The counters as an array, in field order (for element-wise work).
    pub fn to_array(&self) -> [u64; 9] {
        [
            self.rx_bytes,
            self.tx_bytes,
            self.rx_packets,
            self.tx_packets,
            self.rx_errors,
            self.tx_errors,
            self.rx_dropped,
            self.tx_dropped,
            self.multicast,
        ]
    }

    /// The counters from an array in field order.
    pub fn from_array(a: [u64; 9]) -> Self {
        Self {
            rx_bytes: a[0],
            tx_bytes: a[1],
            rx_packets: a[2],
            tx_packets: a[3],
            rx_errors: a[4],
            tx_errors: a[5],
            rx_dropped: a[6],
            tx_dropped: a[7],
            multicast: a[8],
        }
    }

    /// Element-wise sum (saturating).
    pub fn add(&self, other: &IfaceCounters) -> IfaceCounters {
        let (a, b) = (self.to_array(), other.to_array());
        Self::from_array(std::array::from_fn(|i| a[i].saturating_add(b[i])))
    }
}

/// One reading of one interface's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceSample {
    /// Kernel interface index: stable across renames, new when an interface is re-created.
    pub index: u32,
    /// Name at the time of the reading.
    pub name: Arc<str>,
    /// The counters.
    pub counters: IfaceCounters,
}

/// How a reading relates to the previous reading of the same interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continuity {
    /// Seen for the first time (or again after it vanished): no rate yet.
    New,
    /// Followed on from the previous reading.
    Continuing,
    /// Counters went backwards (driver reset): no rate this tick, the next one starts afresh.
    Reset,
    /// Same interface under a new name; the rate continues.
    Renamed {
        /// The previous name.
        from: Arc<str>,
    },
}

impl Continuity {
    /// `new`, `reset`, `renamed`, or `None` for a plain continuation.
    pub fn event(&self) -> Option<&'static str> {
        match self {
            Continuity::New => Some("new"),
            Continuity::Continuing => None,
            Continuity::Reset => Some("reset"),
            Continuity::Renamed { .. } => Some("renamed"),
        }
    }
}

/// One interface at one tick: totals, and the change since its previous reading.
#[derive(Debug, Clone, PartialEq)]
pub struct IfaceRate {
    /// Kernel interface index.
    pub index: u32,
    /// Current name.
    pub name: Arc<str>,
    /// Counter totals now.
    pub totals: IfaceCounters,
    /// Counts since the previous reading (`None` when there is no usable previous reading).
    pub delta: Option<IfaceCounters>,
    /// Monotonic time since the previous reading (zero without one).
    pub elapsed: Duration,
    /// How this reading follows the previous one.
    pub continuity: Continuity,
}

impl IfaceRate {
    fn per_second(&self, pick: fn(&IfaceCounters) -> u64) -> Option<f64> {
        let secs = self.elapsed.as_secs_f64();
        self.delta
            .as_ref()
            .filter(|_| secs > 0.0)
            .map(|d| pick(d) as f64 / secs)
    }
    /// Bytes received per second.
    pub fn rx_bytes_per_sec(&self) -> Option<f64> {
        self.per_second(|c| c.rx_bytes)
    }
    /// Bytes sent per second.
    pub fn tx_bytes_per_sec(&self) -> Option<f64> {
        self.per_second(|c| c.tx_bytes)
    }
    /// Packets received per second.
    pub fn rx_packets_per_sec(&self) -> Option<f64> {
        self.per_second(|c| c.rx_packets)
    }
    /// Packets sent per second.
    pub fn tx_packets_per_sec(&self) -> Option<f64> {
        self.per_second(|c| c.tx_packets)
    }
    /// Errors (both ways) per second.
    pub fn errors_per_sec(&self) -> Option<f64> {
        self.per_second(|c| c.rx_errors + c.tx_errors)
    }
}

/// The change of one counter from `old` to `new`: `Some(delta)` for an increase or a plausible
/// 32-bit wrap (some drivers still keep 32-bit counters in the 64-bit fields), `None` for a
/// decrease that can only be a reset.
pub fn counter_delta(old: u64, new: u64) -> Option<u64> {
    if new >= old {
        return Some(new - old);
    }
    const WRAP: u64 = 1 << 32;
    if old < WRAP && new < WRAP {
        let wrapped = WRAP - old + new;
        // More than half the counter's range in one tick is not a wrap but a reset.
        if wrapped < WRAP / 2 {
            return Some(wrapped);
        }
    }
    None
}

/// Deltas of all counters, or `None` if the readings show a reset. A reset zeroes bytes and
/// packets together, a wrap hits one counter alone: so bytes and packets of one direction both
/// going backwards is a reset even when each alone would pass for a wrap.
pub fn counters_delta(old: &IfaceCounters, new: &IfaceCounters) -> Option<IfaceCounters> {
    let rx_back = new.rx_bytes < old.rx_bytes && new.rx_packets < old.rx_packets;
    let tx_back = new.tx_bytes < old.tx_bytes && new.tx_packets < old.tx_packets;
    if rx_back || tx_back {
        return None;
    }
    let (a, b) = (old.to_array(), new.to_array());
    let mut out = [0u64; 9];
    for i in 0..9 {
        out[i] = counter_delta(a[i], b[i])?;
    }
    Some(IfaceCounters::from_array(out))
}

#[derive(Debug, Clone)]
struct Last {
    name: Arc<str>,
    counters: IfaceCounters,
    at: Duration,
    seen_in: u64,
}

/// Turns successive readings of all interfaces into rates.
#[derive(Debug, Default)]
pub struct RateTracker {
    last: HashMap<u32, Last>,
    tick: u64,
}

impl RateTracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one reading of every interface present, made at monotonic time `now`; appends one
    /// rate per sample to `out` and the interfaces that disappeared since the previous reading
    /// (index, last name) to `gone`.
    pub fn update(
        &mut self,
        now: Duration,
        samples: &[IfaceSample],
        out: &mut Vec<IfaceRate>,
        gone: &mut Vec<(u32, Arc<str>)>,
    ) {
        self.tick += 1;
        for s in samples {
            let rate = match self.last.get_mut(&s.index) {
                None => {
                    self.last.insert(
                        s.index,
                        Last {
                            name: Arc::clone(&s.name),
                            counters: s.counters,
                            at: now,
                            seen_in: self.tick,
                        },
                    );
                    IfaceRate {
                        index: s.index,
                        name: Arc::clone(&s.name),
                        totals: s.counters,
                        delta: None,
                        elapsed: Duration::ZERO,
                        continuity: Continuity::New,
                    }
                }
                Some(last) => {
                    let elapsed = now.saturating_sub(last.at);
                    let delta = counters_delta(&last.counters, &s.counters);
                    let continuity = if delta.is_none() {
                        Continuity::Reset
                    } else if last.name != s.name {
                        Continuity::Renamed {
                            from: Arc::clone(&last.name),
                        }
                    } else {
                        Continuity::Continuing
                    };
                    if last.name != s.name {
                        last.name = Arc::clone(&s.name);
                    }
                    last.counters = s.counters;
                    last.at = now;
                    last.seen_in = self.tick;
                    IfaceRate {
                        index: s.index,
                        name: Arc::clone(&s.name),
                        totals: s.counters,
                        delta,
                        elapsed: if delta.is_some() {
                            elapsed
                        } else {
                            Duration::ZERO
                        },
                        continuity,
                    }
                }
            };
            out.push(rate);
        }
        let tick = self.tick;
        self.last.retain(|&index, last| {
            let present = last.seen_in == tick;
            if !present {
                gone.push((index, Arc::clone(&last.name)));
            }
            present
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(index: u32, name: &str, rx: u64, tx: u64) -> IfaceSample {
        IfaceSample {
            index,
            name: name.into(),
            counters: IfaceCounters {
                rx_bytes: rx,
                tx_bytes: tx,
                rx_packets: rx / 100,
                tx_packets: tx / 100,
                ..Default::default()
            },
        }
    }

    fn tick(
        t: &mut RateTracker,
        at_ms: u64,
        samples: &[IfaceSample],
    ) -> (Vec<IfaceRate>, Vec<(u32, Arc<str>)>) {
        let (mut out, mut gone) = (Vec::new(), Vec::new());
        t.update(Duration::from_millis(at_ms), samples, &mut out, &mut gone);
        (out, gone)
    }

    #[test]
    fn rate_is_delta_over_real_elapsed_time() {
        let mut t = RateTracker::new();
        let (r, _) = tick(&mut t, 0, &[sample(2, "eth0", 1_000, 500)]);
        assert_eq!(r[0].continuity, Continuity::New);
        assert_eq!(r[0].rx_bytes_per_sec(), None);
        // 1.25 s later (a late tick): 2 500 bytes → 2 000 B/s, not 2 500.
        let (r, _) = tick(&mut t, 1_250, &[sample(2, "eth0", 3_500, 1_750)]);
        assert_eq!(r[0].continuity, Continuity::Continuing);
        assert_eq!(r[0].delta.map(|d| d.rx_bytes), Some(2_500));
        assert_eq!(r[0].rx_bytes_per_sec(), Some(2_000.0));
        assert_eq!(r[0].tx_bytes_per_sec(), Some(1_000.0));
        assert_eq!(r[0].rx_packets_per_sec(), Some(20.0));
    }

    #[test]
    fn thirty_two_bit_wrap_is_counted_across_the_wrap() {
        assert_eq!(counter_delta(u32::MAX as u64 - 99, 400), Some(500));
        assert_eq!(counter_delta(10, 10), Some(0));
        // A 64-bit counter far beyond 2^32 going back is a reset, never a wrap.
        assert_eq!(counter_delta(1 << 40, 5), None);
        // More than half the 32-bit range "wrapped" in one tick is a reset.
        assert_eq!(counter_delta(1_000_000, 10), None);
        let mut t = RateTracker::new();
        let near = u32::MAX as u64 - 999;
        let mut a = sample(3, "wan", near, 0);
        a.counters.rx_packets = 7_000;
        tick(&mut t, 0, &[a]);
        let mut b = sample(3, "wan", 1_000, 0);
        b.counters.rx_packets = 7_020;
        let (r, _) = tick(&mut t, 1_000, &[b]);
        assert_eq!(r[0].continuity, Continuity::Continuing);
        assert_eq!(r[0].rx_bytes_per_sec(), Some(2_000.0));
    }

    #[test]
    fn reset_gives_no_rate_then_restarts_from_the_new_baseline() {
        let mut t = RateTracker::new();
        tick(&mut t, 0, &[sample(2, "eth0", 3_000_000, 9_000)]);
        // Bytes and packets both back near zero: a reset, even though 3 MB → 200 could pass
        // for a 32-bit wrap on its own.
        let (r, _) = tick(&mut t, 1_000, &[sample(2, "eth0", 200, 100)]);
        assert_eq!(r[0].continuity, Continuity::Reset);
        assert_eq!(r[0].delta, None);
        assert_eq!(r[0].rx_bytes_per_sec(), None);
        let (r, _) = tick(&mut t, 2_000, &[sample(2, "eth0", 1_200, 100)]);
        assert_eq!(r[0].continuity, Continuity::Continuing);
        assert_eq!(r[0].rx_bytes_per_sec(), Some(1_000.0));
    }

    #[test]
    fn vanished_interface_is_reported_gone_and_comes_back_as_new() {
        let mut t = RateTracker::new();
        tick(
            &mut t,
            0,
            &[
                sample(2, "eth0", 100, 100),
                sample(5, "veth0", 9_000, 9_000),
            ],
        );
        let (r, gone) = tick(&mut t, 1_000, &[sample(2, "eth0", 200, 200)]);
        assert_eq!(r.len(), 1);
        assert_eq!(gone, vec![(5, Arc::from("veth0"))]);
        // Re-created: new index, counters from zero; no negative or huge first rate.
        let (r, gone) = tick(
            &mut t,
            2_000,
            &[sample(2, "eth0", 300, 300), sample(6, "veth0", 50, 0)],
        );
        assert!(gone.is_empty());
        assert_eq!(r[1].continuity, Continuity::New);
        assert_eq!(r[1].rx_bytes_per_sec(), None);
        let (r, _) = tick(
            &mut t,
            3_000,
            &[sample(2, "eth0", 400, 400), sample(6, "veth0", 150, 0)],
        );
        assert_eq!(r[1].rx_bytes_per_sec(), Some(100.0));
    }

    #[test]
    fn rename_keeps_the_rate_going() {
        let mut t = RateTracker::new();
        tick(&mut t, 0, &[sample(4, "eth1", 100, 0)]);
        let (r, gone) = tick(&mut t, 500, &[sample(4, "uplink", 600, 0)]);
        assert!(gone.is_empty());
        assert_eq!(
            r[0].continuity,
            Continuity::Renamed {
                from: Arc::from("eth1")
            }
        );
        assert_eq!(&*r[0].name, "uplink");
        assert_eq!(r[0].rx_bytes_per_sec(), Some(1_000.0));
    }

    #[test]
    fn same_time_twice_gives_no_rate_rather_than_infinity() {
        let mut t = RateTracker::new();
        tick(&mut t, 1_000, &[sample(2, "eth0", 100, 0)]);
        let (r, _) = tick(&mut t, 1_000, &[sample(2, "eth0", 200, 0)]);
        assert_eq!(r[0].rx_bytes_per_sec(), None);
    }

    proptest::proptest! {
        /// Whatever the counters do, a rate is never negative, NaN or more than the
        /// counters could have moved.
        #[test]
        fn rates_are_never_negative_or_absurd(
            steps in proptest::collection::vec((0u64..u64::MAX, 0u64..u64::MAX, 1u64..5_000), 1..40)
        ) {
            let mut t = RateTracker::new();
            let mut now = 0;
            for (rx, tx, dt) in steps {
                now += dt;
                let (r, _) = tick(&mut t, now, &[sample(1, "x", rx, tx)]);
                for v in [r[0].rx_bytes_per_sec(), r[0].tx_bytes_per_sec()].into_iter().flatten() {
                    proptest::prop_assert!(v.is_finite() && v >= 0.0);
                }
                if let Some(d) = r[0].delta {
                    proptest::prop_assert!(d.rx_bytes <= rx.max(1 << 32));
                }
            }
        }
    }
}
