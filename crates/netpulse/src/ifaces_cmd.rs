//! `netpulse ifaces`: per-interface totals and live speeds, as a table, a live table, JSON Lines
//! or CSV, optionally recorded. Source (netlink) → core (rates) → this view.

use crate::cli::{IfaceSort, IfacesArgs};
use crate::output::rfc3339_micros;
use anyhow::{bail, Context};
use netpulse_core::iface::{Continuity, IfaceCounters, IfaceRate, RateTracker};
use netpulse_core::parse_duration;
use netpulse_core::units::{packet_rate, Units};
use netpulse_iface::{IfaceInfo, IfaceSource};
use serde_json::json;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Which interfaces are shown: the named ones, or (by default) those up and not loopback.
pub struct Selection {
    /// Exactly these interfaces (whatever their state) when not empty.
    pub names: Vec<String>,
    /// Also interfaces that are down, and loopback.
    pub all: bool,
}

impl Selection {
    /// True if `info` is shown.
    pub fn wants(&self, info: &IfaceInfo) -> bool {
        if !self.names.is_empty() {
            return self.names.iter().any(|n| **n == *info.name);
        }
        self.all || (info.is_up() && !info.is_loopback())
    }
}

/// One shown row: the rate with the link details at the same tick.
struct Row<'a> {
    rate: &'a IfaceRate,
    info: Option<&'a IfaceInfo>,
}

impl Row<'_> {
    fn state(&self) -> &'static str {
        self.info.map_or("gone", IfaceInfo::state)
    }
}

enum Format {
    /// `framed`: a title with totals and no time column (one snapshot, or a live table);
    /// `redraw`: each frame replaces the previous one on the terminal.
    Table {
        framed: bool,
        redraw: bool,
    },
    Json,
    Csv,
}

pub fn run(args: IfacesArgs) -> anyhow::Result<ExitCode> {
    let interval = parse_duration(&args.interval).context("bad --interval")?;
    if interval < Duration::from_millis(10) {
        bail!("bad --interval {}: at least 10ms", args.interval);
    }
    if args.count == Some(0) {
        bail!("bad --count 0: at least 1");
    }
    let mut source = IfaceSource::open().context("cannot read network interfaces")?;
    for name in &args.ifaces {
        if !source.links().values().any(|l| *l.name == **name) {
            let mut names: Vec<&str> = source.links().values().map(|l| &*l.name).collect();
            names.sort_unstable();
            bail!(
                "no interface named \"{name}\" here; interfaces: {} (see `ip link`)",
                names.join(", ")
            );
        }
    }
    let selection = Selection {
        names: args.ifaces.clone(),
        all: args.all,
    };
    let units = Units {
        si: args.si,
        bits: args.bits,
    };
    let watch = args.watch || args.count.is_some();
    let ticks = if watch { args.count } else { Some(1) };
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    let format = if args.json {
        Format::Json
    } else if args.csv {
        Format::Csv
    } else {
        Format::Table {
            framed: !watch || tty,
            redraw: watch && tty,
        }
    };
    let recorder = match &args.record {
        Some(arg) => {
            let path = crate::record::db_path(arg);
            let config = json!({
                "interval_ms": interval.as_secs_f64() * 1000.0,
                "ifaces": args.ifaces,
                "all": args.all,
                "retention": args.retention.to_string(),
            });
            Some(
                crate::record::start_traffic(&path, args.retention, config)
                    .with_context(|| format!("cannot record to {}", path.display()))?,
            )
        }
        None => None,
    };
    let sink = recorder.as_ref().map(|r| r.sink());
    let (stop_tx, stop) = mpsc::channel();
    crate::signals::install(
        move || {
            let _ = stop_tx.send(());
        },
        None,
    )?;

    let mut out = BufWriter::new(stdout.lock());
    let mut view = View {
        units,
        sort: args.sort,
        format,
        frame_lines: 0,
        header_done: false,
        width: None,
    };
    let mut tracker = RateTracker::new();
    let (mut samples, mut rates, mut gone) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    // The baseline reading: speeds need two.
    source.poll(&mut samples)?;
    tracker.update(started.elapsed(), &samples, &mut rates, &mut gone);
    let mut shown = 0u64;
    let mut next = started;
    let result = loop {
        next += interval;
        // Ticks on a fixed timeline; after a stall (suspend) skip what was missed.
        let now = Instant::now();
        if next < now {
            next = now + interval;
        }
        match stop.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break Ok(()),
        }
        if let Err(e) = source.poll(&mut samples) {
            break Err(anyhow::Error::new(e).context("cannot read interface counters"));
        }
        let at = SystemTime::now();
        rates.clear();
        gone.clear();
        tracker.update(started.elapsed(), &samples, &mut rates, &mut gone);
        let rows = select(&source, &selection, &rates);
        if let Some(sink) = &sink {
            let picked: Vec<IfaceRate> = rows.iter().map(|r| r.rate.clone()).collect();
            sink.offer_traffic(at, &picked);
        }
        let gone_shown: Vec<&(u32, Arc<str>)> = gone
            .iter()
            .filter(|(_, name)| {
                selection.names.is_empty() || selection.names.iter().any(|n| **n == **name)
            })
            .collect();
        if let Err(e) = view.tick(&mut out, at, rows, &gone_shown) {
            break Err(e.into());
        }
        shown += 1;
        if ticks.is_some_and(|n| shown >= n) {
            break Ok(());
        }
    };
    if let Some(rec) = recorder {
        let report = rec.finish(SystemTime::now());
        crate::record::say_recording_end(&report, "interface readings");
    }
    result?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn select<'a>(source: &'a IfaceSource, sel: &Selection, rates: &'a [IfaceRate]) -> Vec<Row<'a>> {
    rates
        .iter()
        .filter_map(|rate| {
            let info = source.info(rate.index);
            match info {
                Some(i) if sel.wants(i) => Some(Row {
                    rate,
                    info: Some(i),
                }),
                _ => None,
            }
        })
        .collect()
}

