//! What the live views show (terminal UI, web dashboard, `/metrics`): a bounded picture of the
//! last minutes of every target and interface, the alerts and the outages. The monitor feeds it;
//! views read snapshots of it. Memory is fixed: every history is a ring.

use crate::alert::{AlertEvent, AlertKind};
use crate::outage::Outage;
use crate::record::ProbeResult;
use crate::rollup::unix_secs;
use crate::seconds::{Second, SecondRing, SecondRings};
use crate::stats::{ProbeStats, RttStats};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// Seconds of per-second history kept per target and interface (15 minutes), when targets
/// are few (see [`LiveView::fit_history`]).
pub const HISTORY_SECONDS: usize = 900;
/// The least per-second history a target keeps, however many there are.
pub const MIN_HISTORY_SECONDS: usize = 60;
/// Per-second points kept over all targets (20 bytes each: ~2.4 MB): 15 minutes for up to
/// 133 targets, 2 minutes at 1 000, the 1-minute floor beyond 2 000. Longer ranges come
/// from the recording.
pub const HISTORY_POINTS: usize = 120_000;
/// Seconds a vanished interface stays listed (as gone) before it is forgotten.
pub const IFACE_GONE_KEPT_SECS: i64 = 60;

/// Targets removed by reloads that stay listed (as gone, without history).
pub const GONE_KEPT: usize = 64;

/// Outages kept per target.
pub const OUTAGES_KEPT: usize = 50;
/// Alert events kept.
pub const ALERTS_KEPT: usize = 100;

/// One second of a target.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TargetSecond {
    /// Unix second.
    pub sec: i64,
    /// Probes resolved in it.
    pub sent: u64,
    /// Answered.
    pub received: u64,
    /// Fastest reply (ms).
    pub min_ms: Option<f64>,
    /// Mean reply (ms).
    pub avg_ms: Option<f64>,
    /// Slowest reply (ms).
    pub max_ms: Option<f64>,
}

impl TargetSecond {
    /// The point of a bucket starting at `sec` (a second here, or a stored rollup of any
    /// resolution) with statistics `s`.
    pub fn of(sec: i64, s: &ProbeStats) -> Self {
        let msf = |d: Duration| d.as_secs_f64() * 1e3;
        TargetSecond {
            sec,
            sent: s.sent,
            received: s.received,
            min_ms: s.rtt.min().map(msf),
            avg_ms: s.rtt.mean().map(msf),
            max_ms: s.rtt.max().map(msf),
        }
    }

    /// Fraction lost, when anything was sent.
    pub fn loss(&self) -> Option<f64> {
        (self.sent > 0).then(|| 1.0 - self.received as f64 / self.sent as f64)
    }
}

/// An outage as the views list it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OutageLine {
    /// Start (unix ms).
    pub start_ms: i64,
    /// End (unix ms); the latest probe's time while it goes on.
    pub end_ms: i64,
    /// Probes sent during it.
    pub sent: u64,
    /// Of those, answered.
    pub received: u64,
    /// Still going on.
    pub ongoing: bool,
}

/// A target's live state.
#[derive(Debug, Clone)]
pub struct TargetLive {
    /// Label (shared with the model's and the monitor's copy).
    pub label: Arc<str>,
    /// What is probed, as configured (`icmp:10.0.0.1`, `tcp:host:443`, …).
    pub target: Arc<str>,
    /// Probe kind (`icmp`, `tcp`, `udp`, `dns`, `http`).
    pub kind: &'static str,
    /// Per-second record, oldest first, the newest filling (read it with
    /// [`TargetLive::points`]); the monitor's model reads its windows from it too.
    seconds: SecondRing,
    /// Everything since the start.
    pub total: ProbeStats,
    /// The latest reply's RTT.
    pub last_rtt: Option<Duration>,
    /// Outages, oldest first.
    pub outages: VecDeque<OutageLine>,
    /// Consecutive unanswered probes right now.
    pub unanswered_run: u64,
    /// Still running (false once removed by a reload).
    pub active: bool,
}

