use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A secret sent to a reader in a link (confirmation, later unsubscribe).
/// 256 random bits, URL-safe; only its SHA-256 is stored, so a copy of
/// the database cannot be turned into working links.
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

/// The permanent secret in a reader's unsubscribe links. New ones are
/// [`Token`]s; older ones may be 64 hex digits (made by a migration), so
/// any URL-safe string of 32 to 64 characters is accepted as a shape.
#[derive(Clone, PartialEq, Eq)]
pub struct UnsubscribeToken(String);

impl UnsubscribeToken {
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let url_safe = raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ((32..=64).contains(&raw.len()) && url_safe).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&Token> for UnsubscribeToken {
    fn from(token: &Token) -> Self {
        Self(token.as_str().to_owned())
    }
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
    fn unsubscribe_tokens_take_new_and_migrated_shapes_only() {
        let new = Token::generate();
        assert!(UnsubscribeToken::parse(new.as_str()).is_some());
        assert!(UnsubscribeToken::parse(&"a1".repeat(32)).is_some());
        for bad in [
            "",
            "short",
            &"x".repeat(65),
            "' OR 1=1 --aaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "%2Faaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
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