struct View {
    units: Units,
    sort: IfaceSort,
    format: Format,
    /// Lines of the previous live frame (to redraw over them).
    frame_lines: usize,
    header_done: bool,
    /// Columns of the terminal a live table must fit (`None`: not a terminal, no limit).
    width: Option<usize>,
}

/// Columns given up, in this order, when a live table is wider than the terminal: the
/// packet rates, drops, errors, the state; then names are cut (down to 8); then the totals.
/// The speeds, what a live view is for, stay.
const DROP_ORDER: [usize; 5] = [7, 6, 9, 8, 1];
const DROP_LAST: [usize; 2] = [3, 2];

/// Which of the columns of `widths` (two spaces apart) are shown in `avail` columns, and how
/// wide the name column (0) may then be.
fn fit_columns(widths: &[usize; 10], avail: usize) -> ([bool; 10], usize) {
    let mut shown = [true; 10];
    let total = |shown: &[bool; 10], name: usize| -> usize {
        let cols = widths
            .iter()
            .enumerate()
            .filter(|(i, _)| shown[*i])
            .map(|(i, w)| if i == 0 { name } else { *w });
        let (sum, n) = cols.fold((0usize, 0usize), |(s, n), w| (s + w, n + 1));
        sum + 2 * n.saturating_sub(1)
    };
    let mut name = widths[0];
    for &drop in &DROP_ORDER {
        if total(&shown, name) <= avail {
            break;
        }
        shown[drop] = false;
    }
    let min_name = 8.min(widths[0]);
    let over = total(&shown, name).saturating_sub(avail);
    name = name.saturating_sub(over).max(min_name);
    for &drop in &DROP_LAST {
        if total(&shown, name) <= avail {
            break;
        }
        shown[drop] = false;
    }
    (shown, name)
}

