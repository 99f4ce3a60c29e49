//! The JSON API under `/api/` and the live event stream. Ranges up to the live view's 15
//! minutes come from memory at 1 s; longer ones from the history database's minute (≤ 2 days)
//! or hour rollups.

use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use netpulse_core::live::{LiveView, TargetSecond, HISTORY_SECONDS};
use netpulse_core::rollup::Resolution;
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `?range=15m&target=LABEL&iface=NAME`.
#[derive(Debug, Deserialize, Default)]
pub struct RangeQuery {
    /// How far back (`5m`, `1h`, `7d`, …; default 15m).
    pub range: Option<String>,
    /// One target (by label).
    pub target: Option<String>,
    /// One interface.
    pub iface: Option<String>,
}

/// An API error: its status and a sentence, sent as `{"error": "…"}`.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<netpulse_store::StoreError> for ApiError {
    fn from(e: netpulse_store::StoreError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

fn bad(msg: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg)
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The range asked for and the resolution that serves it: memory while the live view holds
/// the range (`live_secs`), else the recording (per second up to 15 minutes).
fn range(q: &RangeQuery, live_secs: usize) -> Result<(Duration, Option<Resolution>), ApiError> {
    let text = q.range.as_deref().unwrap_or("15m");
    let d =
        netpulse_core::parse_duration(text).map_err(|e| bad(format!("bad range {text:?}: {e}")))?;
    if d.is_zero() || d > Duration::from_secs(366 * 86_400) {
        return Err(bad(format!("range {text:?} must be between 1s and 366d")));
    }
    let res = if d <= Duration::from_secs(live_secs as u64) {
        None
    } else if d <= Duration::from_secs(HISTORY_SECONDS as u64) {
        Some(Resolution::Second)
    } else if d <= Duration::from_secs(2 * 86_400) {
        Some(Resolution::Minute)
    } else {
        Some(Resolution::Hour)
    };
    Ok((d, res))
}

/// Runs a database query on the runtime's blocking pool: a slow disk or a long range never
/// holds up the event stream, `/metrics` or the other requests on the web thread.
async fn off_thread<T: Send + 'static>(
    query: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(query).await.map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the query failed: {e}"),
        )
    })?
}

/// Whether a recording database is there to read.
fn recorded(state: &AppState) -> bool {
    state.db.as_ref().is_some_and(|p| p.exists())
}

fn store(state: &AppState) -> Result<Option<netpulse_store::Store>, ApiError> {
    match &state.db {
        None => Ok(None),
        Some(p) if !p.exists() => Ok(None),
        Some(p) => Ok(Some(netpulse_store::Store::open_read_unchecked(p)?)),
    }
}

/// The resolution's name; `None` (the live view) is per second.
fn res_name(res: Option<Resolution>) -> &'static str {
    res.unwrap_or(Resolution::Second).name()
}

/// One point of a series, as the API and the event stream give it (`t` in unix seconds).
fn point_json(p: &TargetSecond) -> Value {
    json!({"t": p.sec, "sent": p.sent, "received": p.received, "loss": p.loss(),
           "min_ms": p.min_ms, "avg_ms": p.avg_ms, "max_ms": p.max_ms})
}

fn targets_json(live: &LiveView) -> Value {
    let list: Vec<Value> = live
        .targets
        .iter()
        .flatten()
        .map(|t| {
            let (sent, received, min, avg, max) = t.recent(60);
            json!({
                "label": t.label,
                "target": t.target,
                "kind": t.kind,
                "active": t.active,
                "sent": t.total.sent,
                "received": t.total.received,
                "loss": t.total.loss(),
                "last_rtt_ms": t.last_rtt.map(|d| d.as_secs_f64() * 1e3),
                "in_outage": t.in_outage(),
                "last_minute": {
                    "sent": sent, "received": received,
                    "min_ms": min, "avg_ms": avg, "max_ms": max,
                },
                "outages": t.outages.len(),
                "late_sends": t.total.late_sends,
                "max_send_delay_ms": t.total.max_send_delay.as_secs_f64() * 1e3,
            })
        })
        .collect();
    Value::Array(list)
}

/// `GET /api/targets`: every target with its totals and the last minute.
pub(crate) async fn targets(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(targets_json(&state.shared.live())).into_response())
}

