//! The store on real files: recording on a fake clock, reading back, upgrades, refusals.

use netpulse_core::record::{Detail, Outcome, ProbeResult};
use netpulse_core::rollup::Resolution;
use netpulse_store::{
    RecordTarget, RecorderConfig, Recording, SessionInfo, Store, StoreError, SCHEMA_VERSION,
};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const T0: u64 = 1_700_000_000 - 1_700_000_000 % 3600;

fn at_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(T0 * 1000 + ms)
}

fn session() -> SessionInfo {
    SessionInfo {
        started_at: at_ms(0),
        host: "testhost".into(),
        version: "0.0.0".into(),
        command: "netpulse probe test".into(),
        config: "{}".into(),
    }
}

fn target(label: &str) -> RecordTarget {
    RecordTarget {
        label: label.into(),
        kind: "icmp".into(),
        address: label.into(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(1),
    }
}

fn result(target: usize, seq: u64, sent_ms: u64, ok: bool) -> ProbeResult {
    ProbeResult {
        target,
        seq,
        sent_at: at_ms(sent_ms),
        rtt: ok.then(|| Duration::from_micros(20_000 + (seq % 10) * 100)),
        outcome: if ok { Outcome::Ok } else { Outcome::Timeout },
        detail: Detail::None,
        // Target 1's every 100th probe left 3 ms late.
        send_delay: if target == 1 && seq.is_multiple_of(100) {
            Duration::from_millis(3)
        } else {
            Duration::from_micros(20)
        },
        late: target == 1 && seq.is_multiple_of(100),
    }
}

/// A recording of 10.0.0.1 and 10.0.0.2 into a new database at `path`.
fn two_targets(path: &Path) -> Recording {
    let store = Store::open(path).expect("open");
    Recording::new(
        store,
        &session(),
        &[target("10.0.0.1"), target("10.0.0.2")],
        RecorderConfig::default(),
    )
    .expect("recording")
}

/// 130 s of 10 probes/s on two targets; target 0 is down from 60.0 s to 62.0 s.
fn record_run(path: &Path) -> netpulse_store::RecorderReport {
    let mut rec = two_targets(path);
    for step in 0..1300u64 {
        let t = step * 100;
        let down = (60_000..62_000).contains(&t);
        rec.record(&result(0, step + 1, t, !down));
        rec.record(&result(1, step + 1, t, true));
        if t % 1000 == 900 {
            rec.commit(at_ms(t + 100), false);
        }
    }
    rec.finish(at_ms(130_000))
}

#[test]
fn recording_reads_back_at_every_resolution() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("h.db");
    let report = record_run(&path);
    assert_eq!(
        report.dropped + report.late + report.failed_commits,
        0,
        "{report:?}"
    );
    assert_eq!(report.outages.len(), 1);
    let (ti, o) = &report.outages[0];
    assert_eq!(*ti, 0);
    assert_eq!(o.duration(), Duration::from_secs(2));

    let store = Store::open_read(&path).expect("read");
    let secs = store
        .rollups(Resolution::Second, 0, i64::MAX, None, Some("10.0.0.1"))
        .expect("rows");
    assert_eq!(secs.len(), 130);
    assert!(secs.iter().all(|r| r.stats.sent == 10));
    let lost: u64 = secs.iter().map(|r| r.stats.sent - r.stats.received).sum();
    assert_eq!(lost, 20);
    let mins = store
        .rollups(Resolution::Minute, 0, i64::MAX, None, Some("10.0.0.1"))
        .expect("rows");
    assert_eq!(
        mins.iter().map(|r| r.stats.sent).collect::<Vec<_>>(),
        vec![600, 600, 100]
    );
    let hours = store
        .rollups(Resolution::Hour, 0, i64::MAX, None, None)
        .expect("rows");
    assert_eq!(hours.len(), 2, "one hour row per target");
    assert!(hours.iter().all(|h| h.stats.sent == 1300));
    // Stored statistics merge back exactly: the hour's percentiles equal the merged seconds'.
    let mut merged = netpulse_core::stats::ProbeStats::default();
    for s in &secs {
        merged.merge(&s.stats);
    }
    let h = hours
        .iter()
        .find(|h| h.target == "10.0.0.1")
        .expect("hour row");
    assert_eq!(merged.rtt.quantile(0.95), h.stats.rtt.quantile(0.95));
    assert_eq!(merged.rtt.count(), h.stats.rtt.count());
    // Every figure, not only the percentiles: the hour is read back and added to once a
    // minute, and nothing drifts on the way (min, max, mdev, jitter, lateness).
    assert_eq!(merged.rtt.summary(), h.stats.rtt.summary());
    assert_eq!(merged.max_send_delay, h.stats.max_send_delay);
    assert_eq!(merged.jitter.parts().2, h.stats.jitter.parts().2);
    // The scheduler's lateness is recorded at every resolution.
    let late = |res: Resolution| {
        let rows = store
            .rollups(res, 0, i64::MAX, None, Some("10.0.0.2"))
            .expect("rows");
        let n: u64 = rows.iter().map(|r| r.stats.late_sends).sum();
        let max = rows.iter().map(|r| r.stats.max_send_delay).max();
        (n, max)
    };
    for res in Resolution::ALL {
        assert_eq!(late(res), (13, Some(Duration::from_millis(3))), "{res:?}");
    }
    // Every second ended final: the ones unchanged since their provisional write only had
    // their flag set, and none was lost on the way.
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    let open: i64 = conn
        .query_row(
            "SELECT count(*) FROM probe_1s WHERE complete = 0",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(open, 0);
    let outages = store.outages(0, i64::MAX, None, None).expect("outages");
    assert_eq!(outages.len(), 1);
    assert_eq!(
        (
            outages[0].duration_ms(),
            outages[0].sent,
            outages[0].received
        ),
        (2000, 20, 0)
    );
    let sessions = store.sessions().expect("sessions");
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].ended_at_ms, Some((T0 * 1000 + 130_000) as i64));
    assert_eq!(sessions[0].targets, 2);
}

