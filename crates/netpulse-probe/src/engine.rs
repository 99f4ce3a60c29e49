//! The probe engine: one thread, one event loop, every target — of `netpulse probe` and of
//! `netpulse monitor` alike. Targets are added and removed while it runs ([`EngineHandle`]), so a
//! monitor reload starts and stops only what changed; the others keep their sequence and schedule.
//!
//! Sends are scheduled on a nominal timeline (target `i` of the `n` given at start leaves `i/n` of
//! an interval late, a target added later at a phase of its own, so sends are spread evenly, never
//! bursted at a tick); a send that leaves late is counted and reported with its result, and the
//! next one keeps the nominal time, so intervals are never silently stretched. The loop sleeps in
//! `ppoll` on one epoll descriptor with a nanosecond timeout (and 1 µs timer slack) until the next
//! send or timeout, or until a socket is readable: sockets are registered once (UDP/DNS when their
//! target is added, a TCP connect when it starts), so a wake-up costs O(ready), not O(targets).
//! There is one ICMP socket per address family for all targets. Replies are matched by a tag in
//! the payload (target + 64-bit sequence), falling back to address + 16-bit sequence when the
//! payload is too short for it.
//!
//! RTTs: the send time is read from the clock immediately *before* `sendto`; the receive time is
//! the kernel's `SO_TIMESTAMPNS` stamp, taken when the packet arrived, not when we woke up. If the
//! wall clock stepped between the two, the monotonic measurement is used instead.
//! TCP connect time is measured on the monotonic clock from just before `connect` to the wake-up
//! that reports the handshake finished.
//!
//! Memory per target is fixed: in-flight probes live in a ring sized from timeout / interval. A
//! removed target's slot (and its sockets) are freed once its last answers are in, and reused.

use crate::dns;
use crate::error::ProbeError;
use crate::http::{self, HttpTarget, HttpWorker};
use crate::sys;
use crate::wire::{self, IcmpMessage, ProbeTag, TAG_LEN};
use netpulse_core::clock::Clock;
use netpulse_core::duration::saturating_nanos;
pub use netpulse_core::record::late_threshold;
use netpulse_core::record::{Detail, IcmpError, Outcome, ProbeResult};
use netpulse_core::stats::ProbeStats;
use netpulse_core::target::TargetKind;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One target to probe, resolved.
#[derive(Debug, Clone, PartialEq)]
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
    /// Payload bytes of its ICMP and UDP probes (`None`: the engine's
    /// [`EngineConfig::payload_size`]).
    pub payload_size: Option<usize>,
    /// An HTTP(S) target's host and options (required for [`TargetKind::Http`]).
    pub http: Option<Arc<netpulse_core::target::HttpRequest>>,
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
    /// How long results may wait to be handed over together (see [`Engine::run_batched`]);
    /// zero hands each over before the engine next sleeps.
    pub batch_for: Duration,
    /// Keep running with no target until stopped (a monitor adds targets later); otherwise the
    /// run ends when every target has sent its count.
    pub until_stopped: bool,
    /// Keep each target's figures for the [`RunReport`]; a monitor, which keeps its own, turns
    /// this off (~450 bytes and a growing histogram per target).
    pub run_report: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            icmp_mode: IcmpMode::Auto,
            payload_size: 56,
            deadline: None,
            batch_for: Duration::ZERO,
            until_stopped: false,
            run_report: true,
        }
    }
}

/// A change asked of a running engine.
enum Command {
    Add(Box<Prepared>),
    Remove(usize),
}

/// What every handle and the engine share.
struct Shared {
    stop: AtomicBool,
    wake: EventFd,
    commands: Mutex<Vec<Command>>,
    /// One ICMP socket per family, opened by the first target that needs it.
    icmp4: Mutex<Option<Arc<IcmpSocket>>>,
    icmp6: Mutex<Option<Arc<IcmpSocket>>>,
    icmp_mode: IcmpMode,
    /// HTTP results the worker thread handed back, for the engine to take at its wake-up.
    http_done: Mutex<Vec<http::Done>>,
}

impl Shared {
    fn wake(&self) {
        // A failed write only delays the change until the next scheduled wake-up.
        let _ = self.wake.write(1);
    }

    fn icmp(&self, v6: bool) -> Result<Arc<IcmpSocket>, ProbeError> {
        let cell = if v6 { &self.icmp6 } else { &self.icmp4 };
        let mut cell = cell.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = cell.as_ref() {
            return Ok(Arc::clone(s));
        }
        let s = Arc::new(open_icmp(v6, self.icmp_mode)?);
        *cell = Some(Arc::clone(&s));
        Ok(s)
    }
}

/// Controls a running engine from other threads: add and remove targets, stop.
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

/// The old name of [`EngineHandle`], for callers that only stop.
pub type StopHandle = EngineHandle;

impl EngineHandle {
    /// Asks the engine to stop; returns at once. No new probes; answers in flight are awaited.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake();
    }

    /// Starts probing `plan` as target `id` (results carry `id`) at a phase of its own. The
    /// target's sockets are opened here, so a failure is returned to the caller.
    pub fn add(&self, id: usize, plan: ProbePlan) -> Result<(), ProbeError> {
        let prepared = self.prepare(id, plan)?;
        self.start(prepared);
        Ok(())
    }

    /// The first half of [`EngineHandle::add`]: opens what target `id` needs, so the caller can
    /// tell everything downstream about it (a recording, say) before its first probe leaves.
    pub fn prepare(&self, id: usize, plan: ProbePlan) -> Result<PreparedTarget, ProbeError> {
        let prepared = prepare(&self.shared, id, plan)?;
        Ok(PreparedTarget(Box::new(prepared)))
    }

    /// The second half of [`EngineHandle::add`]: the prepared target starts at a phase of its own.
    pub fn start(&self, target: PreparedTarget) {
        self.push(Command::Add(target.0));
    }

    /// Stops probing target `id`: it sends no more, its answers in flight are still awaited
    /// and reported, then its slot and sockets are freed. Unknown ids are ignored.
    pub fn remove(&self, id: usize) {
        self.push(Command::Remove(id));
    }

    fn push(&self, c: Command) {
        self.shared
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(c);
        self.shared.wake();
    }
}

/// A target whose sockets are open, ready for [`EngineHandle::start`].
pub struct PreparedTarget(Box<Prepared>);

impl PreparedTarget {
    /// Numbers its probes from `seq` on (not 1): it continues a sequence that others (failed
    /// name resolutions, say) began.
    pub fn continuing_from(mut self, seq: u64) -> Self {
        self.0.first_seq = seq.max(1);
        self
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
    /// An HTTP(S) target's phases and results (`None` for other kinds).
    pub http: Option<Box<HttpReport>>,
}

/// What a run measured of an HTTP(S) target beyond its totals.
#[derive(Debug, Clone, Default)]
pub struct HttpReport {
    /// Each phase's times, indexed as [`netpulse_core::record::HttpPhase::ALL`].
    pub phases: [netpulse_core::stats::RttStats; 5],
    /// Responses by status code.
    pub statuses: std::collections::BTreeMap<u16, u64>,
    /// Failures by name ([`netpulse_core::record::HttpFailure::name`]).
    pub failures: std::collections::BTreeMap<&'static str, u64>,
    /// The earliest certificate expiry seen (Unix seconds).
    pub cert_expiry: Option<i64>,
    /// The last response's HTTP and TLS versions (11, 20; 12, 13).
    pub versions: (u8, u8),
}

impl HttpReport {
    /// Counts one probe's detail.
    pub fn record(&mut self, d: &netpulse_core::record::HttpDetail) {
        for (stats, took) in self.phases.iter_mut().zip(d.phases) {
            if let Some(t) = took {
                stats.record(t);
            }
        }
        if d.status != 0 {
            *self.statuses.entry(d.status).or_default() += 1;
            self.versions = (d.version, d.tls_version);
        }
        if let Some(f) = d.failure {
            *self.failures.entry(f.name()).or_default() += 1;
        }
        if let Some(e) = d.cert_expiry {
            self.cert_expiry = Some(self.cert_expiry.map_or(e, |c| c.min(e)));
        }
    }
}

/// What a whole run measured.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Indexed by target id (for [`Engine::new`]: plan order); targets removed during the run
    /// are not in it.
    pub targets: Vec<TargetReport>,
}

