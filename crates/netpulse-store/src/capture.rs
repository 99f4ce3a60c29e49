//! Packet capture results in the store: per-second protocol counts and finished flows.

use crate::recorder::{CaptureSecond, FlowRow};
use rusqlite::{params, Transaction};

pub(crate) fn put_second(
    tx: &Transaction<'_>,
    session: i64,
    c: &CaptureSecond,
) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO capture_1s (session_id, ts, protocol, packets, bytes) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (session_id, ts, protocol) DO UPDATE SET
            packets = packets + excluded.packets, bytes = bytes + excluded.bytes",
    )?;
    for (proto, packets, bytes) in &c.counts {
        st.execute(params![
            session,
            c.ts,
            proto,
            *packets as i64,
            *bytes as i64
        ])?;
    }
    Ok(())
}

pub(crate) fn put_flow(tx: &Transaction<'_>, session: i64, f: &FlowRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO capture_flows (session_id, proto, a, b, first_ms, last_ms, packets_a_to_b,
            bytes_a_to_b, packets_b_to_a, bytes_b_to_a, syn_to_synack_us, synack_to_ack_us, fin, rst)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        session,
        f.proto,
        f.a,
        f.b,
        f.first_ms,
        f.last_ms,
        f.a_to_b.0 as i64,
        f.a_to_b.1 as i64,
        f.b_to_a.0 as i64,
        f.b_to_a.1 as i64,
        f.syn_to_synack_us,
        f.synack_to_ack_us,
        f.fin,
        f.rst
    ])?;
    Ok(())
}

/// One stored second of a capture, per protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureRow {
    /// Session that recorded it.
    pub session_id: i64,
    /// Unix second (capture time).
    pub ts: i64,
    /// Protocol name.
    pub protocol: String,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl crate::Store {
    /// Per-second capture counts with `from ≤ ts < to`, optionally of one session, by time.
    pub fn capture_seconds(
        &self,
        from: i64,
        to: i64,
        session: Option<i64>,
    ) -> Result<Vec<CaptureRow>, crate::StoreError> {
        let err = self.sql_err("read capture seconds");
        let mut st = self
            .conn
            .prepare(
                "SELECT session_id, ts, protocol, packets, bytes FROM capture_1s
                 WHERE ts >= ?1 AND ts < ?2 AND (?3 IS NULL OR session_id = ?3)
                 ORDER BY ts, protocol",
            )
            .map_err(&err)?;
        let rows = st
            .query_map(params![from, to, session], |r| {
                Ok(CaptureRow {
                    session_id: r.get(0)?,
                    ts: r.get(1)?,
                    protocol: r.get(2)?,
                    packets: r.get::<_, i64>(3)?.max(0) as u64,
                    bytes: r.get::<_, i64>(4)?.max(0) as u64,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&err)
    }
}
