//! The probe engine: one thread, one event loop, every target.
//!
//! Sends are scheduled on a nominal timeline (target `i` of `n` starts `i/n` of an interval late, so
//! sends are spread evenly, never bursted at a tick); a send that leaves late is counted, and the
//! next one keeps the nominal time, so intervals are never silently stretched. The loop sleeps in
//! `ppoll` with a nanosecond timeout (and 1 µs timer slack) until the next send or timeout, or
//! until a socket is readable. Replies are matched by a tag in the payload (target + 64-bit
//! sequence), falling back to address + 16-bit sequence when the payload is too short for it.
//!
//! RTTs: the send time is read from the clock immediately *before* `sendto`; the receive time is
//! the kernel's `SO_TIMESTAMPNS` stamp, taken when the packet arrived, not when we woke up. If the
//! wall clock stepped between the two, the monotonic measurement is used instead.
//! TCP connect time is measured on the monotonic clock from just before `connect` to the wake-up
//! that reports the handshake finished.
//!
//! Memory per target is fixed: in-flight probes live in a ring sized from timeout / interval.

use crate::dns;
use crate::error::ProbeError;
use crate::sys;
use crate::wire::{self, IcmpMessage, ProbeTag, TAG_LEN};
use netpulse_core::record::{Detail, IcmpError, Outcome, ProbeResult};
use netpulse_core::stats::ProbeStats;
use netpulse_core::target::TargetKind;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One target to probe, resolved.
#[derive(Debug, Clone)]
pub struct ProbePlan {
    /// How the target is shown (as the user wrote it, canonicalised).
    pub label: String,
    /// Protocol and parameters.
    pub kind: TargetKind,
    /// Resolved address.
    pub addr: IpAddr,
    /// Time between probes.
    pub interval: Duration,
    /// How long to wait for an answer.
    pub timeout: Duration,
    /// Stop after this many probes (`None`: until stopped).
    pub count: Option<u64>,
}

/// How ICMP echo is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IcmpMode {
    /// An unprivileged ping socket if the system allows it, else a raw socket.
    #[default]
    Auto,
    /// Only an unprivileged ping socket (`SOCK_DGRAM`, `IPPROTO_ICMP`).
    Dgram,
    /// Only a raw socket (needs CAP_NET_RAW).
    Raw,
}

/// Settings shared by all targets.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How ICMP is sent.
    pub icmp_mode: IcmpMode,
    /// Payload bytes of ICMP and UDP probes (ping's `-s`).
    pub payload_size: usize,
    /// Stop sending after this long (ping's `-w`).
    pub deadline: Option<Duration>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            icmp_mode: IcmpMode::Auto,
            payload_size: 56,
            deadline: None,
        }
    }
}

/// Stops a running engine from another thread: no new probes, answers in flight are awaited.
#[derive(Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    wake: Arc<EventFd>,
}

impl StopHandle {
    /// Asks the engine to stop; returns at once.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        // A failed write only delays the stop until the next scheduled wake-up.
        let _ = self.wake.write(1);
    }
}

/// What a run measured for one target.
#[derive(Debug, Clone, Default)]
pub struct TargetReport {
    /// Counts and statistics.
    pub stats: ProbeStats,
    /// Sends that left later than the lateness threshold.
    pub late_sends: u64,
    /// The latest any send left.
    pub max_lateness: Duration,
    /// From the first send to the last answer or timeout.
    pub elapsed: Duration,
    /// Answers that arrived after their probe had timed out, or twice.
    pub late_or_duplicate_replies: u64,
}

/// What a whole run measured.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// One per plan, in plan order.
    pub targets: Vec<TargetReport>,
}

/// A send counts as late when it leaves this much after its nominal time: half the interval,
/// at most 1 ms.
pub fn late_threshold(interval: Duration) -> Duration {
    (interval / 2).min(Duration::from_millis(1))
}

struct IcmpSocket {
    sock: Socket,
    v6: bool,
    raw: bool,
}

#[derive(Default)]
struct Slot {
    /// 0 = free (sequences start at 1).
    seq: u64,
    sent_mono: Option<Instant>,
    sent_wall: Duration,
    tcp: Option<Socket>,
}

struct TargetState {
    plan: ProbePlan,
    dest: SockAddr,
    next_seq: u64,
    slots: Vec<Slot>,
    mask: u64,
    in_flight: usize,
    sending: bool,
    /// Connected socket of UDP and DNS targets.
    conn: Option<Socket>,
    dns_query: Vec<u8>,
    report: TargetReport,
    first_send: Option<Instant>,
    last_resolved: Option<Instant>,
}

impl TargetState {
    fn slot_index(&self, seq: u64) -> usize {
        (seq & self.mask) as usize
    }

    /// The in-flight slot holding `seq`, if it is still in flight.
    fn slot_of(&self, seq: u64) -> Option<usize> {
        let i = self.slot_index(seq);
        (seq != 0 && self.slots[i].seq == seq).then_some(i)
    }

    /// The in-flight slot whose sequence ends in `seq16` (for answers that only carry 16 bits).
    fn slot_of_seq16(&self, seq16: u16) -> Option<u64> {
        let s = &self.slots[(u64::from(seq16) & self.mask) as usize];
        (s.seq != 0 && s.seq as u16 == seq16).then_some(s.seq)
    }

