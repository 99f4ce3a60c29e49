//! Path tracing (`netpulse trace`): probes with rising TTL (hop limit), answered by each
//! router's time-exceeded and by the destination itself, round after round, as mtr does.
//!
//! - UDP (the default) needs no privilege on Linux: a UDP socket with `IP_RECVERR` /
//!   `IPV6_RECVERR` reads the routers' ICMP errors from its error queue, with our datagram
//!   quoted (as tracepath does), and the destination's port-unreachable says it was reached.
//!   ICMP echo uses a ping socket where the system allows one, else a raw socket (root or
//!   CAP_NET_RAW), else says how to allow it.
//! - Paris-traceroute flow stability: every probe of a flow keeps its 5-tuple (one socket, one
//!   destination port, per flow) — and for ICMP its identifier and checksum (a compensating
//!   word in the payload) — so ECMP load balancers send it one way; `flows` > 1 traces several
//!   flows, taking turns round by round, to show the paths a balancer spreads them over.
//! - Rate: Linux routers answer about one time-exceeded a second per source (`icmp_ratelimit`
//!   1000 ms, burst 6), and others alike; probing a hop faster fakes loss. So the defaults are
//!   one round a second with one probe per hop, the hops of a round spread over it, and flows
//!   take turns (one flow a round), never several probes to one hop at once.
//! - Times as `probe`'s: sent at the clock read just before `send`, answered at the kernel's
//!   receive timestamp.

use crate::engine::{open_icmp, receive, IcmpMode, RxBufs};
use crate::error::ProbeError;
use crate::wire::{self, IcmpMessage};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How a trace probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceProto {
    /// UDP datagrams to `port` (+ the flow's number): unprivileged.
    Udp {
        /// First destination port (traceroute's 33434).
        port: u16,
    },
    /// ICMP echo requests.
    Icmp,
    /// DNS-shaped UDP: a query for the root's NS records to `port` (53), which middleboxes
    /// that only pass DNS let through and a DNS server at the end answers; unprivileged.
    Dns {
        /// Destination port.
        port: u16,
    },
    /// TCP SYNs to `port`: where privileged (IPv4), crafted on a raw socket from a fixed port
    /// per flow (Paris-stable); else a connect per probe (its time-exceeded reaches the
    /// socket's error queue), with a new source port each, so not Paris-stable.
    Tcp {
        /// Destination port.
        port: u16,
    },
}

/// What to trace and how.
#[derive(Debug, Clone)]
pub struct TraceConfig {
    /// Destination.
    pub target: IpAddr,
    /// Probe kind.
    pub proto: TraceProto,
    /// First TTL probed.
    pub first_ttl: u8,
    /// Last TTL probed (at most 63) until the destination answers at a lower one.
    pub max_ttl: u8,
    /// Time between rounds.
    pub interval: Duration,
    /// How long a probe waits for its answer.
    pub timeout: Duration,
    /// Rounds to run (`None`: until stopped).
    pub rounds: Option<u64>,
    /// Flows traced, taking turns (1: one flow).
    pub flows: u8,
    /// How ICMP is sent.
    pub icmp_mode: IcmpMode,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            target: IpAddr::from([127, 0, 0, 1]),
            proto: TraceProto::Udp { port: 33434 },
            first_ttl: 1,
            max_ttl: 30,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            rounds: None,
            flows: 1,
            icmp_mode: IcmpMode::Auto,
        }
    }
}

/// What came back for one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct HopReply {
    /// Round number, from 1.
    pub round: u64,
    /// Flow number, from 0.
    pub flow: u8,
    /// TTL the probe left with (the hop number).
    pub ttl: u8,
    /// Who answered (`None`: nobody, in time).
    pub from: Option<IpAddr>,
    /// Round-trip time of the answer.
    pub rtt: Option<Duration>,
    /// The destination answered: the path ends at this hop.
    pub reached: bool,
    /// An unreachable (not time-exceeded) answer: its ICMP type and code (`!H`, `!N`, `!X`).
    pub unreachable: Option<(u8, u8)>,
}

