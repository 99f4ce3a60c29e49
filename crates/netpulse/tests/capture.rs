//! `netpulse capture` against Wireshark's own numbers on the lab's synthetic capture, and on
//! damaged and compressed files.

mod common;

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn gen_pcap(dir: &Path, packets: u32) -> PathBuf {
    let path = dir.join("lab.pcap");
    let out = Command::new("python3")
        .arg(common::lab_dir().join("gen_pcap.py"))
        .arg(&path)
        .arg(packets.to_string())
        .output()
        .expect("run gen_pcap.py");
    assert!(out.status.success(), "{}", common::stderr(&out));
    path
}

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .expect("tshark is installed by .ci/run (apt-get install tshark)");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        common::stderr(&out)
    );
    common::stdout(&out)
}

/// tshark's conversations in `file` (`-z conv,tcp -z conv,udp`): (TCP, UDP).
fn tshark_conversations(file: &Path) -> (u64, u64) {
    let conv = tshark(&[
        "-r",
        file.to_str().expect("utf-8"),
        "-q",
        "-z",
        "conv,tcp",
        "-z",
        "conv,udp",
    ]);
    let (mut tcp, mut udp, mut section) = (0u64, 0u64, "");
    for l in conv.lines() {
        if l.contains("TCP Conversations") {
            section = "tcp";
        } else if l.contains("UDP Conversations") {
            section = "udp";
        } else if l.contains("<->") {
            match section {
                "tcp" => tcp += 1,
                "udp" => udp += 1,
                _ => {}
            }
        }
    }
    (tcp, udp)
}

/// tshark's first `tcp.analysis.initial_rtt` in `file`, in ms.
fn tshark_initial_rtt_ms(file: &Path) -> Option<f64> {
    let rtt = tshark(&[
        "-r",
        file.to_str().expect("utf-8"),
        "-Y",
        "tcp.analysis.initial_rtt",
        "-T",
        "fields",
        "-e",
        "tcp.analysis.initial_rtt",
    ]);
    rtt.lines()
        .next()
        .and_then(|l| l.trim().parse::<f64>().ok())
        .map(|s| s * 1000.0)
}

/// Runs the Python `script` that writes this test's captures into `dir`.
fn write_captures(script: &str, dir: &Path) {
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .status()
        .expect("python3");
    assert!(status.success(), "the capture-writing script failed");
}

/// Asserts netpulse's per-protocol packets and bytes equal tshark's `-z io,stat` on `file`.
fn assert_protocols_equal(ours: &Value, file: &Path, tshark_opts: &[&str], what: &str) {
    let mut args = vec!["-r", file.to_str().expect("utf-8")];
    args.extend(tshark_opts);
    args.extend([
        "-q",
        "-z",
        "io,stat,0,eth,arp,ip,ipv6,tcp,udp,icmp || icmpv6",
    ]);
    let io = tshark(&args);
    let row = io
        .lines()
        .find(|l| l.contains("<>"))
        .expect("an io,stat row");
    let cells: Vec<u64> = row
        .split('|')
        .skip(2)
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let names = ["ethernet", "arp", "ipv4", "ipv6", "tcp", "udp", "icmp"];
    assert_eq!(cells.len(), names.len() * 2, "{row}");
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            (
                ours["protocols"][name]["packets"].as_u64(),
                ours["protocols"][name]["bytes"].as_u64()
            ),
            (Some(cells[2 * i]), Some(cells[2 * i + 1])),
            "{what} {name}: netpulse vs tshark"
        );
    }
}

fn report(file: &Path, extra: &[&str]) -> (Value, std::process::Output) {
    let mut args = vec![
        "capture",
        "-r",
        file.to_str().expect("utf-8"),
        "--json",
        "--interval",
        "0s",
    ];
    args.extend(extra);
    let out = common::netpulse(&args);
    let lines = common::json_lines(&out);
    let report = lines
        .into_iter()
        .find(|v| v["type"] == "report")
        .unwrap_or_else(|| panic!("no report: {}", common::stderr(&out)));
    (report, out)
}

#[test]
fn protocol_counts_conversations_and_handshake_rtts_equal_tsharks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = gen_pcap(dir.path(), 30_000);
    let flows_csv = dir.path().join("flows.csv");
    let (ours, out) = report(&pcap, &["--flows", flows_csv.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", common::stderr(&out));

    let p = pcap.to_str().expect("utf-8");
    assert_protocols_equal(&ours, &pcap, &[], "lab.pcap");

    let (tcp, udp) = tshark_conversations(&pcap);
    assert_eq!(ours["tcp_conversations"].as_u64(), Some(tcp));
    assert_eq!(ours["udp_conversations"].as_u64(), Some(udp));

    // Handshake RTT per flow against tcp.analysis.initial_rtt.
    let fields = tshark(&[
        "-r",
        p,
        "-Y",
        "tcp.analysis.initial_rtt",
        "-T",
        "fields",
        "-e",
        "ip.src",
        "-e",
        "tcp.srcport",
        "-e",
        "ip.dst",
        "-e",
        "tcp.dstport",
        "-e",
        "tcp.analysis.initial_rtt",
    ]);
    let key = |a: &str, b: &str| {
        let mut v = [a.to_string(), b.to_string()];
        v.sort();
        format!("{}|{}", v[0], v[1])
    };
    let mut theirs: HashMap<String, f64> = HashMap::new();
    for l in fields.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() == 5 {
            if let Ok(rtt) = f[4].trim().parse::<f64>() {
                theirs
                    .entry(key(
                        &format!("{}:{}", f[0], f[1]),
                        &format!("{}:{}", f[2], f[3]),
                    ))
                    .or_insert(rtt);
            }
        }
    }
    let csv = std::fs::read_to_string(&flows_csv).expect("flows csv");
    let mut compared = 0;
    for l in csv.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f[0] != "tcp" || f[11].is_empty() {
            continue;
        }
        let ours_s: f64 = f[11].parse::<f64>().expect("ms") / 1000.0;
        let theirs_s = theirs
            .get(&key(f[1], f[2]))
            .unwrap_or_else(|| panic!("tshark has no RTT for {l}"));
        assert!((ours_s - theirs_s).abs() < 1e-6, "{l}: tshark {theirs_s}");
        compared += 1;
    }
    assert_eq!(compared, theirs.len(), "every tshark handshake has ours");
    assert!(compared > 1000, "{compared}");
}

#[test]
fn a_truncated_file_reports_up_to_the_damage_and_names_the_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = gen_pcap(dir.path(), 2_000);
    let bytes = std::fs::read(&pcap).expect("read");
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let (whole, _) = report(&pcap, &[]);
    let (part, out) = report(&cut, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("truncated pcap") && err.contains("at byte "),
        "{err}"
    );
    let (n, total) = (
        part["packets"].as_u64().expect("n"),
        whole["packets"].as_u64().expect("n"),
    );
    assert!(n > 0 && n < total, "{n} of {total}");

    // gzip-compressed: the same report as the plain file.
    let gz = dir.path().join("lab.pcap.gz");
    let status = Command::new("python3")
        .args(["-c", "import gzip,sys; open(sys.argv[2],'wb').write(gzip.compress(open(sys.argv[1],'rb').read()))"])
        .arg(&pcap)
        .arg(&gz)
        .status()
        .expect("python gzip");
    assert!(status.success());
    let (zipped, out) = report(&gz, &[]);
    assert!(out.status.success());
    assert_eq!(zipped["protocols"], whole["protocols"]);

    // Not a capture at all.
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"hello, world").expect("write");
    let out = common::netpulse(&["capture", "-r", junk.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("not a pcap or pcapng file"));

    // Empty, and a BPF filter on a file: said, never silently read whole.
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").expect("write");
    let out = common::netpulse(&["capture", "-r", empty.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("empty: not a single byte to read"));
    let out = common::netpulse(&["capture", "-r", gz.to_str().expect("utf-8"), "-f", "tcp"]);
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("applies to live capture") && err.contains("tcpdump -r"),
        "{err}"
    );
}

