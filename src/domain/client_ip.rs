//! Which address a request came from, for per-IP rate limits. The peer of
//! the connection is the client, unless it is a proxy the operator trusts:
//! then the proxy's `X-Forwarded-For` names the client. Only trusted
//! proxies are believed, or anyone could pick their own address and walk
//! around the limits.
use std::net::IpAddr;
use std::str::FromStr;

/// Address ranges whose forwarding headers are believed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:1.2.3.4`) is the
/// IPv4 client, for trust and for its rate limits alike.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of addresses and CIDR ranges; "none" or an
    /// empty string trusts no proxy.
    fn from_str(s: &str) -> Result<TrustedProxies, String> {
        let s = s.trim();
        if s.is_empty() || s == "none" {
            return Ok(TrustedProxies(Vec::new()));
        }
        s.split(',')
            .map(|item| {
                let item = item.trim();
                let (addr, prefix) = match item.split_once('/') {
                    Some((addr, prefix)) => (addr, Some(prefix)),
                    None => (item, None),
                };
                let network: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("{item:?} is not an IP address or CIDR range"))?;
                let network = canonical(network);
                let max = if network.is_ipv4() { 32 } else { 128 };
                let prefix = match prefix {
                    None => max,
                    Some(p) => p
                        .parse::<u8>()
                        .ok()
                        .filter(|p| *p <= max)
                        .ok_or_else(|| format!("{item:?} has an invalid prefix length"))?,
                };
                Ok(Cidr { network, prefix })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }
}

impl TrustedProxies {
    /// The loopback ranges: a proxy on the same host.
    pub fn loopback() -> TrustedProxies {
        "127.0.0.0/8,::1".parse().expect("valid ranges")
    }

    pub fn none() -> TrustedProxies {
        TrustedProxies(Vec::new())
    }

    /// Whether no proxy at all is trusted ("none").
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    /// The client's address. `peer` is the connection's other end, `None`
    /// for a call from the in-process shim (which only this process can
    /// make, so it is trusted). `forwarded` is the X-Forwarded-For value, read from the
    /// right: each trusted hop vouches for the one before it, and the first
    /// address that is not a trusted proxy is the client. `None` when the
    /// address cannot be told (an in-process call that forwarded nothing).
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded: Option<&str>) -> Option<IpAddr> {
        let peer = peer.map(canonical);
        if let Some(peer) = peer
            && !self.trusts(peer)
        {
            return Some(peer);
        }
        let mut client = peer;
        for hop in forwarded.unwrap_or_default().rsplit(',') {
            let Some(ip) = parse_hop(hop) else {
                // Garbage in the header: stop believing it here.
                break;
            };
            client = Some(ip);
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// One X-Forwarded-For entry: an address, possibly with a port (and, for
/// IPv6, in brackets).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    let inner = hop.strip_prefix('[')?.split(']').next()?;
    inner.parse().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_match() {
        let trusted: TrustedProxies = "10.0.0.0/8, 192.168.1.7, fd00::/8".parse().unwrap();
        assert!(trusted.trusts(ip("10.200.3.4")));
        assert!(trusted.trusts(ip("192.168.1.7")));
        assert!(!trusted.trusts(ip("192.168.1.8")));
        assert!(trusted.trusts(ip("fd12::1")));
        assert!(!trusted.trusts(ip("fe80::1")));
        assert!(trusted.trusts(ip("::ffff:10.1.2.3")));
        assert!(
            "0.0.0.0/0"
                .parse::<TrustedProxies>()
                .unwrap()
                .trusts(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
        assert_eq!(
            "none".parse::<TrustedProxies>().unwrap(),
            TrustedProxies::none()
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = TrustedProxies::loopback();
        assert_eq!(
            trusted.client_ip(Some(ip("203.0.113.9")), Some("198.51.100.1")),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_hops_to_the_left_are_ignored() {
        let trusted: TrustedProxies = "127.0.0.1,10.0.0.0/8".parse().unwrap();
        // client 203.0.113.9 claims to be 1.1.1.1; its proxy 10.0.0.2 adds
        // the real address, and the local proxy adds 10.0.0.2.
        assert_eq!(
            trusted.client_ip(
                Some(ip("127.0.0.1")),
                Some("1.1.1.1, 203.0.113.9, 10.0.0.2")
            ),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            trusted.client_ip(Some(ip("127.0.0.1")), None),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(
            trusted.client_ip(Some(ip("127.0.0.1")), Some("garbage")),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(
            trusted.client_ip(Some(ip("127.0.0.1")), Some("[2001:db8::1]:443")),
            Some(ip("2001:db8::1"))
        );
    }

    #[test]
    fn a_unix_socket_peer_is_trusted() {
        let trusted = TrustedProxies::none();
        assert_eq!(
            trusted.client_ip(None, Some("198.51.100.1")),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(trusted.client_ip(None, None), None);
    }
}
