//! The source against this machine's real interfaces (every Linux has loopback).

use netpulse_iface::IfaceSource;
use std::net::UdpSocket;

#[test]
fn loopback_is_listed_and_counts_what_we_send() {
    let mut src = IfaceSource::open().expect("open rtnetlink");
    let lo = src
        .links()
        .values()
        .find(|l| l.is_loopback())
        .expect("a loopback interface")
        .clone();
    assert_eq!(&*lo.name, "lo");
    assert!(lo
        .addrs
        .iter()
        .any(|(ip, prefix)| ip.is_loopback() && *prefix == 8));
    let mut before = Vec::new();
    src.poll(&mut before).expect("poll");
    assert_eq!(before.len(), src.links().len(), "one sample per link");
    let lo_before = before
        .iter()
        .find(|s| s.index == lo.index)
        .expect("lo sampled");
    // Other tests may use loopback at the same time: at least what we send must show up.
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for _ in 0..100 {
        tx.send_to(&[7u8; 1000], rx.local_addr().expect("addr"))
            .expect("send");
    }
    let mut after = Vec::new();
    src.poll(&mut after).expect("poll");
    let lo_after = after
        .iter()
        .find(|s| s.index == lo.index)
        .expect("lo sampled");
    // 1000 B payload + 8 UDP + 20 IPv4 (loopback counts no link-layer header).
    let sent = lo_after.counters.tx_bytes - lo_before.counters.tx_bytes;
    assert!(sent >= 100 * 1028, "lo tx grew by {sent}");
    assert!(lo_after.counters.rx_packets - lo_before.counters.rx_packets >= 100);
}