/// Hand-built edge cases, one file per link type: VLAN and QinQ, ARP, IPv4 options and
/// fragments, IPv6 extension headers and fragments, ICMP/ICMPv6, other protocols, snaplen-cut
/// and cut-short headers; Linux cooked (SLL), raw IP and BSD loopback link types.
const EDGE_CASES: &str = r#"
import struct, sys, os
out = sys.argv[1]
def pcap(name, linktype, frames):
    with open(os.path.join(out, name), "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, linktype))
        for i, fr in enumerate(frames):
            data, orig = (fr, len(fr)) if isinstance(fr, bytes) else fr
            f.write(struct.pack("<IIII", 1700000000 + i, 1000 * i, len(data), orig))
            f.write(data)
def ip4(proto, payload, frag=0x4000, opts=b"", ident=1):
    ihl = 5 + len(opts) // 4
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), ident, frag, 64, proto, 0,
                       bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + opts + payload
def ip6(nh, payload, ext=b""):
    return struct.pack("!IHBB", 0x60000000, len(ext) + len(payload), nh, 64) + bytes(15) + b"\x01" + bytes(15) + b"\x02" + ext + payload
tcp = lambda flags=0x10, data=b"": struct.pack("!HHIIBBHHH", 40000, 443, 1, 1, 0x50, flags, 1000, 0, 0) + data
udp = lambda data=b"x" * 12: struct.pack("!HHHH", 5353, 53, 8 + len(data), 0) + data
icmp = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"ping"
eth = lambda et, p: b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + struct.pack("!H", et) + p
vlan = lambda tpid, vid, et, p: b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + struct.pack("!HHH", tpid, vid, et) + p
arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + bytes(20)
frames = [
    eth(0x0800, ip4(6, tcp(0x02))),
    vlan(0x8100, 5, 0x0800, ip4(6, tcp(0x18, b"hello"))),
    b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + struct.pack("!HHHHH", 0x88a8, 7, 0x8100, 9, 0x0800) + ip4(17, udp()),
    eth(0x0806, arp),
    eth(0x0800, ip4(1, icmp)),
    eth(0x0800, ip4(6, tcp(0x10, b"opts"), opts=b"\x01\x01\x01\x00")),
    eth(0x0800, ip4(6, tcp(0x18, b"A" * 32), frag=0x2000, ident=9)),
    eth(0x0800, ip4(6, b"B" * 40, frag=0x0005, ident=9)),
    eth(0x86dd, ip6(0, udp(), ext=bytes([17, 0, 1, 4, 0, 0, 0, 0]))),
    eth(0x86dd, ip6(44, udp(), ext=bytes([17, 0, 0, 1, 0, 0, 0, 7]))),
    eth(0x86dd, ip6(44, b"C" * 24, ext=bytes([17, 0, 0, 0x19, 0, 0, 0, 7]))),
    eth(0x86dd, ip6(58, struct.pack("!BBHI", 128, 0, 0, 0) + b"v6")),
    eth(0x0800, ip4(47, b"\x00\x00\x08\x00" + bytes(20))),
    eth(0x88cc, bytes(30)),
    (eth(0x0800, ip4(6, tcp(0x18, b"D" * 100)))[:40], 154),
    (eth(0x0800, ip4(17, udp(b"E" * 50)))[:20], 92),
    eth(0x0800, ip4(6, tcp(0x11))),
]
pcap("ethernet.pcap", 1, frames)
sll = lambda p, et=0x0800: struct.pack("!HHH", 0, 1, 6) + b"\x02\x00\x00\x00\x00\x09\x00\x00" + struct.pack("!H", et) + p
pcap("sll.pcap", 113, [sll(ip4(6, tcp(0x02))), sll(ip4(17, udp())), sll(ip6(17, udp()), 0x86dd), sll(arp, 0x0806)])
pcap("raw.pcap", 101, [ip4(6, tcp(0x02)), ip6(17, udp()), ip4(1, icmp)])
pcap("null.pcap", 0, [struct.pack("<I", 2) + ip4(6, tcp(0x02)), struct.pack("<I", 2) + ip4(17, udp())])
"#;

#[test]
fn edge_case_captures_count_like_tshark() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_captures(EDGE_CASES, dir.path());
    for file in ["ethernet.pcap", "sll.pcap", "raw.pcap", "null.pcap"] {
        let path = dir.path().join(file);
        let (ours, out) = report(&path, &[]);
        assert!(out.status.success(), "{file}: {}", common::stderr(&out));
        // Reassembly off: each fragment is counted as itself, as netpulse does.
        let no_reassembly = ["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"];
        assert_protocols_equal(&ours, &path, &no_reassembly, file);
    }
    // The cut-short headers are reported, not fatal.
    let (ours, _) = report(&dir.path().join("ethernet.pcap"), &[]);
    assert_eq!(
        ours["malformed"]["short or bad TCP header"], 1,
        "{}",
        ours["malformed"]
    );
    assert_eq!(
        ours["malformed"]["short or bad IPv4 header"], 1,
        "{}",
        ours["malformed"]
    );
}

/// Namespaces A and B joined by a veth pair, IPv6 off; A has a neighbour entry for 10.N.0.99 at
/// a MAC nobody has, so datagrams sent there reach B's interface and nothing answers.
fn veth_pair() -> Option<(common::Netns, common::Netns, String)> {
    let a = common::Netns::new()?;
    let b = common::Netns::new()?;
    let dev_b = format!("{}c", b.name);
    for ns in [&a, &b] {
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    }
    a.exec(&[
        "ip", "link", "add", "ca0", "type", "veth", "peer", "name", &dev_b, "netns", &b.name,
    ]);
    a.exec(&["ip", "addr", "add", "10.251.0.1/24", "dev", "ca0"]);
    a.exec(&["ip", "link", "set", "ca0", "up"]);
    a.exec(&[
        "ip",
        "neigh",
        "add",
        "10.251.0.99",
        "lladdr",
        "02:00:00:00:00:99",
        "dev",
        "ca0",
        "nud",
        "permanent",
    ]);
    b.exec(&["ip", "link", "set", &dev_b, "up"]);
    Some((a, b, dev_b))
}

