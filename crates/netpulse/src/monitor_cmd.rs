//! `netpulse monitor`: every source from one config, recorded, judged against alert rules,
//! delivered by notifiers; a status line on the console. SIGHUP reloads the config: targets
//! whose settings did not change keep probing, untouched, and the recording goes on.

use crate::config::{Config, NotifierKind, TargetSection};
use anyhow::Context;
use netpulse_alert::{
    Alert, ConsoleNotifier, Delivery, Dispatcher, EmailNotifier, EmailSecurity, ExecNotifier,
    Notifier, WebhookNotifier,
};
use netpulse_core::alert::{Metric, RuleEngine};
use netpulse_core::iface::{IfaceRate, RateTracker};
use netpulse_core::outage::{OutageConfig, OutageDetector};
use netpulse_core::parse_duration;
use netpulse_core::record::ProbeResult;
use netpulse_core::rollup::unix_secs;
use netpulse_core::stats::ProbeStats;
use netpulse_core::target::parse_target;
use netpulse_iface::IfaceSource;
use netpulse_probe::{resolve, Engine, EngineConfig, Family, IcmpMode, ProbePlan, StopHandle};
use netpulse_store::{DeliveryRecord, RecordSink, RecordTarget, Recorder};
use std::collections::{HashMap, VecDeque};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// What the main loop hears about.
enum Event {
    Result(ProbeResult),
    Stop,
    Reload,
}

/// Results waiting for the main loop before they are dropped (and counted).
const QUEUE: usize = 1 << 16;

/// What identifies a running target: a reload keeps it running if all of this is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TargetKey {
    target: String,
    label: String,
    interval: Duration,
    timeout: Duration,
    size: usize,
}

struct RunningTarget {
    key: TargetKey,
    /// Probe kind name (`icmp`, `tcp`, …).
    kind: String,
    /// Index in the recording (stable for the session).
    index: usize,
    stop: StopHandle,
    thread: JoinHandle<()>,
}

/// Per-second probe statistics by arrival, for rule windows.
#[derive(Default)]
struct TargetWindow {
    seconds: VecDeque<(i64, ProbeStats)>,
    outage: Option<OutageDetector>,
}

/// Per-second interface traffic, for rule windows: (second, rx bytes, tx bytes, errors, ms).
#[derive(Default)]
struct IfaceWindow {
    seconds: VecDeque<(i64, u64, u64, u64, u64)>,
}

