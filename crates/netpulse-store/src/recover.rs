//! Sessions whose process died (`kill -9`, a crash, a power cut) leave their open minutes and
//! hours behind their seconds: minutes are rewritten every 10 s and built from closed seconds
//! only. The next open of the database rebuilds them from the rows below them — minutes from
//! seconds, hours from minutes — so the tables kept longest are as complete as the seconds.

use crate::db::{put_rollup, read_stats, unix_ms, Store, StoreError, ROLLUP_COLUMNS};
use crate::traffic::{put_traffic, read_traffic, traffic_table, TRAFFIC_COLUMNS};
use netpulse_core::rollup::Resolution;
use netpulse_core::stats::ProbeStats;
use netpulse_core::traffic::TrafficStats;
use rusqlite::{params, OptionalExtension, Transaction};
use std::time::SystemTime;

/// What the rebuild of one dead session did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The session.
    pub session_id: i64,
    /// Minute rows rebuilt (probes and interface traffic).
    pub minutes: u64,
    /// Hour rows rebuilt.
    pub hours: u64,
}

/// This process as a session records it: (pid, start time in clock ticks since boot). The start
/// time tells a live process from a later one that reuses the pid.
pub(crate) fn this_process() -> (i64, Option<i64>) {
    let pid = std::process::id();
    (i64::from(pid), start_ticks(pid))
}

/// Field 22 of `/proc/PID/stat`, read after the command name (which may hold spaces and ')').
fn start_ticks(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This machine's name, as sessions record it.
pub(crate) fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether the process that recorded a session still runs: on this machine (a WAL database is
/// only ever written by one machine), with that pid and that start time.
fn still_running(host: &str, pid: Option<i64>, start: Option<i64>) -> bool {
    let (Some(pid), Some(start)) = (pid, start) else {
        return false;
    };
    host == this_host() && u32::try_from(pid).ok().and_then(start_ticks) == Some(start)
}

impl Store {
    /// Sessions that did not end, were not rebuilt yet, and whose process is gone.
    pub(crate) fn dead_sessions(&self) -> Result<Vec<i64>, StoreError> {
        let err = self.sql_err("look for sessions that did not end");
        let mut st = self
            .conn
            .prepare(
                "SELECT id, host, pid, pid_start FROM sessions
                 WHERE ended_at_ms IS NULL AND recovered_at_ms IS NULL ORDER BY id",
            )
            .map_err(&err)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                ))
            })
            .map_err(&err)?;
        let mut dead = Vec::new();
        for row in rows {
            let (id, host, pid, start) = row.map_err(&err)?;
            if !still_running(&host, pid, start) {
                dead.push(id);
            }
        }
        Ok(dead)
    }

    /// Rebuilds the minutes and hours of every session whose process died, once each.
    pub fn recover_dead_sessions(&mut self) -> Result<Vec<Recovered>, StoreError> {
        let dead = self.dead_sessions()?;
        self.recover_sessions(&dead)
    }

    /// Rebuilds the sessions `dead` (found by [`Store::dead_sessions`]).
    pub(crate) fn recover_sessions(&mut self, dead: &[i64]) -> Result<Vec<Recovered>, StoreError> {
        let mut out = Vec::new();
        for &session in dead {
            let path = self.path().to_path_buf();
            let tx = self.conn.transaction().map_err(|source| StoreError::Sql {
                path: path.clone(),
                op: "rebuild a session that did not end",
                source,
            })?;
            let done = rebuild_session(&tx, session).and_then(|r| tx.commit().map(|()| r));
            match done {
                Ok((minutes, hours)) => out.push(Recovered {
                    session_id: session,
                    minutes,
                    hours,
                }),
                Err(source) => {
                    return Err(StoreError::Sql {
                        path,
                        op: "rebuild a session that did not end",
                        source,
                    })
                }
            }
        }
        Ok(out)
    }
}

/// Rebuilds one session's minutes from its seconds and hours from its minutes (probes and
/// traffic), marks its seconds final and the session rebuilt; returns (minutes, hours) rebuilt.
fn rebuild_session(tx: &Transaction<'_>, session: i64) -> rusqlite::Result<(u64, u64)> {
    let mut minutes = 0;
    let mut hours = 0;
    for (from, to) in [
        (Resolution::Second, Resolution::Minute),
        (Resolution::Minute, Resolution::Hour),
    ] {
        let probes = rebuild_probes(tx, session, from, to)?;
        let traffic = rebuild_traffic(tx, session, from, to)?;
        match to {
            Resolution::Minute => minutes += probes + traffic,
            _ => hours += probes + traffic,
        }
    }
    tx.execute(
        "UPDATE probe_1s SET complete = 1 WHERE session_id = ?1 AND complete = 0",
        [session],
    )?;
    tx.execute(
        "UPDATE iface_1s SET complete = 1 WHERE session_id = ?1 AND complete = 0",
        [session],
    )?;
    tx.execute(
        "UPDATE sessions SET recovered_at_ms = ?1 WHERE id = ?2",
        params![unix_ms(SystemTime::now()), session],
    )?;
    Ok((minutes, hours))
}

