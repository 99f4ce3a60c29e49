//! Any text a user or a config file might give as a target, port list or duration.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(spec) = netpulse_core::parse_target(text) {
            // What we print must parse back to the same target.
            let again = netpulse_core::parse_target(&spec.to_string());
            assert_eq!(again.as_ref(), Ok(&spec), "{text:?} -> {spec}");
        }
        let _ = netpulse_core::parse_port_list(text);
        let _ = netpulse_core::parse_duration(text);
    }
});
