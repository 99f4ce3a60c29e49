//! `netpulse monitor` end to end: alerts through a real webhook receiver, a real SMTP server
//! (aiosmtpd) and a program, on the lab; a dead webhook receiver; SIGHUP reloads; the built-in
//! default config on a machine with nothing to probe; every config example in the docs.

mod common;

use common::{Lab, Netns, Reaped};
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::Mutex;

/// One lab at a time in this binary: each takes a core for its delay line.
static LAB: Mutex<()> = Mutex::new(());

/// A Python helper in namespace `ns` whose stdout lines are events; waits for its `ready`.
fn helper(ns: &str, python: &str, script: &str) -> (Reaped, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, python, "-u", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start helper");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let child = Reaped(child);
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(first, "ready", "helper did not start: {script}");
    (child, lines)
}

const WEBHOOK: &str = r#"
import http.server, sys, json
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        v = json.loads(body)
        print("POST", v["status"], v["rule"], v["subject"], flush=True)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 8080), H)
print("ready", flush=True)
s.serve_forever()
"#;

const SMTP: &str = r#"
import signal
from aiosmtpd.controller import Controller
class H:
    async def handle_DATA(self, server, session, envelope):
        text = envelope.content.decode("utf-8", "replace")
        subject = [l for l in text.splitlines() if l.startswith("Subject:")][0]
        print("MAIL", envelope.mail_from, ",".join(envelope.rcpt_tos), subject, flush=True)
        return "250 OK"
c = Controller(H(), hostname="127.0.0.1", port=2525)
c.start()
print("ready", flush=True)
signal.pause()
"#;

/// `netpulse monitor --config CONFIG` in namespace `ns`, with its stdout and stderr lines.
fn start_monitor(
    ns: &str,
    config: &std::path::Path,
) -> (
    Reaped,
    Lines<BufReader<ChildStdout>>,
    Lines<BufReader<ChildStderr>>,
) {
    start_monitor_with(ns, config, &[])
}

/// [`start_monitor`] with more arguments after the config.
fn start_monitor_with(
    ns: &str,
    config: &std::path::Path,
    extra: &[&std::ffi::OsStr],
) -> (
    Reaped,
    Lines<BufReader<ChildStdout>>,
    Lines<BufReader<ChildStderr>>,
) {
    let child = Command::new("ip")
        .args(["netns", "exec", ns, common::bin()])
        .args(["monitor", "--config"])
        .arg(config)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start monitor");
    let mut monitor = Reaped(child);
    let out = BufReader::new(monitor.0.stdout.take().expect("stdout")).lines();
    let err = BufReader::new(monitor.0.stderr.take().expect("stderr")).lines();
    (monitor, out, err)
}

fn kill(child: &mut Child, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status();
}

fn next_line<R: std::io::Read>(lines: &mut Lines<BufReader<R>>, what: &str) -> String {
    lines
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no more output while waiting for {what}"))
}

/// Reads lines (stdout or stderr) until one contains `needle`; returns the lines read.
fn until<R: std::io::Read>(lines: &mut Lines<BufReader<R>>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..2000 {
        let l = next_line(lines, needle);
        let hit = l.contains(needle);
        seen.push(l);
        if hit {
            return seen;
        }
    }
    panic!(
        "never saw {needle:?}; last: {:?}",
        &seen[seen.len().saturating_sub(5)..]
    );
}

