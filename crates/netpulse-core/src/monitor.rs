//! The monitor's model: a pure state machine (time passed in, no I/O). Probe results, interface
//! deltas and once-a-second ticks go in; alert events and outage changes come out, for the binary
//! to hand to the live view, the metrics, the recording and the notifiers.
//!
//! Each rule is judged on its own window. Windows slide: every result is added to the running
//! sums of each distinct window length at once, and each tick takes back the seconds that left
//! each window, so the cost of a tick is the same for a 2 s and a 1 h window. The seconds taken
//! back are read from the target's [`SecondRing`] — the same ring the live view draws from,
//! kept at least as long as the longest window ([`MonitorModel::seconds_needed`]). Percentile
//! windows keep each reply's histogram bucket (2 bytes) so it can be taken back; targets
//! without a p95 rule keep none. Jitter runs continuously across seconds (RFC 3550, exactly as
//! `probe` computes it).

use crate::alert::{AlertEvent, Metric, Rule, RuleEngine};
use crate::duration::saturating_nanos;
use crate::outage::{Outage, OutageConfig, OutageDetector};
use crate::record::ProbeResult;
use crate::rollup::unix_secs;
use crate::seconds::{Second, SecondRing, SecondRings};
use crate::sketch::LatencySketch;
use crate::stats::Jitter;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A rule with the window its value is computed over.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// The rule.
    pub rule: Rule,
    /// How far back its value looks: probes answered or lost in the second going on and in
    /// this many whole seconds before it (so even a 1 s window judged early in a second holds
    /// a second's probes).
    pub window: Duration,
}

/// What the model tells the views and the notifiers.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A rule fired, reminded or resolved.
    Alert(AlertEvent),
    /// An outage of `target` ended, or (`ongoing`) is in progress since `start`.
    Outage {
        /// Target id.
        target: usize,
        /// The outage (ongoing ones end at the latest probe's send time).
        outage: Outage,
    },
    /// `target` went into or out of an outage.
    OutageState {
        /// Target id.
        target: usize,
        /// In an outage now.
        down: bool,
    },
}

/// Where a result can be dropped on its way through the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropStage {
    /// Engine → monitor queue full.
    Monitor,
    /// Monitor → recorder queue full.
    Recorder,
}

impl DropStage {
    /// Every stage, in pipeline order.
    pub const ALL: [DropStage; 2] = [DropStage::Monitor, DropStage::Recorder];

    /// Label value in metrics and text.
    pub fn name(self) -> &'static str {
        match self {
            DropStage::Monitor => "monitor",
            DropStage::Recorder => "recorder",
        }
    }
}

/// A target's send lateness: how far the scheduler was behind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lateness {
    /// Sends that counted as late.
    pub late_sends: u64,
    /// Sends seen.
    pub sends: u64,
    /// The latest any send left. (The distribution of send delays is one histogram over all
    /// targets, `netpulse_probe_send_lateness_seconds`: per target it would cost a histogram
    /// each for a figure nobody reads per target.)
    pub max: Duration,
}

/// Running sums over one window length.
#[derive(Debug, Clone, Default)]
struct WindowSums {
    sent: u64,
    received: u64,
    rtts: u64,
    rtt_sum_ns: u128,
    /// Only in a window a p95 rule reads (8 bytes in the others, not an empty 40-byte sketch).
    hist: Option<Box<LatencySketch>>,
    /// The newest second already taken back out.
    evicted_through: i64,
    /// Absolute index of the oldest sample still counted in `hist`.
    hist_cursor: u64,
}

impl WindowSums {
    fn add(&mut self, s: &Second) {
        self.sent += s.sent();
        self.received += s.received();
        self.rtts += s.rtts();
        self.rtt_sum_ns += u128::from(s.rtt_sum_ns());
    }

    fn sub(&mut self, s: &Second) {
        self.sent -= s.sent();
        self.received -= s.received();
        self.rtts -= s.rtts();
        self.rtt_sum_ns -= u128::from(s.rtt_sum_ns());
    }
}

