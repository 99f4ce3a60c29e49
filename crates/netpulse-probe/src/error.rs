//! Errors of the probe engine: each names the operation and the address, and says what to do.

use std::io;
use std::net::SocketAddr;

/// An error that stops a probe run from starting.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// An interval or timeout longer than the engine can schedule.
    #[error("{what} of {value:?} for {label} is longer than netpulse allows ({max})")]
    TooLong {
        /// `interval` or `timeout`.
        what: &'static str,
        /// The value asked for.
        value: std::time::Duration,
        /// The target.
        label: String,
        /// The limit, spelled for people.
        max: &'static str,
    },
    /// Neither an unprivileged ping socket nor a raw socket could be opened.
    #[error(
        "cannot open an ICMP socket: unprivileged ping sockets are not allowed for this group \
         (net.ipv4.ping_group_range = \"{range}\") and raw sockets need CAP_NET_RAW ({raw_error}).\n\
         Fix one of them:\n  \
         sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"   (allow ping sockets; per network namespace)\n  \
         sudo setcap cap_net_raw+ep {exe}   (allow raw sockets for netpulse)\n\
         TCP, UDP and DNS targets need neither."
    )]
    IcmpPermission {
        /// Current value of the sysctl.
        range: String,
        /// What the raw socket attempt said.
        raw_error: io::Error,
        /// Path of the running program.
        exe: String,
    },
    /// The ICMP mode forced by the user is not available.
    #[error("cannot open a {mode} ICMP socket for {family}: {source}")]
    IcmpSocket {
        /// `dgram` or `raw`.
        mode: &'static str,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The system's answer.
        source: io::Error,
    },
    /// A socket operation failed while setting up.
    #[error("{op} for {addr}: {source}")]
    Socket {
        /// What was being done.
        op: &'static str,
        /// The target address.
        addr: SocketAddr,
        /// The system's answer.
        source: io::Error,
    },
    /// A local resource (event fd, timer) could not be created.
    #[error("{op}: {source}")]
    Setup {
        /// What was being done.
        op: &'static str,
        /// The system's answer.
        source: io::Error,
    },
    /// A target's parameters cannot be turned into packets.
    #[error("{target}: {message}")]
    BadTarget {
        /// The target as written.
        target: String,
        /// What is wrong.
        message: String,
    },
}

/// A host name that could not be turned into an address.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The resolver failed.
    #[error("cannot resolve \"{host}\": {source}")]
    Lookup {
        /// The name.
        host: String,
        /// The resolver's answer.
        source: io::Error,
    },
    /// The name has addresses, but none of the requested family.
    #[error("\"{host}\" has no {family} address")]
    NoAddressOfFamily {
        /// The name.
        host: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
    },
}
