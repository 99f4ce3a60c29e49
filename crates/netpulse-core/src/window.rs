//! Periodic windows: what `--report-every` prints for each target (sent, received, loss, avg RTT,
//! and whether the target was down in the window, as the outage detector judges it).

use crate::outage::{OutageConfig, OutageDetector};
use crate::record::ProbeResult;
use crate::stats::ProbeStats;
use std::time::Duration;

/// Accumulates one target's probes for the current window.
#[derive(Debug, Clone)]
pub struct WindowStats {
    stats: ProbeStats,
    detector: OutageDetector,
    /// An outage went on at some time in this window.
    saw_outage: bool,
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
    /// Whether the target was down (an outage went on) at any time in the window.
    pub outage: bool,
}

impl WindowStats {
    /// Windows for a target probed every `interval`, outages judged by `outage`.
    pub fn new(outage: OutageConfig, interval: Duration) -> Self {
        Self {
            stats: ProbeStats::default(),
            detector: OutageDetector::new(outage, 1, interval),
            saw_outage: false,
        }
    }

    /// Counts one resolved probe.
    pub fn record(&mut self, result: &ProbeResult) {
        self.stats.record(result);
        let ended = self
            .detector
            .record(result.seq, result.sent_at, result.outcome.is_reply());
        self.saw_outage |= !ended.is_empty() || self.detector.in_outage();
    }

    /// Probes counted since the last [`WindowStats::take`].
    pub fn sent(&self) -> u64 {
        self.stats.sent
    }

    /// Closes the window and starts the next; an outage going on carries over.
    pub fn take(&mut self) -> WindowReport {
        let s = &self.stats;
        let report = WindowReport {
            sent: s.sent,
            received: s.received,
            loss: s.loss(),
            avg_rtt: s.rtt.mean(),
            outage: self.saw_outage || self.detector.in_outage(),
        };
        self.stats = ProbeStats::default();
        self.saw_outage = false;
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
            sent_at: UNIX_EPOCH + Duration::from_secs(seq),
            rtt: ok.then(|| Duration::from_millis(10 + seq % 3)),
            outcome: if ok { Outcome::Ok } else { Outcome::Timeout },
            detail: Detail::None,
            send_delay: std::time::Duration::ZERO,
            late: false,
        }
    }

    #[test]
    fn a_window_is_an_outage_when_the_target_was_down_in_it_not_when_it_lost_a_few() {
        let mut w = WindowStats::new(OutageConfig::default(), Duration::from_secs(1));
        let mut seq = 0;
        let mut feed = |w: &mut WindowStats, answered: &[bool]| {
            for &ok in answered {
                seq += 1;
                w.record(&result(seq, ok));
            }
        };
        // 4 of 10 lost, never 3 in a row: lossy, not down
        feed(
            &mut w,
            &[
                true, false, false, true, false, true, false, true, true, true,
            ],
        );
        let r = w.take();
        assert_eq!((r.sent, r.received), (10, 6));
        assert!((r.loss - 0.4).abs() < 1e-12);
        assert!(!r.outage);
        // two lost at the end of one window, one at the start of the next: 3 in a row
        feed(&mut w, &[true, true, false, false]);
        assert!(!w.take().outage, "2 in a row: not yet");
        feed(&mut w, &[false, false]);
        assert!(w.take().outage, "the run reached 3 in this window");
        feed(&mut w, &[false]);
        assert!(w.take().outage, "still down, carried over");
        feed(&mut w, &[true, true]);
        assert!(
            w.take().outage,
            "down until the first answer in this window"
        );
        let r = w.take();
        assert_eq!((r.sent, r.outage, r.avg_rtt), (0, false, None));
    }
}