    /// How early a send may leave to share a wake-up with another: 1/16 of the interval (62 µs
    /// at 1 ms, 625 µs at 10 ms), at most 1 ms. Intervals stay exact on average; a single one
    /// may be shorter by this much, which no RTT or loss figure depends on.
    fn send_slack(&self) -> Duration {
        (self.plan.interval / 16).min(Duration::from_millis(1))
    }

    fn oldest_in_flight(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter(|s| s.seq != 0)
            .map(|s| s.seq)
            .min()
    }
}

/// When the next timer is closer than this, the loop does not wake up for replies that carry a
/// kernel timestamp; it reads them when the timer fires (at most this much later).
const LAZY_WINDOW: Duration = Duration::from_millis(2);

/// How long `poll_io` may sleep.
enum PollUntil {
    /// Not at all: only look.
    Now,
    /// Until this time (`None`: until something happens).
    At(Option<Instant>),
}

/// Which sockets `poll_io` watches.
enum Interest {
    /// Everything.
    All,
    /// ICMP, UDP and DNS sockets, whose replies carry kernel receive timestamps.
    Timestamped,
    /// The wake-up fd and TCP connects, which are timed when we wake.
    Untimestamped,
}

/// Heap entry: (when, target, seq); seq 0 = the target's next send, else that probe's timeout.
type Event = Reverse<(Instant, u32, u64)>;

/// Buffers reused for every receive, so the hot path does not allocate.
struct RxBufs {
    data: Vec<u8>,
    cmsg: Vec<u8>,
    tx: Vec<u8>,
}

/// What a received datagram said, taken out of the receive buffers.
struct Received {
    len: usize,
    kernel_time: Option<Duration>,
    ttl: Option<u8>,
    from: Option<IpAddr>,
    /// An error-queue entry that an ICMP(v6) message caused.
    icmp_error: Option<IcmpError>,
}

/// The probe engine. Build it with [`Engine::new`], take a [`StopHandle`], then [`Engine::run`].
pub struct Engine {
    targets: Vec<TargetState>,
    icmp4: Option<IcmpSocket>,
    icmp6: Option<IcmpSocket>,
    wake: Arc<EventFd>,
    stop: Arc<AtomicBool>,
    config: EngineConfig,
    nonce: u32,
    icmp_by_addr: HashMap<IpAddr, Vec<u32>>,
}

fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() as u32
}

fn is_permission(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EPROTONOSUPPORT)
    )
}

fn open_icmp(v6: bool, mode: IcmpMode) -> Result<IcmpSocket, ProbeError> {
    let (domain, proto, family) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6, "IPv6")
    } else {
        (Domain::IPV4, Protocol::ICMPV4, "IPv4")
    };
    let dgram = || Socket::new(domain, Type::DGRAM, Some(proto));
    let raw = || Socket::new(domain, Type::RAW, Some(proto));
    let (sock, is_raw) = match mode {
        IcmpMode::Dgram => (
            dgram().map_err(|source| ProbeError::IcmpSocket {
                mode: "dgram",
                family,
                source,
            })?,
            false,
        ),
        IcmpMode::Raw => (
            raw().map_err(|source| ProbeError::IcmpSocket {
                mode: "raw",
                family,
                source,
            })?,
            true,
        ),
        IcmpMode::Auto => match dgram() {
            Ok(s) => (s, false),
            Err(e) if is_permission(&e) => match raw() {
                Ok(s) => (s, true),
                Err(raw_error) if is_permission(&raw_error) => {
                    return Err(ProbeError::IcmpPermission {
                        range: std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
                            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                            .unwrap_or_else(|_| "unknown".into()),
                        raw_error,
                        exe: std::env::current_exe()
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|_| "netpulse".into()),
                    })
                }
                Err(source) => {
                    return Err(ProbeError::IcmpSocket {
                        mode: "raw",
                        family,
                        source,
                    })
                }
            },
            Err(source) => {
                return Err(ProbeError::IcmpSocket {
                    mode: "dgram",
                    family,
                    source,
                })
            }
        },
    };
    let setup =
        |op: &'static str, r: io::Result<()>| r.map_err(|source| ProbeError::Setup { op, source });
    setup("set ICMP socket non-blocking", sock.set_nonblocking(true))?;
    // Bursts of replies at 1000s/s must not overflow the default buffer.
    let _ = sock.set_recv_buffer_size(1 << 20);
    setup(
        "enable SO_TIMESTAMPNS",
        setsockopt(&sock, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from),
    )?;
    match (v6, is_raw) {
        (false, true) => setup("set ICMP filter", sys::set_icmp4_filter(&sock))?,
        (true, true) => setup("set ICMPv6 filter", sys::set_icmp6_filter(&sock))?,
        (false, false) => {
            setup(
                "enable IP_RECVERR",
                setsockopt(&sock, sockopt::Ipv4RecvErr, &true).map_err(io::Error::from),
            )?;
            setup(
                "enable IP_RECVTTL",
                setsockopt(&sock, sockopt::Ipv4RecvTtl, &true).map_err(io::Error::from),
            )?;
        }
        (true, false) => {
            setup(
                "enable IPV6_RECVERR",
                setsockopt(&sock, sockopt::Ipv6RecvErr, &true).map_err(io::Error::from),
            )?;
        }
    }
    if v6 {
        setup(
            "enable IPV6_RECVHOPLIMIT",
            setsockopt(&sock, sockopt::Ipv6RecvHopLimit, &true).map_err(io::Error::from),
        )?;
    }
    Ok(IcmpSocket {
        sock,
        v6,
        raw: is_raw,
    })
}