impl HopReply {
    /// No answer (in time) to the probe of `round`, `flow` and `ttl`.
    fn silent(round: u32, flow: u8, ttl: u8) -> HopReply {
        HopReply {
            round: u64::from(round),
            flow,
            ttl,
            from: None,
            rtt: None,
            reached: false,
            unreachable: None,
        }
    }
}

/// Magic at the start of a trace probe's payload.
const MAGIC: [u8; 4] = *b"nPtr";
/// Tag bytes: magic, nonce, round, flow, TTL, and a word that keeps ICMP checksums constant.
const TAG_LEN: usize = 16;

fn tag(nonce: u32, round: u32, flow: u8, ttl: u8) -> [u8; TAG_LEN] {
    let mut t = [0u8; TAG_LEN];
    t[..4].copy_from_slice(&MAGIC);
    t[4..8].copy_from_slice(&nonce.to_be_bytes());
    t[8..12].copy_from_slice(&round.to_be_bytes());
    t[12] = flow;
    t[13] = ttl;
    t
}

fn read_tag(b: &[u8], nonce: u32) -> Option<(u32, u8, u8)> {
    let b = b.get(..TAG_LEN)?;
    if b[..4] != MAGIC || b[4..8] != nonce.to_be_bytes() {
        return None;
    }
    Some((u32::from_be_bytes([b[8], b[9], b[10], b[11]]), b[12], b[13]))
}

/// The ICMP sequence of a probe: the round's low 10 bits and the TTL (6 bits), so a router that
/// quotes only the 8-byte header still names it.
fn icmp_seq(round: u32, ttl: u8) -> u16 {
    ((round & 0x3ff) as u16) << 6 | u16::from(ttl & 0x3f)
}

/// Sets the last two bytes of `msg` (an echo request with its checksum field zero) so that the
/// message's one's-complement sum — hence its checksum — is the same for every probe of a flow.
fn keep_checksum(msg: &mut [u8]) {
    let n = msg.len();
    if n < 10 {
        return;
    }
    msg[n - 2..].copy_from_slice(&[0, 0]);
    // The sum without the compensating word; the word brings it to 0xffff (checksum 0 for
    // ICMPv4 before the kernel or we fill it; any constant works: this one is simplest).
    let sum = !wire::checksum(msg);
    let word = 0xffffu16.wrapping_sub(sum);
    let word = if word == 0 { 0xffff } else { word };
    msg[n - 2..].copy_from_slice(&word.to_be_bytes());
}

struct Pending {
    sent_mono: Instant,
    sent_wall: Duration,
}

/// One flow's socket.
struct FlowSock {
    sock: Socket,
    /// ICMP: raw (we see whole answers and set the identifier) or a ping socket.
    raw: bool,
    ident: u16,
}

fn wall() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn setup_err(op: &'static str) -> impl Fn(std::io::Error) -> ProbeError {
    move |source| ProbeError::Setup { op, source }
}

fn set_ttl(sock: &Socket, v6: bool, ttl: u8) -> std::io::Result<()> {
    if v6 {
        sock.set_unicast_hops_v6(u32::from(ttl))
    } else {
        sock.set_ttl_v4(u32::from(ttl))
    }
}

