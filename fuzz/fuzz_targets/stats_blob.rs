//! Any bytes as a held row's statistics: decoding never panics, and what decodes re-encodes
//! to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netpulse_core::stats::ProbeStats;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = ProbeStats::from_bytes(data) {
        let again = ProbeStats::from_bytes(&s.to_bytes()).map(|t| t.to_bytes());
        assert_eq!(again, Ok(s.to_bytes()));
        let _ = s.rtt.summary();
    }
});
