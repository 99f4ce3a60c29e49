//! `netpulse monitor`: every source from one config, recorded, judged against alert rules,
//! delivered by notifiers; a status line on the console. This module is wiring only: one probe
//! engine for every target (on its own thread), the interface source, and the monitor's model
//! (`netpulse_core::monitor`, which judges) feeding the live view, the metrics, the recording and
//! the notifiers. SIGHUP reloads the config: targets whose settings did not change keep probing,
//! untouched (sequence and schedule go on), and the recording goes on.

use crate::config::{Config, NotifierKind, TargetSection};
use crate::console::say;
use crate::resolver::{Answer, Resolver};
use anyhow::Context;
use netpulse_alert::{
    Alert, ConsoleNotifier, Delivery, Dispatcher, EmailNotifier, EmailSecurity, ExecNotifier,
    Notifier, WebhookNotifier,
};
use netpulse_core::alert::AlertKind;
use netpulse_core::iface::{IfaceRate, RateTracker};
use netpulse_core::monitor::{plan_reload, DropStage, MonitorModel, Output, RuleSpec};
use netpulse_core::record::ProbeResult;
use netpulse_core::record::{Detail, Outcome};
use netpulse_core::rollup::unix_secs;
use netpulse_core::target::parse_target;
use netpulse_iface::IfaceSource;
use netpulse_probe::{Engine, EngineConfig, EngineHandle, IcmpMode, ProbePlan};
use netpulse_store::{DeliveryRecord, RecordSink, RecordTarget, Recorder};
use std::collections::HashMap;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// What the main loop hears about.
enum Event {
    Results(Arc<[ProbeResult]>),
    Stop,
    Reload,
    Resolved(Answer),
}

/// A target given by a name. Until the name resolves it is kept everywhere (rules, views,
/// recording) and fails a probe every interval (at most one a second), each failure naming why;
/// the name is tried again with backoff. Once probed, it is looked up again every
/// `resolve_every` (`[monitor]`, 5 min): a changed address restarts the target there.
struct NameState {
    key: TargetKey,
    host: Box<str>,
    /// The address probed; `None`: not resolved yet.
    addr: Option<IpAddr>,
    /// A lookup is out.
    asked: bool,
    next_ask: Instant,
    /// Failed lookups in a row.
    failures: u32,
    /// While unresolved: why, the next failed probe's sequence number and when it is due.
    error: Option<String>,
    next_seq: u64,
    next_fail: Instant,
}

/// Batches of results waiting for the main loop before they are dropped (and counted).
const QUEUE: usize = 1 << 10;

/// How long the engine collects results before handing them over: one wake-up of the monitor
/// (and of the recorder) per batch instead of per result.
const BATCH_FOR: Duration = Duration::from_millis(50);

/// At most this many targets are named one by one in the status line; beyond, it summarises.
const STATUS_TARGETS: usize = 6;

/// What identifies a running target: a reload keeps it running if all of this is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TargetKey {
    /// Shared with the live view (the label with the model and the metrics too): one copy
    /// of each per target.
    target: Arc<str>,
    label: Arc<str>,
    interval: Duration,
    timeout: Duration,
    size: usize,
    /// An HTTP(S) target's host and options: a change restarts it.
    http: Option<Arc<netpulse_core::target::HttpRequest>>,
}

/// How a target starts: probing now, or once its name resolves.
enum Starting {
    Now(netpulse_probe::PreparedTarget),
    Resolving(Box<str>),
}

/// What the engine is told to probe for `key` at `addr`.
fn probe_plan(key: &TargetKey, kind: netpulse_core::target::TargetKind, addr: IpAddr) -> ProbePlan {
    ProbePlan {
        label: key.label.to_string(),
        kind,
        addr,
        interval: key.interval,
        timeout: key.timeout,
        count: None,
        payload_size: Some(key.size),
        http: key.http.clone(),
    }
}

/// The configuration header of a session folder's `summary.txt` (seed 002's).
fn session_header(config: &Config) -> String {
    let labels: Vec<String> = config.targets.iter().map(|t| config.label_of(t)).collect();
    let shown = labels
        .iter()
        .take(20)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = labels.len().saturating_sub(20);
    let mut intervals: Vec<String> = config
        .targets
        .iter()
        .map(|t| {
            format!(
                "{}/{}",
                humantime::format_duration(t.interval.get_ref().get()),
                humantime::format_duration(t.timeout.get_ref().get())
            )
        })
        .collect();
    intervals.sort();
    intervals.dedup();
    let o = config.outage.detector();
    format!(
        "netpulse monitor session\ntargets ({}): {shown}{}\ninterval/timeout: {}\n\
         outage: {} failed probes in a row at 1s (one more per factor of ten faster), or loss \
         over {} above {}% with at least {} probes\n\n",
        labels.len(),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        },
        if intervals.is_empty() {
            "-".to_string()
        } else {
            intervals.join(", ")
        },
        o.consecutive,
        humantime::format_duration(o.window),
        crate::output::fmt_percent(o.loss_threshold),
        o.min_probes,
    )
}

/// A target the engine probes.
struct RunningTarget {
    key: TargetKey,
    /// Index in the engine, the model, the live view and the recording (stable for the session).
    index: usize,
}

/// Everything the config decides, rebuilt on reload.
struct Setup {
    config: Config,
    /// The rules with their windows, parsed once.
    rules: Vec<RuleSpec>,
    rule_notify: HashMap<String, Vec<String>>,
    status_every: Duration,
    /// Which interfaces are watched.
    ifaces: crate::ifaces_cmd::Selection,
}

/// Hands a batch of results from the engine's thread to the recorder and the main loop. The
/// main loop only judges and shows, so when it lags a batch is dropped there — counted in
/// `dropped`, never silently — while the recording still gets it (it counts its own drops).
fn forward(
    batch: &mut Vec<ProbeResult>,
    sink: Option<&RecordSink>,
    events: &SyncSender<Event>,
    dropped: &AtomicU64,
) {
    // One copy, shared by both readers; the engine's buffer keeps its capacity.
    let shared: Arc<[ProbeResult]> = Arc::from(batch.as_slice());
    batch.clear();
    if let Some(s) = sink {
        s.offer_batch(Arc::clone(&shared));
    }
    let n = shared.len() as u64;
    match events.try_send(Event::Results(shared)) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            dropped.fetch_add(n, Ordering::Relaxed);
        }
        // The main loop is gone (shutting down): nothing left to show it to.
        Err(TrySendError::Disconnected(_)) => {}
    }
}

