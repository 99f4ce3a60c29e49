//! netpulse's terminal UI: the targets with a latency chart of the selected one (loss and
//! outages marked), the interfaces with live rates and sparklines, the alerts; Enter for a
//! target's histogram and outage list, `p` to pause, `?` for help. Drawing is a pure function
//! of the live view and the UI state, so it is tested on ratatui's `TestBackend`.

use netpulse_core::live::{LiveView, TargetLive};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, BarChart, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table,
    TableState, Wrap,
};
use ratatui::Frame;

/// Which panel has the arrow keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The target list.
    Targets,
    /// The interface table.
    Ifaces,
}

/// What a key press asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Leave.
    Quit,
}

/// The UI's own state.
#[derive(Debug, Clone)]
pub struct App {
    /// Selected target (index among the listed ones).
    pub target: usize,
    /// Selected interface.
    pub iface: usize,
    /// Which list the arrows move in.
    pub focus: Focus,
    /// The picture is frozen (`p`).
    pub paused: bool,
    /// The help overlay is shown.
    pub help: bool,
    /// The selected target's detail (histogram, outages) is shown.
    pub detail: bool,
    /// Seconds of history in the chart.
    pub window_s: i64,
}

impl Default for App {
    fn default() -> Self {
        App {
            target: 0,
            iface: 0,
            focus: Focus::Targets,
            paused: false,
            help: false,
            detail: false,
            window_s: 300,
        }
    }
}

impl App {
    /// Applies a key; `targets` and `ifaces` are the list lengths (to keep selections inside).
    pub fn key(&mut self, k: KeyEvent, targets: usize, ifaces: usize) -> Action {
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.help {
            // Any key closes the help; q still quits.
            self.help = false;
            return if k.code == KeyCode::Char('q') {
                Action::Quit
            } else {
                Action::None
            };
        }
        let (sel, len) = match self.focus {
            Focus::Targets => (&mut self.target, targets),
            Focus::Ifaces => (&mut self.iface, ifaces),
        };
        match k.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc if self.detail => self.detail = false,
            KeyCode::Esc => return Action::Quit,
            KeyCode::Char('?') | KeyCode::F(1) => self.help = true,
            KeyCode::Char('p') | KeyCode::Char(' ') => self.paused = !self.paused,
            KeyCode::Enter => self.detail = !self.detail && self.focus == Focus::Targets,
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::Targets => Focus::Ifaces,
                    Focus::Ifaces => Focus::Targets,
                };
                self.detail = false;
            }
            KeyCode::Down | KeyCode::Char('j') => *sel = (*sel + 1).min(len.saturating_sub(1)),
            KeyCode::Up | KeyCode::Char('k') => *sel = sel.saturating_sub(1),
            KeyCode::Home => *sel = 0,
            KeyCode::End => *sel = len.saturating_sub(1),
            KeyCode::Char('+') => self.window_s = (self.window_s / 2).max(30),
            KeyCode::Char('-') => self.window_s = (self.window_s * 2).min(900),
            _ => {}
        }
        Action::None
    }
}

fn ms(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v < 1.0 => format!("{v:.3}"),
        Some(v) if v < 100.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.0}"),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}%", v * 100.0))
}

/// A rate in bit/s, spelled as everywhere else (`12.6 Mbit/s`); `–` when unknown.
fn rate(bytes_per_s: Option<f64>) -> String {
    match bytes_per_s {
        None => "–".into(),
        Some(_) => netpulse_core::units::Units {
            si: true,
            bits: true,
        }
        .rate(bytes_per_s),
    }
}

