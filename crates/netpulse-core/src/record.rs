//! The records sources produce. A failed probe is data, never a crash.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// Index of a target in the run's target list.
pub type TargetId = usize;

/// An ICMP error that answered a probe instead of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// True for ICMPv6 type/code numbering.
    pub v6: bool,
    /// ICMP type (3 = unreachable, 11 = time exceeded for v4; 1 and 3 for v6).
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// The router or host that sent the error.
    pub from: Option<IpAddr>,
}

impl IcmpError {
    /// True when this error means the destination port is closed (the host itself answered).
    pub fn is_port_unreachable(&self) -> bool {
        if self.v6 {
            self.icmp_type == 1 && self.code == 4
        } else {
            self.icmp_type == 3 && self.code == 3
        }
    }

    /// True for "time to live / hop limit exceeded".
    pub fn is_ttl_exceeded(&self) -> bool {
        if self.v6 {
            self.icmp_type == 3
        } else {
            self.icmp_type == 11
        }
    }

    /// The message ping prints for this error.
    pub fn describe(&self) -> &'static str {
        match (self.v6, self.icmp_type, self.code) {
            (false, 3, 0) => "Destination Net Unreachable",
            (false, 3, 1) => "Destination Host Unreachable",
            (false, 3, 2) => "Destination Protocol Unreachable",
            (false, 3, 3) => "Destination Port Unreachable",
            (false, 3, 4) => "Frag needed",
            (false, 3, 9 | 10 | 13) => "Communication administratively prohibited",
            (false, 3, _) => "Destination Unreachable",
            (false, 11, _) => "Time to live exceeded",
            (false, 12, _) => "Parameter problem",
            (true, 1, 0) => "No route",
            (true, 1, 1) => "Administratively prohibited",
            (true, 1, 3) => "Address unreachable",
            (true, 1, 4) => "Port unreachable",
            (true, 1, _) => "Destination unreachable",
            (true, 2, _) => "Packet too big",
            (true, 3, _) => "Time exceeded: Hop limit",
            (true, 4, _) => "Parameter problem",
            _ => "ICMP error",
        }
    }
}

impl fmt::Display for IcmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.from {
            Some(from) => write!(f, "From {from}: {}", self.describe()),
            None => f.write_str(self.describe()),
        }
    }
}

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A reply arrived (ICMP echo reply, TCP connected, UDP or DNS answer).
    Ok,
    /// No answer within the timeout.
    Timeout,
    /// The host answered but the port is closed (TCP RST, ICMP port unreachable): reachable.
    Refused,
    /// An ICMP error (unreachable, TTL exceeded) answered instead.
    Unreachable(IcmpError),
    /// The probe could not be sent or failed locally.
    Error(String),
}

impl Outcome {
    /// The JSON name of the outcome: `ok|timeout|refused|unreachable|error`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Timeout => "timeout",
            Outcome::Refused => "refused",
            Outcome::Unreachable(_) => "unreachable",
            Outcome::Error(_) => "error",
        }
    }

    /// True when the target answered (a refused port still proves the host is reachable).
    pub fn is_reply(&self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Refused)
    }
}

/// Protocol-specific facts about a reply. 16 bytes: an HTTP probe's larger facts are boxed,
/// so every other result (10 000 targets' a second) stays small.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Detail {
    /// Nothing more to say.
    #[default]
    None,
    /// ICMP echo reply: its size (ICMP header + payload) and the IP TTL / hop limit.
    Icmp {
        /// Bytes of ICMP message received.
        bytes: u32,
        /// TTL or hop limit of the reply, when the kernel reported it.
        ttl: Option<u8>,
    },
    /// UDP reply size.
    Udp {
        /// Bytes of UDP payload received.
        bytes: u32,
    },
    /// An HTTP(S) request: its phases and what came back (also when it failed: the phases
    /// that ran, and why).
    Http(Box<HttpDetail>),
    /// DNS answer: response code and number of answer records.
    Dns {
        /// RCODE (0 = NOERROR, 3 = NXDOMAIN, ...).
        rcode: u16,
        /// Records in the answer section.
        answers: u16,
    },
}