/// Everything the model keeps of one target. Its seconds are not here: they are the target's
/// [`SecondRing`], shared with the live view, which the windows read to take a second back.
/// Fixed size apart from, with a p95 rule, 2 bytes per reply in the longest such window.
#[derive(Debug, Clone)]
pub struct TargetModel {
    /// Label (the subject of its alerts; shared with the live view's).
    pub label: Arc<str>,
    /// Probe kind name (`TargetKind::name`: static, not a copy per target).
    pub kind: &'static str,
    /// The newest second the windows have moved to; `None`: they start (again) from the ring.
    now_sec: Option<i64>,
    /// Seconds before this were never counted in the windows (they were built after them).
    counted_from: i64,
    /// Seconds from this one on have their replies' histogram buckets in `samples`.
    hist_from: i64,
    /// With a p95 rule: the histogram bucket of every reply since `hist_from` still in a
    /// window, oldest first (2 bytes a reply). Which second a bucket belongs to follows from
    /// the ring: second `s` holds the next `rtts` of them.
    samples: VecDeque<i16>,
    /// Absolute index of `samples[0]`.
    samples_base: u64,
    /// One per distinct window length of the model, same order.
    windows: Vec<WindowSums>,
    jitter: Jitter,
    outage: Option<OutageDetector>,
    /// Failed probes in a row that make an outage at this target's interval (1 byte, not the
    /// interval's 16: one is kept per target).
    outage_run: u8,
    lateness: Lateness,
    /// An HTTP(S) target's last status and certificate expiry (other kinds: none, 8 bytes).
    http: Option<Box<HttpLast>>,
}

/// What the rules read of an HTTP(S) target's last answer.
#[derive(Debug, Clone, Copy, Default)]
struct HttpLast {
    status: u16,
    /// The earliest notAfter of the chain last seen (Unix seconds).
    cert_expiry: Option<i64>,
}

impl TargetModel {
    fn new(label: Arc<str>, kind: &'static str, outage_run: u8, windows: usize) -> Self {
        Self {
            label,
            kind,
            now_sec: None,
            counted_from: 0,
            hist_from: 0,
            samples: VecDeque::new(),
            samples_base: 0,
            windows: vec![WindowSums::default(); windows],
            jitter: Jitter::default(),
            outage: None,
            outage_run,
            lateness: Lateness::default(),
            http: None,
        }
    }

    /// The scheduler's lateness for this target.
    pub fn lateness(&self) -> &Lateness {
        &self.lateness
    }

    /// True while an outage is in progress.
    pub fn in_outage(&self) -> bool {
        self.outage.as_ref().is_some_and(OutageDetector::in_outage)
    }

    /// The RFC 3550 jitter estimate across the whole run.
    pub fn jitter(&self) -> Option<Duration> {
        self.jitter.rfc3550()
    }

    /// Builds the windows at `sec` from what the ring holds (histograms start with the next
    /// whole second: the ring keeps no buckets).
    fn reset(&mut self, sec: i64, ring: Option<&SecondRing>, lens: &[i64]) {
        self.samples_base += self.samples.len() as u64;
        self.samples.clear();
        self.now_sec = Some(sec);
        // The second filling has its buckets from now on only if nothing is in it yet.
        let started = ring.and_then(|r| r.get(sec)).is_some_and(|s| s.sent() > 0);
        self.hist_from = if started { sec + 1 } else { sec };
        self.counted_from = ring.and_then(SecondRing::first_sec).unwrap_or(sec);
        for (w, &len) in self.windows.iter_mut().zip(lens) {
            *w = WindowSums {
                evicted_through: sec - len - 1,
                hist_cursor: self.samples_base,
                ..WindowSums::default()
            };
            for s in (sec - len..=sec).filter_map(|at| ring.and_then(|r| r.get(at))) {
                w.add(s);
            }
        }
    }

