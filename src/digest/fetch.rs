//! Fetching a feed by URL without letting the URL reach what it should not.
//!
//! Staff (and the CLI) hand the server an address to fetch; unchecked, that
//! is a way into the machine's own network: `127.0.0.1`, the intranet, a
//! cloud's metadata service. Every hop (the first request and each
//! redirect, followed here by hand) is checked where the connection is
//! made: an address given as an IP is checked before the request, and a
//! host name is resolved by [`CheckedResolver`], which hands the HTTP
//! client only the addresses the policy permits, so the client connects to
//! exactly the addresses that were checked (no second lookup that DNS
//! rebinding could answer differently).
//!
//! Errors name the class of problem, never the operating system's error
//! text: "connection refused" against "timed out" would tell a caller which
//! ports are open.
//!
//! A source polled again sends back the validators of the answer it last
//! got ([`Validators`]: `If-None-Match`, `If-Modified-Since`), and a server
//! that has nothing new answers 304 Not Modified, which costs no body
//! ([`Fetcher::fetch_if_modified`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The largest feed fetched.
pub const MAX_FEED_BYTES: usize = 20 * 1024 * 1024;
/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;
/// The whole fetch, every hop and the body included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where an address points, as far as fetching is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The public internet.
    Public,
    /// This machine or a private network: loopback, RFC 1918, shared
    /// (carrier-grade NAT) space, unique-local IPv6. Fetched only when
    /// `feeds.allow_private_addresses` is on.
    Private,
    /// Never fetched: unspecified, link-local (where cloud metadata services
    /// live), multicast, broadcast, documentation, benchmarking and reserved
    /// ranges, and the known cloud metadata addresses.
    Forbidden,
}

/// Cloud metadata services outside the link-local range: AWS's IPv6
/// endpoint (inside fc00::/7) and Alibaba Cloud's (inside 100.64.0.0/10).
/// Forbidden even where private addresses are allowed.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
const METADATA_V4: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// Classifies an address (IANA special-purpose registries, RFC 6890).
pub fn reach(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => reach_v4(v4),
        IpAddr::V6(v6) => reach_v6(v6),
    }
}

fn reach_v4(ip: Ipv4Addr) -> Reach {
    if ip == METADATA_V4 {
        return Reach::Forbidden;
    }
    const PRIVATE: &[([u8; 4], u32)] = &[
        ([127, 0, 0, 0], 8),    // loopback
        ([10, 0, 0, 0], 8),     // RFC 1918
        ([172, 16, 0, 0], 12),  // RFC 1918
        ([192, 168, 0, 0], 16), // RFC 1918
        ([100, 64, 0, 0], 10),  // shared address space (RFC 6598)
    ];
    const FORBIDDEN: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network", unspecified
        ([169, 254, 0, 0], 16),  // link-local, cloud metadata (169.254.169.254)
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation
        ([198, 51, 100, 0], 24), // documentation
        ([203, 0, 113, 0], 24),  // documentation
        ([198, 18, 0, 0], 15),   // benchmarking
        ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, and 255.255.255.255 broadcast
    ];
    if FORBIDDEN.iter().any(|&(net, prefix)| in_v4(ip, net, prefix)) {
        Reach::Forbidden
    } else if PRIVATE.iter().any(|&(net, prefix)| in_v4(ip, net, prefix)) {
        Reach::Private
    } else {
        Reach::Public
    }
}

fn reach_v6(ip: Ipv6Addr) -> Reach {
    if ip == METADATA_V6 {
        return Reach::Forbidden;
    }
    if ip == Ipv6Addr::LOCALHOST {
        return Reach::Private;
    }
    if ip == Ipv6Addr::UNSPECIFIED {
        return Reach::Forbidden;
    }
    let segments = ip.segments();
    // Forms that carry an IPv4 address are as reachable as that address:
    // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated),
    // NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::).
    let low_v4 = Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32);
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0, 0, 0, 0, 0, 0, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return reach_v4(low_v4);
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        let [hi, lo] = [segments[1], segments[2]];
        return reach_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    const PRIVATE: &[([u16; 8], u32)] = &[
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),     // unique-local
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),    // site-local (deprecated)
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), // local-use NAT64
    ];
    const FORBIDDEN: &[([u16; 8], u32)] = &[
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),     // link-local
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),      // multicast
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64),      // discard-only
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),     // Teredo (hides an IPv4 address)
        ([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48),   // benchmarking
        ([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28),  // ORCHID
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),     // documentation
    ];
    if FORBIDDEN.iter().any(|&(net, prefix)| in_v6(ip, net, prefix)) {
        Reach::Forbidden
    } else if PRIVATE.iter().any(|&(net, prefix)| in_v6(ip, net, prefix)) {
        Reach::Private
    } else {
        Reach::Public
    }
}

