//! Reading interfaces from the kernel.
//!
//! Why rtnetlink and not `/proc/net/dev`: both give the same 64-bit counters, but only netlink
//! gives the interface *index*, which is what tells a renamed interface (same index) from a
//! re-created one (new index, counters from zero) — `/proc/net/dev` has names only. And by
//! measurement (`examples/iface_bench.rs`, 200 veth interfaces) an `RTM_GETSTATS` dump asking
//! for the 64-bit counters alone is the cheapest of the three ways to read them: `/proc/net/dev`
//! makes the kernel print and us parse text, and an `RTM_GETLINK` dump carries every link
//! attribute (≈ 10× the bytes). So each poll is one `RTM_GETSTATS` dump; names, state, MTU and
//! addresses are re-read only when the kernel announces a change on a subscribed event socket
//! (or a counter arrives for an index we do not know).

use crate::error::IfaceError;
use crate::wire::{self, Message};
use netpulse_core::iface::IfaceSample;
use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
    SockFlag, SockProtocol, SockType,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_RUNNING: u32 = 0x40;
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// RFC 2863 operational state, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OperState {
    /// The driver does not say (loopback, tun and many virtual links).
    Unknown,
    /// Not present.
    NotPresent,
    /// Down.
    Down,
    /// Down because a lower link is down.
    LowerLayerDown,
    /// In a test mode.
    Testing,
    /// Waiting for an external event (802.1X, …).
    Dormant,
    /// Up and passing packets.
    Up,
}

impl OperState {
    fn from_kernel(v: Option<u8>) -> Self {
        match v {
            Some(1) => OperState::NotPresent,
            Some(2) => OperState::Down,
            Some(3) => OperState::LowerLayerDown,
            Some(4) => OperState::Testing,
            Some(5) => OperState::Dormant,
            Some(6) => OperState::Up,
            _ => OperState::Unknown,
        }
    }

    /// Lower-case name as `ip link` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            OperState::Unknown => "unknown",
            OperState::NotPresent => "notpresent",
            OperState::Down => "down",
            OperState::LowerLayerDown => "lowerlayerdown",
            OperState::Testing => "testing",
            OperState::Dormant => "dormant",
            OperState::Up => "up",
        }
    }
}

/// What is known about one interface besides its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceInfo {
    /// Kernel index.
    pub index: u32,
    /// Name.
    pub name: Arc<str>,
    /// Operational state.
    pub operstate: OperState,
    /// `IFF_*` flags.
    pub flags: u32,
    /// MTU.
    pub mtu: Option<u32>,
    /// Hardware address, `aa:bb:…` (empty for links without one).
    pub mac: String,
    /// Driver kind of virtual links (`veth`, `bridge`, `wireguard`, …).
    pub kind: Option<String>,
    /// Link speed in Mbit/s where the driver knows it.
    pub speed_mbps: Option<u32>,
    /// Addresses with prefix length.
    pub addrs: Vec<(IpAddr, u8)>,
}

impl IfaceInfo {
    /// Administratively up and passing packets (operstate up, or unknown but running, as
    /// loopback and tun devices report).
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
            && match self.operstate {
                OperState::Up => true,
                OperState::Unknown => self.flags & IFF_RUNNING != 0,
                _ => false,
            }
    }

    /// The loopback interface.
    pub fn is_loopback(&self) -> bool {
        self.flags & IFF_LOOPBACK != 0
    }

    /// A short state word for tables: the operstate, or `up` for a running link that does not
    /// report one.
    pub fn state(&self) -> &'static str {
        if self.operstate == OperState::Unknown && self.is_up() {
            "up"
        } else if self.flags & IFF_UP == 0 {
            "down"
        } else {
            self.operstate.as_str()
        }
    }
}

/// How counters are read (the alternatives exist for the benchmark that chose between them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// `RTM_GETSTATS` for counters; links re-read on change events (the default).
    Stats,
    /// A full `RTM_GETLINK` dump every poll.
    Links,
}