    /// Moves time on to `sec`: takes back what left each window.
    fn advance(&mut self, sec: i64, ring: Option<&SecondRing>, lens: &[i64], hist: &[bool]) {
        let longest = lens.last().copied().unwrap_or(1).max(1);
        let Some(last) = self.now_sec else {
            self.reset(sec, ring, lens);
            return;
        };
        if sec <= last {
            return; // same second, or the wall clock stepped back: count it in the newest
        }
        if sec - last > longest {
            self.reset(sec, ring, lens);
            return;
        }
        self.now_sec = Some(sec);
        let (first, newest) = match ring {
            Some(r) => (r.first_sec(), r.last_sec()),
            None => (None, None),
        };
        let mut lost = false;
        'windows: for ((w, &len), &keep_hist) in self.windows.iter_mut().zip(lens).zip(hist) {
            // Window `len` holds seconds in (sec - len - 1, sec]: the second going on and the
            // `len` whole ones before it. Without those, a 1 s window judged early in a second
            // would hold almost nothing (and a rule on it would never fire).
            while w.evicted_through < sec - len - 1 {
                let at = w.evicted_through + 1;
                let second = match (ring, first, newest) {
                    // Never counted, or nothing recorded since the ring's newest second.
                    _ if at < self.counted_from => None,
                    (Some(_), _, Some(n)) if at > n => None,
                    (None, ..) => None,
                    // Counted, and gone from the ring before its time: cannot be taken back.
                    (Some(_), Some(f), _) if at < f => {
                        lost = true;
                        break 'windows;
                    }
                    (Some(r), ..) => r.get(at),
                };
                w.evicted_through = at;
                let Some(s) = second else { continue };
                w.sub(s);
                if keep_hist && at >= self.hist_from {
                    // Samples are in second order: take back the evicted second's.
                    for _ in 0..s.rtts() {
                        let b = w
                            .hist_cursor
                            .checked_sub(self.samples_base)
                            .and_then(|i| usize::try_from(i).ok())
                            .and_then(|i| self.samples.get(i));
                        if let Some(&b) = b {
                            if let Some(h) = &mut w.hist {
                                h.remove_bucket(b);
                            }
                        }
                        w.hist_cursor += 1;
                    }
                }
            }
        }
        if lost {
            self.reset(sec, ring, lens);
            return;
        }
        // Samples every histogram window has passed are no longer needed.
        let keep_from = self
            .windows
            .iter()
            .zip(hist)
            .filter(|(_, &h)| h)
            .map(|(w, _)| w.hist_cursor)
            .min()
            .unwrap_or(self.samples_base + self.samples.len() as u64);
        let n = usize::try_from(keep_from.saturating_sub(self.samples_base))
            .unwrap_or(usize::MAX)
            .min(self.samples.len());
        self.samples.drain(..n);
        self.samples_base += n as u64;
    }

    fn record(
        &mut self,
        r: &ProbeResult,
        sec: i64,
        ring: Option<&mut SecondRing>,
        lens: &[i64],
        hist: &[bool],
    ) {
        self.advance(sec, ring.as_deref(), lens, hist);
        // The windows' second: the newest, if the wall clock stepped back.
        let sec = self.now_sec.map_or(sec, |n| n.max(sec));
        let rtt = r.rtt.filter(|_| r.outcome.is_reply());
        if let Some(rtt) = rtt {
            self.jitter.record(rtt);
        }
        if let crate::record::Detail::Http(d) = &r.detail {
            let last = self.http.get_or_insert_default();
            if d.status != 0 {
                last.status = d.status;
            }
            if d.cert_expiry.is_some() {
                last.cert_expiry = d.cert_expiry;
            }
        }
        // Only what the ring counted goes into the windows (a full second counts nothing
        // more), so what a window takes back is exactly what it added.
        if let Some(ring) = ring {
            if ring.record(sec, r) {
                let mut one = Second::default();
                let _ = one.record(r);
                let bucket = rtt
                    .filter(|_| sec >= self.hist_from && hist.contains(&true))
                    .map(|d| LatencySketch::bucket_of(saturating_nanos(d)));
                if let Some(b) = bucket {
                    self.samples.push_back(b);
                }
                for (w, &h) in self.windows.iter_mut().zip(hist) {
                    w.add(&one);
                    if let (Some(b), true) = (bucket, h) {
                        w.hist.get_or_insert_default().record_bucket(b);
                    }
                }
            }
        }
        let l = &mut self.lateness;
        l.sends += 1;
        l.late_sends += u64::from(r.late);
        l.max = l.max.max(r.send_delay);
    }

    /// The value of `metric` over window number `w`.
    fn value(&self, metric: Metric, w: usize, now_sec: i64) -> Option<f64> {
        let ms = |ns: f64| ns / 1e6;
        match (metric, self.http.as_deref()) {
            (Metric::HttpStatus, Some(h)) => {
                return (h.status != 0).then_some(f64::from(h.status));
            }
            (Metric::CertExpiryDays, Some(h)) => {
                return h.cert_expiry.map(|e| (e - now_sec) as f64 / 86_400.0);
            }
            (Metric::HttpStatus | Metric::CertExpiryDays, None) => return None,
            _ => {}
        }
        if metric == Metric::Outage {
            return self
                .outage
                .as_ref()
                .map(|d| if d.in_outage() { 1.0 } else { 0.0 });
        }
        let s = self.windows.get(w)?;
        if s.sent == 0 {
            return None;
        }
        match metric {
            Metric::Loss => Some(1.0 - s.received as f64 / s.sent as f64),
            Metric::LatencyAvg => (s.rtts > 0).then(|| ms(s.rtt_sum_ns as f64 / s.rtts as f64)),
            Metric::LatencyP95 => s.hist.as_ref()?.quantile(0.95).map(|v| ms(v as f64)),
            Metric::Jitter => {
                if s.rtts == 0 {
                    return None;
                }
                self.jitter.rfc3550().map(|d| ms(d.as_nanos() as f64))
            }
            _ => None,
        }
    }
}

