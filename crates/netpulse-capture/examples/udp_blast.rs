//! Sends UDP datagrams at a fixed rate, for the live-capture benchmark (`bench/live_capture_bench.sh`).
//! usage: udp_blast DEST:PORT PACKETS_PER_SEC SECONDS [PAYLOAD]
//! Prints `sent N in S s (R/s)`. Sends in bursts every 1 ms on an absolute timeline, up to 64
//! datagrams per `sendmmsg` call so the sender outruns what a capture can take.

use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrIn};
use std::io::IoSlice;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: udp_blast DEST:PORT PACKETS_PER_SEC SECONDS [PAYLOAD]");
        std::process::exit(2);
    }
    let dest = &args[1];
    let rate: u64 = args[2].parse().expect("rate");
    let secs: u64 = args[3].parse().expect("seconds");
    let payload = vec![0x5au8; args.get(4).and_then(|p| p.parse().ok()).unwrap_or(64)];
    let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
    sock.connect(dest).expect("connect");
    let total = rate * secs;
    const BURST: usize = 64;
    let one = [IoSlice::new(&payload)];
    let slices = vec![one; BURST];
    let addrs: Vec<Option<SockaddrIn>> = vec![None; BURST];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BURST, None);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut tick = 0u64;
    while sent < total {
        tick += 1;
        let due = (rate * tick / 1000).min(total);
        while sent < due {
            let n = (due - sent).min(BURST as u64) as usize;
            // A full socket buffer (ENOBUFS) is retried: the rate is what reaches the wire.
            if let Ok(done) = sendmmsg(
                sock.as_raw_fd(),
                &mut headers,
                &slices[..n],
                &addrs[..n],
                [] as [nix::sys::socket::ControlMessage; 0],
                MsgFlags::empty(),
            ) {
                sent += done.count() as u64;
            }
        }
        let next = start + Duration::from_millis(tick);
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    let took = start.elapsed().as_secs_f64();
    println!("sent {sent} in {took:.3} s ({:.0}/s)", sent as f64 / took);
}