/// Which addresses a fetch may connect to.
#[derive(Clone, Copy)]
pub struct FetchPolicy(fn(IpAddr) -> bool);

impl FetchPolicy {
    /// Public addresses only: the default.
    pub const PUBLIC_ONLY: Self = Self(|ip| reach(ip) == Reach::Public);
    /// Public and private addresses (`feeds.allow_private_addresses`), never
    /// the forbidden ones.
    pub const WITH_PRIVATE: Self = Self(|ip| reach(ip) != Reach::Forbidden);

    pub fn new(allow_private_addresses: bool) -> Self {
        if allow_private_addresses {
            Self::WITH_PRIVATE
        } else {
            Self::PUBLIC_ONLY
        }
    }

    /// Any other rule. The fetcher's tests use it to count one local test
    /// server as public, so the checks on each hop can be tried for real.
    pub const fn custom(permits: fn(IpAddr) -> bool) -> Self {
        Self(permits)
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        (self.0)(ip)
    }
}

impl fmt::Debug for FetchPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FetchPolicy")
    }
}

/// Why a feed could not be fetched: the class of problem, in words staff
/// can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("only http:// and https:// addresses can be fetched, not `{0}`")]
    NotWeb(String),
    #[error(
        "refused address: `{0}` is on this machine, a private network or a special-use address, \
         and feeds are fetched from public addresses only"
    )]
    RefusedAddress(String),
    #[error("`{0}` cannot be reached (the host is unknown, or the connection failed)")]
    Unreachable(String),
    #[error("timeout: `{url}` did not answer within {seconds} seconds")]
    Timeout { url: String, seconds: u64 },
    #[error("`{url}` answered HTTP status {status}")]
    Status { url: String, status: String },
    #[error("`{0}` redirects more than {MAX_REDIRECTS} times")]
    TooManyRedirects(String),
    #[error("`{0}` redirects to an address that cannot be used")]
    BadRedirect(String),
    #[error("too large: `{0}` is larger than {mb} MB", mb = MAX_FEED_BYTES / 1024 / 1024)]
    TooLarge(String),
}

/// The resolver the HTTP client uses: it looks a host up and keeps only the
/// addresses the policy permits. An empty answer fails the connection with
/// [`Refused`], which [`Fetcher::fetch`] finds in the error's causes.
struct CheckedResolver(FetchPolicy);

/// A host name whose every address the policy refuses.
#[derive(Debug)]
struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("every address of the host is refused")
    }
}

impl std::error::Error for Refused {}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let permitted: Vec<SocketAddr> = found.filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// A feed's bytes and the address they finally came from (the base for
/// relative links).
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub url: Url,
}

/// The longest validator kept: anything longer is no validator a server
/// meant to be sent back.
const MAX_VALIDATOR_BYTES: usize = 512;

/// What identifies the version of a feed a server sent (RFC 9110 §8.8):
/// its `ETag` and `Last-Modified`, kept as the server wrote them and sent
/// back on the next request as `If-None-Match` and `If-Modified-Since`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }

    /// The validators of an answer: header values of visible ASCII, of a
    /// sane length; anything else is left out (and so never sent back).
    fn of(response: &reqwest::Response) -> Self {
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR_BYTES)
                .map(str::to_owned)
        };
        Self {
            etag: header(reqwest::header::ETAG),
            last_modified: header(reqwest::header::LAST_MODIFIED),
        }
    }

    /// The conditional headers these validators make.
    fn headers(&self) -> reqwest::header::HeaderMap {
        use reqwest::header::{HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH};
        let mut headers = HeaderMap::new();
        let value = |v: &Option<String>| v.as_deref().and_then(|v| HeaderValue::from_str(v).ok());
        if let Some(etag) = value(&self.etag) {
            headers.insert(IF_NONE_MATCH, etag);
        }
        if let Some(date) = value(&self.last_modified) {
            headers.insert(IF_MODIFIED_SINCE, date);
        }
        headers
    }
}