pub(crate) struct IcmpSocket {
    pub(crate) sock: Socket,
    pub(crate) v6: bool,
    pub(crate) raw: bool,
}

#[derive(Default)]
/// 48 bytes: times as nanoseconds in a `u64` (wall until 2554, delays up to 584 years) instead
/// of 16-byte `Duration`s — every target holds four or more of these.
struct Slot {
    /// 0 = free (sequences start at 1).
    seq: u64,
    sent_mono: Option<Instant>,
    /// Wall-clock send time, ns since the Unix epoch.
    sent_wall_ns: u64,
    /// How late the send left, ns.
    send_delay_ns: u64,
    late: bool,
    tcp: Option<Socket>,
}

impl Slot {
    fn sent_wall(&self) -> Duration {
        Duration::from_nanos(self.sent_wall_ns)
    }
}

/// A target with its sockets opened, ready to join the loop.
struct Prepared {
    id: usize,
    plan: ProbePlan,
    /// A `SocketAddr` (32 bytes), not a `SockAddr` (132): one per target.
    dest: SocketAddr,
    conn: Option<Socket>,
    dns_query: Vec<u8>,
    /// Sequence number of its first probe.
    first_seq: u64,
    /// An HTTP target's compiled request.
    http: Option<Arc<HttpTarget>>,
}

struct TargetState {
    /// The caller's id, carried by every result.
    id: usize,
    /// Slot index + generation, written into every probe's tag.
    tag_id: u32,
    alive: bool,
    plan: ProbePlan,
    dest: SocketAddr,
    next_seq: u64,
    slots: Vec<Slot>,
    mask: u64,
    in_flight: usize,
    sending: bool,
    /// Freed once its last answers are in.
    removed: bool,
    /// Connected socket of UDP and DNS targets.
    conn: Option<Socket>,
    dns_query: Vec<u8>,
    /// The run report's figures; `None` without [`EngineConfig::run_report`] (the monitor:
    /// 32 bytes a target less than keeping the first send and the last answer inline).
    report: Option<Box<Reported>>,
}

/// A target's run report as it is being made.
#[derive(Default)]
struct Reported {
    figures: TargetReport,
    first_send: Option<Instant>,
}

impl std::ops::Deref for Reported {
    type Target = TargetReport;
    fn deref(&self) -> &TargetReport {
        &self.figures
    }
}

impl std::ops::DerefMut for Reported {
    fn deref_mut(&mut self) -> &mut TargetReport {
        &mut self.figures
    }
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

    /// How early a send may leave to share a wake-up with others: 1/16 of the interval (62 µs
    /// at 1 ms, 625 µs at 10 ms, 6.25 ms at 100 ms), at most [`MAX_SEND_SLACK`]. Intervals stay
    /// exact on average; a single one may be shorter by this much, which no RTT or loss figure
    /// depends on. This is what lets thousands of targets share ~100 wake-ups a second.
    fn send_slack(&self) -> Duration {
        (self.plan.interval / 16).min(MAX_SEND_SLACK)
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
/// kernel timestamp; it reads them when the timer fires (at most this much later), and always
/// before it handles a timeout. Larger than [`MAX_SEND_SLACK`], so that with many targets the
/// loop wakes once per group of sends and reads the replies to the last group then.
const LAZY_WINDOW: Duration = Duration::from_millis(20);

/// The most a send may leave early to share a wake-up (see `TargetState::send_slack`).
const MAX_SEND_SLACK: Duration = Duration::from_millis(10);

/// Bits of a tag id that name the slot; the rest is the slot's generation, so an answer to a
/// removed target is never taken for the target that reuses its slot.
const SLOT_BITS: u32 = 20;
/// The generation bits left above the slot in a 32-bit tag id.
const GENERATION_MASK: u32 = (1 << (32 - SLOT_BITS)) - 1;
/// At most this many targets at once (about a million).
pub const MAX_TARGETS: usize = 1 << SLOT_BITS;

/// Epoll data: what a ready descriptor is (top byte), the slot and, for TCP, the ring index.
const EV_WAKE: u64 = 0;
const EV_ICMP4: u64 = 1;
const EV_ICMP6: u64 = 2;
const EV_CONN: u64 = 3;
const EV_TCP: u64 = 4;

fn ev_data(kind: u64, slot: u32, ring: usize) -> u64 {
    kind << 56 | (ring as u64 & 0xff_ffff) << 32 | u64::from(slot)
}

fn ev_parts(data: u64) -> (u64, u32, usize) {
    (data >> 56, data as u32, ((data >> 32) & 0xff_ffff) as usize)
}

/// Heap entry: (when, tag id, seq); seq 0 = the target's next send, else that probe's timeout.
type Event = Reverse<(Instant, u32, u64)>;

/// The ICMP targets of one address: nearly always one, kept inline (a `Vec` each cost an
/// allocation per target).
enum AddrSlots {
    One(u32),
    Many(Vec<u32>),
}

impl AddrSlots {
    fn push(&mut self, slot: u32) {
        match self {
            AddrSlots::One(first) => *self = AddrSlots::Many(vec![*first, slot]),
            AddrSlots::Many(v) => v.push(slot),
        }
    }

    /// Takes `slot` out; true when none is left.
    fn remove(&mut self, slot: u32) -> bool {
        match self {
            AddrSlots::One(s) => *s == slot,
            AddrSlots::Many(v) => {
                v.retain(|&s| s != slot);
                v.is_empty()
            }
        }
    }

    fn slots(&self) -> &[u32] {
        match self {
            AddrSlots::One(s) => std::slice::from_ref(s),
            AddrSlots::Many(v) => v,
        }
    }
}

/// Buffers reused for every receive, so the hot path does not allocate.
pub(crate) struct RxBufs {
    pub(crate) data: Vec<u8>,
    cmsg: Vec<u8>,
    tx: Vec<u8>,
    events: Vec<EpollEvent>,
}

impl RxBufs {
    pub(crate) fn new() -> Self {
        RxBufs {
            data: vec![0u8; 65536],
            cmsg: nix::cmsg_space!(
                TimeSpec,
                libc::c_int,
                libc::sock_extended_err,
                libc::sockaddr_in6
            ),
            tx: Vec::with_capacity(65536),
            events: vec![EpollEvent::empty(); 1024],
        }
    }
}

/// What a received datagram said, taken out of the receive buffers.
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) kernel_time: Option<Duration>,
    pub(crate) ttl: Option<u8>,
    pub(crate) from: Option<IpAddr>,
    /// An error-queue entry that an ICMP(v6) message caused.
    pub(crate) icmp_error: Option<IcmpError>,
}

/// The probe engine. Build it with [`Engine::new`], take an [`EngineHandle`], then [`Engine::run`].
pub struct Engine {
    targets: Vec<TargetState>,
    free: Vec<u32>,
    by_id: HashMap<usize, u32>,
    icmp4: Option<Arc<IcmpSocket>>,
    icmp6: Option<Arc<IcmpSocket>>,
    shared: Arc<Shared>,
    /// Sockets whose answers carry kernel timestamps (ICMP, UDP, DNS).
    timestamped: Epoll,
    /// The wake-up fd and TCP connects, which are timed when we wake.
    untimestamped: Epoll,
    /// Both of the above, to sleep on either.
    all: Epoll,
    config: EngineConfig,
    nonce: u32,
    /// ICMP targets by address, for answers that carry no tag of ours.
    icmp_by_addr: HashMap<IpAddr, AddrSlots>,
    /// Targets added before `run` (their first sends are spread when it starts).
    initial: usize,
    heap: BinaryHeap<Event>,
    /// Results not yet handed over, and when the oldest of them came.
    batch: Vec<ProbeResult>,
    batch_since: Option<Instant>,
    clock: EngineClock,
    io: Box<dyn Datagrams>,
    /// HTTP targets' requests by slot (only HTTP targets pay for them).
    http_targets: HashMap<u32, Arc<HttpTarget>>,
    /// The HTTP probes' thread, started by the first HTTP target.
    http: Option<HttpWorker>,
}

