//! HTTP(S) targets' phases and results per minute: what each probe's detail adds to a
//! target's minute, written (provisionally, then final) with the other rows of a commit, and
//! read back merged over any range for `report`.

use netpulse_core::record::{HttpDetail, HttpPhase, Outcome, ProbeResult};
use netpulse_core::sketch::LatencySketch;
use netpulse_core::stats::{RttParts, RttStats};
use rusqlite::{params, Transaction};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

/// The phases stored: the five of [`HttpPhase::ALL`], then the whole request.
pub const PHASE_NAMES: [&str; 6] = ["dns", "connect", "tls", "first_byte", "body", "total"];

/// One HTTP target's minute as it fills.
#[derive(Debug, Clone, Default)]
pub struct HttpMinute {
    /// Indexed as [`PHASE_NAMES`].
    pub phases: [RttStats; 6],
    /// Status codes (`"200"`) and failure names (`"tls_expired"`) with their counts.
    pub results: BTreeMap<String, u64>,
    /// The earliest certificate expiry seen (Unix seconds).
    pub cert_not_after: Option<i64>,
    /// Changed since it was last written.
    pub(crate) dirty: bool,
}

impl HttpMinute {
    /// Adds one probe.
    pub fn record(&mut self, r: &ProbeResult, d: &HttpDetail) {
        for (stats, phase) in self.phases.iter_mut().zip(HttpPhase::ALL) {
            if let Some(t) = d.phase(phase) {
                stats.record(t);
            }
        }
        if let (Outcome::Ok, Some(total)) = (&r.outcome, r.rtt) {
            self.phases[5].record(total);
        }
        let result = match (d.failure, d.status) {
            (Some(f), _) => f.name().to_string(),
            (None, 0) => r.outcome.name().to_string(),
            (None, s) => s.to_string(),
        };
        *self.results.entry(result).or_default() += 1;
        if let Some(e) = d.cert_expiry {
            self.cert_not_after = Some(self.cert_not_after.map_or(e, |c| c.min(e)));
        }
        self.dirty = true;
    }

    /// Adds another minute's (or range's) figures.
    pub fn merge(&mut self, other: &HttpMinute) {
        for (a, b) in self.phases.iter_mut().zip(&other.phases) {
            a.merge(b);
        }
        for (k, n) in &other.results {
            *self.results.entry(k.clone()).or_default() += n;
        }
        if let Some(e) = other.cert_not_after {
            self.cert_not_after = Some(self.cert_not_after.map_or(e, |c| c.min(e)));
        }
    }
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1000.0)
}

/// Upserts one target's minute (its figures so far replace the stored ones).
pub(crate) fn write_minute(
    tx: &Transaction<'_>,
    session_id: i64,
    target_id: i64,
    minute: i64,
    m: &HttpMinute,
) -> Result<(), rusqlite::Error> {
    let mut phase = tx.prepare_cached(
        "INSERT INTO http_phase_1m (session_id, target_id, ts, phase, count, sum_ns, sum_sq_ns2,
             min_ms, avg_ms, p50_ms, p95_ms, max_ms, hist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (target_id, ts, session_id, phase) DO UPDATE SET
             count = excluded.count, sum_ns = excluded.sum_ns, sum_sq_ns2 = excluded.sum_sq_ns2,
             min_ms = excluded.min_ms, avg_ms = excluded.avg_ms, p50_ms = excluded.p50_ms,
             p95_ms = excluded.p95_ms, max_ms = excluded.max_ms, hist = excluded.hist",
    )?;
    for (name, stats) in PHASE_NAMES.iter().zip(&m.phases) {
        if stats.count() == 0 {
            continue;
        }
        let p = stats.parts();
        phase.execute(params![
            session_id,
            target_id,
            minute,
            name,
            p.count as i64,
            i64::try_from(p.sum_ns).unwrap_or(i64::MAX),
            p.sum_sq_ns as f64,
            ms(stats.min()),
            ms(stats.mean()),
            ms(stats.quantile(0.5)),
            ms(stats.quantile(0.95)),
            ms(stats.max()),
            p.hist.to_bytes(),
        ])?;
    }
    let mut result = tx.prepare_cached(
        "INSERT INTO http_result_1m (session_id, target_id, ts, result, count, cert_not_after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (target_id, ts, session_id, result) DO UPDATE SET
             count = excluded.count, cert_not_after = excluded.cert_not_after",
    )?;
    for (name, n) in &m.results {
        result.execute(params![
            session_id,
            target_id,
            minute,
            name,
            *n as i64,
            m.cert_not_after
        ])?;
    }
    Ok(())
}

