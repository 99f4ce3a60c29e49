//! HTTP(S) probes, every phase timed on the monotonic clock: DNS (the name is resolved for each
//! probe, as a client does), TCP connect, TLS handshake, request → first response byte, body.
//!
//! They run on a thread of their own (one tokio runtime for every HTTP target), never on the
//! engine's: the engine schedules an HTTP probe like any other, hands it here, and takes its
//! result back through its wake-up descriptor, so a slow server or a TLS handshake never delays
//! an ICMP send. hyper's connection-level client is used (not a pooled client) so that connect,
//! TLS and the request are separate steps, each timed; rustls (ring) does TLS, with the
//! webpki roots plus an optional CA file. TLS client configurations are shared by every target
//! with the same settings: a root store is ~100 KB, and 1 000 targets must not hold 1 000.

use crate::error::ProbeError;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use netpulse_core::record::{Detail, HttpDetail, HttpFailure, HttpPhase, Outcome, TlsFailure};
use netpulse_core::target::{HttpMethod, HttpOptions, HttpVersionWanted};
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// What an HTTP target needs on each probe, built once when it is added.
pub(crate) struct HttpTarget {
    tls: bool,
    host: String,
    port: u16,
    path: String,
    options: HttpOptions,
    body_regex: Option<regex::Regex>,
    tls_config: Arc<rustls::ClientConfig>,
    /// The connection kept between probes (`keep_alive`).
    kept: Mutex<Option<Sender>>,
}

/// A connection ready for requests.
enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    fn is_open(&self) -> bool {
        match self {
            Sender::H1(s) => !s.is_closed(),
            Sender::H2(s) => !s.is_closed(),
        }
    }
}

/// The user agent every probe sends.
const USER_AGENT: &str = concat!("netpulse/", env!("CARGO_PKG_VERSION"));

impl HttpTarget {
    /// Checks and compiles what a target of `label` asks for (regex, CA file, names).
    pub(crate) fn new(
        label: &str,
        tls: bool,
        host: &str,
        port: u16,
        path: &str,
        options: &HttpOptions,
    ) -> Result<Self, ProbeError> {
        let bad = |message: String| ProbeError::BadTarget {
            target: label.to_string(),
            message,
        };
        let body_regex = options
            .body_regex
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| bad(format!("bad body regex: {e}")))?;
        let server_name = options.host.as_deref().unwrap_or(host);
        ServerName::try_from(server_name.to_string())
            .map_err(|e| bad(format!("\"{server_name}\" is not a TLS server name: {e}")))?;
        for (name, value) in &options.headers {
            hyper::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| bad(format!("bad header name \"{name}\"")))?;
            hyper::header::HeaderValue::from_str(value)
                .map_err(|_| bad(format!("bad value for header \"{name}\"")))?;
        }
        let tls_config = client_config(options).map_err(bad)?;
        Ok(HttpTarget {
            tls,
            host: host.to_string(),
            port,
            path: path.to_string(),
            options: options.clone(),
            body_regex,
            tls_config,
            kept: Mutex::new(None),
        })
    }
}

/// The TLS settings a target's options ask for, shared by all targets asking the same.
fn client_config(options: &HttpOptions) -> Result<Arc<rustls::ClientConfig>, String> {
    type Key = (bool, Option<std::path::PathBuf>, HttpVersionWanted);
    static CONFIGS: OnceLock<Mutex<HashMap<Key, Arc<rustls::ClientConfig>>>> = OnceLock::new();
    let key: Key = (options.insecure, options.ca_file.clone(), options.version);
    let configs = CONFIGS.get_or_init(Mutex::default);
    if let Some(c) = configs.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(Arc::clone(c));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut config = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &options.ca_file {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
            let mut added = 0;
            for cert in certs {
                let cert =
                    cert.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("no certificate in CA file {}", path.display()));
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = match options.version {
        HttpVersionWanted::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        HttpVersionWanted::Http1 => vec![b"http/1.1".to_vec()],
        HttpVersionWanted::Http2 => vec![b"h2".to_vec()],
    };
    let config = Arc::new(config);
    configs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, Arc::clone(&config));
    Ok(config)
}

