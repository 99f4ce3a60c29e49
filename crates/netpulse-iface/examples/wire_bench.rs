//! What parsing an rtnetlink dump costs: netpulse's `wire` views beside the
//! `netlink-packet-route` crate, on the same datagrams (a real `RTM_GETSTATS` dump and a real
//! `RTM_GETLINK` dump of this namespace's links, taken once, then parsed again and again).
//!
//!     cargo run --release -p netpulse-iface --example wire_bench [ROUNDS]
//!
//! Both sum every link's received bytes (and, for links, name lengths), so neither can skip work.

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::stats::StatsAttribute;
use netlink_packet_route::RouteNetlinkMessage;
use netpulse_iface::wire;
use nix::sys::socket::{
    bind, recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};
use std::os::fd::AsRawFd;
use std::time::Instant;

/// The datagrams the kernel answers a dump of `kind` with (up to the end marker).
fn dump(kind: u16) -> Vec<Vec<u8>> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .expect("netlink socket");
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).expect("bind");
    let mut req = Vec::new();
    wire::dump_request(kind, 1, &mut req);
    sendto(
        fd.as_raw_fd(),
        &req,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .expect("send");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).expect("recv");
        let done = wire::messages(&buf[..n])
            .flatten()
            .any(|m| m.kind == wire::NLMSG_DONE);
        out.push(buf[..n].to_vec());
        if done {
            return out;
        }
    }
}

/// netpulse's views: (messages, sum).
fn ours(datagrams: &[Vec<u8>]) -> (u64, u64) {
    let (mut n, mut sum) = (0, 0);
    for d in datagrams {
        for m in wire::messages(d).flatten() {
            match m.kind {
                wire::RTM_NEWSTATS => {
                    if let Ok((_, Some(c))) = wire::parse_stats(m.payload) {
                        sum += c.rx_bytes;
                    }
                }
                wire::RTM_NEWLINK => {
                    if let Ok(l) = wire::parse_link(m.payload) {
                        sum += l.name.len() as u64 + l.stats.map_or(0, |c| c.rx_bytes);
                    }
                }
                _ => continue,
            }
            n += 1;
        }
    }
    (n, sum)
}

/// The crate: (messages, sum).
fn theirs(datagrams: &[Vec<u8>]) -> (u64, u64) {
    let (mut n, mut sum) = (0, 0);
    for d in datagrams {
        let mut at = 0;
        while at < d.len() {
            let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&d[at..]) else {
                break;
            };
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewStats(s)) => {
                    for a in s.attributes {
                        if let StatsAttribute::Link64(c) = a {
                            sum += c.rx_bytes;
                        }
                    }
                    n += 1;
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    for a in l.attributes {
                        match a {
                            LinkAttribute::IfName(name) => sum += name.len() as u64,
                            LinkAttribute::Stats64(c) => sum += c.rx_bytes,
                            _ => {}
                        }
                    }
                    n += 1;
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            at += (len + 3) & !3;
        }
    }
    (n, sum)
}

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    for (name, kind) in [
        ("RTM_GETSTATS", wire::RTM_GETSTATS),
        ("RTM_GETLINK", wire::RTM_GETLINK),
    ] {
        let d = dump(kind);
        let bytes: usize = d.iter().map(Vec::len).sum();
        let (a, b) = (ours(&d), theirs(&d));
        assert_eq!(a, b, "{name}: both read the same messages and figures");
        for (who, f) in [
            ("wire", ours as fn(&[Vec<u8>]) -> (u64, u64)),
            ("netlink-packet-route", theirs),
        ] {
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                for _ in 0..rounds {
                    std::hint::black_box(f(std::hint::black_box(&d)));
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!(
                "{name:<13} {} links, {bytes} B: {who:<21} {:>8.0} ns a message",
                a.0,
                best * 1e9 / f64::from(rounds) / a.0.max(1) as f64
            );
        }
    }
}
