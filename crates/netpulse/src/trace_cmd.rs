//! `netpulse trace TARGET`: mtr's per-hop table (loss, sent, last/avg/best/worst/stdev, jitter)
//! from the probe crate's tracer, live, as a report (`-r`), or as JSON Lines; a hop whose
//! address changes is a path change, shown and counted.

use crate::cli::TraceArgs;
use anyhow::{bail, Context};
use netpulse_core::duration::parse_duration;
use netpulse_core::stats::{Jitter, RttStats};
use netpulse_probe::trace::{trace, HopReply, TraceConfig, TraceProto};
use netpulse_probe::{resolve, Family};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Distinct addresses remembered per hop (a load balancer's few; a flood of forged answers
/// must not grow the table).
const ADDRESSES_PER_HOP: usize = 16;

/// One hop's figures.
#[derive(Debug, Default)]
pub struct HopStats {
    sent: u64,
    received: u64,
    last: Option<Duration>,
    rtt: RttStats,
    jitter: Jitter,
    /// Addresses that answered, with their counts.
    addresses: BTreeMap<IpAddr, u64>,
    /// The address of the last answer.
    current: Option<IpAddr>,
    /// Each flow's last address at this hop: a change within a flow is a path change; flows
    /// going different ways (ECMP) are not.
    per_flow: BTreeMap<u8, IpAddr>,
    /// Times the answering address changed.
    changes: u64,
    /// An unreachable answer's mark (`!H`, `!N`, `!X`, `!P`).
    mark: Option<&'static str>,
    reached: bool,
}

impl HopStats {
    /// The fraction of probes not answered.
    fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            (self.sent - self.received.min(self.sent)) as f64 / self.sent as f64
        }
    }
}

/// Every hop's figures, by TTL.
#[derive(Debug, Default)]
pub struct Path {
    hops: BTreeMap<u8, HopStats>,
    /// The lowest hop the destination answered at.
    end: Option<u8>,
    /// Path changes seen (a hop's address changed), with the round and hop.
    changes: Vec<(u64, u8, Option<IpAddr>, IpAddr)>,
}

fn mark_of(v6: bool, icmp_type: u8, code: u8) -> &'static str {
    match (v6, icmp_type, code) {
        (false, 3, 0) | (true, 1, 0) => "!N",
        (false, 3, 1) | (true, 1, 3) => "!H",
        (false, 3, 2) => "!P",
        (false, 3, 9 | 10 | 13) | (true, 1, 1) => "!X",
        _ => "!?",
    }
}

impl Path {
    /// Counts one probe's outcome.
    pub fn record(&mut self, r: &HopReply) {
        if r.reached {
            self.end = Some(self.end.map_or(r.ttl, |e| e.min(r.ttl)));
        }
        let h = self.hops.entry(r.ttl).or_default();
        h.sent += 1;
        let Some(from) = r.from else {
            return;
        };
        h.received += 1;
        if let Some(rtt) = r.rtt {
            h.last = Some(rtt);
            h.rtt.record(rtt);
            h.jitter.record(rtt);
        }
        if let Some((t, c)) = r.unreachable {
            h.mark = Some(mark_of(from.is_ipv6(), t, c));
        }
        h.reached |= r.reached;
        if h.addresses.len() < ADDRESSES_PER_HOP || h.addresses.contains_key(&from) {
            *h.addresses.entry(from).or_default() += 1;
        }
        let before = h.per_flow.insert(r.flow, from);
        if before.is_some_and(|c| c != from) {
            h.changes += 1;
            if self.changes.len() < 1000 {
                self.changes.push((r.round, r.ttl, before, from));
            }
        }
        h.current = Some(from);
    }

    /// The hops shown: up to the destination's (or the last that answered).
    fn shown(&self) -> impl Iterator<Item = (&u8, &HopStats)> {
        let last = self
            .end
            .or_else(|| {
                self.hops
                    .iter()
                    .filter(|(_, h)| h.received > 0)
                    .map(|(t, _)| *t)
                    .max()
            })
            .unwrap_or(0);
        self.hops.iter().filter(move |(t, _)| **t <= last)
    }
}

/// Reverse names, looked up off the trace's thread (a slow resolver never delays a probe).
#[derive(Clone, Default)]
struct Names(Arc<Mutex<BTreeMap<IpAddr, Option<String>>>>);

