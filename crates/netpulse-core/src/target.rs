//! What is probed, as the user writes it: `HOST`, `HOST:PORT`, `tcp://HOST:PORT`, `udp://HOST:PORT`,
//! `dns://SERVER[:PORT]/NAME[?type=A]`, `http://HOST[:PORT][/PATH]`, `https://…`. Parsing is pure; resolving names is the probe crate's job.

use std::fmt;

/// The kind of probe and its protocol parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// ICMP echo request / reply.
    Icmp,
    /// TCP connect time to a port (SYN to established; a RST is a reply too).
    Tcp {
        /// Destination port.
        port: u16,
    },
    /// A UDP datagram answered by a reply or an ICMP port-unreachable.
    Udp {
        /// Destination port.
        port: u16,
    },
    /// A DNS query over UDP.
    Dns {
        /// Server port (53 unless given).
        port: u16,
        /// The name queried.
        name: String,
        /// The record type queried, upper case (`A`, `AAAA`, `MX`, ...).
        qtype: String,
    },
    /// An HTTP(S) request, every phase timed (DNS, connect, TLS, first byte, body).
    Http {
        /// `https://`.
        tls: bool,
        /// Server port (80 or 443 unless given).
        port: u16,
        /// Path and query, from the first `/` (`/` when none is written).
        path: String,
    },
}

impl TargetKind {
    /// The short protocol name used in output and JSON (`icmp`, `tcp`, `udp`, `dns`).
    pub fn name(&self) -> &'static str {
        match self {
            TargetKind::Icmp => "icmp",
            TargetKind::Tcp { .. } => "tcp",
            TargetKind::Udp { .. } => "udp",
            TargetKind::Dns { .. } => "dns",
            TargetKind::Http { tls: false, .. } => "http",
            TargetKind::Http { tls: true, .. } => "https",
        }
    }

    /// The destination port, for kinds that have one.
    pub fn port(&self) -> Option<u16> {
        match self {
            TargetKind::Icmp => None,
            TargetKind::Tcp { port }
            | TargetKind::Udp { port }
            | TargetKind::Dns { port, .. }
            | TargetKind::Http { port, .. } => Some(*port),
        }
    }
}

/// How an HTTP(S) target is asked and judged (per target, from the config or `probe`'s flags).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpOptions {
    /// `GET` or `HEAD`.
    pub method: HttpMethod,
    /// Status ranges that count as success (inclusive); empty: 200–399.
    pub expect_status: Vec<(u16, u16)>,
    /// The body must contain this text.
    pub body_contains: Option<String>,
    /// The body must match this regular expression.
    pub body_regex: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Host header and TLS server name instead of the URL's host.
    pub host: Option<String>,
    /// Redirects followed (0: a redirect is the answer, judged by its status).
    pub follow_redirects: u8,
    /// Skip certificate verification (the chain is still read for its expiry).
    pub insecure: bool,
    /// Trust the CAs in this PEM file (besides the built-in roots).
    pub ca_file: Option<std::path::PathBuf>,
    /// HTTP version wanted.
    pub version: HttpVersionWanted,
    /// Keep the connection between probes (connect and TLS then measured once).
    pub keep_alive: bool,
    /// Most body bytes read (the rest is not waited for).
    pub body_cap: u64,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            method: HttpMethod::Get,
            expect_status: Vec::new(),
            body_contains: None,
            body_regex: None,
            headers: Vec::new(),
            host: None,
            follow_redirects: 0,
            insecure: false,
            ca_file: None,
            version: HttpVersionWanted::Auto,
            keep_alive: false,
            body_cap: 1 << 20,
        }
    }
}

impl HttpOptions {
    /// Whether `status` counts as success.
    pub fn status_ok(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..=399).contains(&status)
        } else {
            self.expect_status
                .iter()
                .any(|&(lo, hi)| (lo..=hi).contains(&status))
        }
    }

    /// The expected statuses as written back (`200-399`, `200,301-302`).
    pub fn expect_status_text(&self) -> String {
        if self.expect_status.is_empty() {
            return "200-399".into();
        }
        self.expect_status
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What an HTTP(S) target's probes need besides its kind: the host as written (resolved on
/// each probe) and the options.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpRequest {
    /// Host name or address literal (without brackets).
    pub host: String,
    /// How it is asked and judged.
    pub options: HttpOptions,
}

