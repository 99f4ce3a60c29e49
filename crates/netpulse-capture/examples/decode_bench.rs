//! netpulse's decoder beside the `etherparse` crate on the same frames (read into memory first,
//! so only decoding is timed): each frame's addresses, ports and TCP fields taken and folded
//! into a checksum both must agree on, fastest of three runs each (the figure in `decode.rs`'s
//! doc and docs/benchmarks.md).
//!   usage: cargo run --release -p netpulse-capture --example decode_bench -- FILE.pcap

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use netpulse_capture::{decode, Network, Transport};
use std::net::IpAddr;
use std::time::Instant;

/// What both decoders must agree on: TCP, UDP and ICMP counts and a sum of ports and addresses.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fold {
    tcp: u64,
    udp: u64,
    icmp: u64,
    sum: u64,
}

/// Every frame with its link type.
type Frames = [(u16, Vec<u8>)];

fn ip_bits(a: IpAddr) -> u64 {
    match a {
        IpAddr::V4(v) => u64::from(u32::from(v)),
        IpAddr::V6(v) => (u128::from(v) as u64) ^ ((u128::from(v) >> 64) as u64),
    }
}

fn ours(frames: &Frames) -> Fold {
    let mut f = Fold::default();
    for (lt, data) in frames {
        let d = decode(*lt, data);
        if let Network::Ip { src, dst, .. } = d.network {
            f.sum = f.sum.wrapping_add(ip_bits(src) ^ ip_bits(dst));
        }
        match d.transport {
            Transport::Tcp {
                sport,
                dport,
                seq,
                ack,
                flags,
                ..
            } => {
                f.tcp += 1;
                f.sum = f.sum.wrapping_add(
                    u64::from(sport) + u64::from(dport) + u64::from(seq ^ ack) + u64::from(flags),
                );
            }
            Transport::Udp { sport, dport, .. } => {
                f.udp += 1;
                f.sum = f.sum.wrapping_add(u64::from(sport) + u64::from(dport));
            }
            Transport::Icmp { .. } => f.icmp += 1,
            Transport::None => {}
        }
    }
    f
}

fn crate_decoder(frames: &Frames) -> Fold {
    let mut f = Fold::default();
    for (_, data) in frames {
        let Ok(p) = SlicedPacket::from_ethernet(data) else {
            continue;
        };
        let addrs = match &p.net {
            Some(NetSlice::Ipv4(v)) => Some((
                IpAddr::V4(v.header().source_addr()),
                IpAddr::V4(v.header().destination_addr()),
            )),
            Some(NetSlice::Ipv6(v)) => Some((
                IpAddr::V6(v.header().source_addr()),
                IpAddr::V6(v.header().destination_addr()),
            )),
            _ => None,
        };
        if let Some((s, d)) = addrs {
            f.sum = f.sum.wrapping_add(ip_bits(s) ^ ip_bits(d));
        }
        match &p.transport {
            Some(TransportSlice::Tcp(t)) => {
                f.tcp += 1;
                let flags = u8::from(t.fin())
                    | u8::from(t.syn()) << 1
                    | u8::from(t.rst()) << 2
                    | u8::from(t.psh()) << 3
                    | u8::from(t.ack()) << 4
                    | u8::from(t.urg()) << 5
                    | u8::from(t.ece()) << 6
                    | u8::from(t.cwr()) << 7;
                f.sum = f.sum.wrapping_add(
                    u64::from(t.source_port())
                        + u64::from(t.destination_port())
                        + u64::from(t.sequence_number() ^ t.acknowledgment_number())
                        + u64::from(flags),
                );
            }
            Some(TransportSlice::Udp(u)) => {
                f.udp += 1;
                f.sum = f
                    .sum
                    .wrapping_add(u64::from(u.source_port()) + u64::from(u.destination_port()));
            }
            Some(TransportSlice::Icmpv4(_) | TransportSlice::Icmpv6(_)) => f.icmp += 1,
            _ => {}
        }
    }
    f
}

fn best(name: &str, frames: &Frames, run: fn(&Frames) -> Fold) -> Fold {
    let mut fastest = f64::MAX;
    let mut out = Fold::default();
    for _ in 0..3 {
        let t = Instant::now();
        out = run(frames);
        fastest = fastest.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{name:<12} {:>8.3} s  {:>6.1} M frames/s  {out:?}",
        fastest,
        frames.len() as f64 / fastest / 1e6
    );
    out
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: decode_bench FILE.pcap");
    let mut r = netpulse_capture::open(std::path::Path::new(&path)).expect("open");
    let mut frames = Vec::new();
    while let Ok(Some(p)) = r.next_packet() {
        frames.push((p.linktype, p.data.to_vec()));
    }
    println!("{} frames from {path}", frames.len());
    let a = best("netpulse", &frames, ours);
    let b = best("etherparse", &frames, crate_decoder);
    println!("same figures: {}", a == b);
}