/// The phases of an HTTP(S) probe, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HttpPhase {
    /// Resolving the name (each probe: what a client does).
    Dns,
    /// TCP connect.
    Connect,
    /// TLS handshake.
    Tls,
    /// Request written → first byte of the response (the server's time).
    FirstByte,
    /// The body, first byte to last.
    Body,
}

impl HttpPhase {
    /// Every phase, in order.
    pub const ALL: [HttpPhase; 5] = [
        HttpPhase::Dns,
        HttpPhase::Connect,
        HttpPhase::Tls,
        HttpPhase::FirstByte,
        HttpPhase::Body,
    ];

    /// The name used in output, JSON and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            HttpPhase::Dns => "dns",
            HttpPhase::Connect => "connect",
            HttpPhase::Tls => "tls",
            HttpPhase::FirstByte => "first_byte",
            HttpPhase::Body => "body",
        }
    }
}

/// Why a TLS handshake failed, as far as it can be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// The certificate's validity ended.
    Expired,
    /// The certificate's validity has not begun.
    NotYetValid,
    /// The certificate is not for this name.
    WrongName,
    /// The chain does not lead to a trusted CA.
    UnknownCa,
    /// Anything else (protocol, alert, revoked, ...).
    Other,
}

/// Why an HTTP(S) probe failed. Every failure counts as loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFailure {
    /// The name did not resolve.
    Dns,
    /// The server refused the connection.
    Refused,
    /// The connection failed otherwise (unreachable, reset).
    Connect,
    /// The TLS handshake failed.
    Tls(TlsFailure),
    /// No answer in time; the phase that was running.
    Timeout(HttpPhase),
    /// The status was not one expected.
    Status,
    /// The body did not hold what was expected.
    Body,
    /// The response was not HTTP, or the connection broke mid-way.
    Protocol,
    /// More redirects than allowed.
    Redirects,
}

impl HttpFailure {
    /// A short name for JSON and logs (`status_mismatch`, `tls_expired`, `timeout_tls`, ...).
    pub fn name(self) -> &'static str {
        match self {
            HttpFailure::Dns => "dns_failure",
            HttpFailure::Refused => "connect_refused",
            HttpFailure::Connect => "connect_failed",
            HttpFailure::Tls(TlsFailure::Expired) => "tls_expired",
            HttpFailure::Tls(TlsFailure::NotYetValid) => "tls_not_yet_valid",
            HttpFailure::Tls(TlsFailure::WrongName) => "tls_wrong_name",
            HttpFailure::Tls(TlsFailure::UnknownCa) => "tls_unknown_ca",
            HttpFailure::Tls(TlsFailure::Other) => "tls_error",
            HttpFailure::Timeout(HttpPhase::Dns) => "timeout_dns",
            HttpFailure::Timeout(HttpPhase::Connect) => "timeout_connect",
            HttpFailure::Timeout(HttpPhase::Tls) => "timeout_tls",
            HttpFailure::Timeout(HttpPhase::FirstByte) => "timeout_first_byte",
            HttpFailure::Timeout(HttpPhase::Body) => "timeout_body",
            HttpFailure::Status => "status_mismatch",
            HttpFailure::Body => "body_mismatch",
            HttpFailure::Protocol => "protocol_error",
            HttpFailure::Redirects => "too_many_redirects",
        }
    }
}