#[test]
fn a_second_session_appends_and_the_schema_is_current() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("h.db");
    record_run(&path);
    record_run(&path);
    let store = Store::open_read(&path).expect("read");
    assert_eq!(store.sessions().expect("sessions").len(), 2);
    assert_eq!(
        store.targets(&[]).expect("targets").len(),
        2,
        "targets are shared by label"
    );
    let conn = rusqlite_version(&path);
    assert_eq!(conn, SCHEMA_VERSION);
}

fn rusqlite_version(path: &Path) -> u32 {
    let c = rusqlite::Connection::open(path).expect("open");
    c.query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version")
}

#[test]
fn an_empty_sqlite_file_is_upgraded() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("old.db");
    {
        let c = rusqlite::Connection::open(&path).expect("create");
        c.execute_batch("CREATE TABLE unrelated (x); PRAGMA user_version = 0;")
            .expect("init");
    }
    Store::open(&path).expect("upgrade");
    assert_eq!(rusqlite_version(&path), SCHEMA_VERSION);
}

fn digest(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read")
}

#[test]
fn foreign_damaged_and_newer_files_are_refused_untouched() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database\n").expect("write");
    let before = digest(&text);
    let e = Store::open(&text).err().expect("refused");
    assert!(matches!(e, StoreError::NotADatabase { .. }), "{e}");
    assert!(
        e.to_string().contains("notes.txt") && e.to_string().contains("untouched"),
        "{e}"
    );
    assert!(matches!(
        Store::open_read(&text),
        Err(StoreError::NotADatabase { .. })
    ));
    assert_eq!(digest(&text), before);

    // SQLite's own verdict on a damaged header (the file is only ever opened through SQLite).
    let damaged = dir.path().join("damaged.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend((0..8192u32).map(|i| (i * 7919 % 251) as u8));
    std::fs::write(&damaged, &bytes).expect("write");
    let e = Store::open(&damaged).err().expect("refused");
    assert!(matches!(e, StoreError::NotADatabase { .. }), "{e}");
    assert!(e.to_string().contains("damaged header"), "{e}");
    assert_eq!(digest(&damaged), bytes);

    let newer = dir.path().join("newer.db");
    {
        let c = rusqlite::Connection::open(&newer).expect("create");
        c.execute_batch("PRAGMA user_version = 99;").expect("init");
    }
    let before = digest(&newer);
    let e = Store::open(&newer).err().expect("refused");
    assert!(
        matches!(e, StoreError::NewerSchema { found: 99, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("newer"), "{e}");
    assert_eq!(digest(&newer), before);
}

#[test]
fn unwritable_and_missing_paths_are_clear_errors() {
    let e = Store::open(Path::new("/proc/netpulse-test/h.db"))
        .err()
        .expect("refused");
    assert!(matches!(e, StoreError::Unwritable { .. }), "{e}");
    assert!(e.to_string().contains("/proc/netpulse-test"), "{e}");
    let e = Store::open_read(Path::new("/nonexistent/h.db"))
        .err()
        .expect("refused");
    assert!(matches!(e, StoreError::Missing { .. }), "{e}");
}

#[test]
fn retention_prunes_in_chunks() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("h.db");
    record_run(&path);
    let mut store = Store::open(&path).expect("open");
    let cut = (T0 + 100) as i64; // everything before second 100 of the run
    let mut removed = 0;
    loop {
        let n = store.prune(Resolution::Second, cut, 64).expect("prune");
        assert!(n <= 64);
        if n == 0 {
            break;
        }
        removed += n;
    }
    assert_eq!(removed, 200, "100 seconds × 2 targets");
    assert_eq!(store.count_rows(Resolution::Second).expect("count"), 60);
    assert_eq!(
        store.count_rows(Resolution::Hour).expect("count"),
        2,
        "other resolutions untouched"
    );
}

fn rates(rx: u64, tx: u64) -> Vec<netpulse_core::iface::IfaceRate> {
    use netpulse_core::iface::{Continuity, IfaceCounters, IfaceRate};
    ["eth0", "wlan0"]
        .iter()
        .enumerate()
        .map(|(i, name)| IfaceRate {
            index: i as u32 + 2,
            name: (*name).into(),
            totals: IfaceCounters::default(),
            delta: Some(IfaceCounters {
                rx_bytes: rx * (i as u64 + 1),
                tx_bytes: tx,
                rx_packets: 10,
                tx_packets: 5,
                rx_errors: u64::from(i == 1),
                ..Default::default()
            }),
            elapsed: Duration::from_secs(1),
            continuity: Continuity::Continuing,
        })
        .collect()
}

#[test]
fn interface_traffic_is_recorded_at_every_resolution_and_pruned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let store = Store::open(&path).expect("open");
    let mut rec = Recording::new(store, &session(), &[], RecorderConfig::default()).expect("rec");
    // Two hours at 1 Hz: eth0 1 000 B/s down, 200 B/s up; wlan0 twice the download.
    for s in 1..=7200u64 {
        rec.record_traffic(at_ms(s * 1000 + 250), &rates(1000, 200));
        if s % 10 == 0 {
            rec.commit(at_ms(s * 1000 + 500), false);
        }
    }
    let report = rec.finish(at_ms(7_201_000));
    assert_eq!(report.failed_commits, 0);
    let read = Store::open_read(&path).expect("read");
    assert_eq!(read.ifaces().expect("ifaces"), ["eth0", "wlan0"]);
    let hours = read
        .traffic(Resolution::Hour, 0, i64::MAX, None, None)
        .expect("hours");
    assert_eq!(
        hours.len(),
        6,
        "three hours (the last tick is at 7200.25 s) of two interfaces"
    );
    let eth0: Vec<_> = hours.iter().filter(|h| h.iface == "eth0").collect();
    // The first hour holds ticks 1..=3599 (tick 3600 is at 3600.25 s: the next hour).
    assert_eq!(eth0[0].stats.counts.rx_bytes, 3599 * 1000);
    assert_eq!(eth0[1].stats.counts.rx_bytes, 3600 * 1000);
    assert_eq!(eth0[2].stats.counts.rx_bytes, 1000);
    assert_eq!(eth0[0].stats.rx_rate_avg(), Some(1000.0));
    assert_eq!(eth0[1].stats.tx_rate_max, 200.0);
    let wlan0 = hours.iter().find(|h| h.iface == "wlan0").expect("wlan0");
    assert_eq!(wlan0.stats.counts.rx_bytes, 3599 * 2000);
    assert_eq!(wlan0.stats.counts.rx_errors, 3599);
    let minutes = read
        .traffic(Resolution::Minute, 0, i64::MAX, None, Some("eth0"))
        .expect("minutes");
    assert_eq!(minutes.len(), 121);
    let total: u64 = minutes.iter().map(|m| m.stats.counts.rx_bytes).sum();
    assert_eq!(total, 7200 * 1000, "no tick lost or counted twice");
    assert_eq!(
        read.count_traffic_rows(Resolution::Second).ok(),
        Some(14_400)
    );
    drop(read);

    // Retention: everything older than the second hour goes, in chunks.
    let mut store = Store::open(&path).expect("open");
    let cut = (T0 + 3600) as i64;
    let mut removed = 0;
    loop {
        let n = store.prune(Resolution::Second, cut, 1000).expect("prune");
        if n == 0 {
            break;
        }
        removed += n;
    }
    assert_eq!(removed, 2 * 3599);
    assert_eq!(
        store.count_traffic_rows(Resolution::Second).ok(),
        Some(2 * 3601)
    );
}