/// `netpulse capture ARGS` in namespace `ns`, once it says it is capturing: the child, that
/// first stderr line, and the rest of stderr (kept open: the capture reports on it at the end).
fn start_live(
    ns: &str,
    args: &[&str],
) -> (
    std::process::Child,
    String,
    std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
) {
    use std::io::{BufRead, BufReader};
    let mut cap = Command::new("ip")
        .args(["netns", "exec", ns, common::bin(), "capture"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start capture");
    let mut err = BufReader::new(cap.stderr.take().expect("stderr")).lines();
    let ready = err.next().and_then(Result::ok).unwrap_or_default();
    assert!(ready.contains("capturing on"), "{ready}");
    (cap, ready, err)
}

#[test]
fn live_capture_with_a_filter_counts_exactly_what_was_sent() {
    let Some((a, b, dev_b)) = veth_pair() else {
        return;
    };
    const N: u64 = 2000;
    let (cap, _, _err) = start_live(
        &b.name,
        &[
            "-i",
            &dev_b,
            "-f",
            "udp port 9999",
            "-c",
            &N.to_string(),
            "--json",
            "--interval",
            "0s",
        ],
    );
    // Other traffic the filter must not count: port 9998.
    let script = format!(
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for i in range({N}):\n    s.sendto(b'x' * 100, ('10.251.0.99', 9999)); s.sendto(b'y' * 10, ('10.251.0.99', 9998))"
    );
    let sent = a.exec(&["python3", "-c", &script]);
    assert!(sent.status.success());
    let out = cap
        .wait_with_output()
        .expect("capture ends after -c packets");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let report = common::json_lines(&out)
        .into_iter()
        .find(|v| v["type"] == "report")
        .expect("report");
    assert_eq!(report["packets"], N);
    assert_eq!(report["protocols"]["udp"]["packets"], N);
    // 100 B payload + 8 UDP + 20 IPv4 + 14 Ethernet.
    assert_eq!(report["protocols"]["udp"]["bytes"], N * 142);
    assert_eq!(report["udp_conversations"], 1);
}

#[test]
fn live_capture_without_privilege_names_the_setcap_fix() {
    let Some(ns) = common::Netns::new() else {
        return;
    };
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "setpriv",
            "--inh-caps=-all",
            "--bounding-set=-net_raw,-net_admin",
        ])
        .arg(common::bin())
        .args(["capture", "-i", "lo", "-c", "1"])
        .output()
        .expect("run without CAP_NET_RAW");
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("permission denied") && err.contains("setcap cap_net_raw"),
        "{err}"
    );
    let out = common::netpulse_in(&ns.name, &["capture", "-i", "nosuch0", "-c", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("nosuch0"),
        "{}",
        common::stderr(&out)
    );
    let out = common::netpulse_in(
        &ns.name,
        &["capture", "-i", "lo", "-f", "tcp port", "-c", "1"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("bad capture filter \"tcp port\""),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn record_stores_protocol_seconds_and_flows_and_log_has_a_line_per_packet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = gen_pcap(dir.path(), 5_000);
    let db = dir.path().join("cap.db");
    let log = dir.path().join("packets.log");
    let record = format!("--record={}", db.display());
    let (ours, out) = report(&pcap, &[&record, "--log", log.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let conn = rusqlite::Connection::open(&db).expect("db");
    let (tcp_packets, tcp_bytes): (i64, i64) = conn
        .query_row(
            "SELECT sum(packets), sum(bytes) FROM capture_1s WHERE protocol = 'tcp'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("sums");
    assert_eq!(
        Some(tcp_packets as u64),
        ours["protocols"]["tcp"]["packets"].as_u64()
    );
    assert_eq!(
        Some(tcp_bytes as u64),
        ours["protocols"]["tcp"]["bytes"].as_u64()
    );
    let flows: i64 = conn
        .query_row("SELECT count(*) FROM capture_flows", [], |r| r.get(0))
        .expect("flows");
    let conversations = ours["tcp_conversations"].as_u64().unwrap_or(0)
        + ours["udp_conversations"].as_u64().unwrap_or(0);
    assert_eq!(flows as u64, conversations);
    let handshakes: i64 = conn
        .query_row(
            "SELECT count(*) FROM capture_flows WHERE syn_to_synack_us IS NOT NULL AND synack_to_ack_us IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .expect("handshakes");
    assert_eq!(
        Some(handshakes as u64),
        ours["rtt"]["tcp_handshake"]["count"].as_u64()
    );
    let lines = std::fs::read_to_string(&log).expect("log");
    assert_eq!(
        lines.lines().count() as u64,
        ours["packets"].as_u64().expect("packets")
    );
    let first = lines.lines().next().expect("a line");
    assert!(
        first.contains(" TCP ") && first.contains(" > ") && first.contains("[S]"),
        "{first}"
    );
    // The recorded capture charts: throughput per protocol over capture time, protocol bars.
    let charts = dir.path().join("charts");
    let out = common::netpulse(&[
        "report",
        "--db",
        db.to_str().expect("utf-8"),
        "--charts",
        charts.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let bars = std::fs::read_to_string(charts.join("capture-protocols.svg")).expect("bars");
    assert!(bars.contains("\ntcp\n</text>") && bars.contains("\nudp\n</text>"));
    let lines = std::fs::read_to_string(charts.join("capture-throughput.svg")).expect("lines");
    assert!(lines.contains("throughput per protocol") && lines.contains("<polyline"));
    assert!(charts.join("capture-throughput.png").is_file());
}

#[test]
fn ctrl_c_ends_an_idle_live_capture_with_its_report() {
    let Some(ns) = common::Netns::new() else {
        return;
    };
    let (cap, ready, _err) = start_live(&ns.name, &["-i", "lo", "--json"]);
    assert!(ready.contains("capturing on lo"), "{ready}");
    // Nothing arrives; Ctrl-C must still end it, with the (empty) report.
    assert!(Command::new("kill")
        .args(["-INT", &cap.id().to_string()])
        .status()
        .expect("kill")
        .success());
    let out = cap.wait_with_output().expect("wait");
    assert!(out.status.success());
    let report = common::json_lines(&out)
        .into_iter()
        .find(|v| v["type"] == "report")
        .expect("report");
    assert_eq!(report["packets"], 0);
}

/// A pcap of ARP requests and a reply, written here.
fn arp_pcap(dir: &Path) -> PathBuf {
    let script = r#"
import struct, sys, os
def mac(s): return bytes(int(x, 16) for x in s.split(':'))
def ip(s): return bytes(int(x) for x in s.split('.'))
def arp(op, smac, sip, tmac, tip, dst, htype=1):
    body = struct.pack('>HHBBH', htype, 0x0800, 6, 4, op) + mac(smac) + ip(sip) + mac(tmac) + ip(tip)
    return mac(dst) + mac(smac) + b'\x08\x06' + body + b'\x00' * 18
frames = [
    arp(1, '02:00:00:00:00:01', '10.0.0.1', '00:00:00:00:00:00', '10.0.0.2', 'ff:ff:ff:ff:ff:ff'),
    arp(2, '02:00:00:00:00:02', '10.0.0.2', '02:00:00:00:00:01', '10.0.0.1', '02:00:00:00:00:01'),
    arp(1, '02:00:00:00:00:03', '10.0.0.3', '00:00:00:00:00:00', '10.0.0.9', 'ff:ff:ff:ff:ff:ff'),
]
with open(os.path.join(sys.argv[1], 'arp.pcap'), 'wb') as f:
    f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i, fr in enumerate(frames):
        f.write(struct.pack('<IIII', 1700000000, i, len(fr), len(fr)) + fr)
"#;
    write_captures(script, dir);
    dir.join("arp.pcap")
}

/// Seed 004's packet log: every line carries the MAC addresses, and ARP lines their
/// addresses — the same tshark reads from the same file.
#[test]
fn the_packet_log_has_macs_and_arp_addresses_as_tshark_reads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = arp_pcap(dir.path());
    let log = dir.path().join("packets.log");
    let (_, out) = report(&pcap, &["--log", log.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let ours: Vec<String> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(str::to_string)
        .collect();
    let theirs = tshark(&[
        "-r",
        pcap.to_str().expect("utf-8"),
        "-T",
        "fields",
        "-e",
        "eth.src",
        "-e",
        "eth.dst",
        "-e",
        "arp.opcode",
        "-e",
        "arp.src.hw_mac",
        "-e",
        "arp.src.proto_ipv4",
        "-e",
        "arp.dst.proto_ipv4",
    ]);
    let theirs: Vec<Vec<&str>> = theirs.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(ours.len(), theirs.len());
    for (line, t) in ours.iter().zip(&theirs) {
        assert!(
            line.contains(&format!("{} > {}, ", t[0], t[1])),
            "{line} vs {t:?}"
        );
        let said = match t[2] {
            "1" => format!("ARP who-has {} tell {} ({})", t[5], t[4], t[3]),
            _ => format!("ARP {} is-at {}", t[4], t[3]),
        };
        assert!(line.contains(&said), "{line} vs {said}");
    }
}

/// `capture --charts DIR` draws seed 004's charts when the capture ends, with no database;
/// the text output has each protocol's throughput per interval.
#[test]
fn capture_charts_and_per_protocol_throughput_per_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = gen_pcap(dir.path(), 3_000);
    let charts = dir.path().join("charts");
    let out = common::netpulse(&[
        "capture",
        "-r",
        pcap.to_str().expect("utf-8"),
        "--interval",
        "10ms",
        "--charts",
        charts.to_str().expect("utf-8"),
    ]);
    if common::stderr(&out).contains("no font for chart text") {
        common::skip("no DejaVu font (`.ci/run` installs fonts-dejavu-core)");
        return;
    }
    assert!(out.status.success(), "{}", common::stderr(&out));
    for name in [
        "capture-throughput",
        "capture-protocols",
        "capture-handshake-rtt",
    ] {
        for ext in ["svg", "png"] {
            let f = charts.join(format!("{name}.{ext}"));
            assert!(
                std::fs::metadata(&f).is_ok_and(|m| m.len() > 1000),
                "{} missing or empty",
                f.display()
            );
        }
    }
    let svg = std::fs::read_to_string(charts.join("capture-protocols.svg")).expect("svg");
    assert!(
        svg.contains("unique IPs"),
        "the protocol chart names the unique counts"
    );
    let text = common::stdout(&out);
    let interval = text
        .lines()
        .find(|l| l.contains(" pkts ") && l.contains("tcp "))
        .unwrap_or_else(|| panic!("no interval line: {text}"));
    assert!(
        interval.contains("tcp ") && interval.contains("bit/s · udp "),
        "{interval}"
    );
}

/// Live capture needs CAP_NET_RAW and nothing more: an unprivileged user with only that
/// capability captures; without it the hint names exactly that capability.
#[test]
fn cap_net_raw_alone_is_enough_to_capture_and_the_hint_says_so() {
    let Some(ns) = common::Netns::new() else {
        return;
    };
    let as_nobody = |caps: &[&str], args: &[&str]| {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &ns.name,
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
        ]);
        c.arg("--clear-groups");
        c.args(caps);
        c.arg(common::bin());
        c.args(args);
        c
    };
    let denied = as_nobody(&[], &["capture", "-i", "lo", "-c", "1"])
        .output()
        .expect("setpriv (util-linux)");
    let said = common::stderr(&denied);
    assert_eq!(denied.status.code(), Some(2), "{said}");
    assert!(said.contains("setcap cap_net_raw=eip"), "{said}");
    assert!(!said.contains("cap_net_admin"), "{said}");
    // With CAP_NET_RAW only: a packet is captured (pings keep coming until it is).
    let capture = as_nobody(
        &["--inh-caps=+net_raw", "--ambient-caps=+net_raw"],
        &["capture", "-i", "lo", "-c", "1", "--json"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("start capture");
    let pings = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "ping",
            "-q",
            "-i",
            "0.2",
            "127.0.0.1",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ping");
    let _pings = common::Reaped(pings);
    let out = capture.wait_with_output().expect("capture");
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        common::stdout(&out).contains("\"packets\":1"),
        "{}",
        common::stdout(&out)
    );
}

/// A capture-only session's report says what it holds (not "sent 0 … avg RTT - ms"), and a
/// capture without packets has no times (not 1970).
#[test]
fn capture_only_reports_and_empty_captures_say_what_they_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = gen_pcap(dir.path(), 500);
    let db = dir.path().join("cap.db");
    let record = format!("--record={}", db.display());
    let (_, out) = report(&pcap, &[&record]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let out = common::netpulse(&["report", "--db", db.to_str().expect("utf-8")]);
    let text = common::stdout(&out);
    assert!(text.contains("no probes recorded here"), "{text}");
    assert!(!text.contains("sent 0"), "{text}");
    assert!(
        text.contains("No probes here, but a capture") && text.contains("tcp "),
        "{text}"
    );
    // A pcap header and no packet.
    let empty = dir.path().join("empty.pcap");
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    header.extend([0u8; 8]);
    header.extend([0xff, 0xff, 0, 0, 1, 0, 0, 0]);
    std::fs::write(&empty, header).expect("pcap");
    let (ours, out) = report(&empty, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(ours["packets"], 0);
    assert!(ours["first"].is_null() && ours["last"].is_null(), "{ours}");
    let out = common::netpulse(&["capture", "-r", empty.to_str().expect("utf-8")]);
    let text = common::stdout(&out);
    assert!(
        text.contains("no packets") && !text.contains("1970"),
        "{text}"
    );
}

/// Handshakes as real captures have them, each against tshark on the same file: a SYN sent
/// again (the RTT runs from the last one; counted as a retry), SYN → RST → new SYN on the same
/// 4-tuple (two conversations), four refused SYNs with new ISNs then a connection (five), a
/// client-side-only capture, a SYN/ACK stamped 21 years before its SYN (the RTT is ACK − SYN,
/// never a sum with a negative half), and a retransmitted data segment (Karn: no sample).
const HANDSHAKES: &str = r#"
import struct, sys, os
out = sys.argv[1]
def ip4(src, dst, proto, payload):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0,
                       bytes(src), bytes(dst)) + payload
def tcp(sport, dport, seq, ack, flags, data=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0) + data
C, S = [10, 0, 0, 1], [10, 0, 0, 2]
eth_cs = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
eth_sc = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
SYN, SYNACK, ACK, RSTACK, PSHACK = 0x02, 0x12, 0x10, 0x14, 0x18
pk = []  # (time_ns, frame)
def c2s(t, sp, seq, ack, fl, data=b""): pk.append((t, eth_cs + ip4(C, S, 6, tcp(sp, 80, seq, ack, fl, data))))
def s2c(t, sp, seq, ack, fl, data=b""): pk.append((t, eth_sc + ip4(S, C, 6, tcp(80, sp, seq, ack, fl, data))))
T = 1700000000 * 10**9
ms, us = 10**6, 10**3
# A: a SYN retransmitted after 1 s, then the handshake (RTT from the last SYN: 3 us)
c2s(T, 40001, 1000, 0, SYN); c2s(T + 1000 * ms, 40001, 1000, 0, SYN)
s2c(T + 1000 * ms + 1 * us, 40001, 5000, 1001, SYNACK); c2s(T + 1000 * ms + 3 * us, 40001, 1001, 5001, ACK)
# B: SYN -> RST -> new SYN (new ISN) -> handshake: two conversations, RTT 2.2 ms for the second
c2s(T + 2000 * ms, 40002, 2000, 0, SYN); s2c(T + 2001 * ms, 40002, 0, 2001, RSTACK)
c2s(T + 2500 * ms, 40002, 3000, 0, SYN); s2c(T + 2501 * ms, 40002, 7000, 3001, SYNACK)
c2s(T + 2502 * ms + 200 * us, 40002, 3001, 7001, ACK)
# C: four SYNs with new ISNs, each refused, then one that connects
for i in range(4):
    c2s(T + (3000 + 100 * i) * ms, 40003, 10000 + i * 1000, 0, SYN)
    s2c(T + (3000 + 100 * i) * ms + 300 * us, 40003, 0, 10001 + i * 1000, RSTACK)
c2s(T + 3500 * ms, 40003, 20000, 0, SYN); s2c(T + 3500 * ms + 400 * us, 40003, 9000, 20001, SYNACK)
c2s(T + 3500 * ms + 900 * us, 40003, 20001, 9001, ACK)
# D: client-side only: SYN, then the client's ACK (the SYN/ACK not captured): RTT 10 ms
c2s(T + 4000 * ms, 40004, 4000, 0, SYN); c2s(T + 4010 * ms, 40004, 4001, 9001, ACK)
# E: a SYN/ACK stamped 21 years before its SYN (a damaged file): RTT = ACK - SYN = 3 ms
c2s(T + 5000 * ms, 40005, 5000, 0, SYN); s2c(T + 5001 * ms - 21 * 365 * 86400 * 10**9, 40005, 6000, 5001, SYNACK)
c2s(T + 5003 * ms, 40005, 5001, 6001, ACK)
# F: a normal connection with data and a retransmitted data segment (Karn: no sample from it)
c2s(T + 6000 * ms, 40006, 100, 0, SYN); s2c(T + 6001 * ms, 40006, 900, 101, SYNACK); c2s(T + 6002 * ms, 40006, 101, 901, ACK)
c2s(T + 6003 * ms, 40006, 101, 901, PSHACK, b"x" * 10); c2s(T + 6503 * ms, 40006, 101, 901, PSHACK, b"x" * 10)
s2c(T + 6504 * ms, 40006, 901, 111, ACK)
with open(os.path.join(out, "handshakes.pcap"), "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b23c4d, 2, 4, 0, 0, 65535, 1))  # nanosecond pcap
    for t, fr in pk:
        f.write(struct.pack("<IIII", t // 10**9, t % 10**9, len(fr), len(fr)) + fr)
"#;

#[test]
fn handshake_rtts_and_conversations_on_awkward_handshakes_equal_tsharks() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_captures(HANDSHAKES, dir.path());
    let pcap = dir.path().join("handshakes.pcap");
    let p = pcap.to_str().expect("utf-8");
    let flows_csv = dir.path().join("flows.csv");
    let (ours, out) = report(&pcap, &["--flows", flows_csv.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    // tshark: per stream, its 4-tuple and its initial RTT (the first value shown).
    let fields = tshark(&[
        "-r",
        p,
        "-T",
        "fields",
        "-e",
        "tcp.stream",
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.dstport",
        "-e",
        "tcp.analysis.initial_rtt",
    ]);
    let mut streams: std::collections::BTreeMap<u32, (u16, Option<f64>)> = Default::default();
    for l in fields.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let (Some(Ok(stream)), Some(Ok(sp)), Some(Ok(dp))) = (
            f.first().map(|v| v.parse::<u32>()),
            f.get(1).map(|v| v.parse::<u16>()),
            f.get(2).map(|v| v.parse::<u16>()),
        ) else {
            continue;
        };
        let e = streams
            .entry(stream)
            .or_insert((sp.max(dp).min(sp.min(dp).max(40000)), None));
        e.0 = if sp >= 40000 { sp } else { dp };
        if e.1.is_none() {
            e.1 = f.get(3).and_then(|v| v.trim().parse::<f64>().ok());
        }
    }
    // Ours: per flow in order of its first packet.
    let csv = std::fs::read_to_string(&flows_csv).expect("flows csv");
    let mut flows: Vec<(String, u16, Option<f64>)> = csv
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let port = f.get(1)?.rsplit(':').next()?.parse::<u16>().ok()?;
            let rtt = f
                .get(11)
                .and_then(|v| v.parse::<f64>().ok())
                .map(|ms| ms / 1000.0);
            Some((f.get(3)?.to_string(), port, rtt))
        })
        .collect();
    flows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    assert_eq!(
        ours["tcp_conversations"].as_u64(),
        Some(streams.len() as u64),
        "{csv}"
    );
    // Stream by stream, in tshark's order per client port.
    for port in [40001u16, 40002, 40003, 40004, 40005, 40006] {
        let theirs: Vec<Option<f64>> = streams
            .values()
            .filter(|s| s.0 == port)
            .map(|s| s.1)
            .collect();
        let mine: Vec<Option<f64>> = flows.iter().filter(|f| f.1 == port).map(|f| f.2).collect();
        assert_eq!(mine.len(), theirs.len(), "port {port}: {csv}");
        for (m, t) in mine.iter().zip(&theirs) {
            match (m, t) {
                (Some(m), Some(t)) => assert!((m - t).abs() < 1e-6, "port {port}: {m} vs {t}"),
                (None, None) => {}
                _ => panic!("port {port}: ours {mine:?}, tshark {theirs:?}"),
            }
        }
    }
    assert_eq!(ours["syn_retransmits"], 1, "the one SYN sent again");
    // Karn: the retransmitted segment gives no data→ACK sample.
    assert_eq!(ours["rtt"]["tcp_data"]["count"], 0, "{}", ours["rtt"]);
}

/// Segments captured before segmentation: IPv4 with total length 0 (TSO: the captured bytes are
/// the packet, as Wireshark presumes), an IPv6 jumbogram (RFC 2675: the length in a Jumbo
/// Payload option), and IPv6 with length 0 and no such option (malformed to Wireshark: nothing
/// above IPv6 decoded). Counted as tshark counts them.
const BIG_SEGMENTS: &str = r#"
import struct, sys, os
out = sys.argv[1]
def tcp(sp, dp, seq, ack, fl, data=b""):
    return struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 0x50, fl, 65535, 0, 0) + data
eth = lambda et, p: b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + struct.pack("!H", et) + p
def ip4(payload, total):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, 6, 0, bytes([10,0,0,1]), bytes([10,0,0,2])) + payload
def ip6(nh, plen, payload):
    return struct.pack("!IHBB", 0x60000000, plen, nh, 64) + bytes(15) + b"\x01" + bytes(15) + b"\x02" + payload
seg = tcp(40000, 443, 1, 1, 0x18, b"T" * 3000)          # a TSO segment: IPv4 total length 0
big = tcp(40001, 443, 1, 1, 0x18, b"J" * 70000)          # a jumbogram
hbh = bytes([6, 0, 0xc2, 4]) + struct.pack("!I", 8 + len(big))
gso6 = tcp(40002, 443, 1, 1, 0x18, b"G" * 3000)          # IPv6 GSO: payload length 0, no option
frames = [eth(0x0800, ip4(seg, 0)), eth(0x86dd, ip6(0, 0, hbh + big)), eth(0x86dd, ip6(6, 0, gso6)),
          eth(0x0800, ip4(tcp(40000, 443, 3001, 1, 0x10), 40))]
with open(os.path.join(out, "big.pcap"), "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
    for i, fr in enumerate(frames):
        f.write(struct.pack("<IIII", 1700000000 + i, 0, len(fr), len(fr)) + fr)
"#;

#[test]
fn tso_segments_and_jumbograms_count_like_tshark() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_captures(BIG_SEGMENTS, dir.path());
    let pcap = dir.path().join("big.pcap");
    let (ours, out) = report(&pcap, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_protocols_equal(&ours, &pcap, &[], "big.pcap");
    let (theirs, _) = tshark_conversations(&pcap);
    assert_eq!(ours["tcp_conversations"].as_u64(), Some(theirs));
    assert_eq!(
        ours["malformed"]["short IPv6 header"], 1,
        "{}",
        ours["malformed"]
    );
}

/// Conversations are counted as tshark counts them; flows (NetFlow-style) are reported beside
/// them: a UDP pair and a TCP connection that each idle 200 s are one conversation each and
/// two flows each.
#[test]
fn conversations_count_like_tshark_and_flows_are_reported_beside_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = r#"
import struct, sys, os
def ip4(proto, payload):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0, bytes([10,0,0,1]), bytes([10,0,0,2])) + payload
eth = lambda p: b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + p
udp = eth(ip4(17, struct.pack("!HHHH", 5000, 53, 12, 0) + b"abcd"))
tcp = lambda seq, fl: eth(ip4(6, struct.pack("!HHIIBBHHH", 40000, 443, seq, 1, 0x50, fl, 65535, 0, 0) + b"data"))
frames = [(0, udp), (1, tcp(1, 0x18)), (200, udp), (201, tcp(5, 0x18))]
with open(os.path.join(sys.argv[1], "idle.pcap"), "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for t, fr in frames:
        f.write(struct.pack("<IIII", 1700000000 + t, 0, len(fr), len(fr)) + fr)
"#;
    write_captures(script, dir.path());
    let pcap = dir.path().join("idle.pcap");
    let (ours, out) = report(&pcap, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let (tcp, udp) = tshark_conversations(&pcap);
    assert_eq!(
        (
            ours["tcp_conversations"].as_u64(),
            ours["udp_conversations"].as_u64()
        ),
        (Some(tcp), Some(udp))
    );
    assert_eq!((tcp, udp), (1, 1));
    assert_eq!(
        (ours["tcp_flows"].as_u64(), ours["udp_flows"].as_u64()),
        (Some(2), Some(2)),
        "each idled past 120 s: two flows"
    );
}

/// A live capture has nanosecond timestamps (libpcap asked for them, and asked what it gives):
/// on a veth, the packet log's times have digits below the microsecond.
#[test]
fn live_capture_timestamps_are_nanoseconds() {
    let Some((a, b, dev_b)) = veth_pair() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("packets.log");
    let (cap, _, _err) = start_live(
        &b.name,
        &[
            "-i",
            &dev_b,
            "-f",
            "udp port 9999",
            "-c",
            "20",
            "--log",
            log.to_str().expect("utf-8"),
        ],
    );
    let script = "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  for i in range(20):\n    s.sendto(b'x', ('10.251.0.99', 9999))";
    assert!(a.exec(&["python3", "-c", script]).status.success());
    let out = cap
        .wait_with_output()
        .expect("capture ends after -c packets");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = std::fs::read_to_string(&log).expect("log");
    let fractions: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|t| t.split('.').nth(1))
        .map(|f| f.trim_end_matches('Z'))
        .collect();
    assert_eq!(fractions.len(), 20, "{text}");
    assert!(fractions.iter().all(|f| f.len() == 9), "{text}");
    // Twenty microsecond stamps would all end in 000.
    assert!(fractions.iter().any(|f| !f.ends_with("000")), "{text}");
}

/// pcapng's `if_tsoffset` (seconds added to an interface's timestamps) is honoured: the times
/// are tshark's.
const TSOFFSET: &str = r#"
import struct, sys, os
def block(kind, body):
    pad = (4 - len(body) % 4) % 4
    body = body + b"\0" * pad
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)
shb = block(0x0a0d0d0a, struct.pack("<IHHq", 0x1a2b3c4d, 1, 0, -1))
opts = struct.pack("<HHq", 14, 8, 1700000000) + struct.pack("<HH", 0, 0)
idb = block(1, struct.pack("<HHI", 1, 0, 0) + opts)
frame = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x06" + bytes(28)
def epb(ts_us):
    return block(6, struct.pack("<IIIII", 0, ts_us >> 32, ts_us & 0xffffffff, len(frame), len(frame)) + frame)
with open(os.path.join(sys.argv[1], "tsoffset.pcapng"), "wb") as f:
    f.write(shb + idb + epb(1_500_000) + epb(2_250_000))
"#;

#[test]
fn pcapng_if_tsoffset_moves_the_times_as_tshark_reads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_captures(TSOFFSET, dir.path());
    let file = dir.path().join("tsoffset.pcapng");
    let (ours, out) = report(&file, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let theirs = tshark(&[
        "-r",
        file.to_str().expect("utf-8"),
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
    ]);
    let epochs: Vec<f64> = theirs
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let as_epoch = |v: &Value| {
        let t = humantime::parse_rfc3339(v.as_str().unwrap_or_default()).expect("a time");
        t.duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64()
    };
    assert_eq!(epochs.len(), 2, "{theirs}");
    assert!(
        (as_epoch(&ours["first"]) - epochs[0]).abs() < 1e-6,
        "{} vs {}",
        ours["first"],
        epochs[0]
    );
    assert!(
        (as_epoch(&ours["last"]) - epochs[1]).abs() < 1e-6,
        "{} vs {}",
        ours["last"],
        epochs[1]
    );
}

/// More link types, each counted as tshark counts it: PPP (with and without HDLC framing),
/// Cisco HDLC, Solaris ipnet, Linux NFLOG, and 802.11 with and without radiotap (LLC/SNAP to IP;
/// QoS data; a beacon with no packet).
const LINK_TYPES: &str = r#"
import struct, sys, os
out = sys.argv[1]
def pcap(name, linktype, frames):
    with open(os.path.join(out, name), "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, linktype))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(fr), len(fr)) + fr)
def ip4(proto, payload):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0, bytes([10,0,0,1]), bytes([10,0,0,2])) + payload
def ip6(nh, payload):
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, 64) + bytes(15) + b"\x01" + bytes(15) + b"\x02" + payload
tcp = struct.pack("!HHIIBBHHH", 40000, 443, 1, 1, 0x50, 0x18, 1000, 0, 0) + b"data"
udp = struct.pack("!HHHH", 5353, 53, 12, 0) + b"abcd"
pkts = [(0x0800, ip4(6, tcp)), (0x0800, ip4(17, udp)), (0x86dd, ip6(17, udp))]
ppp_proto = {0x0800: 0x0021, 0x86dd: 0x0057}
pcap("ppp.pcap", 9, [b"\xff\x03" + struct.pack("!H", ppp_proto[et]) + p for et, p in pkts])
pcap("ppp_hdlc.pcap", 50, [b"\xff\x03" + struct.pack("!H", ppp_proto[et]) + p for et, p in pkts])
pcap("chdlc.pcap", 104, [b"\x0f\x00" + struct.pack("!H", et) + p for et, p in pkts])
fam = {0x0800: 2, 0x86dd: 26}
pcap("ipnet.pcap", 226, [struct.pack("!BBHIIIII", 2, fam[et], 0, len(p), 1, 0, 0, 0) + p for et, p in pkts])
nfam = {0x0800: 2, 0x86dd: 10}
def nflog(et, p):
    prefix = b"netpulse\x00"
    tlv = lambda t, v: struct.pack("<HH", 4 + len(v), t) + v + b"\x00" * ((4 - (4 + len(v)) % 4) % 4)
    return struct.pack("!BBH", nfam[et], 0, 0) + tlv(10, prefix) + tlv(9, p)
pcap("nflog.pcap", 239, [nflog(et, p) for et, p in pkts])
A, B, AP = bytes([2,0,0,0,0,1]), bytes([2,0,0,0,0,2]), bytes([2,0,0,0,0,0xaa])
snap = lambda et: b"\xaa\xaa\x03\x00\x00\x00" + struct.pack("!H", et)
def wifi(et, p, qos=False):
    fc = 0x0108 if not qos else 0x0188   # data (or QoS data), ToDS
    hdr = struct.pack("<HH", fc, 0) + AP + A + B + struct.pack("<H", 0)
    if qos: hdr += b"\x00\x00"
    return hdr + snap(et) + p
beacon = struct.pack("<HH", 0x0080, 0) + b"\xff" * 6 + AP + AP + struct.pack("<H", 0) + bytes(12)
frames = [wifi(et, p, i == 1) for i, (et, p) in enumerate(pkts)] + [beacon]
pcap("wifi.pcap", 105, frames)
radiotap = struct.pack("<BBHI", 0, 0, 8, 0)
pcap("radiotap.pcap", 127, [radiotap + f for f in frames])
"#;

#[test]
fn more_link_types_count_like_tshark() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_captures(LINK_TYPES, dir.path());
    for file in [
        "ppp.pcap",
        "ppp_hdlc.pcap",
        "chdlc.pcap",
        "ipnet.pcap",
        "nflog.pcap",
        "wifi.pcap",
        "radiotap.pcap",
    ] {
        let path = dir.path().join(file);
        let (ours, out) = report(&path, &[]);
        assert!(out.status.success(), "{file}: {}", common::stderr(&out));
        assert_protocols_equal(&ours, &path, &[], file);
        assert_eq!(ours["malformed"], serde_json::json!({}), "{file}");
    }
}

/// Tunnels opened: VXLAN, Geneve, GRE (with a key), ERSPAN II, IP-in-IP and 6in4, MPLS (two
/// labels) and PPPoE, each carrying a TCP
/// handshake and a DNS query — protocols, conversations (outer and inner) and the inner
/// handshake RTT equal to tshark's; `--decap off` counts the outer headers only.
/// What the handshake captures share (Python): IPv4/IPv6/TCP/UDP/Ethernet builders, a TCP
/// handshake and a DNS query between 192.168.1.1 and .2 (`hs`), and `pcap(name, frames, lt)`.
const HANDSHAKE_PRELUDE: &str = r#"
import struct, sys, os
out = sys.argv[1]
def ip4(proto, payload, a=(10,0,0,1), b=(10,0,0,2)):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0, bytes(a), bytes(b)) + payload
def ip6(nh, payload):
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, 64) + bytes(15) + b"\x01" + bytes(15) + b"\x02" + payload
def tcp(sp, dp, seq, ack, fl, data=b""):
    return struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 0x50, fl, 65535, 0, 0) + data
