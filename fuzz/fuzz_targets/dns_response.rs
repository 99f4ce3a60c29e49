//! Any bytes a DNS server might answer with.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = netpulse_probe::dns::parse_response(data);
});