/// Eight-level block sparkline of the last `width` values.
fn sparkline(values: impl DoubleEndedIterator<Item = f64>, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let mut v: Vec<f64> = values.rev().take(width).collect();
    v.reverse();
    let max = v.iter().copied().fold(0.0, f64::max);
    v.iter()
        .map(|x| {
            if max <= 0.0 {
                BARS[0]
            } else {
                BARS[((x / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

/// The targets as listed (active first, in run order).
pub fn listed(live: &LiveView) -> Vec<&TargetLive> {
    let mut t: Vec<&TargetLive> = live.targets.iter().flatten().map(|t| &**t).collect();
    t.sort_by_key(|t| !t.active);
    t
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App, live: &LiveView, now_s: i64) {
    let area = f.area();
    let [title, body, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(8),
        Constraint::Length(1),
    ])
    .areas(area);
    let targets = listed(live);
    let firing = live.firing.len();
    let mut head = vec![
        Span::styled(" netpulse ", Style::new().bold().reversed()),
        Span::raw(format!(
            "  {} targets  {} ifaces  ",
            targets.len(),
            live.ifaces.len()
        )),
    ];
    if firing > 0 {
        head.push(Span::styled(
            format!(
                " {firing} ALERT{} FIRING ",
                if firing == 1 { "" } else { "S" }
            ),
            Style::new().fg(Color::White).bg(Color::Red).bold(),
        ));
    } else {
        head.push(Span::styled(
            "no alerts firing",
            Style::new().fg(Color::Green),
        ));
    }
    // What the monitor lost on the way and how late its own sends were: always shown.
    let dropped = live.monitor_dropped + live.record_dropped;
    let drop_style = if dropped > 0 {
        Style::new().fg(Color::Red).bold()
    } else {
        Style::new().dim()
    };
    head.push(Span::styled(format!("  dropped {dropped}"), drop_style));
    let (late, max) = targets.iter().fold((0u64, 0f64), |(n, m), t| {
        (
            n + t.total.late_sends,
            m.max(t.total.max_send_delay.as_secs_f64() * 1e3),
        )
    });
    if late > 0 {
        head.push(Span::styled(
            format!("  late {late} ({max:.1} ms)"),
            Style::new().fg(Color::Yellow),
        ));
    } else {
        head.push(Span::styled("  late 0", Style::new().dim()));
    }
    if app.paused {
        head.push(Span::styled(
            "  PAUSED (p) ",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    f.render_widget(Line::from(head), title);
    // The monitor's latest message (a reload, a name that resolves, an alert on a console
    // notifier) for half a minute; otherwise the keys.
    match live.messages.back() {
        Some((at_ms, text)) if now_s * 1000 - at_ms < MESSAGE_SHOWN_MS => {
            let room = usize::from(keys.width).saturating_sub(18);
            let text: String = text
                .strip_prefix("netpulse monitor: ")
                .unwrap_or(text)
                .chars()
                .take(room)
                .collect();
            f.render_widget(
                Line::from(vec![
                    Span::raw(format!(" {} ", hhmmss(*at_ms))).dim(),
                    Span::styled(text, Style::new().fg(Color::Yellow)),
                    Span::raw("  ? help").dim(),
                ]),
                keys,
            );
        }
        _ => f.render_widget(
            Line::from(
                " q quit  Tab panel  ↑↓ select  Enter detail  p pause  +/- zoom  ? help".dim(),
            ),
            keys,
        ),
    }

    // Targets + chart on top; interfaces and alerts below.
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(body);
    let list_width = label_width(&targets) + TARGET_COLUMNS;
    let narrow = area.width < list_width + 42;
    let [list_area, chart_area] = if narrow {
        // Stacked: the chart keeps at least 8 rows (3 of plot); the list scrolls.
        let list_rows = (targets.len() as u16 + 3).min(top.height.saturating_sub(8).max(4));
        Layout::vertical([Constraint::Length(list_rows), Constraint::Min(5)]).areas(top)
    } else {
        // Every column of the targets table at its full width, the chart beside it.
        Layout::horizontal([Constraint::Length(list_width), Constraint::Min(30)]).areas(top)
    };
    let [iface_area, alert_area] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);

    draw_targets(f, app, &targets, list_area);
    let selected = targets.get(app.target.min(targets.len().saturating_sub(1)));
    match selected {
        Some(t) if app.detail => draw_detail(f, t, chart_area),
        Some(t) => draw_chart(f, app, t, now_s, chart_area),
        None => f.render_widget(
            Paragraph::new("no targets: add [[target]] sections to the config")
                .block(Block::bordered().title(" latency ")),
            chart_area,
        ),
    }
    draw_ifaces(f, app, live, iface_area);
    match &live.capture {
        Some(c) => {
            let [alerts, capture] =
                Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)])
                    .areas(alert_area);
            draw_alerts(f, live, alerts);
            draw_capture(f, c, capture);
        }
        None => draw_alerts(f, live, alert_area),
    }
    if app.help {
        draw_help(f, area);
    }
}

fn panel(title: &str, focused: bool) -> Block<'_> {
    let b = Block::bordered().title(format!(" {title} "));
    if focused {
        b.border_style(Style::new().fg(Color::Cyan))
    } else {
        b
    }
}

/// The target column: the longest label, between 12 and [`MAX_LABEL`] columns.
fn label_width(targets: &[&TargetLive]) -> u16 {
    let longest = targets
        .iter()
        .map(|t| t.label.chars().count())
        .max()
        .unwrap_or(0);
    longest.clamp(12, MAX_LABEL) as u16
}

/// How long the monitor's latest message stays in the bottom line.
const MESSAGE_SHOWN_MS: i64 = 30_000;

/// Longest target label shown whole.
const MAX_LABEL: usize = 32;

/// The targets table without its label column: 4 × 7 + 6 + 4, spacing, borders.
const TARGET_COLUMNS: u16 = 46;

fn draw_targets(f: &mut Frame, app: &App, targets: &[&TargetLive], area: Rect) {
    let rows = targets.iter().map(|t| {
        let (sent, received, min, avg, max) = t.recent(60);
        // The last reply may be in the second still filling, which the minute's figures do
        // not hold yet: min and max take it in, so "last" never reads below "min".
        let last = t.last_rtt.map(|d| d.as_secs_f64() * 1e3);
        let (min, max) = match (min, max, last) {
            (Some(lo), Some(hi), Some(l)) => (Some(lo.min(l)), Some(hi.max(l))),
            other => (other.0, other.1),
        };
        let loss = (sent > 0).then(|| 1.0 - received as f64 / sent as f64);
        let out = t.in_outage();
        let status = if !t.active {
            Cell::from("gone").dim()
        } else if out {
            Cell::from("DOWN").red().bold()
        } else if loss.is_some_and(|l| l > 0.0) {
            Cell::from("loss").yellow()
        } else if sent == 0 {
            Cell::from("…")
        } else {
            Cell::from("ok").green()
        };
        Row::new(vec![
            Cell::from(t.label.to_string()),
            Cell::from(ms(last)),
            Cell::from(ms(min)),
            Cell::from(ms(avg)),
            Cell::from(ms(max)),
            Cell::from(pct(loss)),
            status,
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(label_width(targets)),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(4),
        ],
    )
    .header(
        Row::new(["target", "last", "min", "avg", "max", "loss", ""])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(Style::new().reversed())
    .block(panel(
        "targets (last minute, ms)",
        app.focus == Focus::Targets,
    ));
    let mut state = TableState::default();
    if !targets.is_empty() {
        state.select(Some(app.target.min(targets.len() - 1)));
    }
    f.render_stateful_widget(table, area, &mut state);
}

fn draw_chart(f: &mut Frame, app: &App, t: &TargetLive, now_s: i64, area: Rect) {
    let from = now_s - app.window_s;
    let points: Vec<_> = t.points().filter(|p| p.sec >= from).collect();
    let avg: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some(((p.sec - now_s) as f64, p.avg_ms?)))
        .collect();
    let max: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some(((p.sec - now_s) as f64, p.max_ms?)))
        .collect();
    let top = max.iter().map(|p| p.1).fold(0.0, f64::max).max(0.001) * 1.1;
    // Seconds with loss: a red mark at the top; outages: red marks along the bottom.
    let lossy: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.loss().is_some_and(|l| l > 0.0))
        .map(|p| ((p.sec - now_s) as f64, top * 0.97))
        .collect();
    let mut outage: Vec<(f64, f64)> = Vec::new();
    for o in &t.outages {
        let (a, b) = (o.start_ms / 1000, o.end_ms / 1000);
        for s in a.max(from)..=b.min(now_s) {
            outage.push(((s - now_s) as f64, 0.0));
        }
    }
    let datasets = vec![
        Dataset::default()
            .name("max")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::DarkGray))
            .data(&max),
        Dataset::default()
            .name("avg")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Cyan))
            .data(&avg),
        Dataset::default()
            .name("loss")
            .marker(Marker::Block)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::Yellow))
            .data(&lossy),
        Dataset::default()
            .name("outage")
            .marker(Marker::Block)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::Red))
            .data(&outage),
    ];
    let (sent, received, min, mean, mx) = t.recent(app.window_s as usize);
    let loss = (sent > 0).then(|| 1.0 - received as f64 / sent as f64);
    let title = format!(
        " {} — {} · min/avg/max {}/{}/{} ms · loss {} ",
        t.label,
        t.target,
        ms(min),
        ms(mean),
        ms(mx),
        pct(loss)
    );
    let chart = Chart::new(datasets)
        .block(Block::bordered().title(title))
        .x_axis(
            Axis::default()
                .bounds([-(app.window_s as f64), 0.0])
                .labels([format!("-{}s", app.window_s), "now".to_string()])
                .style(Style::new().dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(["0".to_string(), format!("{} ms", ms(Some(top)))])
                .style(Style::new().dim()),
        );
    f.render_widget(chart, area);
}

