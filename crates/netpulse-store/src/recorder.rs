//! The recorder: one thread that turns probe results into rollups and outages (core logic) and
//! writes them in one transaction per second. It never blocks probing: results reach it through
//! a bounded queue, and when the disk is too slow the queue fills and results are dropped with a
//! counter the caller shows. Retention runs in the same thread in small chunks, so pruning never
//! stalls a commit for long.

use crate::db::{put_outage, put_rollup, SessionInfo, Store, StoreError};
use crate::traffic::{iface_id, put_traffic};
use netpulse_core::alert::AlertEvent;
use netpulse_core::clock::{Clock, SystemClock};
use netpulse_core::iface::IfaceRate;
use netpulse_core::outage::{Outage, OutageConfig, OutageDetector};
use netpulse_core::record::ProbeResult;
use netpulse_core::rollup::{unix_secs, Resolution, RollupRow, Rollups};
use netpulse_core::stats::ProbeStats;
use netpulse_core::traffic::{TrafficRollups, TrafficRow};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// How long each resolution is kept (`None`: forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Per-second rows.
    pub seconds: Option<Duration>,
    /// Per-minute rows.
    pub minutes: Option<Duration>,
    /// Per-hour rows.
    pub hours: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            seconds: Some(Duration::from_secs(48 * 3600)),
            minutes: Some(Duration::from_secs(30 * 86400)),
            hours: None,
        }
    }
}

/// A retention spec that does not parse; says what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad retention \"{spec}\": {why}")]
pub struct RetentionParseError {
    /// The spec given.
    pub spec: String,
    /// What is wrong with it.
    pub why: String,
}

impl std::str::FromStr for Retention {
    type Err = RetentionParseError;

    /// `1s=48h,1m=30d,1h=forever`; resolutions not named keep their default.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| RetentionParseError {
            spec: spec.to_string(),
            why,
        };
        let mut r = Retention::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (res, keep) = part
                .split_once('=')
                .ok_or_else(|| bad("expected RES=DURATION, e.g. 1s=48h".into()))?;
            let keep = match keep.trim() {
                "forever" | "inf" | "never" => None,
                d => Some(netpulse_core::parse_duration(d).map_err(|e| bad(e.to_string()))?),
            };
            match res.trim() {
                "1s" => r.seconds = keep,
                "1m" => r.minutes = keep,
                "1h" => r.hours = keep,
                other => {
                    return Err(bad(format!(
                        "unknown resolution \"{other}\" (1s, 1m or 1h)"
                    )))
                }
            }
        }
        Ok(r)
    }
}

impl std::fmt::Display for Retention {
    /// The spec [`str::parse`] reads back: `1s=48h,1m=30d,1h=forever` for the default.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keep = |d: Option<Duration>| match d {
            None => "forever".to_string(),
            Some(d) => {
                let s = d.as_secs();
                if d.subsec_nanos() != 0 || s == 0 {
                    format!("{}ms", d.as_millis())
                } else if s % 86_400 == 0 && s >= 7 * 86_400 {
                    format!("{}d", s / 86_400)
                } else if s % 3_600 == 0 {
                    format!("{}h", s / 3_600)
                } else if s % 60 == 0 {
                    format!("{}m", s / 60)
                } else {
                    format!("{s}s")
                }
            }
        };
        write!(
            f,
            "1s={},1m={},1h={}",
            keep(self.seconds),
            keep(self.minutes),
            keep(self.hours)
        )
    }
}

impl Retention {
    fn of(&self, res: Resolution) -> Option<Duration> {
        match res {
            Resolution::Second => self.seconds,
            Resolution::Minute => self.minutes,
            Resolution::Hour => self.hours,
        }
    }
}

/// How the recorder behaves.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// How long rows are kept.
    pub retention: Retention,
    /// When a target counts as down.
    pub outage: OutageConfig,
    /// Outages come from the caller ([`RecordSink::outage`]), which detects them already (the
    /// monitor's model): no detector is kept per target here (216 bytes and a window each).
    pub outages_from_caller: bool,
    /// Results queued before new ones are dropped.
    pub queue: usize,
    /// Time between commits.
    pub commit_every: Duration,
    /// Time between retention passes.
    pub prune_every: Duration,
    /// Rows deleted per table per pass (keeps each pass short).
    pub prune_chunk: usize,
    /// Final rows kept in memory while the database cannot be written (disk full, locked), to
    /// write once it can; rows beyond are lost, counted, and recorded as a gap.
    pub retry_rows: usize,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            retention: Retention::default(),
            outage: OutageConfig::default(),
            outages_from_caller: false,
            queue: 1 << 16,
            commit_every: Duration::from_secs(1),
            prune_every: Duration::from_secs(60),
            prune_chunk: 5000,
            // ~300 bytes each: ~30 MB at most; 100 targets for 16 minutes, 10 000 for 10 s.
            retry_rows: 100_000,
        }
    }
}

/// A target to record.
#[derive(Debug, Clone)]
pub struct RecordTarget {
    /// Label.
    pub label: String,
    /// Kind.
    pub kind: String,
    /// Address probed.
    pub address: String,
    /// Probe interval.
    pub interval: Duration,
    /// Probe timeout.
    pub timeout: Duration,
}

/// What a recording did.
#[derive(Debug, Clone, Default)]
pub struct RecorderReport {
    /// The session.
    pub session_id: i64,
    /// Rollup rows written (including provisional rewrites).
    pub rows_written: u64,
    /// Outages found, with the index of their target.
    pub outages: Vec<(usize, Outage)>,
    /// Results dropped because the recorder fell behind.
    pub dropped: u64,
    /// Results that arrived after their second was closed.
    pub late: u64,
    /// Commits that failed (disk full, I/O error); the first error's text.
    pub failed_commits: u64,
    /// The first write error.
    pub first_error: Option<String>,
    /// Rows removed by retention.
    pub pruned: u64,
    /// Final rows lost because the database could not be written for longer than the retry
    /// buffer holds (each also in a recorded gap).
    pub rows_lost: u64,
    /// Times recording stopped (the database could not be written) and later resumed.
    pub interruptions: u64,
}