impl TargetLive {
    /// In an outage right now.
    pub fn in_outage(&self) -> bool {
        self.outages.back().is_some_and(|o| o.ongoing)
    }

    /// The second still being filled, as it stands (when anything was counted in it).
    pub fn current_point(&self) -> Option<TargetSecond> {
        let (sec, s) = self.seconds.iter().next_back()?;
        (s.sent() > 0).then(|| point(sec, s))
    }

    /// The latest closed second with probes in it.
    pub fn last_closed(&self) -> Option<TargetSecond> {
        self.closed()
            .find(|(_, s)| s.sent() > 0)
            .map(|(sec, s)| point(sec, s))
    }

    /// Closed seconds (all but the newest, which is filling), newest first, quiet ones included.
    fn closed(&self) -> impl Iterator<Item = (i64, &Second)> + '_ {
        self.seconds.iter().rev().skip(1)
    }

    /// The seconds with probes in them, the open one last, oldest first.
    pub fn points(&self) -> impl Iterator<Item = TargetSecond> + '_ {
        self.seconds
            .iter()
            .filter(|(_, s)| s.sent() > 0)
            .map(|(sec, s)| point(sec, s))
    }

    /// The latest `n` closed seconds' statistics merged.
    pub fn recent(&self, n: usize) -> (u64, u64, Option<f64>, Option<f64>, Option<f64>) {
        let (mut sent, mut received) = (0u64, 0u64);
        let (mut min, mut max, mut sum, mut cnt) = (f64::INFINITY, 0f64, 0u64, 0u64);
        for (_, s) in self.closed().take(n) {
            sent += s.sent();
            received += s.received();
            if let (Some(lo), Some(hi)) = (s.min_ms(), s.max_ms()) {
                min = min.min(lo);
                max = max.max(hi);
                sum += s.rtt_sum_ns();
                cnt += s.rtts();
            }
        }
        let got = cnt > 0;
        (
            sent,
            received,
            got.then_some(min),
            got.then(|| sum as f64 / cnt as f64 / 1e6),
            got.then_some(max),
        )
    }
}

/// Second `sec` as the views show it.
fn point(sec: i64, s: &Second) -> TargetSecond {
    TargetSecond {
        sec,
        sent: s.sent(),
        received: s.received(),
        min_ms: s.min_ms(),
        avg_ms: s.avg_ms(),
        max_ms: s.max_ms(),
    }
}

/// An interface's live state.
#[derive(Debug, Clone)]
pub struct IfaceLive {
    /// Name.
    pub name: String,
    /// Latest rates (bytes/s).
    pub rx_rate: Option<f64>,
    /// Sent bytes/s.
    pub tx_rate: Option<f64>,
    /// Counter totals.
    pub rx_bytes: u64,
    /// Sent bytes total.
    pub tx_bytes: u64,
    /// Packets received / sent.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Errors (rx + tx).
    pub errors: u64,
    /// Drops (rx + tx).
    pub drops: u64,
    /// (unix second, rx bytes/s, tx bytes/s), oldest first.
    pub history: VecDeque<(i64, f64, f64)>,
    /// Seen on the latest reading.
    pub present: bool,
    /// When it vanished (unix seconds), while it is still listed.
    pub gone_since: Option<i64>,
}

/// An alert as the views show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertLine {
    /// Rule name.
    pub rule: String,
    /// Target label or interface.
    pub subject: String,
    /// `firing`, `reminder`, `resolved`.
    pub kind: String,
    /// Severity name.
    pub severity: String,
    /// When (unix ms).
    pub at_ms: i64,
    /// When the condition started (unix ms).
    pub since_ms: i64,
    /// The full sentence.
    pub text: String,
    /// A `trace` line's path: the hop table (views show it under the line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Messages the live view keeps.
pub const MESSAGES_KEPT: usize = 50;

