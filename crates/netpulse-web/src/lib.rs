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
use netpulse_core::live::{LiveHub, LiveView};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

/// What the monitor shares with the web side: the live hub (core's; the TUI reads the same
/// one) and the Prometheus metrics.
#[derive(Debug, Default)]
pub struct Shared {
    /// The live picture.
    pub live: Arc<LiveHub>,
    /// The Prometheus metrics.
    pub metrics: Metrics,
}

impl Shared {
    /// The live view, locked (see [`LiveHub::lock`]).
    pub fn live(&self) -> std::sync::MutexGuard<'_, LiveView> {
        self.live.lock()
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
    /// The token, as its keyed digest (see [`TokenCheck`]).
    pub token: Option<Arc<TokenCheck>>,
    pub db: Option<Arc<PathBuf>>,
}

/// Compares a presented token with the configured one by their SipHash digests under a key
/// chosen at start: the time taken depends on neither the token's bytes nor its length, and an
/// equal digest without an equal token needs the key.
pub(crate) struct TokenCheck {
    key: std::hash::RandomState,
    digest: u64,
}

impl TokenCheck {
    fn new(token: &str) -> Self {
        use std::hash::BuildHasher;
        let key = std::hash::RandomState::new();
        let digest = key.hash_one(token.as_bytes());
        TokenCheck { key, digest }
    }

    fn accepts(&self, presented: &str) -> bool {
        use std::hash::BuildHasher;
        // `==` on two u64 is one comparison: no early exit to time.
        self.key.hash_one(presented.as_bytes()) == self.digest
    }
}

/// Most connections served at once: an idle or slow client holds one, and every one holds a
/// file descriptor the probes need. Beyond this, new connections are closed at once.
const MAX_CONNECTIONS: usize = 256;

/// A client must send a request's whole header within this (slowloris, idle keep-alive).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The connection cap: [`MAX_CONNECTIONS`], or a quarter of the descriptors this process may
/// open if that is fewer, so clients can never take the probes' descriptors.
fn connection_cap() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    MAX_CONNECTIONS.min(usize::try_from(soft / 4).unwrap_or(MAX_CONNECTIONS).max(8))
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
        token: cfg.token.as_deref().map(|t| Arc::new(TokenCheck::new(t))),
        db: cfg.db.map(Arc::new),
    };
    let app = router(state, cfg.metrics_only);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Database queries run here (see `api::off_thread`): a few at once, not one per client.
        .max_blocking_threads(4)
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
                serve(listener, app, stop_rx).await;
            });
        })
        .map_err(WebError::Start)?;
    Ok(WebServer {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// Accepts connections until `stop`, each served on a task of its own with a header timeout,
/// at most [`connection_cap`] at once.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let cap = connection_cap();
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or a dying connection: wait a moment rather than spin.
                eprintln!("netpulse: web server: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.load(std::sync::atomic::Ordering::Relaxed) >= cap {
            drop(stream);
            continue;
        }
        let guard = OpenConnection::new(&open);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _guard = guard;
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(64 * 1024)
                .serve_connection(io, service);
            // A client that goes away is not an error worth a line.
            let _ = conn.await;
        });
    }
}

/// Counts a connection as open until dropped.
struct OpenConnection(Arc<std::sync::atomic::AtomicUsize>);

impl OpenConnection {
    fn new(open: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenConnection(Arc::clone(open))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
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
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Headers every answer carries: no sniffing, no framing by other sites, no referrer leaks,
/// scripts only from here (the page has no inline script).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    r
}

/// Whether a `Host` header names this machine's loopback (`localhost`, `127.x.y.z`, `[::1]`,
/// with or without a port): without a token, a page from elsewhere whose name an attacker
/// re-points at 127.0.0.1 (DNS rebinding) must not read the API.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(n, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                n
            } else {
                host
            }
        })
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = state.token.as_deref() else {
        // No token: only a loopback address is served (see `start`), and only to requests
        // naming it.
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if loopback_host(host) {
            return next.run(req).await;
        }
        return (
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "netpulse: Host {host:?} is not this machine's loopback; without a token only \
                 localhost / 127.0.0.1 / [::1] are answered (DNS rebinding protection)\n"
            ),
        )
            .into_response();
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
    let ok = from_header.is_some_and(|t| token.accepts(t))
        || from_query.is_some_and(|t| token.accepts(&t));
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
    let content_type = if open {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    // Encoded on the blocking pool and streamed as it is made: a scrape of 10 000 targets
    // (~21 MB) holds a few 256 KB chunks, not the whole text, and a client that stops reading
    // for 30 s ends its scrape instead of holding a thread.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(4);
    let shared = Arc::clone(&state.shared);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        shared.metrics.encode_chunked(open, &mut |chunk| {
            let sent = runtime.block_on(tokio::time::timeout(
                std::time::Duration::from_secs(30),
                tx.send(Ok(axum::body::Bytes::from(chunk))),
            ));
            matches!(sent, Ok(Ok(())))
        });
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    #[test]
    fn only_loopback_names_pass_the_host_check() {
        for ok in [
            "localhost",
            "LOCALHOST:9750",
            "127.0.0.1",
            "127.0.0.1:9750",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:9750",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:9750",
            "localhost.evil.example",
            "10.0.0.1:9750",
            "[::2]:9750",
            "127.0.0.1.nip.io",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn a_token_is_accepted_only_whole() {
        let t = TokenCheck::new("s3cret-token");
        assert!(t.accepts("s3cret-token"));
        for wrong in [
            "",
            "s3cret",
            "s3cret-token ",
            "S3cret-token",
            "s3cret-tokeN",
        ] {
            assert!(!t.accepts(wrong), "{wrong}");
        }
    }
}
