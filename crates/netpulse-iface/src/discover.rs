//! What a monitor without a config probes: the default gateways (`/proc/net/route`,
//! `/proc/net/ipv6_route`) and the nameservers (`/etc/resolv.conf`). Reading the files is
//! [`SystemFiles::read`]; the parsers are pure, so they are tested on text.

/// The text of the files discovery reads (empty where a file cannot be read).
#[derive(Debug, Clone, Default)]
pub struct SystemFiles {
    /// `/proc/net/route`.
    pub route: String,
    /// `/proc/net/ipv6_route`.
    pub ipv6_route: String,
    /// `/etc/resolv.conf`.
    pub resolv: String,
}

impl SystemFiles {
    /// Reads this machine's files (a missing one reads as empty: nothing found there).
    pub fn read() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        SystemFiles {
            route: read("/proc/net/route"),
            ipv6_route: read("/proc/net/ipv6_route"),
            resolv: read("/etc/resolv.conf"),
        }
    }
}

/// Default gateways from `/proc/net/route` (read by the `procfs` crate's parser) and
/// `/proc/net/ipv6_route` (which `procfs` does not parse: read here, its fields by position).
/// A route table the crate cannot read gives no IPv4 gateway, never an error.
pub fn default_gateways(route: &str, ipv6_route: &str) -> Vec<String> {
    use procfs::FromBufRead;
    let mut out = Vec::new();
    // RTF_GATEWAY: the route goes through a gateway.
    const RTF_GATEWAY: u16 = 0x2;
    let v4 = procfs::net::RouteEntries::from_buf_read(route.as_bytes())
        .map(|r| r.0)
        .unwrap_or_default();
    for r in v4 {
        let default = r.destination.is_unspecified() && r.mask.is_unspecified();
        if default && r.flags & RTF_GATEWAY != 0 && !r.gateway.is_unspecified() {
            let ip = r.gateway.to_string();
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    for line in ipv6_route.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // dest prefixlen src srclen nexthop metric refcnt use flags iface
        if f.len() < 10 || f[0] != "0".repeat(32) || f[1] != "00" {
            continue;
        }
        if let Ok(v) = u128::from_str_radix(f[4], 16) {
            if v != 0 {
                let ip = std::net::Ipv6Addr::from(v);
                // A link-local gateway needs its interface to be probed: name it.
                let text = if ip.segments()[0] & 0xffc0 == 0xfe80 {
                    format!("{ip}%{}", f[9])
                } else {
                    ip.to_string()
                };
                if !out.contains(&text) {
                    out.push(text);
                }
            }
        }
    }
    out
}

/// `nameserver` addresses from resolv.conf.
pub fn nameservers(resolv: &str) -> Vec<String> {
    resolv
        .lines()
        .filter_map(|l| l.split('#').next())
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_and_nameservers_from_their_files() {
        let route =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003 wlan0\n";
        assert_eq!(
            default_gateways(route, v6),
            ["192.168.1.1", "fe80::1%wlan0"]
        );
        let resolv = "# generated\nsearch lan\nnameserver 192.168.1.1\nnameserver 9.9.9.9 # quad9\nnameserver bogus\n";
        assert_eq!(nameservers(resolv), ["192.168.1.1", "9.9.9.9"]);
        assert!(default_gateways("", "").is_empty() && nameservers("").is_empty());
    }
}
