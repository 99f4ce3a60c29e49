//! rtnetlink answers (links, statistics, addresses): any bytes parse or fail cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netpulse_iface::wire;

fuzz_target!(|data: &[u8]| {
    for m in wire::messages(data) {
        let Ok(m) = m else { break };
        let _ = m.error_code();
        let _ = wire::parse_link(m.payload);
        let _ = wire::parse_stats(m.payload);
        let _ = wire::parse_addr(m.payload);
    }
});
