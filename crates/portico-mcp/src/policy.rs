//! The remote URL policy (DESIGN §6): https, or http to loopback when allowed; private,
//! link-local, shared and metadata addresses refused unless allow-listed. Checked on the URL
//! and again on every address that DNS returns, so a name cannot smuggle a private address in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::Url;

/// A range of addresses written as `address/prefix-length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses `10.0.0.0/8`, `fd00::/8` or a single address.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let bad = || PolicyError::BadRange(text.to_string());
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` lies in this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
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

/// Which remote URLs and addresses the client may connect to.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    /// Allow loopback addresses, and plain http to them (development, tests).
    pub allow_loopback: bool,
    /// Private, link-local, shared or metadata ranges that are allowed anyway.
    pub allow: Vec<IpRange>,
}

/// Why a URL or address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not an absolute URL.
    #[error("the remote URL is not an absolute http or https URL")]
    NotAUrl,
    /// A scheme other than https (or http to loopback when allowed).
    #[error("the remote URL must use https{}, found {scheme}", if *.loopback_http { " (or http to loopback)" } else { "" })]
    Scheme {
        /// The refused scheme.
        scheme: String,
        /// Whether http to loopback would have been accepted.
        loopback_http: bool,
    },
    /// Plain http to a host that is not loopback.
    #[error("plain http is allowed only to loopback, not to {host}")]
    HttpNotLoopback {
        /// The host.
        host: String,
    },
    /// User name or password in the URL.
    #[error("the remote URL must not carry a user name or password")]
    UserInfo,
    /// An address in a refused class.
    #[error(
        "{addr} is a {class} address, which Portico does not connect to unless it is allow-listed"
    )]
    Address {
        /// The refused address.
        addr: IpAddr,
        /// Its class (loopback, private, link-local or metadata, ...).
        class: AddressClass,
    },
    /// DNS returned nothing usable.
    #[error("{host} did not resolve to any address Portico may connect to")]
    NoAddress {
        /// The host name.
        host: String,
    },
    /// A redirect to another origin.
    #[error("refused a redirect from {from} to another origin ({to})")]
    CrossOriginRedirect {
        /// Origin of the remote.
        from: String,
        /// Origin the server redirected to.
        to: String,
    },
    /// The SSE endpoint event named another origin.
    #[error(
        "the SSE endpoint event points to another origin ({to}, expected {expected}); no credentials were sent to it"
    )]
    CrossOriginEndpoint {
        /// Origin of the remote.
        expected: String,
        /// Origin of the endpoint.
        to: String,
    },
    /// An allow-list entry that does not parse.
    #[error("\"{0}\" is not an IP address or range")]
    BadRange(String),
}

/// The class of an IP address, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// A public unicast address.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, unique-local IPv6.
    Private,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// Cloud metadata services.
    Metadata,
    /// 100.64.0.0/10 (carrier-grade NAT).
    Shared,
    /// Unspecified, broadcast, multicast, documentation and other reserved ranges.
    Reserved,
}

impl std::fmt::Display for AddressClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Metadata => "cloud metadata",
            AddressClass::Shared => "shared (carrier-grade NAT)",
            AddressClass::Reserved => "reserved",
        })
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Classifies an address (IPv4-mapped IPv6 addresses as their IPv4 address).
pub fn classify(ip: IpAddr) -> AddressClass {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        AddressClass::Metadata
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        AddressClass::Shared
    } else if o[0] == 0
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] >= 240
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    if s == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] {
        AddressClass::Metadata
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if (s[0] & 0xfe00) == 0xfc00 {
        AddressClass::Private
    } else if (s[0] & 0xffc0) == 0xfe80 {
        AddressClass::LinkLocal
    } else if ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] == 0x2001 && s[1] == 0xdb8)
        || (s[0] == 0x64 && s[1] == 0xff9b)
        || s[0] == 0x2002
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

impl UrlPolicy {
    /// The policy for development and tests: loopback allowed, nothing else private.
    pub fn loopback_allowed() -> Self {
        Self {
            allow_loopback: true,
            allow: Vec::new(),
        }
    }

    /// Checks one address that a connection would go to.
    pub fn check_addr(&self, ip: IpAddr) -> Result<(), PolicyError> {
        if self.allow.iter().any(|r| r.contains(ip)) {
            return Ok(());
        }
        match classify(ip) {
            AddressClass::Public => Ok(()),
            AddressClass::Loopback if self.allow_loopback => Ok(()),
            class => Err(PolicyError::Address {
                addr: canonical(ip),
                class,
            }),
        }
    }

    /// Checks a remote URL before any connection: scheme, user info, and the host when it is
    /// an address. Names are checked again after resolution ([`PolicyResolver`]).
    pub fn check_url(&self, url: &Url) -> Result<(), PolicyError> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(PolicyError::UserInfo);
        }
        let host = url.host().ok_or(PolicyError::NotAUrl)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback => {
                let loopback = match &host {
                    url::Host::Domain(d) => is_localhost_name(d),
                    url::Host::Ipv4(ip) => ip.is_loopback(),
                    url::Host::Ipv6(ip) => ip.is_loopback(),
                };
                if !loopback {
                    return Err(PolicyError::HttpNotLoopback {
                        host: host.to_string(),
                    });
                }
            }
            other => {
                return Err(PolicyError::Scheme {
                    scheme: other.to_string(),
                    loopback_http: self.allow_loopback,
                });
            }
        }
        match host {
            url::Host::Ipv4(ip) => self.check_addr(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => self.check_addr(IpAddr::V6(ip)),
            url::Host::Domain(_) => Ok(()),
        }
    }

    /// Parses and checks a remote URL.
    pub fn parse_url(&self, text: &str) -> Result<Url, PolicyError> {
        let url = Url::parse(text).map_err(|_| PolicyError::NotAUrl)?;
        self.check_url(&url)?;
        Ok(url)
    }
}

fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// The ASCII origin of a URL, for comparisons and messages (never carries a path or query).
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A DNS resolver for reqwest that drops every address the policy refuses, and fails when
/// none is left: the check happens after resolution, on the addresses actually dialled.
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    policy: Arc<UrlPolicy>,
}

impl PolicyResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: Arc<UrlPolicy>) -> Self {
        Self { policy }
    }
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let mut kept = Vec::new();
            for addr in found {
                match policy.check_addr(addr.ip()) {
                    Ok(()) => kept.push(addr),
                    Err(e) => refused = Some(e),
                }
            }
            if kept.is_empty() {
                let err = refused.unwrap_or(PolicyError::NoAddress { host });
                return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let c = |s: &str| classify(s.parse().unwrap());
        assert_eq!(c("169.254.169.254"), AddressClass::Metadata);
        assert_eq!(c("::ffff:169.254.169.254"), AddressClass::Metadata);
        assert_eq!(c("fd00:ec2::254"), AddressClass::Metadata);
        assert_eq!(c("10.1.2.3"), AddressClass::Private);
        assert_eq!(c("172.16.0.1"), AddressClass::Private);
        assert_eq!(c("192.168.1.1"), AddressClass::Private);
        assert_eq!(c("169.254.1.1"), AddressClass::LinkLocal);
        assert_eq!(c("fe80::1"), AddressClass::LinkLocal);
        assert_eq!(c("fc00::1"), AddressClass::Private);
        assert_eq!(c("100.64.0.1"), AddressClass::Shared);
        assert_eq!(c("127.0.0.1"), AddressClass::Loopback);
        assert_eq!(c("::1"), AddressClass::Loopback);
        assert_eq!(c("0.0.0.0"), AddressClass::Reserved);
        assert_eq!(c("8.8.8.8"), AddressClass::Public);
        assert_eq!(c("2606:4700::1111"), AddressClass::Public);
    }

    #[test]
    fn urls() {
        let strict = UrlPolicy::default();
        let dev = UrlPolicy::loopback_allowed();
        assert!(strict.parse_url("https://mcp.example.com/mcp").is_ok());
        assert!(strict.parse_url("http://127.0.0.1:3000/mcp").is_err());
        assert!(dev.parse_url("http://127.0.0.1:3000/mcp").is_ok());
        assert!(dev.parse_url("http://localhost:3000/mcp").is_ok());
        assert!(dev.parse_url("http://example.com/mcp").is_err());
        assert!(dev.parse_url("https://169.254.169.254/latest").is_err());
        assert!(dev.parse_url("https://[::ffff:10.0.0.1]/").is_err());
        assert!(dev.parse_url("https://user:pw@example.com/").is_err());
        assert!(dev.parse_url("ftp://example.com/").is_err());
        let allowed = UrlPolicy {
            allow_loopback: false,
            allow: vec![IpRange::parse("10.0.0.0/8").unwrap()],
        };
        assert!(allowed.parse_url("https://10.2.3.4/mcp").is_ok());
        assert!(allowed.parse_url("https://11.2.3.4/mcp").is_ok());
        assert!(allowed.parse_url("https://192.168.0.1/mcp").is_err());
    }
}
