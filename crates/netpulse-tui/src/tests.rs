//! Frames rendered on ratatui's TestBackend and asserted cell by cell.

use super::*;
use netpulse_core::alert::{AlertEvent, AlertKind, Comparator, Metric, Severity};
use netpulse_core::iface::IfaceCounters;
use netpulse_core::outage::Outage;
use netpulse_core::record::{Detail, Outcome, ProbeResult};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NOW: i64 = 1_800_000_000;

fn at(sec: i64, ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(sec as u64) + Duration::from_millis(ms)
}

fn result(seq: u64, rtt_ms: Option<f64>) -> ProbeResult {
    ProbeResult {
        target: 0,
        seq,
        sent_at: UNIX_EPOCH,
        rtt: rtt_ms.map(|m| Duration::from_secs_f64(m / 1e3)),
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

/// Two targets over two minutes (one with a lossy stretch and an outage), one interface, one
/// firing alert.
fn scene() -> LiveView {
    let mut v = LiveView::default();
    v.add_target(0, "gateway", "icmp:10.0.0.1", "icmp");
    v.add_target(1, "dns", "dns://10.0.0.53/example.org", "dns");
    let mut seq = 0;
    for s in NOW - 120..NOW {
        for k in 0..4u64 {
            seq += 1;
            let mut r = result(seq, Some(10.0 + (s % 7) as f64));
            // Three of the gateway's sends left late, the worst by 2.5 ms.
            if s == NOW - 50 && k < 3 {
                r.late = true;
                r.send_delay = Duration::from_micros(1500 + 500 * k);
            }
            v.result(0, &r, at(s, k * 250));
            let lost = (NOW - 40..NOW - 30).contains(&s);
            v.result(1, &result(seq, (!lost).then_some(25.0)), at(s, k * 250));
        }
    }
    v.tick(at(NOW, 0));
    v.outage(
        1,
        &Outage {
            start: at(NOW - 40, 0),
            end: at(NOW - 30, 0),
            sent: 40,
            received: 0,
            ongoing: false,
        },
    );
    let totals = IfaceCounters {
        rx_bytes: 5_000_000,
        tx_bytes: 1_000_000,
        ..IfaceCounters::default()
    };
    for s in NOW - 60..NOW {
        v.iface("eth0", at(s, 0), Some(125_000.0), Some(12_500.0), &totals);
    }
    v.alert(&AlertEvent {
        rule: "dns loss".into(),
        subject: "dns".into(),
        metric: Metric::Loss,
        kind: AlertKind::Fired,
        value: 0.25,
        op: Comparator::Above,
        threshold: 0.05,
        severity: Severity::Critical,
        at: at(NOW - 30, 0),
        since: at(NOW - 40, 0),
        gone: false,
    });
    v
}

fn render(app: &App, live: &LiveView, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    term.draw(|f| draw(f, app, live, NOW)).expect("draw");
    let buf = term.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_main_screen_in_80_by_24_shows_every_panel() {
    let live = scene();
    let screen = render(&App::default(), &live, 80, 24);
    assert!(screen.contains("netpulse"), "{screen}");
    assert!(screen.contains("1 ALERT FIRING"), "{screen}");
    assert!(screen.contains("dropped 0"), "{screen}");
    assert!(screen.contains("late 3 (2.5 ms)"), "{screen}");
    assert!(screen.contains("gateway"), "{screen}");
    // The dns target's own row (not the alert naming it): a row of the targets table.
    assert!(
        screen
            .lines()
            .any(|l| l.trim_start_matches(['│', ' ']).starts_with("dns ") && l.contains('%')),
        "{screen}"
    );
    // 125 000 B/s = 1.00 Mbit/s down, 12 500 B/s = 100 kbit/s up, on the interface's row,
    // spelled as the CLI spells them.
    assert!(
        screen
            .lines()
            .any(|l| l.contains("eth0") && l.contains("1.00 Mbit/s") && l.contains("100 kbit/s")),
        "{screen}"
    );
    assert!(screen.contains("FIRING"), "{screen}");
    assert!(screen.contains("q quit"), "{screen}");
    // The interface sparkline is drawn with block characters.
    assert!(screen.contains('▁') || screen.contains('█'), "{screen}");
}

#[test]
fn the_target_table_shows_the_last_minute_and_the_chart_its_window() {
    let live = scene();
    let screen = render(&App::default(), &live, 120, 30);
    // gateway: 10..16 ms, no loss in the last minute.
    let row = screen
        .lines()
        .find(|l| l.contains("gateway") && l.contains("ok"))
        .unwrap_or_else(|| panic!("no gateway row:\n{screen}"));
    assert!(
        row.contains("10.00") && row.contains("16.00") && row.contains("0.0%"),
        "{row}"
    );
    // dns lost 40 of 240 in the last minute: 16.7 %.
    let row = screen
        .lines()
        .find(|l| l.contains("dns") && l.contains('%'))
        .unwrap_or_else(|| panic!("no dns row:\n{screen}"));
    assert!(row.contains("16.7%") && row.contains("loss"), "{row}");
    // The chart of the selected (first) target, with its window.
    assert!(screen.contains("gateway — icmp:10.0.0.1"), "{screen}");
    assert!(
        screen.contains("-300s") && screen.contains("now"),
        "{screen}"
    );
}

#[test]
fn keys_move_select_pause_zoom_and_quit() {
    let live = scene();
    let mut app = App::default();
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    assert_eq!(app.key(key(KeyCode::Down), 2, 1), Action::None);
    assert_eq!(app.target, 1);
    app.key(key(KeyCode::Down), 2, 1);
    assert_eq!(app.target, 1, "stays on the last");
    let screen = render(&app, &live, 120, 30);
    assert!(screen.contains("dns — dns://10.0.0.53"), "{screen}");
    app.key(key(KeyCode::Char('p')), 2, 1);
    assert!(render(&app, &live, 120, 30).contains("PAUSED"));
    app.key(key(KeyCode::Char('+')), 2, 1);
    assert_eq!(app.window_s, 150);
    assert!(render(&app, &live, 120, 30).contains("-150s"));
    app.key(key(KeyCode::Tab), 2, 1);
    assert_eq!(app.focus, Focus::Ifaces);
    app.key(key(KeyCode::Down), 2, 1);
    assert_eq!(app.iface, 0);
    assert_eq!(app.key(key(KeyCode::Char('q')), 2, 1), Action::Quit);
    assert_eq!(
        App::default().key(
            KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
            2,
            1
        ),
        Action::Quit
    );
}

#[test]
fn enter_shows_the_histogram_and_outages_and_help_overlays() {
    let live = scene();
    let mut app = App::default();
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    app.key(key(KeyCode::Down), 2, 1);
    app.key(key(KeyCode::Enter), 2, 1);
    assert!(app.detail);
    let screen = render(&app, &live, 120, 30);
    assert!(screen.contains("440 replies"), "{screen}");
    assert!(screen.contains("late sends 0"), "{screen}");
    assert!(screen.contains("outages of dns"), "{screen}");
    let hhmmss = |s: i64| {
        format!(
            "{:02}:{:02}:{:02}",
            s % 86_400 / 3600,
            s % 3600 / 60,
            s % 60
        )
    };
    assert!(screen.contains(&hhmmss(NOW - 40)), "{screen}");
    assert!(
        screen.contains("10.0 s") && screen.contains("40/40"),
        "{screen}"
    );
    app.key(key(KeyCode::Esc), 2, 1);
    assert!(!app.detail);
    app.key(key(KeyCode::Char('?')), 2, 1);
    let screen = render(&app, &live, 80, 24);
    assert!(
        screen.contains("help") && screen.contains("zoom the chart"),
        "{screen}"
    );
    assert_eq!(app.key(key(KeyCode::Char('x')), 2, 1), Action::None);
    assert!(!app.help);
}

#[test]
fn a_running_capture_shows_its_top_talkers() {
    let mut live = scene();
    live.capture = Some(netpulse_core::live::CaptureLive {
        interface: "eth0".into(),
        packets: 12_345,
        bytes: 9_000_000,
        bits_per_sec: 8_000_000.0,
        protocols: vec![("ethernet".into(), 100, 60_000), ("tcp".into(), 90, 55_000)],
        top_hosts: vec![("192.0.2.7".into(), 700_000), ("192.0.2.9".into(), 300)],
        dropped: 0,
    });
    let screen = render(&App::default(), &live, 120, 40);
    assert!(screen.contains("capture on eth0 — top talkers"), "{screen}");
    assert!(
        screen.contains("12345 packets") && screen.contains("8.00 Mbit/s"),
        "{screen}"
    );
    assert!(screen.contains("tcp 90 pkts 53.7 KiB"), "{screen}");
    assert!(
        screen.contains("8.58 MiB"),
        "bytes so far, with a unit: {screen}"
    );
    let row = screen
        .lines()
        .find(|l| l.contains("192.0.2.7"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(row.contains("684 KiB"), "{row}");
}

#[test]
fn tiny_and_empty_screens_do_not_panic() {
    let empty = LiveView::default();
    let screen = render(&App::default(), &empty, 80, 24);
    assert!(screen.contains("no targets"), "{screen}");
    let live = scene();
    for (w, h) in [(20, 5), (40, 10), (80, 24), (200, 60), (1, 1)] {
        let _ = render(&App::default(), &live, w, h);
    }
}

/// Whole frames as snapshots (`src/snapshots/`): a change to what the TUI draws is reviewed.
/// After an intended change: `INSTA_UPDATE=always cargo test -p netpulse-tui`, review the diff.
#[test]
fn frames_of_the_main_screen_and_the_help() {
    let live = scene();
    insta::assert_snapshot!("main_80x24", render(&App::default(), &live, 80, 24));
    insta::assert_snapshot!("main_120x40", render(&App::default(), &live, 120, 40));
    let mut help = App::default();
    help.key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE), 2, 1);
    insta::assert_snapshot!("help_80x24", render(&help, &live, 80, 24));
}

#[test]
fn long_labels_show_whole_and_last_never_reads_below_min() {
    let mut v = LiveView::default();
    v.add_target(0, "edge-router-frankfurt-1", "icmp:10.0.0.1", "icmp");
    for (i, s) in (NOW - 30..NOW).enumerate() {
        v.result(0, &result(i as u64 + 1, Some(20.0)), at(s, 0));
    }
    v.tick(at(NOW, 0));
    // A faster reply in the second still filling: "last" 5 ms, so min must say 5 too.
    v.result(0, &result(31, Some(5.0)), at(NOW, 100));
    let screen = render(&App::default(), &v, 120, 40);
    let row = screen
        .lines()
        .find(|l| l.starts_with("│edge-router-frankfurt-1 "))
        .unwrap_or_else(|| panic!("label cut: {screen}"));
    let numbers: Vec<f64> = row
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (last, min) = (numbers[0], numbers[1]);
    assert!(last >= min, "{row}");
    assert_eq!(min, 5.0, "{row}");
}

#[test]
fn the_histogram_shows_every_bin_it_has_at_80_columns() {
    let mut v = LiveView::default();
    v.add_target(0, "t", "icmp:10.0.0.1", "icmp");
    // 47 replies spread from 10 to 56 ms: every bar must be on screen.
    for i in 0..47u64 {
        v.result(
            0,
            &result(i + 1, Some(10.0 + i as f64)),
            at(NOW - 50 + i as i64, 0),
        );
    }
    v.tick(at(NOW, 0));
    let app = App {
        detail: true,
        ..App::default()
    };
    let screen = render(&app, &v, 80, 24);
    assert!(screen.contains("47 replies"), "{screen}");
    // The highest bin's label (its start, ms) is drawn: nothing was cut off on the right.
    let bins = v.targets[0]
        .as_ref()
        .map(|t| t.total.rtt.parts().hist.linear_bins((80 - 2) / 7))
        .unwrap_or_default();
    let last = bins
        .last()
        .map(|b| format!("{:.2}", b.0 / 1e6))
        .unwrap_or_default();
    assert!(screen.contains(&last), "bin {last} missing:\n{screen}");
}
