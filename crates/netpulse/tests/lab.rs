//! Probes across the lab (`../shared/lab/netlab.sh`): namespaces with a delay line of known delay
//! and loss, the ground truth for accuracy. Skipped, with the reason printed, without root.

mod common;

use common::*;
use std::sync::Mutex;

/// The delay line is a Python process that spins for precision: one lab at a time keeps the
/// timing ground truth honest on a 2-core machine.
static ONE_LAB_AT_A_TIME: Mutex<()> = Mutex::new(());

fn warm_up(lab: &Lab) {
    // The first packet pays ARP through the delay line; resolve the neighbour before measuring.
    let _ = netpulse_in(
        &lab.client(),
        &["probe", "-q", "-c", "3", "-i", "100ms", &lab.addr(2)],
    );
}

fn mean_rtt(lab: &Lab, icmp_socket: &str) -> (f64, f64, u64) {
    let out = netpulse_in(
        &lab.client(),
        &[
            "probe",
            "-c",
            "100",
            "-i",
            "10ms",
            "-q",
            "--json",
            "--icmp-socket",
            icmp_socket,
            &lab.addr(2),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let s = summary(&lines, &lab.addr(2));
    (
        s["rtt_ms"]["avg"].as_f64().expect("avg"),
        s["rtt_ms"]["min"].as_f64().expect("min"),
        s["received"].as_u64().expect("received"),
    )
}

#[test]
fn rtt_matches_the_set_delay_with_both_icmp_sockets() {
    let _one = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::up(20.0, 0.0, 0.0) else {
        return;
    };
    warm_up(&lab);
    // Raw socket (root), then the unprivileged ping socket once the namespace allows it.
    let (avg, min, received) = mean_rtt(&lab, "raw");
    assert_eq!(received, 100);
    // Ground truth: 2 × 20 ms plus the wire's own 0.2-0.6 ms per round trip (a Python process
    // whose wake-ups vary with load); kernel receive stamps can never undercut the real delay.
    assert!(min >= 40.0, "RTT below the set delay: min {min} ms");
    assert!(
        (40.0..41.0).contains(&avg),
        "raw: mean RTT {avg} ms, expected 40 ms + wire overhead"
    );
    let sysctl = ["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"];
    let _ = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.client()])
        .args(sysctl)
        .status();
    let (avg, min, received) = mean_rtt(&lab, "dgram");
    assert_eq!(received, 100);
    assert!(min >= 40.0, "RTT below the set delay: min {min} ms");
    assert!((40.0..41.0).contains(&avg), "dgram: mean RTT {avg} ms");
}

