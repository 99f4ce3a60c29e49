//! What `report` and `sessions` print, as snapshots (`crates/netpulse/tests/snapshots/`), for a
//! recording made from known results at known times (the real recorder, into a real SQLite file):
//! a change to what users read is reviewed, not accidental. After an intended change:
//! `INSTA_UPDATE=always cargo test -p netpulse --test report_text`, then review the diff.

mod common;

use netpulse_core::record::{Detail, Outcome, ProbeResult};
use netpulse_store::{RecordTarget, RecorderConfig, Recording, SessionInfo, Store};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2026-01-02T03:04:00Z: a known minute and hour.
const T0: u64 = 1_767_323_040;

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(T0 * 1000 + ms)
}

/// Three minutes of two targets: `gw` answers in 10–14 ms but for a 10 s blackout, `web` loses
/// every fifth probe. (Today each of `web`'s single losses is listed as an outage: the default
/// detector's 1 s window at a 1 s interval; issue 16 changes that, and this snapshot with it.)
fn record(db: &Path) {
    let store = Store::open(db).expect("open");
    let session = SessionInfo {
        started_at: at(0),
        host: "lab-host".into(),
        version: "0.1.0".into(),
        command: "netpulse probe --record gw web".into(),
        config: "{}".into(),
    };
    let targets = [("gw", "icmp", "10.0.0.1"), ("web", "tcp", "10.0.0.80:443")].map(
        |(label, kind, address)| RecordTarget {
            label: label.into(),
            kind: kind.into(),
            address: address.into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        },
    );
    let mut rec =
        Recording::new(store, &session, &targets, RecorderConfig::default()).expect("recording");
    for s in 0..180u64 {
        for (target, answered, rtt_ms) in [
            (0, !(60..70).contains(&s), 10 + s % 5),
            (1, s % 5 != 4, 20 + s % 3),
        ] {
            let r = ProbeResult {
                target,
                seq: s + 1,
                sent_at: at(s * 1000 + 100 * target as u64),
                rtt: answered.then(|| Duration::from_millis(rtt_ms)),
                outcome: if answered {
                    Outcome::Ok
                } else {
                    Outcome::Timeout
                },
                detail: Detail::None,
                send_delay: Duration::ZERO,
                late: false,
            };
            rec.record(&r);
        }
        rec.commit(at(s * 1000 + 999), false);
    }
    let report = rec.finish(at(180_000));
    assert_eq!(report.dropped, 0);
}

fn run(args: &[&str]) -> String {
    let out = Command::new(common::bin())
        .args(args)
        .env("TZ", "UTC")
        .env("COLUMNS", "100")
        .output()
        .expect("run");
    assert!(out.status.success(), "{args:?}: {}", common::stderr(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn report_and_sessions_texts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    record(&db);
    let db = db.to_str().expect("utf-8");
    let redact = |text: String| text.replace(db, "[DB]");
    insta::assert_snapshot!("report_text", redact(run(&["report", "--db", db])));
    insta::assert_snapshot!("sessions_text", redact(run(&["sessions", "--db", db])));
    // One object a line; pretty, so a change reads as a diff of fields.
    let json: Vec<String> = run(&["report", "--db", db, "--format", "json"])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            serde_json::to_string_pretty(&v).expect("JSON")
        })
        .collect();
    insta::assert_snapshot!("report_json", redact(json.join("\n")));
}