#[test]
fn a_version_1_database_is_upgraded_with_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v1.db");
    {
        let c = rusqlite::Connection::open(&path).expect("create");
        c.execute_batch(netpulse_store::MIGRATIONS[0])
            .expect("v1 schema");
        c.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO sessions (started_at_ms, host, version, command, config)
             VALUES (1, 'old', '0.0.1', 'netpulse probe x', '{}');",
        )
        .expect("v1 data");
    }
    let store = Store::open(&path).expect("upgrade");
    assert_eq!(store.sessions().expect("sessions").len(), 1);
    assert!(store.ifaces().expect("new table").is_empty());
    drop(store);
    assert_eq!(rusqlite_version(&path), SCHEMA_VERSION);
}

#[test]
fn a_removed_target_is_finished_once_its_last_answers_are_in() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.db");
    let mut rec = two_targets(&path);
    // 30 s of both (10 probes/s), then target 1 is removed; target 0 goes on for 10 s.
    for step in 0..400u64 {
        let t = step * 100;
        rec.record(&result(0, step + 1, t, true));
        if t < 30_000 {
            rec.record(&result(1, step + 1, t, t < 29_000));
        }
        if t == 30_000 {
            rec.remove_target(1, "10.0.0.2", at_ms(t));
        }
        if t % 1000 == 900 {
            rec.commit(at_ms(t + 100), false);
        }
    }
    // Before the session ends, the removed target's minute is already final, with every probe,
    // and its outage (the last second unanswered) is closed.
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    let (sent, complete): (i64, i64) = conn
        .query_row(
            "SELECT p.sent, p.complete FROM probe_1m p JOIN targets t ON t.id = p.target_id
             WHERE t.label = '10.0.0.2'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("minute row");
    assert_eq!((sent, complete), (300, 1));
    let open: i64 = conn
        .query_row(
            "SELECT count(*) FROM probe_1s p JOIN targets t ON t.id = p.target_id
             WHERE t.label = '10.0.0.2' AND p.complete = 0",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(open, 0);
    let outages: i64 = conn
        .query_row("SELECT count(*) FROM outages", [], |r| r.get(0))
        .expect("outages");
    assert_eq!(outages, 1);
    let report = rec.finish(at_ms(40_000));
    assert_eq!(report.dropped + report.failed_commits, 0);
}

/// Sum of `sent` in `table` for the target labelled `label`.
fn sent_of(path: &Path, table: &str, label: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("sqlite");
    conn.query_row(
        &format!(
            "SELECT coalesce(sum(p.sent), 0) FROM {table} p JOIN targets t ON t.id = p.target_id
             WHERE t.label = ?1"
        ),
        [label],
        |r| r.get(0),
    )
    .expect("sum")
}

#[test]
fn a_failed_registration_shifts_no_target_and_is_retried() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.db");
    let mut rec = two_targets(&path);
    // Registering "C" fails (as it would with the database locked or full); "D" after it works.
    let outside = rusqlite::Connection::open(&path).expect("sqlite");
    outside
        .execute_batch(
            "CREATE TRIGGER fail_c BEFORE INSERT ON targets WHEN NEW.label = 'C'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .expect("trigger");
    rec.add_target(&target("C"), at_ms(0)); // index 2
    rec.add_target(&target("D"), at_ms(0)); // index 3
                                            // 10 s: C (index 2) answers 10 probes a second, D (index 3) 5.
    let mut seq = 0;
    for step in 0..100u64 {
        let t = step * 100;
        seq += 1;
        rec.record(&result(2, seq, t, true));
        if step % 2 == 0 {
            rec.record(&result(3, seq, t, true));
        }
        if t % 1000 == 900 {
            rec.commit(at_ms(t + 100), false);
        }
    }
    assert_eq!(
        sent_of(&path, "probe_1s", "C"),
        0,
        "C cannot be written yet"
    );
    let d_so_far = sent_of(&path, "probe_1s", "D");
    assert!(
        (35..=50).contains(&d_so_far),
        "D's own probes only: {d_so_far}"
    );
    // The database recovers: C is registered at the next commit with every probe it kept.
    outside.execute_batch("DROP TRIGGER fail_c").expect("drop");
    for step in 100..200u64 {
        let t = step * 100;
        seq += 1;
        rec.record(&result(2, seq, t, true));
        if t % 1000 == 900 {
            rec.commit(at_ms(t + 100), false);
        }
    }
    rec.finish(at_ms(20_000));
    assert_eq!(sent_of(&path, "probe_1s", "C"), 200);
    assert_eq!(sent_of(&path, "probe_1m", "C"), 200);
    assert_eq!(sent_of(&path, "probe_1s", "D"), 50);
    assert_eq!(sent_of(&path, "probe_1s", "10.0.0.1"), 0);
}

#[test]
fn a_target_never_registered_is_counted_as_dropped_at_the_end() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.db");
    let mut rec = two_targets(&path);
    let outside = rusqlite::Connection::open(&path).expect("sqlite");
    outside
        .execute_batch(
            "CREATE TRIGGER fail_c BEFORE INSERT ON targets WHEN NEW.label = 'C'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .expect("trigger");
    rec.add_target(&target("C"), at_ms(0)); // index 2, never registered
    for step in 0..30u64 {
        rec.record(&result(2, step + 1, step * 100, true));
        rec.record(&result(0, step + 1, step * 100, true));
    }
    rec.commit(at_ms(3_000), false);
    let report = rec.finish(at_ms(4_000));
    assert_eq!(report.dropped, 30, "C's results were never written");
    assert!(report.first_error.is_some_and(|e| e.contains("\"C\"")));
    assert_eq!(sent_of(&path, "probe_1s", "10.0.0.1"), 30);
}

#[test]
fn a_target_removed_and_re_added_by_reloads_keeps_every_minute_and_hour() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.db");
    let mut rec = two_targets(&path);
    // 10.0.0.2 is removed and re-added five times: three times in one reload (its interval
    // changed: the earlier index is still retiring) and twice 15 s later (it had retired).
    let mut index = 1usize;
    let mut sent = 0i64;
    let mut seq = 0u64;
    let mut gap_until = 0u64;
    for step in 0..1500u64 {
        let t = step * 100;
        if t > 0 && t % 25_000 == 0 {
            rec.remove_target(index, "10.0.0.2", at_ms(t));
            let later = (t / 25_000) % 2 == 0;
            if later {
                gap_until = t + 15_000;
            } else {
                index = rec_add(&mut rec, &mut index, t);
            }
        }
        if gap_until != 0 && t == gap_until {
            gap_until = 0;
            index = rec_add(&mut rec, &mut index, t);
        }
        if gap_until == 0 {
            seq += 1;
            rec.record(&result(index, seq, t, !seq.is_multiple_of(7)));
            sent += 1;
        }
        rec.record(&result(0, step + 1, t, true));
        if t % 1000 == 900 {
            rec.commit(at_ms(t + 100), false);
        }
    }
    rec.finish(at_ms(150_000));
    assert_eq!(sent_of(&path, "probe_1s", "10.0.0.2"), sent);
    assert_eq!(sent_of(&path, "probe_1m", "10.0.0.2"), sent, "per minute");
    assert_eq!(sent_of(&path, "probe_1h", "10.0.0.2"), sent, "per hour");
    assert_eq!(sent_of(&path, "probe_1h", "10.0.0.1"), 1500);
    // One row per bucket, and the answers add up as well as the probes.
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    let (rows, received, rtt_count): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(p.received), sum(p.rtt_count) FROM probe_1m p
             JOIN targets t ON t.id = p.target_id WHERE t.label = '10.0.0.2'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("minutes");
    assert_eq!(rows, 3);
    assert_eq!(received, sent - sent / 7);
    assert_eq!(rtt_count, received);
}