/// The path traced when an alert fired, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertTraceRecord {
    /// The id the alert was recorded under (see [`RecordSink::alert`]).
    pub alert: u64,
    /// When the trace ended (Unix ms).
    pub at_ms: i64,
    /// The alert's subject (the target traced).
    pub subject: String,
    /// `netpulse trace --json`'s summary.
    pub trace: String,
}

/// One delivery attempt of an alert, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The id the alert was recorded under (see [`RecordSink::alert`]).
    pub alert: u64,
    /// Notifier name.
    pub notifier: String,
    /// 1 for the first attempt (0: never attempted, e.g. queue full).
    pub attempt: u32,
    /// Delivered.
    pub ok: bool,
    /// Receiver's answer or the failure.
    pub detail: String,
    /// When.
    pub at: SystemTime,
    /// No further attempt follows.
    pub last: bool,
}

/// One second of a packet capture: (protocol, packets, bytes) per protocol seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSecond {
    /// Unix second (capture time).
    pub ts: i64,
    /// Per protocol.
    pub counts: Vec<(&'static str, u64, u64)>,
}

/// A finished flow of a packet capture.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRow {
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// Lower endpoint, `addr:port`.
    pub a: String,
    /// Higher endpoint.
    pub b: String,
    /// First packet, unix ms.
    pub first_ms: i64,
    /// Last packet.
    pub last_ms: i64,
    /// a→b packets and bytes.
    pub a_to_b: (u64, u64),
    /// b→a.
    pub b_to_a: (u64, u64),
    /// SYN → SYN/ACK, µs.
    pub syn_to_synack_us: Option<f64>,
    /// SYN/ACK → ACK, µs.
    pub synack_to_ack_us: Option<f64>,
    /// FIN seen.
    pub fin: bool,
    /// RST seen.
    pub rst: bool,
}

enum Msg {
    Result(ProbeResult),
    Results(Arc<[ProbeResult]>),
    CaptureSecond(CaptureSecond),
    Flow(FlowRow),
    AddTarget(RecordTarget),
    AddTargets(Vec<RecordTarget>),
    RemoveTarget(usize, Box<str>, SystemTime),
    Alert(u64, AlertEvent),
    Outage(usize, Outage),
    Delivery(DeliveryRecord),
    AlertTrace(AlertTraceRecord),
    Traffic(SystemTime, Vec<IfaceRate>),
    Finish(SystemTime),
}

/// Hands results to the recorder without ever blocking; clonable.
#[derive(Clone)]
pub struct RecordSink {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
}

impl RecordSink {
    /// Queues a result; drops it (and counts) if the recorder is behind.
    pub fn offer(&self, r: &ProbeResult) {
        self.offer_msg(Msg::Result(r.clone()));
    }