/// How the engine moves datagrams: through the kernel's sockets, or (tests) a fake that keeps
/// what would leave and hands over what it is told arrived — so sending, matching answers,
/// timing them from their kernel stamps and ICMP errors are tested without a network. (Which
/// socket is ready still comes from epoll; TCP connects are the kernel's.)
trait Datagrams: Send {
    /// Sends `bytes` on `sock`, to `dest` (unconnected) or its peer (connected).
    fn send(&mut self, sock: &Socket, bytes: &[u8], dest: Option<SocketAddr>) -> io::Result<usize>;
    /// The next datagram waiting on `fd` (on its error queue when `errqueue`), read into `bufs`.
    fn receive(&mut self, fd: i32, bufs: &mut RxBufs, errqueue: bool) -> Option<Received>;
}

/// The kernel's sockets.
struct Kernel;

impl Datagrams for Kernel {
    fn send(&mut self, sock: &Socket, bytes: &[u8], dest: Option<SocketAddr>) -> io::Result<usize> {
        match dest {
            Some(d) => sock.send_to(bytes, &SockAddr::from(d)),
            None => sock.send(bytes),
        }
    }

    fn receive(&mut self, fd: i32, bufs: &mut RxBufs, errqueue: bool) -> Option<Received> {
        receive(fd, bufs, errqueue)
    }
}

/// Where the engine reads the time: the machine's clocks, or a [`Clock`] (a fake in tests: its
/// monotonic time counted from a fixed instant), so scheduling and late-send accounting can be
/// checked without waiting. Replies' kernel timestamps stay the kernel's.
#[derive(Clone)]
struct EngineClock {
    base: Instant,
    fake: Option<Arc<dyn Clock + Send + Sync>>,
}

impl EngineClock {
    fn real() -> Self {
        EngineClock {
            base: Instant::now(),
            fake: None,
        }
    }

    fn now(&self) -> Instant {
        match &self.fake {
            None => Instant::now(),
            Some(c) => self.base + c.monotonic(),
        }
    }

    /// Wall time since the Unix epoch.
    fn wall(&self) -> Duration {
        match &self.fake {
            None => wall_now(),
            Some(c) => c.wall().duration_since(UNIX_EPOCH).unwrap_or_default(),
        }
    }
}

/// How long after an HTTP probe's timeout the engine stops waiting for its worker's answer.
const HTTP_BACKSTOP: Duration = Duration::from_secs(1);

/// A batch this large is handed over at once.
const MAX_BATCH: usize = 4096;

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

