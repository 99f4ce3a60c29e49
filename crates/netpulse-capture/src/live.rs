//! Live capture through libpcap (which uses the kernel's TPACKET_V3 ring on Linux and compiles
//! BPF filters): chosen over raw AF_PACKET because users write filters in pcap syntax
//! (`tcp port 443`), and libpcap is what compiles them.

/// Why live capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No permission to capture.
    #[error("cannot capture on {iface}: permission denied. Run as root, or give the binary the capability once: sudo setcap cap_net_raw=eip {exe}")]
    Permission {
        /// Interface.
        iface: String,
        /// This program's path.
        exe: String,
    },
    /// The interface does not exist.
    #[error("no interface named \"{iface}\" to capture on; interfaces: {known}")]
    NoSuchInterface {
        /// Requested.
        iface: String,
        /// What exists.
        known: String,
    },
    /// The filter does not compile.
    #[error("bad capture filter \"{filter}\": {reason}")]
    Filter {
        /// The expression.
        filter: String,
        /// libpcap's message.
        reason: String,
    },
    /// Anything else libpcap reports.
    #[error("cannot capture on {iface}: {reason}")]
    Other {
        /// Interface.
        iface: String,
        /// libpcap's message.
        reason: String,
    },
}

/// Compiles `filter` (pcap syntax) for Ethernet without opening any interface or needing any
/// privilege: a typo is found by `config check`, not at the monitor's start.
pub fn check_filter(filter: &str) -> Result<(), LiveError> {
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).map_err(|e| LiveError::Other {
        iface: "(none)".into(),
        reason: e.to_string(),
    })?;
    dead.compile(filter, true)
        .map(|_| ())
        .map_err(|e| LiveError::Filter {
            filter: filter.to_string(),
            reason: e.to_string(),
        })
}

/// An open live capture.
pub struct Live {
    cap: pcap::Capture<pcap::Active>,
    linktype: u16,
    /// Timestamps come in nanoseconds (libpcap ≥ 1.5 on Linux gives them), else microseconds.
    nanos: bool,
    /// The last read found nothing: poll before reading again.
    empty: bool,
}

/// A packet from a live capture (borrowed until the next call).
pub struct LivePacket<'a> {
    /// Capture time, ns since the epoch.
    pub ts_ns: u64,
    /// Wire length.
    pub len: u32,
    /// Captured bytes.
    pub data: &'a [u8],
}

/// Kernel counters of a live capture.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveStats {
    /// Packets the filter accepted.
    pub received: u32,
    /// Dropped because the ring was full (we were too slow).
    pub dropped: u32,
    /// Dropped by the interface/driver.
    pub if_dropped: u32,
}

impl Live {
    /// Opens `iface` (not promiscuous) with an optional BPF `filter` and the kernel ring
    /// `netpulse capture` uses (64 MiB: no drops at line rate here).
    pub fn open(iface: &str, filter: Option<&str>) -> Result<Live, LiveError> {
        Live::open_with_ring(iface, filter, 64 << 20)
    }

