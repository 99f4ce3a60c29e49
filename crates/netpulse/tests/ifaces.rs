//! `netpulse ifaces` against real interfaces in namespaces the tests create: exact byte totals
//! over a veth pair, rates against a paced sender, interfaces removed / re-created / renamed
//! during `--watch`, unknown names, recording and `report --ifaces`.

mod common;

use common::{json_lines, netpulse_in, stderr, Netns};
use serde_json::Value;
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

/// Two namespaces joined by a veth pair `{a}`—`{b}` (10.N.0.1/24 — 10.N.0.2/24), IPv6 off so
/// nothing but our traffic crosses it, and a neighbour entry for 10.N.0.99 on each side pointing
/// at a MAC nobody has: datagrams sent there are counted by both ends and answered by no one (no
/// ARP, no ICMP), so the counters move by exactly what the test sends.
struct Pair {
    a: Netns,
    b: Netns,
    dev_a: String,
    dev_b: String,
    net: u8,
}

impl Pair {
    fn new() -> Option<Pair> {
        let a = Netns::new()?;
        let b = Netns::new()?;
        let dev_a = format!("{}x", a.name);
        let dev_b = format!("{}x", b.name);
        let net = 100 + (std::process::id() % 100) as u8;
        for ns in [&a, &b] {
            ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        }
        a.exec(&[
            "ip", "link", "add", &dev_a, "type", "veth", "peer", "name", &dev_b, "netns", &b.name,
        ]);
        for (ns, dev, host) in [(&a, &dev_a, 1), (&b, &dev_b, 2)] {
            ns.exec(&[
                "ip",
                "addr",
                "add",
                &format!("10.{net}.0.{host}/24"),
                "dev",
                dev,
            ]);
            ns.exec(&["ip", "link", "set", dev, "up"]);
            ns.exec(&[
                "ip",
                "neigh",
                "add",
                &format!("10.{net}.0.99"),
                "lladdr",
                "02:00:00:00:00:99",
                "dev",
                dev,
                "nud",
                "permanent",
            ]);
        }
        Some(Pair {
            a,
            b,
            dev_a,
            dev_b,
            net,
        })
    }