fn draw_detail(f: &mut Frame, t: &TargetLive, area: Rect) {
    let [hist_area, out_area] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area);
    // Each bar takes 7 columns (6 + a gap): as many bins as fit, so none is cut off.
    let fit = (hist_area.width.saturating_sub(2) / 7).clamp(3, 12) as usize;
    let bins = t.total.rtt.parts().hist.linear_bins(fit);
    let labels: Vec<String> = bins.iter().map(|b| ms(Some(b.0 / 1e6))).collect();
    let data: Vec<(&str, u64)> = labels
        .iter()
        .zip(&bins)
        .map(|(l, b)| (l.as_str(), b.2))
        .collect();
    let summary = t.total.rtt.summary();
    let title = match summary {
        Some(s) => format!(
            " {} — {} replies · late sends {}{} · median {} · p95 {} · p99 {} ms (Enter/Esc: back) ",
            t.label,
            t.total.rtt.count(),
            t.total.late_sends,
            if t.total.late_sends > 0 {
                format!(" (max {} ms)", ms(Some(t.total.max_send_delay.as_secs_f64() * 1e3)))
            } else {
                String::new()
            },
            ms(Some(s.median.as_secs_f64() * 1e3)),
            ms(Some(s.p95.as_secs_f64() * 1e3)),
            ms(Some(s.p99.as_secs_f64() * 1e3))
        ),
        None => format!(" {} — no replies yet (Enter/Esc: back) ", t.label),
    };
    f.render_widget(
        BarChart::default()
            .block(Block::bordered().title(title))
            .data(&data)
            .bar_width(6)
            .bar_gap(1)
            .bar_style(Style::new().fg(Color::Cyan)),
        hist_area,
    );
    let rows = t.outages.iter().rev().map(|o| {
        Row::new(vec![
            Cell::from(hhmmss(o.start_ms)),
            Cell::from(format!("{:.1} s", (o.end_ms - o.start_ms) as f64 / 1000.0)),
            Cell::from(format!("{}/{}", o.sent - o.received, o.sent)),
            Cell::from(if o.ongoing { "going on" } else { "" }).red(),
        ])
    });
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Min(8),
            ],
        )
        .header(Row::new(["start (UTC)", "duration", "lost", ""]).bold())
        .block(Block::bordered().title(format!(" outages of {} ", t.label))),
        out_area,
    );
}

