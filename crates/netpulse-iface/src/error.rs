//! Errors of the interface source.

use crate::wire::WireError;

/// What went wrong reading interfaces.
#[derive(Debug, thiserror::Error)]
pub enum IfaceError {
    /// A netlink socket operation failed.
    #[error("cannot {op} (rtnetlink): {source}")]
    Socket {
        /// The operation.
        op: &'static str,
        /// The system error.
        source: nix::Error,
    },
    /// The kernel refused a request.
    #[error("the kernel refused to {op}: {source}")]
    Refused {
        /// The request.
        op: &'static str,
        /// The error it answered.
        source: nix::Error,
    },
    /// The kernel sent something unreadable.
    #[error("unreadable netlink answer to {op}: {source}")]
    Malformed {
        /// The request.
        op: &'static str,
        /// What was wrong.
        source: WireError,
    },
}
