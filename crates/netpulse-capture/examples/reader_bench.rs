//! netpulse's pcap reader beside the `pcap-parser` crate on the same file: every packet read
//! and its captured bytes summed, fastest of three runs each (the figure in `reader.rs`'s doc
//! and docs/benchmarks.md).
//!   usage: cargo run --release -p netpulse-capture --example reader_bench -- FILE.pcap

use pcap_parser::{create_reader, Block, PcapBlockOwned, PcapError};
use std::time::Instant;

fn ours(path: &str) -> (u64, u64) {
    let mut r = netpulse_capture::open(std::path::Path::new(path)).expect("open");
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Ok(Some(p)) = r.next_packet() {
        n += 1;
        bytes += p.data.len() as u64;
    }
    (n, bytes)
}

fn crate_reader(path: &str) -> (u64, u64) {
    let file = std::fs::File::open(path).expect("open");
    let mut r = create_reader(1 << 20, file).expect("a pcap");
    let (mut n, mut bytes) = (0u64, 0u64);
    loop {
        match r.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::Legacy(b) => {
                        n += 1;
                        bytes += b.data.len() as u64;
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(b)) => {
                        n += 1;
                        bytes += b.data.len() as u64;
                    }
                    _ => {}
                }
                r.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => r.refill().expect("refill"),
            Err(e) => panic!("{e:?}"),
        }
    }
    (n, bytes)
}

fn best(f: &dyn Fn() -> (u64, u64)) -> (f64, (u64, u64)) {
    let mut best = f64::MAX;
    let mut out = (0, 0);
    for _ in 0..3 {
        let t = Instant::now();
        out = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, out)
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: reader_bench FILE");
        std::process::exit(2);
    };
    let (t1, a) = best(&|| ours(&path));
    let (t2, b) = best(&|| crate_reader(&path));
    assert_eq!(a, b, "both read the same packets and bytes");
    println!("{} packets, {} captured bytes", a.0, a.1);
    println!(
        "netpulse reader   {t1:.3} s  {:.2} M packets/s",
        a.0 as f64 / t1 / 1e6
    );
    println!(
        "pcap-parser 0.17  {t2:.3} s  {:.2} M packets/s",
        b.0 as f64 / t2 / 1e6
    );
}