fn open_udp(target: SocketAddr) -> Result<Socket, ProbeError> {
    let sock = Socket::new(
        Domain::for_address(target),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(setup_err("open a UDP socket"))?;
    sock.set_nonblocking(true)
        .map_err(setup_err("set a UDP socket non-blocking"))?;
    setsockopt(&sock, sockopt::ReceiveTimestampns, &true).map_err(|e| ProbeError::Setup {
        op: "enable SO_TIMESTAMPNS",
        source: e.into(),
    })?;
    let recverr = if target.is_ipv6() {
        setsockopt(&sock, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt(&sock, sockopt::Ipv4RecvErr, &true)
    };
    recverr.map_err(|e| ProbeError::Setup {
        op: "enable IP_RECVERR",
        source: e.into(),
    })?;
    sock.connect(&SockAddr::from(target))
        .map_err(setup_err("connect a UDP socket"))?;
    Ok(sock)
}

/// Traces until `cfg.rounds` are done (and their answers in) or `stop` is set; every probe's
/// outcome goes to `on_reply` as it is known (an answer, or a timeout).
pub fn trace(
    cfg: &TraceConfig,
    stop: &AtomicBool,
    on_reply: &mut dyn FnMut(&HopReply),
) -> Result<(), ProbeError> {
    let v6 = cfg.target.is_ipv6();
    let max_ttl = cfg.max_ttl.clamp(1, 63);
    let first_ttl = cfg.first_ttl.clamp(1, max_ttl);
    let flows = cfg.flows.max(1);
    let nonce = std::process::id().wrapping_mul(2_654_435_761) ^ wall().subsec_nanos();
    let mut socks = Vec::with_capacity(usize::from(flows));
    for f in 0..flows {
        socks.push(match cfg.proto {
            TraceProto::Dns { port } => FlowSock {
                sock: open_udp(SocketAddr::new(cfg.target, port))?,
                raw: false,
                ident: 0,
            },
            TraceProto::Udp { port } => FlowSock {
                sock: open_udp(SocketAddr::new(cfg.target, port.wrapping_add(u16::from(f))))?,
                raw: false,
                ident: 0,
            },
            TraceProto::Icmp => {
                let s = open_icmp(v6, cfg.icmp_mode)?;
                FlowSock {
                    raw: s.raw,
                    sock: s.sock,
                    ident: (nonce as u16).wrapping_add(u16::from(f)),
                }
            }
            // A socket per probe, made as it leaves.
            TraceProto::Tcp { .. } => break,
        });
    }
    // Paris-stable TCP where privileged (IPv4): crafted SYNs, each flow's source port fixed.
    let raw_syn = match (cfg.proto, cfg.target) {
        (TraceProto::Tcp { port }, IpAddr::V4(dst)) => RawSyn::open(dst, port, nonce).ok(),
        _ => None,
    };
    // TCP probes in flight (without privilege): their sockets by probe.
    let mut tcp: HashMap<(u8, u32, u8), Socket> = HashMap::new();
    // Answers known at once (a TCP connect that finished as it started).
    let mut immediate: Vec<Answer> = Vec::new();
    let mut bufs = RxBufs::new();
    let mut tx = Vec::new();
    let mut dns_query =
        crate::dns::encode_query(".", "NS").map_err(|message| ProbeError::BadTarget {
            target: cfg.target.to_string(),
            message,
        })?;
    let mut pending: HashMap<(u8, u32, u8), Pending> = HashMap::new();
    // The lowest TTL the destination answered at: no point probing beyond it.
    let mut last_ttl = max_ttl;
    let start = Instant::now();
    let mut round: u32 = 0;
    let mut next_ttl = first_ttl;
    let mut round_start = start;
    let mut sending = true;
    loop {
        let now = Instant::now();
        if stop.load(Ordering::Relaxed) {
            sending = false;
        }
        // Sends due: the hops of a round spread over a tenth of the interval at most.
        if sending {
            if round == 0 || next_ttl > last_ttl {
                if cfg.rounds.is_some_and(|n| u64::from(round) >= n) {
                    sending = false;
                } else if round == 0 || now >= round_start + cfg.interval {
                    round += 1;
                    round_start = if round == 1 {
                        now
                    } else {
                        round_start + cfg.interval
                    };
                    next_ttl = first_ttl;
                }
            }
            let hops = u32::from(last_ttl - first_ttl + 1);
            let gap = (cfg.interval / 10 / hops.max(1)).min(Duration::from_millis(20));
            while sending && next_ttl <= last_ttl {
                let due = round_start + gap * u32::from(next_ttl - first_ttl);
                if Instant::now() < due {
                    break;
                }
                let flow = ((round - 1) % u32::from(flows)) as u8;
                let ttl = next_ttl;
                next_ttl += 1;
                let t = tag(nonce, round, flow, ttl);
                let sent_mono = Instant::now();
                let sent_wall = wall();
                let key = (flow, round, ttl);
                let sent: std::io::Result<Sent> = match (&raw_syn, cfg.proto) {
                    (Some(rs), _) => rs.send(flow, round, ttl).map(|()| Sent::Out),
                    (None, TraceProto::Tcp { port }) => {
                        start_tcp(SocketAddr::new(cfg.target, port), ttl).map(|(sock, done)| {
                            match done {
                                None => Sent::Connecting(sock),
                                Some(_) => Sent::Answered,
                            }
                        })
                    }
                    (None, _) => {
                        let fs = &socks[usize::from(flow)];
                        // An ICMP error also leaves a pending socket error (with IP_RECVERR
                        // too), which the next send would return instead of sending: clear it
                        // first (the error queue has the details).
                        let _ = fs.sock.take_error();
                        set_ttl(&fs.sock, v6, ttl)
                            .and_then(|_| match cfg.proto {
                                TraceProto::Dns { .. } => {
                                    // The query's id names the probe: the round's low bits and
                                    // the TTL.
                                    crate::dns::set_id(&mut dns_query, icmp_seq(round, ttl));
                                    fs.sock.send(&dns_query)
                                }
                                TraceProto::Udp { .. } | TraceProto::Tcp { .. } => fs.sock.send(&t),
                                TraceProto::Icmp => {
                                    wire::build_echo_request(
                                        &mut tx,
                                        v6,
                                        fs.ident,
                                        icmp_seq(round, ttl),
                                        TAG_LEN + 2,
                                    );
                                    tx[8..8 + TAG_LEN].copy_from_slice(&t);
                                    keep_checksum(&mut tx);
                                    if !v6 && fs.raw {
                                        let c = wire::checksum(&tx);
                                        tx[2..4].copy_from_slice(&c.to_be_bytes());
                                    }
                                    fs.sock.send_to(
                                        &tx,
                                        &SockAddr::from(SocketAddr::new(cfg.target, 0)),
                                    )
                                }
                            })
                            .map(|_| Sent::Out)
                    }
                };
                match sent {
                    Ok(how) => {
                        pending.insert(
                            key,
                            Pending {
                                sent_mono,
                                sent_wall,
                            },
                        );
                        match how {
                            Sent::Out => {}
                            Sent::Connecting(sock) => {
                                tcp.insert(key, sock);
                            }
                            Sent::Answered => immediate.push(Answer {
                                key,
                                from: Some(cfg.target),
                                kernel_time: None,
                                reached: true,
                                unreachable: None,
                            }),
                        }
                    }
                    // A local refusal (no route): this hop has no answer this round.
                    Err(_) => on_reply(&HopReply::silent(round, flow, ttl)),
                }
            }
        }
        // Timeouts.
        let now = Instant::now();
        let expired: Vec<(u8, u32, u8)> = pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.sent_mono) >= cfg.timeout)
            .map(|(k, _)| *k)
            .collect();
        let mut sorted = expired;
        sorted.sort_unstable_by_key(|&(f, r, t)| (r, t, f));
        for (flow, r, ttl) in sorted {
            pending.remove(&(flow, r, ttl));
            tcp.remove(&(flow, r, ttl));
            if ttl <= last_ttl {
                on_reply(&HopReply::silent(r, flow, ttl));
            }
        }
        if !sending && pending.is_empty() {
            return Ok(());
        }
        // Sleep until the next send, the oldest timeout or an answer.
        let mut wake = pending
            .values()
            .map(|p| p.sent_mono + cfg.timeout)
            .min()
            .unwrap_or(now + cfg.interval);
        if sending {
            let next_send = if next_ttl <= last_ttl {
                let hops = u32::from(last_ttl - first_ttl + 1);
                let gap = (cfg.interval / 10 / hops.max(1)).min(Duration::from_millis(20));
                round_start + gap * u32::from(next_ttl - first_ttl)
            } else {
                round_start + cfg.interval
            };
            wake = wake.min(next_send);
        }
        // Stop is checked at least every 100 ms.
        let wait = wake
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        let tcp_keys: Vec<(u8, u32, u8)> = tcp.keys().copied().collect();
        let mut fds: Vec<PollFd> = socks
            .iter()
            .map(|s| PollFd::new(s.sock.as_fd(), PollFlags::POLLIN))
            .chain(
                raw_syn
                    .iter()
                    .flat_map(|r| [r.tcp.as_fd(), r.icmp.as_fd()])
                    .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
            )
            .chain(
                tcp_keys
                    .iter()
                    .filter_map(|k| tcp.get(k))
                    .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLOUT)),
            )
            .collect();
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let ms = if immediate.is_empty() { ms } else { 0 };
        let _ = nix::poll::poll(&mut fds, PollTimeout::from(ms));
        let raw_fds = if raw_syn.is_some() { 2 } else { 0 };
        let ready_tcp: Vec<(u8, u32, u8)> = fds[socks.len() + raw_fds..]
            .iter()
            .zip(&tcp_keys)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, k)| *k)
            .collect();
        drop(fds);
        let woke = Instant::now();
        for a in std::mem::take(&mut immediate) {
            settle(&mut pending, &a, woke, &mut last_ttl, on_reply);
        }
        if let Some(rs) = &raw_syn {
            for (flow, seq, a) in rs.read(&mut bufs) {
                if let Some(key) = by_seq(&pending, usize::from(flow), seq) {
                    settle(
                        &mut pending,
                        &Answer { key, ..a },
                        woke,
                        &mut last_ttl,
                        on_reply,
                    );
                }
            }
        }
        for key in ready_tcp {
            let Some(sock) = tcp.remove(&key) else {
                continue;
            };
            let mut answer = None;
            // A router's time-exceeded (or an unreachable) for the SYN, from the error queue.
            while let Some(rx) = receive(sock.as_raw_fd(), &mut bufs, true) {
                if let Some(err) = rx.icmp_error {
                    let dest_unreachable = if v6 {
                        err.icmp_type == 1
                    } else {
                        err.icmp_type == 3
                    };
                    answer = Some(Answer {
                        key,
                        from: err.from,
                        kernel_time: rx.kernel_time,
                        reached: false,
                        unreachable: dest_unreachable.then_some((err.icmp_type, err.code)),
                    });
                }
            }
            // Else the destination: connected (SYN/ACK) or refused (RST), both an answer.
            let answer = answer.or_else(|| {
                match sock.take_error() {
                    Ok(None) => Some(true),
                    Ok(Some(e)) => Some(e.kind() == std::io::ErrorKind::ConnectionRefused),
                    Err(_) => None,
                }
                .filter(|reached| *reached)
                .map(|_| Answer {
                    key,
                    from: Some(cfg.target),
                    kernel_time: None,
                    reached: true,
                    unreachable: None,
                })
            });
            if let Some(a) = answer {
                settle(&mut pending, &a, woke, &mut last_ttl, on_reply);
            }
        }
        for (i, fs) in socks.iter().enumerate() {
            let fd = fs.sock.as_raw_fd();
            // The error queue: routers' time-exceeded and the destination's unreachable.
            while let Some(rx) = receive(fd, &mut bufs, true) {
                let Some(err) = rx.icmp_error else { continue };
                let data = &bufs.data[..rx.len];
                // UDP quotes our payload; a ping socket the whole echo request.
                let quoted = if matches!(cfg.proto, TraceProto::Icmp) {
                    data.get(8..).unwrap_or_default()
                } else {
                    data
                };
                let key = match cfg.proto {
                    // A DNS query quoted: its id names the probe, the socket its flow.
                    TraceProto::Dns { .. } => quoted
                        .get(..2)
                        .and_then(|b| by_seq(&pending, i, u16::from_be_bytes([b[0], b[1]]))),
                    _ => read_tag(quoted, nonce).map(|(r, flow, ttl)| (flow, r, ttl)),
                };
                let Some((flow, r, ttl)) = key else {
                    continue;
                };
                let dest_unreachable = if v6 {
                    err.icmp_type == 1
                } else {
                    err.icmp_type == 3
                };
                let reached = err.from == Some(cfg.target) && dest_unreachable;
                let answer = Answer {
                    key: (flow, r, ttl),
                    from: err.from,
                    kernel_time: rx.kernel_time,
                    reached,
                    unreachable: (dest_unreachable && !reached)
                        .then_some((err.icmp_type, err.code)),
                };
                settle(&mut pending, &answer, woke, &mut last_ttl, on_reply);
            }
            if !matches!(cfg.proto, TraceProto::Icmp) {
                // A reply: the DNS server's answer names its probe by id (another UDP service's
                // reply cannot be told apart: it is read and let go).
                while let Some(rx) = receive(fd, &mut bufs, false) {
                    let data = &bufs.data[..rx.len];
                    let key = match cfg.proto {
                        TraceProto::Dns { .. } => {
                            crate::dns::parse_response(data).and_then(|h| by_seq(&pending, i, h.id))
                        }
                        _ => None,
                    };
                    if let Some(key) = key {
                        let answer = Answer {
                            key,
                            from: Some(cfg.target),
                            kernel_time: rx.kernel_time,
                            reached: true,
                            unreachable: None,
                        };
                        settle(&mut pending, &answer, woke, &mut last_ttl, on_reply);
                    }
                }
                continue;
            }
            while let Some(rx) = receive(fd, &mut bufs, false) {
                let data = &bufs.data[..rx.len];
                let (src, icmp) = if fs.raw && !v6 {
                    match wire::strip_ipv4(data) {
                        Some((_, src, rest)) => (Some(IpAddr::V4(src)), rest),
                        None => continue,
                    }
                } else {
                    (rx.from, data)
                };
                let answer = match wire::parse_icmp(icmp, v6) {
                    IcmpMessage::EchoReply { ident, payload, .. } => {
                        if fs.raw && ident != fs.ident {
                            continue;
                        }
                        let Some((r, flow, ttl)) = read_tag(payload, nonce) else {
                            continue;
                        };
                        Answer {
                            key: (flow, r, ttl),
                            from: src,
                            kernel_time: rx.kernel_time,
                            reached: true,
                            unreachable: None,
                        }
                    }
                    IcmpMessage::Error {
                        icmp_type,
                        code,
                        ident,
                        seq,
                        payload,
                        ..
                    } => {
                        if fs.raw && ident != fs.ident {
                            continue;
                        }
                        // The tag if the router quoted it, else the sequence.
                        let key = match read_tag(payload, nonce) {
                            Some((r, flow, ttl)) => (flow, r, ttl),
                            None => {
                                let Some(key) = by_seq(&pending, i, seq) else {
                                    continue;
                                };
                                key
                            }
                        };
                        let time_exceeded = if v6 { icmp_type == 3 } else { icmp_type == 11 };
                        Answer {
                            key,
                            from: src,
                            kernel_time: rx.kernel_time,
                            reached: false,
                            unreachable: (!time_exceeded).then_some((icmp_type, code)),
                        }
                    }
                    IcmpMessage::Other => continue,
                };
                settle(&mut pending, &answer, woke, &mut last_ttl, on_reply);
            }
        }
    }
}

