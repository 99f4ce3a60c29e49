//! One packet source for every reader: a capture file through the decode pipeline (read and
//! decoded on a thread of its own), or a live interface. `netpulse capture` and the monitor's
//! `[capture]` both read packets in batches from here.

use crate::live::{Live, LiveStats};
use crate::pipeline::Decoder;
use crate::reader::ReadError;
use crate::stats::PacketSummary;
use std::path::PathBuf;

/// Packets taken from a live ring at most per batch (what a file's batch holds too).
const LIVE_BATCH: usize = 4096;

/// Where packets come from.
pub enum PacketSource {
    /// A pcap/pcapng file (or stdin), decoded ahead on another thread.
    File {
        /// The decode pipeline.
        decoder: Decoder,
        /// The file, for messages.
        path: PathBuf,
    },
    /// A live interface.
    Live {
        /// The capture.
        live: Live,
        /// The interface, for messages.
        iface: String,
    },
}

/// Reading stopped on an error; what came before it was delivered.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file is damaged or unreadable from some point on.
    #[error("{path}: {source} (the report covers everything before it)")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong, where.
        source: ReadError,
    },
    /// The live capture failed.
    #[error("capture on {iface} failed: {reason}")]
    Live {
        /// The interface.
        iface: String,
        /// What libpcap said.
        reason: String,
    },
}

impl PacketSource {
    /// Replaces `batch` with the next packets: a file's next batch (`false` once it has ended),
    /// or what a live ring holds now, up to 4 096 — empty when nothing came for ~100 ms, so the
    /// caller can look at its stop flag.
    pub fn next_batch(&mut self, batch: &mut Vec<PacketSummary>) -> Result<bool, SourceError> {
        match self {
            PacketSource::File { decoder, path } => match decoder.next_batch() {
                Ok(Some(b)) => {
                    decoder.recycle(std::mem::replace(batch, b));
                    Ok(true)
                }
                Ok(None) => {
                    batch.clear();
                    Ok(false)
                }
                Err(source) => Err(SourceError::File {
                    path: path.clone(),
                    source,
                }),
            },
            PacketSource::Live { live, iface } => {
                batch.clear();
                let linktype = live.linktype();
                while batch.len() < LIVE_BATCH {
                    match live.next_packet() {
                        Ok(Some(p)) => {
                            batch.push(PacketSummary::of(p.ts_ns, p.len, linktype, p.data))
                        }
                        // The ring is empty (only a first, empty read waits, ~100 ms).
                        Ok(None) => break,
                        Err(reason) => {
                            if batch.is_empty() {
                                return Err(SourceError::Live {
                                    iface: iface.clone(),
                                    reason,
                                });
                            }
                            // Deliver what came first; the error comes again next time.
                            break;
                        }
                    }
                }
                Ok(true)
            }
        }
    }

    /// Bytes of a file consumed so far (`None` live).
    pub fn position(&self) -> Option<u64> {
        match self {
            PacketSource::File { decoder, .. } => Some(decoder.position()),
            PacketSource::Live { .. } => None,
        }
    }

    /// The kernel's counters of a live capture (`None` for a file).
    pub fn live_stats(&mut self) -> Option<LiveStats> {
        match self {
            PacketSource::File { .. } => None,
            PacketSource::Live { live, .. } => Some(live.stats()),
        }
    }

    /// True for a live interface (its senders choose the tables' keys: hash them keyed).
    pub fn is_live(&self) -> bool {
        matches!(self, PacketSource::Live { .. })
    }
}
