//! End-to-end probes over loopback with real sockets: ICMP, TCP open/closed, UDP with and
//! without a listener, DNS against a tiny responder, output formats, exit codes, Ctrl-C.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn icmp_loopback_v4_json() {
    let out = netpulse(&["probe", "-c", "5", "-i", "10ms", "--json", "127.0.0.1"]);
    if icmp_unavailable(&out) {
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let probes = of_type(&lines, "probe");
    assert_eq!(probes.len(), 5);
    for (i, p) in probes.iter().enumerate() {
        assert_eq!(p["seq"], i as u64 + 1);
        assert_eq!(p["outcome"], "ok");
        assert_eq!(p["kind"], "icmp");
        assert_eq!(p["detail"], serde_json::Value::Null);
        let rtt = p["rtt_ms"].as_f64().expect("rtt");
        assert!(rtt > 0.0 && rtt < 10.0, "loopback RTT {rtt} ms");
        assert!(p["ttl"].as_u64().is_some());
        let sent_at = p["sent_at"].as_str().expect("sent_at");
        // RFC 3339 with microseconds: 2026-11-23T12:00:00.123456Z
        assert_eq!(sent_at.len(), 27, "{sent_at}");
        assert!(sent_at.ends_with('Z'));
    }
    let s = summary(&lines, "127.0.0.1");
    assert_eq!(
        (s["sent"].as_u64(), s["received"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(s["loss"], 0.0);
    for k in ["min", "avg", "median", "max", "mdev", "p95", "p99"] {
        assert!(s["rtt_ms"][k].is_number(), "rtt_ms.{k} in {s}");
    }
    assert!(s["jitter_ms"].is_number());
    let (min, max) = (s["rtt_ms"]["min"].as_f64(), s["rtt_ms"]["max"].as_f64());
    assert!(min <= max);
}

#[test]
fn icmp_loopback_text_is_ping_like() {
    let out = netpulse(&["probe", "-c", "3", "-i", "10ms", "127.0.0.1"]);
    if icmp_unavailable(&out) {
        return;
    }
    let text = stdout(&out);
    assert!(
        text.starts_with("PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data"),
        "{text}"
    );
    let replies: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("64 bytes from 127.0.0.1: icmp_seq="))
        .collect();
    assert_eq!(replies.len(), 3, "{text}");
    assert!(
        replies[0].contains(" ttl=") && replies[0].ends_with(" ms"),
        "{}",
        replies[0]
    );
    assert!(
        text.contains("--- 127.0.0.1 probe statistics ---"),
        "{text}"
    );
    assert!(
        text.contains("3 packets transmitted, 3 received, 0% packet loss, time "),
        "{text}"
    );
    assert!(text.contains("rtt min/avg/max/mdev = "), "{text}");
    assert!(text.contains("rtt median/p95/p99 = "), "{text}");
}

#[test]
fn icmp_loopback_v6() {
    if UdpSocket::bind("[::1]:0").is_err() {
        skip("no IPv6 loopback here");
        return;
    }
    let out = netpulse(&["probe", "-6", "-c", "3", "-i", "10ms", "--json", "::1"]);
    if icmp_unavailable(&out) {
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let s = summary(&lines, "::1");
    assert_eq!(s["received"], 3);
}

#[test]
fn tcp_open_and_closed_ports() {
    let open = TcpListener::bind("127.0.0.1:0").expect("listen");
    // A bound socket that never listens: its port answers SYN with RST, and stays ours.
    let closed =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    closed
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .expect("addr")
                .into(),
        )
        .expect("bind");
    let closed_port = closed
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("inet")
        .port();
    let open_t = format!("127.0.0.1:{}", open.local_addr().expect("addr").port());
    let closed_t = format!("tcp://127.0.0.1:{closed_port}");
    let out = netpulse(&[
        "probe", "-c", "4", "-i", "10ms", "--json", &open_t, &closed_t,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "refused counts as answered: {}",
        stderr(&out)
    );
    let lines = json_lines(&out);
    let open_label = format!("tcp://{open_t}");
    for p in of_type(&lines, "probe") {
        let expect = if p["target"] == open_label.as_str() {
            "ok"
        } else {
            "refused"
        };
        assert_eq!(p["outcome"], expect, "{p}");
        assert!(p["rtt_ms"].as_f64().is_some_and(|r| r > 0.0), "{p}");
    }
    let s = summary(&lines, &open_label);
    assert_eq!(
        (
            s["sent"].as_u64(),
            s["received"].as_u64(),
            s["refused"].as_u64()
        ),
        (Some(4), Some(4), Some(0))
    );
    let s = summary(&lines, &closed_t);
    assert_eq!(
        (s["received"].as_u64(), s["refused"].as_u64()),
        (Some(4), Some(4))
    );

    let text = stdout(&netpulse(&["probe", "-c", "1", &closed_t]));
    assert!(
        text.contains(&format!(
            "tcp 127.0.0.1:{closed_port} seq=1 refused (port closed) time="
        )),
        "{text}"
    );
}

#[test]
fn ports_flag_expands_hosts_into_tcp_targets() {
    let a = TcpListener::bind("127.0.0.1:0").expect("listen");
    let b = TcpListener::bind("127.0.0.1:0").expect("listen");
    let ports = format!(
        "{},{}",
        a.local_addr().expect("a").port(),
        b.local_addr().expect("b").port()
    );
    let out = netpulse(&[
        "probe",
        "-c",
        "2",
        "-i",
        "10ms",
        "--json",
        "--no-ping",
        "-p",
        &ports,
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let sums = of_type(&lines, "summary");
    assert_eq!(sums.len(), 2, "--no-ping: the ports only");
    assert!(
        sums.iter()
            .all(|s| s["kind"] == "tcp" && s["received"] == 2),
        "{sums:?}"
    );
}

/// A UDP echo service answering `n` datagrams, ending by itself after 5 s idle.
fn udp_echo(n: usize) -> (u16, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let port = sock.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for _ in 0..n {
            let Ok((len, from)) = sock.recv_from(&mut buf) else {
                return;
            };
            let _ = sock.send_to(&buf[..len], from);
        }
    });
    (port, h)
}

#[test]
fn udp_with_and_without_listener() {
    let (port, echo) = udp_echo(3);
    let with = format!("udp://127.0.0.1:{port}");
    // A port nobody listens on: bind, note it, close — the kernel answers port unreachable.
    let free = UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let without = format!("udp://127.0.0.1:{free}");
    let out = netpulse(&[
        "probe", "-c", "3", "-i", "10ms", "-s", "32", "--json", &with, &without,
    ]);
    echo.join().expect("echo thread");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let s = summary(&lines, &with);
    assert_eq!(
        (s["received"].as_u64(), s["refused"].as_u64()),
        (Some(3), Some(0))
    );
    let s = summary(&lines, &without);
    assert_eq!(
        (s["received"].as_u64(), s["refused"].as_u64()),
        (Some(3), Some(3)),
        "port unreachable measured"
    );
    assert!(s["rtt_ms"]["avg"].as_f64().is_some_and(|r| r > 0.0));
}

#[test]
fn udp_silent_listener_times_out_and_exit_is_1() {
    // Bound but never answering: no reply and no port-unreachable.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let target = format!(
        "udp://127.0.0.1:{}",
        silent.local_addr().expect("addr").port()
    );
    let out = netpulse(&["probe", "-c", "3", "-i", "10ms", "-W", "100ms", &target]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert_eq!(text.matches(" timeout").count(), 3, "{text}");
    assert!(
        text.contains("3 packets transmitted, 0 received, 100% packet loss"),
        "{text}"
    );
}

/// A tiny DNS responder: `ok.test` gets one A record, anything else NXDOMAIN. Ends after `n`
/// queries or 5 s idle.
fn dns_responder(n: usize) -> (u16, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let port = sock.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        for _ in 0..n {
            let Ok((len, from)) = sock.recv_from(&mut buf) else {
                return;
            };
            let mut resp = buf[..len].to_vec();
            let is_ok = resp.windows(4).any(|w| w == b"\x02ok\x04");
            resp[2] |= 0x80; // QR
            resp[3] = 0x80 | if is_ok { 0 } else { 3 }; // RA + RCODE
            if is_ok {
                resp[7] = 1; // ANCOUNT
                resp.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
            }
            let _ = sock.send_to(&resp, from);
        }
    });
    (port, h)
}

#[test]
fn dns_rtt_and_rcode() {
    let (port, server) = dns_responder(4);
    let ok = format!("dns://127.0.0.1:{port}/ok.test?type=A");
    let nx = format!("dns://127.0.0.1:{port}/missing.test?type=A");
    let out = netpulse(&["probe", "-c", "2", "-i", "10ms", "--json", &ok, &nx]);
    server.join().expect("dns thread");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    for p in of_type(&lines, "probe") {
        assert_eq!(p["outcome"], "ok");
        let want = if p["target"] == ok.as_str() {
            "NOERROR answers=1"
        } else {
            "NXDOMAIN answers=0"
        };
        assert_eq!(p["detail"], want, "{p}");
    }
    assert_eq!(summary(&lines, &ok)["received"], 2);
    assert_eq!(summary(&lines, &nx)["received"], 2);
}

#[test]
fn report_every_prints_periodic_tables() {
    let l = TcpListener::bind("127.0.0.1:0").expect("listen");
    let t = format!("127.0.0.1:{}", l.local_addr().expect("addr").port());
    let out = netpulse(&[
        "probe",
        "-q",
        "-c",
        "40",
        "-i",
        "10ms",
        "--report-every",
        "100ms",
        &t,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let tables = text.matches("--- report ").count();
    assert!(
        tables >= 2,
        "40 probes at 10 ms span ≥ 2 windows of 100 ms: {text}"
    );
    assert!(text.contains("SENT") && text.contains("OUTAGE"), "{text}");
    assert!(
        !text.contains("connected time="),
        "-q hides probe lines: {text}"
    );
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("tcp://{t}")))
        .collect();
    assert!(rows.iter().all(|r| r.ends_with("no")), "{rows:?}");
    let sent: u64 = rows
        .iter()
        .filter_map(|r| r.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    // Every probe is in exactly one table (the last, partial window too).
    assert_eq!(sent, 40, "{rows:?}");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    for (args, expect) in [
        (
            vec!["probe", "-i", "0", "127.0.0.1"],
            "bad interval (-i) \"0\"",
        ),
        (
            vec!["probe", "-i", "abc", "127.0.0.1"],
            "invalid duration \"abc\"",
        ),
        (vec!["probe", "127.0.0.1:99999"], "bad port \"99999\""),
        (vec!["probe", "tcp://127.0.0.1"], "missing port"),
        (vec!["probe", "ftp://x"], "unknown scheme"),
        (vec!["probe", "-W", "0", "127.0.0.1"], "bad timeout"),
        (vec!["probe", "-p", "0", "127.0.0.1"], "bad -p port list"),
        (
            vec!["probe", "dns://127.0.0.1/x?type=NOPE"],
            "unknown DNS record type",
        ),
        (vec!["probe", "-s", "70000", "127.0.0.1"], "bad size"),
    ] {
        let out = netpulse(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("netpulse: ") && err.contains(expect),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn unknown_host_is_reported_and_others_go_on() {
    let l = TcpListener::bind("127.0.0.1:0").expect("listen");
    let t = format!("127.0.0.1:{}", l.local_addr().expect("addr").port());
    let out = netpulse(&["probe", "-c", "1", "--json", "nosuch.invalid", &t]);
    assert_eq!(out.status.code(), Some(1), "one target did not answer");
    assert!(
        stderr(&out).contains("netpulse: cannot resolve \"nosuch.invalid\""),
        "{}",
        stderr(&out)
    );
    let lines = json_lines(&out);
    assert_eq!(of_type(&lines, "error").len(), 1);
    assert_eq!(summary(&lines, &format!("tcp://{t}"))["received"], 1);

    let out = netpulse(&["probe", "-c", "1", "nosuch.invalid"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no target could be resolved"));
}

#[test]
fn first_ctrl_c_prints_summary_second_exits_at_once() {
    // Graceful: a run without end is stopped by one SIGINT and still prints its summary.
    let mut child = Command::new(bin())
        .args(["probe", "-i", "10ms", "--json", "127.0.0.1:1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    for _ in 0..5 {
        lines.next().expect("a probe line").expect("utf-8");
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill")
        .success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "refused = answered");
    let last = rest.last().expect("summary line");
    let v: serde_json::Value = serde_json::from_str(last).expect("json");
    assert_eq!(v["type"], "summary");
    assert!(v["sent"].as_u64().is_some_and(|s| s >= 5));
    assert_eq!(
        v["sent"], v["received"],
        "every probe resolved, none lost to the stop"
    );

    // Immediate: with an answer awaited for 60 s, a second SIGINT ends the wait at once.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let target = format!(
        "udp://127.0.0.1:{}",
        silent.local_addr().expect("addr").port()
    );
    let mut child = Command::new(bin())
        .args(["probe", "-W", "60s", &target])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut header = String::new();
    out.read_line(&mut header).expect("header");
    assert!(header.starts_with("UDP "), "{header}");
    // The probe is in flight once the silent socket has it.
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    silent.recv_from(&mut buf).expect("the probe arrives");
    let pid = child.id().to_string();
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill")
        .success());
    let mut notice = String::new();
    err.read_line(&mut notice).expect("notice");
    assert!(notice.contains("Ctrl-C again to quit now"), "{notice}");
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill")
        .success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("read");
    assert!(
        !rest.contains("probe statistics"),
        "no summary after the second Ctrl-C: {rest}"
    );
}

#[test]
fn an_interval_or_timeout_beyond_what_can_be_scheduled_is_refused_not_a_crash() {
    for (flag, what) in [("-i", "interval"), ("-W", "timeout")] {
        let out = netpulse(&[
            "probe",
            "-c",
            "1",
            flag,
            "9999999999999999999s",
            "tcp://127.0.0.1:9",
        ]);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("{what} of"))
                && stderr(&out).contains("longer than netpulse allows"),
            "{}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
    // A deadline that far away is simply no deadline.
    let out = netpulse(&[
        "probe",
        "-c",
        "1",
        "-w",
        "9999999999999999999s",
        "tcp://127.0.0.1:9",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn control_characters_in_labels_reach_no_terminal_raw() {
    // A DNS name with an ESC sequence in it (the probe only asks 127.0.0.1:9).
    let out = netpulse(&["probe", "-c", "1", "dns://127.0.0.1:9/a\u{1b}[2J.example"]);
    let text = stdout(&out) + &stderr(&out);
    assert!(!text.contains('\u{1b}'), "raw ESC: {text:?}");
    assert!(text.contains("\\u{1b}[2J"), "{text}");
    // A config label with ESC and NUL in it, in the monitor's status lines.
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("m.toml");
    std::fs::write(
        &config,
        "[monitor]\nstatus_every = \"1s\"\n[ifaces]\nenabled = false\n[record]\nenabled = false\n\
         [[target]]\nlabel = \"evil\\u001b]0;owned\\u0007\\u0000x\"\ntarget = \"tcp://127.0.0.1:9\"\n",
    )
    .expect("config");
    let mut child = Command::new(bin())
        .args(["monitor", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("monitor");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = lines.next().expect("a status line").expect("utf-8");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("evil\\u{1b}]0;owned\\u{7}\\u{0}x"),
        "{line:?}"
    );
    assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
}

/// A Ctrl-C while a name is being looked up ends `probe` at once (exit 130), instead of being
/// lost until getaddrinfo gives up. The name server is a silent one of the test's own (it
/// reads the query and never answers), in a namespace with its own resolv.conf.
#[test]
fn ctrl_c_while_a_name_resolves_ends_at_once() {
    let Some(ns) = Netns::new() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.53\noptions timeout:30 attempts:1\n",
    )
    .expect("resolv.conf");
    let silent = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  s.bind(('127.0.0.53', 53))\nprint('ready', flush=True)\ns.recvfrom(512)\n\
                  print('query', flush=True)\ns.recvfrom(512)\n";
    let mut server = Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-u", "-c", silent])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the silent name server");
    let mut said = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let _server = Reaped(server);
    assert_eq!(said.next().and_then(Result::ok).as_deref(), Some("ready"));
    let script = format!(
        "mount --bind {} /etc/resolv.conf && exec {} probe -c 1 silent.netpulse.test",
        resolv.display(),
        bin()
    );
    let probe = Command::new("ip")
        .args([
            "netns", "exec", &ns.name, "unshare", "--mount", "sh", "-c", &script,
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start probe");
    let mut probe = Reaped(probe);
    // The query reached the name server: probe is inside getaddrinfo now.
    assert_eq!(said.next().and_then(Result::ok).as_deref(), Some("query"));
    let _ = Command::new("kill")
        .args(["-INT", &probe.0.id().to_string()])
        .status();
    let status = probe.0.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = probe.0.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted while resolving names"), "{err}");
}

/// Seed 003's command line: `-p 22 80 443 HOST` (ports space-separated) pings the host and
/// connects to each port, reported together; `-t` adds targets; `--report-every N` counts
/// rounds; `-o FILE.json` writes the session with per-target, per-host and per-port statistics
/// and every result.
#[test]
fn seed_003_ping_plus_spaced_ports_targets_rounds_and_session_file() {
    let open = TcpListener::bind("127.0.0.1:0").expect("listen");
    let open_port = open.local_addr().expect("addr").port().to_string();
    let closed_port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("listen");
        l.local_addr().expect("addr").port().to_string()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("session.json");
    let f = file.to_str().expect("utf-8 path");
    let out = netpulse(&[
        "probe",
        "-c",
        "4",
        "-i",
        "10ms",
        "--json",
        "--report-every",
        "2",
        "-o",
        f,
        "-p",
        &open_port,
        &closed_port,
        "127.0.0.1",
    ]);
    if icmp_unavailable(&out) {
        return;
    }
    let lines = json_lines(&out);
    let summaries = of_type(&lines, "summary");
    let names: Vec<_> = summaries
        .iter()
        .map(|s| s["target"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "127.0.0.1".to_string(),
            format!("tcp://127.0.0.1:{open_port}"),
            format!("tcp://127.0.0.1:{closed_port}")
        ],
        "ping, then each port, in order"
    );
    // Two rounds a report, four rounds: two reports of three rows.
    assert_eq!(of_type(&lines, "report").len(), 6, "{}", stdout(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("-o file")).expect("JSON");
    assert_eq!(v["results"].as_array().map(Vec::len), Some(12));
    assert_eq!(v["summary"]["sent"], 12);
    let host = &v["hosts"][0];
    assert_eq!(host["host"], "127.0.0.1");
    assert_eq!(host["ping"]["success_rate"], 1.0, "{host}");
    assert_eq!(host["ports"][&open_port]["result"], "open", "{host}");
    assert_eq!(host["ports"][&open_port]["success_rate"], 1.0);
    assert_eq!(host["ports"][&closed_port]["result"], "closed", "{host}");
    assert_eq!(host["ports"][&closed_port]["success_rate"], 0.0);
    for key in ["min", "max", "avg", "median"] {
        assert!(
            host["ports"][&open_port]["rtt_ms"][key].is_f64(),
            "{key}: {host}"
        );
    }
    // Text: the hosts table puts the ping and the ports together.
    let out = netpulse(&[
        "probe",
        "-q",
        "-c",
        "1",
        "-p",
        &open_port,
        &closed_port,
        "-t",
        "127.0.0.1",
        "localhost",
    ]);
    let text = stdout(&out);
    assert!(text.contains("--- hosts: ping and ports ---"), "{text}");
    assert!(
        text.contains(&format!("tcp/{open_port}")) && text.contains("closed"),
        "{text}"
    );
    assert!(
        text.contains("localhost"),
        "-t takes several targets: {text}"
    );
    drop(open);
}

/// A bare number or a short dotted form is refused with a hint, not probed as 0.0.0.80 or
/// 10.61.0.0 as the resolver would take it.
#[test]
fn numeric_hosts_that_are_not_addresses_are_refused() {
    let out = netpulse(&["probe", "-c", "1", "80"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("a bare number"), "{}", stderr(&out));
    let out = netpulse(&["probe", "-c", "1", "10.61.0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a whole IPv4 address"),
        "{}",
        stderr(&out)
    );
}

/// Without ICMP (no ping socket allowed, `--icmp-socket dgram`), the TCP targets are still
/// probed and the ICMP ones named as not probed, with why: exit 1, not 2.
#[test]
fn without_icmp_the_other_targets_are_still_probed() {
    let Some(ns) = Netns::new() else { return };
    ns.exec(&["sysctl", "-qw", "net.ipv4.ping_group_range=1 0"]);
    let out = netpulse_in(
        &ns.name,
        &[
            "probe",
            "--icmp-socket",
            "dgram",
            "-c",
            "2",
            "-i",
            "10ms",
            "--json",
            "127.0.0.1",
            "127.0.0.1:9",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 ICMP target not probed (127.0.0.1)"),
        "{}",
        stderr(&out)
    );
    let lines = json_lines(&out);
    let s = summary(&lines, "tcp://127.0.0.1:9");
    assert_eq!(
        (s["sent"].as_u64(), s["refused"].as_u64()),
        (Some(2), Some(2)),
        "{s}"
    );
}
