//! Interface traffic in the store: rollup rows per interface (`iface_1s`, `iface_1m`,
//! `iface_1h`) and the queries `report --ifaces` needs.

use crate::db::{Store, StoreError};
use netpulse_core::iface::IfaceCounters;
use netpulse_core::rollup::Resolution;
use netpulse_core::traffic::TrafficStats;
use rusqlite::{params, Connection, Transaction};

pub(crate) fn traffic_table(res: Resolution) -> &'static str {
    match res {
        Resolution::Second => "iface_1s",
        Resolution::Minute => "iface_1m",
        Resolution::Hour => "iface_1h",
    }
}

/// One stored traffic row.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficRecord {
    /// Session that recorded it.
    pub session_id: i64,
    /// Interface name.
    pub iface: String,
    /// Bucket start (unix s).
    pub ts: i64,
    /// The traffic.
    pub stats: TrafficStats,
}

/// The id of interface `name`, created if new.
pub(crate) fn iface_id(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("INSERT INTO ifaces (name) VALUES (?1) ON CONFLICT(name) DO NOTHING")?
        .execute([name])?;
    conn.prepare_cached("SELECT id FROM ifaces WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
}

/// The columns of a traffic row that [`read_traffic`] reads.
pub(crate) const TRAFFIC_COLUMNS: &str = "p.covered_ms, p.first_ms, p.last_ms, p.rx_bytes,
    p.tx_bytes, p.rx_packets, p.tx_packets, p.rx_errors, p.tx_errors, p.rx_dropped, p.tx_dropped,
    p.multicast, p.rx_rate_max, p.tx_rate_max";

/// The traffic of a row selected with [`TRAFFIC_COLUMNS`] starting at column `at`.
pub(crate) fn read_traffic(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<TrafficStats> {
    let mut counts = [0u64; 9];
    for (i, c) in counts.iter_mut().enumerate() {
        *c = r.get::<_, i64>(at + 3 + i)?.max(0) as u64;
    }
    Ok(TrafficStats {
        counts: IfaceCounters::from_array(counts),
        covered_ms: r.get::<_, i64>(at)?.max(0) as u64,
        first_ms: r.get(at + 1)?,
        last_ms: r.get(at + 2)?,
        rx_rate_max: r.get(at + 12)?,
        tx_rate_max: r.get(at + 13)?,
    })
}

/// Upserts one traffic row inside a write transaction.
pub(crate) fn put_traffic(
    tx: &Transaction<'_>,
    res: Resolution,
    session: i64,
    iface: i64,
    ts: i64,
    s: &TrafficStats,
    complete: bool,
) -> rusqlite::Result<()> {
    let sql = format!(
        "INSERT INTO {} (session_id, iface_id, ts, covered_ms, first_ms, last_ms, rx_bytes,
            tx_bytes, rx_packets, tx_packets, rx_errors, tx_errors, rx_dropped, tx_dropped,
            multicast, rx_rate_avg, tx_rate_avg, rx_rate_max, tx_rate_max, complete)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 ?19, ?20)
         ON CONFLICT (iface_id, ts, session_id) DO UPDATE SET
            covered_ms = excluded.covered_ms, first_ms = excluded.first_ms,
            last_ms = excluded.last_ms, rx_bytes = excluded.rx_bytes,
            tx_bytes = excluded.tx_bytes, rx_packets = excluded.rx_packets,
            tx_packets = excluded.tx_packets, rx_errors = excluded.rx_errors,
            tx_errors = excluded.tx_errors, rx_dropped = excluded.rx_dropped,
            tx_dropped = excluded.tx_dropped, multicast = excluded.multicast,
            rx_rate_avg = excluded.rx_rate_avg, tx_rate_avg = excluded.tx_rate_avg,
            rx_rate_max = excluded.rx_rate_max, tx_rate_max = excluded.tx_rate_max,
            complete = excluded.complete",
        traffic_table(res)
    );
    let c = s
        .counts
        .to_array()
        .map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    tx.prepare_cached(&sql)?.execute(params![
        session,
        iface,
        ts,
        s.covered_ms as i64,
        s.first_ms,
        s.last_ms,
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        c[6],
        c[7],
        c[8],
        s.rx_rate_avg(),
        s.tx_rate_avg(),
        s.rx_rate_max,
        s.tx_rate_max,
        complete,
    ])?;
    Ok(())
}