    /// Queues a batch of results as one message; drops them all (and counts each) if the
    /// recorder is behind. The batch is shared, not copied: the monitor's views read the same
    /// one.
    pub fn offer_batch(&self, batch: Arc<[ProbeResult]>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Msg::Results(batch))
        {
            self.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Queues without waiting; a message that does not fit is dropped and counted.
    fn offer_msg(&self, msg: Msg) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(msg) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues one tick of interface rates read at `at`; drops it (and counts) if the recorder
    /// is behind.
    pub fn offer_traffic(&self, at: SystemTime, rates: &[IfaceRate]) {
        self.offer_msg(Msg::Traffic(at, rates.to_vec()));
    }

    /// Adds a target (config reload); its results use the next index after the existing ones.
    /// Waits for room in the queue: this must not be lost.
    pub fn add_target(&self, target: RecordTarget) {
        let _ = self.tx.send(Msg::AddTarget(target));
    }

    /// Adds many targets in one message (a monitor starting thousands): they get the next
    /// indices, in order. Waits for room: this must not be lost.
    pub fn add_targets(&self, targets: Vec<RecordTarget>) {
        if !targets.is_empty() {
            let _ = self.tx.send(Msg::AddTargets(targets));
        }
    }

    /// Target `index` (labelled `label`) is no longer probed (config reload): once its last
    /// answers can have arrived (its timeout and a margin after `at`), its open rows are written
    /// as final, an outage going on ends, and its memory is freed. A target of the same label
    /// added meanwhile continues its rows. Waits for room: this must not be lost.
    pub fn remove_target(&self, index: usize, label: &str, at: SystemTime) {
        let _ = self.tx.send(Msg::RemoveTarget(index, label.into(), at));
    }

    /// Records an alert under the caller's `id` (used again by its deliveries); waits for room.
    pub fn alert(&self, id: u64, event: &AlertEvent) {
        let _ = self.tx.send(Msg::Alert(id, event.clone()));
    }

    /// Records an outage of target `index` that ended (or was still going on when its target
    /// stopped), detected by the caller (see [`RecorderConfig::outages_from_caller`]); waits
    /// for room: this must not be lost.
    pub fn outage(&self, index: usize, outage: &Outage) {
        let _ = self.tx.send(Msg::Outage(index, outage.clone()));
    }

    /// Records one delivery attempt; waits for room.
    pub fn alert_trace(&self, t: AlertTraceRecord) {
        let _ = self.tx.send(Msg::AlertTrace(t));
    }

    /// One delivery attempt of alert `d.alert`.
    pub fn delivery(&self, d: DeliveryRecord) {
        let _ = self.tx.send(Msg::Delivery(d));
    }

    /// Records one second of capture counts; waits for room (file analysis must not lose any).
    pub fn capture_second(&self, s: CaptureSecond) {
        let _ = self.tx.send(Msg::CaptureSecond(s));
    }

    /// Records a finished flow; waits for room.
    pub fn flow(&self, f: FlowRow) {
        let _ = self.tx.send(Msg::Flow(f));
    }

    /// Results dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Commits that failed so far (disk full, I/O errors).
    pub fn failed_commits(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Final rows lost so far: the database could not be written for longer than the retry
    /// buffer holds.
    pub fn rows_lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

/// A running recorder.
pub struct Recorder {
    sink: RecordSink,
    handle: JoinHandle<RecorderReport>,
    session_id: i64,
}

impl Recorder {
    /// Creates the session and its targets (so a bad database fails now, not later) and starts
    /// the recorder thread.
    pub fn start(
        store: Store,
        session: &SessionInfo,
        targets: &[RecordTarget],
        cfg: RecorderConfig,
    ) -> Result<Recorder, StoreError> {
        Self::start_with_clock(
            store,
            session,
            targets,
            cfg,
            Arc::new(SystemClock::default()),
        )
    }

    /// [`Recorder::start`] on `clock`: when to commit and prune, and the time of each commit,
    /// come from it (tests drive the thread on a fake clock, no sleeping).
    pub fn start_with_clock(
        store: Store,
        session: &SessionInfo,
        targets: &[RecordTarget],
        cfg: RecorderConfig,
        clock: Arc<dyn Clock + Send + Sync>,
    ) -> Result<Recorder, StoreError> {
        let (tx, rx) = mpsc::sync_channel(cfg.queue);
        let dropped = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let mut recording = Recording::new(store, session, targets, cfg)?;
        let session_id = recording.session_id();
        // The schedule starts now, not whenever the thread first runs.
        let started = clock.monotonic();
        recording.dropped = Arc::clone(&dropped);
        recording.failed = Arc::clone(&failed);
        recording.lost = Arc::clone(&lost);
        let handle = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || recording.run(rx, &*clock, started))
            .map_err(|e| StoreError::Unwritable {
                path: std::path::PathBuf::from("(recorder thread)"),
                reason: e.to_string(),
            })?;
        Ok(Recorder {
            sink: RecordSink {
                tx,
                dropped,
                failed,
                lost,
            },
            handle,
            session_id,
        })
    }

    /// The session being recorded.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// A handle to feed results from the probe engine.
    pub fn sink(&self) -> RecordSink {
        self.sink.clone()
    }

    /// Flushes everything (trailing outages end at `at`), ends the session, and reports.
    pub fn finish(self, at: SystemTime) -> RecorderReport {
        // A full queue must not lose the finish: this one send may wait for the thread.
        let _ = self.sink.tx.send(Msg::Finish(at));
        drop(self.sink);
        self.handle.join().unwrap_or_else(|_| RecorderReport {
            first_error: Some("the recorder thread failed".into()),
            ..Default::default()
        })
    }
}

/// A recording driven by hand: the recorder thread's body, usable on a fake clock.
pub struct Recording {
    store: Store,
    session_id: i64,
    /// Database id of each target, by its index in the run; `None` while its registration
    /// failed (retried at every commit; its rows wait in its rollups meanwhile). An index is
    /// never reused or shifted, so results are always recorded under their own target.
    target_ids: Vec<Option<i64>>,
    /// Targets whose registration failed, to retry: (index, target).
    unregistered: Vec<(usize, RecordTarget)>,
    /// Rollups by index; a target re-added while its earlier index was still retiring records
    /// into that index's rollups instead (see `aliases`), so both feed the same rows.
    rollups: Vec<Rollups>,
    /// Index → the index whose rollups it records into, for re-added targets only.
    aliases: HashMap<usize, usize>,
    /// Rollups shared by more than one index: how many of them are not retired yet.
    sharers: HashMap<usize, u32>,
    /// Removed targets not yet retired, by label: a target re-added under that label shares
    /// their rollups (a reload that changed its interval must not replace its minute).
    retiring_labels: HashMap<Box<str>, usize>,
    detectors: Vec<OutageDetector>,
    cfg: RecorderConfig,
    report: RecorderReport,
    pending_outages: Vec<(usize, Outage)>,
    rows: Vec<RollupRow>,
    traffic: TrafficRollups,
    traffic_rows: Vec<TrafficRow>,
    iface_ids: HashMap<Arc<str>, i64>,
    pending_alerts: Vec<(u64, AlertEvent)>,
    /// Paths traced for alerts, waiting for their alert's row.
    pending_traces: Vec<AlertTraceRecord>,
    pending_deliveries: Vec<DeliveryRecord>,
    pending_seconds: Vec<CaptureSecond>,
    pending_flows: Vec<FlowRow>,
    /// HTTP(S) targets' open minutes, by (series, minute start): a few per HTTP target.
    http_minutes: std::collections::BTreeMap<(usize, i64), crate::http::HttpMinute>,
    /// Removed targets to retire once their last answers are in: (index, when).
    retiring: Vec<(usize, SystemTime)>,
    /// Final rows of retired targets, for the next commit.
    retired_rows: Vec<RollupRow>,
    /// Caller's alert id → row id, for deliveries (bounded: oldest forgotten first).
    alert_rows: std::collections::VecDeque<(u64, i64)>,
    dropped: Arc<AtomicU64>,
    /// Failed commits, shared with the sinks (for /metrics).
    failed: Arc<AtomicU64>,
    /// Final rows lost, shared with the sinks.
    lost: Arc<AtomicU64>,
    /// Final rows of failed commits, to write first at the next one (see
    /// [`RecorderConfig::retry_rows`]); a later version of a row replaces an earlier one.
    unwritten: HashMap<(usize, Resolution, i64), HeldRow>,
    /// Traffic rows of failed commits, likewise.
    unwritten_traffic: HashMap<(Arc<str>, Resolution, i64), TrafficRow>,
    /// Final rows of failed commits whose figures are on disk already (their provisional
    /// write committed): only their `complete` flag is still to be set.
    unwritten_marks: std::collections::HashSet<(usize, Resolution, i64)>,
    /// Since when the database cannot be written, while it cannot.
    stopped: Option<Stopped>,
}

/// A stretch of time the database could not be written.
#[derive(Debug, Clone)]
struct Stopped {
    since: SystemTime,
    error: String,
    /// Rows lost so far (the retry buffer was full) and the span of time they covered.
    lost: u64,
    lost_span: Option<(i64, i64)>,
}

impl Recording {
    /// Creates the session and its targets in `store`.
    pub fn new(
        mut store: Store,
        session: &SessionInfo,
        targets: &[RecordTarget],
        cfg: RecorderConfig,
    ) -> Result<Recording, StoreError> {
        let session_id = store.begin_session(session)?;
        let mut target_ids = Vec::with_capacity(targets.len());
        for t in targets {
            let (id, _) = store.register_target(
                session_id, &t.label, &t.kind, &t.address, t.interval, t.timeout,
            )?;
            target_ids.push(Some(id));
        }
        Ok(Recording {
            store,
            session_id,
            target_ids,
            unregistered: Vec::new(),
            aliases: HashMap::new(),
            sharers: HashMap::new(),
            retiring_labels: HashMap::new(),
            rollups: targets
                .iter()
                .enumerate()
                .map(|(i, t)| Rollups::new(i, t.timeout))
                .collect(),
            detectors: if cfg.outages_from_caller {
                Vec::new()
            } else {
                targets
                    .iter()
                    .map(|t| OutageDetector::new(cfg.outage, 1, t.interval))
                    .collect()
            },
            cfg,
            report: RecorderReport {
                session_id,
                ..Default::default()
            },
            pending_outages: Vec::new(),
            rows: Vec::new(),
            traffic: TrafficRollups::new(),
            traffic_rows: Vec::new(),
            iface_ids: HashMap::new(),
            pending_alerts: Vec::new(),
            pending_traces: Vec::new(),
            pending_deliveries: Vec::new(),
            pending_seconds: Vec::new(),
            pending_flows: Vec::new(),
            http_minutes: std::collections::BTreeMap::new(),
            retiring: Vec::new(),
            retired_rows: Vec::new(),
            alert_rows: std::collections::VecDeque::new(),
            dropped: Arc::new(AtomicU64::new(0)),
            failed: Arc::new(AtomicU64::new(0)),
            lost: Arc::new(AtomicU64::new(0)),
            unwritten: HashMap::new(),
            unwritten_traffic: HashMap::new(),
            unwritten_marks: std::collections::HashSet::new(),
            stopped: None,
        })
    }

    /// The session id.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The store (for queries in tests and benchmarks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The recorder thread: messages as they come, a commit every `commit_every` and a prune
    /// every `prune_every` from `started`, all on `clock`.
    fn run(
        &mut self,
        rx: mpsc::Receiver<Msg>,
        clock: &dyn Clock,
        started: Duration,
    ) -> RecorderReport {
        let mut next_commit = started + self.cfg.commit_every;
        let mut next_prune = started;
        let finished_at = loop {
            match rx.recv_timeout(next_commit.saturating_sub(clock.monotonic())) {
                Ok(msg) => {
                    if let Some(at) = self.handle(msg, clock.wall()) {
                        break at;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break clock.wall(),
            }
            if clock.monotonic() >= next_commit {
                self.commit(clock.wall(), false);
                next_commit += self.cfg.commit_every;
                if next_commit < clock.monotonic() {
                    next_commit = clock.monotonic() + self.cfg.commit_every;
                }
                if clock.monotonic() >= next_prune {
                    self.prune(clock.wall());
                    next_prune = clock.monotonic() + self.cfg.prune_every;
                }
            }
        };
        // Whatever is still queued belongs to this run.
        while let Ok(msg) = rx.try_recv() {
            if self.handle(msg, clock.wall()).is_some() {
                break;
            }
        }
        self.finish(finished_at)
    }

    /// Takes one message arrived at `now`; returns the finish time when it is the finish
    /// request.
    fn handle(&mut self, msg: Msg, now: SystemTime) -> Option<SystemTime> {
        match msg {
            Msg::Result(r) => self.record(&r),
            Msg::Results(v) => {
                for r in v.iter() {
                    self.record(r);
                }
            }
            Msg::Traffic(at, rates) => self.record_traffic(at, &rates),
            Msg::AddTarget(t) => self.add_target(&t, now),
            Msg::AddTargets(list) => {
                self.rollups.reserve_exact(list.len());
                if !self.cfg.outages_from_caller {
                    self.detectors.reserve_exact(list.len());
                }
                self.target_ids.reserve_exact(list.len());
                for t in &list {
                    self.add_target(t, now);
                }
            }
            Msg::RemoveTarget(i, label, at) => self.remove_target(i, &label, at),
            Msg::Alert(id, e) => self.pending_alerts.push((id, e)),
            Msg::Outage(i, o) => self.pending_outages.push((i, o)),
            Msg::Delivery(d) => self.pending_deliveries.push(d),
            Msg::AlertTrace(t) => {
                // Bounded: a trace is taken at most once per target per few minutes.
                if self.pending_traces.len() < 1024 {
                    self.pending_traces.push(t);
                }
            }
            Msg::CaptureSecond(c) => self.pending_seconds.push(c),
            Msg::Flow(f) => self.pending_flows.push(f),
            Msg::Finish(at) => return Some(at),
        }
        None
    }

    /// Flushes everything (outages still going on end at `finished_at`), ends the session.
    pub fn finish(&mut self, finished_at: SystemTime) -> RecorderReport {
        for (i, d) in self.detectors.iter_mut().enumerate() {
            for o in d.finish(finished_at) {
                self.pending_outages.push((i, o));
            }
        }
        self.commit(finished_at, true);
        if self.stopped.is_some() {
            // One more try: a lock may have gone; a full disk will not have.
            self.commit(finished_at, true);
        }
        if let Some(st) = &self.stopped {
            let lost = (self.unwritten.len() + self.unwritten_traffic.len()) as u64;
            self.report.rows_lost += lost;
            self.lost.fetch_add(lost, Ordering::Relaxed);
            eprintln!(
                "netpulse: recording to {} ended while it could not be written ({}): the {lost} \
                 rows kept over its last {} are lost",
                self.store.path().display(),
                st.error,
                span(st.since, finished_at),
            );
        } else if let Err(e) = self.store.end_session(self.session_id, finished_at) {
            self.note_error(&e.to_string());
        }
        // A target still unregistered at the end never had its rows written: counted, not
        // lost silently.
        for &(index, _) in &self.unregistered {
            let held = self.rollups.get(index).map_or(0, Rollups::held_results);
            self.dropped.fetch_add(held, Ordering::Relaxed);
        }
        self.report.dropped = self.dropped.load(Ordering::Relaxed);
        self.report.late = self.rollups.iter().map(|r| r.late_results).sum();
        std::mem::take(&mut self.report)
    }

    /// Counts one resolved probe.
    pub fn record(&mut self, r: &ProbeResult) {
        let slot = self.slot(r.target);
        let Some(rollup) = self.rollups.get_mut(slot) else {
            return;
        };
        rollup.record(r);
        if let netpulse_core::record::Detail::Http(d) = &r.detail {
            self.http_minutes
                .entry((slot, crate::http::minute_of(r)))
                .or_default()
                .record(r, d);
        }
        if let Some(d) = self.detectors.get_mut(r.target) {
            for o in d.record(r.seq, r.sent_at, r.outcome.is_reply()) {
                self.pending_outages.push((r.target, o));
            }
        }
    }

    /// Adds a target mid-session at wall time `now`; it gets the next index. A target of a
    /// label this session recorded before continues its rows: it shares the rollups of an
    /// earlier index still retiring, or merges into the rows stored by one already retired.
    pub fn add_target(&mut self, t: &RecordTarget, now: SystemTime) {
        // The index is taken whatever happens: the caller numbers its results the same way.
        let index = self.rollups.len();
        self.rollups.push(Rollups::new(index, t.timeout));
        if !self.cfg.outages_from_caller {
            self.detectors
                .push(OutageDetector::new(self.cfg.outage, 1, t.interval));
        }
        let shared = self
            .retiring_labels
            .get(&*t.label)
            .map(|&old| self.slot(old));
        if let Some(root) = shared {
            self.aliases.insert(index, root);
            *self.sharers.entry(root).or_insert(1) += 1;
            self.rollups[root].widen_grace(t.timeout);
        }
        let id = self.register(t);
        match id {
            Some((id, true)) if shared.is_none() => self.seed_with(index, id, now),
            Some(_) => {}
            None => self.unregistered.push((index, t.clone())),
        }
        self.target_ids.push(id.map(|(id, _)| id));
    }

    /// The index whose rollups `index` records into (once per result: no hash lookup while
    /// nothing is aliased).
    fn slot(&self, index: usize) -> usize {
        if self.aliases.is_empty() {
            return index;
        }
        self.aliases.get(&index).copied().unwrap_or(index)
    }

    /// A re-added target's first minute and hour (database id `id`) start from what the
    /// session stored for them.
    fn seed_with(&mut self, index: usize, id: i64, now: SystemTime) {
        match self.store.latest_rows(self.session_id, id) {
            Ok(rows) => {
                if let Some(r) = self.rollups.get_mut(index) {
                    for (res, start, stats) in rows {
                        r.seed(res, start, &stats, now);
                    }
                }
            }
            Err(e) => self.note_error(&e.to_string()),
        }
    }

    fn register(&mut self, t: &RecordTarget) -> Option<(i64, bool)> {
        match self.store.register_target(
            self.session_id,
            &t.label,
            &t.kind,
            &t.address,
            t.interval,
            t.timeout,
        ) {
            Ok(id) => Some(id),
            Err(e) => {
                self.note_error(&format!(
                    "target \"{}\" not registered yet, retrying: {e}",
                    t.label
                ));
                None
            }
        }
    }

    /// Retries the registrations that failed (the database was locked or full).
    fn register_pending(&mut self, now: SystemTime) {
        for (index, t) in std::mem::take(&mut self.unregistered) {
            match self.register(&t) {
                Some((id, had)) => {
                    self.target_ids[index] = Some(id);
                    if had && !self.aliases.contains_key(&index) {
                        self.seed_with(index, id, now);
                    }
                }
                None => self.unregistered.push((index, t)),
            }
        }
    }

    fn registered(&self, index: usize) -> bool {
        self.target_ids.get(index).is_some_and(Option::is_some)
    }

    /// Target `index` was removed at `at`: it is retired (see [`RecordSink::remove_target`]) at
    /// the first commit after its rollups' grace (its timeout, rounded down, + 1 s) and a second.
    pub fn remove_target(&mut self, index: usize, label: &str, at: SystemTime) {
        // Its last answers come within its timeout, which its rollups' grace already covers.
        let grace = self
            .rollups
            .get(self.slot(index))
            .map_or(0, Rollups::grace_secs);
        let wait = Duration::from_secs(u64::try_from(grace).unwrap_or(0) + 1);
        self.retiring.push((index, at + wait));
        self.retiring_labels.insert(label.into(), index);
    }

    fn retire_due(&mut self, now: SystemTime) {
        let mut i = 0;
        while i < self.retiring.len() {
            let (index, due) = self.retiring[i];
            // An unregistered target keeps its rows until it can be written.
            if due > now || !self.registered(index) {
                i += 1;
                continue;
            }
            self.retiring.swap_remove(i);
            self.retiring_labels.retain(|_, &mut v| v != index);
            let root = self.slot(index);
            self.aliases.remove(&index);
            // Rollups another index still records into stay open for it.
            let still_shared = match self.sharers.get_mut(&root) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    true
                }
                Some(_) => {
                    self.sharers.remove(&root);
                    false
                }
                None => false,
            };
            // Whatever still comes for a retired index is late, never a new row over final ones.
            if !still_shared {
                if let Some(r) = self.rollups.get_mut(root) {
                    r.flush(now, true, &mut self.retired_rows);
                    *r = Rollups::new(root, Duration::ZERO);
                    r.retire();
                }
            }
            if root != index {
                if let Some(r) = self.rollups.get_mut(index) {
                    r.retire();
                }
            }
            if let Some(d) = self.detectors.get_mut(index) {
                for o in d.finish(now) {
                    self.pending_outages.push((index, o));
                }
                *d = d.restarted(1);
            }
        }
    }

    /// Counts one tick of interface rates read at wall time `at`.
    pub fn record_traffic(&mut self, at: SystemTime, rates: &[IfaceRate]) {
        self.traffic.record(at, rates);
    }

    /// Writes every row that changed and the outages found, in one transaction. When that
    /// fails (disk full, I/O error, locked), monitoring goes on: final rows are kept (up to
    /// [`RecorderConfig::retry_rows`]) and open ones reported again, to write at the next
    /// commit; the stop and the resumption are said, and recorded as a gap.
    pub fn commit(&mut self, now: SystemTime, finish: bool) {
        self.register_pending(now);
        self.retire_due(now);
        self.traffic_rows.clear();
        self.traffic.flush(now, finish, &mut self.traffic_rows);
        if self.rollups.is_empty()
            && self.retired_rows.is_empty()
            && self.unwritten.is_empty()
            && self.unwritten_traffic.is_empty()
            && self.unwritten_marks.is_empty()
            && self.pending_outages.is_empty()
            && self.traffic_rows.is_empty()
            && self.pending_alerts.is_empty()
            && self.pending_traces.is_empty()
            && self.pending_deliveries.is_empty()
            && self.pending_seconds.is_empty()
            && self.pending_flows.is_empty()
            && self.http_minutes.is_empty()
            && self.stopped.is_none()
        {
            return;
        }
        let (session_id, iface_ids) = (self.session_id, &mut self.iface_ids);
        let alert_rows = &self.alert_rows;
        // Each target's rows are flushed and written in turn, so only one target's rows are
        // held at a time, plus the final ones until the commit is known to have succeeded
        // (open rows can be reported again from the rollups; final ones cannot).
        let (rows, retired, rollups) = (&mut self.rows, &mut self.retired_rows, &mut self.rollups);
        let target_ids = &self.target_ids;
        let unwritten = &self.unwritten;
        let unwritten_traffic = &self.unwritten_traffic;
        let stopped = &self.stopped;
        // A minute boundary closes every series' minute at once: held encoded (see `HeldRow`).
        let mut closed: Vec<HeldRow> = std::mem::take(retired)
            .into_iter()
            .map(HeldRow::of)
            .collect();
        let mut rollup_rows = 0u64;
        let mut undecodable = 0u64;
        // Every rollup is flushed whatever happens, so seconds keep closing into final rows
        // (kept, bounded) while the database cannot be written; the first failed write ends
        // the writing, not the flushing.
        let mut failed: Option<String> = None;
        let tx = match self.store.transaction() {
            Ok(tx) => Some(tx),
            Err(e) => {
                failed = Some(e.to_string());
                None
            }
        };
        let attempt =
            |failed: &mut Option<String>,
             f: &dyn Fn(&rusqlite::Transaction<'_>) -> Result<(), String>| {
                if failed.is_none() {
                    if let Some(tx) = &tx {
                        if let Err(e) = f(tx) {
                            *failed = Some(e);
                        }
                    }
                }
                failed.is_none()
            };
        for held in unwritten.values().chain(&closed) {
            let Ok(row) = held.row() else {
                // Bytes this process encoded itself: only damaged memory gets here.
                undecodable += 1;
                continue;
            };
            if attempt(&mut failed, &|tx| {
                write_rollup(tx, session_id, target_ids, &row)
            }) {
                rollup_rows += 1;
            }
        }
        let unwritten_marks = &self.unwritten_marks;
        attempt(&mut failed, &|tx| {
            for &(series, res, start) in unwritten_marks {
                if let Some(&Some(target)) = target_ids.get(series) {
                    crate::db::mark_complete(tx, res, session_id, target, start)
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        });
        // Final rows unchanged since their provisional write (nearly every closed second)
        // need only their key kept until the commit is known: their figures are on disk.
        let mut marks: Vec<(usize, Resolution, i64)> = Vec::new();
        for (r, id) in rollups.iter_mut().zip(target_ids) {
            if id.is_none() {
                continue; // its rows wait in its rollups until it is registered
            }
            rows.clear();
            r.flush(now, finish, rows);
            for row in rows.drain(..) {
                if attempt(&mut failed, &|tx| {
                    write_rollup(tx, session_id, target_ids, &row)
                }) {
                    rollup_rows += 1;
                }
                if row.complete {
                    if row.unchanged {
                        marks.push((row.series, row.resolution, row.start));
                    } else {
                        closed.push(HeldRow::of(row));
                    }
                }
            }
        }
        let outages = &self.pending_outages;
        attempt(&mut failed, &|tx| {
            for (i, o) in outages {
                if let Some(Some(id)) = target_ids.get(*i) {
                    put_outage(tx, session_id, *id, o).map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        });
        let traffic_rows = &self.traffic_rows;
        let new_ids = std::cell::RefCell::new(Vec::new());
        attempt(&mut failed, &|tx| {
            for row in unwritten_traffic.values().chain(traffic_rows) {
                let known = iface_ids.get(&row.iface).copied().or_else(|| {
                    new_ids
                        .borrow()
                        .iter()
                        .find(|(n, _): &&(Arc<str>, i64)| *n == row.iface)
                        .map(|(_, id)| *id)
                });
                let id = match known {
                    Some(id) => id,
                    None => {
                        let id = iface_id(tx, &row.iface).map_err(|e| e.to_string())?;
                        new_ids.borrow_mut().push((Arc::clone(&row.iface), id));
                        id
                    }
                };
                put_traffic(
                    tx,
                    row.resolution,
                    session_id,
                    id,
                    row.start,
                    &row.stats,
                    row.complete,
                )
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        let alerts = &self.pending_alerts;
        let made_alert_rows = std::cell::RefCell::new(Vec::new());
        attempt(&mut failed, &|tx| {
            for (id, e) in alerts {
                let row = crate::alerts::put_alert(tx, session_id, e).map_err(|e| e.to_string())?;
                made_alert_rows.borrow_mut().push((*id, row));
            }
            Ok(())
        });
        let deliveries = &self.pending_deliveries;
        attempt(&mut failed, &|tx| {
            for d in deliveries {
                let row = made_alert_rows
                    .borrow()
                    .iter()
                    .chain(alert_rows.iter())
                    .find(|(id, _)| *id == d.alert)
                    .map(|(_, row)| *row);
                if let Some(row) = row {
                    crate::alerts::put_delivery(tx, row, d).map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        });
        let traces = &self.pending_traces;
        attempt(&mut failed, &|tx| {
            for t in traces {
                let row = made_alert_rows
                    .borrow()
                    .iter()
                    .chain(alert_rows.iter())
                    .find(|(id, _)| *id == t.alert)
                    .map(|(_, row)| *row);
                if let Some(row) = row {
                    tx.prepare_cached(
                        "INSERT INTO alert_traces (alert_id, at_ms, subject, trace)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut st| {
                        st.execute(rusqlite::params![row, t.at_ms, t.subject, t.trace])
                    })
                    .map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        });
        let http_minutes = &self.http_minutes;
        attempt(&mut failed, &|tx| {
            for (&(series, minute), m) in http_minutes.iter().filter(|(_, m)| m.dirty) {
                if let Some(&Some(id)) = target_ids.get(series) {
                    crate::http::write_minute(tx, session_id, id, minute, m)
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        });
        let (seconds, flows) = (&self.pending_seconds, &self.pending_flows);
        attempt(&mut failed, &|tx| {
            for c in seconds {
                crate::capture::put_second(tx, session_id, c).map_err(|e| e.to_string())?;
            }
            for f in flows {
                crate::capture::put_flow(tx, session_id, f).map_err(|e| e.to_string())?;
            }
            if let Some(st) = stopped {
                put_gap(tx, session_id, st, now).map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        let result = match (failed, tx) {
            (Some(e), _) => Err(e),
            (None, Some(tx)) => tx.commit().map_err(|e| e.to_string()),
            (None, None) => Err("no transaction".into()),
        };
        let new_alert_rows = made_alert_rows.into_inner();
        if result.is_ok() {
            iface_ids.extend(new_ids.into_inner());
        }
        match result {
            Ok(()) => {
                // Counted once: a successful commit lets every held row go.
                self.report.rows_lost += undecodable;
                self.lost.fetch_add(undecodable, Ordering::Relaxed);
                self.report.rows_written +=
                    rollup_rows + (self.traffic_rows.len() + self.unwritten_traffic.len()) as u64;
                // Outages of unregistered targets stay queued.
                let ids = &self.target_ids;
                let (written, waiting): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut self.pending_outages)
                        .into_iter()
                        .partition(|(i, _)| ids.get(*i).is_some_and(Option::is_some));
                self.report.outages.extend(written);
                self.pending_outages = waiting;
                self.pending_alerts.clear();
                self.pending_traces.clear();
                self.pending_deliveries.clear();
                self.pending_seconds.clear();
                self.pending_flows.clear();
                // Written: clean; a minute over for longer than any probe's timeout (two
                // minutes) gets nothing more and is let go (an unregistered target's wait).
                let ids = &self.target_ids;
                let over = now
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64)
                    - 180;
                self.http_minutes.retain(|&(series, minute), m| {
                    let registered = ids.get(series).is_some_and(Option::is_some);
                    if registered {
                        m.dirty = false;
                    }
                    !registered || (minute >= over && !finish)
                });
                for r in new_alert_rows {
                    if self.alert_rows.len() >= 4096 {
                        self.alert_rows.pop_front();
                    }
                    self.alert_rows.push_back(r);
                }
                let kept = self.unwritten.len() + self.unwritten_traffic.len();
                self.unwritten = HashMap::new();
                self.unwritten_marks = std::collections::HashSet::new();
                self.unwritten_traffic = HashMap::new();
                if let Some(st) = self.stopped.take() {
                    self.report.interruptions += 1;
                    let lost = if st.lost == 0 {
                        String::from("nothing was lost")
                    } else {
                        format!(
                            "{} rows were lost (more than the {} kept in memory), recorded as a gap",
                            st.lost, self.cfg.retry_rows
                        )
                    };
                    eprintln!(
                        "netpulse: recording to {} resumed after {}: the {kept} rows kept \
                         meanwhile are written; {lost}",
                        self.store.path().display(),
                        span(st.since, now),
                    );
                }
            }
            Err(e) => {
                self.report.failed_commits += 1;
                self.failed.fetch_add(1, Ordering::Relaxed);
                if self.stopped.is_none() {
                    eprintln!(
                        "netpulse: recording to {} stopped: {e} — probing goes on; up to {} \
                         final rows are kept in memory and written when the database can be \
                         written again (tried every second)",
                        self.store.path().display(),
                        self.cfg.retry_rows
                    );
                    self.stopped = Some(Stopped {
                        since: now,
                        error: e.clone(),
                        lost: 0,
                        lost_span: None,
                    });
                }
                // Interface ids made in the rolled-back transaction were never kept. Rows lost
                // from here on belong to the gap just opened.
                self.keep_unwritten(closed);
                for key in marks {
                    // Beyond the bound a mark is let go: the row's figures are on disk, only
                    // its `complete` flag stays 0.
                    if self.unwritten_marks.len() < self.cfg.retry_rows {
                        self.unwritten_marks.insert(key);
                    }
                }
                for r in &mut self.rollups {
                    r.unwrite();
                }
                let traffic = std::mem::take(&mut self.traffic_rows);
                for row in traffic {
                    self.unwritten_traffic
                        .insert((Arc::clone(&row.iface), row.resolution, row.start), row);
                }
                self.note_error(&e);
            }
        }
    }

    /// Keeps the final rows of a failed commit for the next one, up to the bound; the rest are
    /// lost, counted, and their time is the gap recorded when writing resumes.
    fn keep_unwritten(&mut self, rows: Vec<HeldRow>) {
        for row in rows {
            let key = (row.series, row.resolution, row.start);
            if self.unwritten.len() < self.cfg.retry_rows || self.unwritten.contains_key(&key) {
                self.unwritten.insert(key, row);
                continue;
            }
            self.report.rows_lost += 1;
            self.lost.fetch_add(1, Ordering::Relaxed);
            if let Some(st) = &mut self.stopped {
                st.lost += 1;
                let end = row.start + row.resolution.seconds();
                st.lost_span = Some(match st.lost_span {
                    Some((a, b)) => (a.min(row.start), b.max(end)),
                    None => (row.start, end),
                });
            }
        }
    }

    /// Deletes a chunk of rows past their retention.
    pub fn prune(&mut self, now: SystemTime) {
        let now = unix_secs(now);
        for res in Resolution::ALL {
            if let Some(keep) = self.cfg.retention.of(res) {
                match self
                    .store
                    .prune(res, now - keep.as_secs() as i64, self.cfg.prune_chunk)
                {
                    Ok(n) => self.report.pruned += n as u64,
                    Err(e) => self.note_error(&e.to_string()),
                }
            }
        }
    }

    fn note_error(&mut self, e: &str) {
        if self.report.first_error.is_none() {
            let e = format!("{}: {e}", self.store.path().display());
            if self.stopped.is_none() {
                eprintln!("netpulse: recording: {e} (monitoring goes on)");
            }
            self.report.first_error = Some(e);
        }
    }
}

/// How long from `since` to `now`, for a message.
fn span(since: SystemTime, now: SystemTime) -> String {
    let d = now.duration_since(since).unwrap_or_default();
    format!("{:.0} s", d.as_secs_f64())
}

/// Records a stretch of time the database could not be written, up to `now` (written in the
/// commit that succeeds, so it is there exactly when writing resumed).
fn put_gap(
    tx: &rusqlite::Transaction<'_>,
    session: i64,
    st: &Stopped,
    now: SystemTime,
) -> rusqlite::Result<()> {
    let (lost_from, lost_to) = match st.lost_span {
        Some((a, b)) => (Some(a * 1000), Some(b * 1000)),
        None => (None, None),
    };
    tx.prepare_cached(
        "INSERT INTO recording_gaps (session_id, start_ms, end_ms, error, rows_lost, lost_from_ms, lost_to_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(rusqlite::params![
        session,
        crate::db::unix_ms(st.since),
        crate::db::unix_ms(now),
        st.error,
        st.lost as i64,
        lost_from,
        lost_to,
    ])?;
    Ok(())
}

/// A final row kept until the commit that wrote it is known to have succeeded (or for the next
/// one, after it failed), its figures encoded ([`ProbeStats::to_bytes`]): ~150 bytes where the
/// row is ~260 and its histogram. A minute boundary closes every target's minute in one commit:
/// at 10 000 targets the rows held as they were came to 4.6 MB of the monitor's peak.
#[derive(Debug, Clone)]
struct HeldRow {
    series: usize,
    resolution: Resolution,
    start: i64,
    unchanged: bool,
    stats: Box<[u8]>,
    hour_part: Option<Box<[u8]>>,
}

impl HeldRow {
    /// Holds a final row.
    fn of(row: RollupRow) -> Self {
        HeldRow {
            series: row.series,
            resolution: row.resolution,
            start: row.start,
            unchanged: row.unchanged,
            stats: row.stats.to_bytes().into_boxed_slice(),
            hour_part: row.hour_part.map(|p| p.to_bytes().into_boxed_slice()),
        }
    }

    /// The row again.
    fn row(&self) -> Result<RollupRow, netpulse_core::stats::StatsDecodeError> {
        let hour_part = match &self.hour_part {
            Some(b) => Some(Box::new(ProbeStats::from_bytes(b)?)),
            None => None,
        };
        Ok(RollupRow {
            series: self.series,
            resolution: self.resolution,
            start: self.start,
            stats: ProbeStats::from_bytes(&self.stats)?,
            complete: true,
            unchanged: self.unchanged,
            hour_part,
        })
    }
}

/// Writes one rollup row: a row unchanged since its provisional write only has its `complete`
/// flag set (or is written whole when that write was lost with a failed commit); a complete
/// minute is added into its stored hour in the same transaction (so exactly once: a failed
/// commit takes both back); a closed hour is marked final.
fn write_rollup(
    tx: &rusqlite::Transaction<'_>,
    session_id: i64,
    target_ids: &[Option<i64>],
    row: &RollupRow,
) -> Result<(), String> {
    let Some(&Some(target)) = target_ids.get(row.series) else {
        return Ok(());
    };
    let text = |e: rusqlite::Error| e.to_string();
    if row.closes_hour() {
        // No stored hour: the series closed no minute in it since (nothing to mark).
        crate::db::mark_complete(tx, row.resolution, session_id, target, row.start)
            .map_err(text)?;
        return Ok(());
    }
    if row.unchanged
        && crate::db::mark_complete(tx, row.resolution, session_id, target, row.start)
            .map_err(text)?
    {
        return Ok(());
    }
    put_rollup(
        tx,
        row.resolution,
        session_id,
        target,
        row.start,
        &row.stats,
        row.complete,
    )
    .map_err(text)?;
    if row.resolution == Resolution::Minute && row.complete {
        crate::db::add_to_hour(tx, session_id, target, row.start, row.hour_part()).map_err(text)?;
    }
    Ok(())
}