/// Adds 10.0.0.2 again (its next index) with another interval.
fn rec_add(rec: &mut Recording, index: &mut usize, t: u64) -> usize {
    let mut again = target("10.0.0.2");
    again.interval = Duration::from_millis(100 + t / 1000);
    rec.add_target(&again, at_ms(t));
    *index = if *index == 1 { 2 } else { *index + 1 };
    *index
}

/// Sum of `column` over a whole table.
fn total(path: &Path, table: &str, column: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("sqlite");
    conn.query_row(
        &format!("SELECT coalesce(sum({column}), 0) FROM {table}"),
        [],
        |r| r.get(0),
    )
    .expect("sum")
}

#[test]
fn a_session_whose_process_died_has_its_minutes_and_hours_rebuilt_at_the_next_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.db");
    let mut info = session();
    info.host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    let mut rec = Recording::new(
        Store::open(&path).expect("open"),
        &info,
        &[target("10.0.0.1"), target("10.0.0.2")],
        RecorderConfig::default(),
    )
    .expect("recording");
    // 95 s of probes and traffic, committed every second, then the process "dies": no finish.
    for step in 0..950u64 {
        let t = step * 100;
        rec.record(&result(0, step + 1, t, step % 9 != 0));
        rec.record(&result(1, step + 1, t, true));
        if t % 1000 == 900 {
            rec.record_traffic(at_ms(t + 100), &rates(1000, 500));
            rec.commit(at_ms(t + 100), false);
        }
    }
    // Still running (this very process): another open leaves it alone.
    let other = Store::open(&path).expect("open while recording");
    assert!(
        other.recovered().is_empty(),
        "a live session is not rebuilt"
    );
    drop(other);
    drop(rec);
    let seconds = total(&path, "probe_1s", "sent");
    assert!(
        seconds >= 1800,
        "{seconds} probes in closed and open seconds"
    );
    assert!(
        total(&path, "probe_1m", "sent") < seconds,
        "the minutes lag"
    );
    // The recording process is gone (another pid, as after a kill -9).
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    conn.execute("UPDATE sessions SET pid = 999999999", [])
        .expect("dead pid");
    drop(conn);
    let store = Store::open_read(&path).expect("report opens it");
    let rebuilt = store.recovered().to_vec();
    assert_eq!(rebuilt.len(), 1, "{rebuilt:?}");
    assert_eq!(rebuilt[0].session_id, 1);
    assert!(
        rebuilt[0].minutes >= 2 && rebuilt[0].hours >= 2,
        "{rebuilt:?}"
    );
    for table in ["probe_1m", "probe_1h"] {
        assert_eq!(total(&path, table, "sent"), seconds, "{table}");
        assert_eq!(
            total(&path, table, "received"),
            total(&path, "probe_1s", "received"),
            "{table}"
        );
        assert_eq!(
            total(&path, table, "rtt_count"),
            total(&path, "probe_1s", "rtt_count"),
            "{table}"
        );
    }
    for table in ["iface_1m", "iface_1h"] {
        assert_eq!(
            total(&path, table, "rx_bytes"),
            total(&path, "iface_1s", "rx_bytes"),
            "{table}"
        );
    }
    assert_eq!(
        total(&path, "probe_1s", "complete"),
        rusqlite::Connection::open(&path)
            .expect("sqlite")
            .query_row("SELECT count(*) FROM probe_1s", [], |r| r.get::<_, i64>(0))
            .expect("count"),
        "every second is final"
    );
    // Once only: the next open has nothing to rebuild, and the session still reads as unfinished.
    drop(store);
    let again = Store::open(&path).expect("open");
    assert!(again.recovered().is_empty());
    assert_eq!(again.sessions().expect("sessions")[0].ended_at_ms, None);
}

