//! `netpulse monitor --web`: the JSON API, Server-Sent Events and `/metrics` over real HTTP on
//! loopback; the token; a real Prometheus scraping netpulse and answering a query; `promtool
//! check metrics`; the dashboard in a real headless Chromium (playwright-core, installed by
//! `.ci/run` into tests/browser).

mod common;
use common::{http_get as get, skip, Reaped};

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[monitor]
status_every = "0s"
[[target]]
target = "127.0.0.1"
label = "loopback"
interval = "50ms"
[[target]]
target = "tcp://127.0.0.1:9"
label = "closed port"
interval = "200ms"
[ifaces]
enabled = true
names = ["lo"]
[record]
enabled = true
db = "DB"
"#;

/// `netpulse monitor` with the loopback config and `extra` flags: the process, the dashboard
/// address it printed, and the rest of its stderr.
fn start(
    dir: &Path,
    extra: &[&str],
) -> (Reaped, SocketAddr, std::io::Lines<BufReader<ChildStderr>>) {
    start_with(dir, "", extra)
}

/// [`start`] with more config appended.
fn start_with(
    dir: &Path,
    more: &str,
    extra: &[&str],
) -> (Reaped, SocketAddr, std::io::Lines<BufReader<ChildStderr>>) {
    let config = dir.join("monitor.toml");
    let db = dir.join("history.db");
    let text = CONFIG.replace("DB", &db.display().to_string()) + more;
    std::fs::write(&config, text).expect("config");
    let mut child = Command::new(common::bin())
        .args(["monitor", "--config"])
        .arg(&config)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start monitor");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let child = Reaped(child);
    for line in lines.by_ref() {
        let line = line.expect("stderr line");
        if let Some(rest) = line.split("dashboard on http://").nth(1) {
            let addr = rest
                .split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .expect("a socket address");
            return (child, addr, lines);
        }
    }
    panic!("monitor ended without saying where the dashboard is");
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, ctype, body) = get(addr, path, None);
    assert_eq!(status, 200, "{path}: {body}");
    assert!(ctype.starts_with("application/json"), "{path}: {ctype}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Polls `check` until it gives a value (an HTTP API has no event to wait on); fails after
/// `limit`.
fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < end, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sent_of(targets: &Value, label: &str) -> u64 {
    targets
        .as_array()
        .and_then(|a| a.iter().find(|t| t["label"] == label))
        .and_then(|t| t["sent"].as_u64())
        .unwrap_or(0)
}

#[test]
fn api_events_and_metrics_serve_what_the_monitor_measures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_monitor, addr, _err) = start(dir.path(), &["--web", "127.0.0.1:0"]);

    let targets = eventually(Duration::from_secs(20), "40 probes", || {
        let t = get_json(addr, "/api/targets");
        (sent_of(&t, "loopback") >= 40 && sent_of(&t, "closed port") >= 5).then_some(t)
    });
    let lo = targets
        .as_array()
        .and_then(|a| a.iter().find(|t| t["label"] == "loopback"))
        .expect("loopback target");
    assert_eq!(lo["kind"], "icmp");
    assert_eq!(lo["loss"], 0.0);
    assert!(lo["last_rtt_ms"]
        .as_f64()
        .is_some_and(|v| v > 0.0 && v < 50.0));
    // A refused connection is an answer: no loss for the closed port either.
    let closed = targets
        .as_array()
        .and_then(|a| a.iter().find(|t| t["label"] == "closed port"))
        .expect("closed port target");
    assert_eq!(closed["kind"], "tcp");
    assert_eq!(closed["loss"], 0.0);

    // Series: per-second points whose sent counts add up to at most what was sent.
    let series = get_json(addr, "/api/series?range=5m&target=loopback");
    assert_eq!(series["resolution"], "1s");
    let points = series["series"][0]["points"].as_array().expect("points");
    assert!(points.len() >= 2, "{series}");
    let total: u64 = points.iter().filter_map(|p| p["sent"].as_u64()).sum();
    assert!(total >= 40, "{total}");
    assert!(points
        .iter()
        .all(|p| p["avg_ms"].as_f64().is_some_and(|v| v > 0.0)));
    // Longer ranges come from the recording (minute rollups).
    let longer = get_json(addr, "/api/series?range=6h&target=loopback");
    assert_eq!(longer["resolution"], "1m");
    // A bad range is a clear 400.
    let (status, _, body) = get(addr, "/api/series?range=soon", None);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bad range"), "{body}");

    let ifaces = eventually(Duration::from_secs(10), "lo's rates", || {
        let v = get_json(addr, "/api/interfaces?range=5m");
        let lo = v["interfaces"]
            .as_array()?
            .iter()
            .find(|i| i["name"] == "lo")?
            .clone();
        (lo["history"].as_array()?.len() >= 2).then_some(lo)
    });
    assert!(ifaces["rx_bytes"].as_u64().is_some_and(|b| b > 0));
    let alerts = get_json(addr, "/api/alerts");
    assert!(alerts["firing"].as_array().is_some_and(Vec::is_empty));
    assert!(get_json(addr, "/api/outages?range=1h").is_array());

    // Server-Sent Events: an `update` naming the targets.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("request");
    let mut events = BufReader::new(s);
    let mut line = String::new();
    let mut saw_event = false;
    let data = loop {
        line.clear();
        assert!(
            events.read_line(&mut line).expect("sse line") > 0,
            "stream ended"
        );
        if line.trim() == "event: update" {
            saw_event = true;
        } else if saw_event && line.starts_with("data: ") {
            break serde_json::from_str::<Value>(line["data: ".len()..].trim()).expect("json");
        }
    };
    assert!(data["targets"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["label"] == "loopback")));

    // Prometheus exposition.
    let (status, ctype, metrics) = get(addr, "/metrics", None);
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let sent_line = metrics
        .lines()
        .find(|l| l.starts_with("netpulse_probes_sent_total{target=\"loopback\",kind=\"icmp\"}"))
        .unwrap_or_else(|| panic!("no sent counter in:\n{metrics}"));
    let sent: f64 = sent_line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("value");
    assert!(sent >= 40.0, "{sent_line}");
    for name in [
        "netpulse_probe_rtt_seconds_bucket{le=\"0.00005\",target=\"loopback\",kind=\"icmp\"}",
        "netpulse_probes_received_total{target=\"closed port\",kind=\"tcp\"}",
        "netpulse_interface_bytes_total{interface=\"lo\",direction=\"receive\"}",
        "netpulse_process_resident_memory_bytes ",
        "# TYPE netpulse_probes_sent_total counter",
    ] {
        assert!(metrics.contains(name), "no {name} in:\n{metrics}");
    }
}

