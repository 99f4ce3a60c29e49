//! `netpulse trace` on a chain of routers the test builds: client — R1 — R2 —[delay line:
//! 5 ms and 10 % loss each way]— R3 — server, and an R4 beside R3 for a route change; IPv4 and
//! IPv6. Ground truth: four hops with the routers' addresses in order, the loss and the delay
//! from the third hop on, a silent router as `???`, a route change as a path change — and mtr
//! on the same chain finds the same hops.

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// One-way delay and loss of the line between R2 and R3.
const DELAY_MS: f64 = 5.0;
const LOSS: f64 = 0.1;

/// The chain's namespaces (`{prefix}C`, `R1`…`R4`, `W`, `S`), removed on drop.
struct Chain {
    prefix: String,
    net: u8,
    wire: Option<std::process::Child>,
}

impl Drop for Chain {
    fn drop(&mut self) {
        if let Some(mut w) = self.wire.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        for n in ["C", "R1", "R2", "R3", "R4", "W", "S"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &format!("{}{n}", self.prefix)])
                .status();
        }
    }
}

/// Builds the chain (see the script).
const SETUP: &str = include_str!("chain.sh");

impl Chain {
    fn up() -> Option<Chain> {
        drop(common::Netns::new()?);
        let prefix = common::unique('t');
        let net = 100 + (std::process::id() % 150) as u8;
        let mut chain = Chain {
            prefix,
            net,
            wire: None,
        };
        let out = Command::new("bash")
            .args(["-c", SETUP, "chain"])
            .arg(&chain.prefix)
            .arg(chain.net.to_string())
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "chain setup: {}",
            common::stderr(&out)
        );
        let wire = Command::new("ip")
            .args(["netns", "exec", &format!("{}W", chain.prefix), "python3"])
            .arg(common::lab_dir().join("wire.py"))
            .args(["wa", "wb", "--delay-ms", &DELAY_MS.to_string()])
            .args([
                "--jitter-ms",
                "0",
                "--loss",
                &LOSS.to_string(),
                "--seed",
                "7",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("wire.py");
        chain.wire = Some(wire);
        // Ready when the server answers through the delay line (the wire starting, ARP and
        // neighbour discovery through it), both families; a lost ping (10 %) is tried again.
        for server in [chain.v4(4, 2), chain.v6(4, 2)] {
            let answered = (0..30).any(|_| {
                Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &chain.ns("C"),
                        "ping",
                        "-c",
                        "1",
                        "-W",
                        "1",
                    ])
                    .arg(&server)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            });
            assert!(answered, "the chain does not reach {server}");
        }
        Some(chain)
    }

    fn ns(&self, n: &str) -> String {
        format!("{}{n}", self.prefix)
    }

    fn v4(&self, subnet: u8, host: u8) -> String {
        format!("10.{}.{subnet}.{host}", self.net)
    }

    fn v6(&self, subnet: u8, host: u8) -> String {
        format!("fd00:{}:{subnet}::{host}", self.net)
    }

    fn in_ns(&self, n: &str, cmd: &[&str]) -> std::process::Output {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(n)])
            .args(cmd)
            .output()
            .expect("ip netns exec");
        assert!(out.status.success(), "{cmd:?}: {}", common::stderr(&out));
        out
    }
}

/// A DNS server of sorts: answers every query on UDP 53 with its own id and QR set.
const DNS_SERVER: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
print("ready", flush=True)
while True:
    q, peer = s.recvfrom(512)
    if len(q) >= 12:
        s.sendto(q[:2] + bytes([0x81, 0x80]) + q[4:], peer)
"#;

/// `netpulse trace --json` from the client: the final summary.
fn trace(chain: &Chain, args: &[&str]) -> Value {
    let mut all = vec!["trace", "--json", "-n"];
    all.extend(args);
    let out = common::netpulse_in(&chain.ns("C"), &all);
    common::json_lines(&out)
        .into_iter()
        .find(|v| v["type"] == "trace")
        .unwrap_or_else(|| panic!("no summary: {}", common::stderr(&out)))
}

