//! netpulse's packet analysis: pcap/pcapng files (and, later, live interfaces), zero-copy
//! decoding, per-protocol statistics, flows with TCP handshake and DNS latency.

pub mod decode;
pub mod live;
pub mod reader;
pub mod stats;

pub use decode::{decode, Decoded, Malformed, Network, Transport};
pub use reader::{open, CaptureReader, Packet, ReadError};
pub use stats::{Analyzer, Protocol, Report};