fn rate_sum(rows: &[Row<'_>], pick: fn(&IfaceRate) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = rows.iter().filter_map(|r| pick(r.rate)).collect();
    (!v.is_empty()).then(|| v.iter().sum())
}

impl View {
    fn sort(&self, rows: &mut [Row<'_>]) {
        let total_rate = |r: &Row<'_>| {
            r.rate.rx_bytes_per_sec().unwrap_or(0.0) + r.rate.tx_bytes_per_sec().unwrap_or(0.0)
        };
        match self.sort {
            IfaceSort::Rx => rows.sort_by_key(|r| std::cmp::Reverse(r.rate.totals.rx_bytes)),
            IfaceSort::Tx => rows.sort_by_key(|r| std::cmp::Reverse(r.rate.totals.tx_bytes)),
            IfaceSort::Name => rows.sort_by(|a, b| a.rate.name.cmp(&b.rate.name)),
            IfaceSort::Rate => rows.sort_by(|a, b| total_rate(b).total_cmp(&total_rate(a))),
        }
    }

    fn tick(
        &mut self,
        out: &mut impl Write,
        at: SystemTime,
        mut rows: Vec<Row<'_>>,
        gone: &[&(u32, Arc<str>)],
    ) -> io::Result<()> {
        self.sort(&mut rows);
        let time = rfc3339_micros(at);
        match self.format {
            Format::Json => {
                for row in &rows {
                    write_json(out, &json_row(&time, row))?;
                }
                for (index, name) in gone {
                    write_json(
                        out,
                        &json!({"type": "iface_removed", "time": time, "interface": &**name, "index": index}),
                    )?;
                }
            }
            Format::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut *out);
                if !self.header_done {
                    w.write_record(CSV_HEADER)?;
                    self.header_done = true;
                }
                for row in &rows {
                    w.write_record(csv_row(&time, row))?;
                }
                w.flush()?;
            }
            Format::Table { framed: true, .. } => {
                if matches!(self.format, Format::Table { redraw: true, .. }) {
                    // Asked each frame: the terminal may have been resized.
                    self.width = ratatui::crossterm::terminal::size()
                        .ok()
                        .map(|(cols, _)| usize::from(cols).max(20));
                }
                let frame = self.table(&time, &rows, gone, true);
                if self.frame_lines > 0 {
                    // Back to the top of the previous frame, clear it, draw the new one.
                    write!(out, "\x1b[{}F\x1b[J", self.frame_lines)?;
                }
                if matches!(self.format, Format::Table { redraw: true, .. }) {
                    self.frame_lines = frame.lines().count();
                }
                out.write_all(frame.as_bytes())?;
            }
            Format::Table { framed: false, .. } => {
                let frame = self.table(&time, &rows, gone, !self.header_done);
                self.header_done = true;
                out.write_all(frame.as_bytes())?;
            }
        }
        out.flush()
    }

    /// The table; `with_header` adds the title and column names.
    fn table(
        &self,
        time: &str,
        rows: &[Row<'_>],
        gone: &[&(u32, Arc<str>)],
        with_header: bool,
    ) -> String {
        let u = &self.units;
        let live = matches!(self.format, Format::Table { framed: true, .. });
        let mut cells: Vec<[String; 10]> = Vec::new();
        for r in rows {
            let t = &r.rate.totals;
            cells.push([
                r.rate.name.to_string(),
                r.state().to_string(),
                u.bytes(t.rx_bytes),
                u.bytes(t.tx_bytes),
                u.rate(r.rate.rx_bytes_per_sec()),
                u.rate(r.rate.tx_bytes_per_sec()),
                packet_rate(r.rate.rx_packets_per_sec()),
                packet_rate(r.rate.tx_packets_per_sec()),
                (t.rx_errors + t.tx_errors).to_string(),
                (t.rx_dropped + t.tx_dropped).to_string(),
            ]);
        }
        let titles = [
            "Interface",
            "State",
            "Download",
            "Upload",
            "Down speed",
            "Up speed",
            "Pkt/s in",
            "Pkt/s out",
            "Errors",
            "Drops",
        ];
        let mut widths: [usize; 10] = titles.map(str::len);
        for c in &cells {
            for (w, v) in widths.iter_mut().zip(c.iter()) {
                *w = (*w).max(v.chars().count());
            }
        }
        let (shown, name_width) = match self.width.filter(|_| live) {
            Some(avail) => fit_columns(&widths, avail),
            None => ([true; 10], widths[0]),
        };
        widths[0] = name_width;
        let line = |c: &[String; 10]| {
            let mut s = String::new();
            for (i, (v, w)) in c.iter().zip(widths.iter()).enumerate() {
                if !shown[i] {
                    continue;
                }
                if i == 0 {
                    let cut: String = v.chars().take(*w).collect();
                    s.push_str(&format!("{cut:<w$}  "));
                } else if i < 2 {
                    s.push_str(&format!("{v:<w$}  "));
                } else {
                    s.push_str(&format!("{v:>w$}  "));
                }
            }
            let mut s = s.trim_end().to_string();
            if !live {
                s = format!("{time}  {s}");
            }
            s.push('\n');
            s
        };
        let mut text = String::new();
        if live {
            let totals = rows
                .iter()
                .fold(IfaceCounters::default(), |acc, r| acc.add(&r.rate.totals));
            let title = format!(
                "netpulse ifaces  {}  {} interface{}  down {}  up {}  (total {} / {})",
                &time[..time.len().min(19)].replace('T', " "),
                rows.len(),
                if rows.len() == 1 { "" } else { "s" },
                u.rate(rate_sum(rows, IfaceRate::rx_bytes_per_sec)),
                u.rate(rate_sum(rows, IfaceRate::tx_bytes_per_sec)),
                u.bytes(totals.rx_bytes),
                u.bytes(totals.tx_bytes),
            );
            // A title that wrapped would also throw the redraw off by a line each second.
            let fitted: String = match self.width {
                Some(w) => title.chars().take(w).collect(),
                None => title,
            };
            text.push_str(&fitted);
            text.push('\n');
        }
        if with_header {
            let mut h = line(&titles.map(String::from));
            if !live {
                // The time column's title, padded like the timestamps.
                h = format!("{:<w$}{}", "# time", &h[time.len()..], w = time.len());
            }
            text.push_str(&h);
        }
        for c in &cells {
            text.push_str(&line(c));
        }
        if live {
            for (_, name) in gone {
                text.push_str(&format!("{name}: gone\n"));
            }
        }
        text
    }
}

