//! The few socket options no safe wrapper offers. This is the crate's only unsafe code.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

/// Lets a raw ICMPv4 socket receive only echo replies and the errors that can answer a probe,
/// so the kernel does not wake us for every echo request crossing the host.
pub fn set_icmp4_filter(fd: &impl AsRawFd) -> io::Result<()> {
    // Bit n set = drop type n. Keep 0 (echo reply), 3 (unreachable), 11 (time exceeded), 12.
    let keep: u32 = (1 << 0) | (1 << 3) | (1 << 11) | (1 << 12);
    let filter: u32 = !keep;
    const ICMP_FILTER: libc::c_int = 1;
    // SAFETY: fd is an open socket; the option value is a plain u32 that outlives the call,
    // and its size is passed exactly.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_RAW,
            ICMP_FILTER,
            (&filter as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Lets a raw ICMPv6 socket receive only echo replies and errors (types 1-4, 129).
pub fn set_icmp6_filter(fd: &impl AsRawFd) -> io::Result<()> {
    // struct icmp6_filter: 256 bits, bit set = block (Linux semantics).
    let mut filter = [u32::MAX; 8];
    for t in [1u8, 2, 3, 4, 129] {
        filter[usize::from(t >> 5)] &= !(1u32 << (t & 31));
    }
    const ICMP6_FILTER: libc::c_int = 1;
    // SAFETY: fd is an open socket; the option value is a 32-byte array that outlives the call,
    // and its size is passed exactly.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filter.as_ptr().cast(),
            std::mem::size_of_val(&filter) as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
