//! `netpulse capture -r FILE`: what a capture holds, per interval and in total.

use crate::cli::CaptureArgs;
use anyhow::Context;
use netpulse_capture::stats::{AnalyzerConfig, Count, FlowRecord, Interval, Protocol, Report};
use netpulse_capture::{Analyzer, PacketSource, PacketSummary};
use netpulse_core::parse_duration;
use netpulse_core::stats::RttStats;
use serde_json::{json, Value};
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

fn time(ns: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

fn bits_per_sec(c: &Count, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        c.bytes as f64 * 8.0 / d.as_secs_f64()
    }
}

fn interval_json(i: &Interval) -> Value {
    let protocols: serde_json::Map<String, Value> = Protocol::ALL
        .iter()
        .map(|p| {
            let c = i.protocols[*p as usize];
            (
                p.name().to_string(),
                json!({"packets": c.packets, "bytes": c.bytes, "bits_per_s": bits_per_sec(&c, i.length).round()}),
            )
        })
        .collect();
    json!({
        "type": "interval", "start": time(i.start_ns), "seconds": i.length.as_secs_f64(),
        "packets": i.total.packets, "bytes": i.total.bytes,
        "bits_per_s": bits_per_sec(&i.total, i.length).round(),
        "avg_packet_bytes": if i.total.packets > 0 { i.total.bytes as f64 / i.total.packets as f64 } else { 0.0 },
        "protocols": protocols, "new_flows": i.new_flows,
        "new_flows_per_s": i.new_flows as f64 / i.length.as_secs_f64().max(1e-9),
        "unique_ips": i.unique_ips, "unique_macs": i.unique_macs,
    })
}

/// One interval as text (seed 004's per-interval line): totals and rate, then each transport
/// and link protocol seen with its packets and throughput, new flows, unique IPs and MACs.
fn interval_text(i: &Interval) -> String {
    let rate = |c: &Count| {
        netpulse_core::units::Units {
            si: true,
            bits: true,
        }
        .rate(Some(bits_per_sec(c, i.length) / 8.0))
    };
    let protocols: Vec<String> = [
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Icmp,
        Protocol::Arp,
        Protocol::Other,
    ]
    .iter()
    .filter_map(|p| {
        let c = &i.protocols[*p as usize];
        (c.packets > 0).then(|| format!("{} {} pkts {}", p.name(), c.packets, rate(c)))
    })
    .collect();
    format!(
        "{}  {:>9} pkts {:>12} bytes {:>13}  {}  new flows {}, IPs {}, MACs {}",
        time(i.start_ns),
        i.total.packets,
        i.total.bytes,
        rate(&i.total),
        if protocols.is_empty() {
            "-".to_string()
        } else {
            protocols.join(" · ")
        },
        i.new_flows,
        i.unique_ips,
        i.unique_macs
    )
}

fn rtt_json(r: &RttStats) -> Value {
    let ms = |d: Duration| (d.as_secs_f64() * 1e9).round() / 1e6;
    match r.summary() {
        Some(s) => json!({
            "count": r.count(), "min_ms": ms(s.min), "avg_ms": ms(s.avg), "median_ms": ms(s.median),
            "p95_ms": ms(s.p95), "max_ms": ms(s.max),
        }),
        None => json!({"count": 0}),
    }
}

fn flow_json(f: &FlowRecord) -> Value {
    json!({
        "proto": f.key.proto_name(),
        "a": format!("{}:{}", f.key.a.0, f.key.a.1), "b": format!("{}:{}", f.key.b.0, f.key.b.1),
        "packets": f.a_to_b.packets + f.b_to_a.packets, "bytes": f.a_to_b.bytes + f.b_to_a.bytes,
        "initial_rtt_ms": f.initial_rtt_ns().map(|n| n as f64 / 1e6),
    })
}

