//! The addresses Gazette's outgoing mail points back at
//! (`mail.bounce_domain`), and reading them again when mail arrives there.
//!
//! - The return path (VERP) names the message a bounce is about:
//!   `bounces+d{week}{reader}.{mac}@domain` for a reader's copy of an issue,
//!   `bounces+m{row}.{mac}@domain` for a transactional message
//!   (`outgoing_mail`). The MAC (an HMAC-SHA256 cut to 50 bits, keyed by a
//!   secret kept in the database) means nobody can forge a bounce for
//!   someone else's address.
//! - The `mailto:` in `List-Unsubscribe` is `unsubscribe+{token}@domain`:
//!   the reader's unsubscribe token itself, as in the https link, so mail
//!   to it needs no further proof.
//!
//! Every part is lowercase base32 (RFC 4648's alphabet), so a relay that
//! changes the local part's case changes nothing, and every address stays
//! within SMTP's 64-octet local part.

use lettre::Address;
use ring::hmac;
use uuid::Uuid;

use crate::domain::{IssueWeek, UnsubscribeToken};

const BOUNCE_PREFIX: &str = "bounces+";
const UNSUBSCRIBE_PREFIX: &str = "unsubscribe+";
/// Base32 characters of the MAC: 50 bits.
const MAC_CHARS: usize = 10;

/// What a return path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A reader's copy of the issue of a week (`deliveries`).
    Digest { week: IssueWeek, subscriber: Uuid },
    /// A transactional message (`outgoing_mail`, by its id).
    Mail { id: Uuid },
}

/// What an address at the bounce domain turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressed {
    Bounce(Origin),
    Unsubscribe(UnsubscribeToken),
}

/// Writes and reads the addresses at `mail.bounce_domain`.
#[derive(Clone)]
pub struct ReturnPaths {
    domain: String,
    key: hmac::Key,
}

impl std::fmt::Debug for ReturnPaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReturnPaths")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl ReturnPaths {
    /// `secret` is the shared key (`db::inbound::return_path_secret`).
    pub fn new(domain: &str, secret: &[u8]) -> Self {
        Self {
            domain: domain.trim().to_ascii_lowercase(),
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The envelope sender for the message `origin` names.
    pub fn return_path(&self, origin: &Origin) -> Address {
        let id = origin_id(origin);
        let mac = self.mac(&id);
        self.address(&format!("{BOUNCE_PREFIX}{id}.{mac}"))
    }

    /// The reader's `mailto:` unsubscribe address.
    pub fn unsubscribe_address(&self, token: &UnsubscribeToken) -> Address {
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(token.subscriber_id().as_bytes());
        bytes.extend_from_slice(token.secret());
        self.address(&format!("{UNSUBSCRIBE_PREFIX}{}", base32(&bytes)))
    }

    /// Reads an address mail arrived for (an envelope recipient, or a
    /// `To`/`Delivered-To` header's address): `None` unless it is one of
    /// ours, at our domain, with a valid MAC.
    pub fn read(&self, address: &str) -> Option<Addressed> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = address.rsplit_once('@')?;
        if !domain.eq_ignore_ascii_case(&self.domain) {
            return None;
        }
        let local = local.to_ascii_lowercase();
        if let Some(encoded) = local.strip_prefix(UNSUBSCRIBE_PREFIX) {
            let bytes = unbase32(encoded)?;
            let (id, secret) = bytes.split_at_checked(16)?;
            let token = UnsubscribeToken::from_parts(Uuid::from_slice(id).ok()?, secret)?;
            return Some(Addressed::Unsubscribe(token));
        }
        let (id, mac) = local.strip_prefix(BOUNCE_PREFIX)?.split_once('.')?;
        if mac.len() != MAC_CHARS || !constant_time_eq(mac.as_bytes(), self.mac(id).as_bytes()) {
            return None;
        }
        parse_origin(id).map(Addressed::Bounce)
    }

    fn mac(&self, id: &str) -> String {
        let tag = hmac::sign(&self.key, id.as_bytes());
        let mut encoded = base32(tag.as_ref());
        encoded.truncate(MAC_CHARS);
        encoded
    }

    fn address(&self, local: &str) -> Address {
        Address::new(local, &self.domain).expect("base32 local parts and a checked domain make an address")
    }
}