/// One second of an interface's traffic.
#[derive(Debug, Clone, Copy, Default)]
struct IfaceSecond {
    sec: i64,
    rx: u64,
    tx: u64,
    errors: u64,
    ms: u64,
}

/// Everything the model keeps of one interface: its last seconds (as many as the longest
/// window; interfaces are few and are polled once a tick, so windows are summed on demand).
#[derive(Debug, Clone, Default)]
struct IfaceModel {
    seconds: VecDeque<IfaceSecond>,
}

impl IfaceModel {
    fn value(&self, metric: Metric, from: i64) -> Option<f64> {
        let (mut rx, mut tx, mut errors, mut ms) = (0u64, 0u64, 0u64, 0u64);
        for s in self.seconds.iter().filter(|s| s.sec > from) {
            rx += s.rx;
            tx += s.tx;
            errors += s.errors;
            ms += s.ms;
        }
        if ms == 0 {
            return None;
        }
        let per_sec = |v: u64| v as f64 * 1000.0 / ms as f64;
        match metric {
            Metric::RxRate => Some(per_sec(rx)),
            Metric::TxRate => Some(per_sec(tx)),
            Metric::ErrorsRate => Some(per_sec(errors)),
            _ => None,
        }
    }
}

/// What a reload does with the running targets: keep, stop and start, by identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Running ids that stay, untouched.
    pub keep: Vec<usize>,
    /// Running ids to stop.
    pub stop: Vec<usize>,
    /// Indices into the new list of what to start.
    pub start: Vec<usize>,
}

/// Plans a reload: a running target whose key is in `wanted` keeps running (one match per
/// wanted entry, in running order, so duplicates start again), the rest stop; wanted keys not
/// running start. Linear in both lists: a reload of 10 000 targets is not 10⁸ comparisons.
pub fn plan_reload<K: Eq + std::hash::Hash>(running: &[(usize, K)], wanted: &[K]) -> ReloadPlan {
    let mut plan = ReloadPlan::default();
    let mut by_key: HashMap<&K, VecDeque<usize>> = HashMap::with_capacity(running.len());
    for (ri, (_, k)) in running.iter().enumerate() {
        by_key.entry(k).or_default().push_back(ri);
    }
    let mut taken = vec![false; running.len()];
    for (wi, key) in wanted.iter().enumerate() {
        match by_key.get_mut(key).and_then(VecDeque::pop_front) {
            Some(ri) => {
                taken[ri] = true;
                plan.keep.push(running[ri].0);
            }
            None => plan.start.push(wi),
        }
    }
    for (ri, (id, _)) in running.iter().enumerate() {
        if !taken[ri] {
            plan.stop.push(*id);
        }
    }
    plan
}