/// Paris-stable TCP probes (privileged, IPv4): SYNs crafted on a raw TCP socket, each flow
/// from a fixed source port, the probe named by the sequence number; routers' time-exceeded
/// read from a raw ICMP socket (quoting our ports and sequence), the destination's SYN/ACK or
/// RST from the raw TCP socket (acknowledging it). The kernel answers that SYN/ACK with a RST,
/// as it has no socket for it: nothing is left open.
struct RawSyn {
    tcp: Socket,
    icmp: Socket,
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    port: u16,
    /// Flow `f` sends from `base_port + f`.
    base_port: u16,
    /// The sequence number's high half: this run's.
    seq_hi: u16,
}

impl RawSyn {
    fn open(dst: std::net::Ipv4Addr, port: u16, nonce: u32) -> std::io::Result<RawSyn> {
        let tcp = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP))?;
        let icmp = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        for s in [&tcp, &icmp] {
            s.set_nonblocking(true)?;
            let _ = setsockopt(s, sockopt::ReceiveTimestampns, &true);
        }
        // The source address the kernel would use for this destination.
        let probe = std::net::UdpSocket::bind("0.0.0.0:0")?;
        probe.connect((dst, port))?;
        let src = match probe.local_addr()?.ip() {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => return Err(std::io::ErrorKind::InvalidInput.into()),
        };
        Ok(RawSyn {
            tcp,
            icmp,
            src,
            dst,
            port,
            base_port: 40_000 + (nonce % 8_000) as u16,
            seq_hi: (nonce >> 16) as u16,
        })
    }

    fn send(&self, flow: u8, round: u32, ttl: u8) -> std::io::Result<()> {
        let seq = u32::from(self.seq_hi) << 16 | u32::from(icmp_seq(round, ttl));
        let mut seg = [0u8; 32];
        // Pseudo-header for the checksum, then the 20-byte header.
        seg[..4].copy_from_slice(&self.src.octets());
        seg[4..8].copy_from_slice(&self.dst.octets());
        seg[9] = 6;
        seg[11] = 20;
        let h = &mut seg[12..];
        h[..2].copy_from_slice(&(self.base_port + u16::from(flow)).to_be_bytes());
        h[2..4].copy_from_slice(&self.port.to_be_bytes());
        h[4..8].copy_from_slice(&seq.to_be_bytes());
        h[12] = 5 << 4;
        h[13] = 0x02;
        h[14..16].copy_from_slice(&1024u16.to_be_bytes());
        let c = wire::checksum(&seg);
        seg[28..30].copy_from_slice(&c.to_be_bytes());
        self.tcp.set_ttl_v4(u32::from(ttl))?;
        self.tcp
            .send_to(
                &seg[12..],
                &SockAddr::from(SocketAddr::new(IpAddr::V4(self.dst), 0)),
            )
            .map(|_| ())
    }

    /// Whose flow and sequence answered, and how (the answer's key is filled by the caller).
    fn read(&self, bufs: &mut RxBufs) -> Vec<(u8, u16, Answer)> {
        let mut out = Vec::new();
        let flows = self.base_port..self.base_port.saturating_add(256);
        let ours = |sport: u16, seq: u32| {
            (flows.contains(&sport) && (seq >> 16) as u16 == self.seq_hi)
                .then(|| ((sport - self.base_port) as u8, seq as u16))
        };
        let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
        let be32 =
            |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        while let Some(rx) = receive(self.icmp.as_raw_fd(), bufs, false) {
            let Some((_, from, icmp)) = wire::strip_ipv4(&bufs.data[..rx.len]) else {
                continue;
            };
            let (kind, code) = match icmp.get(..2) {
                Some(&[t, c]) if t == 11 || t == 3 => (t, c),
                _ => continue,
            };
            // The quoted IP header, then our TCP header's ports and sequence.
            let Some((_, _, quoted_tcp)) = icmp.get(8..).and_then(wire::strip_ipv4) else {
                continue;
            };
            let quoted_ip = &icmp[8..];
            if quoted_ip.get(9) != Some(&6) || quoted_ip.get(16..20) != Some(&self.dst.octets()[..])
            {
                continue;
            }
            let Some(t) = quoted_tcp.get(..8) else {
                continue;
            };
            if be16(t, 2) != self.port {
                continue;
            }
            if let Some((flow, seq)) = ours(be16(t, 0), be32(t, 4)) {
                let reached = kind == 3 && IpAddr::V4(from) == IpAddr::V4(self.dst);
                out.push((
                    flow,
                    seq,
                    Answer {
                        key: (0, 0, 0),
                        from: Some(IpAddr::V4(from)),
                        kernel_time: rx.kernel_time,
                        reached,
                        unreachable: (kind == 3 && !reached).then_some((kind, code)),
                    },
                ));
            }
        }
        while let Some(rx) = receive(self.tcp.as_raw_fd(), bufs, false) {
            let Some((_, from, t)) = wire::strip_ipv4(&bufs.data[..rx.len]) else {
                continue;
            };
            if from != self.dst || t.len() < 20 || be16(t, 0) != self.port {
                continue;
            }
            let flags = t[13];
            // SYN/ACK (open) or RST (closed), acknowledging our sequence + 1.
            if flags & 0x12 != 0x12 && flags & 0x04 == 0 {
                continue;
            }
            if let Some((flow, seq)) = ours(be16(t, 2), be32(t, 8).wrapping_sub(1)) {
                out.push((
                    flow,
                    seq,
                    Answer {
                        key: (0, 0, 0),
                        from: Some(IpAddr::V4(from)),
                        kernel_time: rx.kernel_time,
                        reached: true,
                        unreachable: None,
                    },
                ));
            }
        }
        out
    }
}