fn write_json(out: &mut impl Write, v: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")
}

/// Counters as JSON fields (serialized straight from the struct: at 1 Hz with hundreds of
/// interfaces, building `Value` maps cost more than reading the kernel).
#[derive(serde::Serialize)]
struct CountersJson {
    rx_bytes: u64,
    tx_bytes: u64,
    rx_packets: u64,
    tx_packets: u64,
    rx_errors: u64,
    tx_errors: u64,
    rx_dropped: u64,
    tx_dropped: u64,
    multicast: u64,
}

impl From<&IfaceCounters> for CountersJson {
    fn from(c: &IfaceCounters) -> Self {
        CountersJson {
            rx_bytes: c.rx_bytes,
            tx_bytes: c.tx_bytes,
            rx_packets: c.rx_packets,
            tx_packets: c.tx_packets,
            rx_errors: c.rx_errors,
            tx_errors: c.tx_errors,
            rx_dropped: c.rx_dropped,
            tx_dropped: c.tx_dropped,
            multicast: c.multicast,
        }
    }
}

/// One `"type":"iface"` line (documented in the README).
#[derive(serde::Serialize)]
struct IfaceJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    time: &'a str,
    interface: &'a str,
    index: u32,
    state: &'static str,
    mtu: Option<u32>,
    speed_mbps: Option<u32>,
    #[serde(flatten)]
    totals: CountersJson,
    interval_s: f64,
    delta: Option<CountersJson>,
    rx_bytes_per_s: Option<f64>,
    tx_bytes_per_s: Option<f64>,
    rx_packets_per_s: Option<f64>,
    tx_packets_per_s: Option<f64>,
    event: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    renamed_from: Option<&'a str>,
}