/// The monitor's state: targets, interfaces, rules, drop counters.
#[derive(Debug)]
pub struct MonitorModel {
    /// Boxed: a map has up to twice the slots it holds, and a target is ~450 bytes.
    targets: HashMap<usize, Box<TargetModel>>,
    ifaces: HashMap<String, IfaceModel>,
    specs: Vec<RuleSpec>,
    rules: RuleEngine,
    /// Distinct target-rule window lengths in seconds, ascending.
    lens: Vec<i64>,
    /// For each rule, its index in `lens`.
    rule_lens: Vec<usize>,
    /// Per window length: a p95 rule uses it, so it keeps a histogram.
    hist_lens: Vec<bool>,
    outage_cfg: OutageConfig,
    dropped: HashMap<DropStage, u64>,
    /// Results of targets the model does not know (removed ones still answering).
    pub unknown_results: u64,
    /// Subjects removed since the last tick, whose rule states the tick forgets (resolving
    /// what fired for them).
    gone_subjects: Vec<String>,
}

/// Default window of the status line, seconds.
pub const STATUS_WINDOW_SECS: i64 = 10;

impl MonitorModel {
    /// A model judging `rules`, detecting outages with `outage`.
    pub fn new(rules: Vec<RuleSpec>, outage: OutageConfig) -> Self {
        let mut m = Self {
            targets: HashMap::new(),
            ifaces: HashMap::new(),
            specs: Vec::new(),
            rules: RuleEngine::new(Vec::new()),
            lens: Vec::new(),
            rule_lens: Vec::new(),
            hist_lens: Vec::new(),
            outage_cfg: outage,
            dropped: HashMap::new(),
            unknown_results: 0,
            gone_subjects: Vec::new(),
        };
        m.replace_rules(rules);
        m
    }

    /// Replaces the rules (reload): unchanged rules keep their state (no re-fire, nothing
    /// forgotten); windows are rebuilt and fill again from the next result.
    pub fn replace_rules(&mut self, specs: Vec<RuleSpec>) {
        let secs = |d: Duration| (d.as_secs() as i64).max(1);
        // The status line's window is always there.
        let mut lens: Vec<i64> = specs
            .iter()
            .filter(|s| !s.rule.metric.is_interface())
            .map(|s| secs(s.window))
            .chain([STATUS_WINDOW_SECS])
            .collect();
        lens.sort_unstable();
        lens.dedup();
        self.rule_lens = specs
            .iter()
            .map(|s| lens.binary_search(&secs(s.window)).unwrap_or(0))
            .collect();
        let hist_lens: Vec<bool> = lens
            .iter()
            .map(|&l| {
                specs
                    .iter()
                    .any(|s| s.rule.metric == Metric::LatencyP95 && secs(s.window) == l)
            })
            .collect();
        if lens != self.lens || hist_lens != self.hist_lens {
            for t in self.targets.values_mut() {
                // Rebuilt from the ring at the next result or tick.
                t.windows = vec![WindowSums::default(); lens.len()];
                t.now_sec = None;
            }
        }
        self.lens = lens;
        self.hist_lens = hist_lens;
        self.rules
            .replace_rules(specs.iter().map(|s| s.rule.clone()).collect());
        self.specs = specs;
    }

    /// The rules, with their windows.
    pub fn rules(&self) -> &[RuleSpec] {
        &self.specs
    }

    /// Names of (rule, subject) pairs firing now.
    pub fn firing(&self) -> Vec<(String, String)> {
        self.rules.firing()
    }

    /// Makes room for `more` targets at once.
    pub fn reserve_targets(&mut self, more: usize) {
        self.targets.reserve(more);
    }

    /// Starts keeping target `id`, probed every `interval`.
    pub fn add_target(
        &mut self,
        id: usize,
        label: impl Into<Arc<str>>,
        kind: &'static str,
        interval: Duration,
    ) {
        self.targets.insert(
            id,
            Box::new(TargetModel::new(
                label.into(),
                kind,
                self.outage_cfg.run_needed(interval).min(u32::from(u8::MAX)) as u8,
                self.lens.len(),
            )),
        );
    }

