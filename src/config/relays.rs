//! `mail.relays`: the SMTP relays a worker sends through, parsed. How they
//! are used (weights, cool-downs, connections) is `crate::mail::relays`'s
//! part; the rate is `crate::delivery`'s.
//!
//! In a configuration file the list is an array of tables
//! (`[[mail.relays]]`, one per relay); in the environment, where a table
//! cannot be written, it is one string of relay URLs separated by commas:
//! `GAZETTE_MAIL__RELAYS="smtp://relay-a.example.org:587?tls=starttls&weight=3,
//! smtps://relay-b.example.org?weight=1&password_file=/run/secrets/b"`.
//! Without `mail.relays`, `mail.smtp` is the one relay, as before.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use serde::Deserialize;

use super::{SmtpSettings, SmtpTls};

/// One relay: how to reach it (the same settings as `mail.smtp`), and its
/// share of the mail.
#[derive(Clone, PartialEq, Eq)]
pub struct RelaySettings {
    pub smtp: SmtpSettings,
    /// Its share of the messages against the other healthy relays'. 0: a
    /// backup, used only while every relay with a weight is cooling down.
    pub weight: u32,
    /// Messages per second to this relay, all workers together; `None`:
    /// `delivery.rate_per_second`.
    pub rate_per_second: Option<u32>,
    /// Connections open to it at once, per worker; `None`: as many as the
    /// worker sends at once (`delivery.concurrency`).
    pub connections: Option<NonZeroUsize>,
}

impl fmt::Debug for RelaySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelaySettings")
            .field("smtp", &self.smtp)
            .field("weight", &self.weight)
            .field("rate_per_second", &self.rate_per_second)
            .field("connections", &self.connections)
            .finish()
    }
}

impl RelaySettings {
    /// `mail.smtp` as the one relay of a list.
    pub fn single(smtp: &SmtpSettings) -> Self {
        Self {
            smtp: smtp.clone(),
            weight: 1,
            rate_per_second: None,
            connections: None,
        }
    }
}

/// `mail.relays` as written: empty when not set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayList(pub Vec<RelaySettings>);

/// One relay as a table gives it; what is left out takes `mail.smtp`'s
/// embedded default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelay {
    host: String,
    port: Option<u16>,
    #[serde(default)]
    tls: Option<SmtpTls>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_file: PathBuf,
    #[serde(default)]
    ca_file: PathBuf,
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
    #[serde(default = "default_weight")]
    weight: u32,
    #[serde(default)]
    rate_per_second: Option<u32>,
    #[serde(default)]
    connections: Option<usize>,
    #[serde(default = "default_max_messages")]
    max_messages_per_connection: u32,
}

fn default_timeout() -> u64 {
    30
}

fn default_weight() -> u32 {
    1
}

fn default_max_messages() -> u32 {
    100
}

impl RawRelay {
    /// The relay, or why not; `at` names it in the message (`mail.relays[2]`).
    fn parse(self, at: &str) -> Result<RelaySettings, String> {
        let host = self.host.trim().to_owned();
        if host.is_empty() {
            return Err(format!("{at}.host: must be set"));
        }
        let tls = self.tls.unwrap_or(SmtpTls::None);
        let port = match self.port {
            Some(0) => return Err(format!("{at}.port: must be between 1 and 65535")),
            Some(port) => port,
            None if tls == SmtpTls::Tls => 465,
            None => 25,
        };
        let connections = match self.connections {
            None => None,
            Some(n) => Some(NonZeroUsize::new(n).ok_or_else(|| {
                format!("{at}.connections: must be at least 1 (leave it out for delivery.concurrency)")
            })?),
        };
        Ok(RelaySettings {
            smtp: SmtpSettings {
                host,
                port,
                tls,
                username: self.username,
                password: self.password,
                password_file: self.password_file,
                ca_file: self.ca_file,
                timeout_seconds: self.timeout_seconds,
                max_messages_per_connection: self.max_messages_per_connection,
            },
            weight: self.weight,
            rate_per_second: self.rate_per_second,
            connections,
        })
    }
}

/// Why a relay URL of the environment form cannot be used; the message
/// quotes it (without its password).
fn url_error(entry: &str, why: impl fmt::Display) -> String {
    format!("mail.relays: `{}` {why}", without_password(entry).escape_debug())
}

/// The entry with any `user:password@` cut to `user:***@`, for messages.
fn without_password(entry: &str) -> String {
    match url::Url::parse(entry) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => entry.to_owned(),
        // Unparsable: cut everything between the scheme and an `@`.
        Err(_) => match (entry.find("://"), entry.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &entry[..scheme + 3], &entry[at..]),
            _ => entry.to_owned(),
        },
    }
}