/// Parses expected statuses: `200`, `200-299`, `200,301-302`.
pub fn parse_status_list(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let code = |v: &str| {
            v.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| format!("\"{part}\" is not an HTTP status or range (100-599)"))
        };
        let (lo, hi) = (code(lo)?, code(hi)?);
        if lo > hi {
            return Err(format!("\"{part}\": the range runs backwards"));
        }
        out.push((lo, hi));
    }
    if out.is_empty() {
        return Err("no status given".into());
    }
    Ok(out)
}

/// The request method of an HTTP probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpMethod {
    /// GET: the body is read (up to the cap) and timed.
    #[default]
    Get,
    /// HEAD: headers only.
    Head,
}

/// Which HTTP version a probe speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpVersionWanted {
    /// HTTPS: HTTP/2 or HTTP/1.1 as ALPN settles it; plain HTTP: HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only (plain HTTP: with prior knowledge).
    Http2,
}

/// A parsed, not yet resolved, target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetSpec {
    /// Protocol and parameters.
    pub kind: TargetKind,
    /// Host name or address literal, without brackets.
    pub host: String,
}

impl fmt::Display for TargetSpec {
    /// The canonical way to write this target, used as its label.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match &self.kind {
            TargetKind::Icmp => write!(f, "{}", self.host),
            TargetKind::Tcp { port } => write!(f, "tcp://{host}:{port}"),
            TargetKind::Udp { port } => write!(f, "udp://{host}:{port}"),
            TargetKind::Dns { port, name, qtype } => {
                let port = if *port == 53 {
                    String::new()
                } else {
                    format!(":{port}")
                };
                write!(f, "dns://{host}{port}/{name}?type={qtype}")
            }
            TargetKind::Http { tls, port, path } => {
                let (scheme, default) = if *tls { ("https", 443) } else { ("http", 80) };
                let port = if *port == default {
                    String::new()
                } else {
                    format!(":{port}")
                };
                write!(f, "{scheme}://{host}{port}{path}")
            }
        }
    }
}

/// Why a target could not be parsed; the message names the target text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetParseError {
    /// Nothing given.
    #[error("empty target")]
    Empty,
    /// Unknown `scheme://`.
    #[error("unknown scheme \"{scheme}\" in \"{text}\" (expected tcp://, udp://, dns://, http://, https:// or a bare host)")]
    UnknownScheme {
        /// The scheme as written.
        scheme: String,
        /// The whole target.
        text: String,
    },
    /// A port that is not 1..=65535.
    #[error("bad port \"{port}\" in \"{text}\" (expected 1-65535)")]
    BadPort {
        /// The port as written.
        port: String,
        /// The whole target.
        text: String,
    },
    /// `tcp://` or `udp://` without a port.
    #[error("missing port in \"{0}\" (write HOST:PORT)")]
    MissingPort(String),
    /// Host part empty or containing characters no host has.
    #[error("bad host in \"{0}\"")]
    BadHost(String),
    /// Digits and dots that are not a whole IPv4 address: the resolver would take `80` as
    /// 0.0.0.80 and `10.61.0` as 10.61.0.0, which nobody means.
    #[error("\"{host}\" in \"{text}\" is not a host: {hint}")]
    NumericHost {
        /// The host as written.
        host: String,
        /// The whole target.
        text: String,
        /// What was probably meant.
        hint: &'static str,
    },
    /// `dns://` without a name to query.
    #[error("missing query name in \"{0}\" (write dns://SERVER/NAME)")]
    MissingName(String),
    /// A DNS record type that is not known.
    #[error("unknown DNS record type \"{qtype}\" in \"{text}\"")]
    BadQueryType {
        /// The type as written.
        qtype: String,
        /// The whole target.
        text: String,
    },
    /// An unknown `?key=` in a DNS target.
    #[error("unknown option \"{option}\" in \"{text}\" (only ?type= is known)")]
    BadOption {
        /// The option as written.
        option: String,
        /// The whole target.
        text: String,
    },
}

