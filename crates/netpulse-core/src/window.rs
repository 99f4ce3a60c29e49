//! Periodic windows: what `--report-every` prints for each target (sent, received, loss, avg RTT,
//! and whether the window counts as an outage).

use crate::record::ProbeResult;
use crate::stats::ProbeStats;
use std::time::Duration;

/// Loss fraction above which a window counts as an outage (the default of the outage detector).
pub const DEFAULT_OUTAGE_LOSS: f64 = 0.30;

/// Accumulates one target's probes for the current window.
#[derive(Debug, Clone, Default)]
pub struct WindowStats {
    stats: ProbeStats,
    consecutive_failures: u32,
    max_consecutive_failures: u32,
}

/// The figures of one closed window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowReport {
    /// Probes resolved in the window.
    pub sent: u64,
    /// Replies in the window.
    pub received: u64,
    /// Loss fraction (0..=1).
    pub loss: f64,
    /// Mean RTT of the replies.
    pub avg_rtt: Option<Duration>,
    /// Whether the window was an outage: loss above the threshold, or `consecutive` probes in a
    /// row failed.
    pub outage: bool,
}

impl WindowStats {
    /// Counts one resolved probe.
    pub fn record(&mut self, result: &ProbeResult) {
        self.stats.record(result);
        if result.outcome.is_reply() {
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures += 1;
            self.max_consecutive_failures =
                self.max_consecutive_failures.max(self.consecutive_failures);
        }
    }

    /// Probes counted since the last [`WindowStats::take`].
    pub fn sent(&self) -> u64 {
        self.stats.sent
    }

    /// Closes the window and starts the next; a run of failures carries over.
    pub fn take(&mut self, loss_threshold: f64, consecutive: u32) -> WindowReport {
        let s = &self.stats;
        let loss = s.loss();
        let report = WindowReport {
            sent: s.sent,
            received: s.received,
            loss,
            avg_rtt: s.rtt.mean(),
            outage: (s.sent > 0 && loss > loss_threshold)
                || (consecutive > 0 && self.max_consecutive_failures >= consecutive),
        };
        let carry = self.consecutive_failures;
        *self = WindowStats {
            consecutive_failures: carry,
            max_consecutive_failures: carry,
            ..Default::default()
        };
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Detail, Outcome};
    use std::time::UNIX_EPOCH;

    fn result(seq: u64, ok: bool) -> ProbeResult {
        ProbeResult {
            target: 0,
            seq,
            sent_at: UNIX_EPOCH,
            rtt: ok.then(|| Duration::from_millis(10 + seq % 3)),
            outcome: if ok { Outcome::Ok } else { Outcome::Timeout },
            detail: Detail::None,
            send_delay: std::time::Duration::ZERO,
            late: false,
        }
    }

    #[test]
    fn loss_threshold_and_runs() {
        let mut w = WindowStats::default();
        for i in 0..10 {
            w.record(&result(i, i % 5 != 0)); // 2 of 10 lost
        }
        let r = w.take(DEFAULT_OUTAGE_LOSS, 5);
        assert_eq!((r.sent, r.received), (10, 8));
        assert!((r.loss - 0.2).abs() < 1e-12);
        assert!(!r.outage);
        for i in 0..10 {
            w.record(&result(i, i < 6)); // 4 of 10 lost, in a row
        }
        let r = w.take(DEFAULT_OUTAGE_LOSS, 5);
        assert!(r.outage, "40 % loss is above 30 %");
        // 4 failures carried over + 1 more = 5 in a row, though this window's loss is 10 %
        w.record(&result(0, false));
        for i in 1..10 {
            w.record(&result(i, true));
        }
        let r = w.take(0.5, 5);
        assert!(r.outage);
        let r = w.take(0.5, 5);
        assert_eq!((r.sent, r.outage, r.avg_rtt), (0, false, None));
    }
}