#[test]
fn latency_alert_fires_and_resolves_through_webhook_email_and_exec_on_the_lab() {
    let _one = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::up(10.0, 0.0, 0.0) else {
        return;
    };
    let client = lab.client();
    let (_hook, mut hook_lines) = helper(&client, "python3", WEBHOOK);
    // Debian's aiosmtpd lives with Debian's Python.
    let (_smtp, mut smtp_lines) = helper(&client, "/usr/bin/python3", SMTP);
    let dir = tempfile::tempdir().expect("tempdir");
    let exec_log = dir.path().join("exec.log");
    let db = dir.path().join("m.db");
    let config = dir.path().join("monitor.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[monitor]
status_every = "1s"
[[target]]
target = "{server}"
label = "lab server"
interval = "100ms"
[ifaces]
enabled = false
[record]
db = "{db}"
[[rule]]
name = "lab latency"
metric = "latency_avg"
threshold = 60
for = "2s"
window = "2s"
severity = "critical"
[[notifier]]
type = "console"
[[notifier]]
type = "webhook"
url = "http://127.0.0.1:8080/hook"
retries = 2
[[notifier]]
type = "email"
server = "127.0.0.1"
port = 2525
security = "none"
from = "netpulse@lab.test"
to = ["oncall@lab.test"]
[[notifier]]
type = "exec"
program = "python3"
args = ["-c", "import os,sys; open(sys.argv[1],'a').write(os.environ['NETPULSE_ALERT_STATUS']+' '+os.environ['NETPULSE_ALERT_SUBJECT']+'\\n')", "{exec_log}"]
"#,
            server = lab.addr(2),
            db = db.display(),
            exec_log = exec_log.display()
        ),
    )
    .expect("config");
    let (mut monitor, mut lines, _err) = start_monitor(&client, &config);
    // RTT 20 ms: status lines, no alert.
    let seen = until(&mut lines, "lab server 2");
    assert!(!seen.iter().any(|l| l.contains("ALERT")), "{seen:?}");

    // 50 ms each way: RTT 100 ms > 60 ms for 2 s → one alert everywhere.
    lab.set_delay(50.0);
    let seen = until(&mut lines, "ALERT [critical] lab latency lab server");
    assert!(!seen.iter().any(|l| l.contains("RESOLVED")));
    assert_eq!(
        next_line(&mut hook_lines, "webhook POST"),
        "POST firing lab latency lab server"
    );
    let mail = next_line(&mut smtp_lines, "email");
    assert!(
        mail.starts_with("MAIL netpulse@lab.test oncall@lab.test Subject: [netpulse ")
            && mail.ends_with("firing lab server: lab latency"),
        "{mail}"
    );

    // Back to 10 ms: resolved notices.
    lab.set_delay(10.0);
    let seen = until(&mut lines, "RESOLVED lab latency lab server");
    assert_eq!(
        seen.iter().filter(|l| l.contains("ALERT")).count(),
        0,
        "no second alert while it lasted: {seen:?}"
    );
    assert_eq!(
        next_line(&mut hook_lines, "webhook resolved"),
        "POST resolved lab latency lab server"
    );
    let mail = next_line(&mut smtp_lines, "resolved email");
    assert!(mail.ends_with("resolved lab server: lab latency"), "{mail}");

    kill(&mut monitor.0, "-INT");
    assert!(monitor.0.wait().expect("wait").success());
    assert_eq!(
        std::fs::read_to_string(&exec_log).expect("exec ran"),
        "firing lab server\nresolved lab server\n"
    );
    // Every alert and delivery is in the store.
    let conn = rusqlite::Connection::open(&db).expect("db");
    let alerts: Vec<String> = conn
        .prepare("SELECT status FROM alerts ORDER BY id")
        .expect("sql")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(alerts, ["firing", "resolved"]);
    let deliveries: i64 = conn
        .query_row(
            "SELECT count(*) FROM alert_deliveries WHERE ok = 1",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(deliveries, 8, "4 notifiers × 2 notices, all delivered");
}