/// DNS record types a probe may ask for.
const DNS_TYPES: &[&str] = &[
    "A", "AAAA", "ANY", "CAA", "CNAME", "DNSKEY", "DS", "HINFO", "HTTPS", "MX", "NAPTR", "NS",
    "PTR", "SOA", "SRV", "SSHFP", "SVCB", "TLSA", "TXT",
];

/// Parses one target as written on the command line or in a config file.
pub fn parse_target(text: &str) -> Result<TargetSpec, TargetParseError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(TargetParseError::Empty);
    }
    if let Some((scheme, rest)) = t.split_once("://") {
        return match scheme.to_ascii_lowercase().as_str() {
            "icmp" => {
                let host = host_only(rest, t)?;
                Ok(TargetSpec {
                    kind: TargetKind::Icmp,
                    host,
                })
            }
            "tcp" | "udp" => {
                let (host, port) = split_host_port(rest, t)?;
                let port = port.ok_or_else(|| TargetParseError::MissingPort(t.to_string()))?;
                let kind = if scheme.eq_ignore_ascii_case("tcp") {
                    TargetKind::Tcp { port }
                } else {
                    TargetKind::Udp { port }
                };
                Ok(TargetSpec { kind, host })
            }
            "dns" => parse_dns(rest, t),
            "http" | "https" => parse_http(rest, t, scheme.eq_ignore_ascii_case("https")),
            other => Err(TargetParseError::UnknownScheme {
                scheme: other.to_string(),
                text: t.to_string(),
            }),
        };
    }
    // A bare IPv6 literal has several colons and no brackets: it is a host, not HOST:PORT.
    if !t.starts_with('[') && t.matches(':').count() > 1 {
        return Ok(TargetSpec {
            kind: TargetKind::Icmp,
            host: host_only(t, t)?,
        });
    }
    let (host, port) = split_host_port(t, t)?;
    let kind = match port {
        Some(port) => TargetKind::Tcp { port },
        None => TargetKind::Icmp,
    };
    Ok(TargetSpec { kind, host })
}

fn parse_http(rest: &str, text: &str, tls: bool) -> Result<TargetSpec, TargetParseError> {
    // The authority ends at the path, the query or the fragment, whichever comes first.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        // Credentials in a URL would be logged and shown everywhere the label is.
        return Err(TargetParseError::BadHost(text.to_string()));
    }
    let (host, port) = split_host_port(authority, text)?;
    // The fragment never leaves the client.
    let tail = tail.split('#').next().unwrap_or_default();
    if tail.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TargetParseError::BadHost(text.to_string()));
    }
    let path = match tail {
        "" => "/".to_string(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_string(),
    };
    Ok(TargetSpec {
        kind: TargetKind::Http {
            tls,
            port: port.unwrap_or(if tls { 443 } else { 80 }),
            path,
        },
        host,
    })
}

fn parse_dns(rest: &str, text: &str) -> Result<TargetSpec, TargetParseError> {
    let (authority, path) = rest
        .split_once('/')
        .ok_or_else(|| TargetParseError::MissingName(text.to_string()))?;
    let (host, port) = split_host_port(authority, text)?;
    let (name, query) = match path.split_once('?') {
        Some((n, q)) => (n, Some(q)),
        None => (path, None),
    };
    if name.is_empty() {
        return Err(TargetParseError::MissingName(text.to_string()));
    }
    if name.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(TargetParseError::BadHost(text.to_string()));
    }
    let mut qtype = "A".to_string();
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("type") => {
                    let upper = v.to_ascii_uppercase();
                    if !DNS_TYPES.contains(&upper.as_str()) {
                        return Err(TargetParseError::BadQueryType {
                            qtype: v.to_string(),
                            text: text.to_string(),
                        });
                    }
                    qtype = upper;
                }
                _ => {
                    return Err(TargetParseError::BadOption {
                        option: pair.to_string(),
                        text: text.to_string(),
                    })
                }
            }
        }
    }
    Ok(TargetSpec {
        kind: TargetKind::Dns {
            port: port.unwrap_or(53),
            name: name.to_string(),
            qtype,
        },
        host,
    })
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(s: &str, text: &str) -> Result<(String, Option<u16>), TargetParseError> {
    if let Some(inner) = s.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| TargetParseError::BadHost(text.to_string()))?;
        let port = match after {
            "" => None,
            p => Some(parse_port(
                p.strip_prefix(':')
                    .ok_or_else(|| TargetParseError::BadHost(text.to_string()))?,
                text,
            )?),
        };
        return Ok((host_only(host, text)?, port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Ok((host_only(host, text)?, Some(parse_port(port, text)?))),
        None => Ok((host_only(s, text)?, None)),
    }
}