fn origin_id(origin: &Origin) -> String {
    match origin {
        Origin::Digest { week, subscriber } => {
            format!("d{:04}{:02}{}", week.year(), week.week(), base32(subscriber.as_bytes()))
        }
        Origin::Mail { id } => format!("m{}", base32(id.as_bytes())),
    }
}

fn parse_origin(id: &str) -> Option<Origin> {
    if let Some(rest) = id.strip_prefix('d') {
        let (week, subscriber) = (rest.get(..6)?, rest.get(6..)?);
        let week = IssueWeek::parse(&format!("{}-W{}", &week[..4], &week[4..]))?;
        let subscriber = Uuid::from_slice(&unbase32(subscriber)?).ok()?;
        return Some(Origin::Digest { week, subscriber });
    }
    let id = Uuid::from_slice(&unbase32(id.strip_prefix('m')?)?).ok()?;
    Some(Origin::Mail { id })
}

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The inverse of [`base32`]; `None` for any other character or for
/// leftover bits that are not zero (one spelling per value).
fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    (bits < 5 && buffer & ((1 << bits) - 1) == 0).then_some(out)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> ReturnPaths {
        ReturnPaths::new("Bounces.Example.org", b"a key of some length for tests")
    }

    #[test]
    fn a_return_path_reads_back_as_what_it_names() {
        let paths = paths();
        let week = IssueWeek::parse("2026-W48").unwrap();
        for origin in [
            Origin::Digest {
                week,
                subscriber: Uuid::new_v4(),
            },
            Origin::Mail { id: Uuid::now_v7() },
        ] {
            let address = paths.return_path(&origin).to_string();
            assert!(address.ends_with("@bounces.example.org"), "{address}");
            assert!(address.split('@').next().unwrap().len() <= 64, "{address}");
            assert_eq!(paths.read(&address), Some(Addressed::Bounce(origin)));
            assert_eq!(
                paths.read(&address.to_uppercase()),
                Some(Addressed::Bounce(origin)),
                "case-insensitive"
            );
            assert_eq!(paths.read(&format!("<{address}>")), Some(Addressed::Bounce(origin)));
        }
    }

    #[test]
    fn a_forged_or_foreign_return_path_reads_as_nothing() {
        let paths = paths();
        let origin = Origin::Mail { id: Uuid::new_v4() };
        let address = paths.return_path(&origin).to_string();
        let (local, domain) = address.split_once('@').unwrap();
        // Another reader's id under this MAC.
        let other = paths.return_path(&Origin::Mail { id: Uuid::new_v4() }).to_string();
        let forged = format!(
            "{}.{}@{domain}",
            other.split('.').next().unwrap(),
            local.rsplit('.').next().unwrap()
        );
        assert_eq!(paths.read(&forged), None);
        assert_eq!(paths.read(&format!("{local}@elsewhere.example")), None);
        let other_key = ReturnPaths::new("bounces.example.org", b"another key");
        assert_eq!(other_key.read(&address), None);
        for junk in [
            "",
            "@",
            "bounces+@bounces.example.org",
            "bounces+x.y@bounces.example.org",
            "nobody@bounces.example.org",
        ] {
            assert_eq!(paths.read(junk), None, "{junk}");
        }
    }

    #[test]
    fn the_unsubscribe_address_carries_the_token() {
        let paths = paths();
        let token = UnsubscribeToken::generate(Uuid::new_v4());
        let address = paths.unsubscribe_address(&token).to_string();
        assert_eq!(address.split('@').next().unwrap().len(), 64, "{address}");
        assert_eq!(paths.read(&address), Some(Addressed::Unsubscribe(token.clone())));
        assert_eq!(paths.read(&address.to_uppercase()), Some(Addressed::Unsubscribe(token)));
    }

    #[test]
    fn base32_round_trips_and_has_one_spelling() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(unbase32(&base32(&bytes)).unwrap(), bytes);
        }
        // "ab" is 10 bits: the last two must be zero.
        assert!(unbase32("ab").is_none());
        assert!(unbase32("a1").is_none());
    }
}
