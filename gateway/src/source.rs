//! Who a request comes from, for the limits that count per source: the
//! TCP peer, grouped by [`source_of`] (an IPv4 address, an IPv6 /64); or,
//! only when that peer is a configured trusted proxy, the client address
//! the proxies put in `X-Forwarded-For` or `Forwarded`. A header from
//! anyone else is not believed: any client can write one.
//!
//! [`attach`] works this out once per request and leaves it in the
//! request as a [`ClientSource`], which handlers take as an extractor.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

/// What counts as one source. An IPv4 address as it is (also when it
/// arrives mapped into IPv6); an IPv6 address by its /64, because one host
/// is usually given a whole /64 and could otherwise use as many addresses
/// as it likes.
pub fn source_of(ip: IpAddr) -> IpAddr {
    match unmapped(ip) {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// An IPv4 address mapped into IPv6 as the IPv4 address it is.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Why a `trusted_proxies` item was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("{0:?} is not an IP address or an address/prefix")]
    NotAnAddress(String),
    #[error("{0:?}: the prefix length is more than the address has bits")]
    PrefixTooLong(String),
    #[error("{given:?} has bits set past its prefix; did you mean {meant}?")]
    HostBitsSet { given: String, meant: String },
}

/// An address block: `192.0.2.0/24`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix_bits: u8,
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// The top `prefix_bits` of a `width`-bit number, the rest zero.
fn mask(width: u8, prefix_bits: u8) -> u128 {
    if prefix_bits == 0 {
        return 0;
    }
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    all & !((1u128 << (width - prefix_bits)) - 1)
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (want, width) = bits(self.addr);
        let (got, got_width) = bits(unmapped(ip));
        width == got_width && got & mask(width, self.prefix_bits) == want
    }
}

impl FromStr for Network {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Self, NetworkError> {
        let bad = || NetworkError::NotAnAddress(s.to_string());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr = unmapped(IpAddr::from_str(addr).map_err(|_| bad())?);
        let (value, width) = bits(addr);
        let prefix_bits = match prefix {
            None => width,
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
        };
        if prefix_bits > width {
            return Err(NetworkError::PrefixTooLong(s.to_string()));
        }
        // A typo such as 10.1.2.3/8 would trust far more than was meant.
        let kept = value & mask(width, prefix_bits);
        if kept != value {
            let meant = match addr {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(kept as u32)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(kept)),
            };
            return Err(NetworkError::HostBitsSet {
                given: s.to_string(),
                meant: format!("{meant}/{prefix_bits}"),
            });
        }
        Ok(Self { addr, prefix_bits })
    }
}

/// The reverse proxies and load balancers in front of the gateway whose
/// forwarding headers are believed. Empty (the default): none, every
/// source is the TCP peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, NetworkError> {
        items
            .iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One hop of a forwarding header: an address, or something else (a
/// proxy's `unknown`, an obfuscated `_name`, garbage).
fn hop_address(item: &str) -> Option<IpAddr> {
    let item = item.trim().trim_matches('"');
    if let Ok(ip) = IpAddr::from_str(item) {
        return Some(ip);
    }
    if let Ok(sa) = SocketAddr::from_str(item) {
        return Some(sa.ip());
    }
    // `[2001:db8::1]` without a port.
    let inner = item.strip_prefix('[')?.strip_suffix(']')?;
    IpAddr::from_str(inner).ok()
}

/// The `for=` values of every `Forwarded` line, first hop first
/// (RFC 7239: elements by commas, pairs by semicolons, names in any case).
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<String>> {
    let lines: Vec<&str> = headers
        .get_all(axum::http::header::FORWARDED)
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(
        lines
            .iter()
            .flat_map(|l| l.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .map_or_else(String::new, |(_, v)| v.trim().to_string())
            })
            .collect(),
    )
}

/// The hops of every `X-Forwarded-For` line, first hop first.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<String>> {
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(
        lines
            .iter()
            .flat_map(|l| l.split(','))
            .map(|h| h.trim().to_string())
            .collect(),
    )
}

/// The address a request is from. The TCP `peer`, unless the peer is a
/// trusted proxy: then the rightmost address of the forwarding header
/// that is not itself a trusted proxy, since each trusted proxy appends
/// the address it got the request from, and everything left of that is
/// whatever the client chose to write. Not believed either way:
/// - both `Forwarded` and `X-Forwarded-For`: a proxy writes one, and the
///   other may be the client's own; which is which cannot be told, so the
///   request counts as the peer's;
/// - a hop that is not an address (`unknown`, an obfuscated name): the
///   trusted proxy that wrote it is the source.
///
/// If every hop is a trusted proxy, the first is the source.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let hops = match (forwarded_for(headers), x_forwarded_for(headers)) {
        (Some(f), None) => f,
        (None, Some(x)) => x,
        _ => return peer,
    };
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match hop_address(hop) {
            Some(ip) if trusted.contains(ip) => nearest = ip,
            Some(ip) => return ip,
            None => return nearest,
        }
    }
    nearest
}

/// The source a request counts against (already grouped by
/// [`source_of`]). Set by [`attach`]; without it (a router served without
/// that layer), the TCP peer; without a peer (a router called in a test),
/// the unspecified address, one source for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientSource(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientSource {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        if let Some(s) = parts.extensions.get::<ClientSource>() {
            return Ok(*s);
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(ClientSource(source_of(peer)))
    }
}

