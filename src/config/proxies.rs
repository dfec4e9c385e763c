//! `server.trusted_proxies`, parsed. What the web layer believes of a
//! trusted peer's forwarding headers is `crate::web::client_addr`'s part.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;

/// An entry of `server.trusted_proxies` that is neither an address nor a
/// range; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` is not an IP address or CIDR range (such as 10.0.0.0/8)", .0.escape_debug())]
pub struct BadProxyEntry(String);

/// `server.trusted_proxies`: the addresses and CIDR ranges whose
/// forwarding headers are believed. Empty: none (the peer is the client).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Comma-separated entries, each an address (`10.0.0.5`, `::1`) or a
    /// range (`10.0.0.0/8`, `fd00::/8`); the error names the bad entry.
    pub fn parse(raw: &str) -> Result<Self, BadProxyEntry> {
        Self::from_entries(raw.split(','))
    }

    fn from_entries<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, BadProxyEntry> {
        let mut nets = Vec::new();
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            let net = match entry.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip.to_canonical()),
                Err(_) => entry.parse::<IpNet>().map_err(|_| BadProxyEntry(entry.to_owned()))?,
            };
            nets.push(net.trunc());
        }
        Ok(Self(nets.into()))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|n| n.to_string())).finish()
    }
}

/// A TOML list of strings, or one comma-separated string (the form an
/// environment variable gives).
impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let parsed = match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("must be a list of addresses or CIDR ranges"))?
        {
            Raw::One(list) => TrustedProxies::parse(&list),
            Raw::Many(entries) => TrustedProxies::from_entries(entries.iter().map(String::as_str)),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_are_addresses_or_ranges_and_a_bad_entry_is_named() {
        let list = TrustedProxies::parse(" 10.0.0.0/8, ::1 ,192.168.1.7,, fd00::/8").unwrap();
        assert!(list.contains("10.200.0.1".parse().unwrap()));
        assert!(list.contains("::1".parse().unwrap()));
        assert!(list.contains("192.168.1.7".parse().unwrap()));
        assert!(list.contains("fd12::5".parse().unwrap()));
        assert!(!list.contains("192.168.1.8".parse().unwrap()));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        let error = TrustedProxies::parse("10.0.0.1, 10.0.0.0/33").unwrap_err().to_string();
        assert!(error.contains("`10.0.0.0/33`"), "{error}");
        assert!(TrustedProxies::parse("proxy.example.org").is_err());
    }
}
