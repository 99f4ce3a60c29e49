//! `netpulse probe`: wires targets → engine (its own thread) → channel → output.

use crate::cli::{IcmpSocketArg, ProbeArgs};
use crate::output;
use crate::session_file::SessionFile;
use anyhow::{bail, Context};
use netpulse_core::outage::OutageConfig;
use netpulse_core::parse_duration;
use netpulse_core::record::ProbeResult;
use netpulse_core::target::HttpRequest;
use netpulse_core::target::{parse_port_list, parse_target, TargetKind, TargetSpec};
use netpulse_core::window::WindowStats;
use netpulse_probe::{resolve, Engine, EngineConfig, Family, IcmpMode, ProbeError, ProbePlan};
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Records buffered between the engine and the output before lines are dropped (and counted).
const OUTPUT_QUEUE: usize = 1 << 16;
/// Largest ICMP/UDP payload that fits an IPv4 datagram.
const MAX_PAYLOAD: usize = 65_507 - 8;

fn duration_arg(name: &str, text: &str) -> anyhow::Result<Duration> {
    parse_duration(text).with_context(|| format!("bad {name}"))
}

/// Expands `-p` ports and parses every target; any error here is a usage error (exit 2).
fn parse_targets(args: &ProbeArgs) -> anyhow::Result<Vec<TargetSpec>> {
    let ports = args
        .ports
        .as_deref()
        .map(parse_port_list)
        .transpose()
        .context("bad -p port list")?;
    let mut specs = Vec::new();
    for text in args.targets.iter().chain(&args.more_targets) {
        let spec = parse_target(text).with_context(|| format!("bad target \"{text}\""))?;
        match (&ports, &spec.kind) {
            (Some(ports), TargetKind::Icmp) => {
                // Seed 003's "ping + ports": the host's ping, then each port.
                if !args.no_ping {
                    specs.push(spec.clone());
                }
                for &port in ports {
                    specs.push(TargetSpec {
                        kind: TargetKind::Tcp { port },
                        host: spec.host.clone(),
                    });
                }
            }
            _ => specs.push(spec),
        }
    }
    Ok(specs)
}

/// `--report-every`: a bare number is rounds of probes (seed 003's "every N checks"), anything
/// else a duration.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ReportEvery {
    Time(Duration),
    Rounds(u64),
}

impl ReportEvery {
    fn parse(text: &str) -> anyhow::Result<Self> {
        if let Ok(n) = text.trim().parse::<u64>() {
            if n == 0 {
                bail!("bad --report-every 0: at least 1 round (or a duration: 10s)");
            }
            return Ok(Self::Rounds(n));
        }
        let d = duration_arg("--report-every", text)?;
        if d < Duration::from_millis(100) {
            bail!("bad --report-every: must be at least 100ms");
        }
        Ok(Self::Time(d))
    }
}

struct Output {
    out: BufWriter<io::Stdout>,
    json: bool,
}

