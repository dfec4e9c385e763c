//! Who the client is: the TCP peer, or, when the peer is one of
//! `server.trusted_proxies`, the address that proxy reports in `Forwarded`
//! (RFC 7239) or `X-Forwarded-For`.
//!
//! The headers are read only from a trusted peer, and only the hops that
//! trusted proxies appended count: the chain is read from the right, and
//! the first hop that is not a trusted proxy is the client. Anything to its
//! left was written by the client and proves nothing. A header that cannot
//! be read is ignored, never an error.
//!
//! Every use of the client's address (rate limits, the consent record, the
//! access log) goes through [`ClientAddr`], resolved once per request.

use std::fmt;
use std::future::{Ready, ready};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use actix_web::dev::Payload;
use actix_web::http::header::{FORWARDED, HeaderMap};
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use crate::config::TrustedProxies;

/// The client's address, as far as this server can know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(IpAddr);

impl ClientAddr {
    /// The client of `req`, resolved on first use and kept with the request;
    /// `None` only when the connection has no IP peer (not over TCP).
    pub fn of(req: &HttpRequest) -> Option<Self> {
        if let Some(known) = req.extensions().get::<ClientAddr>() {
            return Some(*known);
        }
        let none = TrustedProxies::default();
        let trusted = req.app_data::<TrustedProxies>().unwrap_or(&none);
        let client = Self::resolve(req.peer_addr(), req.headers(), trusted)?;
        req.extensions_mut().insert(client);
        Some(client)
    }

    /// The rule itself: the peer, unless it is a trusted proxy, in which
    /// case the rightmost hop of the forwarding chain that is not one.
    pub fn resolve(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &TrustedProxies) -> Option<Self> {
        let peer = peer?.ip().to_canonical();
        if !trusted.contains(peer) {
            return Some(Self(peer));
        }
        let mut nearest = peer;
        for hop in forwarding_chain(headers).into_iter().rev() {
            match hop {
                Some(ip) if trusted.contains(ip) => nearest = ip,
                Some(ip) => return Some(Self(ip)),
                // A trusted proxy did not know (or hid) its client: the
                // proxy is the best we have.
                None => break,
            }
        }
        Some(Self(nearest))
    }

    pub fn ip(&self) -> IpAddr {
        self.0
    }

    /// What rate limits count by: the address, or for IPv6 its /64 (one
    /// subscriber line usually gets a whole /64, and picks any address in it).
    pub fn rate_limit_key(&self) -> IpAddr {
        match self.0 {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        }
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `ClientAddr` as a handler argument; refused (400) only for a request
/// that did not come over TCP/IP, which a real server never sees.
impl FromRequest for ClientAddr {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(ClientAddr::of(req).ok_or_else(|| actix_web::error::ErrorBadRequest("no client address")))
    }
}

/// The hops the forwarding headers list, nearest last: `Forwarded` when
/// there is one, else `X-Forwarded-For`. A header that cannot be read gives
/// no hops at all (not the other header: the proxy may have appended to the
/// unreadable one, and then the other is the client's own invention).
fn forwarding_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    if headers.contains_key(FORWARDED) {
        forwarded_hops(headers)
    } else {
        x_forwarded_for_hops(headers)
    }
    .unwrap_or_default()
}

/// The `for=` of each element of every `Forwarded` line, in order; `None`
/// when it cannot be read as a whole.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for line in headers.get_all(FORWARDED) {
        let line = line.to_str().ok()?;
        for element in split_outside_quotes(line, ',')? {
            let mut hop = None;
            for pair in split_outside_quotes(element, ';')? {
                let Some((name, value)) = pair.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("for") {
                    hop = parse_node(&unquote(value.trim())?);
                }
            }
            hops.push(hop);
        }
    }
    Some(hops)
}

/// Each entry of every `X-Forwarded-For` line, in order.
fn x_forwarded_for_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for line in headers.get_all("x-forwarded-for") {
        let line = line.to_str().ok()?;
        hops.extend(line.split(',').map(|entry| parse_node(entry.trim())));
    }
    Some(hops)
}