#[test]
fn a_dead_webhook_never_delays_probing_and_its_failures_are_recorded() {
    let Some(ns) = Netns::new() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let config = dir.path().join("monitor.toml");
    // Nothing listens on 127.0.0.1:9 in the namespace: every POST is refused at once; the rule
    // fires immediately (any loopback RTT is above 0).
    std::fs::write(
        &config,
        format!(
            r#"
[monitor]
status_every = "0s"
[[target]]
target = "tcp://127.0.0.1:9"
interval = "50ms"
[ifaces]
enabled = false
[record]
db = "{}"
[[rule]]
name = "any"
metric = "latency_avg"
threshold = 0
[[notifier]]
type = "webhook"
url = "http://127.0.0.1:9/hook"
retries = 2
timeout = "1s"
"#,
            db.display()
        ),
    )
    .expect("config");
    let (mut monitor, _out, mut err) = start_monitor(&ns.name, &config);
    // Attempts 1, 2 (after 1 s) and 3 (after 2 more s), then the failure is reported.
    until(
        &mut err,
        "alert delivery by webhook failed after 3 attempt(s)",
    );
    kill(&mut monitor.0, "-INT");
    assert!(monitor.0.wait().expect("wait").success());
    let conn = rusqlite::Connection::open(&db).expect("db");
    let attempts: Vec<(i64, i64, i64)> = conn
        .prepare("SELECT attempt, ok, final FROM alert_deliveries ORDER BY id")
        .expect("sql")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(attempts, [(1, 0, 0), (2, 0, 0), (3, 0, 1)]);
    // Probing went on throughout the ≥ 3 s of retries: every second of the run has probes
    // (a prober waiting on the webhook would leave seconds empty). How many is a rate, not
    // asserted.
    let (seconds, span): (i64, i64) = conn
        .query_row(
            "SELECT count(DISTINCT ts), max(ts) - min(ts) + 1 FROM probe_1s WHERE sent > 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("sent");
    assert!(span >= 3, "{span}");
    assert_eq!(
        seconds, span,
        "a second without probes while the webhook failed"
    );
}

#[test]
fn sighup_reloads_targets_and_rules_without_restarting_the_others() {
    let Some(ns) = Netns::new() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("monitor.toml");
    let write = |targets: &[&str], extra: &str| {
        let mut text = String::from("[monitor]\nstatus_every = \"1s\"\n[ifaces]\nenabled = false\n[record]\nenabled = false\n");
        for t in targets {
            text.push_str(&format!(
                "[[target]]\ntarget = \"{t}\"\ninterval = \"100ms\"\n"
            ));
        }
        text.push_str(extra);
        std::fs::write(&config, text).expect("config");
    };
    write(&["tcp://127.0.0.1:9", "udp://127.0.0.1:9"], "");
    let (mut monitor, mut lines, mut err) = start_monitor(&ns.name, &config);
    until(&mut lines, "tcp://127.0.0.1:9");
    // Keep one, drop one, add one.
    write(&["tcp://127.0.0.1:9", "tcp://127.0.0.1:10"], "");
    kill(&mut monitor.0, "-HUP");
    let reloaded = until(&mut err, "config reloaded").pop().unwrap_or_default();
    assert!(
        reloaded.contains("1 of 2 targets kept running, 1 started"),
        "{reloaded}"
    );
    let seen = until(&mut lines, "tcp://127.0.0.1:10");
    let status = seen.last().expect("a status line");
    assert!(!status.contains("udp://"), "{status}");
    // What cannot change while running is said, not silently ignored.
    write(
        &["tcp://127.0.0.1:9", "tcp://127.0.0.1:10"],
        "[listen]\nmetrics = \"127.0.0.1:0\"\n",
    );
    kill(&mut monitor.0, "-HUP");
    let said = until(&mut err, "next start").pop().unwrap_or_default();
    assert!(
        said.contains("[listen]") && said.contains("restart"),
        "{said}"
    );
    // A broken config on reload is reported and the running one stays.
    std::fs::write(&config, "[[target]]\ntargett = \"x\"\n").expect("config");
    kill(&mut monitor.0, "-HUP");
    let failed = until(&mut err, "reload failed").pop().unwrap_or_default();
    assert!(
        failed.contains("monitor.toml:2:1: unknown key \"targett\""),
        "{failed}"
    );
    until(&mut lines, "tcp://127.0.0.1:10");
    kill(&mut monitor.0, "-INT");
    assert!(monitor.0.wait().expect("wait").success());
}

#[test]
fn a_reload_that_changes_an_interval_keeps_the_minute_and_hour_history() {
    let Some(ns) = Netns::new() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("monitor.toml");
    let db = dir.path().join("history.db");
    let write = |interval: &str| {
        let text = format!(
            "[monitor]\nstatus_every = \"1s\"\n[ifaces]\nenabled = false\n[record]\ndb = \"{}\"\n\
             [[target]]\ntarget = \"tcp://127.0.0.1:9\"\ninterval = \"{interval}\"\n",
            db.display()
        );
        std::fs::write(&config, text).expect("config");
    };
    write("100ms");
    let (mut monitor, mut lines, mut err) = start_monitor(&ns.name, &config);
    until(&mut lines, "tcp://127.0.0.1:9");
    until(&mut lines, "tcp://127.0.0.1:9");
    // The interval changes twice: the target restarts under a new index each time.
    for interval in ["50ms", "100ms"] {
        write(interval);
        kill(&mut monitor.0, "-HUP");
        until(&mut err, "config reloaded");
        until(&mut lines, "tcp://127.0.0.1:9");
        until(&mut lines, "tcp://127.0.0.1:9");
    }
    kill(&mut monitor.0, "-INT");
    assert!(monitor.0.wait().expect("wait").success());
    let conn = rusqlite::Connection::open(&db).expect("sqlite");
    let sent = |table: &str| -> i64 {
        conn.query_row(
            &format!("SELECT coalesce(sum(sent), 0) FROM {table}"),
            [],
            |r| r.get(0),
        )
        .expect("sum")
    };
    let second = sent("probe_1s");
    assert!(second > 40, "{second} probes recorded");
    assert_eq!(sent("probe_1m"), second, "per-minute rows keep every probe");
    assert_eq!(sent("probe_1h"), second, "per-hour rows keep every probe");
}

/// GET `path` from the monitor's web server in namespace `ns` (port 9750 there).
fn get_in(ns: &Netns, path: &str) -> String {
    let script = format!(
        "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:9750{path}', timeout=5).read().decode())"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-c", &script])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn vanished_interfaces_leave_the_metrics_and_show_as_gone() {
    let Some(ns) = Netns::new() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("monitor.toml");
    std::fs::write(
        &config,
        "[monitor]\nstatus_every = \"1s\"\n[listen]\nweb = \"127.0.0.1:9750\"\n[record]\nenabled = false\n",
    )
    .expect("config");
    let (mut monitor, mut lines, _err) = start_monitor(&ns.name, &config);
    const PAIRS: usize = 30;
    for i in 0..PAIRS {
        let (a, b) = (format!("npv{i}a"), format!("npv{i}b"));
        ns.exec(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b]);
        ns.exec(&["ip", "link", "set", &a, "up"]);
        ns.exec(&["ip", "link", "set", &b, "up"]);
    }
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.contains("interface=\"npv"))
            .count()
    };
    // Each status line is a tick: the interfaces are read once per tick.
    let mut seen = 0;
    for _ in 0..30 {
        next_line(&mut lines, "a status line");
        seen = series(&get_in(&ns, "/metrics"));
        if seen >= PAIRS * 2 * 5 {
            break;
        }
    }
    assert!(seen >= PAIRS * 2 * 5, "{seen} series of the new interfaces");
    for i in 0..PAIRS {
        ns.exec(&["ip", "link", "del", &format!("npv{i}a")]);
    }
    let mut left = usize::MAX;
    for _ in 0..30 {
        next_line(&mut lines, "a status line");
        left = series(&get_in(&ns, "/metrics"));
        if left == 0 {
            break;
        }
    }
    assert_eq!(left, 0, "series of deleted interfaces stay in /metrics");
    let ifaces: serde_json::Value =
        serde_json::from_str(&get_in(&ns, "/api/interfaces")).expect("json");
    let gone: Vec<&serde_json::Value> = ifaces["interfaces"]
        .as_array()
        .or(ifaces.as_array())
        .expect("a list")
        .iter()
        .filter(|i| i["name"].as_str().is_some_and(|n| n.starts_with("npv")))
        .collect();
    assert!(
        gone.iter()
            .all(|i| i["present"] == false && i["rx_bytes_per_sec"].is_null()),
        "{gone:?}"
    );
    kill(&mut monitor.0, "-INT");
    assert!(monitor.0.wait().expect("wait").success());
}

