//! netpulse's interface source: per-interface kernel counters, link state and addresses, read
//! over rtnetlink. Turning counters into rates is the core's job (`netpulse_core::iface`).

pub mod discover;
mod error;
mod source;
pub mod wire;

pub use error::IfaceError;
pub use source::{IfaceInfo, IfaceSource, OperState, PollMode};