/// The kernel's interfaces: counters on demand, link details kept current.
pub struct IfaceSource {
    chan: Channel,
    events: Option<OwnedFd>,
    events_buf: Vec<u8>,
    links: BTreeMap<u32, IfaceInfo>,
    mode: PollMode,
    refreshes: u64,
}

fn netlink_socket(flags: SockFlag) -> Result<OwnedFd, IfaceError> {
    socket(
        AddressFamily::Netlink,
        SockType::Raw,
        flags | SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(|source| IfaceError::Socket {
        op: "open a netlink socket",
        source,
    })
}

impl IfaceSource {
    /// Opens the netlink sockets and reads every link.
    pub fn open() -> Result<IfaceSource, IfaceError> {
        Self::with_mode(PollMode::Stats)
    }

    /// Opens the source with an explicit polling method.
    pub fn with_mode(mode: PollMode) -> Result<IfaceSource, IfaceError> {
        let request = netlink_socket(SockFlag::empty())?;
        // Dumps of a few hundred links arrive in several datagrams; a roomy receive buffer keeps
        // the kernel from waiting on us between them.
        let _ = setsockopt(&request, sockopt::RcvBuf, &(1 << 20));
        // Without the event socket everything still works, links are just re-read every poll.
        let events = netlink_socket(SockFlag::SOCK_NONBLOCK).ok().filter(|fd| {
            bind(
                fd.as_raw_fd(),
                &NetlinkAddr::new(0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR),
            )
            .is_ok()
        });
        let mut source = IfaceSource {
            chan: Channel {
                request,
                seq: 0,
                buf: vec![0u8; 64 * 1024],
                req: Vec::with_capacity(32),
            },
            events,
            events_buf: vec![0u8; 16 * 1024],
            links: BTreeMap::new(),
            mode,
            refreshes: 0,
        };
        source.refresh_links()?;
        Ok(source)
    }

    /// Every interface, by index.
    pub fn links(&self) -> &BTreeMap<u32, IfaceInfo> {
        &self.links
    }

    /// One interface.
    pub fn info(&self, index: u32) -> Option<&IfaceInfo> {
        self.links.get(&index)
    }

    /// How many times link details were re-read (for the benchmark and tests).
    pub fn refreshes(&self) -> u64 {
        self.refreshes
    }

    /// Reads every interface's counters into `out` (cleared first). Returns true when the link
    /// details changed since the previous poll (an interface came, went, was renamed, or changed
    /// state or address).
    pub fn poll(&mut self, out: &mut Vec<IfaceSample>) -> Result<bool, IfaceError> {
        out.clear();
        let changed = self.drain_events();
        if changed {
            self.refresh_links()?;
        }
        if self.mode == PollMode::Links {
            // Counters straight from a link dump; link details still follow the events.
            let links = &self.links;
            self.chan.dump(wire::RTM_GETLINK, "list interfaces", |m| {
                if m.kind != wire::RTM_NEWLINK {
                    return Ok(());
                }
                let l = wire::parse_link(m.payload)?;
                if let (Some(info), Some(counters)) = (links.get(&l.index), l.stats) {
                    out.push(IfaceSample {
                        index: l.index,
                        name: Arc::clone(&info.name),
                        counters,
                    });
                }
                Ok(())
            })?;
            return Ok(changed);
        }
        let mut unknown = false;
        let links = &self.links;
        self.chan
            .dump(wire::RTM_GETSTATS, "read interface counters", |m| {
                if m.kind != wire::RTM_NEWSTATS {
                    return Ok(());
                }
                let (index, counters) = wire::parse_stats(m.payload)?;
                match (links.get(&index), counters) {
                    (Some(l), Some(counters)) => out.push(IfaceSample {
                        index,
                        name: Arc::clone(&l.name),
                        counters,
                    }),
                    (None, Some(_)) => unknown = true,
                    _ => {}
                }
                Ok(())
            })?;
        if unknown && !changed {
            // An interface appeared between our last link read and this dump (its event may still
            // be queued): read the links and the counters once more.
            self.refresh_links()?;
            return self.poll(out).map(|_| true);
        }
        Ok(changed)
    }

    /// Reads pending link/address events; true if there were any (or some were lost).
    fn drain_events(&mut self) -> bool {
        let Some(fd) = self.events.as_ref() else {
            return true;
        };
        let mut any = false;
        loop {
            match recv(fd.as_raw_fd(), &mut self.events_buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => return any,
                Ok(_) => any = true,
                Err(Errno::EAGAIN) => return any,
                // ENOBUFS: events were lost, so re-read everything.
                Err(_) => return true,
            }
        }
    }

    /// Re-reads every link (name, state, flags, MTU, speed) and every address.
    pub fn refresh_links(&mut self) -> Result<(), IfaceError> {
        self.refreshes += 1;
        let mut links = BTreeMap::new();
        self.chan.dump(wire::RTM_GETLINK, "list interfaces", |m| {
            if m.kind != wire::RTM_NEWLINK {
                return Ok(());
            }
            let l = wire::parse_link(m.payload)?;
            let name: Arc<str> = String::from_utf8_lossy(l.name).into();
            links.insert(
                l.index,
                IfaceInfo {
                    index: l.index,
                    speed_mbps: None,
                    operstate: OperState::from_kernel(l.operstate),
                    flags: l.flags,
                    mtu: l.mtu,
                    mac: l
                        .address
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                    kind: (!l.kind.is_empty()).then(|| String::from_utf8_lossy(l.kind).into()),
                    addrs: Vec::new(),
                    name,
                },
            );
            Ok(())
        })?;
        self.chan.dump(wire::RTM_GETADDR, "list addresses", |m| {
            if m.kind != wire::RTM_NEWADDR {
                return Ok(());
            }
            if let Some((index, ip, prefix)) = wire::parse_addr(m.payload)? {
                if let Some(l) = links.get_mut(&index) {
                    l.addrs.push((ip, prefix));
                }
            }
            Ok(())
        })?;
        for l in links.values_mut() {
            l.speed_mbps = link_speed(&l.name);
        }
        self.links = links;
        Ok(())
    }
}

/// The request socket with its buffers.
struct Channel {
    request: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    req: Vec<u8>,
}

impl Channel {
    /// Sends a dump request and feeds every answer message to `each`.
    fn dump(
        &mut self,
        kind: u16,
        op: &'static str,
        mut each: impl FnMut(&Message<'_>) -> Result<(), wire::WireError>,
    ) -> Result<(), IfaceError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        wire::dump_request(kind, seq, &mut self.req);
        let fd = self.request.as_raw_fd();
        sendto(fd, &self.req, &NetlinkAddr::new(0, 0), MsgFlags::empty())
            .map_err(|source| IfaceError::Socket { op, source })?;
        loop {
            let n = match recv(fd, &mut self.buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(source) => return Err(IfaceError::Socket { op, source }),
            };
            for m in wire::messages(&self.buf[..n]) {
                let m = m.map_err(|source| IfaceError::Malformed { op, source })?;
                if m.seq != seq {
                    continue;
                }
                match m.kind {
                    wire::NLMSG_DONE => return Ok(()),
                    wire::NLMSG_ERROR => {
                        let code = m
                            .error_code()
                            .map_err(|source| IfaceError::Malformed { op, source })?;
                        if code != 0 {
                            return Err(IfaceError::Refused {
                                op,
                                source: Errno::from_raw(code),
                            });
                        }
                    }
                    _ => each(&m).map_err(|source| IfaceError::Malformed { op, source })?,
                }
            }
        }
    }
}

/// Link speed from sysfs (Mbit/s); `None` where the driver does not know (virtual links, down
/// links report -1 or refuse the read).
fn link_speed(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/speed")).ok()?;
    let v: i64 = text.trim().parse().ok()?;
    (v > 0 && v < u32::MAX as i64).then_some(v as u32)
}
