//! Any bytes found in a `hist` column: decoding never panics, and what decodes re-encodes
//! to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netpulse_core::sketch::LatencySketch;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = LatencySketch::from_bytes(data) {
        let again = LatencySketch::from_bytes(&s.to_bytes());
        assert_eq!(again.as_ref(), Ok(&s));
        let _ = s.quantile(0.99);
    }
});