#[test]
fn damage_inside_the_data_pages_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.db");
    record_run(&path);
    // Overwrite a page in the middle of the file (the header and the schema stay readable).
    let mut bytes = digest(&path);
    let page = 4096;
    let pages = bytes.len() / page;
    assert!(pages > 8, "{pages} pages");
    let at = pages / 2 * page;
    for (i, b) in bytes[at..at + page].iter_mut().enumerate() {
        *b = (i * 31 % 256) as u8;
    }
    std::fs::write(&path, &bytes).expect("damage");
    for e in [
        Store::open(&path).err().expect("recording refused"),
        Store::open_read(&path).err().expect("report refused"),
    ] {
        assert!(matches!(e, StoreError::Damaged { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("r.db") && text.contains("untouched"),
            "{text}"
        );
    }
    assert_eq!(digest(&path), bytes, "the file was not written");
}

/// Makes every write of a per-second row fail, as a full disk does.
const DISK_FULL: &str = "
    CREATE TRIGGER full_insert BEFORE INSERT ON probe_1s
    BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
    CREATE TRIGGER full_update BEFORE UPDATE ON probe_1s
    BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;";
const DISK_FREED: &str = "DROP TRIGGER full_insert; DROP TRIGGER full_update;";

/// 70 s of two targets at 10 probes/s; the disk is full from 20 s to 50 s.
fn record_through_a_full_disk(path: &Path, retry_rows: usize) -> netpulse_store::RecorderReport {
    let store = Store::open(path).expect("open");
    let cfg = RecorderConfig {
        retry_rows,
        ..RecorderConfig::default()
    };
    let mut rec = Recording::new(
        store,
        &session(),
        &[target("10.0.0.1"), target("10.0.0.2")],
        cfg,
    )
    .expect("recording");
    let outside = rusqlite::Connection::open(path).expect("sqlite");
    for step in 0..700u64 {
        let t = step * 100;
        if t == 20_000 {
            outside.execute_batch(DISK_FULL).expect("fill");
        }
        if t == 50_000 {
            outside.execute_batch(DISK_FREED).expect("free");
        }
        rec.record(&result(0, step + 1, t, true));
        rec.record(&result(1, step + 1, t, !step.is_multiple_of(5)));
        if t % 1000 == 900 {
            rec.commit(at_ms(t + 100), false);
        }
    }
    rec.finish(at_ms(70_000))
}

#[test]
fn a_full_disk_loses_no_row_the_retry_buffer_holds_and_the_stop_is_recorded() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.db");
    let report = record_through_a_full_disk(&path, 100_000);
    assert_eq!(report.interruptions, 1);
    assert_eq!(report.rows_lost, 0);
    assert!((25..=35).contains(&report.failed_commits), "{report:?}");
    assert!(report
        .first_error
        .as_deref()
        .is_some_and(|e| e.contains("r.db") && e.contains("disk is full")));
    for table in ["probe_1s", "probe_1m", "probe_1h"] {
        assert_eq!(total(&path, table, "sent"), 1400, "{table}");
        assert_eq!(total(&path, table, "received"), 1260, "{table}");
    }
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    let (start, end, lost, error): (i64, i64, i64, String) = conn
        .query_row(
            "SELECT start_ms, end_ms, rows_lost, error FROM recording_gaps",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("one gap");
    let t0 = (T0 * 1000) as i64;
    assert_eq!((start - t0, end - t0, lost), (21_000, 51_000, 0));
    assert!(error.contains("disk is full"), "{error}");
    // Seconds closed while the disk was full are final too (only their flag was waiting), and
    // so are the minutes and the hour (built from the minutes as they were written).
    for table in ["probe_1s", "probe_1m", "probe_1h"] {
        let open: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE complete = 0"),
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(open, 0, "{table}");
    }
}

#[test]
fn rows_beyond_the_retry_buffer_are_counted_and_their_time_recorded_as_a_gap() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.db");
    let report = record_through_a_full_disk(&path, 10);
    assert_eq!(report.interruptions, 1);
    // 30 s × 2 targets of final seconds, 10 kept.
    assert!(report.rows_lost >= 45, "{report:?}");
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    let (lost, from, to): (i64, i64, i64) = conn
        .query_row(
            "SELECT rows_lost, lost_from_ms, lost_to_ms FROM recording_gaps",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("one gap");
    assert_eq!(lost as u64, report.rows_lost);
    let t0 = (T0 * 1000) as i64;
    assert!(from - t0 >= 18_000 && to - t0 <= 52_000, "{from} {to}");
    // What was kept or came after is there; what was lost is exactly what is missing.
    let seconds: i64 = conn
        .query_row("SELECT count(*) FROM probe_1s", [], |r| r.get(0))
        .expect("count");
    assert_eq!(seconds as u64 + report.rows_lost, 140);
}

#[test]
fn overlapping_sessions_merge_into_one_row_per_target_and_bucket() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.db");
    // Two recordings of the same targets at the same time (two netpulse processes).
    for _ in 0..2 {
        let mut rec = two_targets(&path);
        for step in 0..100u64 {
            rec.record(&result(0, step + 1, step * 100, true));
            if step % 10 == 9 {
                rec.commit(at_ms(step * 100 + 100), false);
            }
        }
        rec.finish(at_ms(10_000));
    }
    let store = Store::open_read(&path).expect("open");
    let t0 = (T0 * 1000) as i64;
    let rows = store
        .merged_rollups(Resolution::Second, t0, t0 + 10_000, None, Some("10.0.0.1"))
        .expect("rows");
    assert_eq!(rows.len(), 10, "one row a second, not one per session");
    assert!(rows.iter().all(|r| r.stats.sent == 20), "{rows:?}");
    let (res, per) = store.totals(t0, t0 + 10_000, None, None).expect("totals");
    assert_eq!(per["10.0.0.1"].sent, 200);
    assert_eq!(
        res,
        Resolution::Second,
        "all resolutions agree: the finest is used"
    );
}