/// What a conditional fetch found.
#[derive(Debug)]
pub enum Conditional {
    /// The server answered 304: the feed is as it was when the validators
    /// were given. No body was read.
    NotModified,
    /// A new version, with the validators to send next time.
    Modified { fetched: Fetched, validators: Validators },
}

/// Fetches feeds under one address policy.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: FetchPolicy,
    timeout: Duration,
}

impl Fetcher {
    pub fn new(policy: FetchPolicy) -> Self {
        Self::with_timeout(policy, FETCH_TIMEOUT)
    }

    /// A fetcher that gives up after `timeout` (tests use a short one).
    pub fn with_timeout(policy: FetchPolicy, timeout: Duration) -> Self {
        Self::build(
            policy,
            timeout,
            concat!("Gazette/", env!("CARGO_PKG_VERSION"), " (feed import)"),
        )
    }

    /// A client for outbound webhooks ([`Fetcher::post`]): the same address
    /// rules, checked at each connection.
    pub fn for_webhooks(policy: FetchPolicy, timeout: Duration) -> Self {
        Self::build(
            policy,
            timeout,
            concat!("Gazette/", env!("CARGO_PKG_VERSION"), " (webhooks)"),
        )
    }

    fn build(policy: FetchPolicy, timeout: Duration, user_agent: &'static str) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            // Each redirect is checked here, not followed by the client.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve and connect on our behalf, past the checks.
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver(policy)))
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .build()
            .expect("an HTTP client with rustls and no system configuration builds");
        Self {
            client,
            policy,
            timeout,
        }
    }

    /// Fetches `url`, following up to [`MAX_REDIRECTS`] redirects, each
    /// checked like the first address, within the timeout in all.
    pub async fn fetch(&self, url: &Url) -> Result<Fetched, FetchError> {
        match self.fetch_if_modified(url, &Validators::default()).await? {
            Conditional::Modified { fetched, .. } => Ok(fetched),
            // Without validators `follow` reports a 304 as a status; this
            // arm only keeps the match whole.
            Conditional::NotModified => Err(FetchError::Status {
                url: url.to_string(),
                status: reqwest::StatusCode::NOT_MODIFIED.to_string(),
            }),
        }
    }

    /// Fetches `url` as [`Fetcher::fetch`] does, asking for it only if it
    /// changed since the version `validators` describe: a 304 answer is
    /// [`Conditional::NotModified`]. Every hop carries the validators (a
    /// redirect answers before they matter); the policy, the size cap and
    /// the timeout are the same.
    pub async fn fetch_if_modified(&self, url: &Url, validators: &Validators) -> Result<Conditional, FetchError> {
        match tokio::time::timeout(self.timeout, self.follow(url.clone(), validators)).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out(url)),
        }
    }

    /// Refuses, before anything is registered, an address no fetch could
    /// use: not http(s), no host, an IP address the policy refuses, or a
    /// host name every address of which it refuses. A name that does not
    /// resolve now passes (the network may be down); its fetches say so.
    pub async fn check_address(&self, url: &Url) -> Result<(), FetchError> {
        self.check(url)?;
        let Some(Host::Domain(name)) = url.host() else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(80);
        match tokio::net::lookup_host((name, port)).await {
            Ok(found) => {
                let found: Vec<SocketAddr> = found.collect();
                if !found.is_empty() && !found.iter().any(|a| self.policy.permits(a.ip())) {
                    return Err(FetchError::RefusedAddress(url.to_string()));
                }
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    /// Posts `body` as JSON with `headers` to `url` (checked like a fetch's
    /// first hop; a redirect is not followed) within the timeout, and
    /// returns the answer's status; the answer's body is not read.
    pub async fn post(
        &self,
        url: &Url,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    ) -> Result<reqwest::StatusCode, FetchError> {
        self.check(url)?;
        let request = self
            .client
            .post(url.clone())
            .headers(headers)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send();
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(response)) => Ok(response.status()),
            Ok(Err(e)) => Err(self.classify(&e, url)),
            Err(_) => Err(self.timed_out(url)),
        }
    }

    fn timed_out(&self, url: &Url) -> FetchError {
        FetchError::Timeout {
            url: url.to_string(),
            seconds: self.timeout.as_secs(),
        }
    }

    async fn follow(&self, mut current: Url, validators: &Validators) -> Result<Conditional, FetchError> {
        for hop in 0..=MAX_REDIRECTS {
            self.check(&current)?;
            let response = self
                .client
                .get(current.clone())
                .headers(validators.headers())
                .send()
                .await
                .map_err(|e| self.classify(&e, &current))?;
            let status = response.status();
            if status == reqwest::StatusCode::NOT_MODIFIED && !validators.is_empty() {
                return Ok(Conditional::NotModified);
            }
            if status.is_redirection() && status != reqwest::StatusCode::NOT_MODIFIED {
                if hop == MAX_REDIRECTS {
                    return Err(FetchError::TooManyRedirects(current.to_string()));
                }
                let next = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| current.join(l).ok())
                    .ok_or_else(|| FetchError::BadRedirect(current.to_string()))?;
                current = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status {
                    url: current.to_string(),
                    status: status.to_string(),
                });
            }
            let validators = Validators::of(&response);
            let body = self.read_capped(response, &current).await?;
            return Ok(Conditional::Modified {
                fetched: Fetched { body, url: current },
                validators,
            });
        }
        unreachable!("the last hop returns")
    }

    /// The address's scheme, and its IP when it is one (host names are
    /// checked by the resolver, where the connection is made).
    fn check(&self, url: &Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::NotWeb(url.to_string()));
        }
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err(FetchError::NotWeb(url.to_string())),
        };
        if self.policy.permits(ip) {
            Ok(())
        } else {
            Err(FetchError::RefusedAddress(url.to_string()))
        }
    }
}