/// Middleware: works out the request's [`ClientSource`] once.
pub async fn attach(
    trusted: std::sync::Arc<TrustedProxies>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let client = client_address(peer, req.headers(), &trusted);
    req.extensions_mut().insert(ClientSource(source_of(client)));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_slash_64s() {
        let v4 = ip("192.0.2.7");
        assert_eq!(source_of(v4), v4);
        assert_eq!(source_of(ip("::ffff:192.0.2.7")), v4);
        assert_eq!(
            source_of(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(
            source_of(ip("2001:db8:1:2::1")),
            source_of(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn networks_parse_and_hold_what_they_say() {
        let n: Network = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("10.255.0.1")));
        assert!(n.contains(ip("::ffff:10.1.1.1")), "mapped IPv4 too");
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(!n.contains(ip("::a00:1")), "an IPv6 address is not IPv4");
        let one: Network = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.1")));
        let v6_one: Network = "::1".parse().unwrap();
        assert!(v6_one.contains(ip("::1")) && !v6_one.contains(ip("::2")));
        assert_eq!(
            "10.1.2.3/8".parse::<Network>(),
            Err(NetworkError::HostBitsSet {
                given: "10.1.2.3/8".into(),
                meant: "10.0.0.0/8".into()
            })
        );
        assert!(matches!(
            "10.0.0.0/33".parse::<Network>(),
            Err(NetworkError::PrefixTooLong(_))
        ));
        for bad in ["", "proxy.example", "10.0.0.0/x", "10.0.0.0/-1", "1.2.3"] {
            assert!(
                matches!(bad.parse::<Network>(), Err(NetworkError::NotAnAddress(_))),
                "{bad:?}"
            );
        }
    }

    /// The peer, its headers, who is believed, and why.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);

    /// Who is believed: the peer, the headers, and the answer.
    #[test]
    fn forwarding_headers_are_believed_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"]).unwrap();
        let table: &[Case] = &[
            // (peer, headers, who is believed, why)
            ("203.0.113.9", &[], "203.0.113.9", "no proxy, no header"),
            (
                "203.0.113.9",
                &[("x-forwarded-for", "198.51.100.1")],
                "203.0.113.9",
                "an untrusted peer's header is its own word",
            ),
            (
                "203.0.113.9",
                &[("forwarded", "for=198.51.100.1")],
                "203.0.113.9",
                "nor its Forwarded",
            ),
            ("127.0.0.1", &[], "127.0.0.1", "a proxy's own request"),
            (
                "127.0.0.1",
                &[("x-forwarded-for", "198.51.100.1")],
                "198.51.100.1",
                "the proxy's word",
            ),
            (
                "127.0.0.1",
                &[("x-forwarded-for", "192.0.2.66, 198.51.100.1")],
                "198.51.100.1",
                "left of the proxy's hop is the client's own writing",
            ),
            (
                "127.0.0.1",
                &[("x-forwarded-for", "198.51.100.1, 10.1.1.1")],
                "198.51.100.1",
                "a chain of trusted proxies is walked back",
            ),
            (
                "127.0.0.1",
                &[
                    ("x-forwarded-for", "192.0.2.66"),
                    ("x-forwarded-for", "198.51.100.1"),
                ],
                "198.51.100.1",
                "repeated lines are one list, in order",
            ),
            (
                "127.0.0.1",
                &[("x-forwarded-for", "10.0.0.5, 10.1.1.1")],
                "10.0.0.5",
                "all trusted: the first",
            ),
            (
                "127.0.0.1",
                &[("x-forwarded-for", "198.51.100.1, unknown")],
                "127.0.0.1",
                "a hop that is no address: the proxy that wrote it",
            ),
            (
                "127.0.0.1",
                &[("x-forwarded-for", "198.51.100.1, garbage, 10.2.2.2")],
                "10.2.2.2",
                "the nearest trusted hop before the garbage",
            ),
            (
                "127.0.0.1",
                &[("x-forwarded-for", "")],
                "127.0.0.1",
                "an empty header",
            ),
            (
                "127.0.0.1",
                &[("x-forwarded-for", "198.51.100.1:4711")],
                "198.51.100.1",
                "with a port",
            ),
            (
                "127.0.0.1",
                &[("x-forwarded-for", "2001:db9::7")],
                "2001:db9::7",
                "a bare IPv6 hop",
            ),
            (
                "127.0.0.1",
                &[(
                    "forwarded",
                    "for=192.0.2.66;proto=https, For=\"[2001:db9::17]:4711\";by=10.0.0.1",
                )],
                "2001:db9::17",
                "Forwarded: for= in any case, quoted, bracketed, with a port",
            ),
            (
                "127.0.0.1",
                &[("forwarded", "proto=https;by=10.0.0.1")],
                "127.0.0.1",
                "a Forwarded element without for=",
            ),
            (
                "127.0.0.1",
                &[("forwarded", "for=_hidden")],
                "127.0.0.1",
                "an obfuscated identifier",
            ),
            (
                "127.0.0.1",
                &[
                    ("forwarded", "for=192.0.2.66"),
                    ("x-forwarded-for", "198.51.100.1"),
                ],
                "127.0.0.1",
                "both headers: one may be the client's, so neither",
            ),
            (
                "::ffff:127.0.0.1",
                &[("x-forwarded-for", "198.51.100.1")],
                "198.51.100.1",
                "a trusted peer mapped into IPv6",
            ),
            (
                "2001:db8::1",
                &[("x-forwarded-for", "198.51.100.1")],
                "198.51.100.1",
                "a trusted IPv6 peer",
            ),
        ];
        for (peer, headers, believed, why) in table {
            let mut h = HeaderMap::new();
            for (n, v) in *headers {
                h.append(*n, v.parse().unwrap());
            }
            assert_eq!(
                client_address(ip(peer), &h, &trusted),
                ip(believed),
                "{why}: peer {peer}, {headers:?}"
            );
        }
        // With no proxies configured, nothing is believed.
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "198.51.100.1".parse().unwrap());
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &TrustedProxies::default()),
            ip("127.0.0.1")
        );
    }
}