/// What an HTTP(S) probe measured: each phase on the monotonic clock (`None`: it did not run)
/// and what came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HttpDetail {
    /// Phase durations, indexed as [`HttpPhase::ALL`] (summed over redirect hops).
    pub phases: [Option<Duration>; 5],
    /// Status code of the last response (0: none).
    pub status: u16,
    /// HTTP version of the last response: 10, 11 or 20 (0: none).
    pub version: u8,
    /// TLS version: 12 or 13 (0: no TLS).
    pub tls_version: u8,
    /// The earliest `notAfter` of the server's certificate chain (Unix seconds).
    pub cert_expiry: Option<i64>,
    /// Body bytes received (up to the read cap).
    pub bytes: u64,
    /// Redirects followed.
    pub redirects: u8,
    /// Why it failed, if it did.
    pub failure: Option<HttpFailure>,
}

impl HttpDetail {
    /// The duration of `phase`, if it ran.
    pub fn phase(&self, phase: HttpPhase) -> Option<Duration> {
        self.phases[phase as usize]
    }
}

/// Name of a DNS RCODE as dig prints it.
pub fn dns_rcode_name(rcode: u16) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "RCODE?",
    }
}

/// The result of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    /// Which target.
    pub target: TargetId,
    /// Probe sequence number for this target, from 0.
    pub seq: u64,
    /// Wall-clock time the probe was sent.
    pub sent_at: SystemTime,
    /// Round-trip time, when anything answered.
    pub rtt: Option<Duration>,
    /// How it ended.
    pub outcome: Outcome,
    /// Protocol facts about the reply.
    pub detail: Detail,
    /// How long after its nominal time the probe left (the scheduler's own error).
    pub send_delay: Duration,
    /// True when `send_delay` exceeded [`late_threshold`] of the target's interval.
    pub late: bool,
}

/// A send counts as late when it leaves this much after its nominal time: 1 % of the interval,
/// at least 1 ms, at most half the interval (10 ms at 1 s, 1 ms at 100 ms, 0.5 ms at 1 ms).
/// Relative to the interval because that is what a lateness costs: 1.1 ms at 1 s changes no
/// figure (a fixed 1 ms bound counted nearly every 1 s send to a lab target as late), 1.1 ms at
/// 1 ms is a whole missed slot.
pub fn late_threshold(interval: Duration) -> Duration {
    (interval / 100)
        .max(Duration::from_millis(1))
        .min(interval / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_is_judged_relative_to_the_interval() {
        let ms = Duration::from_millis;
        assert_eq!(late_threshold(Duration::from_secs(1)), ms(10));
        assert_eq!(late_threshold(ms(100)), ms(1));
        assert_eq!(late_threshold(ms(10)), ms(1));
        assert_eq!(late_threshold(ms(1)), Duration::from_micros(500));
        assert_eq!(late_threshold(Duration::from_secs(60)), ms(600));
    }

    #[test]
    fn a_result_stays_small_whatever_http_adds() {
        // Ten thousand targets' results a second sit in queues: HTTP's facts are boxed.
        assert!(
            std::mem::size_of::<Detail>() <= 16,
            "{}",
            std::mem::size_of::<Detail>()
        );
    }

    #[test]
    fn replies_and_names() {
        assert!(Outcome::Ok.is_reply());
        assert!(Outcome::Refused.is_reply());
        assert!(!Outcome::Timeout.is_reply());
        let e = IcmpError {
            v6: false,
            icmp_type: 3,
            code: 1,
            from: Some(IpAddr::from([10, 0, 0, 1])),
        };
        assert!(!Outcome::Unreachable(e).is_reply());
        assert_eq!(Outcome::Unreachable(e).name(), "unreachable");
        assert_eq!(e.to_string(), "From 10.0.0.1: Destination Host Unreachable");
        assert!(IcmpError { code: 3, ..e }.is_port_unreachable());
        assert!(IcmpError {
            icmp_type: 11,
            code: 0,
            ..e
        }
        .is_ttl_exceeded());
        let v6 = IcmpError {
            v6: true,
            icmp_type: 1,
            code: 4,
            from: None,
        };
        assert!(v6.is_port_unreachable());
        assert_eq!(dns_rcode_name(3), "NXDOMAIN");
    }
}