/// Everything the live views show.
#[derive(Debug, Clone, Default)]
pub struct LiveView {
    /// Targets by their index in the run (boxed: an index a reload freed costs 8 bytes, not
    /// a whole target's).
    pub targets: Vec<Option<Box<TargetLive>>>,
    /// Interfaces by name, in the order first seen.
    pub ifaces: Vec<IfaceLive>,
    /// Alerts firing now (the latest event of each rule and subject that is not resolved).
    pub firing: Vec<AlertLine>,
    /// Recent alert events, oldest first.
    pub alerts: VecDeque<AlertLine>,
    /// The monitor's latest messages (what it would print on the console): (unix ms, text),
    /// oldest first, at most [`MESSAGES_KEPT`].
    pub messages: VecDeque<(i64, String)>,
    /// Bumped on every change, so a view can tell whether to redraw.
    pub version: u64,
    /// Seconds of history each target keeps (0: [`HISTORY_SECONDS`]).
    pub history_seconds: usize,
    /// Seconds each target's ring keeps at least, whatever the history: the monitor model's
    /// longest window reads them ([`LiveView::keep_at_least`]).
    keep_seconds: usize,
    /// Results dropped on the way to the recording.
    pub record_dropped: u64,
    /// Results dropped on the way from the probe engine to the monitor (views, alerts).
    pub monitor_dropped: u64,
    /// Recording commits that failed.
    pub record_failed: u64,
    /// The live capture, when one runs.
    pub capture: Option<CaptureLive>,
    /// Indices of gone targets still listed, oldest removal first (at most [`GONE_KEPT`]).
    gone: VecDeque<usize>,
}

/// A live capture's picture.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CaptureLive {
    /// Interface captured on.
    pub interface: String,
    /// Packets and bytes so far.
    pub packets: u64,
    /// Bytes so far.
    pub bytes: u64,
    /// Bits per second over the last interval.
    pub bits_per_sec: f64,
    /// Packets per protocol over the last interval: (name, packets, bytes).
    pub protocols: Vec<(String, u64, u64)>,
    /// Busiest hosts so far: (address, bytes).
    pub top_hosts: Vec<(String, u64)>,
    /// Packets the kernel dropped (ring full).
    pub dropped: u64,
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn push_ring<T>(ring: &mut VecDeque<T>, item: T, cap: usize) {
    if ring.len() >= cap {
        ring.pop_front();
    } else if ring.capacity() == 0 {
        // Exactly the history's length: doubling would round 60 seconds up to 64 slots, and
        // thousands of targets each hold one.
        ring.reserve_exact(cap.max(1));
    }
    ring.push_back(item);
}

/// The live view behind its lock: the one hub the monitor writes (results, interfaces, alerts,
/// capture) and every view reads — the dashboard and `/api`, the TUI — so none of them owns it.
#[derive(Debug, Default)]
pub struct LiveHub {
    view: Mutex<LiveView>,
}

impl LiveHub {
    /// The live view, even if a panicking writer poisoned the lock (the data is still whole:
    /// every update is a few field writes).
    pub fn lock(&self) -> MutexGuard<'_, LiveView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SecondRings for LiveView {
    fn ring(&self, id: usize) -> Option<&SecondRing> {
        match self.targets.get(id) {
            Some(Some(t)) if t.active => Some(&t.seconds),
            _ => None,
        }
    }

    fn ring_mut(&mut self, id: usize) -> Option<&mut SecondRing> {
        match self.targets.get_mut(id) {
            Some(Some(t)) if t.active => Some(&mut t.seconds),
            _ => None,
        }
    }
}

impl LiveView {
    /// Seconds of per-second history each target keeps now.
    pub fn history_len(&self) -> usize {
        if self.history_seconds == 0 {
            HISTORY_SECONDS
        } else {
            self.history_seconds
        }
    }

    /// Sizes each target's history for `targets` targets within [`HISTORY_POINTS`] (between
    /// [`MIN_HISTORY_SECONDS`] and [`HISTORY_SECONDS`]), trimming what is already kept.
    pub fn fit_history(&mut self, targets: usize) {
        let len = (HISTORY_POINTS / targets.max(1)).clamp(MIN_HISTORY_SECONDS, HISTORY_SECONDS);
        self.history_seconds = len;
        self.resize_rings();
    }

