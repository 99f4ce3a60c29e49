//! Any bytes a socket hands us, as ICMPv4 (with and without IP header) and ICMPv6.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netpulse_probe::wire::{parse_icmp, strip_ipv4, IcmpMessage, ProbeTag};

fuzz_target!(|data: &[u8]| {
    for v6 in [false, true] {
        if let IcmpMessage::EchoReply { payload, .. } | IcmpMessage::Error { payload, .. } =
            parse_icmp(data, v6)
        {
            let _ = ProbeTag::read(payload);
        }
    }
    if let Some((_, _, rest)) = strip_ipv4(data) {
        let _ = parse_icmp(rest, false);
    }
});