impl Fetcher {
    /// The class of a failed request; the details go to the log, not to the
    /// person who asked.
    fn classify(&self, error: &reqwest::Error, url: &Url) -> FetchError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = cause {
            if e.is::<Refused>() {
                return FetchError::RefusedAddress(url.to_string());
            }
            cause = e.source();
        }
        // For an operator who turns on debug logs; never in the answer.
        tracing::debug!(url = %url, error = %format!("{error:#}"), "a feed fetch failed");
        if error.is_timeout() {
            self.timed_out(url)
        } else {
            FetchError::Unreachable(url.to_string())
        }
    }

    async fn read_capped(&self, mut response: reqwest::Response, url: &Url) -> Result<Vec<u8>, FetchError> {
        let too_large = || FetchError::TooLarge(url.to_string());
        if response.content_length().is_some_and(|n| n > MAX_FEED_BYTES as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(&e, url))? {
            if body.len() + chunk.len() > MAX_FEED_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(ip: &str) -> Reach {
        reach(ip.parse().unwrap())
    }

    #[test]
    fn public_addresses_are_public() {
        for ip in [
            "93.184.215.14",
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            assert_eq!(r(ip), Reach::Public, "{ip}");
        }
        // Just outside the private ranges.
        for ip in ["11.0.0.1", "172.32.0.1", "172.15.255.255", "192.169.0.1", "100.128.0.1"] {
            assert_eq!(r(ip), Reach::Public, "{ip}");
        }
    }

    #[test]
    fn loopback_and_private_networks_are_private() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "64:ff9b::c0a8:101",
            "2002:c0a8:101::1",
        ] {
            assert_eq!(r(ip), Reach::Private, "{ip}");
        }
    }

    #[test]
    fn metadata_link_local_multicast_and_unspecified_are_never_fetched() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "::ffff:0.0.0.0",
        ] {
            assert_eq!(r(ip), Reach::Forbidden, "{ip}");
        }
    }

    #[test]
    fn the_setting_opens_private_addresses_but_not_forbidden_ones() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let metadata: IpAddr = "169.254.169.254".parse().unwrap();
        let public: IpAddr = "1.1.1.1".parse().unwrap();
        assert!(!FetchPolicy::new(false).permits(local));
        assert!(FetchPolicy::new(false).permits(public));
        assert!(FetchPolicy::new(true).permits(local));
        assert!(!FetchPolicy::new(true).permits(metadata));
    }

    #[test]
    fn ip_literals_in_any_spelling_are_checked_before_a_request() {
        let fetcher = Fetcher::new(FetchPolicy::PUBLIC_ONLY);
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0/",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(
                matches!(fetcher.check(&url), Err(FetchError::RefusedAddress(_))),
                "{url}"
            );
        }
        assert!(matches!(
            fetcher.check(&Url::parse("file:///etc/passwd").unwrap()),
            Err(FetchError::NotWeb(_))
        ));
    }
}