pub(crate) fn open_icmp(v6: bool, mode: IcmpMode) -> Result<IcmpSocket, ProbeError> {
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

/// Opens what `plan` needs of its own (a connected UDP socket, the DNS query, the shared ICMP
/// socket of its family), on the caller's thread so errors reach the caller.
/// The longest interval or timeout a target may have: every schedule is an `Instant` plus one
/// of them, and far beyond this that sum overflows (`-i 1e19s` stopped the engine).
pub const MAX_PROBE_SPAN: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

fn prepare(shared: &Shared, id: usize, plan: ProbePlan) -> Result<Prepared, ProbeError> {
    for (what, value) in [("interval", plan.interval), ("timeout", plan.timeout)] {
        if value > MAX_PROBE_SPAN {
            return Err(ProbeError::TooLong {
                what,
                value,
                label: plan.label.clone(),
                max: "30 days",
            });
        }
    }
    let port = plan.kind.port().unwrap_or(0);
    let sa = SocketAddr::new(plan.addr, port);
    let mut conn = None;
    let mut dns_query = Vec::new();
    let mut http_target = None;
    match &plan.kind {
        TargetKind::Icmp => {
            shared.icmp(plan.addr.is_ipv6())?;
        }
        TargetKind::Udp { .. } => conn = Some(open_udp(sa)?),
        TargetKind::Dns { name, qtype, .. } => {
            dns_query =
                dns::encode_query(name, qtype).map_err(|message| ProbeError::BadTarget {
                    target: plan.label.clone(),
                    message,
                })?;
            conn = Some(open_udp(sa)?);
        }
        TargetKind::Tcp { .. } => {}
        TargetKind::Http { tls, port, path } => {
            let request = plan.http.as_deref().ok_or_else(|| ProbeError::BadTarget {
                target: plan.label.clone(),
                message: "an HTTP target without its host and options".into(),
            })?;
            http_target = Some(Arc::new(HttpTarget::new(
                &plan.label,
                *tls,
                &request.host,
                *port,
                path,
                &request.options,
            )?));
        }
    }
    Ok(Prepared {
        id,
        dest: sa,
        plan: ProbePlan { http: None, ..plan },
        conn,
        dns_query,
        first_seq: 1,
        http: http_target,
    })
}

fn setup_err(op: &'static str) -> impl Fn(Errno) -> ProbeError {
    move |e| ProbeError::Setup {
        op,
        source: e.into(),
    }
}

/// The phase of a target added while running: its id times the golden ratio, modulo one, so
/// targets added together still spread over the interval.
/// Slots in a target's ring: enough for every probe that can be in flight at once, plus
/// slack; a power of two no larger than the 16-bit sequence space, so 16-bit lookups stay
/// unambiguous.
fn ring_slots(interval: Duration, timeout: Duration) -> u64 {
    let in_flight = timeout.as_nanos() / interval.as_nanos().max(1) + 2;
    (in_flight.min(1 << 16) as u64).next_power_of_two().max(4)
}

fn added_phase(id: usize, interval: Duration) -> Duration {
    const PHI_FRACTION: f64 = 0.618_033_988_749_895;
    let f = (id as f64 * PHI_FRACTION).fract();
    interval.mul_f64(f)
}

impl Engine {
    /// Opens every socket the plans need (target ids are plan indices). Fails (with a hint) when
    /// ICMP is not permitted.
    pub fn new(plans: Vec<ProbePlan>, config: EngineConfig) -> Result<Self, ProbeError> {
        Self::with_ids(plans.into_iter().enumerate().collect(), config)
    }

    /// Like [`Engine::new`], with the ids results carry chosen by the caller.
    pub fn with_ids(
        plans: Vec<(usize, ProbePlan)>,
        config: EngineConfig,
    ) -> Result<Self, ProbeError> {
        let wake = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
            .map_err(setup_err("create event fd"))?;
        let epoll =
            || Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(setup_err("create epoll fd"));
        let (timestamped, untimestamped, all) = (epoll()?, epoll()?, epoll()?);
        let level_in = |data| EpollEvent::new(EpollFlags::EPOLLIN, data);
        untimestamped
            .add(&wake, level_in(ev_data(EV_WAKE, 0, 0)))
            .map_err(setup_err("watch event fd"))?;
        all.add(&timestamped.0, level_in(0))
            .map_err(setup_err("nest epoll fd"))?;
        all.add(&untimestamped.0, level_in(1))
            .map_err(setup_err("nest epoll fd"))?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            wake,
            commands: Mutex::new(Vec::new()),
            icmp4: Mutex::new(None),
            icmp6: Mutex::new(None),
            icmp_mode: config.icmp_mode,
            http_done: Mutex::new(Vec::new()),
        });
        let mut engine = Self {
            targets: Vec::with_capacity(plans.len()),
            free: Vec::new(),
            by_id: HashMap::with_capacity(plans.len()),
            icmp4: None,
            icmp6: None,
            shared,
            timestamped,
            untimestamped,
            all,
            config,
            nonce: random_u32(),
            icmp_by_addr: HashMap::new(),
            initial: 0,
            heap: BinaryHeap::new(),
            batch: Vec::new(),
            batch_since: None,
            clock: EngineClock::real(),
            io: Box::new(Kernel),
            http_targets: HashMap::new(),
            http: None,
        };
        for (id, plan) in plans {
            let p = prepare(&engine.shared, id, plan)?;
            engine.adopt(p, None)?;
        }
        engine.initial = engine.targets.len();
        Ok(engine)
    }

    /// `"dgram"` or `"raw"`: which ICMP socket this run uses, if any.
    pub fn icmp_socket_kind(&self) -> Option<&'static str> {
        self.icmp4
            .as_ref()
            .or(self.icmp6.as_ref())
            .map(|s| if s.raw { "raw" } else { "dgram" })
    }

    /// A handle that adds, removes and stops from another thread.
    pub fn handle(&self) -> EngineHandle {
        EngineHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A handle that stops this engine from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.handle()
    }

    /// The slot a probe tag's target id names, if that target still holds it.
    fn slot_of_tag(&self, tag_id: u32) -> Option<u32> {
        let slot = tag_id & ((1 << SLOT_BITS) - 1);
        self.targets
            .get(slot as usize)
            .filter(|t| t.alive && t.tag_id == tag_id)
            .map(|_| slot)
    }

    /// Takes a prepared target into the loop; its first send is at `first_at` (`None`: decided
    /// when the run starts).
    fn adopt(&mut self, p: Prepared, first_at: Option<Instant>) -> Result<(), ProbeError> {
        if let Some(&old) = self.by_id.get(&p.id) {
            // The same id again replaces the old target.
            self.retire(old);
        }
        if self.free.is_empty() && self.targets.len() >= MAX_TARGETS {
            return Err(ProbeError::BadTarget {
                target: p.plan.label,
                message: format!("more than {MAX_TARGETS} targets in one engine"),
            });
        }
        if p.plan.kind == TargetKind::Icmp {
            let v6 = p.plan.addr.is_ipv6();
            let have = if v6 { &self.icmp6 } else { &self.icmp4 };
            if have.is_none() {
                let sock = self.shared.icmp(v6)?;
                let kind = if v6 { EV_ICMP6 } else { EV_ICMP4 };
                self.timestamped
                    .add(
                        &sock.sock,
                        EpollEvent::new(EpollFlags::EPOLLIN, ev_data(kind, 0, 0)),
                    )
                    .map_err(setup_err("watch ICMP socket"))?;
                if v6 {
                    self.icmp6 = Some(sock);
                } else {
                    self.icmp4 = Some(sock);
                }
            }
        }
        // The slot it will take: a freed one, else a new one at the end (taken only once
        // nothing below can fail, so a failure leaks no slot).
        let reused = self.free.last().copied();
        let slot = reused.unwrap_or(self.targets.len() as u32);
        let cap = ring_slots(p.plan.interval, p.plan.timeout);
        // 12 bits of generation: it wraps after 4 096 reuses of one slot, long after any
        // answer to the slot's old target could still arrive.
        let generation = reused.map_or(1, |s| {
            ((self.targets[s as usize].tag_id >> SLOT_BITS) + 1) & GENERATION_MASK
        });
        let tag_id = slot | (generation << SLOT_BITS);
        if let Some(c) = &p.conn {
            self.timestamped
                .add(
                    c,
                    EpollEvent::new(EpollFlags::EPOLLIN, ev_data(EV_CONN, slot, 0)),
                )
                .map_err(setup_err("watch UDP socket"))?;
        }
        if p.http.is_some() && self.http.is_none() {
            let shared = Arc::downgrade(&self.shared);
            let deliver = Arc::new(move |done: http::Done| {
                if let Some(shared) = shared.upgrade() {
                    shared
                        .http_done
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(done);
                    shared.wake();
                }
            });
            self.http = Some(
                HttpWorker::spawn(deliver).map_err(|source| ProbeError::Setup {
                    op: "start the HTTP probes' thread",
                    source,
                })?,
            );
        }
        if p.plan.kind == TargetKind::Icmp {
            self.icmp_by_addr
                .entry(p.plan.addr)
                .and_modify(|s| s.push(slot))
                .or_insert(AddrSlots::One(slot));
        }
        match &p.http {
            Some(h) => {
                self.http_targets.insert(slot, Arc::clone(h));
            }
            None => {
                self.http_targets.remove(&slot);
            }
        }
        self.by_id.insert(p.id, slot);
        let sending = p.plan.count != Some(0);
        let state = TargetState {
            id: p.id,
            tag_id,
            alive: true,
            dest: p.dest,
            next_seq: p.first_seq,
            slots: (0..cap).map(|_| Slot::default()).collect(),
            mask: cap - 1,
            in_flight: 0,
            sending,
            removed: false,
            conn: p.conn,
            dns_query: p.dns_query,
            report: self.config.run_report.then(Box::default),
            plan: ProbePlan {
                // The label names errors of `prepare` and `adopt` only: not kept per target.
                label: String::new(),
                ..p.plan
            },
        };
        match reused {
            Some(_) => {
                self.free.pop();
                self.targets[slot as usize] = state;
            }
            None => self.targets.push(state),
        }
        if let (Some(at), true) = (first_at, sending) {
            self.heap.push(Reverse((at, tag_id, 0)));
        }
        Ok(())
    }

    /// Stops a target's sends; frees it at once if nothing is in flight, else when its last
    /// answer or timeout is in.
    fn retire(&mut self, slot: u32) {
        let t = &mut self.targets[slot as usize];
        t.sending = false;
        t.removed = true;
        if t.in_flight == 0 {
            self.free_slot(slot);
        }
    }

    fn free_slot(&mut self, slot: u32) {
        let t = &mut self.targets[slot as usize];
        if !t.alive {
            return;
        }
        t.alive = false;
        // Dropping the sockets closes them, which also takes them out of every epoll set.
        t.conn = None;
        t.slots = Vec::new();
        t.dns_query = Vec::new();
        self.http_targets.remove(&slot);
        let t = &mut self.targets[slot as usize];
        let (id, addr, icmp) = (t.id, t.plan.addr, t.plan.kind == TargetKind::Icmp);
        if self.by_id.get(&id) == Some(&slot) {
            self.by_id.remove(&id);
        }
        if icmp {
            if let Some(v) = self.icmp_by_addr.get_mut(&addr) {
                if v.remove(slot) {
                    self.icmp_by_addr.remove(&addr);
                }
            }
        }
        self.free.push(slot);
    }

    /// Applies the adds and removes other threads asked for.
    fn apply_commands(&mut self, stopping: bool) {
        let commands = std::mem::take(
            &mut *self
                .shared
                .commands
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        // Thousands of targets arrive together: room for exactly them, not the next power of two.
        let adds = commands
            .iter()
            .filter(|c| matches!(c, Command::Add(_)))
            .count();
        let free = self.free.len();
        self.targets.reserve_exact(adds.saturating_sub(free));
        self.by_id.reserve(adds);
        for c in commands {
            match c {
                Command::Add(p) if !stopping => {
                    let at = self.clock.now() + added_phase(p.id, p.plan.interval);
                    // A failure here (epoll out of memory) is the only one left after
                    // `prepare`; the target is then not probed.
                    let _ = self.adopt(*p, Some(at));
                }
                Command::Add(_) => {}
                Command::Remove(id) => {
                    if let Some(&slot) = self.by_id.get(&id) {
                        self.retire(slot);
                    }
                }
            }
        }
    }

    /// Probes until every target has sent its count, the deadline passes or a stop is asked for
    /// (with [`EngineConfig::until_stopped`]: only the last two), then waits for the answers in
    /// flight. Every resolved probe is passed to `sink`, as soon as the engine has nothing else
    /// to do (before it sleeps).
    pub fn run(self, sink: &mut dyn FnMut(&ProbeResult)) -> RunReport {
        self.run_batched(&mut |batch| {
            for r in batch.drain(..) {
                sink(&r);
            }
        })
    }

    /// Like [`Engine::run`], handing results over in batches that `flush` drains: a batch is
    /// handed over once it is [`EngineConfig::batch_for`] old (or large), or the engine is
    /// about to sleep longer than that — one wake-up of the consumer per batch, not per result.
    pub fn run_batched(mut self, flush: &mut dyn FnMut(&mut Vec<ProbeResult>)) -> RunReport {
        self.run_inner(flush);
        if !self.batch.is_empty() {
            flush(&mut self.batch);
            self.batch.clear();
        }
        let mut report = RunReport::default();
        for t in std::mem::take(&mut self.targets) {
            if !t.alive || t.removed {
                continue;
            }
            let Some(r) = t.report else {
                continue;
            };
            if report.targets.len() <= t.id {
                report.targets.resize(t.id + 1, TargetReport::default());
            }
            report.targets[t.id] = r.figures;
        }
        report
    }

    fn run_inner(&mut self, flush: &mut dyn FnMut(&mut Vec<ProbeResult>)) {
        // Precise wake-ups: the default 50 µs timer slack would blur 1 ms schedules.
        let _ = nix::sys::prctl::set_timerslack(1_000);
        let start = self.clock.now();
        // A deadline beyond what an `Instant` can hold is no deadline.
        let deadline = self.config.deadline.and_then(|d| start.checked_add(d));
        let n = self.initial.max(1) as u32;
        for i in 0..self.initial {
            let t = &self.targets[i];
            if t.alive && t.sending {
                let offset = t.plan.interval * i as u32 / n;
                self.heap.push(Reverse((start + offset, t.tag_id, 0)));
            }
        }
        let mut bufs = RxBufs::new();
        let mut stopping = false;
        // True when the last sleep left the kernel-timestamped sockets out (see LAZY_WINDOW).
        let mut unread = false;
        loop {
            if unread {
                // Answers first: a probe must not time out while its reply waits in a buffer.
                self.harvest(true, &mut bufs, stopping);
            }
            let now = self.clock.now();
            if !stopping
                && (self.shared.stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d))
            {
                stopping = true;
                for t in &mut self.targets {
                    t.sending = false;
                }
            }
            let now = self.fire_due(&mut bufs);
            let may_end = stopping || !self.config.until_stopped;
            if may_end
                && self
                    .targets
                    .iter()
                    .all(|t| !t.alive || (!t.sending && t.in_flight == 0))
            {
                break;
            }
            let mut next = self.heap.peek().map(|Reverse((at, _, _))| *at);
            if !stopping {
                if let Some(d) = deadline {
                    next = Some(next.map_or(d, |n| n.min(d)));
                }
            }
            if let Some(since) = self.batch_since.filter(|_| !self.batch.is_empty()) {
                let due = since + self.config.batch_for;
                if now >= due
                    || self.batch.len() >= MAX_BATCH
                    || next.is_none_or(|n| n > due + self.config.batch_for)
                {
                    flush(&mut self.batch);
                    self.batch.clear();
                } else {
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
            }
            // Replies carry kernel timestamps, so reading them late costs no precision: when a
            // timer is due soon anyway, sleep through their arrival and read them then.
            let lazy = next.is_some_and(|n| n.saturating_duration_since(now) < LAZY_WINDOW);
            let sleep_on = if lazy {
                self.untimestamped.0.as_fd()
            } else {
                self.all.0.as_fd()
            };
            let timeout = next
                .map(|n| TimeSpec::from_duration(n.saturating_duration_since(self.clock.now())));
            let mut fds = [PollFd::new(sleep_on, PollFlags::POLLIN)];
            let ready = matches!(nix::poll::ppoll(&mut fds, timeout, None), Ok(n) if n > 0);
            if ready {
                if !lazy {
                    self.harvest(true, &mut bufs, stopping);
                }
                self.harvest(false, &mut bufs, stopping);
            }
            unread = lazy;
        }
    }

    /// Sends what is due and times out what has waited its timeout, by the engine's clock;
    /// returns the time after.
    fn fire_due(&mut self, bufs: &mut RxBufs) -> Instant {
        let mut now = self.clock.now();
        while let Some(&Reverse((at, tag_id, seq))) = self.heap.peek() {
            let slot = self.slot_of_tag(tag_id);
            // Sends due within a small slack go out on this wake-up instead of their own:
            // fewer wake-ups, and still evenly spread at that granularity.
            let slack = match slot {
                Some(s) if seq == 0 => self.targets[s as usize].send_slack(),
                _ => Duration::ZERO,
            };
            if at > now + slack {
                break;
            }
            self.heap.pop();
            let Some(slot) = slot else {
                continue; // a removed target's timer
            };
            if seq == 0 {
                self.send(slot, at, bufs);
            } else {
                self.resolve(slot, seq, Outcome::Timeout, None, Detail::None, now);
            }
            now = self.clock.now();
        }
        now
    }

    /// Handles what is ready in one of the two epoll sets, without waiting.
    fn harvest(&mut self, timestamped: bool, bufs: &mut RxBufs, stopping: bool) {
        // The event array is lent out while its entries are handled (they need the buffers).
        let mut events = std::mem::take(&mut bufs.events);
        loop {
            let set = if timestamped {
                &self.timestamped
            } else {
                &self.untimestamped
            };
            let n = match set.wait(&mut events, EpollTimeout::ZERO) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            };
            let woke = self.clock.now();
            for e in &events[..n] {
                let errors = e.events().contains(EpollFlags::EPOLLERR);
                let (kind, slot, ring) = ev_parts(e.data());
                match kind {
                    EV_WAKE => {
                        let _ = self.shared.wake.read();
                        // A stop is noticed by the loop right after this wake-up.
                        self.apply_commands(stopping || self.shared.stop.load(Ordering::Relaxed));
                        self.take_http_results(woke);
                    }
                    EV_ICMP4 | EV_ICMP6 => self.read_icmp(kind == EV_ICMP6, errors, woke, bufs),
                    EV_CONN => self.read_conn(slot as usize, errors, woke, bufs),
                    _ => self.finish_connect(slot, ring, woke),
                }
            }
            // A full batch may have left more behind (level-triggered: they are still ready).
            if n < events.len() {
                break;
            }
        }
        bufs.events = events;
    }

    /// Resolves the HTTP probes the worker finished.
    fn take_http_results(&mut self, woke: Instant) {
        let done = std::mem::take(
            &mut *self
                .shared
                .http_done
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for d in done {
            if let Some(slot) = self.slot_of_tag(d.tag_id) {
                self.resolve(slot, d.seq, d.outcome, d.rtt, d.detail, woke);
            }
        }
    }

    /// Sends target `ti`'s next probe (nominally due at `at`) and schedules the one after.
    fn send(&mut self, ti: u32, at: Instant, bufs: &mut RxBufs) {
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
                self.clock.now(),
            );
        }
        let nonce = self.nonce;
        let t = &mut self.targets[i];
        let payload_size = t.plan.payload_size.unwrap_or(self.config.payload_size);
        t.next_seq += 1;
        let tag = ProbeTag {
            nonce,
            target: t.tag_id,
            seq,
        };
        let mut tcp_sock = None;
        let mut immediate: Option<(Outcome, Option<Duration>)> = None;
        let sent_mono = self.clock.now();
        let lateness = sent_mono.saturating_duration_since(at);
        let late = lateness > late_threshold(t.plan.interval);
        if let Some(r) = &mut t.report {
            r.late_sends += u64::from(late);
            r.max_lateness = r.max_lateness.max(lateness);
        }
        let sent_wall = self.clock.wall();
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
                    if let Err(e) = self.io.send(&icmp.sock, &bufs.tx, Some(t.dest)) {
                        immediate = Some((Outcome::Error(format!("sendto: {e}")), None));
                    }
                }
            }
            TargetKind::Udp { .. } => {
                bufs.tx.clear();
                bufs.tx.resize(payload_size, 0);
                tag.write(&mut bufs.tx);
                if let Some(c) = &t.conn {
                    if let Err(e) = self.io.send(c, &bufs.tx, None) {
                        immediate = Some(send_error_outcome(e, t.plan.addr));
                    }
                }
            }
            TargetKind::Dns { .. } => {
                dns::set_id(&mut t.dns_query, (nonce as u16).wrapping_add(seq as u16));
                if let Some(c) = &t.conn {
                    if let Err(e) = self.io.send(c, &t.dns_query, None) {
                        immediate = Some(send_error_outcome(e, t.plan.addr));
                    }
                }
            }
            TargetKind::Tcp { .. } => match start_connect(&SockAddr::from(t.dest)) {
                Ok((sock, done)) => {
                    if let Some(r) = done {
                        let rtt = self.clock.now().saturating_duration_since(sent_mono);
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
            TargetKind::Http { .. } => {
                let job = self.http_targets.get(&ti).map(|target| http::Job {
                    tag_id: t.tag_id,
                    seq,
                    target: Arc::clone(target),
                    timeout: t.plan.timeout,
                });
                let handed = match (job, &self.http) {
                    (Some(job), Some(worker)) => worker.submit(job),
                    _ => false,
                };
                if !handed {
                    immediate = Some((
                        Outcome::Error("the HTTP probes' thread is gone".into()),
                        None,
                    ));
                }
            }
        }
        let idx = t.slot_index(seq);
        if let Some(sock) = &tcp_sock {
            let ev = EpollEvent::new(EpollFlags::EPOLLOUT, ev_data(EV_TCP, ti, idx));
            if let Err(e) = self.untimestamped.add(sock, ev) {
                immediate = Some((Outcome::Error(format!("epoll: {e}")), None));
            }
        }
        let t = &mut self.targets[i];
        t.slots[idx] = Slot {
            seq,
            sent_mono: Some(sent_mono),
            sent_wall_ns: saturating_nanos(sent_wall),
            send_delay_ns: saturating_nanos(lateness),
            late,
            tcp: tcp_sock,
        };
        t.in_flight += 1;
        if let Some(r) = &mut t.report {
            r.first_send.get_or_insert(sent_mono);
        }
        // An HTTP probe times itself out (naming the phase); the engine's own timeout is a
        // backstop a little later.
        let backstop = if matches!(t.plan.kind, TargetKind::Http { .. }) {
            HTTP_BACKSTOP
        } else {
            Duration::ZERO
        };
        self.heap.push(Reverse((
            sent_mono + t.plan.timeout + backstop,
            t.tag_id,
            seq,
        )));
        if t.plan.count.is_some_and(|c| seq >= c) {
            t.sending = false;
        } else {
            self.heap.push(Reverse((at + t.plan.interval, t.tag_id, 0)));
        }
        if let Some((outcome, rtt)) = immediate {
            let now = self.clock.now();
            self.resolve(ti, seq, outcome, rtt, Detail::None, now);
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
    ) -> bool {
        let Some(t) = self.targets.get_mut(ti as usize).filter(|t| t.alive) else {
            return false;
        };
        let Some(idx) = t.slot_of(seq) else {
            if outcome != Outcome::Timeout {
                if let Some(r) = &mut t.report {
                    r.late_or_duplicate_replies += 1;
                }
            }
            return false;
        };
        let slot = std::mem::take(&mut t.slots[idx]);
        t.in_flight -= 1;
        if let Some(r) = &mut t.report {
            if let Some(first) = r.first_send {
                r.elapsed = now.saturating_duration_since(first);
            }
        }
        let result = ProbeResult {
            target: t.id,
            seq,
            sent_at: UNIX_EPOCH + slot.sent_wall(),
            rtt: if outcome == Outcome::Timeout {
                None
            } else {
                rtt
            },
            outcome,
            detail,
            send_delay: Duration::from_nanos(slot.send_delay_ns),
            late: slot.late,
        };
        if let Some(report) = &mut t.report {
            report.stats.record(&result);
            if let Detail::Http(d) = &result.detail {
                report.http.get_or_insert_default().record(d);
            }
        }
        let done = t.removed && t.in_flight == 0;
        if self.batch.is_empty() {
            self.batch_since = Some(now);
        }
        self.batch.push(result);
        if done {
            self.free_slot(ti);
        }
        true
    }

    fn finish_connect(&mut self, ti: u32, ring: usize, woke: Instant) {
        let Some(t) = self.targets.get(ti as usize).filter(|t| t.alive) else {
            return;
        };
        let Some(slot) = t.slots.get(ring) else {
            return;
        };
        let seq = slot.seq;
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
        self.resolve(ti, seq, outcome, rtt, Detail::None, woke);
    }

    fn rtt(slot: &Slot, kernel_time: Option<Duration>, woke: Instant) -> Duration {
        let mono = slot
            .sent_mono
            .map(|s| woke.saturating_duration_since(s))
            .unwrap_or_default();
        if let Some(k) = kernel_time.and_then(|k| k.checked_sub(slot.sent_wall())) {
            // The kernel stamp precedes our wake-up; anything else means the wall clock stepped.
            if k <= mono + Duration::from_millis(1) {
                return k;
            }
        }
        mono
    }

    fn read_icmp(&mut self, v6: bool, errors: bool, woke: Instant, bufs: &mut RxBufs) {
        let Some(fd) = (if v6 { &self.icmp6 } else { &self.icmp4 })
            .as_ref()
            .map(|s| s.sock.as_raw_fd())
        else {
            return;
        };
        let raw = (if v6 { &self.icmp6 } else { &self.icmp4 })
            .as_ref()
            .is_some_and(|s| s.raw);
        if errors {
            while let Some(rx) = self.io.receive(fd, bufs, true) {
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
                    );
                }
            }
        }
        while let Some(rx) = self.io.receive(fd, bufs, false) {
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
                        self.resolve_answer(ti, seq, Outcome::Ok, detail, rx.kernel_time, woke);
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
                return self.slot_of_tag(tag.target).map(|ti| (ti, tag.seq));
            }
        }
        // Tagged by someone else: only a target whose payload is too short to carry our tag
        // can own it (its echo payload is all zeros, which may read as a foreign tag).
        let tagged = tag.is_some();
        let seq16 = seq16?;
        let candidates = self.icmp_by_addr.get(&addr?)?;
        candidates.slots().iter().find_map(|&ti| {
            let t = &self.targets[ti as usize];
            let size = t.plan.payload_size.unwrap_or(self.config.payload_size);
            if tagged && size >= TAG_LEN {
                return None;
            }
            t.slot_of_seq16(seq16).map(|seq| (ti, seq))
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
    ) {
        let rtt = self.targets.get(ti as usize).and_then(|t| {
            t.slot_of(seq)
                .map(|i| Self::rtt(&t.slots[i], kernel_time, woke))
        });
        self.resolve(ti, seq, outcome, rtt, detail, woke);
    }

    /// The UDP probe a datagram (reply, or our payload quoted by an error) answers: the one its
    /// tag names (an echoing service returns it), else the oldest still in flight.
    fn udp_probe_seq(&self, ti: usize, data: &[u8]) -> Option<u64> {
        let tag_id = self.targets[ti].tag_id;
        ProbeTag::read(data)
            .filter(|t| t.nonce == self.nonce && t.target == tag_id)
            .map(|t| t.seq)
            .or_else(|| self.targets[ti].oldest_in_flight())
    }

    /// Reads the connected socket of a UDP or DNS target.
    fn read_conn(&mut self, ti: usize, errors: bool, woke: Instant, bufs: &mut RxBufs) {
        let Some(fd) = self.targets[ti].conn.as_ref().map(|c| c.as_raw_fd()) else {
            return;
        };
        let is_dns = matches!(self.targets[ti].plan.kind, TargetKind::Dns { .. });
        let nonce16 = self.nonce as u16;
        if errors {
            while let Some(rx) = self.io.receive(fd, bufs, true) {
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
                self.resolve_answer(ti as u32, seq, outcome, Detail::None, rx.kernel_time, woke);
            }
        }
        while let Some(rx) = self.io.receive(fd, bufs, false) {
            let data = &bufs.data[..rx.len];
            if is_dns {
                let Some(h) = dns::parse_response(data) else {
                    continue;
                };
                let Some(seq) = self.targets[ti].slot_of_seq16(h.id.wrapping_sub(nonce16)) else {
                    if let Some(r) = &mut self.targets[ti].report {
                        r.late_or_duplicate_replies += 1;
                    }
                    continue;
                };
                let detail = Detail::Dns {
                    rcode: h.rcode,
                    answers: h.answers,
                };
                self.resolve_answer(ti as u32, seq, Outcome::Ok, detail, rx.kernel_time, woke);
            } else {
                // An echoing service returns our tag; any other reply answers the oldest probe.
                let seq = self.udp_probe_seq(ti, data);
                let Some(seq) = seq else {
                    if let Some(r) = &mut self.targets[ti].report {
                        r.late_or_duplicate_replies += 1;
                    }
                    continue;
                };
                let detail = Detail::Udp {
                    bytes: rx.len as u32,
                };
                self.resolve_answer(ti as u32, seq, Outcome::Ok, detail, rx.kernel_time, woke);
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
pub(crate) fn receive(fd: i32, bufs: &mut RxBufs, errqueue: bool) -> Option<Received> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_sharing_an_address_are_all_found_and_removed_one_by_one() {
        let mut s = AddrSlots::One(3);
        assert_eq!(s.slots(), &[3]);
        assert!(!s.remove(9), "a slot it does not hold leaves it as it is");
        s.push(7);
        s.push(5);
        assert_eq!(s.slots(), &[3, 7, 5]);
        assert!(!s.remove(7));
        assert!(!s.remove(3));
        assert_eq!(s.slots(), &[5]);
        assert!(s.remove(5), "the last one gone: the address goes");
        assert!(AddrSlots::One(4).remove(4));
    }

    /// A target taken in as `adopt` takes one, without its sockets: what reply matching reads.
    fn fake_icmp_target(e: &mut Engine, addr: &str, payload: usize, timeout_s: u64) -> u32 {
        let slot = e.targets.len() as u32;
        let addr: IpAddr = addr.parse().expect("address");
        let plan = ProbePlan {
            label: String::new(),
            kind: TargetKind::Icmp,
            addr,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(timeout_s),
            count: None,
            payload_size: Some(payload),
            http: None,
        };
        let cap = ring_slots(plan.interval, plan.timeout);
        e.targets.push(TargetState {
            id: slot as usize,
            tag_id: slot | (1 << SLOT_BITS),
            alive: true,
            dest: SocketAddr::new(addr, 0),
            next_seq: 1,
            slots: (0..cap).map(|_| Slot::default()).collect(),
            mask: cap - 1,
            in_flight: 0,
            sending: true,
            removed: false,
            conn: None,
            dns_query: Vec::new(),
            report: None,
            plan,
        });
        e.icmp_by_addr
            .entry(addr)
            .and_modify(|s| s.push(slot))
            .or_insert(AddrSlots::One(slot));
        slot
    }

    fn in_flight(e: &mut Engine, slot: u32, seq: u64) {
        let t = &mut e.targets[slot as usize];
        let i = t.slot_index(seq);
        t.slots[i].seq = seq;
        t.in_flight += 1;
    }

    #[test]
    fn answers_are_matched_by_our_tag_else_by_address_and_16_bit_sequence() {
        let mut e = Engine::new(Vec::new(), EngineConfig::default()).expect("engine");
        let tagged = fake_icmp_target(&mut e, "127.0.0.5", 56, 1);
        let short = fake_icmp_target(&mut e, "127.0.0.6", 8, 1);
        let ours = |target: u32, seq: u64| {
            Some(ProbeTag {
                nonce: e.nonce,
                target,
                seq,
            })
        };
        let a5 = "127.0.0.5".parse().ok();
        let a6 = "127.0.0.6".parse().ok();
        // Our tag names the target and the full sequence, whatever the address says.
        let tag_id = e.targets[tagged as usize].tag_id;
        assert_eq!(
            e.match_icmp(ours(tag_id, 3), a6, Some(3)),
            Some((tagged, 3))
        );
        // A tag of an earlier target of the same slot (older generation) is not this one's.
        let stale = tagged | (7 << SLOT_BITS);
        assert_eq!(e.match_icmp(ours(stale, 3), a5, Some(3)), None);
        // Someone else's tag: a target that carries ours never owns it...
        let foreign = Some(ProbeTag {
            nonce: e.nonce ^ 1,
            target: tag_id,
            seq: 3,
        });
        in_flight(&mut e, tagged, 3);
        assert_eq!(e.match_icmp(foreign, a5, Some(3)), None);
        // ...but one too short to carry a tag is found by address and 16-bit sequence, which
        // maps back to the full sequence across the 16-bit wrap.
        in_flight(&mut e, short, 70_001);
        assert_eq!(
            e.match_icmp(foreign, a6, Some(70_001u64 as u16)),
            Some((short, 70_001))
        );
        assert_eq!(
            e.match_icmp(None, a6, Some(70_001u64 as u16)),
            Some((short, 70_001))
        );
        // Not in flight (answered already, or never sent), or from an address with no target.
        assert_eq!(e.match_icmp(None, a6, Some(5)), None);
        assert_eq!(e.match_icmp(None, "127.0.0.9".parse().ok(), Some(1)), None);
    }

    #[test]
    fn a_send_counts_its_lateness_on_the_engines_clock_and_the_next_keeps_the_schedule() {
        // A real UDP socket on loopback receives the probes; the time is a fake.
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let (mut e, fake) = engine_on_a_fake_clock();
        let at = adopt_udp_target(&mut e, &receiver);
        let ms = Duration::from_millis;
        e.heap.clear();
        let mut bufs = RxBufs::new();
        let sent = |e: &Engine, seq: u64| {
            let t = &e.targets[0];
            let s = &t.slots[t.slot_index(seq)];
            (s.seq, s.late, s.send_delay_ns)
        };
        // 5 ms behind its time (the threshold is 1 ms): late, by 5 ms.
        fake.advance(ms(5));
        e.send(0, at, &mut bufs);
        assert_eq!(sent(&e, 1), (1, true, 5_000_000));
        let wall = e.targets[0].slots[e.targets[0].slot_index(1)].sent_wall_ns;
        assert_eq!(
            wall,
            (1_800_000_000_000 + 5) * 1_000_000,
            "stamped on the engine's wall clock"
        );
        // The next send is due a whole interval after the last one's *time*, not after it left
        // (no drift); its timeout a timeout after it left.
        let mut due: Vec<(Duration, u64)> = e
            .heap
            .drain()
            .map(|Reverse((when, _, seq))| (when - at, seq))
            .collect();
        due.sort();
        assert_eq!(due, [(ms(100), 0), (ms(1005), 1)]);
        // On time: not late. 0.9 ms behind: counted as a delay, not as late.
        fake.advance(ms(95));
        e.send(0, at + ms(100), &mut bufs);
        assert_eq!(sent(&e, 2), (2, false, 0));
        fake.advance(ms(100) + Duration::from_micros(900));
        e.send(0, at + ms(200), &mut bufs);
        assert_eq!(sent(&e, 3), (3, false, 900_000));
        // Each send left for real.
        let mut buf = [0u8; 64];
        for _ in 0..3 {
            assert_eq!(receiver.recv(&mut buf).expect("a probe"), 32);
        }
    }

    #[test]
    fn unanswered_probes_time_out_on_the_engines_clock_while_sends_keep_their_schedule() {
        // Bound but silent: the probes arrive (no port-unreachable), nothing answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let (mut e, fake) = engine_on_a_fake_clock();
        adopt_udp_target(&mut e, &silent);
        let ms = Duration::from_millis;
        let mut bufs = RxBufs::new();
        // Ten steps of 100 ms: a send each, and nothing has waited its timeout yet.
        for step in 0..10u32 {
            e.fire_due(&mut bufs);
            assert_eq!(
                e.targets[0].next_seq,
                u64::from(step) + 2,
                "one send at step {step}"
            );
            assert!(e.batch.is_empty(), "no result before a timeout");
            fake.advance(ms(100));
        }
        // At 1 s the first probe has waited its timeout; the eleventh goes out.
        e.fire_due(&mut bufs);
        let results: Vec<(u64, bool)> = e
            .batch
            .iter()
            .map(|r| (r.seq, r.outcome == Outcome::Timeout))
            .collect();
        assert_eq!(results, [(1, true)]);
        assert_eq!(e.targets[0].next_seq, 12);
        assert_eq!(e.targets[0].in_flight, 10);
        // Half a second more: five more time out, in order, and five more go out.
        for _ in 0..5 {
            fake.advance(ms(100));
            e.fire_due(&mut bufs);
        }
        let seqs: Vec<u64> = e.batch.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
        assert!(e
            .batch
            .iter()
            .all(|r| r.outcome == Outcome::Timeout && !r.late));
    }

    /// An engine whose time is a fake clock (its wall clock at 1 800 000 000 s), and the clock.
    fn engine_on_a_fake_clock() -> (Engine, Arc<netpulse_core::clock::SharedFakeClock>) {
        let mut e = Engine::new(Vec::new(), EngineConfig::default()).expect("engine");
        let fake = Arc::new(netpulse_core::clock::SharedFakeClock::new(1_800_000_000));
        e.clock = EngineClock {
            base: Instant::now(),
            fake: Some(fake.clone()),
        };
        (e, fake)
    }

    /// Takes in a UDP target to `to` (every 100 ms, 1 s timeout, 32 bytes), its first send due
    /// now; returns that time.
    fn adopt_udp_target(e: &mut Engine, to: &std::net::UdpSocket) -> Instant {
        let plan = ProbePlan {
            label: "udp".into(),
            kind: TargetKind::Udp {
                port: to.local_addr().expect("address").port(),
            },
            addr: "127.0.0.1".parse().expect("address"),
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(1000),
            count: None,
            payload_size: Some(32),
            http: None,
        };
        let prepared = prepare(&e.shared, 0, plan).expect("prepare");
        let at = e.clock.now();
        e.adopt(prepared, Some(at)).expect("adopt");
        at
    }

    /// A datagram that left: its bytes and where to.
    type Left = (Vec<u8>, Option<SocketAddr>);
    /// A datagram to arrive: on the error queue or not, its bytes, what came with it.
    type Arriving = (bool, Vec<u8>, Received);

    /// What would have left, and what is to arrive.
    #[derive(Clone, Default)]
    struct FakeNet {
        sent: Arc<Mutex<Vec<Left>>>,
        arriving: Arc<Mutex<Vec<Arriving>>>,
    }

    impl Datagrams for FakeNet {
        fn send(
            &mut self,
            _: &Socket,
            bytes: &[u8],
            dest: Option<SocketAddr>,
        ) -> io::Result<usize> {
            self.sent.lock().expect("lock").push((bytes.to_vec(), dest));
            Ok(bytes.len())
        }

        fn receive(&mut self, _: i32, bufs: &mut RxBufs, errqueue: bool) -> Option<Received> {
            let mut q = self.arriving.lock().expect("lock");
            let at = q.iter().position(|(e, ..)| *e == errqueue)?;
            let (_, bytes, rx) = q.remove(at);
            bufs.data[..bytes.len()].copy_from_slice(&bytes);
            Some(Received {
                len: bytes.len(),
                ..rx
            })
        }
    }

    #[test]
    fn icmp_answers_over_a_fake_network_are_matched_timed_by_their_kernel_stamp_and_counted_once() {
        let (mut e, fake) = engine_on_a_fake_clock();
        let net = FakeNet::default();
        e.io = Box::new(net.clone());
        // The ICMP socket is only an fd to the engine here: any socket stands in for it.
        let stand_in = Socket::new(Domain::IPV4, Type::DGRAM, None).expect("socket");
        e.icmp4 = Some(Arc::new(IcmpSocket {
            sock: stand_in,
            v6: false,
            raw: false,
        }));
        let t = fake_icmp_target(&mut e, "127.0.0.5", 56, 1);
        e.targets[t as usize].report = Some(Box::default());
        let mut bufs = RxBufs::new();
        let ms = Duration::from_millis;
        let at = e.clock.now();
        e.send(t, at, &mut bufs);
        let (request, dest) = net.sent.lock().expect("lock")[0].clone();
        assert_eq!(dest, Some("127.0.0.5:0".parse().expect("address")));
        assert_eq!(request[0], 8, "an echo request");
        let sent_wall = e.clock.wall();
        // Its reply arrives, stamped by the kernel 12.5 ms after the send; we read it at 13 ms.
        let mut reply = request.clone();
        reply[0] = 0;
        let arrived = |bytes: &[u8], kernel: Duration, errqueue: bool, err: Option<IcmpError>| {
            net.arriving.lock().expect("lock").push((
                errqueue,
                bytes.to_vec(),
                Received {
                    len: 0,
                    kernel_time: Some(kernel),
                    ttl: Some(61),
                    from: "127.0.0.5".parse().ok(),
                    icmp_error: err,
                },
            ))
        };
        arrived(
            &reply,
            sent_wall + Duration::from_micros(12_500),
            false,
            None,
        );
        fake.advance(ms(13));
        e.read_icmp(false, false, e.clock.now(), &mut bufs);
        let r = e.batch.last().expect("a result").clone();
        assert_eq!((r.seq, r.outcome.clone()), (1, Outcome::Ok));
        assert_eq!(
            r.rtt,
            Some(Duration::from_micros(12_500)),
            "kernel stamp − send stamp"
        );
        assert_eq!(
            r.detail,
            Detail::Icmp {
                bytes: request.len() as u32,
                ttl: Some(61)
            }
        );
        // The same reply again: counted as a duplicate, not a second result.
        arrived(&reply, sent_wall + ms(14), false, None);
        e.read_icmp(false, false, e.clock.now(), &mut bufs);
        assert_eq!(e.batch.len(), 1);
        let dup = e.targets[t as usize]
            .report
            .as_ref()
            .map(|r| r.late_or_duplicate_replies);
        assert_eq!(dup, Some(1));
        // The next probe meets an ICMP error: the ping socket queues it with our request.
        fake.advance(ms(987));
        e.send(t, at + Duration::from_secs(1), &mut bufs);
        let second = net.sent.lock().expect("lock")[1].0.clone();
        let unreachable = IcmpError {
            v6: false,
            icmp_type: 3,
            code: 1,
            from: "127.0.0.1".parse().ok(),
        };
        arrived(&second, e.clock.wall() + ms(1), true, Some(unreachable));
        fake.advance(ms(2));
        e.read_icmp(false, true, e.clock.now(), &mut bufs);
        let r = e.batch.last().expect("a result");
        assert_eq!(
            (r.seq, r.outcome.clone()),
            (2, Outcome::Unreachable(unreachable))
        );
    }

    #[test]
    fn a_ring_holds_every_probe_that_can_be_in_flight() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(ring_slots(s(1), s(1)), 4);
        assert_eq!(ring_slots(ms(1), s(1)), 1024, "1 000 in flight at 1 ms");
        assert_eq!(ring_slots(ms(1), s(1000)), 1 << 16, "never past 16 bits");
        assert_eq!(ring_slots(s(60), s(1)), 4);
        let mut e = Engine::new(Vec::new(), EngineConfig::default()).expect("engine");
        let t = fake_icmp_target(&mut e, "127.0.0.7", 56, 1);
        // Sequences a ring apart share a slot: only the one in flight is found.
        in_flight(&mut e, t, 9);
        let st = &e.targets[t as usize];
        assert_eq!(st.slot_of(9), Some(st.slot_index(9)));
        assert_eq!(st.slot_of(13), None);
        assert_eq!(st.slot_of(0), None, "sequence 0 marks a free slot");
        assert_eq!(st.oldest_in_flight(), Some(9));
    }

    #[test]
    fn epoll_data_round_trips() {
        for (kind, slot, ring) in [
            (EV_TCP, 0, 0),
            (EV_CONN, (1 << SLOT_BITS) - 1, 65_535),
            (EV_ICMP6, 7, 1 << 16),
        ] {
            assert_eq!(ev_parts(ev_data(kind, slot, ring)), (kind, slot, ring));
        }
    }

    #[test]
    fn generations_wrap_inside_the_tag() {
        let slot = 5u32;
        let last = slot | (GENERATION_MASK << SLOT_BITS);
        let next = ((last >> SLOT_BITS) + 1) & GENERATION_MASK;
        assert_eq!(next, 0, "wraps instead of overflowing");
        assert_eq!((slot | (next << SLOT_BITS)) & ((1 << SLOT_BITS) - 1), slot);
    }

    #[test]
    fn added_targets_spread_over_the_interval() {
        let interval = Duration::from_secs(1);
        let mut phases: Vec<Duration> = (0..100).map(|id| added_phase(id, interval)).collect();
        assert!(phases.iter().all(|p| *p < interval));
        phases.sort();
        // Golden-ratio phases leave no gap much wider than an even spread would (10 ms here).
        let widest = phases
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        assert!(widest < Duration::from_millis(25), "{widest:?}");
    }
}
