//! The analyser on one capture file with foldhash (files) and with keyed SipHash (live
//! traffic), fastest of three runs each: the figure in docs/benchmarks.md.
//!   usage: cargo run --release -p netpulse-capture --example hash_bench -- FILE

use netpulse_capture::stats::{Analyzer, AnalyzerConfig, FlowRecord, Interval};
use std::time::Instant;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: hash_bench FILE");
        std::process::exit(2);
    };
    for keyed in [false, true] {
        let mut best = f64::MAX;
        let mut packets = 0;
        for _ in 0..3 {
            let mut reader = match netpulse_capture::open(std::path::Path::new(&path)) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{path}: {e}");
                    std::process::exit(1);
                }
            };
            let cfg = AnalyzerConfig {
                keyed_hash: keyed,
                ..AnalyzerConfig::default()
            };
            let mut a = Analyzer::new(cfg, 10);
            let (mut ni, mut nf) = (|_: &Interval| {}, |_: &FlowRecord| {});
            let t = Instant::now();
            while let Ok(Some(p)) = reader.next_packet() {
                a.packet(p.ts_ns, p.len, p.linktype, p.data, &mut ni, &mut nf);
            }
            packets = a.finish(&mut ni, &mut nf).total.packets;
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{:<28} {packets} packets in {best:.3} s: {:.2} M packets/s",
            if keyed {
                "keyed SipHash (live)"
            } else {
                "foldhash (files)"
            },
            packets as f64 / best / 1e6
        );
    }
}