impl crate::Store {
    /// Every HTTP target's figures over `[from_ms, to_ms]`, merged per target label
    /// (optionally of one session and one target).
    pub fn http_minutes(
        &self,
        from_ms: i64,
        to_ms: i64,
        session: Option<i64>,
        target: Option<&str>,
    ) -> Result<BTreeMap<String, HttpMinute>, crate::StoreError> {
        let mut out: BTreeMap<String, HttpMinute> = BTreeMap::new();
        for ((label, _), m) in self.http_series(from_ms, to_ms, session, target, i64::MAX)? {
            out.entry(label).or_default().merge(&m);
        }
        Ok(out)
    }

    /// [`Store::http_minutes`] per bucket of `bucket_s` seconds (a multiple of 60; buckets
    /// start at multiples of it), keyed by label and bucket start.
    pub fn http_series(
        &self,
        from_ms: i64,
        to_ms: i64,
        session: Option<i64>,
        target: Option<&str>,
        bucket_s: i64,
    ) -> Result<BTreeMap<(String, i64), HttpMinute>, crate::StoreError> {
        let from = from_ms.div_euclid(60_000) * 60;
        let to = to_ms.div_euclid(1000) + 1;
        let bucket = |ts: i64| {
            if bucket_s == i64::MAX {
                0
            } else {
                ts - ts.rem_euclid(bucket_s.max(60))
            }
        };
        let mut out: BTreeMap<(String, i64), HttpMinute> = BTreeMap::new();
        let err = self.sql_err("read HTTP phases");
        let mut st = self
            .conn
            .prepare(
                "SELECT t.label, h.phase, h.count, h.sum_ns, h.sum_sq_ns2, h.min_ms, h.max_ms, h.hist,
                        h.ts
                 FROM http_phase_1m h JOIN targets t ON t.id = h.target_id
                 WHERE h.ts >= ?1 AND h.ts < ?2 AND (?3 IS NULL OR h.session_id = ?3)
                       AND (?4 IS NULL OR t.label = ?4)",
            )
            .map_err(&err)?;
        let rows = st
            .query_map(params![from, to, session, target], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, f64>(4)?,
                    r.get::<_, Option<f64>>(5)?,
                    r.get::<_, Option<f64>>(6)?,
                    r.get::<_, Vec<u8>>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            })
            .map_err(&err)?;
        let from_ms_f =
            |v: Option<f64>| Duration::from_secs_f64(v.unwrap_or(0.0).max(0.0) / 1000.0);
        for row in rows {
            let (label, phase, count, sum, sum_sq, min, max, hist, ts) = row.map_err(&err)?;
            let Some(i) = PHASE_NAMES.iter().position(|p| *p == phase) else {
                continue;
            };
            // A damaged sketch loses its percentiles, not the row's counts.
            let hist = LatencySketch::from_bytes(&hist).unwrap_or_default();
            let stats = RttStats::from_parts(RttParts {
                count: count.max(0) as u64,
                sum_ns: sum.max(0) as u128,
                sum_sq_ns: sum_sq.max(0.0) as u128,
                min: from_ms_f(min),
                max: from_ms_f(max),
                hist,
            });
            out.entry((label, bucket(ts))).or_default().phases[i].merge(&stats);
        }
        let mut st = self
            .conn
            .prepare(
                "SELECT t.label, h.result, h.count, h.cert_not_after, h.ts
                 FROM http_result_1m h JOIN targets t ON t.id = h.target_id
                 WHERE h.ts >= ?1 AND h.ts < ?2 AND (?3 IS NULL OR h.session_id = ?3)
                       AND (?4 IS NULL OR t.label = ?4)",
            )
            .map_err(&err)?;
        let rows = st
            .query_map(params![from, to, session, target], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(&err)?;
        for row in rows {
            let (label, result, count, cert, ts) = row.map_err(&err)?;
            let m = out.entry((label, bucket(ts))).or_default();
            *m.results.entry(result).or_default() += count.max(0) as u64;
            if let Some(e) = cert {
                m.cert_not_after = Some(m.cert_not_after.map_or(e, |c| c.min(e)));
            }
        }
        Ok(out)
    }
}

/// The minute (Unix seconds) a probe sent at `r.sent_at` counts in.
pub(crate) fn minute_of(r: &ProbeResult) -> i64 {
    let secs = r
        .sent_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    secs.div_euclid(60) * 60
}