    /// [`Live::open`] with a kernel ring of `ring_bytes` (resident for as long as it is open:
    /// a monitor that captures for months takes a smaller one).
    pub fn open_with_ring(
        iface: &str,
        filter: Option<&str>,
        ring_bytes: i32,
    ) -> Result<Live, LiveError> {
        let known = || {
            pcap::Device::list()
                .map(|d| d.into_iter().map(|d| d.name).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        };
        let other = |e: pcap::Error| {
            let reason = e.to_string();
            let lower = reason.to_lowercase();
            if lower.contains("permission") || lower.contains("operation not permitted") {
                LiveError::Permission {
                    iface: iface.to_string(),
                    exe: std::env::current_exe()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| "netpulse".into()),
                }
            } else if lower.contains("no such device") {
                LiveError::NoSuchInterface {
                    iface: iface.to_string(),
                    known: known(),
                }
            } else {
                LiveError::Other {
                    iface: iface.to_string(),
                    reason,
                }
            }
        };
        let mut cap = pcap::Capture::from_device(iface)
            .map_err(other)?
            .promisc(false)
            .snaplen(262_144)
            .buffer_size(ring_bytes)
            // Let the kernel hand over packets in blocks (TPACKET_V3): far fewer wake-ups than
            // immediate mode; at worst a packet is reported 100 ms late.
            .immediate_mode(false)
            .timeout(100)
            // Nanoseconds, as the kernel stamps them: a handshake on a LAN takes microseconds.
            .precision(pcap::Precision::Nano)
            .open()
            .map_err(other)?;
        // What libpcap actually gives (the setting can be refused): never read one as the other.
        let nanos = tstamp_is_nanos(&cap);
        if let Some(f) = filter {
            cap.filter(f, true).map_err(|e| LiveError::Filter {
                filter: f.to_string(),
                reason: e.to_string(),
            })?;
        }
        let linktype = cap.get_datalink().0 as u16;
        // Non-blocking, with our own poll: libpcap's read timeout is not honoured in immediate
        // mode on TPACKET_V3, and Ctrl-C must end an idle capture.
        let cap = cap.setnonblock().map_err(other)?;
        Ok(Live {
            cap,
            linktype,
            nanos,
            empty: true,
        })
    }

    /// The link type of the interface.
    pub fn linktype(&self) -> u16 {
        self.linktype
    }

    /// The next packet; `Ok(None)` when none arrived within 100 ms (so the caller can check
    /// for Ctrl-C).
    pub fn next_packet(&mut self) -> Result<Option<LivePacket<'_>>, String> {
        // Packets waiting are taken without a system call; only an empty ring is polled.
        if self.empty && !self.ready()? {
            return Ok(None);
        }
        match self.cap.next_packet() {
            Err(pcap::Error::TimeoutExpired) => {
                self.empty = true;
                Ok(None)
            }
            Ok(p) => {
                self.empty = false;
                let ts = p.header.ts;
                let frac = ts.tv_usec as u64 * if self.nanos { 1 } else { 1000 };
                Ok(Some(LivePacket {
                    ts_ns: (ts.tv_sec as u64) * 1_000_000_000 + frac,
                    len: p.header.len,
                    data: p.data,
                }))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// True when the capture descriptor becomes readable within 100 ms.
    fn ready(&mut self) -> Result<bool, String> {
        use std::os::fd::AsRawFd;
        poll_readable(self.cap.as_raw_fd(), 100).map_err(|e| format!("poll: {e}"))
    }

    /// Kernel counters so far.
    pub fn stats(&mut self) -> LiveStats {
        self.cap
            .stats()
            .map(|s| LiveStats {
                received: s.received,
                dropped: s.dropped,
                if_dropped: s.if_dropped,
            })
            .unwrap_or_default()
    }
}

extern "C" {
    /// libpcap: `PCAP_TSTAMP_PRECISION_MICRO` (0) or `_NANO` (1) of an activated handle.
    fn pcap_get_tstamp_precision(p: *mut std::ffi::c_void) -> std::ffi::c_int;
}

/// True when `cap` delivers nanosecond timestamps.
#[allow(unsafe_code)]
fn tstamp_is_nanos(cap: &pcap::Capture<pcap::Active>) -> bool {
    // SAFETY: the handle is the activated capture `cap` owns and keeps open for the call;
    // libpcap only reads a field of it. (The pcap crate does not wrap this getter.)
    unsafe { pcap_get_tstamp_precision(cap.as_ptr().cast()) == 1 }
}

/// Waits up to `timeout_ms` for `raw` to become readable.
#[allow(unsafe_code)]
fn poll_readable(raw: std::os::fd::RawFd, timeout_ms: u16) -> Result<bool, nix::errno::Errno> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    // SAFETY: `raw` is the live capture's descriptor; the caller holds the capture (and so the
    // open descriptor) for the whole call, and the borrow does not outlive it.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(timeout_ms)) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(e),
    }
}
