//! DNS probe messages: the query is encoded once per target by hickory-proto (names, IDNA, types);
//! each probe only patches the 16-bit id, and a response is read from its fixed header.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use std::str::FromStr;

/// Encodes a recursive query for `name`/`qtype` with id 0.
pub fn encode_query(name: &str, qtype: &str) -> Result<Vec<u8>, String> {
    let name = Name::from_utf8(name).map_err(|e| format!("bad DNS name \"{name}\": {e}"))?;
    let rtype =
        RecordType::from_str(qtype).map_err(|e| format!("bad DNS record type \"{qtype}\": {e}"))?;
    let mut msg = Message::new(0, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name, rtype));
    msg.to_vec()
        .map_err(|e| format!("cannot encode DNS query: {e}"))
}

/// Sets the id of an encoded message.
pub fn set_id(msg: &mut [u8], id: u16) {
    if let Some(b) = msg.get_mut(..2) {
        b.copy_from_slice(&id.to_be_bytes());
    }
}

/// The parts of a DNS response header a probe needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Message id (matches the query).
    pub id: u16,
    /// RCODE (low 4 bits of the header; extended RCODEs need EDNS, which probes do not send).
    pub rcode: u16,
    /// Answer records.
    pub answers: u16,
}

/// Reads a response header; `None` if too short or not a response.
pub fn parse_response(buf: &[u8]) -> Option<ResponseHeader> {
    let h = buf.get(..12)?;
    if h[2] & 0x80 == 0 {
        return None; // QR bit clear: a query, not a response
    }
    Some(ResponseHeader {
        id: u16::from_be_bytes([h[0], h[1]]),
        rcode: u16::from(h[3] & 0x0f),
        answers: u16::from_be_bytes([h[6], h[7]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encodes_and_response_header_parses() {
        let mut q = encode_query("example.org", "AAAA").expect("valid query");
        set_id(&mut q, 0xbeef);
        assert_eq!(&q[..2], &[0xbe, 0xef]);
        assert_eq!(q[2] & 0x01, 0x01, "recursion desired");
        assert_eq!(u16::from_be_bytes([q[4], q[5]]), 1, "one question");
        // qtype AAAA = 28 in the last 4 bytes (type, class)
        assert_eq!(&q[q.len() - 4..], &[0, 28, 0, 1]);
        assert_eq!(parse_response(&q), None, "a query is not a response");
        let mut r = q.clone();
        r[2] |= 0x80;
        r[3] = 0x83; // RA + NXDOMAIN
        r[7] = 2;
        assert_eq!(
            parse_response(&r),
            Some(ResponseHeader {
                id: 0xbeef,
                rcode: 3,
                answers: 2
            })
        );
        assert_eq!(parse_response(&r[..11]), None);
        assert!(encode_query("a..b", "A").is_err());
        assert!(encode_query("x.org", "NOPE").is_err());
    }
}
