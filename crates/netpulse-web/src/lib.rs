//! netpulse's HTTP side: the dashboard page (served from the binary, no CDN), a JSON API over the
//! live view and the history database, live updates by Server-Sent Events, and `/metrics` for
//! Prometheus. It runs on its own thread with its own small tokio runtime, so the monitor's
//! probing never waits on a browser.

mod api;
pub mod metrics;
pub mod process;

pub use metrics::{Metrics, TargetMetrics};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use netpulse_core::live::LiveView;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What the monitor shares with the web side.
#[derive(Debug, Default)]
pub struct Shared {
    /// The live picture.
    pub live: Mutex<LiveView>,
    /// The Prometheus metrics.
    pub metrics: Metrics,
}

impl Shared {
    /// The live view, even if a panicking writer poisoned the lock (the data is still whole:
    /// every update is a few field writes).
    pub fn live(&self) -> std::sync::MutexGuard<'_, LiveView> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Address to bind.
    pub addr: SocketAddr,
    /// Bearer token every request must carry (`Authorization: Bearer …` or `?token=…`).
    pub token: Option<String>,
    /// Serve without a token on a non-loopback address anyway.
    pub insecure_no_auth: bool,
    /// The history database, for ranges longer than the live view holds.
    pub db: Option<PathBuf>,
    /// Serve only `/metrics` (a separate scrape address).
    pub metrics_only: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Binding elsewhere than loopback without a token.
    #[error("refusing to serve {0} without a token: anyone who can reach it would see your network; give --token, bind 127.0.0.1, or say --insecure-no-auth")]
    NoAuth(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime or thread could not start.
    #[error("cannot start the web server: {0}")]
    Start(std::io::Error),
}

/// A running server.
pub struct WebServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl WebServer {
    /// The address it listens on (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub shared: Arc<Shared>,
    pub token: Option<Arc<str>>,
    pub db: Option<Arc<PathBuf>>,
}

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");

/// Binds `cfg.addr` and serves on a thread of its own.
pub fn start(cfg: WebConfig, shared: Arc<Shared>) -> Result<WebServer, WebError> {
    if !cfg.addr.ip().is_loopback() && cfg.token.is_none() && !cfg.insecure_no_auth {
        return Err(WebError::NoAuth(cfg.addr));
    }
    let listener = std::net::TcpListener::bind(cfg.addr).map_err(|source| WebError::Bind {
        addr: cfg.addr,
        source,
    })?;
    listener.set_nonblocking(true).map_err(WebError::Start)?;
    let addr = listener.local_addr().map_err(WebError::Start)?;
    let state = AppState {
        shared,
        token: cfg.token.map(Arc::from),
        db: cfg.db.map(Arc::new),
    };
    let app = router(state, cfg.metrics_only);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(WebError::Start)?;
    let thread = std::thread::Builder::new()
        .name("web".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("netpulse: web server on {addr}: {e}");
                        return;
                    }
                };
                let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                });
                if let Err(e) = serve.await {
                    eprintln!("netpulse: web server on {addr}: {e}");
                }
            });
        })
        .map_err(WebError::Start)?;
    Ok(WebServer {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// The routes; `metrics_only` for a scrape address that serves nothing else.
pub(crate) fn router(state: AppState, metrics_only: bool) -> Router {
    let routes = Router::new().route("/metrics", get(metrics));
    let routes = if metrics_only {
        routes
    } else {
        routes
            .route("/", get(index))
            .route("/app.js", get(app_js))
            .route("/api/targets", get(api::targets))
            .route("/api/health", get(api::health))
            .route("/api/series", get(api::series))
            .route("/api/outages", get(api::outages))
            .route("/api/alerts", get(api::alerts))
            .route("/api/interfaces", get(api::interfaces))
            .route("/api/capture", get(api::capture))
            .route("/api/events", get(api::events))
    };
    routes
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

/// Compares without an early exit, so the time taken says nothing about the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = state.token.as_deref() else {
        return next.run(req).await;
    };
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // EventSource cannot set headers, and a person opens the page by its address: the token may
    // also come in the query string.
    let from_query = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(|t| t.to_string())
    });
    let ok = from_header.is_some_and(|t| same(t.as_bytes(), token.as_bytes()))
        || from_query.is_some_and(|t| same(t.as_bytes(), token.as_bytes()));
    if ok {
        next.run(req).await
    } else {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            "netpulse: a token is needed (Authorization: Bearer TOKEN, or ?token=TOKEN)\n",
        )
            .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"netpulse\""),
        );
        r
    }
}

async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
}

async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    // The recording's counters are brought up to date by the monitor's tick, with the live view.
    let open = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if open {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            state.shared.metrics.encode(),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            state.shared.metrics.encode_text(),
        )
            .into_response()
    }
}
