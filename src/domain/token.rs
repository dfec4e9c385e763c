//! The two secrets a reader gets in links. They are kept differently
//! because they are used differently: a confirmation token is checked once
//! and never written again, so only its hash is kept; an unsubscribe link
//! goes into every issue a reader gets, so its secret is kept as it is.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The secret in a new reader's confirmation link: 256 random bits,
/// URL-safe. `confirmation_tokens` keeps only its SHA-256, so that table
/// cannot be turned into working links; the token itself waits in the
/// confirmation email's `outgoing_mail` row only until that email has been
/// sent or has failed for good.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

const RANDOM_BYTES: usize = 32;
const ENCODED_LEN: usize = 43;

impl Token {
    pub fn generate() -> Self {
        let mut bytes = [0u8; RANDOM_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts only the exact shape [`Token::generate`] produces, so junk
    /// never reaches a query.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        (raw.len() == ENCODED_LEN && URL_SAFE_NO_PAD.decode(raw).is_ok_and(|b| b.len() == RANDOM_BYTES))
            .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

// Tokens are secrets: keep them out of Debug output and so out of logs.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// A reader's permanent unsubscribe link: their subscriber id, which finds
/// the row by its primary key, and a 128-bit random secret that must match.
/// Written as 64 hex digits. The secret is stored as it is
/// (`subscribers.unsubscribe_secret`), not hashed: the worker writes the
/// link into each copy of every issue. A copy of the database can
/// therefore unsubscribe readers, and nothing more; erasing a reader
/// empties it.
#[derive(Clone, PartialEq, Eq)]
pub struct UnsubscribeToken {
    subscriber_id: uuid::Uuid,
    secret: [u8; 16],
}

impl UnsubscribeToken {
    pub fn generate(subscriber_id: uuid::Uuid) -> Self {
        let mut secret = [0u8; 16];
        rand::rng().fill_bytes(&mut secret);
        Self { subscriber_id, secret }
    }

    pub fn from_parts(subscriber_id: uuid::Uuid, secret: &[u8]) -> Option<Self> {
        Some(Self {
            subscriber_id,
            secret: secret.try_into().ok()?,
        })
    }

    /// Accepts exactly the 64 hex digits [`UnsubscribeToken::as_string`] writes.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw.len() != 64 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let bytes: Vec<u8> = (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&raw[i..i + 2], 16))
            .collect::<Result<_, _>>()
            .ok()?;
        Self::from_parts(uuid::Uuid::from_slice(&bytes[..16]).ok()?, &bytes[16..])
    }

    pub fn subscriber_id(&self) -> uuid::Uuid {
        self.subscriber_id
    }

    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    pub fn as_string(&self) -> String {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(self.subscriber_id.as_bytes());
        bytes[16..].copy_from_slice(&self.secret);
        lower_hex(&bytes)
    }
}

/// `bytes` as lower-case hex, two digits a byte, in one allocation (not a
/// `String` a byte: an unsubscribe token is written twice into every copy
/// of every issue).
pub fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

impl std::fmt::Debug for UnsubscribeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsubscribeToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(Token::parse(a.as_str()), Some(a.clone()));
        assert_eq!(a.hash().len(), 32);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn rejects_anything_else() {
        let good = Token::generate();
        for bad in [
            "",
            "abc",
            "' OR 1=1 --",
            &format!("{}x", good.as_str()),
            &"!".repeat(43),
        ] {
            assert_eq!(Token::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hex_is_two_lower_case_digits_a_byte() {
        assert_eq!(lower_hex(&[]), "");
        assert_eq!(lower_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }

    #[test]
    fn an_unsubscribe_token_is_written_as_it_always_was() {
        // Links in copies already sent must keep working: the reader's id,
        // then the secret, in lower-case hex.
        let id = uuid::Uuid::parse_str("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap();
        let secret: Vec<u8> = (0u8..16).map(|i| i * 17).collect();
        let token = UnsubscribeToken::from_parts(id, &secret).unwrap();
        assert_eq!(
            token.as_string(),
            "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b00112233445566778899aabbccddeeff"
        );
    }

    #[test]
    fn unsubscribe_tokens_round_trip_and_refuse_other_shapes() {
        let id = uuid::Uuid::now_v7();
        let (a, b) = (UnsubscribeToken::generate(id), UnsubscribeToken::generate(id));
        assert_ne!(a, b, "the secret is random");
        let written = a.as_string();
        assert_eq!(written.len(), 64);
        assert_eq!(UnsubscribeToken::parse(&written), Some(a.clone()));
        assert_eq!(UnsubscribeToken::parse(&written.to_uppercase()), Some(a));
        for bad in [
            "",
            "short",
            &"x".repeat(64),
            &"a".repeat(63),
            &"a".repeat(65),
            "' OR 1=1 --",
        ] {
            assert!(UnsubscribeToken::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let t = Token::generate();
        assert!(!format!("{t:?}").contains(t.as_str()));
    }
}