fn report_json(r: &Report) -> Value {
    let d = Duration::from_nanos(r.last_ns.saturating_sub(r.first_ns));
    let protocols: serde_json::Map<String, Value> = Protocol::ALL
        .iter()
        .map(|p| {
            let c = r.protocols[*p as usize];
            (
                p.name().to_string(),
                json!({"packets": c.packets, "bytes": c.bytes,
                       "avg_packet_bytes": if c.packets > 0 { c.bytes as f64 / c.packets as f64 } else { 0.0 },
                       "bits_per_s": bits_per_sec(&c, d).round()}),
            )
        })
        .collect();
    json!({
        "type": "report",
        // No packet, no time (null, not 1970).
        "first": (r.total.packets > 0).then(|| time(r.first_ns)),
        "last": (r.total.packets > 0).then(|| time(r.last_ns)),
        "seconds": d.as_secs_f64(),
        "packets": r.total.packets, "bytes": r.total.bytes, "bits_per_s": bits_per_sec(&r.total, d).round(),
        "avg_packet_bytes": if r.total.packets > 0 { r.total.bytes as f64 / r.total.packets as f64 } else { 0.0 },
        "protocols": protocols, "unique_ips": r.unique_ips, "unique_macs": r.unique_macs,
        "unique_exact": r.unique_exact,
        "tcp_conversations": r.tcp_conversations, "udp_conversations": r.udp_conversations,
        "conversations_exact": r.conversations_exact,
        "tcp_flows": r.tcp_flows, "udp_flows": r.udp_flows,
        "syn_retransmits": r.syn_retransmits,
        "tunnels": netpulse_capture::decode::Tunnel::ALL.iter()
            .filter(|t| r.tunnels[**t as usize].packets > 0)
            .map(|t| (t.name().to_string(), json!({"packets": r.tunnels[*t as usize].packets, "bytes": r.tunnels[*t as usize].bytes})))
            .collect::<serde_json::Map<_, _>>(),
        "new_flows_per_s": (r.tcp_flows + r.udp_flows) as f64 / d.as_secs_f64().max(1e-9),
        "rtt": {"tcp_handshake": rtt_json(&r.latency.tcp_handshake), "tcp_data": rtt_json(&r.latency.tcp_data), "dns": rtt_json(&r.latency.dns)},
        "malformed": r.malformed.iter().map(|(m, n)| (m.name().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "top_hosts": r.top_hosts.iter().map(|(ip, b)| json!({"host": ip.to_string(), "bytes": b})).collect::<Vec<_>>(),
        "top_conversations": r.top_flows.iter().map(flow_json).collect::<Vec<_>>(),
        "top_ports": r.top_ports.iter().map(|(p, n, b)| json!({"proto": if *p == 6 { "tcp" } else { "udp" }, "port": n, "bytes": b})).collect::<Vec<_>>(),
    })
}

fn report_text(r: &Report, out: &mut impl Write) -> io::Result<()> {
    if r.total.packets == 0 {
        // No packet, no time: not a capture of 1970.
        return writeln!(out, "capture: no packets (nothing to report)");
    }
    let d = Duration::from_nanos(r.last_ns.saturating_sub(r.first_ns));
    let units = netpulse_core::units::Units {
        si: true,
        bits: true,
    };
    writeln!(
        out,
        "capture {} → {} ({:.3} s): {} packets, {} bytes, {}, avg {:.1} B/packet",
        time(r.first_ns),
        time(r.last_ns),
        d.as_secs_f64(),
        r.total.packets,
        r.total.bytes,
        units.rate(Some(bits_per_sec(&r.total, d) / 8.0)),
        if r.total.packets > 0 {
            r.total.bytes as f64 / r.total.packets as f64
        } else {
            0.0
        }
    )?;
    writeln!(
        out,
        "\n  {:<9} {:>12} {:>14} {:>14} {:>10}",
        "PROTOCOL", "PACKETS", "BYTES", "THROUGHPUT", "AVG SIZE"
    )?;
    for p in Protocol::ALL {
        let c = r.protocols[p as usize];
        writeln!(
            out,
            "  {:<9} {:>12} {:>14} {:>14} {:>10.1}",
            p.name(),
            c.packets,
            c.bytes,
            units.rate(Some(bits_per_sec(&c, d) / 8.0)),
            if c.packets > 0 {
                c.bytes as f64 / c.packets as f64
            } else {
                0.0
            }
        )?;
    }
    writeln!(
        out,
        "\n  unique IPs {}{}, unique MACs {}{}, conversations TCP {}{} (SYNs sent again {}), UDP {}{}; \
         flows (ended 2 s after a close or 120 s idle) TCP {}, UDP {}, new flows {:.1}/s",
        if r.unique_exact { "" } else { "≈" },
        r.unique_ips,
        if r.unique_exact { "" } else { "≈" },
        r.unique_macs,
        if r.conversations_exact { "" } else { "≈" },
        r.tcp_conversations,
        r.syn_retransmits,
        if r.conversations_exact { "" } else { "≈" },
        r.udp_conversations,
        r.tcp_flows,
        r.udp_flows,
        (r.tcp_flows + r.udp_flows) as f64 / d.as_secs_f64().max(1e-9)
    )?;
    let tunnels: Vec<String> = netpulse_capture::decode::Tunnel::ALL
        .iter()
        .filter(|t| r.tunnels[**t as usize].packets > 0)
        .map(|t| {
            let c = r.tunnels[*t as usize];
            format!("{} {} packets, {} bytes", t.name(), c.packets, c.bytes)
        })
        .collect();
    if !tunnels.is_empty() {
        writeln!(
            out,
            "  tunnels (their inner packets counted above too): {}",
            tunnels.join("; ")
        )?;
    }
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
    for (name, s) in [
        ("TCP handshake RTT", &r.latency.tcp_handshake),
        ("TCP data→ACK RTT", &r.latency.tcp_data),
        ("DNS response time", &r.latency.dns),
    ] {
        if let Some(x) = s.summary() {
            writeln!(
                out,
                "  {name}: n={} min/avg/median/p95/max = {}/{}/{}/{}/{} ms",
                s.count(),
                ms(x.min),
                ms(x.avg),
                ms(x.median),
                ms(x.p95),
                ms(x.max)
            )?;
        }
    }
    if !r.top_hosts.is_empty() {
        writeln!(out, "\n  top hosts:")?;
        for (ip, b) in &r.top_hosts {
            writeln!(out, "    {ip:<40} {b:>14} bytes")?;
        }
        writeln!(out, "  top conversations:")?;
        for f in &r.top_flows {
            writeln!(
                out,
                "    {} {}:{} ↔ {}:{}  {} packets {} bytes",
                f.key.proto_name(),
                f.key.a.0,
                f.key.a.1,
                f.key.b.0,
                f.key.b.1,
                f.a_to_b.packets + f.b_to_a.packets,
                f.a_to_b.bytes + f.b_to_a.bytes
            )?;
        }
        writeln!(out, "  top ports:")?;
        for (p, n, b) in &r.top_ports {
            writeln!(
                out,
                "    {}/{n:<6} {b:>14} bytes",
                if *p == 6 { "tcp" } else { "udp" }
            )?;
        }
    }
    if !r.malformed.is_empty() {
        writeln!(out, "\n  malformed:")?;
        for (m, n) in &r.malformed {
            writeln!(out, "    {}: {n}", m.name())?;
        }
    }
    Ok(())
}

fn capture_second(sec: i64, counts: &[Count; 8]) -> netpulse_store::CaptureSecond {
    netpulse_store::CaptureSecond {
        ts: sec,
        counts: Protocol::ALL
            .iter()
            .filter(|p| counts[**p as usize].packets > 0)
            .map(|p| {
                (
                    p.name(),
                    counts[*p as usize].packets,
                    counts[*p as usize].bytes,
                )
            })
            .collect(),
    }
}

fn flow_row(f: &FlowRecord) -> netpulse_store::FlowRow {
    let ms = |ns: u64| (ns / 1_000_000) as i64;
    netpulse_store::FlowRow {
        proto: f.key.proto_name(),
        a: format!("{}:{}", f.key.a.0, f.key.a.1),
        b: format!("{}:{}", f.key.b.0, f.key.b.1),
        first_ms: ms(f.first_ns),
        last_ms: ms(f.last_ns),
        a_to_b: (f.a_to_b.packets, f.a_to_b.bytes),
        b_to_a: (f.b_to_a.packets, f.b_to_a.bytes),
        syn_to_synack_us: f.syn_to_synack_ns.map(|n| n as f64 / 1000.0),
        synack_to_ack_us: f.synack_to_ack_ns.map(|n| n as f64 / 1000.0),
        fin: f.fin,
        rst: f.rst,
    }
}

/// One line per packet for `--log`: its capture time to the nanosecond (live captures and
/// nanosecond files have them), its MAC addresses (seed 004's log has them), then what capture
/// says of it.
fn log_line(w: &mut impl Write, p: &PacketSummary) -> io::Result<()> {
    let t = humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(p.ts_ns));
    writeln!(w, "{t} {}", p.line_with_macs())
}

/// `\r 45 % 520 MB / 1.16 GB  4.1 M packets/s  ETA 0.4 s` on stderr.
fn progress(done: u64, total: u64, packets: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let fraction = if total > 0 {
        done as f64 / total as f64
    } else {
        0.0
    };
    // Compressed input: the position counts uncompressed bytes, so no percentage or ETA.
    let eta = if fraction > 0.0 && fraction <= 1.0 {
        format!(
            "  {:3.0} %  ETA {:.1} s",
            fraction * 100.0,
            secs / fraction - secs
        )
    } else {
        String::new()
    };
    let si = netpulse_core::units::Units {
        si: true,
        bits: false,
    };
    eprint!(
        "\r\x1b[K{} read  {:.2} M packets/s{eta}",
        si.bytes(done),
        packets as f64 / secs / 1e6
    );
}

/// One analyzer, or several sharing a file's flows (`--threads`): the same counts either way.
enum Counting {
    One(Box<Analyzer>),
    Sharded(Box<netpulse_capture::ShardedAnalyzer>),
}

type Seconds = Vec<(i64, [netpulse_capture::stats::Count; 8])>;

impl Counting {
    fn summary(
        &mut self,
        p: &PacketSummary,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) {
        match self {
            Counting::One(a) => a.summary(p, on_interval, on_flow),
            Counting::Sharded(a) => a.summary(p, on_interval, on_flow),
        }
    }

    fn take_seconds(&mut self) -> Seconds {
        match self {
            Counting::One(a) => a.take_seconds(),
            Counting::Sharded(a) => a.take_seconds(),
        }
    }

    fn finish_with_seconds(
        self,
        on_interval: &mut dyn FnMut(&Interval),
        on_flow: &mut dyn FnMut(&FlowRecord),
    ) -> anyhow::Result<(netpulse_capture::Report, Seconds)> {
        Ok(match self {
            Counting::One(a) => a.finish_with_seconds(on_interval, on_flow),
            Counting::Sharded(a) => a.finish_with_seconds(on_interval, on_flow)?,
        })
    }
}

pub fn run(args: CaptureArgs) -> anyhow::Result<ExitCode> {
    netpulse_capture::decode::set_decapsulation(args.decap == "on");
    if let (Some(path), Some(filter)) = (&args.file, &args.filter) {
        // Never silently ignored: a file is read whole, so say how to filter it.
        anyhow::bail!(
            "-f (a BPF filter) applies to live capture, not to a file; to read only what it \
             matches: tcpdump -r {} -w - '{filter}' | netpulse capture -r -",
            path.display()
        );
    }
    if args.interface.is_some() && args.threads.is_some_and(|n| n > 1) {
        anyhow::bail!("--threads applies to a file (-r); live capture is analysed on one thread");
    }
    let interval = parse_duration(&args.interval).context("bad --interval")?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    crate::signals::install(
        move || flag.store(true, std::sync::atomic::Ordering::Relaxed),
        None,
    )?;
    let mut source = match (&args.file, &args.interface) {
        (Some(path), _) => PacketSource::File {
            decoder: netpulse_capture::Decoder::spawn(
                netpulse_capture::open(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            )
            .context("cannot start the reader thread")?,
            path: path.clone(),
        },
        (None, Some(iface)) => {
            let live = netpulse_capture::live::Live::open(iface, args.filter.as_deref())?;
            eprintln!(
                "netpulse: capturing on {iface}{} (Ctrl-C for the report)",
                args.filter
                    .as_deref()
                    .map(|f| format!(" with filter \"{f}\""))
                    .unwrap_or_default()
            );
            PacketSource::Live {
                live,
                iface: iface.clone(),
            }
        }
        (None, None) => anyhow::bail!("give a file (-r FILE) or an interface (-i IFACE)"),
    };
    let mut log = match &args.log {
        Some(p) => Some(BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => None,
    };
    let mut flows_out = match &args.flows {
        Some(p) => {
            let mut w = csv::Writer::from_writer(BufWriter::new(
                std::fs::File::create(p)
                    .with_context(|| format!("cannot create {}", p.display()))?,
            ));
            w.write_record([
                "proto",
                "a",
                "b",
                "first",
                "last",
                "packets_a_to_b",
                "bytes_a_to_b",
                "packets_b_to_a",
                "bytes_b_to_a",
                "syn_to_synack_ms",
                "synack_to_ack_ms",
                "initial_rtt_ms",
                "fin",
                "rst",
            ])
            .with_context(|| format!("cannot write {}", p.display()))?;
            Some(w)
        }
        None => None,
    };
    // The first failed write of the flows file (disk full): reported, not swallowed.
    let mut flows_error: Option<csv::Error> = None;
    let recorder = match &args.record {
        Some(arg) => {
            let path = crate::record::db_path(arg);
            let config = json!({
                "file": args.file.as_ref().map(|p| p.display().to_string()),
                "interface": args.interface, "filter": args.filter,
            });
            Some(
                crate::record::start_traffic(&path, netpulse_store::Retention::default(), config)
                    .with_context(|| format!("cannot record to {}", path.display()))?,
            )
        }
        None => None,
    };
    let sink = recorder.as_ref().map(netpulse_store::Recorder::sink);
    let cfg = AnalyzerConfig {
        interval: (!interval.is_zero()).then_some(interval),
        per_second: sink.is_some() || args.charts.is_some(),
        // Live senders choose the tables' keys; a file is read at full speed.
        keyed_hash: source.is_live(),
        ..AnalyzerConfig::default()
    };
    let threads = match (args.file.is_none(), args.threads) {
        (true, _) => 1,
        (false, Some(n)) => usize::from(n),
        // The reader and the dispatcher have a core each; shards take the others. Below four
        // cores one analyzer is faster: four threads on two cores cost 25 % more time
        // (docs/benchmarks.md).
        (false, None) => match std::thread::available_parallelism().map_or(1, |n| n.get()) {
            n if n >= 4 => (n - 2).min(netpulse_capture::shard::MAX_SHARDS),
            _ => 1,
        },
    };
    let mut analyzer = if threads > 1 {
        Counting::Sharded(Box::new(
            netpulse_capture::ShardedAnalyzer::new(cfg, args.top, threads)
                .context("cannot start the analysis threads")?,
        ))
    } else {
        Counting::One(Box::new(Analyzer::new(cfg, args.top)))
    };
    let mut throughput = args
        .charts
        .as_ref()
        .map(|_| crate::capture_charts::Throughput::new());
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let json = args.json;
    let mut io_error: Option<io::Error> = None;
    let mut on_interval = |i: &Interval| {
        let r = if json {
            serde_json::to_writer(&mut out, &interval_json(i))
                .map_err(io::Error::from)
                .and_then(|_| out.write_all(b"\n"))
        } else {
            writeln!(out, "{}", interval_text(i))
        };
        if let Err(e) = r {
            io_error.get_or_insert(e);
        }
    };
    let ms = |n: Option<u64>| {
        n.map(|n| format!("{:.6}", n as f64 / 1e6))
            .unwrap_or_default()
    };
    let flow_sink = sink.clone();
    let mut on_flow = |f: &FlowRecord| {
        if let Some(s) = &flow_sink {
            s.flow(flow_row(f));
        }
        if let Some(w) = flows_out.as_mut().filter(|_| flows_error.is_none()) {
            let written = w.write_record([
                f.key.proto_name().to_string(),
                format!("{}:{}", f.key.a.0, f.key.a.1),
                format!("{}:{}", f.key.b.0, f.key.b.1),
                time(f.first_ns),
                time(f.last_ns),
                f.a_to_b.packets.to_string(),
                f.a_to_b.bytes.to_string(),
                f.b_to_a.packets.to_string(),
                f.b_to_a.bytes.to_string(),
                ms(f.syn_to_synack_ns),
                ms(f.synack_to_ack_ns),
                ms(f.initial_rtt_ns()),
                f.fin.to_string(),
                f.rst.to_string(),
            ]);
            if let Err(e) = written {
                flows_error = Some(e);
            }
        }
    };
    let mut seen = 0u64;
    let mut log_error: Option<io::Error> = None;
    // A progress line on stderr for file reads, only when a person is watching.
    let file_size = match (&args.file, io::IsTerminal::is_terminal(&io::stderr())) {
        (Some(p), true) if p.as_os_str() != "-" => std::fs::metadata(p).ok().map(|m| m.len()),
        _ => None,
    };
    let started = std::time::Instant::now();
    let mut next_progress = started + Duration::from_millis(250);
    let mut batch: Vec<PacketSummary> = Vec::new();
    // Ctrl-C, or `-c` packets counted.
    let finished = |seen: u64| {
        stop.load(std::sync::atomic::Ordering::Relaxed) || args.count.is_some_and(|c| seen >= c)
    };
    let damage: Option<String> = 'read: loop {
        match source.next_batch(&mut batch) {
            Ok(true) => {}
            Ok(false) => break None,
            Err(e) => break Some(e.to_string()),
        }
        for p in &batch {
            if finished(seen) {
                break 'read None;
            }
            if file_size.is_some()
                && seen & 0xffff == 0
                && std::time::Instant::now() >= next_progress
            {
                next_progress += Duration::from_millis(250);
                if let (Some(total), Some(at)) = (file_size, source.position()) {
                    progress(at, total, seen, started.elapsed());
                }
            }
            seen += 1;
            if let Some(w) = log.as_mut() {
                if let Err(e) = log_line(w, p) {
                    log_error.get_or_insert(e);
                }
            }
            analyzer.summary(p, &mut on_interval, &mut on_flow);
            for (sec, counts) in analyzer.take_seconds() {
                if let Some(s) = &sink {
                    s.capture_second(capture_second(sec, &counts));
                }
                if let Some(t) = throughput.as_mut() {
                    t.second(sec, &counts);
                }
            }
        }
        // Live: a quiet ring still has to notice Ctrl-C, and `-c` must not wait for one more.
        if finished(seen) {
            break None;
        }
    };
    if file_size.is_some() {
        eprint!("\r\x1b[K");
    }
    let (report, seconds) = analyzer.finish_with_seconds(&mut on_interval, &mut on_flow)?;
    for (sec, counts) in seconds {
        if let Some(s) = &sink {
            s.capture_second(capture_second(sec, &counts));
        }
        if let Some(t) = throughput.as_mut() {
            t.second(sec, &counts);
        }
    }
    drop(sink);
    if let Some(rec) = recorder {
        let r = rec.finish(std::time::SystemTime::now());
        crate::record::say_recording_end(&r, "capture records");
    }
    if let Some(e) = io_error {
        return Err(e.into());
    }
    if json {
        serde_json::to_writer(&mut out, &report_json(&report))?;
        out.write_all(b"\n")?;
    } else {
        report_text(&report, &mut out)?;
    }
    out.flush()?;
    if let Some(e) = flows_error.take() {
        return Err(anyhow::Error::new(e).context("cannot write the flows file"));
    }
    if let Some(w) = flows_out.as_mut() {
        w.flush().context("cannot write the flows file")?;
    }
    if let Some(w) = log.as_mut() {
        w.flush()?;
    }
    if let Some(e) = log_error {
        return Err(anyhow::Error::new(e).context("cannot write the packet log"));
    }
    if let (Some(dir), Some(t)) = (&args.charts, &throughput) {
        let n = crate::capture_charts::write(dir, &report, t)?;
        eprintln!(
            "netpulse: wrote {n} charts (SVG and PNG) to {}",
            dir.display()
        );
    }
    if let (Some(s), Some(iface)) = (source.live_stats(), args.interface.as_ref()) {
        eprintln!(
            "netpulse: {iface}: {} packets received by the filter, {} dropped by the kernel (ring full), {} dropped by the interface",
            s.received, s.dropped, s.if_dropped
        );
    }
    if let Some(e) = damage {
        // The report above covers everything before the damage.
        anyhow::bail!("{e}");
    }
    Ok(ExitCode::SUCCESS)
}