/// A non-blocking connect with `ttl` and the error queue on: the socket and, when the connect
/// finished at once (loopback), its result.
fn start_tcp(
    target: SocketAddr,
    ttl: u8,
) -> std::io::Result<(Socket, Option<std::io::Result<()>>)> {
    let sock = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    sock.set_nonblocking(true)?;
    set_ttl(&sock, target.is_ipv6(), ttl)?;
    let recverr = if target.is_ipv6() {
        setsockopt(&sock, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt(&sock, sockopt::Ipv4RecvErr, &true)
    };
    recverr.map_err(std::io::Error::from)?;
    let _ = setsockopt(&sock, sockopt::ReceiveTimestampns, &true);
    match sock.connect(&SockAddr::from(target)) {
        Ok(()) => Ok((sock, Some(Ok(())))),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((sock, None)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok((sock, Some(Err(e)))),
        Err(e) => Err(e),
    }
}

/// The probe of flow `flow` still pending whose 16-bit sequence (see [`icmp_seq`]) is `seq`.
fn by_seq(
    pending: &HashMap<(u8, u32, u8), Pending>,
    flow: usize,
    seq: u16,
) -> Option<(u8, u32, u8)> {
    let ttl = (seq & 0x3f) as u8;
    let r10 = u32::from(seq >> 6);
    pending
        .keys()
        .find(|&&(f, r, t)| usize::from(f) == flow && t == ttl && r & 0x3ff == r10)
        .copied()
}

/// How a probe left.
enum Sent {
    /// On its way; its answer comes on a socket all probes share.
    Out,
    /// A TCP connect under way, on a socket of its own.
    Connecting(Socket),
    /// A TCP connect that finished as it started: the destination answered.
    Answered,
}

/// An answer to one of our probes.
struct Answer {
    key: (u8, u32, u8),
    from: Option<IpAddr>,
    kernel_time: Option<Duration>,
    reached: bool,
    unreachable: Option<(u8, u8)>,
}

/// Resolves the probe `a` answers, if still pending.
fn settle(
    pending: &mut HashMap<(u8, u32, u8), Pending>,
    a: &Answer,
    woke: Instant,
    last_ttl: &mut u8,
    on_reply: &mut dyn FnMut(&HopReply),
) {
    let Some(p) = pending.remove(&a.key) else {
        return;
    };
    let mono = woke.saturating_duration_since(p.sent_mono);
    // The kernel's stamp, unless the wall clock stepped in between.
    let rtt = a
        .kernel_time
        .and_then(|k| k.checked_sub(p.sent_wall))
        .filter(|k| *k <= mono + Duration::from_millis(1))
        .unwrap_or(mono);
    let (flow, round, ttl) = a.key;
    if a.reached && ttl < *last_ttl {
        *last_ttl = ttl;
    }
    if ttl > *last_ttl {
        return; // past the destination: not a hop
    }
    on_reply(&HopReply {
        round: u64::from(round),
        flow,
        ttl,
        from: a.from,
        rtt: Some(rtt),
        reached: a.reached,
        unreachable: a.unreachable,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_checksums_stay_constant_within_a_flow() {
        let t = tag(7, 123_456, 2, 9);
        assert_eq!(read_tag(&t, 7), Some((123_456, 2, 9)));
        assert_eq!(read_tag(&t, 8), None, "another run's");
        let mut sums = std::collections::HashSet::new();
        let mut buf = Vec::new();
        for round in 1..50u32 {
            for ttl in 1..20u8 {
                wire::build_echo_request(
                    &mut buf,
                    false,
                    0x4242,
                    icmp_seq(round, ttl),
                    TAG_LEN + 2,
                );
                buf[8..8 + TAG_LEN].copy_from_slice(&tag(7, round, 0, ttl));
                keep_checksum(&mut buf);
                sums.insert(wire::checksum(&buf));
            }
        }
        assert_eq!(sums.len(), 1, "Paris: one checksum per flow");
        assert_eq!(icmp_seq(3, 5) & 0x3f, 5);
    }
}
