//! Alerts and their delivery attempts in the store.

use crate::db::{unix_ms, Store, StoreError};
use crate::recorder::DeliveryRecord;
use netpulse_core::alert::AlertEvent;
use rusqlite::{params, Transaction};

pub(crate) fn put_alert(
    tx: &Transaction<'_>,
    session: i64,
    e: &AlertEvent,
) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO alerts (session_id, rule, subject, metric, status, value, op, threshold,
            severity, at_ms, since_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        session,
        e.rule,
        e.subject,
        e.metric.name(),
        e.kind.name(),
        e.value,
        e.op.symbol(),
        e.threshold,
        e.severity.name(),
        unix_ms(e.at),
        unix_ms(e.since),
    ])?;
    Ok(tx.last_insert_rowid())
}

pub(crate) fn put_delivery(
    tx: &Transaction<'_>,
    alert_row: i64,
    d: &DeliveryRecord,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO alert_deliveries (alert_id, notifier, attempt, ok, detail, at_ms, final)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        alert_row,
        d.notifier,
        d.attempt,
        d.ok,
        d.detail,
        unix_ms(d.at),
        d.last
    ])?;
    Ok(())
}

/// One recorded alert with its delivery attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    /// Session.
    pub session_id: i64,
    /// Rule name.
    pub rule: String,
    /// Target or interface.
    pub subject: String,
    /// firing, reminder, resolved.
    pub status: String,
    /// The value.
    pub value: f64,
    /// Unix ms.
    pub at_ms: i64,
    /// (notifier, attempt, ok, detail) in order.
    pub deliveries: Vec<(String, u32, bool, String)>,
    /// The path traced when it fired (`netpulse trace --json`'s summary), if one was.
    pub trace: Option<String>,
}

impl Store {
    /// Alerts with `from_ms ≤ at < to_ms`, oldest first, with their delivery attempts.
    pub fn alerts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<AlertRecord>, StoreError> {
        let err = self.sql_err("read alerts");
        let mut st = self
            .conn
            .prepare(
                "SELECT id, session_id, rule, subject, status, value, at_ms FROM alerts
                 WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms, id",
            )
            .map_err(&err)?;
        let rows: Vec<(i64, AlertRecord)> = st
            .query_map(params![from_ms, to_ms], |r| {
                Ok((
                    r.get(0)?,
                    AlertRecord {
                        session_id: r.get(1)?,
                        rule: r.get(2)?,
                        subject: r.get(3)?,
                        status: r.get(4)?,
                        value: r.get(5)?,
                        at_ms: r.get(6)?,
                        deliveries: Vec::new(),
                        trace: None,
                    },
                ))
            })
            .map_err(&err)?
            .collect::<Result<_, _>>()
            .map_err(&err)?;
        let mut st = self
            .conn
            .prepare(
                "SELECT notifier, attempt, ok, detail FROM alert_deliveries WHERE alert_id = ?1
                 ORDER BY id",
            )
            .map_err(&err)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, mut a) in rows {
            a.deliveries = st
                .query_map([id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get::<_, i64>(1)? as u32,
                        r.get::<_, i64>(2)? != 0,
                        r.get(3)?,
                    ))
                })
                .map_err(&err)?
                .collect::<Result<_, _>>()
                .map_err(&err)?;
            a.trace = self
                .conn
                .prepare_cached(
                    "SELECT trace FROM alert_traces WHERE alert_id = ?1 ORDER BY id DESC LIMIT 1",
                )
                .and_then(|mut t| {
                    t.query_row([id], |r| r.get::<_, String>(0))
                        .map(Some)
                        .or_else(|e| match e {
                            rusqlite::Error::QueryReturnedNoRows => Ok(None),
                            e => Err(e),
                        })
                })
                .map_err(&err)?;
            out.push(a);
        }
        Ok(out)
    }
}