def udp(sp, dp, data):
    return struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data
eth = lambda et, p: b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + struct.pack("!H", et) + p
ieth = lambda et, p: b"\x02\x00\x00\x00\x01\x02\x02\x00\x00\x00\x01\x01" + struct.pack("!H", et) + p
IA, IB = (192,168,1,1), (192,168,1,2)
# inner handshake 192.168.1.1:40000 -> 192.168.1.2:80
hs = [ip4(6, tcp(40000, 80, 100, 0, 0x02), IA, IB), ip4(6, tcp(80, 40000, 900, 101, 0x12), IB, IA),
      ip4(6, tcp(40000, 80, 101, 901, 0x10), IA, IB), ip4(17, udp(5353, 53, b"\x12\x34\x01\x00" + bytes(8)), IA, IB)]
def pcap(name, frames, lt=1):
    with open(os.path.join(out, name), "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, lt))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000, 1000 * i + (i % 4) * 100, len(fr), len(fr)) + fr)
"#;

/// Tunnels around the handshake (after [`HANDSHAKE_PRELUDE`]).
const TUNNELS: &str = r#"
vx = lambda inner: eth(0x0800, ip4(17, udp(49152, 4789, b"\x08\x00\x00\x00\x00\x00\x64\x00" + ieth(0x0800, inner))))
gn = lambda inner: eth(0x0800, ip4(17, udp(49153, 6081, struct.pack("!BBHI", 0, 0, 0x6558, 0x00006400) + ieth(0x0800, inner))))
gre = lambda inner: eth(0x0800, ip4(47, struct.pack("!HH", 0x2000, 0x0800) + struct.pack("!I", 7) + inner))
ipip = lambda inner: eth(0x0800, ip4(4, inner))
sixin4 = lambda: eth(0x0800, ip4(41, ip6(17, udp(1000, 2000, b"v6in4"))))
pcap("vxlan.pcap", [vx(p) for p in hs])
pcap("geneve.pcap", [gn(p) for p in hs])
pcap("gre.pcap", [gre(p) for p in hs])
pcap("ipip.pcap", [ipip(p) for p in hs] + [sixin4()])
mpls = lambda inner: eth(0x8847, struct.pack("!I", (16 << 12) | (0 << 9) | (0 << 8) | 64) + struct.pack("!I", (17 << 12) | (1 << 8) | 64) + inner)
pppoe = lambda inner: eth(0x8864, struct.pack("!BBHH", 0x11, 0, 0x0001, len(inner) + 2) + struct.pack("!H", 0x0021) + inner)
pcap("mpls.pcap", [mpls(p) for p in hs])
pcap("pppoe.pcap", [pppoe(p) for p in hs])
etag = lambda et, p: b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + struct.pack("!H", 0x893f) + bytes(6) + struct.pack("!H", et) + p
vntag = lambda et, p: b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + struct.pack("!H", 0x8926) + bytes(4) + struct.pack("!H", et) + p
pcap("etag.pcap", [etag(0x0800, p) for p in hs])
pcap("vntag.pcap", [vntag(0x0800, p) for p in hs])
erspan2 = lambda inner: eth(0x0800, ip4(47, struct.pack("!HH", 0x1000, 0x88be) + struct.pack("!I", 1) + struct.pack("!HHI", 0x1000 | 0, 0x0001, 0) + ieth(0x0800, inner)))
pcap("erspan.pcap", [erspan2(p) for p in hs])
inner6 = ip6(17, udp(1000, 2000, b"teredo!"))
teredo = [eth(0x0800, ip4(17, udp(3544, 50000, inner6))),
          eth(0x0800, ip4(17, udp(50000, 3544, b"\x00\x00" + bytes(6) + inner6)))]
pcap("teredo.pcap", teredo)
"#;

#[test]
fn tunnels_are_opened_and_count_like_tshark() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_captures(&format!("{HANDSHAKE_PRELUDE}{TUNNELS}"), dir.path());
    for (file, tunnel) in [
        ("vxlan.pcap", "vxlan"),
        ("geneve.pcap", "geneve"),
        ("gre.pcap", "gre"),
        ("ipip.pcap", "ip-in-ip"),
        ("mpls.pcap", "mpls"),
        ("pppoe.pcap", "pppoe"),
        ("erspan.pcap", "gre"),
    ] {
        let path = dir.path().join(file);
        let (ours, out) = report(&path, &[]);
        assert!(out.status.success(), "{file}: {}", common::stderr(&out));
        assert_protocols_equal(&ours, &path, &[], file);
        let (tcp, udp) = tshark_conversations(&path);
        let mine = ours["tcp_conversations"].as_u64().unwrap_or(0)
            + ours["udp_conversations"].as_u64().unwrap_or(0);
        assert_eq!(mine, tcp + udp, "{file}");
        let theirs_ms = tshark_initial_rtt_ms(&path).expect("an RTT");
        let mine_ms = ours["rtt"]["tcp_handshake"]["median_ms"]
            .as_f64()
            .expect("ours");
        assert!(
            (mine_ms - theirs_ms).abs() < 1e-3,
            "{file}: {mine_ms} vs {theirs_ms}"
        );
        assert!(
            ours["tunnels"][tunnel]["packets"]
                .as_u64()
                .is_some_and(|n| n > 0),
            "{file}: {}",
            ours["tunnels"]
        );
        // Outer headers only.
        let (outer, out) = report(&path, &["--decap", "off"]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert_eq!(outer["protocols"]["tcp"]["packets"], 0, "{file}");
        assert_eq!(outer["tunnels"], serde_json::json!({}), "{file}");
    }
    // Teredo (IPv6 in UDP 3544, with and without an origin indication): no handshake inside.
    let path = dir.path().join("teredo.pcap");
    let (ours, out) = report(&path, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_protocols_equal(&ours, &path, &[], "teredo.pcap");
    let (_, theirs) = tshark_conversations(&path);
    assert_eq!(ours["udp_conversations"].as_u64(), Some(theirs));
    assert_eq!(
        ours["tunnels"]["teredo"]["packets"], 2,
        "{}",
        ours["tunnels"]
    );
    // Tags between the MACs and the EtherType: skipped with their right length.
    for file in ["etag.pcap", "vntag.pcap"] {
        let path = dir.path().join(file);
        let (ours, out) = report(&path, &[]);
        assert!(out.status.success(), "{file}: {}", common::stderr(&out));
        assert_protocols_equal(&ours, &path, &[], file);
    }
}

/// `--threads N` splits a file's flows among N analyzers: every interval, the report and the
/// flows are the same as one analyzer's, byte for byte (estimates included: one hasher), on the
/// lab capture, on tunnels (whose outer and inner flows fall in different shards) and on the
/// awkward cases (reused 4-tuples, retransmitted SYNs, timestamps going backwards).
#[test]
fn a_file_split_across_threads_gives_the_same_intervals_report_and_flows() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_captures(&format!("{HANDSHAKE_PRELUDE}{TUNNELS}"), dir.path());
    write_captures(EDGE_CASES, dir.path());
    write_captures(HANDSHAKES, dir.path());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    files.push(gen_pcap(dir.path(), 60_000));
    let run = |file: &Path, threads: &str| {
        let flows = dir.path().join(format!("flows-{threads}.csv"));
        let out = common::netpulse(&[
            "capture",
            "-r",
            file.to_str().expect("utf-8"),
            "--json",
            "--interval",
            "1s",
            "--threads",
            threads,
            "--flows",
            flows.to_str().expect("utf-8"),
        ]);
        let mut rows: Vec<String> = std::fs::read_to_string(&flows)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        rows.sort();
        (out.status.code(), common::stdout(&out), rows)
    };
    let mut tunnels_split = 0;
    for file in &files {
        let one = run(file, "1");
        assert!(!one.1.is_empty(), "{}: no output", file.display());
        for threads in ["2", "3", "4"] {
            let many = run(file, threads);
            assert_eq!(one.0, many.0, "{} × {threads}: exit", file.display());
            assert_eq!(one.1, many.1, "{} × {threads}: output", file.display());
            assert_eq!(one.2, many.2, "{} × {threads}: flows", file.display());
        }
        if one.1.contains("\"vxlan\"") || one.1.contains("\"geneve\"") {
            tunnels_split += 1;
        }
    }
    assert!(tunnels_split >= 2, "the UDP tunnels were among the files");
    // Live capture is one analyzer: asking for more is refused, not ignored.
    let out = common::netpulse(&["capture", "-i", "lo", "--threads", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).starts_with("netpulse: --threads applies to a file"),
        "{}",
        common::stderr(&out)
    );
}

/// MACsec, NSH, pktap and MPLS pseudowires: what tshark opens netpulse opens (an integrity-only
/// MACsec frame's payload, NSH's inner packet or Ethernet frame, pktap's packet), what it does
/// not (an encrypted MACsec payload, a pseudowire's Ethernet) is counted as it counts it.
const LAYER_TWO: &str = r#"
# MACsec: integrity only (TCI: V=0 ES=0 SC=1 SCB=0 E=0 C=0, AN=0), SL = 0, PN, SCI, then the ethertype + payload, ICV 16
macsec = lambda inner: eth(0x88e5, struct.pack("!BBI", 0x20, 0, 1) + bytes(8) + struct.pack("!H", 0x0800) + inner + bytes(16))
macsec_enc = lambda inner: eth(0x88e5, struct.pack("!BBI", 0x2c, 0, 1) + bytes(8) + bytes(len(inner) + 2) + bytes(16))
pcap("macsec.pcap", [macsec(p) for p in hs])
pcap("macsec_enc.pcap", [macsec_enc(p) for p in hs])
# NSH MD type 1: ver 0, O 0, TTL 63, length 6 words; MD 1, next proto 1 (IPv4); SPI 10, SI 255; 16 bytes context
nsh = lambda np, inner: eth(0x894f, struct.pack("!HBB", (63 << 6) | 6, 0x01, np) + struct.pack("!I", (10 << 8) | 255) + bytes(16) + inner)
pcap("nsh.pcap", [nsh(1, p) for p in hs] + [nsh(3, ieth(0x0800, hs[0]))])
# pktap: header length 108, type 1, dlt 1, ifname, ...
def pktap(fr):
    hdr = struct.pack("<III", 108, 1, 1) + b"en0".ljust(24, b"\0") + bytes(108 - 36)
    return hdr + fr
pcap("pktap.pcap", [pktap(eth(0x0800, p)) for p in hs], lt=258)
# MPLS pseudowire: label, bottom of stack, control word 0, then Ethernet
pw = lambda inner: eth(0x8847, struct.pack("!I", (16 << 12) | (1 << 8) | 64) + bytes(4) + ieth(0x0800, inner))
pw_nocw = lambda inner: eth(0x8847, struct.pack("!I", (16 << 12) | (1 << 8) | 64) + ieth(0x0800, inner))
pcap("pw.pcap", [pw(p) for p in hs])
pcap("pw_nocw.pcap", [pw_nocw(p) for p in hs])
"#;

#[test]
fn macsec_nsh_pktap_and_pseudowires_count_like_tshark() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_captures(&format!("{HANDSHAKE_PRELUDE}{LAYER_TWO}"), dir.path());
    for file in [
        "macsec.pcap",
        "macsec_enc.pcap",
        "nsh.pcap",
        "pktap.pcap",
        "pw.pcap",
        "pw_nocw.pcap",
    ] {
        let path = dir.path().join(file);
        let (ours, out) = report(&path, &[]);
        assert!(out.status.success(), "{file}: {}", common::stderr(&out));
        assert_eq!(ours["malformed"], serde_json::json!({}), "{file}");
        assert_protocols_equal(&ours, &path, &[], file);
        let (tcp, udp) = tshark_conversations(&path);
        assert_eq!(
            (
                ours["tcp_conversations"].as_u64(),
                ours["udp_conversations"].as_u64()
            ),
            (Some(tcp), Some(udp)),
            "{file}"
        );
        let theirs_ms = tshark_initial_rtt_ms(&path);
        let mine_ms = ours["rtt"]["tcp_handshake"]["median_ms"].as_f64();
        match (mine_ms, theirs_ms) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-3, "{file}: {a} vs {b}"),
            (a, b) => assert_eq!(a.is_some(), b.is_some(), "{file}: {a:?} vs {b:?}"),
        }
    }
    // The opened ones carry the handshake.
    for file in ["macsec.pcap", "nsh.pcap", "pktap.pcap"] {
        let (ours, _) = report(&dir.path().join(file), &[]);
        assert_eq!(ours["tcp_conversations"], 1, "{file}");
    }
}