/// `insecure`: every certificate is accepted (signatures are still checked, so the handshake
/// is real); the chain is still read for its expiry.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One probe handed to the worker.
pub(crate) struct Job {
    pub(crate) tag_id: u32,
    pub(crate) seq: u64,
    pub(crate) target: Arc<HttpTarget>,
    pub(crate) timeout: Duration,
}

/// One probe's result, handed back to the engine.
pub(crate) struct Done {
    pub(crate) tag_id: u32,
    pub(crate) seq: u64,
    pub(crate) outcome: Outcome,
    pub(crate) rtt: Option<Duration>,
    pub(crate) detail: Detail,
}

/// The HTTP probes' thread: jobs in, results out through `deliver`.
pub(crate) struct HttpWorker {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl HttpWorker {
    /// Starts the thread; `deliver` gets every result (on that thread).
    pub(crate) fn spawn(deliver: Arc<dyn Fn(Done) + Send + Sync>) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (jobs, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("http-probes".into())
            .spawn(move || {
                runtime.block_on(async move {
                    // Ends when the engine (the only sender) is gone.
                    while let Some(job) = rx.recv().await {
                        let deliver = Arc::clone(&deliver);
                        tokio::spawn(async move { deliver(probe(job).await) });
                    }
                });
            })?;
        Ok(HttpWorker { jobs })
    }