fn host_only(host: &str, text: &str) -> Result<String, TargetParseError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ok = if host.contains(':') {
        // Only an IPv6 literal (with an optional %scope) has colons in it.
        let (addr, scope) = host.split_once('%').unwrap_or((host, "x"));
        addr.parse::<std::net::Ipv6Addr>().is_ok()
            && !scope.is_empty()
            && scope
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    if !ok {
        return Err(TargetParseError::BadHost(text.to_string()));
    }
    // A host of digits and dots must be a whole dotted quad (what ping users mean by one).
    if host.chars().all(|c| c.is_ascii_digit() || c == '.')
        && host.parse::<std::net::Ipv4Addr>().is_err()
    {
        let hint = if host.chars().all(|c| c.is_ascii_digit()) {
            "a bare number (a port? write HOST:PORT, or -p PORTS HOST)"
        } else {
            "not a whole IPv4 address (four numbers 0-255, like 10.61.0.1)"
        };
        return Err(TargetParseError::NumericHost {
            host: host.to_string(),
            text: text.to_string(),
            hint,
        });
    }
    Ok(host.to_string())
}

fn parse_port(p: &str, text: &str) -> Result<u16, TargetParseError> {
    match p.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(TargetParseError::BadPort {
            port: p.to_string(),
            text: text.to_string(),
        }),
    }
}