#[test]
fn the_built_in_config_runs_on_a_machine_with_nothing_to_probe() {
    let Some(ns) = Netns::new() else { return };
    // `ip netns exec` shows /etc/netns/NAME/resolv.conf as /etc/resolv.conf: an empty one.
    let etc = format!("/etc/netns/{}", ns.name);
    std::fs::create_dir_all(&etc).expect("etc dir");
    std::fs::write(format!("{etc}/resolv.conf"), "# nothing\n").expect("resolv.conf");
    let dir = tempfile::tempdir().expect("tempdir");
    let monitor = Command::new("ip")
        .args(["netns", "exec", &ns.name, common::bin(), "monitor"])
        .env("XDG_DATA_HOME", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start monitor");
    let mut monitor = Reaped(monitor);
    let mut err = BufReader::new(monitor.0.stderr.take().expect("stderr")).lines();
    let mut said = Vec::new();
    while let Some(Ok(l)) = err.next() {
        let done = l.contains("recording to");
        said.push(l);
        if done {
            break;
        }
    }
    kill(&mut monitor.0, "-INT");
    let status = monitor.0.wait().expect("wait");
    let _ = std::fs::remove_dir_all(&etc);
    assert!(status.success(), "{said:?}");
    assert!(
        said.iter().any(|l| l.contains("built-in default")),
        "{said:?}"
    );
    assert!(said.iter().any(|l| l.contains("no targets")), "{said:?}");
    assert!(dir.path().join("netpulse/netpulse.db").exists());
}

#[test]
fn config_examples_in_the_docs_parse_and_typos_are_located() {
    let readme = include_str!("../../../README.md");
    let mut blocks = 0;
    for block in readme.split("```toml").skip(1) {
        let text = block.split("```").next().unwrap_or("");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("example.toml");
        std::fs::write(&file, text).expect("write");
        let out = common::netpulse(&["config", "check", &file.to_string_lossy()]);
        assert!(
            out.status.success(),
            "README example does not parse: {}\n{text}",
            common::stderr(&out)
        );
        blocks += 1;
    }
    assert!(blocks >= 1, "the README shows a config");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../netpulse.example.toml");
    let out = common::netpulse(&["config", "check", example]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("netpulse.toml");
    std::fs::write(&file, "[monitor]\nstatus_every = \"5s\"\n\n[[target]]\ntarget = \"10.0.0.1\"\nintervall = \"1s\"\n").expect("write");
    let out = common::netpulse(&["config", "check", &file.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("netpulse.toml:6:1: unknown key \"intervall\" in [[target]] (did you mean \"interval\"?)"),
        "{err}"
    );
}

/// The monitor records the outages its own model detects (the recorder keeps no detector of
/// its own): one that ended while running, and one still going on when it stops, ended then.
#[test]
fn the_monitors_outages_are_recorded_as_its_model_detects_them() {
    let Some(ns) = Netns::new() else { return };
    // 10.99.0.2 is blackholed (every send fails) until it is made a local address.
    ns.exec(&["ip", "route", "add", "blackhole", "10.99.0.2/32"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("monitor.toml");
    let db = dir.path().join("history.db");
    let text = format!(
        "[monitor]\nstatus_every = \"1s\"\n[ifaces]\nenabled = false\n[record]\ndb = \"{}\"\n\
         [[target]]\ntarget = \"10.99.0.2\"\ninterval = \"100ms\"\ntimeout = \"200ms\"\n",
        db.display()
    );
    std::fs::write(&config, text).expect("config");
    let (mut monitor, mut lines, _err) = start_monitor(&ns.name, &config);
    until(&mut lines, "100% loss");
    until(&mut lines, "100% loss");
    ns.exec(&["ip", "addr", "add", "10.99.0.2/32", "dev", "lo"]);
    // Answered again (an average appears), and healthy for two more seconds: the outage ends.
    until(&mut lines, " ms");
    until(&mut lines, "10.99.0.2");
    until(&mut lines, "10.99.0.2");
    ns.exec(&["ip", "addr", "del", "10.99.0.2/32", "dev", "lo"]);
    until(&mut lines, "10.99.0.2");
    until(&mut lines, "10.99.0.2");
    kill(&mut monitor.0, "-INT");
    assert!(monitor.0.wait().expect("wait").success());
    // The closing statistics on Ctrl-C, as `probe` prints them: the target, its loss, both
    // outages and that the second was still going on.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let head = rest
        .iter()
        .position(|l| l.starts_with("--- netpulse monitor statistics: 1 target,"))
        .unwrap_or_else(|| panic!("no closing statistics: {rest:?}"));
    let row = rest
        .get(head + 2)
        .filter(|r| r.starts_with("10.99.0.2 "))
        .unwrap_or_else(|| panic!("no row for the target: {rest:?}"));
    assert!(row.contains("2 (") && row.contains("one going on"), "{row}");
    let v = &common::json_report(&db);
    let outages = v["outages"].as_array().expect("outages");
    assert_eq!(outages.len(), 2, "{outages:?}");
    assert_eq!(outages[0]["ongoing_at_end"], false, "{outages:?}");
    assert_eq!(outages[1]["ongoing_at_end"], true, "{outages:?}");
    for o in outages {
        assert_eq!(o["target"], "10.99.0.2", "{o}");
        let lost = o["sent"].as_i64().unwrap_or(0) - o["received"].as_i64().unwrap_or(0);
        assert!(lost >= 5, "an outage of {lost} lost probes: {o}");
    }
}

/// A target whose name does not resolve is kept: it fails (loss, rules), is looked up again
/// with backoff and probed once it resolves, and a name that moves is followed. The names come
/// from an /etc/hosts of the test's own, bind-mounted in a mount namespace of the monitor's.
#[test]
fn an_unresolved_name_is_kept_failing_retried_and_followed_when_it_moves() {
    let Some(ns) = Netns::new() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").expect("hosts");
    let config = dir.path().join("monitor.toml");
    let db = dir.path().join("history.db");
    let text = format!(
        "[monitor]\nstatus_every = \"0s\"\nresolve_every = \"1s\"\n[ifaces]\nenabled = false\n\
         [record]\ndb = \"{}\"\n\
         [[target]]\ntarget = \"tcp://ghost.netpulse.test:1\"\nlabel = \"ghost\"\ninterval = \"200ms\"\n\
         [[rule]]\nname = \"unreachable\"\nmetric = \"loss\"\nthreshold = 0.5\nwindow = \"2s\"\n\
         [[notifier]]\ntype = \"console\"\n",
        db.display()
    );
    std::fs::write(&config, text).expect("config");
    let script = format!(
        "mount --bind {} /etc/hosts && exec {} monitor --config {}",
        hosts.display(),
        common::bin(),
        config.display()
    );
    let child = Command::new("ip")
        .args([
            "netns", "exec", &ns.name, "unshare", "--mount", "sh", "-c", &script,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start monitor");
    let mut monitor = Reaped(child);
    let mut out = BufReader::new(monitor.0.stdout.take().expect("stdout")).lines();
    let mut err = BufReader::new(monitor.0.stderr.take().expect("stderr")).lines();
    let said = until(&mut err, "target \"ghost\" not resolved");
    assert!(
        said.last()
            .is_some_and(|l| l.contains("ghost.netpulse.test")),
        "{said:?}"
    );
    // Failing, the rules see it: 100 % loss fires.
    let fired = until(&mut out, "unreachable");
    assert!(
        fired.last().is_some_and(|l| l.contains("ALERT")),
        "{fired:?}"
    );
    // The name appears: probed (a closed port on loopback answers: reachable), loss clears.
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n127.0.0.2 ghost.netpulse.test\n",
    )
    .expect("hosts");
    until(
        &mut err,
        "ghost.netpulse.test resolves to 127.0.0.2 now: probing it",
    );
    let resolved = until(&mut out, "unreachable");
    assert!(
        resolved.last().is_some_and(|l| l.contains("RESOLVED")),
        "{resolved:?}"
    );
    // It moves: followed at the next look-up.
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n127.0.0.3 ghost.netpulse.test\n",
    )
    .expect("hosts");
    until(
        &mut err,
        "resolves to 127.0.0.3 now (was 127.0.0.2): probing the new address",
    );
    kill(&mut monitor.0, "-INT");
    assert!(monitor.0.wait().expect("wait").success());
    // The recording has it all under the one label: failed probes, then answered ones.
    let v = &common::json_report(&db);
    let t = v["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["target"] == "ghost"))
        .unwrap_or_else(|| panic!("no ghost in the report: {v}"));
    let (sent, received) = (t["sent"].as_i64(), t["received"].as_i64());
    assert!(
        matches!((sent, received), (Some(s), Some(r)) if r > 0 && s > r),
        "{t}"
    );
}

/// `monitor --session-dir` keeps seed 002's folder too, with the monitor's configuration as its
/// header, and the connection log.
#[test]
fn the_monitor_keeps_a_session_folder() {
    let Some(ns) = Netns::new() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("monitor.toml");
    let folder = dir.path().join("session");
    let text = format!(
        "[monitor]\nstatus_every = \"1s\"\n[ifaces]\nenabled = false\n[record]\ndb = \"{}\"\n\
         [[target]]\ntarget = \"127.0.0.1:9\"\nlabel = \"closed port\"\ninterval = \"100ms\"\n",
        dir.path().join("h.db").display()
    );
    std::fs::write(&config, text).expect("config");
    let (mut monitor, mut lines, _err) = start_monitor_with(
        &ns.name,
        &config,
        &[
            "--session-dir".as_ref(),
            folder.as_os_str(),
            "--session-every".as_ref(),
            "200ms".as_ref(),
            "--connection-log".as_ref(),
        ],
    );
    until(&mut lines, "closed port");
    until(&mut lines, "closed port");
    kill(&mut monitor.0, "-INT");
    assert!(monitor.0.wait().expect("wait").success());
    let summary = std::fs::read_to_string(folder.join("summary.txt")).expect("summary.txt");
    assert!(
        summary.starts_with("netpulse monitor session\ntargets (1): closed port\n"),
        "{summary}"
    );
    assert!(summary.contains("interval/timeout: 100ms/1s"), "{summary}");
    let csv = std::fs::read_to_string(folder.join("per_second.csv")).expect("per_second.csv");
    assert!(
        csv.lines().skip(1).any(|l| l.contains(",closed port,")),
        "{csv}"
    );
    let log = std::fs::read_to_string(folder.join("connections.log")).expect("log");
    assert!(
        log.lines()
            .any(|l| l.contains(" closed port seq=1 refused ")),
        "{log}"
    );
}