    /// Hands a probe over; false when the worker is gone.
    pub(crate) fn submit(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }
}

/// Runs one probe to its end (the timeout included: it always answers).
async fn probe(job: Job) -> Done {
    let start = Instant::now();
    let deadline = start + job.timeout;
    let mut detail = HttpDetail::default();
    let result = request(&job.target, deadline, &mut detail).await;
    let total = start.elapsed();
    let (outcome, rtt) = match result {
        Ok(()) => (Outcome::Ok, Some(total)),
        Err((failure, _)) if matches!(failure, HttpFailure::Timeout(_)) => {
            detail.failure = Some(failure);
            (Outcome::Timeout, None)
        }
        Err((failure, message)) => {
            detail.failure = Some(failure);
            (Outcome::Error(message), None)
        }
    };
    Done {
        tag_id: job.tag_id,
        seq: job.seq,
        outcome,
        rtt,
        detail: Detail::Http(Box::new(detail)),
    }
}

type Failed = (HttpFailure, String);

fn add(detail: &mut HttpDetail, phase: HttpPhase, took: Duration) {
    let slot = &mut detail.phases[phase as usize];
    *slot = Some(slot.unwrap_or_default() + took);
}

/// Awaits `fut` until `deadline`; past it, the probe timed out in `phase`.
async fn within<T>(
    deadline: Instant,
    phase: HttpPhase,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, Failed> {
    timeout_at(deadline, fut).await.map_err(|_| {
        (
            HttpFailure::Timeout(phase),
            format!("timeout in {}", phase.name()),
        )
    })
}

/// Where a hop goes.
struct Hop {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

async fn request(t: &HttpTarget, deadline: Instant, d: &mut HttpDetail) -> Result<(), Failed> {
    let mut hop = Hop {
        tls: t.tls,
        host: t.host.clone(),
        port: t.port,
        path: t.path.clone(),
    };
    let o = &t.options;
    for n in 0..=o.follow_redirects {
        let first = n == 0;
        let kept = if first && o.keep_alive {
            t.kept
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .filter(Sender::is_open)
        } else {
            None
        };
        let sender = match kept {
            Some(s) => s,
            None => connect(t, &hop, first, deadline, d).await?,
        };
        let (status, location, sender) = exchange(t, &hop, first, sender, deadline, d).await?;
        if first && o.keep_alive {
            if let Some(s) = sender.filter(Sender::is_open) {
                *t.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
            }
        }
        let redirect = (300..400).contains(&status) && status != 304;
        match location.filter(|_| redirect && o.follow_redirects > 0) {
            Some(loc) if n < o.follow_redirects => {
                d.redirects += 1;
                hop = follow(&hop, &loc).ok_or_else(|| {
                    (
                        HttpFailure::Protocol,
                        format!("redirect to \"{loc}\" cannot be followed"),
                    )
                })?;
            }
            Some(_) => {
                return Err((
                    HttpFailure::Redirects,
                    format!("more than {} redirects", o.follow_redirects),
                ))
            }
            None => return Ok(()),
        }
    }
    Ok(())
}

/// Resolves, connects and (for HTTPS) shakes hands: a connection ready for a request.
async fn connect(
    t: &HttpTarget,
    hop: &Hop,
    first: bool,
    deadline: Instant,
    d: &mut HttpDetail,
) -> Result<Sender, Failed> {
    let addr = match hop.host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, hop.port),
        Err(_) => {
            let began = Instant::now();
            let found = within(
                deadline,
                HttpPhase::Dns,
                tokio::net::lookup_host((hop.host.as_str(), hop.port)),
            )
            .await?;
            add(d, HttpPhase::Dns, began.elapsed());
            let dns_failed = |e: String| (HttpFailure::Dns, format!("{}: {e}", hop.host));
            found
                .map_err(|e| dns_failed(e.to_string()))?
                .next()
                .ok_or_else(|| dns_failed("no address".into()))?
        }
    };
    let began = Instant::now();
    let tcp = within(
        deadline,
        HttpPhase::Connect,
        tokio::net::TcpStream::connect(addr),
    )
    .await?
    .map_err(|e| {
        let failure = if e.kind() == std::io::ErrorKind::ConnectionRefused {
            HttpFailure::Refused
        } else {
            HttpFailure::Connect
        };
        (failure, format!("connect to {addr}: {e}"))
    })?;
    add(d, HttpPhase::Connect, began.elapsed());
    let _ = tcp.set_nodelay(true);
    let wants_h2_plain = t.options.version == HttpVersionWanted::Http2;
    if !hop.tls {
        return handshake(TokioIo::new(tcp), wants_h2_plain).await;
    }
    // The override names the first hop's server only; a redirect elsewhere names its own.
    let name = match (&t.options.host, first) {
        (Some(h), true) => h.clone(),
        _ => hop.host.clone(),
    };
    let server_name = ServerName::try_from(name.clone())
        .map_err(|e| (HttpFailure::Protocol, format!("\"{name}\": {e}")))?;
    let began = Instant::now();
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&t.tls_config));
    let tls = within(
        deadline,
        HttpPhase::Tls,
        connector.connect(server_name, tcp),
    )
    .await?
    .map_err(|e| tls_failed(&e))?;
    add(d, HttpPhase::Tls, began.elapsed());
    let session = tls.get_ref().1;
    d.tls_version = match session.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => 13,
        Some(rustls::ProtocolVersion::TLSv1_2) => 12,
        _ => 0,
    };
    d.cert_expiry = session
        .peer_certificates()
        .and_then(|chain| earliest_expiry(chain.iter().map(|c| c.as_ref())));
    let h2 = session.alpn_protocol() == Some(b"h2");
    handshake(TokioIo::new(tls), h2).await
}

/// Starts HTTP/1.1 or HTTP/2 on a connection; its driver runs as a task of its own.
async fn handshake<I>(io: TokioIo<I>, h2: bool) -> Result<Sender, Failed>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let broke = |e: hyper::Error| (HttpFailure::Protocol, format!("HTTP handshake: {e}"));
    if h2 {
        let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(broke)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H2(sender))
    } else {
        let (sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(broke)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H1(sender))
    }
}