impl Output {
    fn line(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
    fn json(&mut self, v: &serde_json::Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")
    }
}

pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let interval = duration_arg("interval (-i)", &args.interval)?;
    if interval < Duration::from_millis(1) {
        bail!(
            "bad interval (-i) \"{}\": must be at least 1ms",
            args.interval
        );
    }
    let timeout = duration_arg("timeout (-W)", &args.timeout)?;
    if timeout.is_zero() {
        bail!("bad timeout (-W) \"{}\": must be more than 0", args.timeout);
    }
    let deadline = args
        .deadline
        .as_deref()
        .map(|d| duration_arg("deadline (-w)", d))
        .transpose()?;
    let report_every = args
        .report_every
        .as_deref()
        .map(ReportEvery::parse)
        .transpose()?;
    if args.size > MAX_PAYLOAD {
        bail!("bad size (-s) {}: at most {MAX_PAYLOAD} bytes", args.size);
    }
    let family = match (args.ipv4, args.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let specs = parse_targets(&args)?;
    let http_options = args.http.options().map_err(|e| anyhow::anyhow!(e))?;

    let mut out = Output {
        out: BufWriter::new(io::stdout()),
        json: args.json,
    };
    // Handlers before resolution: a Ctrl-C while getaddrinfo waits (seconds, for a dead name
    // server) ends the command at once; once probing, it asks for the graceful stop.
    let stop_slot = Arc::new(std::sync::OnceLock::<netpulse_probe::StopHandle>::new());
    let stopper = Arc::clone(&stop_slot);
    crate::signals::install(
        move || match stopper.get() {
            Some(engine) => {
                eprintln!(
                    "netpulse: stopping: waiting for answers in flight (Ctrl-C again to quit now)"
                );
                engine.stop();
            }
            None => {
                eprintln!("netpulse: interrupted while resolving names: nothing probed");
                std::process::exit(130);
            }
        },
        None,
    )?;
    // Resolve once, at start; a name that does not resolve is reported and the rest go on.
    let mut plans = Vec::new();
    let mut unresolved = 0usize;
    let mut unprobed = 0usize;
    for spec in &specs {
        let asked = Instant::now();
        // An HTTP(S) target resolves its name on every probe (its DNS phase), not here.
        let resolved = match (&spec.kind, spec.host.parse::<std::net::IpAddr>()) {
            (TargetKind::Http { .. }, Ok(addr)) => Ok(addr),
            (TargetKind::Http { .. }, Err(_)) => {
                Ok(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
            }
            _ => resolve(&spec.host, family),
        };
        match resolved {
            Ok(addr) => {
                if args.verbose && spec.host.parse::<std::net::IpAddr>().is_err() {
                    eprintln!(
                        "netpulse: {} is {addr} (resolved in {} ms)",
                        spec.host,
                        asked.elapsed().as_millis()
                    );
                }
                plans.push(ProbePlan {
                    label: netpulse_core::text::printable(&spec.to_string()).into_owned(),
                    kind: spec.kind.clone(),
                    addr,
                    interval,
                    timeout,
                    count: args.count,
                    payload_size: None,
                    http: match spec.kind {
                        TargetKind::Http { .. } => Some(Arc::new(HttpRequest {
                            host: spec.host.clone(),
                            options: http_options.clone(),
                        })),
                        _ => None,
                    },
                })
            }
            Err(e) => {
                unresolved += 1;
                eprintln!("netpulse: {e}");
                if out.json {
                    out.json(&serde_json::json!({
                        "type": "error", "target": spec.to_string(), "message": e.to_string(),
                    }))?;
                }
            }
        }
    }
    if plans.is_empty() {
        out.out.flush()?;
        bail!("no target could be resolved");
    }
    let config = EngineConfig {
        icmp_mode: match args.icmp_socket {
            IcmpSocketArg::Auto => IcmpMode::Auto,
            IcmpSocketArg::Dgram => IcmpMode::Dgram,
            IcmpSocketArg::Raw => IcmpMode::Raw,
        },
        payload_size: args.size,
        deadline,
        ..EngineConfig::default()
    };
    // Validated before anything starts.
    let outage = crate::record::outage_config(&args)?;
    let engine = match Engine::new(plans.clone(), config.clone()) {
        Ok(e) => e,
        // ICMP is not allowed here: probe what can be probed (TCP, UDP, DNS), say why not the rest.
        Err(e @ (ProbeError::IcmpPermission { .. } | ProbeError::IcmpSocket { .. }))
            if plans.iter().any(|p| p.kind != TargetKind::Icmp) =>
        {
            let (icmp, rest): (Vec<_>, Vec<_>) =
                plans.into_iter().partition(|p| p.kind == TargetKind::Icmp);
            eprintln!(
                "netpulse: {} ICMP target{} not probed ({}): {e}",
                icmp.len(),
                if icmp.len() == 1 { "" } else { "s" },
                icmp.iter()
                    .map(|p| p.label.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            unprobed += icmp.len();
            plans = rest;
            Engine::new(plans.clone(), config)?
        }
        Err(e) => return Err(e.into()),
    };
    // A Ctrl-C from here on gets the graceful stop.
    let stop = engine.stop_handle();
    if stop_slot.set(stop.clone()).is_err() {
        bail!("the probe engine was started twice");
    }
    // A session folder is written from the recording: it implies --record.
    let record_path = args
        .record
        .as_deref()
        .or(args
            .session
            .session_dir
            .as_ref()
            .map(|_| std::path::Path::new("")))
        .map(crate::record::db_path);
    let recorder = match &record_path {
        Some(path) => Some(crate::record::start(&args, path, &plans)?),
        None => None,
    };
    let record_sink = recorder.as_ref().map(|r| r.sink());
    let header = session_header(&args, &plans, interval, timeout, outage);
    let session_dir = match (&args.session.session_dir, &recorder, &record_path) {
        (Some(dir), Some(rec), Some(db)) => Some(crate::session_dir::SessionDir::start(
            dir,
            db,
            rec.session_id(),
            header.clone(),
            duration_arg("--session-every", &args.session.session_every)?,
            timeout,
        )?),
        _ => None,
    };
    let mut conn_log = match &args.session.session_dir {
        Some(dir) if args.session.connection_log => {
            Some(crate::session_dir::ConnectionLog::create(dir)?)
        }
        _ => None,
    };
    let icmp_socket = engine.icmp_socket_kind();
    if args.verbose {
        if let Some(kind) = icmp_socket {
            eprintln!(
                "netpulse: ICMP through a {} socket{}",
                kind,
                if kind == "dgram" {
                    " (unprivileged ping socket)"
                } else {
                    " (raw: CAP_NET_RAW)"
                }
            );
        }
    }
    let mut session = args
        .output
        .as_deref()
        .map(SessionFile::create)
        .transpose()?;
    let started_at = SystemTime::now();
    if !out.json {
        for plan in &plans {
            out.line(&output::header(plan, args.size, icmp_socket))?;
        }
        out.out.flush()?;
    }

    let live = !args.quiet || report_every.is_some() || session.is_some() || conn_log.is_some();
    let (tx, rx) = mpsc::sync_channel::<ProbeResult>(OUTPUT_QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let dropped_in_engine = Arc::clone(&dropped);
    let engine_thread = std::thread::Builder::new()
        .name("probe-engine".into())
        .spawn(move || {
            let mut sink = |r: &ProbeResult| {
                if let Some(rec) = &record_sink {
                    rec.offer(r);
                }
                if !live {
                    return;
                }
                // Never let a slow terminal delay a probe: drop the line, count it.
                if let Err(TrySendError::Full(_)) = tx.try_send(r.clone()) {
                    dropped_in_engine.fetch_add(1, Ordering::Relaxed);
                }
            };
            engine.run(&mut sink)
        })
        .context("cannot start the probe engine thread")?;

    let consumed = consume(
        &rx,
        &plans,
        &args,
        outage,
        report_every,
        &mut out,
        &mut RunFiles {
            session: session.as_mut(),
            conn_log: conn_log.as_mut(),
        },
    );
    if let Err(e) = consumed {
        stop.stop();
        let _ = engine_thread.join();
        return Err(e);
    }
    let report = engine_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the probe engine thread failed"))?;
    let recorded = recorder.map(|r| r.finish(SystemTime::now()));
    if let Some(dir) = session_dir {
        dir.finish(header)?;
    }

    for (plan, rep) in plans.iter().zip(&report.targets) {
        if out.json {
            out.json(&output::summary_json(plan, rep))?;
        } else {
            out.line("")?;
            out.line(&output::summary_text(plan, rep))?;
        }
    }
    if args.ports.is_some() && !out.json {
        out.line("")?;
        out.line(&output::hosts_text(&plans, &report.targets))?;
    }
    out.out.flush()?;
    let n = dropped.load(Ordering::Relaxed);
    if let (Some(f), Some(path)) = (session, &args.output) {
        let head = output::session_head(
            &args,
            started_at,
            SystemTime::now(),
            &plans,
            &report.targets,
            n,
        );
        let written = f.finish(head)?;
        eprintln!(
            "netpulse: session written to {} ({written} results{})",
            path.display(),
            if n > 0 {
                format!(", {n} not kept: the output fell behind")
            } else {
                String::new()
            }
        );
    }
    if let (Some(rec), Some(path)) = (&recorded, &record_path) {
        eprintln!(
            "netpulse: recorded session {} to {} ({} outage{}); see `netpulse report --db {} --session {}`",
            rec.session_id,
            path.display(),
            rec.outages.len(),
            if rec.outages.len() == 1 { "" } else { "s" },
            path.display(),
            rec.session_id
        );
        crate::record::say_recording_end(rec, "probe results");
    }
    if n > 0 {
        eprintln!(
            "netpulse: output fell behind: {n} probe lines were not shown (the statistics count them)"
        );
    }
    let all_answered =
        unresolved + unprobed == 0 && report.targets.iter().all(|t| t.stats.received > 0);
    Ok(if all_answered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The files a run writes as results arrive.
struct RunFiles<'a> {
    /// `-o`'s results.
    session: Option<&'a mut SessionFile>,
    /// `--connection-log`.
    conn_log: Option<&'a mut crate::session_dir::ConnectionLog>,
}

/// The configuration header of a session folder's `summary.txt` (seed 002's).
fn session_header(
    args: &ProbeArgs,
    plans: &[ProbePlan],
    interval: Duration,
    timeout: Duration,
    outage: OutageConfig,
) -> String {
    let targets: Vec<&str> = plans.iter().map(|p| p.label.as_str()).collect();
    format!(
        "netpulse probe session\ntargets: {}\ninterval: {}, timeout: {}, payload: {} bytes{}\n\
         outage: {} failed probes in a row (at this interval), or loss over {} above {}% with at \
         least {} probes\n\n",
        targets.join(", "),
        humantime::format_duration(interval),
        humantime::format_duration(timeout),
        args.size,
        args.count
            .map(|c| format!(", count: {c}"))
            .unwrap_or_default(),
        outage.run_needed(interval),
        humantime::format_duration(outage.window),
        output::fmt_percent(outage.loss_threshold),
        outage.min_probes,
    )
}

/// Prints live lines and periodic reports, and writes `-o`'s results, until the engine
/// finishes (its channel closes).
fn consume(
    rx: &mpsc::Receiver<ProbeResult>,
    plans: &[ProbePlan],
    args: &ProbeArgs,
    outage: OutageConfig,
    report_every: Option<ReportEvery>,
    out: &mut Output,
    files: &mut RunFiles,
) -> anyhow::Result<()> {
    let RunFiles { session, conn_log } = files;
    // Only with reports: a window (and its outage detector) per target costs ~300 bytes, 3 MB
    // at 10 000 targets, for a table nobody asked for.
    let mut windows: Vec<_> = match report_every {
        Some(_) => plans
            .iter()
            .map(|p| WindowStats::new(outage, p.interval))
            .collect(),
        None => Vec::new(),
    };
    let (every, rounds) = match report_every {
        Some(ReportEvery::Time(d)) => (Some(d), None),
        Some(ReportEvery::Rounds(n)) => (None, Some(n)),
        None => (None, None),
    };
    let span = match report_every {
        Some(ReportEvery::Time(d)) => humantime::format_duration(d).to_string(),
        Some(ReportEvery::Rounds(n)) => format!("{n} round{}", if n == 1 { "" } else { "s" }),
        None => String::new(),
    };
    // Results of a round-counted report: every target's N probes.
    let per_report = rounds.map(|n| n.saturating_mul(plans.len() as u64));
    let mut in_report = 0u64;
    let mut next_report = every.map(|d| Instant::now() + d);
    loop {
        let received = match next_report {
            Some(at) => {
                // Flush what is buffered before sleeping, so lines appear live.
                match rx.try_recv() {
                    Ok(r) => Ok(r),
                    Err(mpsc::TryRecvError::Empty) => {
                        out.out.flush()?;
                        if let Some(log) = conn_log.as_deref_mut() {
                            log.flush()?;
                        }
                        rx.recv_timeout(at.saturating_duration_since(Instant::now()))
                    }
                    Err(mpsc::TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                }
            }
            None => match rx.try_recv() {
                Ok(r) => Ok(r),
                Err(mpsc::TryRecvError::Empty) => {
                    out.out.flush()?;
                    if let Some(log) = conn_log.as_deref_mut() {
                        log.flush()?;
                    }
                    rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
                }
                Err(mpsc::TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            },
        };
        match received {
            Ok(r) => {
                let Some(plan) = plans.get(r.target) else {
                    continue;
                };
                if let Some(w) = windows.get_mut(r.target) {
                    w.record(&r);
                }
                if let Some(f) = session.as_deref_mut() {
                    f.result(&output::probe_json(plan, &r))?;
                }
                if let Some(log) = conn_log.as_deref_mut() {
                    log.probe(&plan.label, &r)?;
                }
                if !args.quiet {
                    if out.json {
                        out.json(&output::probe_json(plan, &r))?;
                    } else if args.verbose {
                        out.line(&output::probe_line_verbose(plan, &r))?;
                    } else {
                        out.line(&output::probe_line(plan, &r))?;
                    }
                }
                in_report += 1;
                if per_report.is_some_and(|n| in_report >= n) {
                    in_report = 0;
                    print_report(plans, &mut windows, &span, out)?;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if let (Some(every), Some(at)) = (every, next_report.as_mut()) {
                    *at += every;
                    print_report(plans, &mut windows, &span, out)?;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(log) = conn_log.as_deref_mut() {
                    log.flush()?;
                }
                // The run ended inside a window: its probes get their table too.
                if report_every.is_some() && windows.iter().any(|w| w.sent() > 0) {
                    print_report(plans, &mut windows, &span, out)?;
                }
                return Ok(());
            }
        }
    }
}

fn print_report(
    plans: &[ProbePlan],
    windows: &mut [WindowStats],
    span: &str,
    out: &mut Output,
) -> io::Result<()> {
    let now = SystemTime::now();
    let rows: Vec<_> = plans
        .iter()
        .zip(windows.iter_mut())
        .map(|(p, w)| (p, w.take()))
        .collect();
    if out.json {
        for (plan, w) in &rows {
            out.json(&output::report_json(now, plan, w))?;
        }
    } else {
        out.line(&output::report_table(now, span, &rows))?;
    }
    out.out.flush()
}