    /// Keeps at least `seconds` in every target's ring (the model's longest window and a
    /// margin), whatever the history shown.
    pub fn keep_at_least(&mut self, seconds: usize) {
        self.keep_seconds = seconds;
        self.resize_rings();
    }

    /// Seconds each ring keeps: the history, or what the model needs if more.
    fn ring_len(&self) -> usize {
        self.history_len().max(self.keep_seconds)
    }

    fn resize_rings(&mut self) {
        let len = self.ring_len();
        for t in self.targets.iter_mut().flatten() {
            if t.active && t.seconds.cap() != len {
                t.seconds.set_cap(len);
            }
        }
    }

    /// Makes room for `more` targets at once (thousands added together), exactly.
    pub fn reserve_targets(&mut self, more: usize) {
        self.targets.reserve_exact(more);
    }

    /// Adds (or re-activates) target `index`.
    pub fn add_target(
        &mut self,
        index: usize,
        label: impl Into<Arc<str>>,
        target: impl Into<Arc<str>>,
        kind: &'static str,
    ) {
        self.gone.retain(|&i| i != index);
        if self.targets.len() <= index {
            self.targets.resize(index + 1, None);
        }
        self.targets[index] = Some(Box::new(TargetLive {
            label: label.into(),
            target: target.into(),
            kind,
            seconds: SecondRing::new(self.ring_len()),
            total: ProbeStats::default(),
            last_rtt: None,
            outages: VecDeque::new(),
            unanswered_run: 0,
            active: true,
        }));
        self.version += 1;
    }

    /// Marks target `index` as no longer probed: it stays listed as gone, with its totals and
    /// outages but without its per-second history; beyond [`GONE_KEPT`] gone targets the
    /// oldest are forgotten.
    pub fn remove_target(&mut self, index: usize) {
        if let Some(Some(t)) = self.targets.get_mut(index) {
            if t.active {
                t.active = false;
                t.seconds = SecondRing::new(1);
                self.version += 1;
                self.gone.push_back(index);
            }
        }
        while self.gone.len() > GONE_KEPT {
            if let Some(i) = self.gone.pop_front() {
                // Only if still gone (an index added again is active).
                if let Some(t) = self
                    .targets
                    .get_mut(i)
                    .filter(|t| t.as_ref().is_some_and(|t| !t.active))
                {
                    *t = None;
                }
            }
        }
        while self.targets.last().is_some_and(Option::is_none) {
            self.targets.pop();
        }
    }

    /// Counts a probe result in the second it arrived (`now`), and in the totals.
    pub fn result(&mut self, index: usize, r: &ProbeResult, now: SystemTime) {
        if let Some(ring) = self.ring_mut(index) {
            ring.record(unix_secs(now), r);
        }
        self.count(index, r);
    }

    /// Counts a probe result in the totals only: its second was counted by whoever wrote the
    /// target's ring (the monitor's model, see [`SecondRings`]).
    pub fn count(&mut self, index: usize, r: &ProbeResult) {
        let Some(Some(t)) = self.targets.get_mut(index) else {
            return;
        };
        t.total.record(r);
        if r.outcome.is_reply() {
            t.unanswered_run = 0;
            if r.rtt.is_some() {
                t.last_rtt = r.rtt;
            }
        } else {
            t.unanswered_run += 1;
        }
        self.version += 1;
    }

    /// Closes the seconds before `now` (called once a second), so quiet seconds end too.
    pub fn tick(&mut self, now: SystemTime) {
        let sec = unix_secs(now);
        for t in self.targets.iter_mut().flatten() {
            if t.active && !t.seconds.is_empty() {
                t.seconds.open(sec);
            }
        }
        self.version += 1;
    }

    /// A target's outage ended (or is going on, `ongoing`).
    pub fn outage(&mut self, index: usize, o: &Outage) {
        let Some(Some(t)) = self.targets.get_mut(index) else {
            return;
        };
        let line = OutageLine {
            start_ms: ms(o.start),
            end_ms: ms(o.end),
            sent: o.sent,
            received: o.received,
            ongoing: o.ongoing,
        };
        // An ongoing outage is replaced by its later picture, and by its end.
        if t.outages
            .back()
            .is_some_and(|b| b.ongoing && b.start_ms == line.start_ms)
        {
            t.outages.pop_back();
        }
        push_ring(&mut t.outages, line, OUTAGES_KEPT);
        self.version += 1;
    }

