//! ICMP echo packets and the tag netpulse puts in every probe payload. Pure functions over byte
//! slices: every length is checked, nothing panics on hostile input (there is a fuzz target).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// ICMPv4 echo request / reply types.
pub const ICMP4_ECHO_REQUEST: u8 = 8;
/// ICMPv4 echo reply.
pub const ICMP4_ECHO_REPLY: u8 = 0;
/// ICMPv6 echo request.
pub const ICMP6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 echo reply.
pub const ICMP6_ECHO_REPLY: u8 = 129;

/// Length of the tag at the start of every probe payload.
pub const TAG_LEN: usize = 20;
const TAG_MAGIC: [u8; 4] = *b"nPls";

/// What netpulse writes at the start of a probe payload, so a reply names its probe exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTag {
    /// Random per run, so replies to another netpulse are not taken for ours.
    pub nonce: u32,
    /// Index of the target.
    pub target: u32,
    /// Probe sequence number.
    pub seq: u64,
}

impl ProbeTag {
    /// Writes the tag into the first [`TAG_LEN`] bytes of `buf` (no-op if it is shorter).
    pub fn write(&self, buf: &mut [u8]) {
        if let Some(b) = buf.get_mut(..TAG_LEN) {
            b[..4].copy_from_slice(&TAG_MAGIC);
            b[4..8].copy_from_slice(&self.nonce.to_be_bytes());
            b[8..12].copy_from_slice(&self.target.to_be_bytes());
            b[12..20].copy_from_slice(&self.seq.to_be_bytes());
        }
    }

    /// Reads a tag from the start of `buf`, if one is there.
    pub fn read(buf: &[u8]) -> Option<ProbeTag> {
        let b = buf.get(..TAG_LEN)?;
        if b[..4] != TAG_MAGIC {
            return None;
        }
        Some(ProbeTag {
            nonce: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            target: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            seq: u64::from_be_bytes([b[12], b[13], b[14], b[15], b[16], b[17], b[18], b[19]]),
        })
    }
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes an echo request (8-byte header + `payload_len` payload) into `buf`, which is resized.
/// The checksum is filled for ICMPv4; the kernel computes it for ICMPv6.
pub fn build_echo_request(buf: &mut Vec<u8>, v6: bool, ident: u16, seq: u16, payload_len: usize) {
    buf.clear();
    buf.resize(8 + payload_len, 0);
    buf[0] = if v6 {
        ICMP6_ECHO_REQUEST
    } else {
        ICMP4_ECHO_REQUEST
    };
    buf[4..6].copy_from_slice(&ident.to_be_bytes());
    buf[6..8].copy_from_slice(&seq.to_be_bytes());
    // A recognisable pattern after the tag, as ping fills its payload.
    for (i, b) in buf[8..].iter_mut().enumerate() {
        *b = (i & 0xff) as u8;
    }
}

/// Updates sequence number and tag of an echo request built by [`build_echo_request`] and
/// recomputes the ICMPv4 checksum.
pub fn patch_echo_request(buf: &mut [u8], v6: bool, seq: u16, tag: &ProbeTag) {
    if buf.len() < 8 {
        return;
    }
    buf[6..8].copy_from_slice(&seq.to_be_bytes());
    tag.write(&mut buf[8..]);
    buf[2..4].copy_from_slice(&[0, 0]);
    if !v6 {
        let c = checksum(buf);
        buf[2..4].copy_from_slice(&c.to_be_bytes());
    }
}

/// A parsed ICMP message that concerns an echo probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpMessage<'a> {
    /// An echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Payload after the 8-byte header.
        payload: &'a [u8],
        /// ICMP bytes (header + payload).
        len: usize,
    },
    /// An error quoting one of our echo requests.
    Error {
        /// ICMP type of the error.
        icmp_type: u8,
        /// ICMP code of the error.
        code: u8,
        /// Destination of the quoted request.
        quoted_dst: IpAddr,
        /// Identifier of the quoted request.
        ident: u16,
        /// Sequence of the quoted request.
        seq: u16,
        /// Whatever of the quoted payload the router included.
        payload: &'a [u8],
    },
    /// Anything else (our own echo requests seen on loopback, other ICMP).
    Other,
}