/// The earliest `notAfter` of a certificate chain (Unix seconds).
pub(crate) fn earliest_expiry<'a>(chain: impl Iterator<Item = &'a [u8]>) -> Option<i64> {
    chain
        .filter_map(|der| x509_parser::parse_x509_certificate(der).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp())
        .min()
}

/// A TLS failure, named when rustls says what it was.
fn tls_failed(e: &std::io::Error) -> Failed {
    use rustls::CertificateError as C;
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let kind = match inner {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            C::Expired | C::ExpiredContext { .. } => TlsFailure::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => TlsFailure::NotYetValid,
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsFailure::WrongName,
            C::UnknownIssuer => TlsFailure::UnknownCa,
            _ => TlsFailure::Other,
        },
        _ => TlsFailure::Other,
    };
    let what = match kind {
        TlsFailure::Expired => "certificate expired",
        TlsFailure::NotYetValid => "certificate not yet valid",
        TlsFailure::WrongName => "certificate is not for this name",
        TlsFailure::UnknownCa => "certificate signed by an unknown CA",
        TlsFailure::Other => "handshake failed",
    };
    (HttpFailure::Tls(kind), format!("TLS: {what} ({e})"))
}

/// Sends the request and reads the response; the status, a redirect's `Location` and the
/// connection if it can serve another request.
async fn exchange(
    t: &HttpTarget,
    hop: &Hop,
    first: bool,
    mut sender: Sender,
    deadline: Instant,
    d: &mut HttpDetail,
) -> Result<(u16, Option<String>, Option<Sender>), Failed> {
    let o = &t.options;
    let default_port = if hop.tls { 443 } else { 80 };
    let host = match (&o.host, first) {
        (Some(h), true) => h.clone(),
        _ if hop.host.contains(':') => format!("[{}]", hop.host),
        _ => hop.host.clone(),
    };
    let authority = if hop.port == default_port || (first && o.host.is_some()) {
        host
    } else {
        format!("{host}:{}", hop.port)
    };
    let method = match o.method {
        HttpMethod::Get => hyper::Method::GET,
        HttpMethod::Head => hyper::Method::HEAD,
    };
    let is_h2 = matches!(sender, Sender::H2(_));
    let uri = if is_h2 {
        let scheme = if hop.tls { "https" } else { "http" };
        format!("{scheme}://{authority}{}", hop.path)
    } else {
        hop.path.clone()
    };
    let mut req = hyper::Request::builder().method(method).uri(uri);
    if !is_h2 {
        req = req.header(hyper::header::HOST, authority.as_str());
    }
    req = req.header(hyper::header::USER_AGENT, USER_AGENT);
    if !o.keep_alive && !is_h2 {
        req = req.header(hyper::header::CONNECTION, "close");
    }
    for (name, value) in &o.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| (HttpFailure::Protocol, format!("request: {e}")))?;
    let began = Instant::now();
    let sent = match &mut sender {
        Sender::H1(s) => {
            within(deadline, HttpPhase::FirstByte, s.ready())
                .await?
                .map_err(|e| (HttpFailure::Protocol, e.to_string()))?;
            within(deadline, HttpPhase::FirstByte, s.send_request(req)).await?
        }
        Sender::H2(s) => {
            within(deadline, HttpPhase::FirstByte, s.ready())
                .await?
                .map_err(|e| (HttpFailure::Protocol, e.to_string()))?;
            within(deadline, HttpPhase::FirstByte, s.send_request(req)).await?
        }
    };
    let response = sent.map_err(|e| (HttpFailure::Protocol, format!("response: {e}")))?;
    add(d, HttpPhase::FirstByte, began.elapsed());
    let status = response.status().as_u16();
    d.status = status;
    d.version = match response.version() {
        hyper::Version::HTTP_10 => 10,
        hyper::Version::HTTP_11 => 11,
        hyper::Version::HTTP_2 => 20,
        _ => 0,
    };
    let location = response
        .headers()
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let check_body = o.body_contains.is_some() || t.body_regex.is_some();
    let mut body = response.into_body();
    let mut kept_bytes = Vec::new();
    let mut whole = true;
    if o.method == HttpMethod::Get {
        let began = Instant::now();
        loop {
            if d.bytes >= o.body_cap {
                whole = false;
                break;
            }
            let frame = within(deadline, HttpPhase::Body, body.frame()).await?;
            match frame {
                None => break,
                Some(Err(e)) => return Err((HttpFailure::Protocol, format!("body: {e}"))),
                Some(Ok(f)) => {
                    if let Some(data) = f.data_ref() {
                        d.bytes += data.len() as u64;
                        if check_body {
                            let room = usize::try_from(o.body_cap)
                                .unwrap_or(usize::MAX)
                                .saturating_sub(kept_bytes.len());
                            kept_bytes.extend_from_slice(&data[..data.len().min(room)]);
                        }
                    }
                }
            }
        }
        add(d, HttpPhase::Body, began.elapsed());
    }
    let redirect_followed =
        o.follow_redirects > 0 && (300..400).contains(&status) && location.is_some();
    if !redirect_followed {
        if !o.status_ok(status) {
            return Err((
                HttpFailure::Status,
                format!("status {status} (expected {})", o.expect_status_text()),
            ));
        }
        let text = String::from_utf8_lossy(&kept_bytes);
        if let Some(want) = &o.body_contains {
            if !text.contains(want.as_str()) {
                return Err((
                    HttpFailure::Body,
                    format!("body does not contain \"{want}\""),
                ));
            }
        }
        if let Some(re) = &t.body_regex {
            if !re.is_match(&text) {
                return Err((
                    HttpFailure::Body,
                    format!("body does not match /{}/", re.as_str()),
                ));
            }
        }
    }
    // A body not read to its end leaves an HTTP/1.1 connection unusable.
    let reusable = whole || matches!(sender, Sender::H2(_));
    Ok((status, location, reusable.then_some(sender)))
}

