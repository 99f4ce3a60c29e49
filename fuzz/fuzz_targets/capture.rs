//! Capture files and packets: the reader on any bytes, and every packet it yields through the
//! analyzer (decoder, flows, DNS matching) — no panic, no unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netpulse_capture::stats::AnalyzerConfig;
use netpulse_capture::{Analyzer, CaptureReader};

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::with_buffer(data, 4096) else {
        return;
    };
    // Tiny tables and short timeouts, so eviction, slot reuse and both sweeps run too.
    let cfg = AnalyzerConfig {
        max_flows: 8,
        max_talkers: 4,
        idle_timeout: std::time::Duration::from_secs(1),
        close_linger: std::time::Duration::from_millis(500),
        ..AnalyzerConfig::default()
    };
    let mut analyzer = Analyzer::new(cfg, 5);
    for _ in 0..10_000 {
        match reader.next_packet() {
            Ok(Some(p)) => analyzer.packet(p.ts_ns, p.len, p.linktype, p.data, &mut |_| {}, &mut |_| {}),
            _ => break,
        }
    }
    let _ = analyzer.finish(&mut |_| {}, &mut |_| {});
});