impl Names {
    fn name(&self, ip: IpAddr) -> Option<String> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = map.get(&ip) {
            return known.clone();
        }
        if map.len() >= 1024 {
            return None;
        }
        map.insert(ip, None);
        let names = self.clone();
        std::thread::spawn(move || {
            if let Ok(name) = dns_lookup::lookup_addr(&ip) {
                if name != ip.to_string() {
                    let mut map = names.0.lock().unwrap_or_else(|e| e.into_inner());
                    map.insert(ip, Some(netpulse_core::text::printable(&name).into_owned()));
                }
            }
        });
        None
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
}

/// Each shown hop's cells, as the table and the live view print them: hop, host (name,
/// mark, other addresses), loss %, sent, last, avg, best, worst, stdev, jitter.
fn rows(path: &Path, names: Option<&Names>) -> Vec<[String; 10]> {
    path.shown()
        .map(|(ttl, h)| {
            let mut host = match h.current {
                None => "???".to_string(),
                Some(ip) => match names.and_then(|n| n.name(ip)) {
                    Some(name) => format!("{name} ({ip})"),
                    None => ip.to_string(),
                },
            };
            if let Some(m) = h.mark {
                host = format!("{host} {m}");
            }
            let others = h.addresses.len().saturating_sub(1);
            if others > 0 {
                host = format!("{host} +{others}");
            }
            [
                ttl.to_string(),
                host,
                format!("{:.1}%", h.loss() * 100.0),
                h.sent.to_string(),
                ms(h.last),
                ms(h.rtt.mean()),
                ms(h.rtt.min()),
                ms(h.rtt.max()),
                ms(h.rtt.summary().map(|s| s.mdev)),
                ms(h.jitter.rfc3550()),
            ]
        })
        .collect()
}

/// mtr's table.
fn table(path: &Path, names: Option<&Names>, header: &str) -> String {
    let mut out = format!(
        "{header}\n{:<4} {:<40} {:>6} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}\n",
        "HOP", "HOST", "LOSS%", "SNT", "LAST", "AVG", "BEST", "WRST", "STDEV", "JTTR"
    );
    for [hop, host, loss, sent, last, avg, best, worst, stdev, jitter] in rows(path, names) {
        out += &format!(
            "{hop:>3}. {host:<40} {loss:>6} {sent:>5} {last:>7} {avg:>7} {best:>7} {worst:>7} {stdev:>7} {jitter:>7}\n"
        );
    }
    if !path.changes.is_empty() {
        out += &format!("path changes: {}\n", path.changes.len());
        for (round, ttl, from, to) in path.changes.iter().rev().take(5).rev() {
            out += &format!(
                "  round {round}, hop {ttl}: {} → {to}\n",
                from.map_or_else(|| "???".to_string(), |f| f.to_string())
            );
        }
    }
    out
}

fn summary_json(path: &Path, target: &str, addr: IpAddr) -> serde_json::Value {
    let ms = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3);
    let hops: Vec<serde_json::Value> = path
        .shown()
        .map(|(ttl, h)| {
            json!({
                "hop": ttl,
                "address": h.current.map(|a| a.to_string()),
                "addresses": h.addresses.iter().map(|(a, n)| json!({"address": a.to_string(), "replies": n})).collect::<Vec<_>>(),
                "sent": h.sent,
                "received": h.received,
                "loss": h.loss(),
                "last_ms": ms(h.last),
                "avg_ms": ms(h.rtt.mean()),
                "best_ms": ms(h.rtt.min()),
                "worst_ms": ms(h.rtt.max()),
                "stdev_ms": ms(h.rtt.summary().map(|s| s.mdev)),
                "jitter_ms": ms(h.jitter.rfc3550()),
                "path_changes": h.changes,
                "mark": h.mark,
                "reached": h.reached,
            })
        })
        .collect();
    json!({
        "type": "trace",
        "target": target,
        "address": addr.to_string(),
        "reached": path.end.is_some(),
        "hops": hops,
        "flows": flows_json(path),
        "path_changes": path.changes.iter().map(|(round, ttl, from, to)| json!({
            "round": round, "hop": ttl, "from": from.map(|f| f.to_string()), "to": to.to_string(),
        })).collect::<Vec<_>>(),
    })
}