/// The running monitor: its sources' handles and the sinks they feed.
struct Monitor {
    setup: Setup,
    model: MonitorModel,
    engine: EngineHandle,
    running: Vec<RunningTarget>,
    next_index: usize,
    sink: Option<RecordSink>,
    shared: Arc<netpulse_web::Shared>,
    dispatcher: Dispatcher,
    delivery_tx: mpsc::Sender<Delivery>,
    monitor_dropped: Arc<AtomicU64>,
    host: String,
    alert_id: u64,
    outputs: Vec<Output>,
    /// Drops already reported on stderr.
    reported_drops: u64,
    /// Each target's metric series, looked up once.
    target_metrics: HashMap<usize, netpulse_web::TargetMetrics>,
    /// Looks names up off the main loop.
    resolver: Resolver,
    /// Targets given by name, by index (targets given by address have none).
    names: HashMap<usize, NameState>,
    /// `--connection-log`: every probe, one line each.
    conn_log: Option<crate::session_dir::ConnectionLog>,
    /// The terminal UI runs (console notifiers say their lines into it).
    tui: bool,
    /// Paths traced for alerts, as they finish.
    traces: AlertTraces,
}

/// Traces taken when alerts fire: on threads of their own (never on the monitor's loop),
/// at most [`AlertTraces::AT_ONCE`] at a time and one per target per `[trace] every`.
struct AlertTraces {
    done_tx: mpsc::Sender<TraceDone>,
    done: mpsc::Receiver<TraceDone>,
    running: Arc<std::sync::atomic::AtomicUsize>,
    /// When each target was last traced (targets only: bounded by them).
    last: HashMap<Arc<str>, Instant>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

/// A trace that finished, for the alert it was taken for.
struct TraceDone {
    id: u64,
    event: netpulse_core::alert::AlertEvent,
    to: Vec<String>,
    result: anyhow::Result<(String, serde_json::Value)>,
}

impl AlertTraces {
    const AT_ONCE: usize = 2;