    /// Forgets target `id` and its rule states.
    pub fn remove_target(&mut self, id: usize) {
        if let Some(t) = self.targets.remove(&id) {
            // Most targets have no rule state: look for another with the label only if needed
            // (a reload removing thousands would otherwise scan them all for each).
            if self.rules.has_subject(&t.label)
                && !self.targets.values().any(|o| o.label == t.label)
            {
                self.gone_subjects.push(t.label.to_string());
            }
        }
    }

    /// Ends target `id`'s outage detection at `at` (its target stops, or the monitor does):
    /// what its last probes decide, and an outage still going on (ending at `at`, `ongoing`).
    /// Detection starts afresh with its next result.
    pub fn end_outages(&mut self, id: usize, at: SystemTime) -> Vec<Outage> {
        self.targets
            .get_mut(&id)
            .and_then(|t| t.outage.take())
            .map_or_else(Vec::new, |mut d| d.finish(at))
    }

    /// Target `id`, if kept.
    pub fn target(&self, id: usize) -> Option<&TargetModel> {
        self.targets.get(&id).map(|t| &**t)
    }

    /// Number of targets kept.
    pub fn target_count(&self) -> usize {
        self.targets.len()
    }

    /// Counts `n` results dropped at `stage`.
    pub fn count_dropped(&mut self, stage: DropStage, n: u64) {
        *self.dropped.entry(stage).or_default() += n;
    }

    /// Sets the running total of drops at `stage` (for counters kept elsewhere).
    pub fn set_dropped(&mut self, stage: DropStage, total: u64) {
        self.dropped.insert(stage, total);
    }

    /// Results dropped at `stage` so far.
    pub fn dropped(&self, stage: DropStage) -> u64 {
        self.dropped.get(&stage).copied().unwrap_or(0)
    }

    /// Seconds each target's ring must keep for the longest window (and one more, so the
    /// views may move a ring on before the model's tick).
    pub fn seconds_needed(&self) -> usize {
        usize::try_from(self.lens.last().copied().unwrap_or(1)).unwrap_or(1) + 2
    }

    /// Takes one resolved probe that arrived at wall time `wall`, counting it in its target's
    /// second in `rings` (which the windows read back).
    pub fn result(
        &mut self,
        r: &ProbeResult,
        wall: SystemTime,
        rings: &mut dyn SecondRings,
        out: &mut Vec<Output>,
    ) {
        let sec = unix_secs(wall);
        let Some(t) = self.targets.get_mut(&r.target) else {
            self.unknown_results += 1;
            return;
        };
        t.record(
            r,
            sec,
            rings.ring_mut(r.target),
            &self.lens,
            &self.hist_lens,
        );
        let (cfg, run) = (self.outage_cfg, u32::from(t.outage_run));
        let detector = t
            .outage
            .get_or_insert_with(|| OutageDetector::with_run_needed(cfg, r.seq, run));
        let was_down = detector.in_outage();
        let ended = detector.record(r.seq, r.sent_at, r.outcome.is_reply());
        let down = detector.in_outage();
        for o in &ended {
            out.push(Output::Outage {
                target: r.target,
                outage: o.clone(),
            });
        }
        if down {
            // Going on: what it holds so far (the views show it as it grows).
            if let Some(o) = detector.current() {
                out.push(Output::Outage {
                    target: r.target,
                    outage: Outage {
                        end: r.sent_at.max(o.start),
                        ongoing: true,
                        ..o.clone()
                    },
                });
            }
        }
        if down != was_down || !ended.is_empty() {
            out.push(Output::OutageState {
                target: r.target,
                down,
            });
        }
    }

    /// Takes one interface reading: the deltas since the last over `elapsed`, at `wall`.
    pub fn iface(
        &mut self,
        name: &str,
        wall: SystemTime,
        rx: u64,
        tx: u64,
        errors: u64,
        elapsed: Duration,
    ) {
        let sec = unix_secs(wall);
        let w = self.ifaces.entry(name.to_string()).or_default();
        w.seconds.push_back(IfaceSecond {
            sec,
            rx,
            tx,
            errors,
            ms: elapsed.as_millis() as u64,
        });
    }