/// Sends `request` as it is and returns the whole answer.
fn raw_get(addr: SocketAddr, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("request");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn without_a_token_only_requests_naming_loopback_are_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_monitor, addr, _err) = start(dir.path(), &["--web", "127.0.0.1:0"]);
    // A page on evil.example whose name now points at 127.0.0.1 (DNS rebinding).
    let rebound = raw_get(
        addr,
        "GET /api/targets HTTP/1.1\r\nHost: evil.example:9750\r\nConnection: close\r\n\r\n",
    );
    assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound}");
    assert!(rebound.contains("DNS rebinding"), "{rebound}");
    let local = raw_get(
        addr,
        &format!(
            "GET /api/targets HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
            addr.port()
        ),
    );
    assert!(local.starts_with("HTTP/1.1 200"), "{local}");
}

#[test]
fn a_token_guards_every_request_and_other_addresses_need_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_monitor, addr, _err) = start(dir.path(), &["--web", "127.0.0.1:0", "--token", "s3cret"]);
    for path in ["/", "/api/targets", "/metrics", "/api/events"] {
        let (status, _, body) = get(addr, path, None);
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("token"), "{body}");
        let (status, _, _) = get(addr, path, Some("wrong"));
        assert_eq!(status, 401, "{path} with a wrong token");
    }
    let (status, _, _) = get(addr, "/api/targets", Some("s3cret"));
    assert_eq!(status, 200);
    // Every answer carries the security headers.
    let raw = raw_get(
        addr,
        "GET /api/targets HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    for h in [
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "content-security-policy:",
    ] {
        assert!(raw.to_ascii_lowercase().contains(h), "{h}: {raw}");
    }
    let (status, _, _) = get(addr, "/api/targets?token=s3cret", None);
    assert_eq!(status, 200);

    // Beyond loopback without a token: refused before anything is bound.
    let config = dir.path().join("monitor.toml");
    let out = Command::new(common::bin())
        .args(["monitor", "--web", "0.0.0.0:0", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("refusing to serve 0.0.0.0:0 without a token"),
        "{err}"
    );
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn prometheus_scrapes_netpulse_and_promtool_accepts_the_metrics() {
    if !on_path("prometheus") || !on_path("promtool") {
        skip("prometheus/promtool not installed (`.ci/run` installs Debian's prometheus)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_monitor, addr, _err) = start(dir.path(), &["--web", "127.0.0.1:0"]);
    eventually(Duration::from_secs(20), "a few probes", || {
        (sent_of(&get_json(addr, "/api/targets"), "loopback") >= 10).then_some(())
    });

    let (_, _, metrics) = get(addr, "/metrics", None);
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write");
    let out = check.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: netpulse\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .expect("prometheus config");
    let port = free_port();
    let prom = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let _prom = Reaped(prom);
    let prom_addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let query = "/api/v1/query?query=netpulse_probes_sent_total%7Btarget%3D%22loopback%22%7D";
    let value = eventually(
        Duration::from_secs(60),
        "Prometheus to have scraped netpulse",
        || {
            TcpStream::connect(prom_addr).ok()?;
            let (status, _, body) = get(prom_addr, query, None);
            let v: Value = serde_json::from_str(&body).ok()?;
            let r = v["data"]["result"].as_array()?.first()?.clone();
            (status == 200).then_some(r)
        },
    );
    assert_eq!(value["metric"]["kind"], "icmp");
    assert_eq!(value["metric"]["job"], "netpulse");
    let sent: f64 = value["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("a sample value");
    assert!(sent >= 10.0, "{value}");
    // The histogram arrives as buckets Prometheus can take quantiles of.
    let (_, _, body) = get(
        prom_addr,
        "/api/v1/query?query=histogram_quantile(0.5%2Crate(netpulse_probe_rtt_seconds_bucket%5B1m%5D))",
        None,
    );
    assert!(body.contains("\"status\":\"success\""), "{body}");
}

#[test]
fn the_dashboard_in_chromium_shows_points_and_new_results_as_they_come() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    if !on_path("node") || !Path::new("/usr/bin/chromium").exists() {
        skip("node or /usr/bin/chromium missing (`.ci/run` installs chromium)");
        return;
    }
    if !browser_dir.join("node_modules/playwright-core").exists() {
        skip("playwright-core not installed (`.ci/run` runs npm ci in tests/browser)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_monitor, addr, _err) = start(dir.path(), &["--web", "127.0.0.1:0"]);
    eventually(Duration::from_secs(20), "a few seconds of probes", || {
        (sent_of(&get_json(addr, "/api/targets"), "loopback") >= 60).then_some(())
    });
    let artefacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artefacts");
    std::fs::create_dir_all(&artefacts).expect("artefacts dir");
    let shot = artefacts.join("dashboard.png");
    let out = Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .arg(format!("http://{addr}/"))
        .arg(&shot)
        .output()
        .expect("node");
    let text = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "browser test printed no JSON ({e}): {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{result}");
    assert_eq!(result["errors"], Value::Array(vec![]), "console errors");
    assert!(
        result["after"].as_u64() > result["before"].as_u64(),
        "{result}"
    );
    // A new point came by the event stream, unprompted (how long it took is a timing figure,
    // printed, not asserted: points are pushed once a second).
    eprintln!("new point after {} ms", result["waited_ms"]);
    let charted = result["points"].as_array().is_some_and(|p| {
        p.iter()
            .any(|p| p[0] == "loopback" && p[1].as_u64() > Some(2))
    });
    assert!(charted, "{result}");
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
        "screenshot"
    );
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn the_deploy_prometheus_config_and_rules_pass_promtool() {
    if !on_path("promtool") {
        skip("promtool not installed (`.ci/run` installs Debian's prometheus)");
        return;
    }
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let dir = tempfile::tempdir().expect("tempdir");
    // The config names a token file and a rules file by absolute and relative path: give it
    // both beside a copy.
    let token = dir.path().join("netpulse.token");
    std::fs::write(&token, "t0ken\n").expect("token");
    let config = std::fs::read_to_string(deploy.join("prometheus.yml"))
        .expect("prometheus.yml")
        .replace(
            "/etc/prometheus/netpulse.token",
            &token.display().to_string(),
        );
    std::fs::write(dir.path().join("prometheus.yml"), config).expect("config copy");
    std::fs::copy(
        deploy.join("netpulse-rules.yml"),
        dir.path().join("netpulse-rules.yml"),
    )
    .expect("rules copy");
    for args in [
        vec!["check", "config", "prometheus.yml"],
        vec!["check", "rules", "netpulse-rules.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(dir.path())
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_capture_source_feeds_metrics_and_top_talkers() {
    // Capturing needs CAP_NET_RAW: root here, else a printed skip.
    if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    {
        skip("capturing on lo needs root (CAP_NET_RAW)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_monitor, addr, _err) = start_with(
        dir.path(),
        "[capture]\ninterface = \"lo\"\nfilter = \"icmp\"\n",
        &["--web", "127.0.0.1:0"],
    );
    // The ICMP probes to 127.0.0.1 cross lo: requests and replies.
    let capture = eventually(
        Duration::from_secs(20),
        "the capture's first seconds",
        || {
            let c = get_json(addr, "/api/capture");
            (c["packets"].as_u64()? >= 20).then_some(c)
        },
    );
    assert_eq!(capture["interface"], "lo");
    assert_eq!(capture["top_hosts"][0][0], "127.0.0.1", "{capture}");
    let (_, _, metrics) = get(addr, "/metrics", None);
    let icmp = metrics
        .lines()
        .find(|l| l.starts_with("netpulse_capture_packets_total{protocol=\"icmp\"}"))
        .unwrap_or_else(|| panic!("no capture counter:\n{metrics}"));
    let n: f64 = icmp
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("value");
    assert!(n >= 10.0, "{icmp}");
    // The filter kept the TCP probes out.
    assert!(
        !metrics.contains("netpulse_capture_packets_total{protocol=\"tcp\"}"),
        "{metrics}"
    );
}

#[test]
fn web_without_an_address_serves_on_loopback_port_9750() {
    // A namespace of its own, so the fixed port is free whatever else runs.
    let Some(ns) = common::Netns::new() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("monitor.toml");
    let db = dir.path().join("history.db");
    std::fs::write(&config, CONFIG.replace("DB", &db.display().to_string())).expect("config");
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            common::bin(),
            "monitor",
            "--web",
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start monitor");
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let _child = Reaped(child);
    let said = lines
        .map_while(Result::ok)
        .find(|l| l.contains("dashboard on"))
        .expect("the dashboard line");
    assert!(said.contains("http://127.0.0.1:9750/"), "{said}");
}

/// Rows of the loopback target in the 1 s table, counted by an outside `sqlite3`.
fn outside_count(db: &Path) -> u64 {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(
            "select count(*) from probe_1s p join targets t on t.id = p.target_id \
             where t.label = 'loopback'",
        )
        .output()
        .expect("run sqlite3");
    assert!(out.status.success(), "sqlite3: {}", common::stderr(&out));
    common::stdout(&out).trim().parse().expect("a count")
}

/// An outside `sqlite3` reading the recording while the dashboard has opened it (a long range)
/// must not take the recording's locks away: the WAL stays, the recording goes on where outside
/// readers see it, long ranges keep answering, and after a kill -9 every committed second is
/// kept. (A header check once opened the file with a plain `File`; closing it dropped all of
/// the process's POSIX locks, so the outside reader, thinking itself last, deleted the WAL.)
#[test]
fn an_outside_sqlite3_reader_does_not_break_the_recording() {
    if !on_path("sqlite3") {
        skip("no sqlite3 here (apt-get install sqlite3)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    let wal = dir.path().join("history.db-wal");
    let (mut monitor, addr, _err) = start(dir.path(), &["--web", "127.0.0.1:0"]);
    eventually(Duration::from_secs(20), "recorded seconds", || {
        (db.exists() && outside_count(&db) >= 2).then_some(())
    });
    for _ in 0..2 {
        let (status, _, body) = get(addr, "/api/series?range=1h", None);
        assert_eq!(status, 200, "{body}");
        let before = outside_count(&db);
        assert!(
            wal.exists(),
            "the recording's WAL was deleted by an outside reader"
        );
        // The recording goes on, visibly to outside readers.
        eventually(Duration::from_secs(20), "3 more recorded seconds", || {
            (outside_count(&db) >= before + 3).then_some(())
        });
    }
    let (status, _, body) = get(addr, "/api/series?range=1h", None);
    assert_eq!(status, 200, "a long range after outside reads: {body}");
    let seen = outside_count(&db);
    monitor.0.kill().expect("kill -9");
    let _ = monitor.0.wait();
    assert!(
        outside_count(&db) >= seen,
        "seconds committed before the kill -9 were lost"
    );
}

/// The address the monitor said its dashboard is on, from its stderr lines.
fn dashboard_addr(lines: &mut std::io::Lines<BufReader<ChildStderr>>) -> Option<SocketAddr> {
    lines.map_while(Result::ok).find_map(|l| {
        l.split("dashboard on http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|a| a.parse().ok())
    })
}

/// `KEY=value` settings of the shipped unit's `Environment=` lines, and its `ExecStart=`.
fn unit() -> (Vec<(String, String)>, Vec<String>) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/netpulse.service"
    ))
    .expect("deploy/netpulse.service");
    let env = text
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    (env, exec)
}

#[test]
fn the_shipped_systemd_unit_starts_with_a_token_in_its_environment_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (env, exec) = unit();
    assert!(
        exec[0].ends_with("/netpulse") && exec[1] == "monitor",
        "{exec:?}"
    );
    // The unit's command line, with this build and a config of our own in place of /etc's.
    let config = dir.path().join("netpulse.toml");
    std::fs::write(
        &config,
        "[monitor]\nstatus_every = \"1s\"\n[ifaces]\nenabled = false\n[listen]\nweb = \"127.0.0.1:0\"\n\
         [[target]]\ntarget = \"tcp://127.0.0.1:9\"\n",
    )
    .expect("config");
    let args: Vec<String> = exec[1..]
        .iter()
        .map(|a| {
            if a.starts_with("/etc/netpulse/") {
                config.display().to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    let mut cmd = Command::new(common::bin());
    cmd.args(&args).env_clear().env("PATH", "/usr/bin:/bin");
    for (k, v) in &env {
        // The unit's state directory, here a temporary one.
        let v = if v.starts_with("/var/lib/") {
            dir.path().display().to_string()
        } else {
            v.clone()
        };
        cmd.env(k, v);
    }
    // What the unit's EnvironmentFile holds.
    cmd.env("NETPULSE_WEB_TOKEN", "from-the-env-file");
    let mut child = Reaped(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start"),
    );
    let mut lines = BufReader::new(child.0.stderr.take().expect("stderr")).lines();
    let addr = dashboard_addr(&mut lines).expect("the unit's command started and serves");
    assert_eq!(
        get(addr, "/api/targets", None).0,
        401,
        "the token guards it"
    );
    assert_eq!(get(addr, "/api/targets", Some("from-the-env-file")).0, 200);
    // and the database went to the unit's state directory
    eventually(Duration::from_secs(10), "the database", || {
        dir.path()
            .join("netpulse/netpulse.db")
            .exists()
            .then_some(())
    });
}

#[test]
fn two_thousand_idle_web_clients_take_no_descriptor_the_probes_need() {
    // The test holds 2 000 sockets itself: it needs the room (root may raise its hard limit).
    let me = std::process::id().to_string();
    let raised = Command::new("prlimit")
        .args(["--pid", &me, "--nofile=8192:8192"])
        .status();
    if !raised.is_ok_and(|s| s.success()) {
        skip("cannot raise this test's open-file limit with prlimit (needs root and util-linux)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let config = dir.path().join("monitor.toml");
    std::fs::write(
        &config,
        format!(
            "[monitor]\nstatus_every = \"1s\"\n[ifaces]\nenabled = false\n[record]\nenabled = false\n\
             [listen]\nweb = \"127.0.0.1:0\"\n\
             [[target]]\nlabel = \"svc\"\ntarget = \"tcp://127.0.0.1:{port}\"\ninterval = \"20ms\"\n"
        ),
    )
    .expect("config");
    // The usual default limit: 1 024 descriptors (netpulse raises its soft limit to the hard).
    let mut child = Reaped(
        Command::new("prlimit")
            .args(["--nofile=1024:4096", common::bin(), "monitor", "--config"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start"),
    );
    let mut status = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let mut err = BufReader::new(child.0.stderr.take().expect("stderr")).lines();
    let addr = dashboard_addr(&mut err).expect("dashboard address");
    let before = sent_of(&get_json(addr, "/api/targets"), "svc");
    let idle: Vec<std::net::TcpStream> = (0..2000)
        .filter_map(|_| std::net::TcpStream::connect(addr).ok())
        .collect();
    assert!(idle.len() >= 1900, "{} connections made", idle.len());
    // Five ticks of probing with every client idle.
    for _ in 0..5 {
        status.next().expect("a status line").expect("utf-8");
    }
    // The server closes an idle client (no request within its header timeout) by itself.
    let mut first = &idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    use std::io::Read;
    assert_eq!(first.read(&mut buf).expect("closed, not timed out"), 0);
    drop(idle);
    let targets = eventually(Duration::from_secs(20), "the API again", || {
        std::net::TcpStream::connect(addr).ok()?;
        Some(get_json(addr, "/api/targets"))
    });
    let svc = targets
        .as_array()
        .and_then(|a| a.iter().find(|t| t["label"] == "svc"))
        .expect("svc")
        .clone();
    assert!(sent_of(&targets, "svc") > before + 100, "{svc}");
    assert_eq!(
        svc["loss"], 0.0,
        "a probe failed while clients were idle: {svc}"
    );
}