    fn new() -> Self {
        let (done_tx, done) = mpsc::channel();
        AlertTraces {
            done_tx,
            done,
            running: Arc::default(),
            last: HashMap::new(),
            stop: Arc::default(),
        }
    }
}

pub fn run(args: crate::cli::MonitorArgs) -> anyhow::Result<ExitCode> {
    let config_path = args.config.clone();
    // Handlers first: a Ctrl-C during start-up must stop cleanly, not kill mid-way.
    let (events_tx, events) = mpsc::sync_channel::<Event>(QUEUE);
    let (on_stop, on_hup) = (events_tx.clone(), events_tx.clone());
    crate::signals::install(
        move || {
            let _ = on_stop.send(Event::Stop);
        },
        Some(Box::new(move || {
            let _ = on_hup.send(Event::Reload);
        })),
    )?;
    let config = match &config_path {
        Some(p) => Config::load(p)?,
        None => {
            say!(
                "netpulse monitor: no --config: using the built-in default (print it with `netpulse config default`)"
            );
            Config::builtin()
        }
    };
    if config.targets.is_empty() {
        say!("netpulse monitor: no targets (no default gateway or nameserver found): watching interfaces only");
    }
    for w in config.missing_ifaces(&crate::config::interfaces_here()) {
        say!("netpulse monitor: warning: {w}");
    }
    let setup = make_setup(config)?;

    let db_path = setup
        .config
        .record
        .enabled
        .then(|| crate::record::db_path(std::path::Path::new(&setup.config.record.db)));
    // The servers first: a port in use or a missing token must fail the start before a
    // recording session is begun (it would be left empty, and `report` would show it).
    let shared = Arc::new(netpulse_web::Shared::default());
    let servers = start_servers(&args, &setup.config, db_path.as_deref(), &shared)?;
    let recorder = if let Some(path) = &db_path {
        let retention = setup.config.record.retention.get_ref().get();
        let rec = crate::record::start_traffic(
            path,
            retention,
            serde_json::json!({ "config": config_path.as_ref().map(|p| p.display().to_string()) }),
        )
        .with_context(|| format!("cannot record to {}", path.display()))?;
        say!("netpulse monitor: recording to {}", path.display());
        Some(rec)
    } else {
        None
    };
    let sink = recorder.as_ref().map(Recorder::sink);
    // Built only for a session folder: it walks every target.
    let header = args
        .session
        .session_dir
        .as_ref()
        .map(|_| session_header(&setup.config))
        .unwrap_or_default();
    let session_dir = match (&args.session.session_dir, &recorder, &db_path) {
        (Some(dir), Some(rec), Some(db)) => Some(crate::session_dir::SessionDir::start(
            dir,
            db,
            rec.session_id(),
            header.clone(),
            netpulse_core::parse_duration(&args.session.session_every)
                .context("bad --session-every")?,
            setup
                .config
                .targets
                .iter()
                .map(|t| t.timeout.get_ref().get())
                .max()
                .unwrap_or(Duration::from_secs(1)),
        )?),
        (Some(_), _, _) => anyhow::bail!(
            "--session-dir is written from the recording, which the config turns off ([record] enabled = false)"
        ),
        _ => None,
    };
    let conn_log = match &args.session.session_dir {
        Some(dir) if args.session.connection_log => {
            Some(crate::session_dir::ConnectionLog::create(dir)?)
        }
        _ => None,
    };

    // One engine for every target, on a thread of its own.
    let engine = Engine::with_ids(
        Vec::new(),
        EngineConfig {
            icmp_mode: icmp_mode(&setup.config),
            until_stopped: true,
            run_report: false,
            batch_for: BATCH_FOR,
            ..EngineConfig::default()
        },
    )?;
    let monitor_dropped = Arc::new(AtomicU64::new(0));
    let handle = engine.handle();
    let engine_thread = {
        let (events, sink, dropped) = (
            events_tx.clone(),
            sink.clone(),
            Arc::clone(&monitor_dropped),
        );
        std::thread::Builder::new()
            .name("probe-engine".into())
            .spawn(move || {
                engine.run_batched(&mut |batch| forward(batch, sink.as_ref(), &events, &dropped));
            })
            .context("cannot start the probe engine thread")?
    };

    let resolver = {
        let events = events_tx.clone();
        Resolver::new(move |a| events.send(Event::Resolved(a)).is_ok())
    };
    let (delivery_tx, delivery_rx) = mpsc::channel::<Delivery>();
    let dispatcher = Dispatcher::start(
        make_notifiers(&setup.config, args.tui)?,
        delivery_tx.clone(),
    );
    let mut monitor = Monitor {
        traces: AlertTraces::new(),
        model: MonitorModel::new(setup.rules.clone(), setup.config.outage.detector()),
        setup,
        engine: handle,
        running: Vec::new(),
        next_index: 0,
        sink,
        shared,
        dispatcher,
        delivery_tx,
        monitor_dropped,
        host: crate::record::host_name(),
        alert_id: 0,
        outputs: Vec::new(),
        reported_drops: 0,
        target_metrics: HashMap::new(),
        resolver,
        names: HashMap::new(),
        conn_log,
        tui: args.tui,
    };
    let wanted = wanted_keys(&monitor.setup.config);
    monitor.start_targets(&wanted, &(0..wanted.len()).collect::<Vec<_>>());
    // `running` holds what a reload compares; this copy would last the whole run.
    drop(wanted);
    // Start-up (the config's parse, thousands of targets prepared) leaves freed pages behind.
    crate::heap::trim();
    monitor.size_rings();
    // What a reload compares is in `running`; the parsed sections (with their source spans)
    // would only cost memory per target from here on.
    monitor.setup.config.targets = Vec::new();

    let mut ifaces = if monitor.setup.config.ifaces.enabled {
        match IfaceSource::open() {
            Ok(s) => Some(s),
            Err(e) => {
                say!("netpulse monitor: interfaces not watched: {e}");
                None
            }
        }
    } else {
        None
    };
    let mut tracker = RateTracker::new();
    let (mut samples, mut rates, mut gone) = (Vec::new(), Vec::new(), Vec::new());
    let capture = start_capture(&monitor.setup.config, &monitor.shared);
    let tui = if args.tui {
        let quit = events_tx.clone();
        let hub = Arc::clone(&monitor.shared.live);
        crate::console::to_ui(move |text| hub.lock().message(SystemTime::now(), text));
        Some(
            crate::tui_cmd::Tui::start(Arc::clone(&monitor.shared.live), move || {
                let _ = quit.send(Event::Stop);
            })
            .context("cannot start the terminal UI")?,
        )
    } else {
        None
    };
    // The engine's thread holds the only other sender of results; ours goes so that the
    // channel closes if everything else does.
    drop(events_tx);

    let started = Instant::now();
    let mut next_tick = started + Duration::from_secs(1);
    let mut next_status = started + monitor.setup.status_every;
    if let Some(src) = ifaces.as_mut() {
        if src.poll(&mut samples).is_ok() {
            tracker.update(started.elapsed(), &samples, &mut rates, &mut gone);
        }
    }

    loop {
        match events.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok(Event::Results(batch)) => {
                monitor.results(&batch, SystemTime::now());
                continue;
            }
            Ok(Event::Stop) => break,
            Ok(Event::Reload) => {
                monitor.reload(config_path.as_deref());
                continue;
            }
            Ok(Event::Resolved(answer)) => {
                monitor.resolved(answer);
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // One tick a second: interfaces, rules, deliveries, status.
        next_tick += Duration::from_secs(1);
        if next_tick < Instant::now() {
            next_tick = Instant::now() + Duration::from_secs(1);
        }
        let now = started.elapsed();
        let wall = SystemTime::now();
        if let Some(src) = ifaces.as_mut() {
            match src.poll(&mut samples) {
                Ok(_) => {
                    rates.clear();
                    gone.clear();
                    tracker.update(now, &samples, &mut rates, &mut gone);
                    let picked: Vec<IfaceRate> = rates
                        .iter()
                        .filter(|r| {
                            src.info(r.index)
                                .is_some_and(|i| monitor.setup.ifaces.wants(i))
                        })
                        .cloned()
                        .collect();
                    monitor.ifaces(wall, &picked);
                    for (_, name) in &gone {
                        monitor.iface_gone(name, wall);
                    }
                }
                Err(e) => say!("netpulse monitor: reading interfaces: {e}"),
            }
        }
        monitor.names_tick(wall);
        monitor.tick(now, wall);
        // Once a minute, a few seconds after the minute's rows were written (the boundary's
        // transient rows are freed by then): free pages go back to the kernel.
        if unix_secs(wall).rem_euclid(60) == 5 {
            crate::heap::trim();
        }
        record_deliveries(&delivery_rx, monitor.sink.as_ref());
        // Half a tick of slack: status lines land on the tick they are due, not one later.
        if tui.is_none()
            && !monitor.setup.status_every.is_zero()
            && Instant::now() + Duration::from_millis(500) >= next_status
        {
            next_status += monitor.setup.status_every;
            if next_status < Instant::now() {
                next_status = Instant::now() + monitor.setup.status_every;
            }
            println!("{}", monitor.status_line(wall));
        }
    }

    // The terminal first, so the last messages land on the normal screen.
    if let Some(t) = tui {
        t.stop();
        // What was said while the UI ran, on the terminal it gave back.
        crate::console::to_stderr();
    }
    // Said the same whether Ctrl-C or the TUI's `q` stopped it.
    say!("netpulse monitor: stopping (Ctrl-C to quit without waiting)");
    if let Some(c) = capture {
        c.stop();
    }
    monitor.engine.stop();
    let _ = engine_thread.join();
    for w in servers {
        w.stop();
    }
    let stopped_at = SystemTime::now();
    for index in monitor.running.iter().map(|t| t.index).collect::<Vec<_>>() {
        monitor.end_outages(index, stopped_at);
    }
    // What `probe` says when it ends, for every target (seed 002's closing statistics).
    let summary = crate::output::monitor_summary(&monitor.shared.live(), started.elapsed());
    // Traces still running end at their next round.
    monitor.traces.stop.store(true, Ordering::Relaxed);
    let Monitor {
        dispatcher, sink, ..
    } = monitor;
    dispatcher.shutdown(Duration::from_secs(10));
    record_deliveries(&delivery_rx, sink.as_ref());
    if let Some(rec) = recorder {
        let report = rec.finish(SystemTime::now());
        crate::record::say_recording_end(&report, "results");
    }
    if let Some(dir) = session_dir {
        if let Err(e) = dir.finish(header) {
            say!("netpulse monitor: {e:#}");
        }
    }
    print!("{summary}");
    Ok(ExitCode::SUCCESS)
}

impl Monitor {
    /// A batch of probe results, arrived at `wall`.
    fn results(&mut self, batch: &[ProbeResult], wall: SystemTime) {
        if let Some(log) = self.conn_log.as_mut() {
            let model = &self.model;
            let logged = batch.iter().try_for_each(|r| {
                let label = model.target(r.target).map_or("?", |t| &*t.label);
                log.probe(label, r)
            });
            if let Err(e) = logged.and_then(|()| log.flush()) {
                say!("netpulse monitor: connection log stopped: {e:#}");
                self.conn_log = None;
            }
        }
        let mut live = self.shared.live();
        for r in batch {
            if let Some(m) = self.target_metrics.get(&r.target) {
                m.probe(r);
            }
            // The model counts the result in the target's second (the ring the live view
            // draws from too); the live view adds it to the totals.
            self.model.result(r, wall, &mut *live, &mut self.outputs);
            live.count(r.target, r);
            for o in self.outputs.drain(..) {
                match o {
                    Output::Outage { target, outage } => {
                        if !outage.ongoing {
                            if let Some(s) = &self.sink {
                                s.outage(target, &outage);
                            }
                        }
                        live.outage(target, &outage);
                    }
                    Output::OutageState { target, down } => {
                        if let Some(m) = self.target_metrics.get(&target) {
                            m.outage(down);
                        }
                    }
                    Output::Alert(_) => {}
                }
            }
        }
    }

    /// Sizes every target's per-second ring: the history the views show for this many
    /// targets, and at least what the model's longest window reads.
    fn size_rings(&self) {
        let mut live = self.shared.live();
        live.fit_history(self.running.len());
        live.keep_at_least(self.model.seconds_needed());
    }

    /// Target `index` stops (or the monitor does) at `at`: its outage detection ends, what it
    /// decides goes to the views and the recording (which keeps no detector of its own).
    fn end_outages(&mut self, index: usize, at: SystemTime) {
        let ended = self.model.end_outages(index, at);
        if ended.is_empty() {
            return;
        }
        let mut live = self.shared.live();
        for o in &ended {
            live.outage(index, o);
            if let Some(s) = &self.sink {
                s.outage(index, o);
            }
        }
    }

    /// One reading of the watched interfaces.
    fn ifaces(&mut self, wall: SystemTime, picked: &[IfaceRate]) {
        if let Some(s) = &self.sink {
            s.offer_traffic(wall, picked);
        }
        let mut live = self.shared.live();
        for r in picked {
            live.iface(
                &r.name,
                wall,
                r.rx_bytes_per_sec(),
                r.tx_bytes_per_sec(),
                &r.totals,
            );
            if let (Some(d), Some(rx), Some(tx)) =
                (r.delta.as_ref(), r.rx_bytes_per_sec(), r.tx_bytes_per_sec())
            {
                self.shared.metrics.iface(&r.name, d, rx, tx);
            }
            if let Some(d) = r.delta {
                self.model.iface(
                    &r.name,
                    wall,
                    d.rx_bytes,
                    d.tx_bytes,
                    d.rx_errors + d.tx_errors,
                    r.elapsed,
                );
            }
        }
    }

    /// Interface `name` vanished: its rule states resolve, its series go, the views show it
    /// as gone for a minute and then forget it.
    fn iface_gone(&mut self, name: &str, wall: SystemTime) {
        self.model.remove_iface(name);
        self.shared.metrics.remove_iface(name);
        self.shared.live().iface_gone(name, wall);
    }

    /// Once a second: the model judges, alerts go out, drop counters are brought up to date.
    fn tick(&mut self, now: Duration, wall: SystemTime) {
        {
            let mut live = self.shared.live();
            live.evict_gone_ifaces(wall);
            // Before the live view's tick moves the rings on (see `seconds_needed`).
            self.model.tick(now, wall, &*live, &mut self.outputs);
        }
        let monitor_dropped = self.monitor_dropped.load(Ordering::Relaxed);
        let record_dropped = self.sink.as_ref().map_or(0, RecordSink::dropped);
        let record_failed = self.sink.as_ref().map_or(0, RecordSink::failed_commits);
        let record_lost = self.sink.as_ref().map_or(0, RecordSink::rows_lost);
        self.model.set_dropped(DropStage::Monitor, monitor_dropped);
        self.model.set_dropped(DropStage::Recorder, record_dropped);
        let metrics = &self.shared.metrics;
        metrics.store(record_dropped, record_failed, record_lost);
        for stage in DropStage::ALL {
            metrics.dropped(stage.name(), self.model.dropped(stage));
        }
        let alerts: Vec<_> = self
            .outputs
            .drain(..)
            .filter_map(|o| match o {
                Output::Alert(e) => Some(e),
                _ => None,
            })
            .collect();
        {
            let mut live = self.shared.live();
            live.tick(wall);
            live.record_dropped = record_dropped;
            live.record_failed = record_failed;
            live.monitor_dropped = monitor_dropped;
            for e in &alerts {
                live.alert(e);
                metrics.alert(
                    &e.rule,
                    &e.subject,
                    e.severity.name(),
                    e.kind != AlertKind::Resolved,
                    e.gone,
                );
            }
        }
        for e in alerts {
            self.alert_id += 1;
            if let Some(s) = &self.sink {
                s.alert(self.alert_id, &e);
            }
            let to = self
                .setup
                .rule_notify
                .get(&e.rule)
                .cloned()
                .unwrap_or_default();
            self.trace_on_alert(self.alert_id, &e, &to);
            self.dispatcher.send(
                Alert {
                    id: self.alert_id,
                    event: e,
                    host: self.host.clone(),
                    trace: None,
                },
                &to,
            );
        }
        // Traces that finished: sent after their alert, and stored with it.
        while let Ok(done) = self.traces.done.try_recv() {
            match done.result {
                Ok((text, json)) => {
                    let hops: Vec<&str> = json["hops"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|h| h["address"].as_str().unwrap_or("???"))
                        .collect();
                    let hops = format!("{} ({} hops)", hops.join(" → "), hops.len());
                    self.shared
                        .live()
                        .alert_trace(&done.event, wall, &hops, text.clone());
                    if let Some(s) = &self.sink {
                        s.alert_trace(netpulse_store::AlertTraceRecord {
                            alert: done.id,
                            at_ms: wall
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_millis() as i64),
                            subject: done.event.subject.clone(),
                            trace: json.to_string(),
                        });
                    }
                    self.dispatcher.send(
                        Alert {
                            id: done.id,
                            event: done.event,
                            host: self.host.clone(),
                            trace: Some(Arc::new(netpulse_alert::PathTrace { text, json })),
                        },
                        &done.to,
                    );
                }
                Err(e) => say!(
                    "netpulse monitor: no trace for alert \"{}\" on {}: {e:#}",
                    done.event.rule,
                    done.event.subject
                ),
            }
        }
        let drops = monitor_dropped + record_dropped;
        if drops > self.reported_drops {
            say!(
                "netpulse monitor: fell behind: results dropped so far: {monitor_dropped} by the monitor, {record_dropped} by the recording"
            );
            self.reported_drops = drops;
        }
    }

    /// Traces the target of a rule on its latency, loss, jitter or outage that just fired
    /// (see [`AlertTraces`]).
    fn trace_on_alert(&mut self, id: u64, e: &netpulse_core::alert::AlertEvent, to: &[String]) {
        use netpulse_core::alert::Metric;
        let cfg = &self.setup.config.trace;
        let about_path = matches!(
            e.metric,
            Metric::LatencyAvg
                | Metric::LatencyP95
                | Metric::Loss
                | Metric::Jitter
                | Metric::Outage
        );
        if !cfg.on_alert || e.kind != AlertKind::Fired || e.gone || !about_path {
            return;
        }
        let Some(target) = self
            .running
            .iter()
            .find(|t| *t.key.label == *e.subject)
            .map(|t| Arc::clone(&t.key.target))
        else {
            return;
        };
        let Ok(spec) = parse_target(&target) else {
            return;
        };
        let now = Instant::now();
        let every = cfg.every.get_ref().get();
        let label: Arc<str> = Arc::from(e.subject.as_str());
        if self
            .traces
            .last
            .get(&label)
            .is_some_and(|t| now.duration_since(*t) < every)
        {
            return;
        }
        if self.traces.running.load(Ordering::Relaxed) >= AlertTraces::AT_ONCE {
            say!(
                "netpulse monitor: no trace for alert \"{}\" on {}: {} traces already running",
                e.rule,
                e.subject,
                AlertTraces::AT_ONCE
            );
            return;
        }
        // Forget targets traced long ago: the map stays the size of the recent alerts.
        self.traces
            .last
            .retain(|_, t| now.duration_since(*t) < every);
        self.traces.last.insert(label, now);
        self.traces.running.fetch_add(1, Ordering::Relaxed);
        let (rounds, interval) = (cfg.rounds, cfg.interval.get_ref().get());
        let (tx, running, stop) = (
            self.traces.done_tx.clone(),
            Arc::clone(&self.traces.running),
            Arc::clone(&self.traces.stop),
        );
        let (event, to) = (e.clone(), to.to_vec());
        let spawned = std::thread::Builder::new()
            .name("alert-trace".into())
            .spawn(move || {
                let result = crate::trace_cmd::trace_for_alert(&spec.host, rounds, interval, &stop);
                running.fetch_sub(1, Ordering::Relaxed);
                let _ = tx.send(TraceDone {
                    id,
                    event,
                    to,
                    result,
                });
            });
        if spawned.is_err() {
            self.traces.running.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Starts `wanted[i]` for every `i` in `which`: each is prepared (its sockets opened; a
    /// name is handed to the resolver), then all are told to the recording in one message, and
    /// only then do they start probing — so the recording knows every target before its first
    /// result, and thousands of targets do not crowd the recording's queue while results
    /// already flow.
    fn start_targets(&mut self, wanted: &[TargetKey], which: &[usize]) {
        // One line per distinct error: a thousand ICMP targets without permission say it once.
        let mut errors: Vec<(String, String, usize)> = Vec::new();
        let mut ready = Vec::with_capacity(which.len());
        for &i in which {
            let key = &wanted[i];
            match self.prepare_target(key, self.next_index + ready.len()) {
                Ok((kind, starting)) => ready.push((key.clone(), kind, starting)),
                Err(e) => {
                    let text = format!("{e:#}");
                    match errors.iter_mut().find(|(t, ..)| *t == text) {
                        Some((_, _, n)) => *n += 1,
                        None => errors.push((text, key.label.to_string(), 0)),
                    }
                }
            }
        }
        for (text, label, more) in errors {
            let also = if more > 0 {
                format!(" (and {more} more targets with the same error)")
            } else {
                String::new()
            };
            say!("netpulse monitor: target \"{label}\" not probed{also}: {text}");
        }
        if let Some(s) = &self.sink {
            s.add_targets(
                ready
                    .iter()
                    .map(|(key, kind, _)| RecordTarget {
                        label: key.label.to_string(),
                        kind: kind.to_string(),
                        address: key.target.to_string(),
                        interval: key.interval,
                        timeout: key.timeout,
                    })
                    .collect(),
            );
        }
        self.model.reserve_targets(ready.len());
        self.target_metrics.reserve(ready.len());
        self.running.reserve_exact(ready.len());
        self.shared.live().reserve_targets(ready.len());
        let now = Instant::now();
        for (key, kind, starting) in ready {
            let index = self.next_index;
            self.next_index += 1;
            self.model
                .add_target(index, Arc::clone(&key.label), kind, key.interval);
            self.target_metrics.insert(
                index,
                self.shared.metrics.target(Arc::clone(&key.label), kind),
            );
            self.shared.live().add_target(
                index,
                Arc::clone(&key.label),
                Arc::clone(&key.target),
                kind,
            );
            match starting {
                Starting::Now(prepared) => self.engine.start(prepared),
                Starting::Resolving(host) => {
                    self.resolver.ask(index, &host);
                    self.names.insert(
                        index,
                        NameState {
                            key: key.clone(),
                            host,
                            addr: None,
                            asked: true,
                            next_ask: now,
                            failures: 0,
                            error: None,
                            next_seq: 1,
                            next_fail: now,
                        },
                    );
                }
            }
            self.running.push(RunningTarget { key, index });
        }
    }

    /// Opens the sockets of `key` as engine target `index`, or, for a name, says it waits for
    /// the resolver; returns its kind name.
    fn prepare_target(
        &self,
        key: &TargetKey,
        index: usize,
    ) -> anyhow::Result<(&'static str, Starting)> {
        let spec = parse_target(&key.target)?;
        let kind = spec.kind.name();
        // An HTTP(S) target resolves its name on every probe (a DNS phase): it starts now.
        let http = matches!(spec.kind, netpulse_core::target::TargetKind::Http { .. });
        let literal = spec.host.parse::<IpAddr>().ok();
        let address = match literal {
            Some(addr) => Ok(addr),
            None if http => Ok(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            None => Err(()),
        };
        match address {
            Ok(addr) => {
                let plan = probe_plan(key, spec.kind, addr);
                Ok((kind, Starting::Now(self.engine.prepare(index, plan)?)))
            }
            Err(_) => Ok((kind, Starting::Resolving(spec.host.into()))),
        }
    }

    /// An answer of the resolver for target `index`.
    fn resolved(&mut self, answer: Answer) {
        let now = Instant::now();
        let index = answer.index;
        // A target stopped meanwhile (reload) has no state any more: nothing to do.
        let Some(st) = self.names.get_mut(&index) else {
            return;
        };
        st.asked = false;
        let (label, host) = (Arc::clone(&st.key.label), st.host.clone());
        let again = self.setup.config.monitor.resolve_every.get_ref().get();
        match (answer.result, st.addr) {
            (Ok(addr), Some(was)) if addr == was => {
                st.failures = 0;
                st.next_ask = now + again;
            }
            (Ok(addr), None) => {
                st.failures = 0;
                st.next_ask = now + again;
                st.addr = Some(addr);
                let waited = st.error.take().is_some();
                let (key, next_seq) = (st.key.clone(), st.next_seq);
                let started = parse_target(&key.target)
                    .map_err(anyhow::Error::from)
                    .and_then(|spec| {
                        Ok(self
                            .engine
                            .prepare(index, probe_plan(&key, spec.kind, addr))?)
                    });
                match started {
                    Ok(prepared) => {
                        if waited {
                            say!(
                                "netpulse monitor: target \"{label}\": {host} resolves to {addr} now: probing it"
                            );
                        }
                        self.engine.start(prepared.continuing_from(next_seq));
                    }
                    Err(e) => {
                        say!("netpulse monitor: target \"{label}\" not probed: {e:#}");
                        self.stop_target(index, SystemTime::now());
                        self.running.retain(|t| t.index != index);
                    }
                }
            }
            (Ok(addr), Some(was)) => {
                say!(
                    "netpulse monitor: target \"{label}\": {host} resolves to {addr} now (was {was}): probing the new address"
                );
                // As a reload does: the old one stops, the same key starts again (and resolves
                // again); the recording continues its rows under the same label.
                let key = st.key.clone();
                self.stop_target(index, SystemTime::now());
                self.running.retain(|t| t.index != index);
                self.start_targets(std::slice::from_ref(&key), &[0]);
                self.size_rings();
            }
            (Err(e), addr) => {
                st.failures += 1;
                // The notifiers' schedule: 1 s, 2 s, 4 s … at most a minute.
                st.next_ask = now + netpulse_alert::Backoff::default().after(st.failures);
                match addr {
                    Some(addr) => {
                        if st.failures == 1 {
                            say!(
                                "netpulse monitor: target \"{label}\": looking {host} up again failed ({e}): still probing {addr}"
                            );
                        }
                    }
                    None => {
                        if st.error.as_deref() != Some(e.as_str()) {
                            say!(
                                "netpulse monitor: target \"{label}\" not resolved: {e}: it counts as failing and is looked up again (after 1s, 2s, 4s … at most every minute)"
                            );
                        }
                        if st.error.is_none() {
                            st.next_fail = now;
                        }
                        st.error = Some(e);
                    }
                }
            }
        }
    }

    /// Once a second: names due are looked up (again), and each target still waiting for its
    /// name fails a probe when one is due (every interval, at most one a second), so its loss,
    /// outages and rules read what a user sees: nothing answers.
    fn names_tick(&mut self, wall: SystemTime) {
        let now = Instant::now();
        let mut failed = Vec::new();
        for (&index, st) in &mut self.names {
            if !st.asked && st.next_ask <= now {
                st.asked = true;
                self.resolver.ask(index, &st.host);
            }
            let Some(error) = st.error.as_deref().filter(|_| st.addr.is_none()) else {
                continue;
            };
            if st.next_fail <= now {
                failed.push(ProbeResult {
                    target: index,
                    seq: st.next_seq,
                    sent_at: wall,
                    rtt: None,
                    outcome: Outcome::Error(format!("cannot resolve {}: {error}", st.host)),
                    detail: Detail::None,
                    send_delay: Duration::ZERO,
                    late: false,
                });
                st.next_seq += 1;
                let every = st.key.interval.max(Duration::from_secs(1));
                st.next_fail = (st.next_fail + every).max(now);
            }
        }
        if failed.is_empty() {
            return;
        }
        let batch: Arc<[ProbeResult]> = failed.into();
        if let Some(s) = &self.sink {
            s.offer_batch(Arc::clone(&batch));
        }
        self.results(&batch, wall);
    }

    /// Stops target `index` everywhere but in `running` (the caller keeps that in step): no
    /// more probes, its outage ends at `at`, its series, rows and views are let go.
    fn stop_target(&mut self, index: usize, at: SystemTime) {
        self.engine.remove(index);
        self.names.remove(&index);
        self.end_outages(index, at);
        if let Some(t) = self.model.target(index) {
            self.shared.metrics.remove_target(&t.label, t.kind);
            if let Some(sink) = &self.sink {
                sink.remove_target(index, &t.label, at);
            }
        }
        self.target_metrics.remove(&index);
        self.model.remove_target(index);
        self.shared.live().remove_target(index);
    }

    /// SIGHUP: the new config's plan is carried out; a broken file changes nothing.
    fn reload(&mut self, path: Option<&std::path::Path>) {
        let new = match reload(path) {
            Ok(new) => new,
            Err(e) => {
                say!("netpulse monitor: reload failed, the running config stays: {e:#}");
                return;
            }
        };
        let wanted = wanted_keys(&new.config);
        let running: Vec<(usize, TargetKey)> = self
            .running
            .iter()
            .map(|t| (t.index, t.key.clone()))
            .collect();
        let plan = plan_reload(&running, &wanted);
        for &index in &plan.stop {
            self.stop_target(index, SystemTime::now());
        }
        let stopped: std::collections::HashSet<usize> = plan.stop.iter().copied().collect();
        self.running.retain(|t| !stopped.contains(&t.index));
        let before = running.len();
        let kept = self.running.len();
        self.start_targets(&wanted, &plan.start);
        self.model.replace_rules(new.rules.clone());
        self.size_rings();
        if new.config.notifiers != self.setup.config.notifiers {
            match make_notifiers(&new.config, self.tui) {
                Ok(n) => {
                    let old = std::mem::replace(
                        &mut self.dispatcher,
                        Dispatcher::start(n, self.delivery_tx.clone()),
                    );
                    old.shutdown(Duration::from_secs(5));
                }
                Err(e) => say!("netpulse monitor: notifiers unchanged: {e:#}"),
            }
        }
        // What a reload cannot change while running: said, not silently ignored.
        let old = &self.setup.config;
        let mut need_restart = Vec::new();
        if new.config.record != old.record {
            need_restart.push("[record]");
        }
        if new.config.listen != old.listen {
            need_restart.push("[listen]");
        }
        if new.config.capture != old.capture {
            need_restart.push("[capture]");
        }
        if new.config.outage != old.outage {
            need_restart.push("[outage]");
        }
        if new.config.ifaces.enabled != old.ifaces.enabled {
            need_restart.push("[ifaces] enabled");
        }
        say!(
            "netpulse monitor: config reloaded: {kept} of {before} targets kept running, {} started, {} rules",
            self.running.len() - kept,
            self.model.rules().len()
        );
        if !need_restart.is_empty() {
            say!(
                "netpulse monitor: {} changed in the config but take effect only at the next start \
                 (restart netpulse); the running ones stay",
                need_restart.join(", ")
            );
        }
        let running = (
            old.record.clone(),
            old.listen.clone(),
            old.capture.clone(),
            old.ifaces.enabled,
        );
        self.setup = new;
        self.setup.config.targets = Vec::new();
        // The setup keeps describing what runs, so a later reload compares with that.
        (
            self.setup.config.record,
            self.setup.config.listen,
            self.setup.config.capture,
            self.setup.config.ifaces.enabled,
        ) = running;
    }

    /// The console status line: each target (or, with many, a summary and the worst), the
    /// interfaces, alerts firing, the scheduler's lateness and any results dropped.
    fn status_line(&self, wall: SystemTime) -> String {
        let units = netpulse_core::units::Units::default();
        let sec = unix_secs(wall);
        let fmt_target = |label: &str, avg: Option<f64>, loss: Option<f64>| {
            format!(
                "{} {} {}",
                label,
                avg.map_or("-".into(), |v| format!("{v:.2} ms")),
                loss.map_or("-".into(), |v| format!(
                    "{}% loss",
                    crate::output::fmt_percent(v)
                ))
            )
        };
        let mut parts = Vec::new();
        let figures: Vec<(&str, Option<f64>, Option<f64>, bool)> = self
            .running
            .iter()
            .map(|t| {
                let (avg, loss) = self.model.status(t.index);
                let down = self.model.target(t.index).is_some_and(|m| m.in_outage());
                (&*t.key.label, avg, loss, down)
            })
            .collect();
        if figures.len() <= STATUS_TARGETS {
            for (label, avg, loss, _) in &figures {
                parts.push(fmt_target(label, *avg, *loss));
            }
        } else {
            let down = figures.iter().filter(|f| f.3).count();
            let lossy = figures
                .iter()
                .filter(|f| !f.3 && f.2.is_some_and(|l| l > 0.0))
                .count();
            let quiet = figures.iter().filter(|f| f.2.is_none()).count();
            parts.push(format!(
                "{} targets: {} ok, {lossy} with loss, {down} down{}",
                figures.len(),
                figures.len() - down - lossy - quiet,
                if quiet > 0 {
                    format!(", {quiet} no data yet")
                } else {
                    String::new()
                }
            ));
            // The worst three: most loss first, then slowest.
            let mut worst: Vec<_> = figures
                .iter()
                .filter(|f| f.1.is_some() || f.2.is_some_and(|l| l > 0.0))
                .collect();
            worst.sort_by(|a, b| {
                let key = |f: &(&str, Option<f64>, Option<f64>, bool)| {
                    (f.2.unwrap_or(0.0), f.1.unwrap_or(0.0))
                };
                key(b)
                    .partial_cmp(&key(a))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            let worst: Vec<String> = worst
                .iter()
                .take(3)
                .map(|f| fmt_target(f.0, f.1, f.2))
                .collect();
            if !worst.is_empty() {
                parts.push(format!("worst: {}", worst.join(", ")));
            }
        }
        for n in self.model.iface_names() {
            let (rx, tx) = self.model.iface_status(n, sec);
            parts.push(format!("{n} down {} up {}", units.rate(rx), units.rate(tx)));
        }
        let firing = self.model.firing().len();
        let mut line = format!(
            "{}  {}  | alerts firing: {firing}",
            humantime::format_rfc3339_seconds(wall),
            if parts.is_empty() {
                "nothing watched".to_string()
            } else {
                parts.join(" | ")
            }
        );
        let (late, sends, max) = self.model.lateness_total();
        if late > 0 {
            line.push_str(&format!(
                " | late sends: {late} of {sends} (max {:.1} ms)",
                max.as_secs_f64() * 1000.0
            ));
        }
        let (m, r) = (
            self.model.dropped(DropStage::Monitor),
            self.model.dropped(DropStage::Recorder),
        );
        if m + r > 0 {
            line.push_str(&format!(" | dropped: {m} monitor, {r} recording"));
        }
        line
    }
}

fn icmp_mode(config: &Config) -> IcmpMode {
    match config.monitor.icmp_socket {
        crate::config::IcmpSocket::Auto => IcmpMode::Auto,
        crate::config::IcmpSocket::Dgram => IcmpMode::Dgram,
        crate::config::IcmpSocket::Raw => IcmpMode::Raw,
    }
}

fn start_servers(
    args: &crate::cli::MonitorArgs,
    config: &Config,
    db_path: Option<&std::path::Path>,
    shared: &Arc<netpulse_web::Shared>,
) -> anyhow::Result<Vec<netpulse_web::WebServer>> {
    let listen = &config.listen;
    let parse_addr = |what: &str, text: &str| -> anyhow::Result<Option<std::net::SocketAddr>> {
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).with_context(|| {
            format!("[listen] {what} = {text:?} is not an address like 127.0.0.1:9750")
        })
    };
    let web_addr = match args.web {
        Some(a) => Some(a),
        None => parse_addr("web", &listen.web)?,
    };
    let token = args
        .token
        .clone()
        .or_else(|| (!listen.token.is_empty()).then(|| listen.token.clone()));
    let serve = |addr, metrics_only| {
        netpulse_web::start(
            netpulse_web::WebConfig {
                addr,
                token: token.clone(),
                insecure_no_auth: args.insecure_no_auth,
                db: db_path.map(std::path::Path::to_path_buf),
                metrics_only,
            },
            Arc::clone(shared),
        )
    };
    let mut servers = Vec::new();
    if let Some(addr) = web_addr {
        let server = serve(addr, false)?;
        say!(
            "netpulse monitor: dashboard on http://{}/ (Prometheus metrics on /metrics)",
            server.addr()
        );
        servers.push(server);
    }
    if let Some(addr) = parse_addr("metrics", &listen.metrics)? {
        let server = serve(addr, true)?;
        say!(
            "netpulse monitor: Prometheus metrics on http://{}/metrics",
            server.addr()
        );
        servers.push(server);
    }
    Ok(servers)
}

fn start_capture(
    config: &Config,
    shared: &Arc<netpulse_web::Shared>,
) -> Option<crate::worker::Worker> {
    let c = &config.capture;
    if c.interface.is_empty() {
        return None;
    }
    let filter = (!c.filter.is_empty()).then_some(c.filter.as_str());
    match crate::monitor_capture::MonitorCapture::start(&c.interface, filter, Arc::clone(shared)) {
        Ok(cap) => {
            say!("netpulse monitor: capturing on {}", c.interface);
            Some(cap)
        }
        Err(e) => {
            say!("netpulse monitor: no capture on {}: {e:#}", c.interface);
            None
        }
    }
}

fn make_setup(config: Config) -> anyhow::Result<Setup> {
    let mut rule_notify = HashMap::new();
    let mut rules = Vec::with_capacity(config.rules.len());
    for r in &config.rules {
        let (rule, window) = config.rule(r).map_err(|(_, m)| anyhow::anyhow!(m))?;
        rule_notify.insert(
            rule.name.clone(),
            r.notify.iter().map(|n| n.get_ref().clone()).collect(),
        );
        rules.push(RuleSpec { rule, window });
    }
    let status_every = config.monitor.status_every.get_ref().get();
    Ok(Setup {
        ifaces: crate::ifaces_cmd::Selection {
            names: config.ifaces.names.clone(),
            all: false,
        },
        config,
        rules,
        rule_notify,
        status_every,
    })
}

fn reload(path: Option<&std::path::Path>) -> anyhow::Result<Setup> {
    let config = match path {
        Some(p) => Config::load(p)?,
        None => Config::builtin(),
    };
    make_setup(config)
}

/// A target section as the monitor keys it (its durations were parsed with the file).
fn target_key(config: &Config, t: &TargetSection) -> TargetKey {
    TargetKey {
        target: Arc::from(t.target.get_ref().as_str()),
        interval: t.interval.get_ref().get(),
        timeout: t.timeout.get_ref().get(),
        label: Arc::from(config.label_of(t)),
        size: t.size,
        // Validated when the config was read: a bad option never gets here.
        http: match parse_target(t.target.get_ref()) {
            Ok(spec) if matches!(spec.kind, netpulse_core::target::TargetKind::Http { .. }) => {
                t.http_options().ok().map(|options| {
                    Arc::new(netpulse_core::target::HttpRequest {
                        host: spec.host,
                        options,
                    })
                })
            }
            _ => None,
        },
    }
}

/// The targets a config asks for, as keys.
fn wanted_keys(config: &Config) -> Vec<TargetKey> {
    config
        .targets
        .iter()
        .map(|t| target_key(config, t))
        .collect()
}

fn record_deliveries(rx: &Receiver<Delivery>, sink: Option<&RecordSink>) {
    while let Ok(d) = rx.try_recv() {
        if !d.ok && d.last {
            say!(
                "netpulse monitor: alert delivery by {} failed after {} attempt(s): {}",
                d.notifier,
                d.attempt,
                d.detail
            );
        }
        if let Some(s) = sink {
            s.delivery(DeliveryRecord {
                alert: d.alert_id,
                notifier: d.notifier,
                attempt: d.attempt,
                ok: d.ok,
                detail: d.detail,
                at: d.at,
                last: d.last,
            });
        }
    }
}
/// The config's notifiers; with `tui`, console ones say their lines through [`say`] (into the
/// terminal UI while it runs) instead of writing over it.
fn make_notifiers(config: &Config, tui: bool) -> anyhow::Result<Vec<Box<dyn Notifier>>> {
    let mut out: Vec<Box<dyn Notifier>> = Vec::new();
    for n in &config.notifiers {
        let name = n.name();
        out.push(match n {
            NotifierKind::Console { .. } if tui => Box::new(ConsoleNotifier::to(&name, |line| {
                crate::console::say_line(line.to_string())
            })),
            NotifierKind::Console { .. } => Box::new(ConsoleNotifier::new(&name)),
            NotifierKind::Webhook {
                url,
                timeout,
                retries,
                headers,
                ..
            } => Box::new(WebhookNotifier::new(
                &name,
                url,
                headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                timeout.get(),
                *retries,
            )),
            NotifierKind::Email {
                server,
                port,
                security,
                username,
                password,
                password_env,
                from,
                to,
                timeout,
                retries,
                ..
            } => {
                let password = match (password, password_env) {
                    (Some(p), _) => Some(p.clone()),
                    (None, Some(var)) => Some(std::env::var(var).with_context(|| {
                        format!("notifier \"{name}\": environment variable {var} (password_env) is not set")
                    })?),
                    (None, None) => None,
                };
                let credentials = username.clone().zip(password);
                let security: EmailSecurity = security
                    .parse()
                    .with_context(|| format!("notifier \"{name}\": security"))?;
                Box::new(
                    EmailNotifier::new(
                        &name, server, *port, security, credentials, from, to, timeout.get(),
                        *retries,
                    )
                    .map_err(|e| anyhow::anyhow!("notifier \"{name}\": {e}"))?,
                )
            }
            NotifierKind::Exec {
                program,
                args,
                timeout,
                retries,
                ..
            } => Box::new(ExecNotifier::new(&name, program, args, timeout.get(), *retries)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netpulse_core::record::{Detail, Outcome};

    fn result(seq: u64) -> ProbeResult {
        ProbeResult {
            target: 0,
            seq,
            sent_at: SystemTime::UNIX_EPOCH,
            rtt: None,
            outcome: Outcome::Timeout,
            detail: Detail::None,
            send_delay: Duration::ZERO,
            late: false,
        }
    }

    #[test]
    fn a_full_queue_is_counted_not_lost_silently() {
        let (tx, rx) = mpsc::sync_channel::<Event>(2);
        let dropped = AtomicU64::new(0);
        // Batches of 1, 2, 3, 4 results: the first two fit, the last two (7 results) do not.
        let mut seq = 0;
        for n in 1..=4 {
            let mut batch: Vec<ProbeResult> = (0..n)
                .map(|_| {
                    seq += 1;
                    result(seq)
                })
                .collect();
            forward(&mut batch, None, &tx, &dropped);
            assert!(
                batch.is_empty(),
                "the batch is handed over or dropped, never kept"
            );
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 7);
        let got: Vec<u64> = rx
            .try_iter()
            .flat_map(|e| match e {
                Event::Results(v) => v.iter().map(|r| r.seq).collect(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(got, vec![1, 2, 3]);
        // Once the loop is gone nothing is counted as dropped: there is nobody to show it to.
        drop(rx);
        forward(&mut vec![result(11)], None, &tx, &dropped);
        assert_eq!(dropped.load(Ordering::Relaxed), 7);
    }
}
