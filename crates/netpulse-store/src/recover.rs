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
        let candidates = self.dead_sessions()?;
        let mut out = Vec::new();
        for session in candidates {
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

/// Every `to` bucket of `session` not stored as complete is rebuilt from its `from` rows; a
/// rebuilt row replaces the stored one only when it holds at least as many probes (retention
/// may have pruned some of the rows below).
fn rebuild_probes(
    tx: &Transaction<'_>,
    session: i64,
    from: Resolution,
    to: Resolution,
) -> rusqlite::Result<u64> {
    let len = to.seconds();
    let sql = format!(
        "SELECT p.target_id, {ROLLUP_COLUMNS} FROM {src} p WHERE p.session_id = ?1 AND NOT EXISTS
           (SELECT 1 FROM {dst} d WHERE d.session_id = ?1 AND d.target_id = p.target_id
            AND d.ts = p.ts - p.ts % {len} AND d.complete = 1)
         ORDER BY p.target_id, p.ts",
        src = probe_table(from),
        dst = probe_table(to),
    );
    let groups = {
        let mut st = tx.prepare(&sql)?;
        let rows = st.query_map([session], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, read_stats(r, 2)?))
        })?;
        let mut groups: Vec<(i64, i64, ProbeStats)> = Vec::new();
        for row in rows {
            let (target, ts, stats) = row?;
            let bucket = to.bucket(ts);
            match groups.last_mut() {
                Some((t, b, acc)) if *t == target && *b == bucket => acc.merge(&stats),
                _ => {
                    let mut acc = ProbeStats::default();
                    acc.merge(&stats);
                    groups.push((target, bucket, acc));
                }
            }
        }
        groups
    };
    let stored_sql = format!(
        "SELECT sent FROM {} WHERE session_id = ?1 AND target_id = ?2 AND ts = ?3",
        probe_table(to)
    );
    let mut rebuilt = 0;
    for (target, bucket, stats) in groups {
        let stored: Option<i64> = tx
            .prepare_cached(&stored_sql)?
            .query_row(params![session, target, bucket], |r| r.get(0))
            .optional()?;
        if stored.is_some_and(|s| s > stats.sent as i64) {
            continue;
        }
        put_rollup(tx, to, session, target, bucket, &stats, true)?;
        rebuilt += 1;
    }
    Ok(rebuilt)
}

/// As [`rebuild_probes`], for interface traffic (compared by bytes covered).
fn rebuild_traffic(
    tx: &Transaction<'_>,
    session: i64,
    from: Resolution,
    to: Resolution,
) -> rusqlite::Result<u64> {
    let len = to.seconds();
    let sql = format!(
        "SELECT p.iface_id, p.ts, {TRAFFIC_COLUMNS} FROM {src} p WHERE p.session_id = ?1 AND NOT EXISTS
           (SELECT 1 FROM {dst} d WHERE d.session_id = ?1 AND d.iface_id = p.iface_id
            AND d.ts = p.ts - p.ts % {len} AND d.complete = 1)
         ORDER BY p.iface_id, p.ts",
        src = traffic_table(from),
        dst = traffic_table(to),
    );
    let groups = {
        let mut st = tx.prepare(&sql)?;
        let rows = st.query_map([session], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                read_traffic(r, 2)?,
            ))
        })?;
        let mut groups: Vec<(i64, i64, TrafficStats)> = Vec::new();
        for row in rows {
            let (iface, ts, stats) = row?;
            let bucket = to.bucket(ts);
            match groups.last_mut() {
                Some((i, b, acc)) if *i == iface && *b == bucket => acc.merge(&stats),
                _ => groups.push((iface, bucket, stats)),
            }
        }
        groups
    };
    let stored_sql = format!(
        "SELECT covered_ms FROM {} WHERE session_id = ?1 AND iface_id = ?2 AND ts = ?3",
        traffic_table(to)
    );
    let mut rebuilt = 0;
    for (iface, bucket, stats) in groups {
        let stored: Option<i64> = tx
            .prepare_cached(&stored_sql)?
            .query_row(params![session, iface, bucket], |r| r.get(0))
            .optional()?;
        if stored.is_some_and(|s| s > stats.covered_ms as i64) {
            continue;
        }
        put_traffic(tx, to, session, iface, bucket, &stats, true)?;
        rebuilt += 1;
    }
    Ok(rebuilt)
}
