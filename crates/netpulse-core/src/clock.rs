//! The time seam: logic receives timestamps; only sources read a real clock.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of time: a monotonic reading (for intervals) and a wall-clock reading (for humans).
pub trait Clock {
    /// Monotonic time since an arbitrary fixed origin.
    fn monotonic(&self) -> Duration;
    /// Wall-clock time.
    fn wall(&self) -> SystemTime;
}

/// The real clocks of the machine.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: std::time::Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to, for tests.
#[derive(Debug)]
pub struct FakeClock {
    mono: Cell<Duration>,
    wall_origin: SystemTime,
}

impl FakeClock {
    /// A fake clock at monotonic zero whose wall clock starts at `wall_origin_secs` after the epoch.
    pub fn new(wall_origin_secs: u64) -> Self {
        Self {
            mono: Cell::new(Duration::ZERO),
            wall_origin: UNIX_EPOCH + Duration::from_secs(wall_origin_secs),
        }
    }
    /// Moves both clocks forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.mono.set(self.mono.get() + by);
    }
}

impl Clock for FakeClock {
    fn monotonic(&self) -> Duration {
        self.mono.get()
    }
    fn wall(&self) -> SystemTime {
        self.wall_origin + self.mono.get()
    }
}

/// A fake clock that other threads may read (a recorder thread under test): moves only when
/// told to, like [`FakeClock`].
#[derive(Debug)]
pub struct SharedFakeClock {
    mono_ns: std::sync::atomic::AtomicU64,
    wall_origin: SystemTime,
}

impl SharedFakeClock {
    /// At monotonic zero, its wall clock `wall_origin_secs` after the epoch.
    pub fn new(wall_origin_secs: u64) -> Self {
        Self {
            mono_ns: std::sync::atomic::AtomicU64::new(0),
            wall_origin: UNIX_EPOCH + Duration::from_secs(wall_origin_secs),
        }
    }

    /// Moves both clocks forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ns = crate::duration::saturating_nanos(by);
        self.mono_ns
            .fetch_add(ns, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for SharedFakeClock {
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.mono_ns.load(std::sync::atomic::Ordering::SeqCst))
    }
    fn wall(&self) -> SystemTime {
        self.wall_origin + self.monotonic()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_advanced() {
        let c = FakeClock::new(1_700_000_000);
        assert_eq!(c.monotonic(), Duration::ZERO);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.monotonic(), Duration::from_millis(1500));
        assert_eq!(
            c.wall().duration_since(UNIX_EPOCH).ok(),
            Some(Duration::from_millis(1_700_000_001_500))
        );
    }
}