/// Where a `Location` leads from `from`: absolute (`http(s)://…`), scheme-relative (`//…`) or a
/// path on the same server.
fn follow(from: &Hop, location: &str) -> Option<Hop> {
    if location.starts_with("//") {
        let scheme = if from.tls { "https:" } else { "http:" };
        return follow(from, &format!("{scheme}{location}"));
    }
    if location.contains("://") {
        let spec = netpulse_core::target::parse_target(location).ok()?;
        return match spec.kind {
            netpulse_core::target::TargetKind::Http { tls, port, path } => Some(Hop {
                tls,
                host: spec.host,
                port,
                path,
            }),
            _ => None,
        };
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        // Relative to the current path's directory.
        let dir = from.path.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{location}")
    };
    Some(Hop {
        tls: from.tls,
        host: from.host.clone(),
        port: from.port,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_lead_where_their_location_says() {
        let from = Hop {
            tls: true,
            host: "a.example".into(),
            port: 8443,
            path: "/x/y?z=1".into(),
        };
        let to = follow(&from, "/next").expect("path");
        assert_eq!(
            (to.host.as_str(), to.port, to.path.as_str()),
            ("a.example", 8443, "/next")
        );
        let to = follow(&from, "other").expect("relative");
        assert_eq!(to.path, "/x/other");
        let to = follow(&from, "http://b.example/p").expect("absolute");
        assert_eq!(
            (to.tls, to.host.as_str(), to.port),
            (false, "b.example", 80)
        );
        let to = follow(&from, "//c.example/q").expect("scheme-relative");
        assert_eq!(
            (to.tls, to.host.as_str(), to.port),
            (true, "c.example", 443)
        );
        assert!(follow(&from, "ftp://x/").is_none());
    }
}