/// The environment form with every password cut (`gazette config check`).
pub(super) fn without_passwords(list: &str) -> String {
    list.split(',')
        .map(|entry| without_password(entry.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One relay URL: `smtp://[user[:password]@]host[:port][?key=value&…]`
/// (`smtps://` for implicit TLS), the keys being a relay table's.
fn parse_url(entry: &str, at: &str) -> Result<RelaySettings, String> {
    let url = url::Url::parse(entry).map_err(|e| url_error(entry, format!("is not a relay URL: {e}")))?;
    let tls = match url.scheme() {
        "smtp" => None,
        "smtps" => Some(SmtpTls::Tls),
        other => {
            return Err(url_error(
                entry,
                format!("has the scheme `{}`; use smtp:// or smtps://", other.escape_debug()),
            ));
        }
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| url_error(entry, "has no host"))?;
    let decode =
        |s: &str| percent_decode(s).ok_or_else(|| url_error(entry, "has a user name or password that is not UTF-8"));
    let mut raw = RawRelay {
        host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
        port: url.port(),
        tls,
        username: decode(url.username())?,
        password: decode(url.password().unwrap_or(""))?,
        password_file: PathBuf::new(),
        ca_file: PathBuf::new(),
        timeout_seconds: default_timeout(),
        weight: default_weight(),
        rate_per_second: None,
        connections: None,
        max_messages_per_connection: default_max_messages(),
    };
    for (key, value) in url.query_pairs() {
        let number = |what: &str| -> Result<u64, String> {
            value
                .parse::<u64>()
                .map_err(|_| url_error(entry, format!("has {key}={}: {what}", value.escape_debug())))
        };
        let small = |n: u64| u32::try_from(n).map_err(|_| url_error(entry, format!("has {key}={n}: too large")));
        match key.as_ref() {
            "tls" => {
                raw.tls = Some(match value.as_ref() {
                    "none" => SmtpTls::None,
                    "starttls" => SmtpTls::Starttls,
                    "tls" => SmtpTls::Tls,
                    _ => {
                        return Err(url_error(
                            entry,
                            format!("has tls={}: use none, starttls or tls", value.escape_debug()),
                        ));
                    }
                })
            }
            "password_file" => raw.password_file = PathBuf::from(value.as_ref()),
            "ca_file" => raw.ca_file = PathBuf::from(value.as_ref()),
            "timeout_seconds" => raw.timeout_seconds = number("a number of seconds")?,
            "weight" => raw.weight = small(number("a whole number")?)?,
            "rate_per_second" => raw.rate_per_second = Some(small(number("a whole number")?)?),
            "connections" => raw.connections = Some(usize::try_from(number("a whole number")?).unwrap_or(usize::MAX)),
            "max_messages_per_connection" => raw.max_messages_per_connection = small(number("a whole number")?)?,
            other => {
                return Err(url_error(
                    entry,
                    format!(
                        "has the unknown key `{}`; the keys are tls, password_file, ca_file, timeout_seconds, \
                         weight, rate_per_second, connections, max_messages_per_connection",
                        other.escape_debug()
                    ),
                ));
            }
        }
    }
    raw.parse(at)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

impl RelayList {
    /// The environment form: relay URLs separated by commas.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let entries: Vec<&str> = raw.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
        let relays = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| parse_url(entry, &format!("mail.relays[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(relays))
    }
}

/// A TOML array of tables, or one string of comma-separated relay URLs
/// (the form an environment variable gives).
impl<'de> Deserialize<'de> for RelayList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<serde_json::Value>),
        }
        let raw = Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "must be a list of relays ([[mail.relays]] tables) or one string of relay URLs \
                 separated by commas (smtp://host:port?weight=2, …)",
            )
        })?;
        let parsed = match raw {
            Raw::One(list) => RelayList::parse(&list),
            Raw::Many(tables) => tables
                .into_iter()
                .enumerate()
                .map(|(i, table)| {
                    let at = format!("mail.relays[{i}]");
                    let raw: RawRelay = serde_json::from_value(table).map_err(|e| format!("{at}: {e}"))?;
                    raw.parse(&at)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(RelayList),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_give_every_key_and_a_bad_one_is_named() {
        let list = RelayList::parse(
            " smtp://relay-a.example.org:587?tls=starttls&weight=3&rate_per_second=20&connections=4 ,\
             smtps://mailer:s%40cret@relay-b.example.org?weight=0&timeout_seconds=5&max_messages_per_connection=7,\
             smtp://[::1]",
        )
        .unwrap();
        let [a, b, c] = &list.0[..] else {
            panic!("three relays: {list:?}")
        };
        assert_eq!(
            (a.smtp.host.as_str(), a.smtp.port, a.smtp.tls, a.weight),
            ("relay-a.example.org", 587, SmtpTls::Starttls, 3)
        );
        assert_eq!((a.rate_per_second, a.connections.map(|c| c.get())), (Some(20), Some(4)));
        assert_eq!((b.smtp.port, b.smtp.tls, b.weight), (465, SmtpTls::Tls, 0));
        assert_eq!(
            (b.smtp.username.as_str(), b.smtp.password.as_str()),
            ("mailer", "s@cret")
        );
        assert_eq!((b.smtp.timeout_seconds, b.smtp.max_messages_per_connection), (5, 7));
        assert_eq!((c.smtp.host.as_str(), c.smtp.port, c.weight), ("::1", 25, 1));
        assert_eq!((c.rate_per_second, c.connections), (None, None));
        assert!(RelayList::parse("").unwrap().0.is_empty());

        for (bad, named) in [
            ("relay.example.org:25", "`relay.example.org:25`"),
            ("http://relay.example.org", "scheme `http`"),
            ("smtp://relay.example.org?weight=heavy", "weight=heavy"),
            ("smtp://relay.example.org?tls=ssl", "tls=ssl"),
            ("smtp://relay.example.org?colour=blue", "unknown key `colour`"),
            ("smtp://relay.example.org?connections=0", "mail.relays[0].connections"),
            (
                "smtp://ok.example.org, smtp://relay.example.org:0",
                "mail.relays[1].port",
            ),
        ] {
            let error = RelayList::parse(bad).unwrap_err();
            assert!(error.contains(named), "{bad}: {error}");
        }
        let error = RelayList::parse("smtp://mailer:hunter2@relay.example.org?weight=x").unwrap_err();
        assert!(!error.contains("hunter2") && error.contains("mailer:***@"), "{error}");
        let error = RelayList::parse("smtp://mailer:hunter2@:25").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn debug_shows_no_relay_password() {
        let list = RelayList::parse("smtp://mailer:hunter2@relay.example.org").unwrap();
        assert!(!format!("{list:?}").contains("hunter2"));
    }
}
