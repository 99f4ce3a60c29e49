//! Recording and reporting end to end: `probe --record`, `sessions`, `report` in every format,
//! a `kill -9` in the middle of a recording, files that are not ours, bad ranges, and an outage
//! of known length made by the lab.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("listen");
    let t = format!("127.0.0.1:{}", l.local_addr().expect("addr").port());
    (l, t)
}

#[test]
fn record_then_sessions_and_report_in_every_format() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("h.db");
    let db_arg = format!("--record={}", db.display());
    let (_l, open) = listener();
    let out = netpulse(&[
        "probe",
        "-q",
        "-c",
        "20",
        "-i",
        "50ms",
        &db_arg,
        &open,
        "127.0.0.1:1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("recorded session 1 to"),
        "{}",
        stderr(&out)
    );
    let dbs = db.to_str().expect("utf-8 path");

    let out = netpulse(&["sessions", "--db", dbs, "--json"]);
    let sessions = json_lines(&out);
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["targets"], 2);
    assert!(sessions[0]["ended_at"].is_string());

    let out = netpulse(&[
        "report",
        "--db",
        dbs,
        "--format",
        "json",
        "--resolution",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = &json_lines(&out)[0];
    assert_eq!(v["summary"]["sent"], 40);
    assert_eq!(v["summary"]["received"], 40);
    assert_eq!(v["outage_count"], 0);
    let targets = v["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 2);
    let closed = targets
        .iter()
        .find(|t| t["target"] == "tcp://127.0.0.1:1")
        .expect("closed port");
    assert_eq!(closed["refused"], 20);
    assert!(v["targets"][0]["rtt_ms"]["p95"].is_number());
    let rows = v["series"]["rows"].as_array().expect("series");
    let sent: u64 = rows.iter().map(|r| r["sent"].as_u64().expect("sent")).sum();
    assert_eq!(sent, 40, "per-second rows add up");

    let out = netpulse(&["report", "--db", dbs]);
    let text = stdout(&out);
    assert!(
        text.contains("sent 40, received 40, lost 0 (0%), avg RTT "),
        "{text}"
    );
    assert!(text.contains("outages 0"), "{text}");
    assert!(text.contains(&format!("tcp://{open}")), "{text}");

    let out = netpulse(&[
        "report",
        "--db",
        dbs,
        "--format",
        "csv",
        "--resolution",
        "1m",
    ]);
    let csv = stdout(&out);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("time,target,sent,received,loss,rtt_min_ms,rtt_avg_ms,rtt_max_ms,rtt_mdev_ms,rtt_p50_ms,rtt_p95_ms,rtt_p99_ms,jitter_ms,refused")
    );
    assert!(lines.count() >= 2, "{csv}");

    let folder = dir.path().join("session1");
    let out = netpulse(&[
        "report",
        "--db",
        dbs,
        "--session",
        "1",
        "--out",
        folder.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for f in [
        "summary.txt",
        "summary.json",
        "per_second.csv",
        "per_minute.csv",
        "per_hour.csv",
        "outages.txt",
        "per_second.json",
        "per_minute.json",
        "per_hour.json",
        "outages.json",
    ] {
        let p = folder.join(f);
        assert!(
            p.metadata().is_ok_and(|m| m.len() > 0),
            "{f} missing or empty"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("summary.json")).expect("read"))
            .expect("json");
    assert_eq!(summary["summary"]["sent"], 40);
}

#[test]
fn kill_9_loses_at_most_the_last_second() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("crash.db");
    let (_l, open) = listener();
    let mut child = Command::new(bin())
        .args([
            "probe",
            "-i",
            "10ms",
            &format!("--record={}", db.display()),
            &open,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // (when, how many answered probe lines had been printed by then)
    let mut seen: Vec<(Instant, u64)> = Vec::new();
    let mut n = 0u64;
    while n < 300 {
        let line = lines.next().expect("a line").expect("utf-8");
        if line.contains(" seq=") {
            n += 1;
            seen.push((Instant::now(), n));
        }
    }
    let killed_at = Instant::now();
    let killed_wall = SystemTime::now();
    assert!(Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .expect("kill")
        .success());
    let _ = child.wait();
    // Every probe answered more than a second before the kill must be in the database.
    let must_have = seen
        .iter()
        .take_while(|(t, _)| killed_at.duration_since(*t) > Duration::from_millis(1100))
        .last()
        .map_or(0, |&(_, n)| n);
    assert!(must_have > 100, "the run lasted long enough to judge");
    let conn = rusqlite::Connection::open(&db).expect("reopen after kill -9");
    let (sent, last_ts): (i64, i64) = conn
        .query_row("SELECT sum(sent), max(ts) FROM probe_1s", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("rows");
    assert!(
        sent as u64 >= must_have,
        "recorded {sent}, but {must_have} were answered > 1 s before the kill"
    );
    let kill_secs = killed_wall
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    assert!(
        last_ts >= kill_secs - 2,
        "last row at {last_ts}, kill at {kill_secs}"
    );
    let ended: Option<i64> = conn
        .query_row("SELECT ended_at_ms FROM sessions", [], |r| r.get(0))
        .expect("session");
    assert_eq!(ended, None, "a killed session has no end");
    drop(conn);
    // and the report still reads it, saying so
    let out = netpulse(&["report", "--db", db.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("did not end cleanly"),
        "{}",
        stdout(&out)
    );
    // having rebuilt its minutes and hours from its seconds: no probe is missing from them
    assert!(
        stderr(&out).contains("session 1 did not end") && stderr(&out).contains("rebuilt"),
        "{}",
        stderr(&out)
    );
    let conn = rusqlite::Connection::open(&db).expect("reopen");
    for table in ["probe_1m", "probe_1h"] {
        let kept: i64 = conn
            .query_row(&format!("SELECT sum(sent) FROM {table}"), [], |r| r.get(0))
            .expect("rows");
        let seconds: i64 = conn
            .query_row("SELECT sum(sent) FROM probe_1s", [], |r| r.get(0))
            .expect("rows");
        assert_eq!(kept, seconds, "{table} after the rebuild");
    }
}

#[test]
fn files_that_are_not_ours_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tmp");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "my notes\n").expect("write");
    let (_l, open) = listener();
    let out = netpulse(&[
        "probe",
        "-c",
        "1",
        &format!("--record={}", notes.display()),
        &open,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("notes.txt is not a netpulse database") && err.contains("untouched"),
        "{err}"
    );
    assert!(
        stdout(&out).is_empty(),
        "refused before probing: {}",
        stdout(&out)
    );
    let out = netpulse(&["report", "--db", notes.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&notes).expect("read"), "my notes\n");

    let out = netpulse(&["probe", "-c", "1", "--record=/proc/netpulse/x.db", &open]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot open /proc/netpulse/x.db for recording"),
        "{}",
        stderr(&out)
    );
}

/// Two probes 10 ms apart to each of `targets`, recorded to `db`.
fn record_two_probes(db: &std::path::Path, targets: &[&str]) {
    let record = format!("--record={}", db.display());
    let mut args = vec!["probe", "-q", "-c", "2", "-i", "10ms", &record];
    args.extend_from_slice(targets);
    let out = netpulse(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn unknown_sessions_and_bad_ranges_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("h.db");
    let (_l, open) = listener();
    record_two_probes(&db, &[&open]);
    let dbs = db.to_str().expect("utf-8");
    for (args, expect) in [
        (
            vec!["report", "--db", dbs, "--session", "99"],
            "no session 99",
        ),
        (
            vec!["report", "--db", dbs, "--target", "nosuch"],
            "no target \"nosuch\" in session 1",
        ),
        (
            vec![
                "report",
                "--db",
                dbs,
                "--from",
                "2026-01-02",
                "--to",
                "2026-01-01",
            ],
            "bad time",
        ),
        (
            vec![
                "report",
                "--db",
                dbs,
                "--from",
                "2026-01-02T00:00:00Z",
                "--to",
                "2026-01-01T00:00:00Z",
            ],
            "bad time range",
        ),
        (
            vec!["report", "--db", dbs, "--from", "yesterday"],
            "bad time \"yesterday\"",
        ),
        (
            vec!["report", "--db", dbs, "--since", "forever"],
            "bad --since",
        ),
        (
            vec!["report", "--db", dbs, "--resolution", "5m"],
            "bad --resolution",
        ),
        (
            vec!["report", "--db", "/nonexistent/h.db"],
            "no database at /nonexistent/h.db",
        ),
        (
            vec![
                "probe",
                "--record=/tmp/x.db",
                "--retention",
                "1s=soon",
                &open,
            ],
            "invalid value '1s=soon' for '--retention <SPEC>'",
        ),
    ] {
        let out = netpulse(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
    // a range with no data is a report of nothing, not an error
    let out = netpulse(&[
        "report",
        "--db",
        dbs,
        "--from",
        "2001-01-01T00:00:00Z",
        "--to",
        "2001-01-02T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["summary"]["sent"], 0);
}

#[test]
fn a_200ms_blackout_at_1ms_is_one_outage_of_200ms() {
    let Some(lab) = Lab::up(1.0, 0.0, 0.0) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("lab.db");
    // warm up ARP through the delay line
    let _ = netpulse_in(
        &lab.client(),
        &["probe", "-q", "-c", "3", "-i", "100ms", &lab.addr(2)],
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.client(), bin()])
        .args([
            "probe",
            "-c",
            "2500",
            "-i",
            "1ms",
            "--json",
            &format!("--record={}", db.display()),
            &lab.addr(2),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    for _ in 0..800 {
        lines.next().expect("line").expect("utf-8");
    }
    let out = Command::new("bash")
        .arg(lab_dir().join("netlab.sh"))
        .args(["blackout", "200"])
        .env("NETLAB_PREFIX", &lab.prefix)
        .output()
        .expect("blackout");
    assert!(out.status.success(), "{}", stderr(&out));
    for line in lines.by_ref() {
        line.expect("utf-8");
    }
    assert_eq!(child.wait().expect("wait").code(), Some(0));
    let v = &common::json_report(&db);
    let outages = v["outages"].as_array().expect("outages");
    assert_eq!(outages.len(), 1, "{outages:?}");
    let d = outages[0]["duration_ms"].as_i64().expect("duration");
    assert!(
        (190..=210).contains(&d),
        "outage of {d} ms, expected 200 ± 10"
    );
    let lost =
        outages[0]["sent"].as_i64().expect("sent") - outages[0]["received"].as_i64().expect("recv");
    assert!(
        (180..=220).contains(&lost),
        "{lost} probes lost in the outage"
    );
}

#[test]
fn report_charts_draws_every_target_as_svg_and_png() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("h.db");
    let db_arg = format!("--record={}", db.display());
    let (_l, open) = listener();
    let out = netpulse(&["probe", "-q", "-c", "30", "-i", "50ms", &db_arg, &open]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let charts = dir.path().join("charts");
    let db_s = db.display().to_string();
    let charts_s = charts.display().to_string();
    let out = netpulse(&["report", "--db", &db_s, "--charts", &charts_s]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("wrote 4 charts"), "{}", stderr(&out));
    let slug = open.replace([':', '/'], "-");
    for name in [
        format!("latency-tcp-{slug}"),
        format!("histogram-tcp-{slug}"),
    ] {
        let svg = std::fs::read_to_string(charts.join(format!("{name}.svg")))
            .unwrap_or_else(|e| panic!("{name}.svg: {e}"));
        assert!(svg.starts_with("<svg"), "{name}");
        assert!(svg.contains(&open), "{name}.svg does not name the target");
        let png = std::fs::read(charts.join(format!("{name}.png"))).expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png");
    }
    // The histogram counts every reply.
    let hist = std::fs::read_to_string(charts.join(format!("histogram-tcp-{slug}.svg")))
        .expect("histogram");
    assert!(hist.contains("(30 replies)"), "{hist}");
    // An empty range says so instead of writing nothing silently.
    let out = netpulse(&[
        "report",
        "--db",
        &db_s,
        "--from",
        "2001-01-01T00:00:00Z",
        "--to",
        "2001-01-02T00:00:00Z",
        "--charts",
        &charts_s,
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("nothing to chart"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_healthy_database_on_a_read_only_filesystem_is_read_not_called_damaged() {
    let dir = tempfile::tempdir().expect("tmp");
    let mnt = dir.path().display().to_string();
    // A private mount namespace: the read-only tmpfs goes away with it, whatever happens here.
    let script = format!(
        "set -e
         mount -t tmpfs tmpfs '{mnt}'
         '{bin}' probe -c 3 -i 100ms --record='{mnt}/h.db' tcp://127.0.0.1:9 >/dev/null
         mount -o remount,ro '{mnt}'
         if touch '{mnt}/x' 2>/dev/null; then echo 'still writable'; exit 3; fi
         '{bin}' sessions --db '{mnt}/h.db'
         echo ---
         '{bin}' report --db '{mnt}/h.db'",
        bin = bin()
    );
    let out = match Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
    {
        Ok(o) => o,
        Err(e) => return skip(&format!("cannot run `unshare` (install util-linux): {e}")),
    };
    if stderr(&out).contains("unshare failed") || stderr(&out).contains("Operation not permitted") {
        return skip(&format!(
            "cannot make a mount namespace (needs root): {}",
            stderr(&out)
        ));
    }
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(!stderr(&out).contains("damaged"), "{}", stderr(&out));
    assert!(text.contains("probe -c 3"), "the session is listed: {text}");
    assert!(
        text.contains("sent 3, received 3"),
        "the report reads it: {text}"
    );
}

/// A small tmpfs mounted on a temporary directory, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("tmp");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk { dir }),
            Ok(o) => {
                skip(&format!(
                    "cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                None
            }
            Err(e) => {
                skip(&format!("cannot run `mount`: {e}"));
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_stops_and_resumes_the_recording_and_nothing_is_lost() {
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let db = disk.dir.path().join("h.db");
    let (_l, open) = listener();
    let mut child = Command::new(bin())
        .args([
            "probe",
            "-i",
            "20ms",
            &format!("--record={}", db.display()),
            &open,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut answered = 0;
    while answered < 100 {
        let line = lines.next().expect("a line").expect("utf-8");
        answered += usize::from(line.contains(" seq="));
    }
    // Fill the disk to the last byte.
    let fill = disk.dir.path().join("fill");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&fill).expect("fill");
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
    }
    let drain = std::thread::spawn(move || for _ in lines.by_ref() {});
    let mut said = Vec::new();
    let mut wait_for = |needle: &str| loop {
        let line = err.next().expect("a stderr line").expect("utf-8");
        said.push(line.clone());
        if line.contains(needle) {
            return line;
        }
    };
    let stopped = wait_for("stopped");
    assert!(
        stopped.contains("h.db") && stopped.contains("full"),
        "{stopped}"
    );
    std::fs::remove_file(&fill).expect("free");
    let resumed = wait_for("resumed");
    assert!(resumed.contains("nothing was lost"), "{resumed}");
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill")
        .success());
    let end = wait_for("recorded session");
    assert!(end.contains("h.db"), "{end}");
    for line in err {
        said.push(line.expect("utf-8"));
    }
    let _ = child.wait();
    let _ = drain.join();
    let text = said.join("\n");
    assert!(text.contains("1 interruption"), "{text}");
    let conn = rusqlite::Connection::open(&db).expect("reopen");
    let sum = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT sum(sent) FROM {table}"), [], |r| r.get(0))
            .expect("rows")
    };
    let seconds = sum("probe_1s");
    assert!(seconds > 100, "{seconds}");
    assert_eq!(sum("probe_1m"), seconds);
    assert_eq!(sum("probe_1h"), seconds);
    // No second is missing between the first and the last.
    let (rows, first, last): (i64, i64, i64) = conn
        .query_row("SELECT count(*), min(ts), max(ts) FROM probe_1s", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("span");
    assert_eq!(rows, last - first + 1, "a row for every second");
    drop(conn);
    let out = netpulse(&["report", "--db", db.to_str().expect("utf-8")]);
    assert!(
        stdout(&out).contains("Recording interrupted") && stdout(&out).contains("nothing lost"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bare_record_writes_the_default_database_in_every_command() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_l, open) = listener();
    let pcap = dir.path().join("lab.pcap");
    let made = Command::new("python3")
        .arg(lab_dir().join("gen_pcap.py"))
        .arg(&pcap)
        .arg("200")
        .output();
    if !made.is_ok_and(|o| o.status.success()) {
        return skip("python3 cannot run the lab's gen_pcap.py");
    }
    let runs: [&[&str]; 3] = [
        &["probe", "-c", "2", "-i", "100ms", "--record", &open],
        &["ifaces", "--record", "-c", "2", "--interval", "100ms"],
        &["capture", "--record", "-r", pcap.to_str().expect("utf-8")],
    ];
    for args in runs {
        let out = Command::new(bin())
            .args(args)
            .env("XDG_DATA_HOME", dir.path())
            .output()
            .expect("run");
        assert!(
            out.status.success() || out.status.code() == Some(1),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("a value is required"), "{args:?}");
    }
    let db = dir.path().join("netpulse/netpulse.db");
    let conn = rusqlite::Connection::open(&db).expect("the default database");
    let sessions: i64 = conn
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .expect("sessions");
    assert_eq!(sessions, 3, "one session per command");
}

#[test]
fn a_monitor_that_cannot_serve_leaves_no_empty_session_behind() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("h.db");
    let taken = TcpListener::bind("127.0.0.1:0").expect("listen");
    let config = dir.path().join("m.toml");
    std::fs::write(
        &config,
        format!(
            "[listen]\nweb = \"{}\"\n[ifaces]\nenabled = false\n[record]\ndb = \"{}\"\n\
             [[target]]\ntarget = \"127.0.0.1\"\n",
            taken.local_addr().expect("address"),
            db.display()
        ),
    )
    .expect("config");
    let out = netpulse(&["monitor", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.to_lowercase().contains("in use"), "{err}");
    // The start failed before a session was begun: nothing for `report` to show as the latest.
    if db.exists() {
        let out = netpulse(&["sessions", "--db", db.to_str().expect("utf-8")]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with('1')),
            "{text}"
        );
    }
}

#[test]
fn report_lists_targets_in_the_order_they_were_given() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("h.db");
    let (_l, open) = listener();
    // Given tcp first: not the order of their names ("127…" sorts before "tcp…").
    let tcp = format!("tcp://{open}");
    record_two_probes(&db, &[&tcp, "127.0.0.1"]);
    let v = &common::json_report(&db);
    let names: Vec<&str> = v["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["target"].as_str())
        .collect();
    assert_eq!(names, [tcp.as_str(), "127.0.0.1"]);
}

/// `--session-dir`: seed 002's folder is written while the run goes on (summary with its
/// configuration header, per-second rows appended once their second settled, each once), and
/// when it ends it is exactly what `report --out` writes for the session.
#[test]
fn the_session_folder_is_written_live_and_complete_at_the_end() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("h.db");
    let folder = dir.path().join("session");
    let (_l, open) = listener();
    let mut child = Command::new(bin())
        .args([
            "probe",
            "-q",
            "-i",
            "50ms",
            "-W",
            "200ms",
            "--session-every",
            "200ms",
        ])
        .arg(format!("--record={}", db.display()))
        .arg("--session-dir")
        .arg(&folder)
        .arg("--connection-log")
        .args([open.as_str(), "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start probe");
    let per_second = folder.join("per_second.csv");
    // Waits (polling the folder: files have no event to wait on) for rows of 3 seconds.
    let rows = |path: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows(&per_second).len() < 6 {
        assert!(
            Instant::now() < deadline,
            "no live rows: {:?}",
            rows(&per_second)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let summary = std::fs::read_to_string(folder.join("summary.txt")).expect("summary.txt");
    assert!(
        summary.starts_with("netpulse probe session\ntargets: "),
        "{summary}"
    );
    assert!(
        summary.contains("interval: 50ms, timeout: 200ms"),
        "{summary}"
    );
    assert!(summary.contains("outage: "), "{summary}");
    let live = rows(&per_second);
    let mut keys: Vec<_> = live
        .iter()
        .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "a row appended twice: {live:?}");
    assert!(
        std::fs::read_to_string(folder.join("connections.log")).is_ok_and(|l| l.contains(" ok ")),
        "connection log"
    );
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    // The end: the same files `report --out` writes.
    let out_dir = dir.path().join("report-out");
    let dbs = db.to_str().expect("utf-8");
    let out = netpulse(&[
        "report",
        "--db",
        dbs,
        "--out",
        out_dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for f in [
        "per_second.csv",
        "per_minute.csv",
        "per_hour.csv",
        "per_second.json",
        "outages.txt",
    ] {
        let a = std::fs::read_to_string(folder.join(f)).expect(f);
        let b = std::fs::read_to_string(out_dir.join(f)).expect(f);
        assert_eq!(a, b, "{f}");
    }
    // What was appended live is what the end says for those seconds.
    let end = rows(&per_second);
    for row in &live {
        assert!(end.contains(row), "live row changed at the end: {row}");
    }
    let report = std::fs::read_to_string(out_dir.join("summary.txt")).expect("summary");
    let ours = std::fs::read_to_string(folder.join("summary.txt")).expect("summary");
    assert!(
        ours.ends_with(&report),
        "the header, then the report's summary"
    );
}