/// The recorder's thread commits and prunes on the clock it is given: a fake one far in the
/// future (on the real clock nothing recorded then is old enough to prune), moved on an hour.
#[test]
fn the_recorder_thread_commits_and_prunes_on_the_clock_it_is_given() {
    use netpulse_core::clock::{Clock, SharedFakeClock};
    use std::sync::Arc;
    const FUTURE: u64 = 4_102_444_800; // 2100-01-01
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("h.db");
    let clock = Arc::new(SharedFakeClock::new(FUTURE));
    let cfg = RecorderConfig {
        retention: "1s=10s,1m=forever,1h=forever".parse().expect("retention"),
        ..RecorderConfig::default()
    };
    let rec = netpulse_store::Recorder::start_with_clock(
        Store::open(&path).expect("open"),
        &session(),
        &[target("10.0.0.1")],
        cfg,
        Arc::clone(&clock) as Arc<dyn Clock + Send + Sync>,
    )
    .expect("recorder");
    let at = |s: u64| {
        let mut r = result(0, s + 1, 0, true);
        r.sent_at = UNIX_EPOCH + Duration::from_secs(FUTURE + s);
        r
    };
    let sink = rec.sink();
    sink.offer_batch((0..5).map(at).collect());
    clock.advance(Duration::from_secs(3600));
    // Wakes the thread: it is an hour later by its clock, so the five seconds are written and,
    // older than ten seconds, pruned in the same round.
    sink.offer(&at(3600));
    let report = rec.finish(clock.wall());
    assert_eq!(report.pruned, 5, "{report:?}");
    let store = Store::open(&path).expect("open");
    assert_eq!(store.count_rows(Resolution::Second).expect("count"), 1);
}
