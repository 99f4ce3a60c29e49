//! Reading and decoding on a thread of their own, so a file is analysed on two cores: the
//! reader thread copies the file in and decodes; the caller's thread only counts.

use crate::reader::{CaptureReader, ReadError};
use crate::stats::PacketSummary;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// Packets per batch: large enough that handing a batch over costs nothing per packet, small
/// enough (≈ 0.5 MB) to stay in cache between the threads.
const BATCH: usize = 4096;
/// Batches in flight.
const DEPTH: usize = 4;

enum Msg {
    Batch(Vec<PacketSummary>),
    End(Option<ReadError>),
}

/// Decoded packets from a capture file, read ahead on another thread.
pub struct Decoder {
    batches: Receiver<Msg>,
    recycle: SyncSender<Vec<PacketSummary>>,
    position: Arc<AtomicU64>,
    ended: bool,
}

impl Decoder {
    /// Starts reading `reader` on a new thread.
    pub fn spawn<R: Read + Send + 'static>(mut reader: CaptureReader<R>) -> std::io::Result<Self> {
        let (tx, batches) = sync_channel(DEPTH);
        let (recycle, spare) = sync_channel::<Vec<PacketSummary>>(DEPTH + 2);
        let position = Arc::new(AtomicU64::new(0));
        let pos = Arc::clone(&position);
        std::thread::Builder::new()
            .name("capture-read".into())
            .spawn(move || loop {
                let mut batch = spare
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BATCH));
                batch.clear();
                let end = loop {
                    match reader.next_packet() {
                        Ok(Some(p)) => {
                            batch.push(PacketSummary::of(p.ts_ns, p.len, p.linktype, p.data));
                            if batch.len() == BATCH {
                                break None;
                            }
                        }
                        Ok(None) => break Some(None),
                        Err(e) => break Some(Some(e)),
                    }
                };
                pos.store(reader.position(), Ordering::Relaxed);
                // A closed channel: the caller stopped early (Ctrl-C, -c); nothing left to do.
                if !batch.is_empty() && tx.send(Msg::Batch(batch)).is_err() {
                    return;
                }
                if let Some(end) = end {
                    let _ = tx.send(Msg::End(end));
                    return;
                }
            })?;
        Ok(Decoder {
            batches,
            recycle,
            position,
            ended: false,
        })
    }

    /// The next batch (never empty); `None` at a clean end, the error after the last good
    /// packet when the file is damaged.
    pub fn next_batch(&mut self) -> Result<Option<Vec<PacketSummary>>, ReadError> {
        if self.ended {
            return Ok(None);
        }
        match self.batches.recv() {
            Ok(Msg::Batch(b)) => Ok(Some(b)),
            Ok(Msg::End(e)) => {
                self.ended = true;
                e.map_or(Ok(None), Err)
            }
            // The thread died without a word: only a panic does that; say so rather than
            // pretend the file ended.
            Err(_) => {
                self.ended = true;
                Err(ReadError::Io {
                    offset: self.position(),
                    source: std::io::Error::other("the capture reader thread failed"),
                })
            }
        }
    }

    /// Hands a finished batch back for reuse.
    pub fn recycle(&self, batch: Vec<PacketSummary>) {
        let _ = self.recycle.try_send(batch);
    }

    /// Bytes of the file consumed so far (by the reader thread).
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(packets: usize, cut_last: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            out.extend(v.to_le_bytes());
        }
        let frame = [0u8; 60];
        for i in 0..packets {
            for v in [i as u32, 0, 60, 60] {
                out.extend(v.to_le_bytes());
            }
            out.extend(frame);
        }
        if cut_last {
            out.truncate(out.len() - 10);
        }
        out
    }

    fn drain(bytes: Vec<u8>) -> (usize, Option<ReadError>) {
        let reader = CaptureReader::new(std::io::Cursor::new(bytes)).expect("header");
        let mut d = Decoder::spawn(reader).expect("thread");
        let mut n = 0;
        loop {
            match d.next_batch() {
                Ok(Some(b)) => {
                    assert!(!b.is_empty());
                    n += b.len();
                    d.recycle(b);
                }
                Ok(None) => return (n, None),
                Err(e) => return (n, Some(e)),
            }
        }
    }

    #[test]
    fn every_packet_arrives_in_order_across_batches() {
        let reader = CaptureReader::new(std::io::Cursor::new(pcap(3 * BATCH + 5, false)));
        let mut d = Decoder::spawn(reader.expect("header")).expect("thread");
        let mut next = 0u64;
        while let Some(b) = d.next_batch().expect("clean file") {
            for p in &b {
                assert_eq!(p.ts_ns, next * 1_000_000_000);
                next += 1;
            }
            d.recycle(b);
        }
        assert_eq!(next, 3 * BATCH as u64 + 5);
        assert!(d.next_batch().expect("still clean").is_none());
    }

    #[test]
    fn damage_comes_after_every_whole_packet() {
        let (n, err) = drain(pcap(BATCH + 7, true));
        assert_eq!(n, BATCH + 6);
        assert!(matches!(err, Some(ReadError::Truncated { .. })), "{err:?}");
    }
}