/// Splits at `sep` where it is not inside a quoted string; `None` for an
/// unterminated quote.
fn split_outside_quotes(text: &str, sep: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

/// A token as it is, or a quoted string without its quotes and escapes.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711`; `unknown`, obfuscated names and junk give `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return ip.parse::<Ipv6Addr>().ok().map(|ip| IpAddr::V6(ip).to_canonical());
    }
    node.parse::<SocketAddr>().ok().map(|a| a.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        map
    }

    fn client(peer: &str, lines: &[(&str, &str)], trusted: &str) -> String {
        let peer: SocketAddr = peer.parse().unwrap();
        let trusted = TrustedProxies::parse(trusted).unwrap();
        ClientAddr::resolve(Some(peer), &headers(lines), &trusted)
            .unwrap()
            .to_string()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let claims = [("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=203.0.113.9")];
        assert_eq!(client("192.0.2.7:5000", &claims, ""), "192.0.2.7");
        assert_eq!(client("192.0.2.7:5000", &claims, "10.0.0.0/8"), "192.0.2.7");
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let proxy = "10.0.0.2:40000";
        // The client's own claim (left) is ignored; the proxy appended the rest.
        let xff = [("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.0.0.3")];
        assert_eq!(client(proxy, &xff, "10.0.0.0/8"), "203.0.113.9");
        // Repeated header lines are one list, in order.
        let split = [("x-forwarded-for", "198.51.100.1"), ("x-forwarded-for", "203.0.113.9")];
        assert_eq!(client(proxy, &split, "10.0.0.2"), "203.0.113.9");
        let fwd = [(
            "forwarded",
            r#"for=198.51.100.1, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.3;by=10.0.0.2"#,
        )];
        assert_eq!(client(proxy, &fwd, "10.0.0.0/8"), "2001:db8:cafe::17");
        // Forwarded wins over X-Forwarded-For when both are present.
        let both = [("forwarded", "for=192.0.2.60"), ("x-forwarded-for", "192.0.2.61")];
        assert_eq!(client(proxy, &both, "10.0.0.2"), "192.0.2.60");
    }

    #[test]
    fn a_chain_of_only_proxies_or_an_unknown_hop_stops_at_the_nearest_known_proxy() {
        let proxy = "10.0.0.2:40000";
        assert_eq!(
            client(proxy, &[("x-forwarded-for", "10.0.0.9, 10.0.0.3")], "10.0.0.0/8"),
            "10.0.0.9"
        );
        assert_eq!(
            client(proxy, &[("forwarded", "for=unknown, for=10.0.0.3")], "10.0.0.0/8"),
            "10.0.0.3"
        );
        assert_eq!(client(proxy, &[("forwarded", "for=_hidden")], "10.0.0.0/8"), "10.0.0.2");
        assert_eq!(client(proxy, &[], "10.0.0.0/8"), "10.0.0.2");
    }

    #[test]
    fn malformed_headers_are_ignored() {
        let proxy = "10.0.0.2:40000";
        for bad in [
            ("forwarded", r#"for="192.0.2.1"#),
            ("forwarded", "for=\"[2001:db8::1\""),
            ("x-forwarded-for", "not an address"),
            ("x-forwarded-for", ""),
            ("x-forwarded-for", "999.1.1.1"),
            ("forwarded", "for"),
        ] {
            assert_eq!(client(proxy, &[bad], "10.0.0.2"), "10.0.0.2", "{bad:?}");
        }
        // An unreadable Forwarded is not replaced by X-Forwarded-For.
        let both = [
            ("forwarded", r#"for="192.0.2.1, for=192.0.2.2"#),
            ("x-forwarded-for", "192.0.2.3"),
        ];
        assert_eq!(client(proxy, &both, "10.0.0.2"), "10.0.0.2");
        let mut map = HeaderMap::new();
        map.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        let trusted = TrustedProxies::parse("10.0.0.2").unwrap();
        let peer = Some("10.0.0.2:1".parse().unwrap());
        assert_eq!(
            ClientAddr::resolve(peer, &map, &trusted).unwrap().to_string(),
            "10.0.0.2"
        );
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_read() {
        assert_eq!(parse_node("192.0.2.1:80"), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(parse_node("[2001:db8::1]"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(parse_node("[2001:db8::1]:80"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(parse_node("::ffff:192.0.2.1"), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(parse_node("[2001:db8::1]x"), None);
        // A proxy seen over an IPv4-mapped socket is still that proxy.
        assert_eq!(
            client("[::ffff:10.0.0.2]:1", &[("x-forwarded-for", "192.0.2.5")], "10.0.0.2"),
            "192.0.2.5"
        );
    }

    #[test]
    fn ipv6_clients_share_a_limit_per_64() {
        let a = ClientAddr("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ClientAddr("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = ClientAddr("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a.rate_limit_key(), b.rate_limit_key());
        assert_ne!(a.rate_limit_key(), c.rate_limit_key());
        assert_eq!(a.rate_limit_key().to_string(), "2001:db8:1:2::");
        let v4 = ClientAddr("192.0.2.1".parse().unwrap());
        assert_eq!(v4.rate_limit_key().to_string(), "192.0.2.1");
        // The consent record keeps the whole address.
        assert_eq!(a.to_string(), "2001:db8:1:2:aaaa::1");
    }
}