    /// Interface `name` vanished at `now`: it is shown as gone, without a rate, for
    /// [`IFACE_GONE_KEPT_SECS`], then forgotten (see [`LiveView::evict_gone_ifaces`]).
    pub fn iface_gone(&mut self, name: &str, now: SystemTime) {
        if let Some(f) = self.ifaces.iter_mut().find(|i| i.name == name) {
            f.present = false;
            f.rx_rate = None;
            f.tx_rate = None;
            f.gone_since.get_or_insert(unix_secs(now));
            self.version += 1;
        }
    }

    /// Forgets interfaces gone for longer than [`IFACE_GONE_KEPT_SECS`] at `now`.
    pub fn evict_gone_ifaces(&mut self, now: SystemTime) {
        let now = unix_secs(now);
        let before = self.ifaces.len();
        self.ifaces
            .retain(|i| i.gone_since.is_none_or(|g| now - g < IFACE_GONE_KEPT_SECS));
        if self.ifaces.len() != before {
            self.version += 1;
        }
    }

    /// The latest interface reading: name, rates (bytes/s), totals.
    #[allow(clippy::too_many_arguments)]
    pub fn iface(
        &mut self,
        name: &str,
        now: SystemTime,
        rx_rate: Option<f64>,
        tx_rate: Option<f64>,
        totals: &crate::iface::IfaceCounters,
    ) {
        let i = match self.ifaces.iter().position(|i| i.name == name) {
            Some(i) => i,
            None => {
                self.ifaces.push(IfaceLive {
                    name: name.to_string(),
                    rx_rate: None,
                    tx_rate: None,
                    rx_bytes: 0,
                    tx_bytes: 0,
                    rx_packets: 0,
                    tx_packets: 0,
                    errors: 0,
                    drops: 0,
                    history: VecDeque::new(),
                    present: true,
                    gone_since: None,
                });
                self.ifaces.len() - 1
            }
        };
        let f = &mut self.ifaces[i];
        f.rx_rate = rx_rate;
        f.tx_rate = tx_rate;
        f.rx_bytes = totals.rx_bytes;
        f.tx_bytes = totals.tx_bytes;
        f.rx_packets = totals.rx_packets;
        f.tx_packets = totals.tx_packets;
        f.errors = totals.rx_errors + totals.tx_errors;
        f.drops = totals.rx_dropped + totals.tx_dropped;
        f.present = true;
        f.gone_since = None;
        if let (Some(rx), Some(tx)) = (rx_rate, tx_rate) {
            push_ring(&mut f.history, (unix_secs(now), rx, tx), HISTORY_SECONDS);
        }
        self.version += 1;
    }

    /// A message of the monitor's, at `at`.
    pub fn message(&mut self, at: SystemTime, text: &str) {
        push_ring(
            &mut self.messages,
            (ms(at), text.to_string()),
            MESSAGES_KEPT,
        );
        self.version += 1;
    }

    /// An alert event: kept in the recent list; firing ones listed until resolved.
    pub fn alert(&mut self, e: &AlertEvent) {
        let line = AlertLine {
            rule: e.rule.clone(),
            subject: e.subject.clone(),
            kind: e.kind.name().to_string(),
            severity: e.severity.name().to_string(),
            at_ms: ms(e.at),
            since_ms: ms(e.since),
            text: e.to_string(),
            path: None,
        };
        self.firing
            .retain(|a| !(a.rule == line.rule && a.subject == line.subject));
        if e.kind != AlertKind::Resolved {
            self.firing.push(line.clone());
        }
        push_ring(&mut self.alerts, line, ALERTS_KEPT);
        self.version += 1;
    }