fn open_udp(addr: SocketAddr) -> Result<Socket, ProbeError> {
    let err = |op: &'static str| move |source: io::Error| ProbeError::Socket { op, addr, source };
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(err("open UDP socket"))?;
    sock.set_nonblocking(true)
        .map_err(err("set non-blocking"))?;
    setsockopt(&sock, sockopt::ReceiveTimestampns, &true)
        .map_err(io::Error::from)
        .map_err(err("enable SO_TIMESTAMPNS"))?;
    if addr.is_ipv6() {
        setsockopt(&sock, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt(&sock, sockopt::Ipv4RecvErr, &true)
    }
    .map_err(io::Error::from)
    .map_err(err("enable IP_RECVERR"))?;
    sock.connect(&addr.into())
        .map_err(err("connect UDP socket"))?;
    Ok(sock)
}

impl Engine {
    /// Opens every socket the plans need. Fails (with a hint) when ICMP is not permitted.
    pub fn new(plans: Vec<ProbePlan>, config: EngineConfig) -> Result<Self, ProbeError> {
        let needs = |v6: bool| {
            plans
                .iter()
                .any(|p| p.kind == TargetKind::Icmp && p.addr.is_ipv6() == v6)
        };
        let icmp4 = needs(false)
            .then(|| open_icmp(false, config.icmp_mode))
            .transpose()?;
        let icmp6 = needs(true)
            .then(|| open_icmp(true, config.icmp_mode))
            .transpose()?;
        let wake =
            EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC).map_err(|e| {
                ProbeError::Setup {
                    op: "create event fd",
                    source: e.into(),
                }
            })?;
        let mut targets = Vec::with_capacity(plans.len());
        let mut icmp_by_addr: HashMap<IpAddr, Vec<u32>> = HashMap::new();
        for (i, plan) in plans.into_iter().enumerate() {
            let port = plan.kind.port().unwrap_or(0);
            let sa = SocketAddr::new(plan.addr, port);
            let mut conn = None;
            let mut dns_query = Vec::new();
            match &plan.kind {
                TargetKind::Icmp => icmp_by_addr.entry(plan.addr).or_default().push(i as u32),
                TargetKind::Udp { .. } => conn = Some(open_udp(sa)?),
                TargetKind::Dns { name, qtype, .. } => {
                    dns_query = dns::encode_query(name, qtype).map_err(|message| {
                        ProbeError::BadTarget {
                            target: plan.label.clone(),
                            message,
                        }
                    })?;
                    conn = Some(open_udp(sa)?);
                }
                TargetKind::Tcp { .. } => {}
            }
            // Enough slots for every probe that can be in flight at once, plus slack; a power of
            // two no larger than the 16-bit sequence space, so 16-bit lookups stay unambiguous.
            let in_flight = plan.timeout.as_nanos() / plan.interval.as_nanos().max(1) + 2;
            let cap = (in_flight.min(1 << 16) as u64).next_power_of_two().max(4);
            targets.push(TargetState {
                dest: sa.into(),
                next_seq: 1,
                slots: (0..cap).map(|_| Slot::default()).collect(),
                mask: cap - 1,
                in_flight: 0,
                sending: true,
                conn,
                dns_query,
                report: TargetReport::default(),
                first_send: None,
                last_resolved: None,
                plan,
            });
        }
        Ok(Self {
            targets,
            icmp4,
            icmp6,
            wake: Arc::new(wake),
            stop: Arc::new(AtomicBool::new(false)),
            config,
            nonce: random_u32(),
            icmp_by_addr,
        })
    }

    /// `"dgram"` or `"raw"`: which ICMP socket this run uses, if any.
    pub fn icmp_socket_kind(&self) -> Option<&'static str> {
        self.icmp4
            .as_ref()
            .or(self.icmp6.as_ref())
            .map(|s| if s.raw { "raw" } else { "dgram" })
    }

    /// A handle that stops this engine from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            flag: Arc::clone(&self.stop),
            wake: Arc::clone(&self.wake),
        }
    }

    /// Probes until every target has sent its count, the deadline passes or a stop is asked for,
    /// then waits for the answers in flight. Every resolved probe is passed to `sink`.
    pub fn run(mut self, sink: &mut dyn FnMut(&ProbeResult)) -> RunReport {
        // Precise wake-ups: the default 50 µs timer slack would blur 1 ms schedules.
        let _ = nix::sys::prctl::set_timerslack(1_000);
        let start = Instant::now();
        let deadline = self.config.deadline.map(|d| start + d);
        let mut heap: BinaryHeap<Event> = BinaryHeap::new();
        let n = self.targets.len().max(1) as u32;
        for (i, t) in self.targets.iter_mut().enumerate() {
            if t.plan.count == Some(0) {
                t.sending = false;
                continue;
            }
            let offset = t.plan.interval * i as u32 / n;
            heap.push(Reverse((start + offset, i as u32, 0)));
        }
        let mut bufs = RxBufs {
            data: vec![0u8; 65536],
            cmsg: nix::cmsg_space!(
                TimeSpec,
                libc::c_int,
                libc::sock_extended_err,
                libc::sockaddr_in6
            ),
            tx: Vec::with_capacity(65536),
        };
        let mut tcp_pending: Vec<(u32, u64)> = Vec::new();
        let mut stopping = false;
        // True when the last sleep left the kernel-timestamped sockets out (see LAZY_WINDOW).
        let mut unread = false;
        loop {
            if unread {
                // Answers first: a probe must not time out while its reply waits in a buffer.
                self.poll_io(
                    PollUntil::Now,
                    Interest::Timestamped,
                    &mut tcp_pending,
                    &mut bufs,
                    sink,
                );
            }
            let mut now = Instant::now();
            if !stopping
                && (self.stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d))
            {
                stopping = true;
                for t in &mut self.targets {
                    t.sending = false;
                }
            }
            while let Some(&Reverse((at, ti, seq))) = heap.peek() {
                // Sends due within a small slack go out on this wake-up instead of their own:
                // fewer wake-ups, and still evenly spread at that granularity.
                let slack = if seq == 0 {
                    self.targets[ti as usize].send_slack()
                } else {
                    Duration::ZERO
                };
                if at > now + slack {
                    break;
                }
                heap.pop();
                if seq == 0 {
                    self.send(ti, at, &mut heap, &mut tcp_pending, &mut bufs, sink);
                } else {
                    self.resolve(ti, seq, Outcome::Timeout, None, Detail::None, now, sink);
                }
                now = Instant::now();
            }
            if self.targets.iter().all(|t| !t.sending && t.in_flight == 0) {
                break;
            }
            let mut next = heap.peek().map(|Reverse((at, _, _))| *at);
            if !stopping {
                if let Some(d) = deadline {
                    next = Some(next.map_or(d, |n| n.min(d)));
                }
            }
            // Replies carry kernel timestamps, so reading them late costs no precision: when a
            // timer is due soon anyway, sleep through their arrival and read them then.
            let lazy = next.is_some_and(|n| n.saturating_duration_since(now) < LAZY_WINDOW);
            let interest = if lazy {
                Interest::Untimestamped
            } else {
                Interest::All
            };
            self.poll_io(
                PollUntil::At(next),
                interest,
                &mut tcp_pending,
                &mut bufs,
                sink,
            );
            unread = lazy;
        }
        let mut report = RunReport::default();
        for t in self.targets {
            let mut r = t.report;
            if let (Some(a), Some(b)) = (t.first_send, t.last_resolved) {
                r.elapsed = b.saturating_duration_since(a);
            }
            report.targets.push(r);
        }
        report
    }

    /// Sends target `ti`'s next probe (nominally due at `at`) and schedules the one after.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        ti: u32,
        at: Instant,
        heap: &mut BinaryHeap<Event>,
        tcp_pending: &mut Vec<(u32, u64)>,
        bufs: &mut RxBufs,
        sink: &mut dyn FnMut(&ProbeResult),
    ) {
        let i = ti as usize;
        if !self.targets[i].sending {
            return;
        }
        let seq = self.targets[i].next_seq;
        // The ring is sized for every probe that can be in flight; an occupant here means its
        // timeout has not been processed yet, so it is resolved as one now.
        let old = self.targets[i].slots[self.targets[i].slot_index(seq)].seq;
        if old != 0 {
            self.resolve(
                ti,
                old,
                Outcome::Timeout,
                None,
                Detail::None,
                Instant::now(),
                sink,
            );
        }
        let nonce = self.nonce;
        let payload_size = self.config.payload_size;
        let t = &mut self.targets[i];
        t.next_seq += 1;
        let tag = ProbeTag {
            nonce,
            target: ti,
            seq,
        };
        let mut tcp_sock = None;
        let mut immediate: Option<(Outcome, Option<Duration>)> = None;
        let sent_mono = Instant::now();
        let lateness = sent_mono.saturating_duration_since(at);
        if lateness > late_threshold(t.plan.interval) {
            t.report.late_sends += 1;
        }
        t.report.max_lateness = t.report.max_lateness.max(lateness);
        let sent_wall = wall_now();
        match &t.plan.kind {
            TargetKind::Icmp => {
                let icmp = if t.plan.addr.is_ipv6() {
                    self.icmp6.as_ref()
                } else {
                    self.icmp4.as_ref()
                };
                if let Some(icmp) = icmp {
                    wire::build_echo_request(
                        &mut bufs.tx,
                        icmp.v6,
                        nonce as u16,
                        seq as u16,
                        payload_size,
                    );
                    wire::patch_echo_request(&mut bufs.tx, icmp.v6, seq as u16, &tag);
                    if let Err(e) = icmp.sock.send_to(&bufs.tx, &t.dest) {
                        immediate = Some((Outcome::Error(format!("sendto: {e}")), None));
                    }
                }
            }
            TargetKind::Udp { .. } => {
                bufs.tx.clear();
                bufs.tx.resize(payload_size, 0);
                tag.write(&mut bufs.tx);
                if let Some(c) = &t.conn {
                    if let Err(e) = c.send(&bufs.tx) {
                        immediate = Some(send_error_outcome(e, t.plan.addr));
                    }
                }
            }
            TargetKind::Dns { .. } => {
                dns::set_id(&mut t.dns_query, (nonce as u16).wrapping_add(seq as u16));
                if let Some(c) = &t.conn {
                    if let Err(e) = c.send(&t.dns_query) {
                        immediate = Some(send_error_outcome(e, t.plan.addr));
                    }
                }
            }
            TargetKind::Tcp { .. } => match start_connect(&t.dest) {
                Ok((sock, done)) => {
                    if let Some(r) = done {
                        let rtt = sent_mono.elapsed();
                        immediate = Some(match r {
                            Ok(()) => (Outcome::Ok, Some(rtt)),
                            Err(e) => connect_error_outcome(e, t.plan.addr, rtt),
                        });
                    } else {
                        tcp_sock = Some(sock);
                    }
                }
                Err(e) => immediate = Some((Outcome::Error(format!("socket: {e}")), None)),
            },
        }
        let idx = t.slot_index(seq);
        let has_tcp = tcp_sock.is_some();
        t.slots[idx] = Slot {
            seq,
            sent_mono: Some(sent_mono),
            sent_wall,
            tcp: tcp_sock,
        };
        t.in_flight += 1;
        t.first_send.get_or_insert(sent_mono);
        if has_tcp {
            tcp_pending.push((ti, seq));
        }
        heap.push(Reverse((sent_mono + t.plan.timeout, ti, seq)));
        if t.plan.count.is_some_and(|c| seq >= c) {
            t.sending = false;
        } else {
            heap.push(Reverse((at + t.plan.interval, ti, 0)));
        }
        if let Some((outcome, rtt)) = immediate {
            self.resolve(ti, seq, outcome, rtt, Detail::None, Instant::now(), sink);
        }
    }

    /// Resolves probe `seq` of target `ti` if it is still in flight.
    #[allow(clippy::too_many_arguments)]
    fn resolve(
        &mut self,
        ti: u32,
        seq: u64,
        outcome: Outcome,
        rtt: Option<Duration>,
        detail: Detail,
        now: Instant,
        sink: &mut dyn FnMut(&ProbeResult),
    ) -> bool {
        let Some(t) = self.targets.get_mut(ti as usize) else {
            return false;
        };
        let Some(idx) = t.slot_of(seq) else {
            if outcome != Outcome::Timeout {
                t.report.late_or_duplicate_replies += 1;
            }
            return false;
        };
        let slot = std::mem::take(&mut t.slots[idx]);
        t.in_flight -= 1;
        t.last_resolved = Some(now);
        let result = ProbeResult {
            target: ti as usize,
            seq,
            sent_at: UNIX_EPOCH + slot.sent_wall,
            rtt: if outcome == Outcome::Timeout {
                None
            } else {
                rtt
            },
            outcome,
            detail,
        };
        t.report.stats.record(&result);
        sink(&result);
        true
    }

    /// Waits as `until` says for the sockets in `interest`, then handles what arrived.
    fn poll_io(
        &mut self,
        until: PollUntil,
        interest: Interest,
        tcp_pending: &mut Vec<(u32, u64)>,
        bufs: &mut RxBufs,
        sink: &mut dyn FnMut(&ProbeResult),
    ) {
        let timestamped = matches!(interest, Interest::All | Interest::Timestamped);
        let untimestamped = matches!(interest, Interest::All | Interest::Untimestamped);
        // What each poll entry is: 0 wake, 1 icmp4, 2 icmp6, 3 target conn (index), 4 tcp (pending index)
        let mut what: Vec<(u8, usize)> = Vec::with_capacity(4 + tcp_pending.len());
        let ready: Vec<(u8, usize, PollFlags)> = {
            let mut fds: Vec<PollFd> = Vec::with_capacity(4 + tcp_pending.len());
            let input = PollFlags::POLLIN;
            if untimestamped {
                fds.push(PollFd::new(self.wake.as_fd(), input));
                what.push((0, 0));
            }
            if timestamped {
                if let Some(s) = &self.icmp4 {
                    fds.push(PollFd::new(s.sock.as_fd(), input));
                    what.push((1, 0));
                }
                if let Some(s) = &self.icmp6 {
                    fds.push(PollFd::new(s.sock.as_fd(), input));
                    what.push((2, 0));
                }
                for (i, t) in self.targets.iter().enumerate() {
                    if let Some(c) = &t.conn {
                        fds.push(PollFd::new(c.as_fd(), input));
                        what.push((3, i));
                    }
                }
            }
            if untimestamped {
                tcp_pending.retain(|&(ti, seq)| {
                    self.targets[ti as usize]
                        .slot_of(seq)
                        .is_some_and(|i| self.targets[ti as usize].slots[i].tcp.is_some())
                });
                for (pi, &(ti, seq)) in tcp_pending.iter().enumerate() {
                    let t = &self.targets[ti as usize];
                    if let Some(sock) = t.slot_of(seq).and_then(|i| t.slots[i].tcp.as_ref()) {
                        fds.push(PollFd::new(sock.as_fd(), PollFlags::POLLOUT));
                        what.push((4, pi));
                    }
                }
            }
            let timeout = match until {
                PollUntil::Now => Some(TimeSpec::from_duration(Duration::ZERO)),
                PollUntil::At(next) => next
                    .map(|n| TimeSpec::from_duration(n.saturating_duration_since(Instant::now()))),
            };
            match nix::poll::ppoll(&mut fds, timeout, None) {
                Ok(0) | Err(_) => Vec::new(),
                Ok(_) => fds
                    .iter()
                    .zip(&what)
                    .filter_map(|(fd, &(k, i))| {
                        fd.revents().filter(|r| !r.is_empty()).map(|r| (k, i, r))
                    })
                    .collect(),
            }
        };
        let woke = Instant::now();
        for (kind, index, revents) in ready {
            match kind {
                0 => {
                    let _ = self.wake.read();
                }
                1 | 2 => self.read_icmp(kind == 2, revents, woke, bufs, sink),
                3 => self.read_conn(index, revents, woke, bufs, sink),
                _ => {
                    if let Some(&(ti, seq)) = tcp_pending.get(index) {
                        self.finish_connect(ti, seq, woke, sink);
                    }
                }
            }
        }
    }

    fn finish_connect(
        &mut self,
        ti: u32,
        seq: u64,
        woke: Instant,
        sink: &mut dyn FnMut(&ProbeResult),
    ) {
        let t = &self.targets[ti as usize];
        let Some(idx) = t.slot_of(seq) else {
            return;
        };
        let slot = &t.slots[idx];
        let Some(sock) = slot.tcp.as_ref() else {
            return;
        };
        let rtt = slot
            .sent_mono
            .map(|s| woke.saturating_duration_since(s))
            .unwrap_or_default();
        let (outcome, rtt) = match sock.take_error() {
            Ok(None) => (Outcome::Ok, Some(rtt)),
            Ok(Some(e)) | Err(e) => connect_error_outcome(e, t.plan.addr, rtt),
        };
        self.resolve(ti, seq, outcome, rtt, Detail::None, woke, sink);
    }

    /// The RTT of an answer to the probe in `slot` that the kernel stamped `kernel_time`.
    fn rtt(slot: &Slot, kernel_time: Option<Duration>, woke: Instant) -> Duration {
        let mono = slot
            .sent_mono
            .map(|s| woke.saturating_duration_since(s))
            .unwrap_or_default();
        if let Some(k) = kernel_time.and_then(|k| k.checked_sub(slot.sent_wall)) {
            // The kernel stamp precedes our wake-up; anything else means the wall clock stepped.
            if k <= mono + Duration::from_millis(1) {
                return k;
            }
        }
        mono
    }

    fn read_icmp(
        &mut self,
        v6: bool,
        revents: PollFlags,
        woke: Instant,
        bufs: &mut RxBufs,
        sink: &mut dyn FnMut(&ProbeResult),
    ) {
        let Some(fd) = (if v6 { &self.icmp6 } else { &self.icmp4 })
            .as_ref()
            .map(|s| s.sock.as_raw_fd())
        else {
            return;
        };
        let raw = (if v6 { &self.icmp6 } else { &self.icmp4 })
            .as_ref()
            .is_some_and(|s| s.raw);
        if revents.contains(PollFlags::POLLERR) {
            while let Some(rx) = receive(fd, bufs, true) {
                // Ping sockets queue ICMP errors with the request we sent (header + payload).
                let Some(err) = rx.icmp_error else {
                    continue;
                };
                let data = &bufs.data[..rx.len];
                let tag = data.get(8..).and_then(ProbeTag::read);
                let seq16 = data.get(6..8).map(|b| u16::from_be_bytes([b[0], b[1]]));
                if let Some((ti, seq)) = self.match_icmp(tag, None, seq16) {
                    self.resolve_answer(
                        ti,
                        seq,
                        Outcome::Unreachable(err),
                        Detail::None,
                        rx.kernel_time,
                        woke,
                        sink,
                    );
                }
            }
        }
        while let Some(rx) = receive(fd, bufs, false) {
            let data = &bufs.data[..rx.len];
            let (ttl, src, icmp) = if raw && !v6 {
                match wire::strip_ipv4(data) {
                    Some((ttl, src, rest)) => (Some(ttl), Some(IpAddr::V4(src)), rest),
                    None => continue,
                }
            } else {
                (rx.ttl, rx.from, data)
            };
            match wire::parse_icmp(icmp, v6) {
                IcmpMessage::EchoReply {
                    ident,
                    seq,
                    payload,
                    len,
                } => {
                    if raw && ident != self.nonce as u16 {
                        continue; // another program's ping
                    }
                    let tag = ProbeTag::read(payload);
                    if let Some((ti, seq)) = self.match_icmp(tag, src, Some(seq)) {
                        let detail = Detail::Icmp {
                            bytes: len as u32,
                            ttl,
                        };
                        self.resolve_answer(
                            ti,
                            seq,
                            Outcome::Ok,
                            detail,
                            rx.kernel_time,
                            woke,
                            sink,
                        );
                    }
                }
                IcmpMessage::Error {
                    icmp_type,
                    code,
                    quoted_dst,
                    ident,
                    seq,
                    payload,
                } => {
                    if raw && ident != self.nonce as u16 {
                        continue;
                    }
                    let tag = ProbeTag::read(payload);
                    if let Some((ti, seq)) = self.match_icmp(tag, Some(quoted_dst), Some(seq)) {
                        let err = IcmpError {
                            v6,
                            icmp_type,
                            code,
                            from: src,
                        };
                        self.resolve_answer(
                            ti,
                            seq,
                            Outcome::Unreachable(err),
                            Detail::None,
                            rx.kernel_time,
                            woke,
                            sink,
                        );
                    }
                }
                IcmpMessage::Other => {}
            }
        }
    }

    /// Finds the probe an ICMP answer belongs to: by tag, else by address and 16-bit sequence.
    fn match_icmp(
        &self,
        tag: Option<ProbeTag>,
        addr: Option<IpAddr>,
        seq16: Option<u16>,
    ) -> Option<(u32, u64)> {
        if let Some(tag) = tag {
            if tag.nonce == self.nonce {
                return Some((tag.target, tag.seq));
            }
            if self.config.payload_size >= TAG_LEN {
                return None; // tagged by someone else
            }
        }
        let seq16 = seq16?;
        let candidates = self.icmp_by_addr.get(&addr?)?;
        candidates.iter().find_map(|&ti| {
            self.targets[ti as usize]
                .slot_of_seq16(seq16)
                .map(|seq| (ti, seq))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn resolve_answer(
        &mut self,
        ti: u32,
        seq: u64,
        outcome: Outcome,
        detail: Detail,
        kernel_time: Option<Duration>,
        woke: Instant,
        sink: &mut dyn FnMut(&ProbeResult),
    ) {
        let rtt = self.targets.get(ti as usize).and_then(|t| {
            t.slot_of(seq)
                .map(|i| Self::rtt(&t.slots[i], kernel_time, woke))
        });
        self.resolve(ti, seq, outcome, rtt, detail, woke, sink);
    }

    /// The UDP probe a datagram (reply, or our payload quoted by an error) answers: the one its
    /// tag names (an echoing service returns it), else the oldest still in flight.
    fn udp_probe_seq(&self, ti: usize, data: &[u8]) -> Option<u64> {
        ProbeTag::read(data)
            .filter(|t| t.nonce == self.nonce)
            .map(|t| t.seq)
            .or_else(|| self.targets[ti].oldest_in_flight())
    }

    /// Reads the connected socket of a UDP or DNS target.
    fn read_conn(
        &mut self,
        ti: usize,
        revents: PollFlags,
        woke: Instant,
        bufs: &mut RxBufs,
        sink: &mut dyn FnMut(&ProbeResult),
    ) {
        let Some(fd) = self.targets[ti].conn.as_ref().map(|c| c.as_raw_fd()) else {
            return;
        };
        let is_dns = matches!(self.targets[ti].plan.kind, TargetKind::Dns { .. });
        let nonce16 = self.nonce as u16;
        if revents.contains(PollFlags::POLLERR) {
            while let Some(rx) = receive(fd, bufs, true) {
                let Some(err) = rx.icmp_error else {
                    continue;
                };
                let data = &bufs.data[..rx.len];
                let seq = if is_dns {
                    data.get(..2)
                        .map(|b| u16::from_be_bytes([b[0], b[1]]).wrapping_sub(nonce16))
                        .and_then(|s16| self.targets[ti].slot_of_seq16(s16))
                } else {
                    self.udp_probe_seq(ti, data)
                };
                let Some(seq) = seq else { continue };
                let outcome = if err.is_port_unreachable() {
                    Outcome::Refused
                } else {
                    Outcome::Unreachable(err)
                };
                self.resolve_answer(
                    ti as u32,
                    seq,
                    outcome,
                    Detail::None,
                    rx.kernel_time,
                    woke,
                    sink,
                );
            }
        }
        while let Some(rx) = receive(fd, bufs, false) {
            let data = &bufs.data[..rx.len];
            if is_dns {
                let Some(h) = dns::parse_response(data) else {
                    continue;
                };
                let Some(seq) = self.targets[ti].slot_of_seq16(h.id.wrapping_sub(nonce16)) else {
                    self.targets[ti].report.late_or_duplicate_replies += 1;
                    continue;
                };
                let detail = Detail::Dns {
                    rcode: h.rcode,
                    answers: h.answers,
                };
                self.resolve_answer(
                    ti as u32,
                    seq,
                    Outcome::Ok,
                    detail,
                    rx.kernel_time,
                    woke,
                    sink,
                );
            } else {
                // An echoing service returns our tag; any other reply answers the oldest probe.
                let seq = self.udp_probe_seq(ti, data);
                let Some(seq) = seq else {
                    self.targets[ti].report.late_or_duplicate_replies += 1;
                    continue;
                };
                let detail = Detail::Udp {
                    bytes: rx.len as u32,
                };
                self.resolve_answer(
                    ti as u32,
                    seq,
                    Outcome::Ok,
                    detail,
                    rx.kernel_time,
                    woke,
                    sink,
                );
            }
        }
    }
}

fn wall_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Reads one datagram (or one error-queue entry) without blocking; `None` when there is none.
fn receive(fd: i32, bufs: &mut RxBufs, errqueue: bool) -> Option<Received> {
    let mut flags = MsgFlags::MSG_DONTWAIT;
    if errqueue {
        flags |= MsgFlags::MSG_ERRQUEUE;
    }
    loop {
        let mut iov = [IoSliceMut::new(&mut bufs.data)];
        let msg = match recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut bufs.cmsg), flags) {
            Ok(m) => m,
            Err(Errno::EINTR) => continue,
            // A connected UDP socket reports a queued ICMP error here too; the error queue
            // (read on POLLERR) has the details, so just look for more data.
            Err(Errno::ECONNREFUSED | Errno::EHOSTUNREACH | Errno::ENETUNREACH) if !errqueue => {
                continue
            }
            Err(_) => return None,
        };
        let mut rx = Received {
            len: msg.bytes,
            kernel_time: None,
            ttl: None,
            from: msg.address.as_ref().and_then(sockaddr_ip),
            icmp_error: None,
        };
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        rx.kernel_time = Some(Duration::from(ts));
                    }
                    ControlMessageOwned::Ipv4Ttl(ttl) => rx.ttl = u8::try_from(ttl).ok(),
                    ControlMessageOwned::Ipv6HopLimit(h) => rx.ttl = u8::try_from(h).ok(),
                    ControlMessageOwned::Ipv4RecvErr(e, addr)
                        if e.ee_origin == libc::SO_EE_ORIGIN_ICMP =>
                    {
                        rx.icmp_error = Some(IcmpError {
                            v6: false,
                            icmp_type: e.ee_type,
                            code: e.ee_code,
                            from: addr.map(|a| {
                                IpAddr::V4(std::net::Ipv4Addr::from(u32::from_be(
                                    a.sin_addr.s_addr,
                                )))
                            }),
                        });
                    }
                    ControlMessageOwned::Ipv6RecvErr(e, addr)
                        if e.ee_origin == libc::SO_EE_ORIGIN_ICMP6 =>
                    {
                        rx.icmp_error = Some(IcmpError {
                            v6: true,
                            icmp_type: e.ee_type,
                            code: e.ee_code,
                            from: addr
                                .map(|a| IpAddr::V6(std::net::Ipv6Addr::from(a.sin6_addr.s6_addr))),
                        });
                    }
                    _ => {}
                }
            }
        }
        return Some(rx);
    }
}

