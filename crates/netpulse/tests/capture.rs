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
    let io = tshark(&[
        "-r",
        p,
        "-q",
        "-z",
        "io,stat,0,eth,arp,ip,ipv6,tcp,udp,icmp",
    ]);
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
            "{name}: netpulse vs tshark"
        );
    }

    let conv = tshark(&["-r", p, "-q", "-z", "conv,tcp", "-z", "conv,udp"]);
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
}