/// Strips an IPv4 header (as raw ICMPv4 sockets deliver it); returns (TTL, source, rest).
pub fn strip_ipv4(buf: &[u8]) -> Option<(u8, Ipv4Addr, &[u8])> {
    let first = *buf.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || buf.len() < ihl {
        return None;
    }
    let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
    Some((buf[8], src, &buf[ihl..]))
}

/// Parses an ICMP message (without IP header). `v6` selects ICMPv6 numbering.
pub fn parse_icmp(buf: &[u8], v6: bool) -> IcmpMessage<'_> {
    let Some(hdr) = buf.get(..8) else {
        return IcmpMessage::Other;
    };
    let (icmp_type, code) = (hdr[0], hdr[1]);
    let echo_reply = if v6 {
        ICMP6_ECHO_REPLY
    } else {
        ICMP4_ECHO_REPLY
    };
    if icmp_type == echo_reply {
        return IcmpMessage::EchoReply {
            ident: u16::from_be_bytes([hdr[4], hdr[5]]),
            seq: u16::from_be_bytes([hdr[6], hdr[7]]),
            payload: &buf[8..],
            len: buf.len(),
        };
    }
    let is_error = if v6 {
        matches!(icmp_type, 1..=4)
    } else {
        matches!(icmp_type, 3 | 11 | 12)
    };
    if !is_error {
        return IcmpMessage::Other;
    }
    let quoted = &buf[8..];
    let (dst, inner) = if v6 {
        // Quoted IPv6 header (40 bytes); we only send echo requests without extension headers.
        let Some(ip) = quoted.get(..40) else {
            return IcmpMessage::Other;
        };
        if ip[0] >> 4 != 6 || ip[6] != 58 {
            return IcmpMessage::Other;
        }
        let mut d = [0u8; 16];
        d.copy_from_slice(&ip[24..40]);
        (IpAddr::V6(Ipv6Addr::from(d)), &quoted[40..])
    } else {
        let Some(first) = quoted.first() else {
            return IcmpMessage::Other;
        };
        let ihl = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || ihl < 20 || quoted.len() < ihl || quoted[9] != 1 {
            return IcmpMessage::Other;
        }
        let d = Ipv4Addr::new(quoted[16], quoted[17], quoted[18], quoted[19]);
        (IpAddr::V4(d), &quoted[ihl..])
    };
    let request = if v6 {
        ICMP6_ECHO_REQUEST
    } else {
        ICMP4_ECHO_REQUEST
    };
    match inner.get(..8) {
        Some(h) if h[0] == request => IcmpMessage::Error {
            icmp_type,
            code,
            quoted_dst: dst,
            ident: u16::from_be_bytes([h[4], h[5]]),
            seq: u16::from_be_bytes([h[6], h[7]]),
            payload: &inner[8..],
        },
        _ => IcmpMessage::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 §3 example bytes: sum 0xddf2, checksum !0xddf2
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
        // a packet with its checksum filled in sums to zero
        let mut buf = Vec::new();
        build_echo_request(&mut buf, false, 0x1234, 0, 56);
        patch_echo_request(
            &mut buf,
            false,
            7,
            &ProbeTag {
                nonce: 1,
                target: 2,
                seq: 7,
            },
        );
        assert_eq!(checksum(&buf), 0);
        assert_eq!(buf.len(), 64);
    }

    #[test]
    fn tag_round_trip_and_short_buffers() {
        let tag = ProbeTag {
            nonce: 0xdead_beef,
            target: 42,
            seq: 1 << 40,
        };
        let mut b = [0u8; 32];
        tag.write(&mut b);
        assert_eq!(ProbeTag::read(&b), Some(tag));
        assert_eq!(ProbeTag::read(&b[..19]), None);
        let mut short = [0u8; 10];
        tag.write(&mut short);
        assert_eq!(short, [0u8; 10]);
        assert_eq!(ProbeTag::read(&[0u8; 20]), None);
    }

    #[test]
    fn parses_reply_and_quoted_error() {
        let mut req = Vec::new();
        build_echo_request(&mut req, false, 77, 0, 24);
        let tag = ProbeTag {
            nonce: 9,
            target: 3,
            seq: 5,
        };
        patch_echo_request(&mut req, false, 5, &tag);
        let mut reply = req.clone();
        reply[0] = ICMP4_ECHO_REPLY;
        match parse_icmp(&reply, false) {
            IcmpMessage::EchoReply {
                ident,
                seq,
                payload,
                len,
            } => {
                assert_eq!((ident, seq, len), (77, 5, 32));
                assert_eq!(ProbeTag::read(payload), Some(tag));
            }
            other => panic!("not a reply: {other:?}"),
        }
        // host unreachable quoting IPv4 header (20 bytes) + our request
        let mut err = vec![3, 1, 0, 0, 0, 0, 0, 0];
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 9,
        ];
        ip.extend_from_slice(&req);
        err.extend_from_slice(&ip);
        match parse_icmp(&err, false) {
            IcmpMessage::Error {
                icmp_type,
                code,
                quoted_dst,
                ident,
                seq,
                payload,
            } => {
                assert_eq!((icmp_type, code, ident, seq), (3, 1, 77, 5));
                assert_eq!(quoted_dst, IpAddr::from([10, 0, 0, 9]));
                assert_eq!(ProbeTag::read(payload), Some(tag));
            }
            other => panic!("not an error: {other:?}"),
        }
        // truncated quote: no panic, not ours
        assert_eq!(parse_icmp(&err[..20], false), IcmpMessage::Other);
        assert_eq!(parse_icmp(&[0, 0, 0], false), IcmpMessage::Other);
        assert_eq!(
            parse_icmp(&req, false),
            IcmpMessage::Other,
            "own request is not a reply"
        );
    }

    #[test]
    fn strips_ipv4_header() {
        let mut pkt = vec![
            0x45, 0, 0, 28, 0, 0, 0, 0, 61, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        pkt.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1]);
        let (ttl, src, rest) = strip_ipv4(&pkt).expect("valid header");
        assert_eq!((ttl, src, rest.len()), (61, Ipv4Addr::new(10, 0, 0, 2), 8));
        assert_eq!(strip_ipv4(&pkt[..10]), None);
        assert_eq!(strip_ipv4(&[0x4f, 0, 0]), None);
        assert_eq!(strip_ipv4(&[]), None);
    }
}