    /// Forgets interface `name` (it vanished) and its rule states.
    pub fn remove_iface(&mut self, name: &str) {
        if self.ifaces.remove(name).is_some() {
            self.gone_subjects.push(name.to_string());
        }
    }

    /// One tick at monotonic `now` / wall `wall`: windows move on, every rule is judged on its
    /// own window for every subject it applies to.
    pub fn tick(
        &mut self,
        now: Duration,
        wall: SystemTime,
        rings: &dyn SecondRings,
        out: &mut Vec<Output>,
    ) {
        let sec = unix_secs(wall);
        let mut events = Vec::new();
        for subject in std::mem::take(&mut self.gone_subjects) {
            // Unless it came back meanwhile (a reload re-adding the label).
            let back = self.targets.values().any(|t| *t.label == *subject)
                || self.ifaces.contains_key(&subject);
            if !back {
                self.rules.forget_subject(&subject, wall, &mut events);
            }
        }
        out.extend(events.into_iter().map(Output::Alert));
        for (&id, t) in &mut self.targets {
            if t.now_sec.is_some() {
                t.advance(sec, rings.ring(id), &self.lens, &self.hist_lens);
            }
        }
        let longest_iface = self
            .specs
            .iter()
            .filter(|s| s.rule.metric.is_interface())
            .map(|s| s.window.as_secs() as i64)
            .chain([STATUS_WINDOW_SECS])
            .max()
            .unwrap_or(STATUS_WINDOW_SECS);
        for w in self.ifaces.values_mut() {
            while w
                .seconds
                .front()
                .is_some_and(|s| s.sec < sec - longest_iface)
            {
                w.seconds.pop_front();
            }
        }
        let mut alerts = Vec::new();
        for (i, spec) in self.specs.iter().enumerate() {
            let metric = spec.rule.metric;
            if metric.is_interface() {
                let from = sec - spec.window.as_secs() as i64;
                for (name, w) in &self.ifaces {
                    let v = w.value(metric, from);
                    self.rules.observe_rule(i, name, v, now, wall, &mut alerts);
                }
            } else {
                let wi = self.rule_lens[i];
                for t in self.targets.values() {
                    let v = t.value(metric, wi, sec);
                    self.rules
                        .observe_rule(i, &t.label, v, now, wall, &mut alerts);
                }
            }
        }
        out.extend(alerts.into_iter().map(Output::Alert));
    }

    /// Status-line figures of target `id` over the last [`STATUS_WINDOW_SECS`]: average RTT
    /// (ms) and loss (0–1).
    pub fn status(&self, id: usize) -> (Option<f64>, Option<f64>) {
        let Some(t) = self.targets.get(&id) else {
            return (None, None);
        };
        let wi = self
            .lens
            .binary_search(&STATUS_WINDOW_SECS)
            .unwrap_or_default();
        (
            t.value(Metric::LatencyAvg, wi, 0),
            t.value(Metric::Loss, wi, 0),
        )
    }

    /// Receive and send rates (bytes/s) of interface `name` over the status window.
    pub fn iface_status(&self, name: &str, sec: i64) -> (Option<f64>, Option<f64>) {
        let Some(w) = self.ifaces.get(name) else {
            return (None, None);
        };
        let from = sec - STATUS_WINDOW_SECS;
        (w.value(Metric::RxRate, from), w.value(Metric::TxRate, from))
    }

    /// Names of the interfaces with data, sorted.
    pub fn iface_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.ifaces.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Every target's lateness summed: (late sends, sends, max).
    pub fn lateness_total(&self) -> (u64, u64, Duration) {
        self.targets.values().fold((0, 0, Duration::ZERO), |a, t| {
            let l = &t.lateness;
            (a.0 + l.late_sends, a.1 + l.sends, a.2.max(l.max))
        })
    }
}

#[cfg(test)]
mod tests;