/// Everything the config decides, rebuilt on reload.
struct Setup {
    config: Config,
    /// The rules, parsed once.
    rules: Vec<netpulse_core::alert::Rule>,
    rules_window: HashMap<String, Duration>,
    rule_notify: HashMap<String, Vec<String>>,
    status_every: Duration,
    /// Which interfaces are watched.
    ifaces: crate::ifaces_cmd::Selection,
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
            eprintln!(
                "netpulse monitor: no --config: using the built-in default (print it with `netpulse config default`)"
            );
            Config::builtin()
        }
    };
    if config.targets.is_empty() {
        eprintln!("netpulse monitor: no targets (no default gateway or nameserver found): watching interfaces only");
    }
    let host = crate::record::host_name();
    let mut setup = make_setup(config)?;

    let db_path = setup
        .config
        .record
        .enabled
        .then(|| crate::record::db_path(std::path::Path::new(&setup.config.record.db)));
    let recorder = if let Some(path) = &db_path {
        let rec = crate::record::start_traffic(
            path,
            setup.config.record.retention.get_ref(),
            serde_json::json!({ "config": config_path.as_ref().map(|p| p.display().to_string()) }),
        )
        .with_context(|| format!("cannot record to {}", path.display()))?;
        eprintln!("netpulse monitor: recording to {}", path.display());
        Some(rec)
    } else {
        None
    };
    let sink = recorder.as_ref().map(Recorder::sink);
    let shared = Arc::new(netpulse_web::Shared::default());
    let listen = &setup.config.listen;
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
                db: db_path.clone(),
                metrics_only,
            },
            Arc::clone(&shared),
        )
    };
    let mut servers = Vec::new();
    if let Some(addr) = web_addr {
        let server = serve(addr, false)?;
        eprintln!(
            "netpulse monitor: dashboard on http://{}/ (Prometheus metrics on /metrics)",
            server.addr()
        );
        servers.push(server);
    }
    if let Some(addr) = parse_addr("metrics", &listen.metrics)? {
        let server = serve(addr, true)?;
        eprintln!(
            "netpulse monitor: Prometheus metrics on http://{}/metrics",
            server.addr()
        );
        servers.push(server);
    }
    let (delivery_tx, delivery_rx) = mpsc::channel::<Delivery>();
    let mut dispatcher = Dispatcher::start(make_notifiers(&setup.config)?, delivery_tx.clone());
    let mut rules = RuleEngine::new(setup.rules.clone());

    let mut running: Vec<RunningTarget> = Vec::new();
    // Recording index of the next target started (targets added on reload get new ones).
    let mut next_index = 0usize;
    let mut windows: HashMap<usize, TargetWindow> = HashMap::new();
    start_targets(
        &setup.config,
        &mut running,
        &mut next_index,
        &events_tx,
        sink.as_ref(),
        &shared,
    );

    let mut ifaces = if setup.config.ifaces.enabled {
        match IfaceSource::open() {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("netpulse monitor: interfaces not watched: {e}");
                None
            }
        }
    } else {
        None
    };
    let mut tracker = RateTracker::new();
    let (mut samples, mut rates, mut gone) = (Vec::new(), Vec::new(), Vec::new());
    let mut iface_windows: HashMap<String, IfaceWindow> = HashMap::new();

    let capture = if setup.config.capture.interface.is_empty() {
        None
    } else {
        let c = &setup.config.capture;
        let filter = (!c.filter.is_empty()).then_some(c.filter.as_str());
        match crate::monitor_capture::MonitorCapture::start(
            &c.interface,
            filter,
            Arc::clone(&shared),
        ) {
            Ok(cap) => {
                eprintln!("netpulse monitor: capturing on {}", c.interface);
                Some(cap)
            }
            Err(e) => {
                eprintln!("netpulse monitor: no capture on {}: {e:#}", c.interface);
                None
            }
        }
    };
    let tui = if args.tui {
        let quit = events_tx.clone();
        Some(
            crate::tui_cmd::Tui::start(Arc::clone(&shared), move || {
                let _ = quit.send(Event::Stop);
            })
            .context("cannot start the terminal UI")?,
        )
    } else {
        None
    };

    let started = Instant::now();
    let mut next_tick = started + Duration::from_secs(1);
    let mut next_status = started + setup.status_every;
    let mut alert_id = 0u64;
    let mut dropped = 0u64;
    let mut alert_events = Vec::new();
    let outage_cfg = OutageConfig::default();
    if let Some(src) = ifaces.as_mut() {
        if src.poll(&mut samples).is_ok() {
            tracker.update(started.elapsed(), &samples, &mut rates, &mut gone);
        }
    }

    loop {
        match events.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok(Event::Result(r)) => {
                let w = windows.entry(r.target).or_default();
                let wall = SystemTime::now();
                let sec = unix_secs(wall);
                let (label, kind) = running
                    .iter()
                    .find(|t| t.index == r.target)
                    .map(|t| (t.key.label.as_str(), t.kind.as_str()))
                    .unwrap_or_default();
                shared.metrics.probe(label, kind, &r);
                let mut live = shared.live();
                live.result(r.target, &r, wall);
                match w.seconds.back_mut() {
                    Some((s, stats)) if *s == sec => stats.record(&r),
                    _ => {
                        let mut stats = ProbeStats::default();
                        stats.record(&r);
                        w.seconds.push_back((sec, stats));
                    }
                }
                let detector = w
                    .outage
                    .get_or_insert_with(|| OutageDetector::new(outage_cfg, r.seq));
                let was_out = detector.in_outage();
                let ended = detector.record(r.seq, r.sent_at, r.outcome.is_reply());
                let (now_out, start) = (detector.in_outage(), detector.current_start());
                for o in &ended {
                    live.outage(r.target, o);
                }
                if now_out {
                    if let Some(start) = start {
                        live.outage(
                            r.target,
                            &netpulse_core::outage::Outage {
                                start,
                                end: r.sent_at,
                                sent: 0,
                                received: 0,
                                ongoing: true,
                            },
                        );
                    }
                }
                if now_out != was_out || !ended.is_empty() {
                    shared.metrics.outage(label, kind, now_out);
                }
                continue;
            }
            Ok(Event::Stop) => break,
            Ok(Event::Reload) => {
                match reload(config_path.as_deref()) {
                    Ok(new) => {
                        let before = running.len();
                        stop_removed(&new.config, &mut running);
                        let kept = running.len();
                        {
                            let mut live = shared.live();
                            for i in 0..live.targets.len() {
                                if !running.iter().any(|r| r.index == i) {
                                    live.remove_target(i);
                                }
                            }
                        }
                        start_targets(
                            &new.config,
                            &mut running,
                            &mut next_index,
                            &events_tx,
                            sink.as_ref(),
                            &shared,
                        );
                        rules.replace_rules(new.rules.clone());
                        if new.config.notifiers != setup.config.notifiers {
                            match make_notifiers(&new.config) {
                                Ok(n) => {
                                    let old = std::mem::replace(
                                        &mut dispatcher,
                                        Dispatcher::start(n, delivery_tx.clone()),
                                    );
                                    old.shutdown(Duration::from_secs(5));
                                }
                                Err(e) => eprintln!("netpulse monitor: notifiers unchanged: {e:#}"),
                            }
                        }
                        eprintln!(
                            "netpulse monitor: config reloaded: {kept} of {before} targets kept running, {} started, {} rules",
                            running.len() - kept,
                            rules.rules().len()
                        );
                        setup = new;
                    }
                    Err(e) => eprintln!(
                        "netpulse monitor: reload failed, the running config stays: {e:#}"
                    ),
                }
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
        let sec = unix_secs(wall);
        if let Some(src) = ifaces.as_mut() {
            match src.poll(&mut samples) {
                Ok(_) => {
                    rates.clear();
                    gone.clear();
                    tracker.update(now, &samples, &mut rates, &mut gone);
                    let picked: Vec<IfaceRate> = rates
                        .iter()
                        .filter(|r| src.info(r.index).is_some_and(|i| setup.ifaces.wants(i)))
                        .cloned()
                        .collect();
                    if let Some(s) = &sink {
                        s.offer_traffic(wall, &picked);
                    }
                    {
                        let mut live = shared.live();
                        for r in &picked {
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
                                shared.metrics.iface(&r.name, d, rx, tx);
                            }
                        }
                    }
                    for r in &picked {
                        if let Some(d) = r.delta {
                            let w = iface_windows.entry(r.name.to_string()).or_default();
                            w.seconds.push_back((
                                sec,
                                d.rx_bytes,
                                d.tx_bytes,
                                d.rx_errors + d.tx_errors,
                                r.elapsed.as_millis() as u64,
                            ));
                        }
                    }
                }
                Err(e) => eprintln!("netpulse monitor: reading interfaces: {e}"),
            }
        }
        // Evaluate every rule on every subject it applies to.
        alert_events.clear();
        let max_window = setup
            .rules_window
            .values()
            .max()
            .copied()
            .unwrap_or(Duration::from_secs(10));
        for rule in &setup.rules {
            let window = setup
                .rules_window
                .get(&rule.name)
                .copied()
                .unwrap_or(Duration::from_secs(10));
            let from = sec - window.as_secs() as i64;
            if rule.metric.is_interface() {
                for (name, w) in &iface_windows {
                    let value = iface_value(rule.metric, w, from);
                    rules.observe(rule.metric, name, value, now, wall, &mut alert_events);
                }
            } else {
                for t in &running {
                    let w = windows.get(&t.index);
                    let value = w.and_then(|w| target_value(rule.metric, w, from));
                    rules.observe(
                        rule.metric,
                        &t.key.label,
                        value,
                        now,
                        wall,
                        &mut alert_events,
                    );
                }
            }
        }
        // Keep windows bounded by the longest rule window.
        let keep_from = sec - max_window.as_secs() as i64 - 1;
        for w in windows.values_mut() {
            while w.seconds.front().is_some_and(|(s, _)| *s < keep_from) {
                w.seconds.pop_front();
            }
        }
        for w in iface_windows.values_mut() {
            while w.seconds.front().is_some_and(|(s, ..)| *s < keep_from) {
                w.seconds.pop_front();
            }
        }
        iface_windows.retain(|_, w| !w.seconds.is_empty());
        {
            let mut live = shared.live();
            live.tick(wall);
            live.record_dropped = sink.as_ref().map_or(0, RecordSink::dropped);
            live.record_failed = sink.as_ref().map_or(0, RecordSink::failed_commits);
            for e in &alert_events {
                live.alert(e);
                shared.metrics.alert(
                    &e.rule,
                    &e.subject,
                    e.severity.name(),
                    e.kind != netpulse_core::alert::AlertKind::Resolved,
                );
            }
        }
        for e in alert_events.drain(..) {
            alert_id += 1;
            if let Some(s) = &sink {
                s.alert(alert_id, &e);
            }
            let to = setup.rule_notify.get(&e.rule).cloned().unwrap_or_default();
            dispatcher.send(
                Alert {
                    id: alert_id,
                    event: e,
                    host: host.clone(),
                },
                &to,
            );
        }
        record_deliveries(&delivery_rx, sink.as_ref());
        // Half a tick of slack: status lines land on the tick they are due, not one later.
        if tui.is_none()
            && !setup.status_every.is_zero()
            && Instant::now() + Duration::from_millis(500) >= next_status
        {
            next_status += setup.status_every;
            if next_status < Instant::now() {
                next_status = Instant::now() + setup.status_every;
            }
            print_status(wall, &running, &windows, &iface_windows, &rules, sec);
        }
        let d = sink.as_ref().map_or(0, RecordSink::dropped);
        if d > dropped {
            eprintln!(
                "netpulse monitor: recording fell behind: {} results dropped so far",
                d
            );
            dropped = d;
        }
    }

    // The terminal first, so the last messages land on the normal screen.
    if let Some(t) = tui {
        t.stop();
    }
    eprintln!("netpulse monitor: stopping (Ctrl-C again to quit now)");
    if let Some(c) = capture {
        c.stop();
    }
    for t in running.drain(..) {
        t.stop.stop();
        let _ = t.thread.join();
    }
    for w in servers {
        w.stop();
    }
    dispatcher.shutdown(Duration::from_secs(10));
    record_deliveries(&delivery_rx, sink.as_ref());
    if let Some(rec) = recorder {
        let report = rec.finish(SystemTime::now());
        if let Some(e) = report.first_error {
            eprintln!("netpulse monitor: recording: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn make_setup(config: Config) -> anyhow::Result<Setup> {
    let mut rules_window = HashMap::new();
    let mut rule_notify = HashMap::new();
    let mut rules = Vec::with_capacity(config.rules.len());
    for r in &config.rules {
        let (rule, window) = config.rule(r).map_err(|(_, m)| anyhow::anyhow!(m))?;
        rules_window.insert(rule.name.clone(), window);
        rule_notify.insert(
            rule.name.clone(),
            r.notify.iter().map(|n| n.get_ref().clone()).collect(),
        );
        rules.push(rule);
    }
    let status_every = parse_duration(config.monitor.status_every.get_ref())?;
    Ok(Setup {
        ifaces: crate::ifaces_cmd::Selection {
            names: config.ifaces.names.clone(),
            all: false,
        },
        config,
        rules,
        rules_window,
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

fn target_key(config: &Config, t: &TargetSection) -> Option<TargetKey> {
    Some(TargetKey {
        target: t.target.get_ref().clone(),
        label: config.label_of(t),
        interval: parse_duration(t.interval.get_ref()).ok()?,
        timeout: parse_duration(t.timeout.get_ref()).ok()?,
        size: t.size,
    })
}

/// Stops targets the new config no longer has (or has with other settings).
fn stop_removed(config: &Config, running: &mut Vec<RunningTarget>) {
    let wanted: Vec<TargetKey> = config
        .targets
        .iter()
        .filter_map(|t| target_key(config, t))
        .collect();
    let (keep, stop): (Vec<_>, Vec<_>) = running.drain(..).partition(|t| wanted.contains(&t.key));
    for t in stop {
        t.stop.stop();
        // Its last answers are awaited in its own thread; no need to wait here.
        drop(t.thread);
    }
    *running = keep;
}

/// Starts every configured target not already running.
fn start_targets(
    config: &Config,
    running: &mut Vec<RunningTarget>,
    next_index: &mut usize,
    events: &SyncSender<Event>,
    sink: Option<&RecordSink>,
    shared: &netpulse_web::Shared,
) {
    let icmp_mode = match config.monitor.icmp_socket.get_ref().as_str() {
        "dgram" => IcmpMode::Dgram,
        "raw" => IcmpMode::Raw,
        _ => IcmpMode::Auto,
    };
    for t in &config.targets {
        let Some(key) = target_key(config, t) else {
            continue;
        };
        if running.iter().any(|r| r.key == key) {
            continue;
        }
        match start_target(&key, icmp_mode, *next_index, events, sink) {
            Ok((stop, thread)) => {
                let kind = parse_target(&key.target)
                    .map(|s| s.kind.name().to_string())
                    .unwrap_or_default();
                if let Some(s) = sink {
                    s.add_target(RecordTarget {
                        label: key.label.clone(),
                        kind: kind.clone(),
                        address: key.target.clone(),
                        interval: key.interval,
                        timeout: key.timeout,
                    });
                }
                shared
                    .live()
                    .add_target(*next_index, &key.label, &key.target, &kind);
                running.push(RunningTarget {
                    index: *next_index,
                    kind,
                    key,
                    stop,
                    thread,
                });
                *next_index += 1;
            }
            Err(e) => eprintln!(
                "netpulse monitor: target \"{}\" not probed: {e:#}",
                key.label
            ),
        }
    }
}

fn start_target(
    key: &TargetKey,
    icmp_mode: IcmpMode,
    index: usize,
    events: &SyncSender<Event>,
    sink: Option<&RecordSink>,
) -> anyhow::Result<(StopHandle, JoinHandle<()>)> {
    let spec = parse_target(&key.target)?;
    let addr = resolve(&spec.host, Family::Any)?;
    let plan = ProbePlan {
        label: key.label.clone(),
        kind: spec.kind.clone(),
        addr,
        interval: key.interval,
        timeout: key.timeout,
        count: None,
    };
    let engine = Engine::new(
        vec![plan],
        EngineConfig {
            icmp_mode,
            payload_size: key.size,
            deadline: None,
        },
    )?;
    let stop = engine.stop_handle();
    let (events, sink) = (events.clone(), sink.cloned());
    let thread = std::thread::Builder::new()
        .name(format!("probe-{index}"))
        .spawn(move || {
            let mut forward = |r: &ProbeResult| {
                let mut r = r.clone();
                r.target = index;
                if let Some(s) = &sink {
                    s.offer(&r);
                }
                // The main loop only judges; when it lags, a result is skipped for alerting
                // (never for recording).
                if let Err(TrySendError::Full(_)) = events.try_send(Event::Result(r)) {}
            };
            engine.run(&mut forward);
        })?;
    Ok((stop, thread))
}

fn target_value(metric: Metric, w: &TargetWindow, from: i64) -> Option<f64> {
    if metric == Metric::Outage {
        return w
            .outage
            .as_ref()
            .map(|d| if d.in_outage() { 1.0 } else { 0.0 });
    }
    let mut stats = ProbeStats::default();
    for (_, s) in w.seconds.iter().filter(|(s, _)| *s > from) {
        stats.merge(s);
    }
    if stats.sent == 0 {
        return None;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    match metric {
        Metric::Loss => Some(stats.loss()),
        Metric::LatencyAvg => stats.rtt.mean().map(ms),
        Metric::LatencyP95 => stats.rtt.quantile(0.95).map(ms),
        Metric::Jitter => stats.jitter.rfc3550().map(ms),
        _ => None,
    }
}

fn iface_value(metric: Metric, w: &IfaceWindow, from: i64) -> Option<f64> {
    let (mut rx, mut tx, mut errors, mut ms) = (0u64, 0u64, 0u64, 0u64);
    for (_, r, t, e, m) in w.seconds.iter().filter(|(s, ..)| *s > from) {
        rx += r;
        tx += t;
        errors += e;
        ms += m;
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

fn record_deliveries(rx: &Receiver<Delivery>, sink: Option<&RecordSink>) {
    while let Ok(d) = rx.try_recv() {
        if !d.ok && d.last {
            eprintln!(
                "netpulse monitor: alert delivery by {} failed after {} attempt(s): {}",
                d.notifier, d.attempt, d.detail
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

fn print_status(
    wall: SystemTime,
    running: &[RunningTarget],
    windows: &HashMap<usize, TargetWindow>,
    ifaces: &HashMap<String, IfaceWindow>,
    rules: &RuleEngine,
    sec: i64,
) {
    let units = crate::units::Units::default();
    let mut parts = Vec::new();
    for t in running {
        let w = windows.get(&t.index);
        let avg = w.and_then(|w| target_value(Metric::LatencyAvg, w, sec - 10));
        let loss = w.and_then(|w| target_value(Metric::Loss, w, sec - 10));
        parts.push(format!(
            "{} {} {}",
            t.key.label,
            avg.map_or("-".into(), |v| format!("{v:.2} ms")),
            loss.map_or("-".into(), |v| format!(
                "{}% loss",
                crate::output::fmt_percent(v)
            ))
        ));
    }
    let mut names: Vec<&String> = ifaces.keys().collect();
    names.sort();
    for n in names {
        if let Some(w) = ifaces.get(n) {
            parts.push(format!(
                "{n} down {} up {}",
                units.rate(iface_value(Metric::RxRate, w, sec - 10)),
                units.rate(iface_value(Metric::TxRate, w, sec - 10))
            ));
        }
    }
    let firing = rules.firing().len();
    println!(
        "{}  {}  | alerts firing: {firing}",
        humantime::format_rfc3339_seconds(wall),
        if parts.is_empty() {
            "nothing watched".to_string()
        } else {
            parts.join(" | ")
        }
    );
}

fn make_notifiers(config: &Config) -> anyhow::Result<Vec<Box<dyn Notifier>>> {
    let dur = |s: &str| parse_duration(s).map_err(|e| anyhow::anyhow!("bad duration {s:?}: {e}"));
    let mut out: Vec<Box<dyn Notifier>> = Vec::new();
    for n in &config.notifiers {
        let name = n.name();
        out.push(match n {
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
                dur(timeout)?,
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
                let security = match security.as_str() {
                    "none" => EmailSecurity::None,
                    "tls" => EmailSecurity::Tls,
                    _ => EmailSecurity::StartTls,
                };
                Box::new(
                    EmailNotifier::new(
                        &name, server, *port, security, credentials, from, to, dur(timeout)?,
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
            } => Box::new(ExecNotifier::new(&name, program, args, dur(timeout)?, *retries)),
        });
    }
    Ok(out)
}