#[cfg(test)]
mod fuzz_like {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // The libFuzzer targets in fuzz/ go deeper; this keeps the property in every CI run.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            for v6 in [false, true] {
                if let IcmpMessage::EchoReply { payload, .. } | IcmpMessage::Error { payload, .. } =
                    parse_icmp(&data, v6)
                {
                    let _ = ProbeTag::read(payload);
                }
            }
            if let Some((_, _, rest)) = strip_ipv4(&data) {
                let _ = parse_icmp(rest, false);
            }
            let _ = crate::dns::parse_response(&data);
        }

        #[test]
        fn echo_request_round_trips(ident: u16, seq: u64, target: u32, nonce: u32, len in 20usize..1400) {
            let mut buf = Vec::new();
            build_echo_request(&mut buf, false, ident, seq as u16, len);
            let tag = ProbeTag { nonce, target, seq };
            patch_echo_request(&mut buf, false, seq as u16, &tag);
            prop_assert_eq!(checksum(&buf), 0);
            buf[0] = ICMP4_ECHO_REPLY;
            match parse_icmp(&buf, false) {
                IcmpMessage::EchoReply { ident: i, seq: s, payload, .. } => {
                    prop_assert_eq!((i, s), (ident, seq as u16));
                    prop_assert_eq!(ProbeTag::read(payload), Some(tag));
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