    /// Sends `count` UDP datagrams of `payload` bytes from A to the nobody address, paced at
    /// `per_sec` (0: as fast as possible). Python prints `go` once the first burst is out.
    fn sender(&self, count: u64, payload: usize, per_sec: u64) -> Child {
        let script = format!(
            r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
data = b"x" * {payload}
dst = ("10.{net}.0.99", 9)
count, rate = {count}, {per_sec}
slot = 0.002
per_slot = max(1, int(rate * slot)) if rate else count
start = time.perf_counter()
sent = 0
k = 0
while sent < count:
    for _ in range(min(per_slot, count - sent)):
        s.sendto(data, dst)
        sent += 1
    if k == 0:
        print("go", flush=True)
    k += 1
    if rate:
        # Absolute deadlines: a late slot is caught up, the average rate stays exact.
        delay = start + k * slot - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
print("done", sent, flush=True)
"#,
            net = self.net
        );
        Command::new("ip")
            .args(["netns", "exec", &self.a.name, "python3", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3 sender")
    }
}

/// One JSON snapshot of `dev` in `ns`.
fn snapshot(ns: &Netns, dev: &str) -> Value {
    let out = netpulse_in(
        &ns.name,
        &["ifaces", "--iface", dev, "--json", "--interval", "20ms"],
    );
    assert!(out.status.success(), "ifaces failed: {}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines[0].clone()
}

fn counter(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn totals_move_by_exactly_the_bytes_sent() {
    let Some(pair) = Pair::new() else { return };
    let (before_a, before_b) = (
        snapshot(&pair.a, &pair.dev_a),
        snapshot(&pair.b, &pair.dev_b),
    );
    const N: u64 = 5000;
    const PAYLOAD: u64 = 1200;
    let out = pair
        .sender(N, PAYLOAD as usize, 0)
        .wait_with_output()
        .expect("sender");
    assert!(out.status.success());
    let (after_a, after_b) = (
        snapshot(&pair.a, &pair.dev_a),
        snapshot(&pair.b, &pair.dev_b),
    );
    // Each frame: payload + UDP 8 + IPv4 20 + Ethernet 14 (veth counts the link header).
    let frame = PAYLOAD + 8 + 20 + 14;
    assert_eq!(
        counter(&after_a, "tx_bytes") - counter(&before_a, "tx_bytes"),
        N * frame
    );
    assert_eq!(
        counter(&after_a, "tx_packets") - counter(&before_a, "tx_packets"),
        N
    );
    assert_eq!(
        counter(&after_b, "rx_bytes") - counter(&before_b, "rx_bytes"),
        N * frame
    );
    assert_eq!(
        counter(&after_b, "rx_packets") - counter(&before_b, "rx_packets"),
        N
    );
    assert_eq!(
        counter(&after_a, "rx_bytes"),
        counter(&before_a, "rx_bytes"),
        "nothing came back"
    );
    assert_eq!(after_a["state"], "up");
    assert_eq!(after_a["mtu"], 1500);
}

fn next_json(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
    let line = lines
        .next()
        .expect("netpulse ended early")
        .expect("read stdout");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
}

#[test]
fn rates_are_exact_counter_deltas_over_the_real_elapsed_time() {
    let Some(pair) = Pair::new() else { return };
    // 2 000 frames/s of 1 000 bytes for 6 s. How fast the sender really went is the machine's
    // business (a timing figure, not asserted); what is checked is that every rate is the
    // kernel's counter delta over the time that really elapsed, and that the deltas account
    // for the frames exactly.
    const PER_SEC: u64 = 2000;
    const FRAME: u64 = 1000;
    let before = counter(&snapshot(&pair.a, &pair.dev_a), "tx_bytes");
    let mut sender = pair.sender(PER_SEC * 6, (FRAME - 42) as usize, PER_SEC);
    let mut sender_out = BufReader::new(sender.stdout.take().expect("stdout")).lines();
    assert_eq!(
        sender_out.next().and_then(Result::ok).as_deref(),
        Some("go")
    );
    let mut watch = Command::new("ip")
        .args(["netns", "exec", &pair.a.name, common::bin()])
        .args([
            "ifaces",
            "--iface",
            &pair.dev_a,
            "--json",
            "--interval",
            "1s",
            "-c",
            "4",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start netpulse");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let ticks: Vec<Value> = (0..4).map(|_| next_json(&mut lines)).collect();
    assert!(watch.wait().expect("wait").success());
    let done = sender_out.next().and_then(Result::ok).unwrap_or_default();
    assert!(sender.wait().expect("sender").success());
    assert_eq!(done, format!("done {}", PER_SEC * 6));
    let mut counted = 0u64;
    for t in &ticks {
        let rate = t["tx_bytes_per_s"].as_f64().expect("a rate");
        let pps = t["tx_packets_per_s"].as_f64().expect("pps");
        let interval = t["interval_s"].as_f64().expect("interval");
        let bytes = t["delta"]["tx_bytes"].as_u64().expect("delta");
        let packets = t["delta"]["tx_packets"].as_u64().expect("delta");
        eprintln!(
            "tick: {rate:.0} B/s over {interval:.4} s ({:+.3} % from the sender's nominal rate)",
            (rate / (PER_SEC * FRAME) as f64 - 1.0) * 100.0
        );
        // The rate is the delta over the real elapsed time…
        assert!(
            (rate - bytes as f64 / interval).abs() <= 1e-6 * rate.max(1.0),
            "{t}"
        );
        assert!(
            (pps - packets as f64 / interval).abs() <= 1e-6 * pps.max(1.0),
            "{t}"
        );
        // …of whole frames of the size sent.
        assert_eq!(bytes, packets * FRAME, "{t}");
        assert!(t["rx_bytes_per_s"].as_f64().expect("rx rate") == 0.0);
        counted += bytes;
    }
    assert!(counted > 0, "the ticks saw traffic");
    // Every frame is in the kernel's counters, exactly, and no tick counted more than was sent.
    let after = counter(&snapshot(&pair.a, &pair.dev_a), "tx_bytes");
    assert_eq!(after - before, PER_SEC * 6 * FRAME);
    assert!(counted <= after - before);
}

fn kill_int(child: &Child) {
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill")
        .success());
}

/// Reads lines (keeping them in `seen`) until one satisfies `pred`.
fn until(
    lines: &mut Lines<BufReader<ChildStdout>>,
    seen: &mut Vec<Value>,
    pred: impl Fn(&Value) -> bool,
) {
    for _ in 0..500 {
        let v = next_json(lines);
        let hit = pred(&v);
        seen.push(v);
        if hit {
            return;
        }
    }
    panic!(
        "condition never met; last lines: {:?}",
        &seen[seen.len().saturating_sub(5)..]
    );
}

#[test]
fn interfaces_vanish_come_back_and_are_renamed_during_watch() {
    let Some(ns) = Netns::new() else { return };
    ns.exec(&[
        "ip", "link", "add", "np0", "type", "veth", "peer", "name", "np1",
    ]);
    ns.exec(&["ip", "link", "set", "np0", "up"]);
    ns.exec(&["ip", "link", "set", "np1", "up"]);
    // Python sends through np0 later, so the re-created interface has traffic to rate.
    ns.exec(&["ip", "addr", "add", "10.250.0.1/24", "dev", "np0"]);
    let mut watch = Command::new("ip")
        .args(["netns", "exec", &ns.name, common::bin()])
        .args(["ifaces", "--watch", "--all", "--json", "--interval", "50ms"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start netpulse");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let is = |v: &Value, ty: &str, name: &str| v["type"] == ty && v["interface"] == name;
    until(&mut lines, &mut seen, |v| is(v, "iface", "np0"));
    let first_index = seen.last().map(|v| v["index"].clone());

    ns.exec(&["ip", "link", "del", "np0"]);
    until(&mut lines, &mut seen, |v| is(v, "iface_removed", "np0"));

    ns.exec(&[
        "ip", "link", "add", "np0", "type", "veth", "peer", "name", "np1",
    ]);
    ns.exec(&["ip", "link", "set", "np0", "up"]);
    ns.exec(&["ip", "link", "set", "np1", "up"]);
    until(&mut lines, &mut seen, |v| is(v, "iface", "np0"));
    let back = seen.last().cloned().expect("a line");
    assert_eq!(back["event"], "new", "re-created: starts afresh: {back}");
    assert_ne!(back["index"], first_index.clone().unwrap_or(Value::Null));
    assert!(
        back["rx_bytes_per_s"].is_null(),
        "no rate on the first reading: {back}"
    );
    // The next reading of it has a rate again.
    until(&mut lines, &mut seen, |v| {
        is(v, "iface", "np0") && v["event"].is_null()
    });
    assert!(seen
        .last()
        .is_some_and(|v| v["tx_bytes_per_s"].as_f64().is_some()));

    ns.exec(&["ip", "link", "set", "np1", "name", "uplink9"]);
    until(&mut lines, &mut seen, |v| is(v, "iface", "uplink9"));
    let renamed = seen.last().cloned().expect("a line");
    assert_eq!(renamed["event"], "renamed", "{renamed}");
    assert_eq!(renamed["renamed_from"], "np1");
    assert!(
        renamed["rx_bytes_per_s"].as_f64().is_some(),
        "the rate goes on: {renamed}"
    );

    kill_int(&watch);
    let status = watch.wait().expect("wait");
    assert!(status.success(), "Ctrl-C ends --watch cleanly: {status:?}");
    for line in lines.map_while(Result::ok) {
        seen.push(serde_json::from_str(&line).expect("JSON"));
    }
    for v in &seen {
        for key in [
            "rx_bytes_per_s",
            "tx_bytes_per_s",
            "rx_packets_per_s",
            "tx_packets_per_s",
        ] {
            if let Some(r) = v.get(key).and_then(Value::as_f64) {
                assert!(r >= 0.0 && r.is_finite(), "{key} in {v}");
            }
        }
    }
}

#[test]
fn an_unknown_interface_is_a_clear_error_listing_the_real_ones() {
    let Some(ns) = Netns::new() else { return };
    let out = netpulse_in(&ns.name, &["ifaces", "--iface", "eth9"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("no interface named \"eth9\"") && err.contains("interfaces: lo"),
        "{err}"
    );
}

#[test]
fn recorded_traffic_is_reported_per_day_exactly() {
    let Some(pair) = Pair::new() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("traffic.db");
    let record = format!("--record={}", db.display());
    let mut watch = Command::new("ip")
        .args(["netns", "exec", &pair.a.name, common::bin()])
        .args([
            "ifaces",
            "--watch",
            "--iface",
            &pair.dev_a,
            "--json",
            "--interval",
            "100ms",
        ])
        .arg(&record)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start netpulse");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    until(&mut lines, &mut seen, |v| v["type"] == "iface");
    let start_tx = counter(&seen[0], "tx_bytes");
    const N: u64 = 3000;
    const PAYLOAD: u64 = 500;
    let frame = PAYLOAD + 42;
    assert!(pair
        .sender(N, PAYLOAD as usize, 0)
        .wait_with_output()
        .expect("sender")
        .status
        .success());
    // Wait until a tick has seen all of it, then stop the recording.
    until(&mut lines, &mut seen, |v| {
        v["tx_bytes"]
            .as_u64()
            .is_some_and(|t| t >= start_tx + N * frame)
    });
    kill_int(&watch);
    assert!(watch.wait().expect("wait").success());

    let out = common::netpulse(&[
        "report",
        "--db",
        &db.to_string_lossy(),
        "--ifaces",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = &json_lines(&out)[0];
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "one interface, one day: {report}");
    assert_eq!(rows[0]["interface"], pair.dev_a.as_str());
    assert_eq!(rows[0]["tx_bytes"], N * frame, "{report}");
    assert_eq!(rows[0]["tx_packets"], N);
    assert_eq!(rows[0]["rx_bytes"], 0);

    let text = common::netpulse(&[
        "report",
        "--db",
        &db.to_string_lossy(),
        "--ifaces",
        "--per",
        "hour",
    ]);
    let text = common::stdout(&text);
    assert!(
        text.contains(&pair.dev_a) && text.contains("hour (UTC)"),
        "{text}"
    );
    let probes = common::stdout(&common::netpulse(&[
        "report",
        "--db",
        &db.to_string_lossy(),
    ]));
    assert!(
        probes.contains("see `netpulse report --ifaces --session 1`"),
        "{probes}"
    );
}

#[test]
fn an_interface_name_with_a_comma_and_a_quote_stays_one_csv_field() {
    let Some(ns) = Netns::new() else { return };
    let name = "v,a\"1";
    ns.exec(&[
        "ip", "link", "add", name, "type", "veth", "peer", "name", "vb1",
    ]);
    ns.exec(&["ip", "link", "set", name, "up"]);
    ns.exec(&["ip", "link", "set", "vb1", "up"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let record = format!("--record={}", db.display());
    let live = netpulse_in(
        &ns.name,
        &[
            "ifaces",
            "--iface",
            name,
            "--csv",
            "-c",
            "3",
            "--interval",
            "100ms",
            &record,
        ],
    );
    assert!(live.status.success(), "{}", stderr(&live));
    let report = common::netpulse(&[
        "report",
        "--db",
        &db.to_string_lossy(),
        "--ifaces",
        "--format",
        "csv",
    ]);
    assert!(report.status.success(), "{}", stderr(&report));
    for (what, text) in [
        ("ifaces --csv", common::stdout(&live)),
        ("report --ifaces", common::stdout(&report)),
    ] {
        let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let header = r.headers().expect("header").clone();
        let col = header
            .iter()
            .position(|h| h == "interface")
            .expect("an interface column");
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("a record")).collect();
        assert!(!rows.is_empty(), "{what}: {text}");
        for row in &rows {
            assert_eq!(row.len(), header.len(), "{what}: {text}");
            assert_eq!(&row[col], name, "{what}: {text}");
        }
    }
}
