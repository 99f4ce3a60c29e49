//! Name resolution, once per target at start (getaddrinfo, so /etc/hosts and scopes work).

use crate::error::ResolveError;
use std::net::{IpAddr, ToSocketAddrs};

/// Which address family to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// Whatever the resolver lists first.
    #[default]
    Any,
    /// IPv4 only (`-4`).
    V4,
    /// IPv6 only (`-6`).
    V6,
}

/// Resolves `host` to one address of the wanted family. Literals never touch the resolver.
pub fn resolve(host: &str, family: Family) -> Result<IpAddr, ResolveError> {
    let candidates: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => (host, 0)
            .to_socket_addrs()
            .map_err(|source| ResolveError::Lookup {
                host: host.to_string(),
                source,
            })?
            .map(|sa| sa.ip())
            .collect(),
    };
    let fits = |ip: &IpAddr| match family {
        Family::Any => true,
        Family::V4 => ip.is_ipv4(),
        Family::V6 => ip.is_ipv6(),
    };
    candidates
        .into_iter()
        .find(fits)
        .ok_or_else(|| ResolveError::NoAddressOfFamily {
            host: host.to_string(),
            family: if family == Family::V6 { "IPv6" } else { "IPv4" },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_families() {
        assert_eq!(
            resolve("127.0.0.1", Family::Any).ok(),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        assert!(matches!(
            resolve("127.0.0.1", Family::V6),
            Err(ResolveError::NoAddressOfFamily { .. })
        ));
        assert!(resolve("::1", Family::V6).is_ok());
        assert!(resolve("localhost", Family::V4).is_ok());
    }
}