fn json_row<'a>(time: &'a str, row: &'a Row<'_>) -> IfaceJson<'a> {
    let r = row.rate;
    let rate = |x: Option<f64>| x.map(|x| (x * 1000.0).round() / 1000.0);
    IfaceJson {
        kind: "iface",
        time,
        interface: &r.name,
        index: r.index,
        state: row.state(),
        mtu: row.info.and_then(|i| i.mtu),
        speed_mbps: row.info.and_then(|i| i.speed_mbps),
        totals: (&r.totals).into(),
        interval_s: r.elapsed.as_secs_f64(),
        delta: r.delta.as_ref().map(Into::into),
        rx_bytes_per_s: rate(r.rx_bytes_per_sec()),
        tx_bytes_per_s: rate(r.tx_bytes_per_sec()),
        rx_packets_per_s: rate(r.rx_packets_per_sec()),
        tx_packets_per_s: rate(r.tx_packets_per_sec()),
        event: r.continuity.event(),
        renamed_from: match &r.continuity {
            Continuity::Renamed { from } => Some(from),
            _ => None,
        },
    }
}

const CSV_HEADER: [&str; 18] = [
    "time",
    "interface",
    "index",
    "state",
    "rx_bytes",
    "tx_bytes",
    "rx_packets",
    "tx_packets",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
    "interval_s",
    "rx_bytes_per_s",
    "tx_bytes_per_s",
    "rx_packets_per_s",
    "tx_packets_per_s",
    "event",
];

/// One CSV record (the `csv` crate quotes what needs it: interface names may hold commas).
fn csv_row(time: &str, row: &Row<'_>) -> Vec<String> {
    let r = row.rate;
    let t = &r.totals;
    let opt = |x: Option<f64>| x.map(|x| format!("{x:.3}")).unwrap_or_default();
    vec![
        time.to_string(),
        r.name.to_string(),
        r.index.to_string(),
        row.state().to_string(),
        t.rx_bytes.to_string(),
        t.tx_bytes.to_string(),
        t.rx_packets.to_string(),
        t.tx_packets.to_string(),
        t.rx_errors.to_string(),
        t.tx_errors.to_string(),
        t.rx_dropped.to_string(),
        t.tx_dropped.to_string(),
        format!("{:.6}", r.elapsed.as_secs_f64()),
        opt(r.rx_bytes_per_sec()),
        opt(r.tx_bytes_per_sec()),
        opt(r.rx_packets_per_sec()),
        opt(r.tx_packets_per_sec()),
        r.continuity.event().unwrap_or("").to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_table_gives_up_packet_rates_then_drops_errors_state_then_cuts_names() {
        // Interface, State, Download, Upload, Down/Up speed, Pkt/s in/out, Errors, Drops
        let widths = [16, 5, 10, 10, 12, 12, 9, 9, 6, 5];
        let total = |shown: &[bool; 10], name: usize| {
            let cols: Vec<usize> = (0..10)
                .filter(|&i| shown[i])
                .map(|i| if i == 0 { name } else { widths[i] })
                .collect();
            cols.iter().sum::<usize>() + 2 * (cols.len() - 1)
        };
        let (shown, name) = fit_columns(&widths, 200);
        assert_eq!((shown, name), ([true; 10], 16), "room for all");
        for avail in [100, 80, 60, 50] {
            let (shown, name) = fit_columns(&widths, avail);
            assert!(total(&shown, name) <= avail, "{avail}: {shown:?} {name}");
            assert!(shown[0] && shown[4] && shown[5], "name and speeds stay");
        }
        let (shown, _) = fit_columns(&widths, 80);
        assert!(!shown[7] && !shown[6], "packet rates go first: {shown:?}");
        let (_, name) = fit_columns(&widths, 60);
        assert!((8..16).contains(&name), "then names are cut: {name}");
    }
}
