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
