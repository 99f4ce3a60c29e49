//! netpulse's packet analysis: pcap/pcapng files and live interfaces, zero-copy
//! decoding, per-protocol statistics, flows with TCP handshake and DNS latency.

pub mod decode;
pub mod hashing;
pub mod live;
pub mod pipeline;
pub mod reader;
pub mod shard;
pub mod source;
pub mod stats;

pub use decode::{decode, Decoded, Malformed, Network, Transport};
pub use pipeline::Decoder;
pub use reader::{open, CaptureReader, Packet, ReadError};
pub use shard::ShardedAnalyzer;
pub use source::{PacketSource, SourceError};
pub use stats::{Analyzer, PacketSummary, Protocol, Report};