/// `GET /api/series?target=&range=`: latency and loss points per target.
pub(crate) async fn series(
    State(state): State<AppState>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let live_secs = state.shared.live().history_len();
    let (d, mut res) = range(&q, live_secs)?;
    if res == Some(Resolution::Second) && !recorded(&state) {
        res = None; // not recorded: what memory has is all there is
    }
    let from = now_s() - d.as_secs() as i64;
    let mut out = Vec::new();
    match res {
        None => {
            let live = state.shared.live();
            for t in live.targets.iter().flatten() {
                if q.target.as_ref().is_some_and(|w| **w != *t.label) {
                    continue;
                }
                let points: Vec<Value> = t
                    .points()
                    .filter(|p| p.sec >= from)
                    .map(|p| point_json(&p))
                    .collect();
                out.push(json!({ "target": t.label, "points": points }));
            }
        }
        Some(r) => {
            let (st, target) = (state.clone(), q.target.clone());
            // Several sessions may cover one bucket: the store merges them per target and time.
            let rows = off_thread(move || match store(&st)? {
                Some(store) => Ok(Some(store.merged_rollups(
                    r,
                    from * 1000,
                    now_s() * 1000,
                    None,
                    target.as_deref(),
                )?)),
                None => Ok(None),
            })
            .await?;
            let Some(rows) = rows else {
                return Ok(
                    Json(json!({ "resolution": res_name(res), "series": [] })).into_response()
                );
            };
            let mut per_target: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
            for row in rows {
                let mut point = point_json(&TargetSecond::of(row.ts, &row.stats));
                // A rollup holds its RTTs' histogram: the percentiles the dashboard's smoke
                // draws (10, 25, 50, 75, 90 %), in ms.
                if row.stats.rtt.count() > 0 {
                    let q = |f: f64| {
                        row.stats
                            .rtt
                            .quantile(f)
                            .map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
                    };
                    point["p"] = json!([q(0.10), q(0.25), q(0.50), q(0.75), q(0.90)]);
                }
                per_target.entry(row.target).or_default().push(point);
            }
            out.extend(
                per_target
                    .into_iter()
                    .map(|(t, points)| json!({ "target": t, "points": points })),
            );
        }
    }
    Ok(Json(json!({ "resolution": res_name(res), "series": out })).into_response())
}

/// `GET /api/outages?range=`: outages in the range, newest last.
pub(crate) async fn outages(
    State(state): State<AppState>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let (d, res) = range(&q, state.shared.live().history_len())?;
    let from_ms = (now_s() - d.as_secs() as i64) * 1000;
    let mut out = Vec::new();
    if res.is_some() {
        let (st, target) = (state.clone(), q.target.clone());
        let rows = off_thread(move || match store(&st)? {
            Some(s) => Ok(s.outages(from_ms, i64::MAX, None, target.as_deref())?),
            None => Ok(Vec::new()),
        })
        .await?;
        {
            out.extend(rows.into_iter().map(|o| {
                json!({"target": o.target, "start_ms": o.start_ms, "end_ms": o.end_ms,
                       "sent": o.sent, "received": o.received, "ongoing": o.ongoing})
            }));
        }
    }
    // The live ones (the store has only those that ended, and only when recording).
    let live = state.shared.live();
    for t in live.targets.iter().flatten() {
        if q.target.as_ref().is_some_and(|w| **w != *t.label) {
            continue;
        }
        for o in t.outages.iter().filter(|o| o.end_ms >= from_ms) {
            let seen = out
                .iter()
                .any(|v| v["target"] == *t.label && v["start_ms"] == o.start_ms && !o.ongoing);
            if !seen {
                out.push(
                    json!({"target": t.label, "start_ms": o.start_ms, "end_ms": o.end_ms,
                                "sent": o.sent, "received": o.received, "ongoing": o.ongoing}),
                );
            }
        }
    }
    out.sort_by_key(|v| v["start_ms"].as_i64().unwrap_or(0));
    Ok(Json(Value::Array(out)).into_response())
}

/// `GET /api/alerts`: firing now and the recent events.
pub(crate) async fn alerts(State(state): State<AppState>) -> Result<Response, ApiError> {
    let live = state.shared.live();
    Ok(Json(json!({ "firing": live.firing, "recent": live.alerts })).into_response())
}

fn ifaces_json(live: &LiveView, from: i64) -> Value {
    Value::Array(
        live.ifaces
            .iter()
            .map(|i| {
                let history: Vec<Value> = i
                    .history
                    .iter()
                    .filter(|h| h.0 >= from)
                    .map(|(t, rx, tx)| json!({"t": t, "rx_bps": rx * 8.0, "tx_bps": tx * 8.0}))
                    .collect();
                json!({
                    "name": i.name, "present": i.present,
                    "rx_bytes_per_sec": i.rx_rate, "tx_bytes_per_sec": i.tx_rate,
                    "rx_bytes": i.rx_bytes, "tx_bytes": i.tx_bytes,
                    "rx_packets": i.rx_packets, "tx_packets": i.tx_packets,
                    "errors": i.errors, "drops": i.drops, "history": history,
                })
            })
            .collect(),
    )
}