/// `HH:MM:SS` (UTC) of a unix-ms time, for the outage list.
fn hhmmss(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

fn draw_ifaces(f: &mut Frame, app: &App, live: &LiveView, area: Rect) {
    let spark_w = area.width.saturating_sub(44).clamp(4, 40) as usize;
    let rows = live.ifaces.iter().map(|i| {
        let spark = sparkline(i.history.iter().map(|h| h.1 + h.2), spark_w);
        let name = if i.present {
            i.name.clone()
        } else {
            format!("{} (gone)", i.name)
        };
        Row::new(vec![
            Cell::from(name),
            Cell::from(rate(i.rx_rate)).green(),
            Cell::from(rate(i.tx_rate)).yellow(),
            Cell::from(spark).cyan(),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Min(4),
        ],
    )
    .header(Row::new(["interface", "down", "up", "history"]).bold())
    .row_highlight_style(Style::new().reversed())
    .block(panel("interfaces", app.focus == Focus::Ifaces));
    let mut state = TableState::default();
    if app.focus == Focus::Ifaces && !live.ifaces.is_empty() {
        state.select(Some(app.iface.min(live.ifaces.len() - 1)));
    }
    f.render_stateful_widget(table, area, &mut state);
}

fn draw_alerts(f: &mut Frame, live: &LiveView, area: Rect) {
    let mut lines: Vec<Line> = live
        .firing
        .iter()
        .map(|a| Line::from(format!("FIRING {}", a.text)).red().bold())
        .collect();
    // A firing alert is listed once, on top; its own "firing" events below would repeat it.
    // (The path traced when it fired is not a repeat: it stays listed.)
    let still_firing = |a: &&netpulse_core::live::AlertLine| {
        a.kind != "resolved"
            && a.kind != "trace"
            && live
                .firing
                .iter()
                .any(|f| f.rule == a.rule && f.subject == a.subject)
    };
    for a in live
        .alerts
        .iter()
        .rev()
        .filter(|a| !still_firing(a))
        .take(area.height as usize)
    {
        let line = match a.kind.as_str() {
            "resolved" => Line::styled(format!("{} {}", a.kind, a.text), Style::new().green()),
            // The path traced when it fired, hop by hop on one line.
            "trace" => Line::styled(a.text.clone(), Style::new().cyan()),
            _ => Line::styled(format!("{} {}", a.kind, a.text), Style::new().yellow()),
        };
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(Line::from("no alerts").dim());
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().borders(Borders::ALL).title(" alerts ")),
        area,
    );
}

fn draw_capture(f: &mut Frame, c: &netpulse_core::live::CaptureLive, area: Rect) {
    let units = netpulse_core::units::Units {
        si: false,
        bits: false,
    };
    let mut lines = vec![Line::from(format!(
        "{} packets · {} · {} · {} dropped",
        c.packets,
        units.bytes(c.bytes),
        rate(Some(c.bits_per_sec / 8.0)),
        c.dropped
    ))];
    let protocols: Vec<String> = c
        .protocols
        .iter()
        .filter(|p| p.0 != "ethernet")
        .map(|p| format!("{} {} pkts {}", p.0, p.1, units.bytes(p.2)))
        .collect();
    lines.push(Line::from(protocols.join("  ")).dim());
    for (host, bytes) in &c.top_hosts {
        lines.push(Line::from(vec![
            Span::raw(format!("{host:<24}")),
            Span::styled(format!("{:>12}", units.bytes(*bytes)), Style::new().cyan()),
        ]));
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(format!(" capture on {} — top talkers ", c.interface))),
        area,
    );
}

fn draw_help(f: &mut Frame, area: Rect) {
    let w = area.width.min(58);
    let h = area.height.min(16);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let text = vec![
        Line::from("q, Esc, Ctrl-C   quit (the monitor stops cleanly)"),
        Line::from("Tab              targets ↔ interfaces"),
        Line::from("↑ ↓  j k         select"),
        Line::from("Enter            target detail: histogram, outages"),
        Line::from("p, space         pause / resume the picture"),
        Line::from("+ / -            zoom the chart (30 s … 15 min)"),
        Line::from("?                this help"),
        Line::from(""),
        Line::from("Chart: avg (cyan), max (grey), seconds with loss"),
        Line::from("(yellow, top), outages (red, bottom)."),
        Line::from(""),
        Line::from("any key closes this help").dim(),
    ];
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text).block(
            Block::bordered()
                .title(" help ")
                .border_style(Style::new().cyan()),
        ),
        r,
    );
}

#[cfg(test)]
mod tests;