fn addresses(summary: &Value) -> Vec<String> {
    summary["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|h| h["address"].as_str().unwrap_or("???").to_string())
        .collect()
}

/// Paris flows over an ECMP hop: both routers answered at hop 3, and no flow changed path.
fn both_ways_at_hop_3_without_a_path_change(s: &Value, r3: &str, r4: &str, what: &str) {
    let third: Vec<&str> = s["hops"][2]["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .filter_map(|a| a["address"].as_str())
        .collect();
    assert!(third.contains(&r3) && third.contains(&r4), "{what}: {s}");
    assert_eq!(
        s["path_changes"],
        serde_json::json!([]),
        "{what}: Paris flows are stable: {s}"
    );
}

#[test]
fn a_chain_of_routers_is_traced_hop_by_hop_like_mtr() {
    let Some(chain) = Chain::up() else {
        return;
    };
    let server = chain.v4(4, 2);
    let hops_v4 = vec![
        chain.v4(1, 2),
        chain.v4(2, 2),
        chain.v4(3, 2),
        server.clone(),
    ];
    // UDP, unprivileged by design; ICMP; IPv6: the same four hops, in order.
    let s = trace(&chain, &["-c", "20", "-i", "20ms", "-W", "1s", &server]);
    assert_eq!(addresses(&s), hops_v4, "{s}");
    assert_eq!(s["reached"], true, "{s}");
    let s = trace(
        &chain,
        &["--icmp", "-c", "20", "-i", "20ms", "-W", "1s", &server],
    );
    assert_eq!(addresses(&s), hops_v4, "ICMP: {s}");
    // Without any privilege (nobody, no capabilities): UDP and TCP (a connect per probe) still
    // trace the four hops; ICMP says how to allow it (the chain's ping_group_range is closed).
    let client = chain.ns("C");
    let as_nobody = |args: &[&str]| {
        let mut all = vec![
            "netns",
            "exec",
            &client,
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            common::bin(),
            "trace",
            "--json",
            "-n",
        ];
        all.extend(args);
        Command::new("ip")
            .args(&all)
            .output()
            .expect("setpriv (util-linux)")
    };
    for extra in [&[][..], &["--tcp", "80"][..]] {
        let mut args = extra.to_vec();
        args.extend(["-c", "20", "-i", "20ms", "-W", "1s", &server]);
        let out = as_nobody(&args);
        let s = common::json_lines(&out)
            .into_iter()
            .find(|v| v["type"] == "trace")
            .unwrap_or_else(|| panic!("{extra:?} as nobody: {}", common::stderr(&out)));
        assert_eq!(addresses(&s), hops_v4, "{extra:?} as nobody: {s}");
    }
    let out = as_nobody(&["--icmp", "-c", "1", &server]);
    let said = common::stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("ping_group_range")
            || said.contains("CAP_NET_RAW")
            || said.contains("cap_net_raw"),
        "{said}"
    );

    // DNS-shaped UDP to a DNS server on the server (it answers with the query's id).
    let dns = Command::new("ip")
        .args([
            "netns",
            "exec",
            &chain.ns("S"),
            "python3",
            "-u",
            "-c",
            DNS_SERVER,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("dns server");
    let mut dns = common::Reaped(dns);
    let ready = BufReader::new(dns.0.stdout.take().expect("stdout"))
        .lines()
        .next()
        .and_then(Result::ok);
    assert_eq!(ready.as_deref(), Some("ready"));
    let s = trace(
        &chain,
        &["--dns", "-c", "20", "-i", "20ms", "-W", "1s", &server],
    );
    assert_eq!(addresses(&s), hops_v4, "DNS: {s}");
    assert_eq!(s["reached"], true, "{s}");
    drop(dns);
    // TCP SYNs: the server's RST (no listener on the port) is the destination's answer.
    let s = trace(
        &chain,
        &["--tcp", "80", "-c", "20", "-i", "20ms", "-W", "1s", &server],
    );
    assert_eq!(addresses(&s), hops_v4, "TCP: {s}");
    let server6 = chain.v6(4, 2);
    let s = trace(&chain, &["-c", "20", "-i", "20ms", "-W", "1s", &server6]);
    let hops_v6 = vec![
        chain.v6(1, 2),
        chain.v6(2, 2),
        chain.v6(3, 2),
        server6.clone(),
    ];
    assert_eq!(addresses(&s), hops_v6, "IPv6: {s}");

    // Loss and delay from the third hop on (the line between R2 and R3): 10 % each way is
    // 1 − 0.9² = 19 % a round trip, within 3 σ over 300 rounds; none before it.
    let rounds = 300.0;
    let s = trace(&chain, &["-c", "300", "-i", "10ms", "-W", "1s", &server]);
    let hops = s["hops"].as_array().expect("hops");
    assert_eq!(hops.len(), 4, "{s}");
    let expected = 1.0 - (1.0 - LOSS) * (1.0 - LOSS);
    let sigma = (expected * (1.0 - expected) / rounds).sqrt();
    for (i, h) in hops.iter().enumerate() {
        let loss = h["loss"].as_f64().expect("loss");
        let avg = h["avg_ms"].as_f64().expect("avg");
        if i < 2 {
            assert!(loss < 0.02, "hop {}: loss {loss}: {s}", i + 1);
            assert!(avg < DELAY_MS, "hop {}: {avg} ms: {s}", i + 1);
        } else {
            assert!(
                (loss - expected).abs() <= 3.0 * sigma,
                "hop {}: loss {loss}, expected {expected:.3} ± {:.3}: {s}",
                i + 1,
                3.0 * sigma
            );
            assert!(avg >= 2.0 * DELAY_MS, "hop {}: {avg} ms: {s}", i + 1);
        }
    }

    // mtr (Debian's mtr-tiny) on the same chain finds the same hops.
    let mtr = Command::new("ip")
        .args([
            "netns",
            "exec",
            &chain.ns("C"),
            "mtr",
            "-r",
            "-n",
            "-c",
            "20",
            "-i",
            "0.1",
        ])
        .arg(&server)
        .output();
    match mtr {
        Ok(out) if out.status.success() => {
            let theirs: Vec<String> = common::stdout(&out)
                .lines()
                .filter(|l| l.contains("|--"))
                .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
                .collect();
            assert_eq!(theirs, hops_v4, "mtr: {}", common::stdout(&out));
        }
        _ => common::skip("mtr not runnable (`.ci/run` installs mtr-tiny)"),
    }

    // A router that sends no time-exceeded (R2's own ICMP, `iif lo`, dropped by a policy
    // rule; what it forwards passes) shows as ??? and the hops after it are still traced.
    chain.in_ns(
        "R2",
        &[
            "ip", "rule", "add", "iif", "lo", "ipproto", "icmp", "prohibit",
        ],
    );
    let s = trace(&chain, &["-c", "10", "-i", "20ms", "-W", "500ms", &server]);
    let mut silent = hops_v4.clone();
    silent[1] = "???".into();
    assert_eq!(addresses(&s), silent, "{s}");
    chain.in_ns(
        "R2",
        &[
            "ip", "rule", "del", "iif", "lo", "ipproto", "icmp", "prohibit",
        ],
    );

    // ECMP: R2 balances the server's subnet over R3 and R4 by ports (L4 hash). Sixteen Paris
    // flows in turn: hop 3 answers from both routers, each flow keeps its own (no path change),
    // and the flows' paths show both ways.
    let dst = format!("10.{}.4.0/24", chain.net);
    chain.in_ns(
        "R2",
        &["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"],
    );
    chain.in_ns(
        "R2",
        &[
            "ip",
            "route",
            "replace",
            &dst,
            "nexthop",
            "via",
            &chain.v4(3, 2),
            "nexthop",
            "via",
            &chain.v4(5, 2),
        ],
    );
    let s = trace(
        &chain,
        &[
            "--flows", "16", "-c", "64", "-i", "20ms", "-W", "500ms", &server,
        ],
    );
    let (r3, r4) = (chain.v4(3, 2), chain.v4(5, 2));
    both_ways_at_hop_3_without_a_path_change(&s, &r3, &r4, "UDP");
    let ways: std::collections::BTreeSet<String> = s["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .map(|f| f["hops"][2].as_str().unwrap_or("???").to_string())
        .collect();
    assert!(ways.contains(&r3) && ways.contains(&r4), "{s}");
    // TCP too, Paris-stable where privileged (crafted SYNs from a fixed port per flow): both
    // ways at hop 3, no path change.
    let s = trace(
        &chain,
        &[
            "--tcp", "80", "--flows", "16", "-c", "64", "-i", "20ms", "-W", "500ms", &server,
        ],
    );
    both_ways_at_hop_3_without_a_path_change(&s, &r3, &r4, "TCP");
    chain.in_ns("R2", &["ip", "route", "replace", &dst, "via", &r3]);

    // A route changed mid-run (R2 sends the server's traffic through R4 from round 40 on) is a
    // path change at hop 3.
    let mut child = Command::new("ip")
        .args(["netns", "exec", &chain.ns("C"), common::bin()])
        .args([
            "trace", "--json", "-n", "-c", "80", "-i", "20ms", "-W", "500ms", &server,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("trace");
    let out = child.stdout.take().expect("stdout");
    let mut changed = false;
    let mut summary = Value::Null;
    for line in BufReader::new(out).lines() {
        let v: Value = serde_json::from_str(&line.expect("line")).expect("json");
        if !changed && v["round"].as_u64().is_some_and(|r| r >= 40) {
            let via = chain.v4(5, 2);
            let dst = format!("10.{}.4.0/24", chain.net);
            chain.in_ns("R2", &["ip", "route", "replace", &dst, "via", &via]);
            changed = true;
        }
        if v["type"] == "trace" {
            summary = v;
        }
    }
    let _ = child.wait();
    assert!(changed, "the trace never reached round 40");
    let changes = summary["path_changes"].as_array().expect("changes");
    assert!(
        changes
            .iter()
            .any(|c| c["hop"] == 3 && c["from"] == chain.v4(3, 2) && c["to"] == chain.v4(5, 2)),
        "{summary}"
    );
    assert_eq!(summary["hops"][2]["address"], chain.v4(5, 2), "{summary}");
}

/// A webhook receiver in the client's namespace: one line per POST, the body's status, and for
/// a trace its hops' addresses.
const WEBHOOK: &str = r#"
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        v = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        hops = [h["address"] or "???" for h in v.get("trace", {}).get("hops", [])]
        print("POST", v["status"], v["rule"], v["subject"], ",".join(hops), flush=True)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 8080), H)
print("ready", flush=True)
s.serve_forever()
"#;

/// An alert fired in the chain (10 ms round trips through the delay line against a 5 ms rule)
/// has the path traced: the webhook gets the alert, then a `trace` notice with the four hops,
/// and `report --alerts` shows the stored trace.
#[test]
fn an_alert_in_the_chain_carries_the_path_traced_when_it_fired() {
    let Some(chain) = Chain::up() else {
        return;
    };
    let mut hook = Command::new("ip")
        .args([
            "netns",
            "exec",
            &chain.ns("C"),
            "python3",
            "-u",
            "-c",
            WEBHOOK,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("webhook");
    let mut hook_lines = BufReader::new(hook.stdout.take().expect("stdout")).lines();
    let _hook = common::Reaped(hook);
    assert_eq!(
        hook_lines.next().and_then(Result::ok).as_deref(),
        Some("ready")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let config = dir.path().join("m.toml");
    let server = chain.v4(4, 2);
    std::fs::write(
        &config,
        format!(
            "[monitor]\nstatus_every = \"1h\"\n[ifaces]\nenabled = false\n[record]\nenabled = true\ndb = \"{}\"\n\
             [trace]\nrounds = 5\ninterval = \"50ms\"\n\
             [[target]]\ntarget = \"{server}\"\nlabel = \"server\"\ninterval = \"100ms\"\n\
             [[rule]]\nname = \"slow\"\nmetric = \"latency_avg\"\nthreshold = 5\nwindow = \"1s\"\nfor = \"0s\"\n\
             [listen]\nweb = \"127.0.0.1:9750\"\n\
             [[notifier]]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:8080/\"\n",
            db.display()
        ),
    )
    .expect("config");
    let monitor = Command::new("ip")
        .args([
            "netns",
            "exec",
            &chain.ns("C"),
            common::bin(),
            "monitor",
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("monitor");
    let mut monitor = common::Reaped(monitor);
    let fired = hook_lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(fired.starts_with("POST firing slow server"), "{fired}");
    let traced = hook_lines.next().and_then(Result::ok).unwrap_or_default();
    let hops = [
        chain.v4(1, 2),
        chain.v4(2, 2),
        chain.v4(3, 2),
        server.clone(),
    ]
    .join(",");
    assert_eq!(traced, format!("POST trace slow server {hops}"));
    // The dashboard's recent alerts (and the TUI's alert list) have it too: a `trace` line
    // with the hop table. The webhook was told after the live view, so it is there now.
    let api = Command::new("ip")
        .args([
            "netns",
            "exec",
            &chain.ns("C"),
            "curl",
            "-s",
            "http://127.0.0.1:9750/api/alerts",
        ])
        .output()
        .expect("curl");
    let api: Value = serde_json::from_str(&common::stdout(&api)).expect("api json");
    let line = api["recent"]
        .as_array()
        .expect("recent")
        .iter()
        .find(|a| a["kind"] == "trace")
        .unwrap_or_else(|| panic!("no trace line: {api}"))
        .clone();
    assert!(
        line["text"]
            .as_str()
            .is_some_and(|t| t.contains(&chain.v4(3, 2))),
        "{line}"
    );
    assert!(
        line["path"].as_str().is_some_and(|t| t.contains(&server)),
        "{line}"
    );
    let _ = Command::new("kill")
        .args(["-INT", &monitor.0.id().to_string()])
        .status();
    let _ = monitor.0.wait();
    let out = common::netpulse(&[
        "report",
        "--db",
        db.to_str().expect("utf-8"),
        "--alerts",
        "--format",
        "json",
    ]);
    let report: Value = serde_json::from_str(common::stdout(&out).trim()).expect("json");
    let alerts = report["alerts"].as_array().expect("alerts");
    let with_trace: Vec<&Value> = alerts.iter().filter(|a| a["trace"].is_object()).collect();
    assert_eq!(with_trace.len(), 1, "{report}");
    let stored: Vec<&str> = with_trace[0]["trace"]["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|h| h["address"].as_str().unwrap_or("???"))
        .collect();
    assert_eq!(stored.join(","), hops, "{report}");
    let text = common::netpulse(&["report", "--db", db.to_str().expect("utf-8"), "--alerts"]);
    assert!(
        common::stdout(&text).contains("path when it fired"),
        "{}",
        common::stdout(&text)
    );
}