/// `GET /api/interfaces?range=`: live rates and totals, with history (bits/s) for the range.
pub(crate) async fn interfaces(
    State(state): State<AppState>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let (d, res) = range(&q, HISTORY_SECONDS)?;
    let from = now_s() - d.as_secs() as i64;
    let mut list = ifaces_json(&state.shared.live(), from);
    if let Some(r) = res {
        // Longer ranges: the history comes from the rollups.
        let (st, iface) = (state.clone(), q.iface.clone());
        let rows = off_thread(move || match store(&st)? {
            Some(s) => Ok(s.traffic(r, from, now_s() + 1, None, iface.as_deref())?),
            None => Ok(Vec::new()),
        })
        .await?;
        if let Value::Array(items) = &mut list {
            for item in items.iter_mut() {
                let name = item["name"].as_str().unwrap_or_default().to_string();
                let history: Vec<Value> = rows
                    .iter()
                    .filter(|row| row.iface == name && row.stats.covered_ms > 0)
                    .map(|row| {
                        let secs = row.stats.covered_ms as f64 / 1000.0;
                        json!({"t": row.ts,
                               "rx_bps": row.stats.counts.rx_bytes as f64 * 8.0 / secs,
                               "tx_bps": row.stats.counts.tx_bytes as f64 * 8.0 / secs})
                    })
                    .collect();
                item["history"] = Value::Array(history);
            }
        }
    }
    if let (Some(name), Value::Array(items)) = (&q.iface, &mut list) {
        items.retain(|i| i["name"] == name.as_str());
    }
    Ok(Json(json!({ "resolution": res_name(res), "interfaces": list })).into_response())
}

/// `GET /api/capture`: the monitor's live capture (totals, protocols, top talkers), or null.
pub(crate) async fn capture(State(state): State<AppState>) -> Response {
    Json(json!(state.shared.live().capture)).into_response()
}

/// The update pushed to pages: the open second of every target, interface rates, alerts.
fn update_json(live: &LiveView) -> Value {
    let targets: Vec<Value> = live
        .targets
        .iter()
        .flatten()
        .map(|t| {
            let last: Vec<Value> = t
                .last_closed()
                .into_iter()
                .chain(t.current_point())
                .map(|p| point_json(&p))
                .collect();
            json!({"label": t.label, "sent": t.total.sent, "received": t.total.received,
                   "last_rtt_ms": t.last_rtt.map(|d| d.as_secs_f64() * 1e3),
                   "in_outage": t.in_outage(), "points": last,
                   "late_sends": t.total.late_sends,
                   "max_send_delay_ms": t.total.max_send_delay.as_secs_f64() * 1e3})
        })
        .collect();
    let ifaces: Vec<Value> = live
        .ifaces
        .iter()
        .map(|i| {
            json!({"name": i.name, "rx_bps": i.rx_rate.map(|r| r * 8.0), "tx_bps": i.tx_rate.map(|r| r * 8.0),
                   "t": i.history.back().map(|h| h.0), "present": i.present})
        })
        .collect();
    json!({"version": live.version, "targets": targets, "interfaces": ifaces,
           "firing": live.firing.len(), "alerts": live.alerts.len(), "health": health_json(live)})
}

/// What the monitor lost and how late its scheduler was: results dropped per stage, failed
/// recording commits, late sends over all targets and the latest send.
pub(crate) fn health_json(live: &LiveView) -> Value {
    let (mut late, mut sends, mut max) = (0u64, 0u64, std::time::Duration::ZERO);
    for t in live.targets.iter().flatten() {
        late += t.total.late_sends;
        sends += t.total.sent;
        max = max.max(t.total.max_send_delay);
    }
    json!({"dropped": {"monitor": live.monitor_dropped, "recorder": live.record_dropped},
           "record_failed_commits": live.record_failed,
           "late_sends": late, "probes": sends, "max_send_delay_ms": max.as_secs_f64() * 1e3})
}

/// `GET /api/health`: [`health_json`].
pub(crate) async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(health_json(&state.shared.live())).into_response())
}

/// `GET /api/events`: an `update` event whenever the live view changed, at most 4 a second.
pub(crate) async fn events(
    State(state): State<AppState>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let tick = tokio::time::interval(Duration::from_millis(250));
    let stream = futures_util::stream::unfold(
        (state, u64::MAX, tick),
        |(state, seen, mut tick)| async move {
            loop {
                tick.tick().await;
                let update = {
                    let live = state.shared.live();
                    (live.version != seen).then(|| (live.version, update_json(&live)))
                };
                if let Some((version, data)) = update {
                    let ev = Event::default().event("update").data(data.to_string());
                    return Some((Ok(ev), (state, version, tick)));
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(range: &str, live_secs: usize) -> Option<Resolution> {
        let q = RangeQuery {
            range: Some(range.into()),
            target: None,
            iface: None,
        };
        range_for(&q, live_secs)
    }

    fn range_for(q: &RangeQuery, live_secs: usize) -> Option<Resolution> {
        match range(q, live_secs) {
            Ok((_, r)) => r,
            Err(_) => Some(Resolution::Hour),
        }
    }

    #[test]
    fn ranges_come_from_memory_while_it_holds_them_then_from_the_recording() {
        // Few targets: the live view holds 15 min.
        assert_eq!(res("15m", HISTORY_SECONDS), None);
        // Thousands: it holds 1 min, so the rest of the 15 min comes per second from the store.
        assert_eq!(res("1m", 60), None);
        assert_eq!(res("5m", 60), Some(Resolution::Second));
        assert_eq!(res("15m", 60), Some(Resolution::Second));
        assert_eq!(res("16m", 60), Some(Resolution::Minute));
        assert_eq!(res("2d", 60), Some(Resolution::Minute));
        assert_eq!(res("3d", 60), Some(Resolution::Hour));
    }
}