/// Each flow's path (its last address at every hop): with `--flows N`, the paths a load
/// balancer spreads flows over.
fn flows_json(path: &Path) -> Vec<serde_json::Value> {
    let flows: std::collections::BTreeSet<u8> = path
        .hops
        .values()
        .flat_map(|h| h.per_flow.keys().copied())
        .collect();
    flows
        .into_iter()
        .map(|f| {
            let hops: Vec<Option<String>> = path
                .shown()
                .map(|(_, h)| h.per_flow.get(&f).map(|a| a.to_string()))
                .collect();
            json!({"flow": f, "hops": hops})
        })
        .collect()
}

/// The live view, in the terminal UI's style: the trace on a thread of its own, the table
/// redrawn four times a second; `q` (or Ctrl-C) ends it and prints the table once more.
fn live_view(
    cfg: &TraceConfig,
    stop: &Arc<AtomicBool>,
    names: Option<&Names>,
    header: &str,
) -> anyhow::Result<ExitCode> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    use ratatui::layout::Constraint;
    use ratatui::style::{Style, Stylize};
    use ratatui::widgets::{Block, Paragraph, Row, Table};
    let shared = Arc::new(Mutex::new((Path::default(), 0u64)));
    let (cfg2, stop2, shared2) = (cfg.clone(), Arc::clone(stop), Arc::clone(&shared));
    let tracer = std::thread::Builder::new()
        .name("trace".into())
        .spawn(move || {
            trace(&cfg2, &stop2, &mut |r: &HopReply| {
                let mut s = shared2.lock().unwrap_or_else(|e| e.into_inner());
                s.0.record(r);
                s.1 = s.1.max(r.round);
            })
        })
        .context("cannot start the trace thread")?;
    let mut terminal = ratatui::init();
    let mut failed = None;
    while !tracer.is_finished() {
        let (rows, round, changes) = {
            let s = shared.lock().unwrap_or_else(|e| e.into_inner());
            let rows = rows(&s.0, names);
            (rows, s.1, s.0.changes.len())
        };
        let drawn = terminal.draw(|f| {
            let area = f.area();
            let [top, bottom] =
                ratatui::layout::Layout::vertical([Constraint::Min(3), Constraint::Length(1)])
                    .areas(area);
            let widths = [
                Constraint::Length(4),
                Constraint::Min(20),
                Constraint::Length(7),
                Constraint::Length(6),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(8),
            ];
            let head = Row::new([
                "hop", "host", "loss%", "snt", "last", "avg", "best", "wrst", "stdev", "jttr",
            ])
            .style(Style::new().bold());
            let body = rows.iter().map(|r| {
                let lossy = r[2] != "0.0%";
                let row = Row::new(r.clone());
                if lossy {
                    row.style(Style::new().yellow())
                } else {
                    row
                }
            });
            let title = format!(" {header} — round {round}, path changes {changes} ");
            f.render_widget(
                Table::new(body, widths)
                    .header(head)
                    .block(Block::bordered().title(title)),
                top,
            );
            f.render_widget(Paragraph::new(" q quit").dim(), bottom);
        });
        if let Err(e) = drawn {
            failed = Some(e);
            break;
        }
        if let Ok(true) = event::poll(Duration::from_millis(250)) {
            if let Ok(Event::Key(k)) = event::read() {
                let ctrl_c =
                    k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                if k.kind == KeyEventKind::Press && (k.code == KeyCode::Char('q') || ctrl_c) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
    }
    ratatui::restore();
    stop.store(true, Ordering::Relaxed);
    let traced = tracer
        .join()
        .map_err(|_| anyhow::anyhow!("the trace thread failed"))?;
    if let Some(e) = failed {
        return Err(anyhow::Error::new(e).context("terminal UI"));
    }
    traced.map_err(|e| anyhow::anyhow!("{e}"))?;
    let s = shared.lock().unwrap_or_else(|e| e.into_inner());
    print!("{}", table(&s.0, names, header));
    Ok(if s.0.end.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs `netpulse trace`.
pub fn run(args: &TraceArgs) -> anyhow::Result<ExitCode> {
    let family = match (args.ipv4, args.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let addr = resolve(&args.target, family)?;
    let interval = parse_duration(&args.interval).context("bad --interval")?;
    let timeout = parse_duration(&args.timeout).context("bad --timeout")?;
    if interval < Duration::from_millis(10) {
        bail!("bad --interval {}: at least 10ms", args.interval);
    }
    if timeout.is_zero() || timeout > Duration::from_secs(60) {
        bail!("bad --timeout {}: from above 0 to 60s", args.timeout);
    }
    if args.max_hops == 0
        || args.max_hops > 63
        || args.first_hop == 0
        || args.first_hop > args.max_hops
    {
        bail!("hops: --first-hop from 1 to --max-hops, --max-hops at most 63");
    }
    let rounds = args.count.or(args.report.then_some(10));
    let cfg = TraceConfig {
        target: addr,
        proto: match (args.icmp, args.tcp, args.dns) {
            (true, ..) => TraceProto::Icmp,
            (_, Some(port), _) => TraceProto::Tcp { port },
            (.., true) => TraceProto::Dns { port: 53 },
            _ => TraceProto::Udp { port: args.port },
        },
        first_ttl: args.first_hop,
        max_ttl: args.max_hops,
        interval,
        timeout,
        rounds,
        flows: args.flows,
        ..TraceConfig::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    crate::signals::install(move || flag.store(true, Ordering::Relaxed), None)?;
    let names = (!args.numeric).then(Names::default);
    let live = !args.report && !args.json && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let header = format!(
        "netpulse trace to {} ({addr}), {} probes{}",
        args.target,
        match (args.icmp, args.tcp, args.dns) {
            (true, ..) => "ICMP".to_string(),
            (_, Some(port), _) => format!("TCP SYN (port {port})"),
            (.., true) => "DNS-shaped UDP (port 53)".to_string(),
            _ => "UDP".to_string(),
        },
        if args.flows > 1 {
            format!(", {} flows in turn", args.flows)
        } else {
            String::new()
        }
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !args.json && !live {
        writeln!(out, "{header}")?;
        out.flush()?;
    }
    if live {
        drop(out);
        return live_view(&cfg, &stop, names.as_ref(), &header);
    }
    let mut path = Path::default();
    let mut last_round = 0u64;
    let mut write_error: Option<std::io::Error> = None;
    let traced = trace(&cfg, &stop, &mut |r: &HopReply| {
        path.record(r);
        let result = if args.json {
            let line = json!({
                "type": "hop",
                "round": r.round,
                "flow": r.flow,
                "hop": r.ttl,
                "address": r.from.map(|a| a.to_string()),
                "rtt_ms": r.rtt.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3),
                "reached": r.reached,
            });
            writeln!(out, "{line}")
        } else if live && r.round > last_round {
            // A new round began: redraw the table in place.
            last_round = r.round;
            write!(
                out,
                "\x1b[H\x1b[2J{}",
                table(
                    &path,
                    names.as_ref(),
                    &format!("{header} — round {}", r.round)
                )
            )
            .and_then(|_| out.flush())
        } else {
            Ok(())
        };
        if let Err(e) = result {
            write_error.get_or_insert(e);
        }
    });
    if let Some(e) = write_error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(e.into());
    }
    traced.map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.json {
        writeln!(out, "{}", summary_json(&path, &args.target, addr))?;
    } else {
        if names.is_some() {
            // Names asked for during the run have had their chance; one short wait for the rest.
            std::thread::sleep(Duration::from_millis(200));
        }
        write!(out, "{}", table(&path, names.as_ref(), ""))?;
    }
    out.flush()?;
    Ok(if path.end.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Traces the path to `host` for an alert: `rounds` UDP rounds `interval` apart, addresses
/// only (a reverse lookup must not hold the trace up); the table and the JSON summary.
pub(crate) fn trace_for_alert(
    host: &str,
    rounds: u32,
    interval: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<(String, serde_json::Value)> {
    let addr = resolve(host, Family::Any)?;
    let cfg = TraceConfig {
        target: addr,
        rounds: Some(u64::from(rounds.max(1))),
        interval,
        timeout: (interval * 2).clamp(Duration::from_millis(200), Duration::from_secs(2)),
        ..TraceConfig::default()
    };
    let mut path = Path::default();
    trace(&cfg, stop, &mut |r: &HopReply| path.record(r)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let header = format!("trace to {host} ({addr}), {} rounds", rounds.max(1));
    Ok((table(&path, None, &header), summary_json(&path, host, addr)))
}