fn sockaddr_ip(sa: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = sa.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// Starts a non-blocking connect. Returns the socket and, if the connect finished at once,
/// its result.
fn start_connect(dest: &SockAddr) -> io::Result<(Socket, Option<io::Result<()>>)> {
    let domain = if dest.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    // Non-blocking from creation: one syscall fewer per probe than a separate ioctl.
    let sock = Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    // Close with RST, not FIN: no TIME_WAIT pile-up at thousands of probes per second.
    sock.set_linger(Some(Duration::ZERO))?;
    match sock.connect(dest) {
        Ok(()) => Ok((sock, Some(Ok(())))),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((sock, None)),
        Err(e) => Ok((sock, Some(Err(e)))),
    }
}

fn unreachable_from(addr: IpAddr, code: u8) -> IcmpError {
    IcmpError {
        v6: addr.is_ipv6(),
        icmp_type: if addr.is_ipv6() { 1 } else { 3 },
        code,
        from: None,
    }
}

/// What a failed connect means for the probe.
fn connect_error_outcome(e: io::Error, addr: IpAddr, rtt: Duration) -> (Outcome, Option<Duration>) {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => (Outcome::Refused, Some(rtt)),
        Some(libc::EHOSTUNREACH) => (
            Outcome::Unreachable(unreachable_from(addr, if addr.is_ipv6() { 3 } else { 1 })),
            None,
        ),
        Some(libc::ENETUNREACH) => (Outcome::Unreachable(unreachable_from(addr, 0)), None),
        Some(libc::ETIMEDOUT) => (Outcome::Timeout, None),
        _ => (Outcome::Error(format!("connect: {e}")), None),
    }
}

/// What a failed send on a connected UDP socket means for the probe.
fn send_error_outcome(e: io::Error, addr: IpAddr) -> (Outcome, Option<Duration>) {
    match e.raw_os_error() {
        // A port-unreachable from an earlier probe, reported on this send: the port is closed.
        Some(libc::ECONNREFUSED) => (Outcome::Refused, None),
        _ => connect_error_outcome(e, addr, Duration::ZERO),
    }
}