fn probe_table(res: Resolution) -> &'static str {
    match res {
        Resolution::Second => "probe_1s",
        Resolution::Minute => "probe_1m",
        Resolution::Hour => "probe_1h",
    }
}

/// How one family of rollup tables is rebuilt: its tables, key column, how a row reads,
/// merges and is written, and what "holds more" means for it.
struct Family<T> {
    table: fn(Resolution) -> &'static str,
    /// The series column (`target_id`, `iface_id`).
    key: &'static str,
    /// The columns [`Family::read`] reads, after the key and `p.ts`.
    columns: &'static str,
    read: fn(&rusqlite::Row<'_>, usize) -> rusqlite::Result<T>,
    merge: fn(&mut T, &T),
    /// The column and the figure compared: a rebuilt row replaces a stored one only when it
    /// holds at least as much (retention may have pruned some of the rows below).
    measure: (&'static str, fn(&T) -> i64),
    put: fn(&Transaction<'_>, Resolution, i64, i64, i64, &T) -> rusqlite::Result<()>,
}

/// Every `to` bucket of `session` not stored as complete is rebuilt from its `from` rows.
fn rebuild<T: Default>(
    tx: &Transaction<'_>,
    f: &Family<T>,
    session: i64,
    from: Resolution,
    to: Resolution,
) -> rusqlite::Result<u64> {
    let (len, key) = (to.seconds(), f.key);
    let sql = format!(
        "SELECT p.{key}, p.ts, {cols} FROM {src} p WHERE p.session_id = ?1 AND NOT EXISTS
           (SELECT 1 FROM {dst} d WHERE d.session_id = ?1 AND d.{key} = p.{key}
            AND d.ts = p.ts - p.ts % {len} AND d.complete = 1)
         ORDER BY p.{key}, p.ts",
        cols = f.columns,
        src = (f.table)(from),
        dst = (f.table)(to),
    );
    let groups = {
        let mut st = tx.prepare(&sql)?;
        let rows = st.query_map([session], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, (f.read)(r, 2)?))
        })?;
        let mut groups: Vec<(i64, i64, T)> = Vec::new();
        for row in rows {
            let (series, ts, stats) = row?;
            let bucket = to.bucket(ts);
            match groups.last_mut() {
                Some((k, b, acc)) if *k == series && *b == bucket => (f.merge)(acc, &stats),
                _ => {
                    // From empty, as the recorder builds a minute from its seconds.
                    let mut acc = T::default();
                    (f.merge)(&mut acc, &stats);
                    groups.push((series, bucket, acc));
                }
            }
        }
        groups
    };
    let stored_sql = format!(
        "SELECT {} FROM {} WHERE session_id = ?1 AND {key} = ?2 AND ts = ?3",
        f.measure.0,
        (f.table)(to)
    );
    let mut rebuilt = 0;
    for (series, bucket, stats) in groups {
        let stored: Option<i64> = tx
            .prepare_cached(&stored_sql)?
            .query_row(params![session, series, bucket], |r| r.get(0))
            .optional()?;
        if stored.is_some_and(|s| s > (f.measure.1)(&stats)) {
            continue;
        }
        (f.put)(tx, to, session, series, bucket, &stats)?;
        rebuilt += 1;
    }
    Ok(rebuilt)
}

/// The probe tables (compared by probes sent).
fn rebuild_probes(
    tx: &Transaction<'_>,
    session: i64,
    from: Resolution,
    to: Resolution,
) -> rusqlite::Result<u64> {
    let family = Family::<ProbeStats> {
        table: probe_table,
        key: "target_id",
        // `read_stats` reads from `p.sent`, the column after `p.ts` in ROLLUP_COLUMNS.
        columns: &ROLLUP_COLUMNS["p.ts, ".len()..],
        read: read_stats,
        merge: |acc, s| acc.merge(s),
        measure: ("sent", |s| s.sent as i64),
        put: |tx, res, session, target, ts, s| put_rollup(tx, res, session, target, ts, s, true),
    };
    rebuild(tx, &family, session, from, to)
}

/// The interface traffic tables (compared by the time covered).
fn rebuild_traffic(
    tx: &Transaction<'_>,
    session: i64,
    from: Resolution,
    to: Resolution,
) -> rusqlite::Result<u64> {
    let family = Family::<TrafficStats> {
        table: traffic_table,
        key: "iface_id",
        columns: TRAFFIC_COLUMNS,
        read: read_traffic,
        merge: |acc, s| acc.merge(s),
        measure: ("covered_ms", |s| s.covered_ms as i64),
        put: |tx, res, session, iface, ts, s| put_traffic(tx, res, session, iface, ts, s, true),
    };
    rebuild(tx, &family, session, from, to)
}