impl Store {
    /// Traffic rows of `res` with `from ≤ ts < to` (unix s), optionally of one interface and one
    /// session, ordered by interface, time and session.
    pub fn traffic(
        &self,
        res: Resolution,
        from: i64,
        to: i64,
        session: Option<i64>,
        iface: Option<&str>,
    ) -> Result<Vec<TrafficRecord>, StoreError> {
        let err = self.sql_err("read interface traffic");
        let sql = format!(
            "SELECT p.session_id, i.name, p.ts, {TRAFFIC_COLUMNS}
             FROM {} p JOIN ifaces i ON i.id = p.iface_id
             WHERE p.ts >= ?1 AND p.ts < ?2 AND (?3 IS NULL OR p.session_id = ?3)
                   AND (?4 IS NULL OR i.name = ?4)
             ORDER BY i.name, p.ts, p.session_id",
            traffic_table(res)
        );
        let mut st = self.conn.prepare(&sql).map_err(&err)?;
        let rows = st
            .query_map(params![from, to, session, iface], |r| {
                Ok(TrafficRecord {
                    session_id: r.get(0)?,
                    iface: r.get(1)?,
                    ts: r.get(2)?,
                    stats: read_traffic(r, 3)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Names of every interface with recorded traffic.
    pub fn ifaces(&self) -> Result<Vec<String>, StoreError> {
        let err = self.sql_err("list interfaces");
        let mut st = self
            .conn
            .prepare("SELECT name FROM ifaces ORDER BY name")
            .map_err(&err)?;
        let rows = st.query_map([], |r| r.get(0)).map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Rows in a traffic table (for tests).
    pub fn count_traffic_rows(&self, res: Resolution) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT count(*) FROM {}", traffic_table(res)),
                [],
                |r| r.get(0),
            )
            .map_err(self.sql_err("count rows"))
    }
}

/// Calendar periods for traffic totals, in UTC (what `report --ifaces --per` groups by).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calendar {
    /// Per hour.
    Hour,
    /// Per day.
    Day,
    /// Per month.
    Month,
}

/// One interface's traffic over one calendar period.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodTraffic {
    /// Interface name.
    pub iface: String,
    /// Start of the period (unix s, UTC).
    pub period: i64,
    /// Start of its first recorded hour (unix s).
    pub first: i64,
    /// The traffic.
    pub stats: TrafficStats,
}

impl Calendar {
    /// The start (unix s, UTC) of the period holding unix second `ts`.
    pub fn start(self, ts: i64) -> i64 {
        match self {
            Calendar::Hour => ts - ts.rem_euclid(3_600),
            Calendar::Day => ts - ts.rem_euclid(86_400),
            Calendar::Month => {
                use netpulse_core::civil::{civil_from_days, days_from_civil};
                let (y, m, _) = civil_from_days(ts.div_euclid(86_400));
                days_from_civil(y, m, 1) * 86_400
            }
        }
    }
}

/// Hour rows of one interface with sessions that recorded it at the same time counted once:
/// two recorders watching the same interface (say `ifaces --record` beside `monitor`) saw the
/// same bytes. Of rows whose spans overlap, the one covering more time is kept.
fn without_overlaps(mut rows: Vec<TrafficRecord>) -> (Vec<TrafficRecord>, usize) {
    rows.sort_by(|a, b| {
        (a.ts, std::cmp::Reverse(a.stats.covered_ms))
            .cmp(&(b.ts, std::cmp::Reverse(b.stats.covered_ms)))
    });
    let mut kept: Vec<TrafficRecord> = Vec::with_capacity(rows.len());
    let mut dropped = 0;
    for r in rows {
        let overlaps = kept.iter().rev().take_while(|k| k.ts == r.ts).any(|k| {
            k.session_id != r.session_id
                && r.stats.first_ms < k.stats.last_ms
                && k.stats.first_ms < r.stats.last_ms
        });
        if overlaps {
            dropped += 1;
        } else {
            kept.push(r);
        }
    }
    (kept, dropped)
}

impl Store {
    /// Each interface's traffic per calendar period over `[from_ms, to_ms]`, from the hourly
    /// rollups, by interface then time; sessions that recorded an interface at the same time
    /// count once. Also returns how many overlapping hour rows were left out.
    pub fn traffic_per(
        &self,
        per: Calendar,
        from_ms: i64,
        to_ms: i64,
        session: Option<i64>,
        iface: Option<&str>,
    ) -> Result<(Vec<PeriodTraffic>, usize), StoreError> {
        let from = Resolution::Hour.bucket(from_ms.div_euclid(1000));
        let to = to_ms.div_euclid(1000) + 1;
        let rows = self.traffic(Resolution::Hour, from, to, session, iface)?;
        let mut per_iface: std::collections::BTreeMap<String, Vec<TrafficRecord>> =
            Default::default();
        for r in rows {
            per_iface.entry(r.iface.clone()).or_default().push(r);
        }
        let mut out: Vec<PeriodTraffic> = Vec::new();
        let mut overlapping = 0;
        for (name, rows) in per_iface {
            let (rows, dropped) = without_overlaps(rows);
            overlapping += dropped;
            for r in rows {
                let period = per.start(r.ts);
                match out.last_mut() {
                    Some(l) if l.iface == name && l.period == period => l.stats.merge(&r.stats),
                    _ => out.push(PeriodTraffic {
                        iface: name.clone(),
                        period,
                        first: r.ts,
                        stats: r.stats,
                    }),
                }
            }
        }
        Ok((out, overlapping))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(session: i64, ts: i64, first: i64, last: i64, rx: u64) -> TrafficRecord {
        let mut stats = TrafficStats {
            covered_ms: (last - first) as u64,
            first_ms: first,
            last_ms: last,
            ..Default::default()
        };
        stats.counts.rx_bytes = rx;
        TrafficRecord {
            session_id: session,
            iface: "eth0".into(),
            ts,
            stats,
        }
    }

    #[test]
    fn overlapping_sessions_count_once_sequential_ones_add_up() {
        // Session 1 watched 10:00–10:30, session 2 10:30–11:00: both count.
        let (kept, dropped) = without_overlaps(vec![
            rec(1, 0, 0, 1_800_000, 100),
            rec(2, 0, 1_800_000, 3_600_000, 50),
        ]);
        assert_eq!((kept.len(), dropped), (2, 0));
        // Session 3 watched the whole hour while session 4 watched 20 minutes of it.
        let (kept, dropped) = without_overlaps(vec![
            rec(4, 0, 600_000, 1_800_000, 40),
            rec(3, 0, 0, 3_600_000, 150),
        ]);
        assert_eq!((kept.len(), dropped), (1, 1));
        assert_eq!(kept[0].session_id, 3);
    }

    #[test]
    fn calendar_periods_start_where_the_calendar_says() {
        // 2024-02-29 13:45:10 UTC (a leap day).
        let t = 1_709_214_310;
        assert_eq!(Calendar::Hour.start(t), 1_709_211_600);
        assert_eq!(Calendar::Day.start(t), 1_709_164_800);
        assert_eq!(Calendar::Month.start(t), 1_706_745_600, "2024-02-01");
        assert_eq!(
            Calendar::Month.start(1_704_067_199),
            1_701_388_800,
            "2023-12-01"
        );
        assert_eq!(Calendar::Month.start(0), 0);
        assert_eq!(Calendar::Month.start(-1), -2_678_400, "1969-12-01");
    }
}
