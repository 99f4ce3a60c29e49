//! `netpulse monitor --tui` as a person would use it: in a real terminal (tmux), against the
//! lab (5 ms each way, so the chart's RTT must read ~10 ms), driven with send-keys and read back
//! with capture-pane.

mod common;

use common::{skip, Lab};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux session, killed when the test ends, pass or fail.
struct Session(String);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

impl Session {
    /// Runs `cmd` in a new detached tmux session `name` of `cols` × `rows`.
    fn start(name: String, cols: u16, rows: u16, cmd: &str) -> Session {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let started = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                &cols,
                "-y",
                &rows,
                cmd,
            ])
            .status()
            .expect("tmux");
        assert!(started.success());
        Session(name)
    }

    fn keys(&self, keys: &[&str]) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.0])
            .args(keys)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "send-keys {keys:?}");
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Waits until the screen satisfies `check` (a terminal has no event to wait on; this
    /// polls what a person would see), failing after `limit` with the last screen.
    fn until(&self, limit: Duration, what: &str, check: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + limit;
        loop {
            let s = self.screen();
            if check(&s) {
                return s;
            }
            assert!(Instant::now() < end, "never saw {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn the_terminal_ui_under_tmux_against_the_lab() {
    if Command::new("tmux").arg("-V").output().is_err() {
        skip("tmux not installed (`.ci/run` installs it)");
        return;
    }
    let Some(lab) = Lab::up(5.0, 0.0, 0.0) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tui.toml");
    std::fs::write(
        &config,
        format!(
            "[monitor]\nstatus_every = \"1s\"\n[[target]]\ntarget = \"{}\"\nlabel = \"lab server\"\ninterval = \"100ms\"\n[ifaces]\nenabled = true\n[record]\nenabled = false\n\
             [[rule]]\nname = \"slow\"\nmetric = \"latency_avg\"\nthreshold = 1\nwindow = \"1s\"\n\
             [[notifier]]\ntype = \"console\"\n",
            lab.addr(2)
        ),
    )
    .expect("config");
    let name = common::unique('t');
    let cmd = format!(
        "ip netns exec {} {} monitor --tui --config {}; echo EXITED $?; sleep 60",
        lab.client(),
        common::bin(),
        config.display()
    );
    let s = Session::start(name, 100, 30, &cmd);

    // The main screen: the target with ~10 ms RTT, the lab interface, no alerts, key hints.
    let screen = s.until(Duration::from_secs(20), "the target with replies", |x| {
        x.lines()
            .any(|l| l.contains("lab server") && l.contains("ok"))
    });
    let row = screen
        .lines()
        .find(|l| l.contains("lab server") && l.contains("ok"))
        .expect("row");
    let numbers: Vec<f64> = row
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    // last, min, avg, max (ms): none below the delay line's floor (2 × 5 ms), min ≤ avg ≤ max,
    // and the fastest reply near it, in ms (µs would read 10 000). No upper bound on the
    // others: a busy machine delays replies (the max read 32 ms once under a parallel build).
    assert!(numbers.len() >= 4, "{row}");
    let (min, avg, max) = (numbers[1], numbers[2], numbers[3]);
    assert!(numbers[..4].iter().all(|v| *v >= 9.5), "{row}");
    assert!(min <= avg && avg <= max, "{row}");
    assert!(min < 50.0, "{row}");
    // The rule fires (10 ms > 1 ms): the console notifier's line is said in the UI's bottom
    // line, not written over the picture; the title stays on the first row.
    let screen = s.until(
        Duration::from_secs(20),
        "the alert in the bottom line",
        |x| {
            x.lines()
                .last()
                .is_some_and(|l| l.contains("ALERT [warning] slow lab server"))
        },
    );
    assert!(screen.starts_with(" netpulse "), "{screen}");
    assert!(screen.contains("ALERT FIRING"), "{screen}");
    // No status lines on top of the UI.
    assert!(!screen.contains("alerts firing:"), "{screen}");

    // Help, then any key closes it.
    s.keys(&["?"]);
    s.until(Duration::from_secs(5), "the help", |x| {
        x.contains("zoom the chart")
    });
    s.keys(&["x"]);
    s.until(Duration::from_secs(5), "the help closed", |x| {
        !x.contains("zoom the chart")
    });

    // Enter: the histogram and the outage list of the selected target.
    s.keys(&["Enter"]);
    s.until(Duration::from_secs(5), "the detail", |x| {
        x.contains("replies") && x.contains("outages of lab server")
    });
    s.keys(&["Escape"]);
    s.until(Duration::from_secs(5), "the chart again", |x| {
        x.contains("-300s")
    });

    // Pause freezes the picture.
    s.keys(&["p"]);
    s.until(Duration::from_secs(5), "PAUSED", |x| x.contains("PAUSED"));
    s.keys(&["p"]);
    s.until(Duration::from_secs(5), "running again", |x| {
        !x.contains("PAUSED")
    });

    // The interface panel is there; the lab client's interface carries the probes.
    let screen = s.screen();
    assert!(
        screen.contains("interfaces") && screen.contains("down"),
        "{screen}"
    );

    // q: the monitor stops cleanly and the terminal is back to the shell's screen.
    s.keys(&["q"]);
    let end = s.until(Duration::from_secs(15), "the exit", |x| {
        x.contains("EXITED")
    });
    assert!(end.contains("EXITED 0"), "{end}");
    assert!(end.contains("netpulse monitor: stopping"), "{end}");
    // What was said while the UI ran is on the terminal afterwards.
    assert!(end.contains("ALERT [warning] slow lab server"), "{end}");
    assert!(!end.contains("q quit"), "the UI is still on screen:\n{end}");
    assert!(Path::new(&config).exists());
}

/// `ifaces --watch` on an 80-column terminal: each frame fits (columns given up, the title
/// cut), so the in-place redraw replaces it exactly — one title and one header on screen,
/// however many seconds went by.
#[test]
fn ifaces_watch_fits_an_80_column_terminal_and_redraws_in_place() {
    if Command::new("tmux").arg("-V").output().is_err() {
        skip("tmux not installed (`.ci/run` installs it)");
        return;
    }
    let Some(ns) = common::Netns::new() else {
        return;
    };
    for i in 0..3 {
        let (name, peer) = (format!("veth-long-na{i:02}"), format!("peer-long-na{i:02}"));
        ns.exec(&[
            "ip", "link", "add", &name, "type", "veth", "peer", "name", &peer,
        ]);
        ns.exec(&["ip", "link", "set", &name, "up"]);
        ns.exec(&["ip", "link", "set", &peer, "up"]);
    }
    let name = format!("np-ifaces-{}", std::process::id());
    let cmd = format!(
        "ip netns exec {} {} ifaces --watch --interval 200ms",
        ns.name,
        common::bin()
    );
    let s = Session::start(name, 80, 24, &cmd);
    let first = s.until(Duration::from_secs(20), "the table", |x| {
        x.contains("veth-long-na02")
    });
    let title = |screen: &str| {
        screen
            .lines()
            .find(|l| l.starts_with("netpulse ifaces"))
            .map(str::to_string)
    };
    let first_title = title(&first);
    // Several frames later (the title's clock moved on):
    let later = s.until(Duration::from_secs(20), "a later frame", |x| {
        title(x).is_some() && title(x) != first_title
    });
    assert_eq!(later.matches("netpulse ifaces").count(), 1, "{later}");
    assert_eq!(later.matches("Interface").count(), 1, "{later}");
    assert_eq!(later.matches("veth-long-na00").count(), 1, "{later}");
    assert!(later.lines().all(|l| l.chars().count() <= 80), "{later}");
}

/// `netpulse trace` on a terminal: the live view in the terminal UI's style (a bordered table
/// with the round), and `q` ends it with the table printed once more.
#[test]
fn trace_live_view_draws_its_table_and_q_ends_it() {
    if Command::new("tmux").arg("-V").output().is_err() {
        skip("tmux not installed (`.ci/run` installs it)");
        return;
    }
    let cmd = format!(
        "{} trace -n -i 100ms 127.0.0.1; echo EXITED $?; sleep 60",
        common::bin()
    );
    let s = Session::start(common::unique('r'), 110, 20, &cmd);
    let screen = s.until(Duration::from_secs(15), "the live table", |x| {
        x.contains("round")
            && x.lines()
                .any(|l| l.contains("127.0.0.1") && l.contains('%'))
    });
    assert!(screen.contains("loss%"), "{screen}");
    s.keys(&["q"]);
    let end = s.until(Duration::from_secs(10), "the exit", |x| {
        x.contains("EXITED")
    });
    assert!(end.contains("EXITED 0"), "{end}");
    assert!(
        end.contains("HOP  HOST"),
        "the table printed at the end: {end}"
    );
}