    /// The path traced when alert `rule` fired for `subject`: a `trace` line in the recent
    /// alerts (never firing), `hops` its one-line summary, `table` the hop table.
    pub fn alert_trace(&mut self, e: &AlertEvent, at: SystemTime, hops: &str, table: String) {
        let line = AlertLine {
            rule: e.rule.clone(),
            subject: e.subject.clone(),
            kind: "trace".into(),
            severity: e.severity.name().to_string(),
            at_ms: ms(at),
            since_ms: ms(e.since),
            text: format!("TRACE {} {}: {hops}", e.rule, e.subject),
            path: Some(table),
        };
        push_ring(&mut self.alerts, line, ALERTS_KEPT);
        self.version += 1;
    }

    /// All targets' RTT statistics since the start, for summaries.
    pub fn total_rtt(&self) -> RttStats {
        let mut all = RttStats::default();
        for t in self.targets.iter().flatten() {
            all.merge(&t.total.rtt);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Detail, Outcome};

    fn result(seq: u64, rtt_ms: Option<u64>) -> ProbeResult {
        ProbeResult {
            target: 0,
            seq,
            sent_at: SystemTime::UNIX_EPOCH,
            rtt: rtt_ms.map(Duration::from_millis),
            outcome: if rtt_ms.is_some() {
                Outcome::Ok
            } else {
                Outcome::Timeout
            },
            detail: Detail::default(),
            send_delay: std::time::Duration::ZERO,
            late: false,
        }
    }

    fn at(sec: u64, ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(sec * 1000 + ms)
    }

    #[test]
    fn seconds_close_on_the_next_result_or_tick_and_the_ring_is_bounded() {
        let mut v = LiveView::default();
        v.add_target(0, "gw", "icmp:10.0.0.1", "icmp");
        v.result(0, &result(0, Some(10)), at(100, 100));
        v.result(0, &result(1, Some(30)), at(100, 600));
        v.result(0, &result(2, None), at(101, 0));
        v.tick(at(102, 0));
        let t = v.targets[0].as_ref().expect("target");
        let p: Vec<TargetSecond> = t.points().collect();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].sec, 100);
        assert_eq!((p[0].sent, p[0].received), (2, 2));
        assert_eq!(p[0].min_ms, Some(10.0));
        assert_eq!(p[0].avg_ms, Some(20.0));
        assert_eq!(p[0].max_ms, Some(30.0));
        assert_eq!(p[1].loss(), Some(1.0));
        assert_eq!(t.last_closed().map(|p| p.sec), Some(101));
        assert_eq!(t.current_point(), None, "second 102 is open and empty");
        assert_eq!(t.unanswered_run, 1);
        assert_eq!(t.recent(10), (3, 2, Some(10.0), Some(20.0), Some(30.0)));
        for s in 0..2000 {
            v.result(0, &result(3 + s, Some(1)), at(200 + s, 0));
        }
        let t = v.targets[0].as_ref().expect("target");
        assert_eq!(t.points().count(), HISTORY_SECONDS);
        assert_eq!(t.total.sent, 2003);
        // Many targets: each keeps less, within the point budget, never under a minute.
        v.fit_history(1000);
        assert_eq!(v.history_len(), HISTORY_POINTS / 1000);
        let t = v.targets[0].as_ref().expect("target");
        assert_eq!(
            t.points().count(),
            HISTORY_POINTS / 1000,
            "closed + the open one"
        );
        v.fit_history(1_000_000);
        assert_eq!(v.history_len(), MIN_HISTORY_SECONDS);
        for s in 0..10 {
            v.result(0, &result(3000 + s, Some(1)), at(3000 + s, 0));
        }
        assert_eq!(
            v.targets[0].as_ref().map(|t| t.points().count()),
            Some(10),
            "an hour's jump starts the ring again"
        );
        // The model's longest window keeps more than the history.
        v.keep_at_least(100);
        for s in 0..200 {
            v.result(0, &result(4000 + s, Some(1)), at(4000 + s, 0));
        }
        assert_eq!(v.targets[0].as_ref().map(|t| t.points().count()), Some(100));
    }

    #[test]
    fn a_second_gives_the_figures_a_full_rollup_gives() {
        let mut v = LiveView::default();
        v.add_target(0, "gw", "icmp:10.0.0.1", "icmp");
        let mut stats = ProbeStats::default();
        for (seq, rtt) in [(1, Some(7)), (2, None), (3, Some(11)), (4, Some(13))] {
            let r = result(seq, rtt);
            v.result(0, &r, at(5, seq * 10));
            stats.record(&r);
        }
        let t = v.targets[0].as_ref().expect("target");
        assert_eq!(t.current_point(), Some(TargetSecond::of(5, &stats)));
    }

    #[test]
    fn a_vanished_interface_shows_as_gone_without_a_rate_then_is_forgotten() {
        let mut v = LiveView::default();
        let totals = crate::iface::IfaceCounters::default();
        for name in ["eth0", "veth1"] {
            v.iface(name, at(100, 0), Some(1e6), Some(2e6), &totals);
        }
        v.iface_gone("veth1", at(101, 0));
        let gone = &v.ifaces[1];
        assert!(!gone.present && gone.rx_rate.is_none() && gone.tx_rate.is_none());
        v.evict_gone_ifaces(at(101 + IFACE_GONE_KEPT_SECS as u64 - 1, 0));
        assert_eq!(v.ifaces.len(), 2, "listed as gone for a while");
        // Back before it is forgotten: present again.
        v.iface("veth1", at(130, 0), Some(5.0), Some(5.0), &totals);
        v.iface_gone("veth1", at(140, 0));
        v.evict_gone_ifaces(at(140 + IFACE_GONE_KEPT_SECS as u64, 0));
        let names: Vec<&str> = v.ifaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth0"]);
    }

    #[test]
    fn gone_targets_lose_their_history_and_are_bounded() {
        let mut v = LiveView::default();
        for i in 0..GONE_KEPT + 10 {
            v.add_target(i, format!("t{i}"), "x", "icmp");
            v.result(i, &result(1, Some(1)), at(100, 0));
            v.tick(at(101, 0));
        }
        v.add_target(GONE_KEPT + 10, "stays", "x", "icmp");
        for i in 0..GONE_KEPT + 10 {
            v.remove_target(i);
        }
        let gone: Vec<&TargetLive> = v
            .targets
            .iter()
            .flatten()
            .map(|t| &**t)
            .filter(|t| !t.active)
            .collect();
        assert_eq!(gone.len(), GONE_KEPT);
        assert!(gone.iter().all(|t| t.points().count() == 0));
        assert_eq!(&*gone[0].label, "t10", "the oldest are forgotten first");
        assert!(v
            .targets
            .iter()
            .flatten()
            .any(|t| t.active && &*t.label == "stays"));
    }

    #[test]
    fn firing_alerts_are_listed_until_resolved() {
        use crate::alert::{Comparator, Metric, Severity};
        let mut v = LiveView::default();
        let mut e = AlertEvent {
            rule: "slow".into(),
            subject: "gw".into(),
            metric: Metric::LatencyAvg,
            kind: AlertKind::Fired,
            value: 120.0,
            op: Comparator::Above,
            threshold: 100.0,
            severity: Severity::Warning,
            at: at(10, 0),
            since: at(5, 0),
            gone: false,
        };
        v.alert(&e);
        assert_eq!(v.firing.len(), 1);
        e.kind = AlertKind::Resolved;
        v.alert(&e);
        assert!(v.firing.is_empty());
        assert_eq!(v.alerts.len(), 2);
        assert_eq!(v.alerts[1].kind, "resolved");
    }

    #[test]
    fn an_ongoing_outage_is_replaced_by_its_end() {
        let mut v = LiveView::default();
        v.add_target(0, "gw", "icmp:10.0.0.1", "icmp");
        let mut o = Outage {
            start: at(10, 0),
            end: at(11, 0),
            sent: 10,
            received: 0,
            ongoing: true,
        };
        v.outage(0, &o);
        o.end = at(12, 0);
        o.ongoing = false;
        v.outage(0, &o);
        let t = v.targets[0].as_ref().expect("target");
        assert_eq!(t.outages.len(), 1);
        assert_eq!(t.outages[0].end_ms, 12_000);
        assert!(!t.outages[0].ongoing);
    }
}