#[test]
fn loss_over_2000_probes_is_within_3_sigma() {
    let _one = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::up(1.0, 0.0, 0.05) else {
        return;
    };
    warm_up(&lab);
    let n = 2000u64;
    let out = netpulse_in(
        &lab.client(),
        &[
            "probe",
            "-c",
            &n.to_string(),
            "-i",
            "2ms",
            "-W",
            "500ms",
            "-q",
            "--json",
            &lab.addr(2),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let s = summary(&lines, &lab.addr(2));
    assert_eq!(s["sent"].as_u64(), Some(n));
    let loss = s["loss"].as_f64().expect("loss");
    // 5 % each way: a round trip survives with 0.95², so loss = 9.75 %.
    let p = 1.0 - 0.95f64 * 0.95;
    let sigma = (p * (1.0 - p) / n as f64).sqrt();
    assert!(
        (loss - p).abs() <= 3.0 * sigma,
        "loss {loss} vs {p} ± {}",
        3.0 * sigma
    );
}

#[test]
fn silent_tcp_target_times_out_and_others_are_unaffected() {
    let _one = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::up(1.0, 0.0, 0.0) else {
        return;
    };
    warm_up(&lab);
    let silent = format!("tcp://{}:80", lab.addr(3)); // nobody has this address: no answer at all
    let closed = format!("tcp://{}:9", lab.addr(2)); // the server answers RST
    let icmp = lab.addr(2);
    let out = netpulse_in(
        &lab.client(),
        &[
            "probe", "-c", "20", "-i", "20ms", "-W", "300ms", "--json", &silent, &closed, &icmp,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "one target never answered");
    let lines = json_lines(&out);
    let s = summary(&lines, &silent);
    assert_eq!(
        (s["sent"].as_u64(), s["received"].as_u64()),
        (Some(20), Some(0)),
        "{s}"
    );
    let timeouts = of_type(&lines, "probe")
        .into_iter()
        .filter(|p| p["target"] == silent.as_str() && p["outcome"] == "timeout")
        .count();
    assert_eq!(timeouts, 20);
    let s = summary(&lines, &closed);
    assert_eq!(
        (s["received"].as_u64(), s["refused"].as_u64()),
        (Some(20), Some(20)),
        "{s}"
    );
    let s = summary(&lines, &icmp);
    assert_eq!(s["received"].as_u64(), Some(20), "{s}");
    let avg = s["rtt_ms"]["avg"].as_f64().expect("avg");
    assert!(
        (2.0..3.0).contains(&avg),
        "ICMP RTT unaffected by the silent target: {avg} ms"
    );
    // Lateness is a timing figure (a busy shared machine makes sends late): counted, not
    // asserted; bench/monitor_scale.sh reports it beside fping.
    assert!(s["late_sends"].as_u64().is_some(), "{s}");
}

/// Runs netpulse in `ns` without CAP_NET_RAW (as an unprivileged user would).
fn without_cap_net_raw(ns: &Netns, args: &[&str]) -> std::process::Output {
    std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "setpriv",
            "--inh-caps=-all",
            "--bounding-set=-net_raw",
            bin(),
        ])
        .args(args)
        .output()
        .expect("run netpulse without CAP_NET_RAW")
}

#[test]
fn no_icmp_permission_gives_a_hint_naming_both_fixes() {
    let Some(ns) = Netns::new() else { return };
    ns.exec(&["sysctl", "-qw", "net.ipv4.ping_group_range=1 0"]);
    // Without CAP_NET_RAW and outside ping_group_range, neither socket opens.
    let out = without_cap_net_raw(&ns, &["probe", "-c", "1", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot open an ICMP socket"), "{err}");
    assert!(err.contains("net.ipv4.ping_group_range"), "{err}");
    assert!(err.contains("setcap cap_net_raw+ep"), "{err}");
    assert!(!err.contains("panicked"));
    // Allowing ping sockets in this namespace is enough: the unprivileged path works.
    ns.exec(&["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"]);
    let out = without_cap_net_raw(&ns, &["probe", "-c", "2", "-i", "10ms", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("(dgram socket)"), "{}", stdout(&out));
    // TCP targets need no ICMP permission at all.
    ns.exec(&["sysctl", "-qw", "net.ipv4.ping_group_range=1 0"]);
    let out = without_cap_net_raw(&ns, &["probe", "-c", "1", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn unreachable_host_gets_icmp_error_lines_with_both_sockets() {
    let _one = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::up(1.0, 0.0, 0.0) else {
        return;
    };
    let sysctl = ["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"];
    let _ = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.client()])
        .args(sysctl)
        .status();
    // Nobody owns .3 and .4: ARP fails (after ~3 s) and the client's kernel answers each probe
    // with "host unreachable", which must reach us on the raw and on the ping socket alike.
    let spawn = |socket: &str, host: u8| {
        std::process::Command::new("ip")
            .args(["netns", "exec", &lab.client(), bin()])
            .args([
                "probe",
                "-c",
                "2",
                "-i",
                "100ms",
                "-W",
                "6s",
                "--json",
                "--icmp-socket",
                socket,
            ])
            .arg(lab.addr(host))
            .output()
    };
    let (raw, dgram) = std::thread::scope(|s| {
        let raw = s.spawn(|| spawn("raw", 3));
        let dgram = spawn("dgram", 4);
        (raw.join().expect("raw thread"), dgram)
    });
    for (out, host) in [(raw.expect("raw run"), 3), (dgram.expect("dgram run"), 4)] {
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let lines = json_lines(&out);
        let probes = of_type(&lines, "probe");
        assert_eq!(probes.len(), 2, "{lines:?}");
        for p in probes {
            assert_eq!(p["outcome"], "unreachable", "{p}");
            let detail = p["detail"].as_str().expect("detail");
            assert!(detail.contains("Destination Host Unreachable"), "{detail}");
            assert!(
                detail.contains(&lab.addr(1)),
                "from the client's own stack: {detail}"
            );
        }
        let s = summary(&lines, &lab.addr(host));
        assert_eq!(
            (s["received"].as_u64(), s["errors"].as_u64()),
            (Some(0), Some(2))
        );
    }
}