/// Parses a port list as `-p` takes it: `22,80,443` or ranges `8000-8003`.
pub fn parse_port_list(text: &str) -> Result<Vec<u16>, TargetParseError> {
    let mut ports = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse_port(a, text)?, parse_port(b, text)?);
                if a > b {
                    return Err(TargetParseError::BadPort {
                        port: part.to_string(),
                        text: text.to_string(),
                    });
                }
                ports.extend(a..=b);
            }
            None => ports.push(parse_port(part, text)?),
        }
    }
    if ports.is_empty() {
        return Err(TargetParseError::BadPort {
            port: String::new(),
            text: text.to_string(),
        });
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(t: &str) -> TargetKind {
        parse_target(t).map(|s| s.kind).expect("valid target")
    }

    #[test]
    fn http_urls_parse_and_print_canonically() {
        let http = |t: &str| parse_target(t).expect("valid");
        let s = http("https://example.org");
        assert_eq!(
            s.kind,
            TargetKind::Http {
                tls: true,
                port: 443,
                path: "/".into()
            }
        );
        assert_eq!(s.to_string(), "https://example.org/");
        let s = http("HTTP://[::1]:8080/health?full=1#frag");
        assert_eq!(s.host, "::1");
        assert_eq!(s.to_string(), "http://[::1]:8080/health?full=1");
        assert_eq!(http("http://h?x=1").to_string(), "http://h/?x=1");
        assert_eq!(http("https://h:443/a").to_string(), "https://h/a");
        assert_eq!(s.kind.name(), "http");
        assert_eq!(http("https://h/").kind.name(), "https");
        for bad in [
            "http://",
            "https://user:pw@h/",
            "http://h:0/",
            "http://h/a b",
            "http://80/",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forms_map_to_kinds() {
        assert_eq!(kind("10.77.0.2"), TargetKind::Icmp);
        assert_eq!(kind("example.org"), TargetKind::Icmp);
        assert_eq!(kind("::1"), TargetKind::Icmp);
        assert_eq!(kind("[::1]"), TargetKind::Icmp);
        assert_eq!(kind("10.77.0.2:80"), TargetKind::Tcp { port: 80 });
        assert_eq!(kind("[::1]:443"), TargetKind::Tcp { port: 443 });
        assert_eq!(kind("tcp://h:22"), TargetKind::Tcp { port: 22 });
        assert_eq!(kind("udp://h:53"), TargetKind::Udp { port: 53 });
        assert_eq!(
            kind("dns://127.0.0.1:5353/example.org?type=aaaa"),
            TargetKind::Dns {
                port: 5353,
                name: "example.org".into(),
                qtype: "AAAA".into()
            }
        );
        assert_eq!(
            kind("dns://1.1.1.1/example.org"),
            TargetKind::Dns {
                port: 53,
                name: "example.org".into(),
                qtype: "A".into()
            }
        );
    }

    #[test]
    fn hosts_are_unbracketed() {
        let s = parse_target("tcp://[fe80::1%eth0]:22").expect("valid");
        assert_eq!(s.host, "fe80::1%eth0");
        assert_eq!(s.to_string(), "tcp://[fe80::1%eth0]:22");
    }

    #[test]
    fn display_round_trips() {
        for t in [
            "10.0.0.1",
            "tcp://h:80",
            "udp://[::1]:9",
            "dns://s:5353/x.org?type=MX",
            "dns://s/x.org?type=A",
        ] {
            let spec = parse_target(t).expect("valid");
            assert_eq!(parse_target(&spec.to_string()), Ok(spec));
        }
    }

    #[test]
    fn numbers_that_are_not_whole_addresses_are_not_hosts() {
        for (t, says) in [
            ("80", "a bare number"),
            ("tcp://443:22", "a bare number"),
            ("10.61.0", "not a whole IPv4 address"),
            ("10.61.0.256", "not a whole IPv4 address"),
            ("1.2.3.4.5", "not a whole IPv4 address"),
        ] {
            let e = parse_target(t).expect_err(t).to_string();
            assert!(e.contains(says) && e.contains(t), "{t}: {e}");
        }
        for t in [
            "10.61.0.1",
            "8.8.8.8:53",
            "host80",
            "80.example",
            "tcp://1.2.3.4:80",
        ] {
            assert!(parse_target(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn bad_targets_say_why() {
        assert!(matches!(
            parse_target("h:0"),
            Err(TargetParseError::BadPort { .. })
        ));
        assert!(matches!(
            parse_target("h:99999"),
            Err(TargetParseError::BadPort { .. })
        ));
        assert!(matches!(
            parse_target("h:http"),
            Err(TargetParseError::BadPort { .. })
        ));
        assert!(matches!(
            parse_target("tcp://h"),
            Err(TargetParseError::MissingPort(_))
        ));
        assert!(matches!(
            parse_target("ftp://h"),
            Err(TargetParseError::UnknownScheme { .. })
        ));
        assert!(matches!(
            parse_target("dns://h"),
            Err(TargetParseError::MissingName(_))
        ));
        assert!(matches!(
            parse_target("dns://h/"),
            Err(TargetParseError::MissingName(_))
        ));
        assert!(matches!(
            parse_target("dns://h/x?type=BOGUS"),
            Err(TargetParseError::BadQueryType { .. })
        ));
        assert!(matches!(
            parse_target("dns://h/x?foo=1"),
            Err(TargetParseError::BadOption { .. })
        ));
        assert!(matches!(
            parse_target("a b"),
            Err(TargetParseError::BadHost(_))
        ));
        assert!(matches!(
            parse_target(":80"),
            Err(TargetParseError::BadHost(_))
        ));
        assert_eq!(parse_target("  "), Err(TargetParseError::Empty));
        let msg = parse_target("h:70000").expect_err("bad").to_string();
        assert!(msg.contains("70000") && msg.contains("h:70000"), "{msg}");
    }

    #[test]
    fn port_lists() {
        assert_eq!(parse_port_list("22,80,443"), Ok(vec![22, 80, 443]));
        assert_eq!(
            parse_port_list("8000-8002,9"),
            Ok(vec![8000, 8001, 8002, 9])
        );
        assert!(parse_port_list("").is_err());
        assert!(parse_port_list("0").is_err());
        assert!(parse_port_list("5-3").is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Whatever parses prints back to text that parses to the same target; nothing panics.
        #[test]
        fn parse_display_round_trip(text in "[a-z:/\\[\\]0-9.?=%&_-]{0,40}") {
            if let Ok(spec) = parse_target(&text) {
                prop_assert_eq!(parse_target(&spec.to_string()), Ok(spec));
            }
            let _ = parse_port_list(&text);
            let _ = crate::parse_duration(&text);
        }
    }
}
