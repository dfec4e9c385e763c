//! The JSON API's tokens and what each may reach. A token is a bearer
//! secret handed to a CMS or CRM once; the database keeps only its SHA-256
//! (256 random bits need no slow hash: nobody can guess the input).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// `gz_` then 43 URL-safe characters: the prefix lets secret scanners and
/// people tell a Gazette token from other secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

const PREFIX: &str = "gz_";
const RANDOM_BYTES: usize = 32;
const ENCODED_LEN: usize = 43;

impl ApiToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; RANDOM_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts only the exact shape [`ApiToken::generate`] produces.
    pub fn parse(raw: &str) -> Option<Self> {
        let secret = raw.strip_prefix(PREFIX)?;
        (secret.len() == ENCODED_LEN && URL_SAFE_NO_PAD.decode(secret).is_ok_and(|b| b.len() == RANDOM_BYTES))
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
impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

/// What staff call a token, to tell tokens apart ("CMS", "CRM sync").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenName(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiTokenNameError {
    #[error("a token needs a name, such as the system that will use it")]
    Empty,
    #[error("a token's name may have at most 100 characters")]
    TooLong,
    #[error("a token's name must not contain control characters")]
    ControlCharacters,
}

impl ApiTokenName {
    pub fn parse(raw: &str) -> Result<Self, ApiTokenNameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ApiTokenNameError::Empty);
        }
        if name.chars().count() > 100 {
            return Err(ApiTokenNameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(ApiTokenNameError::ControlCharacters);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

stored_as_text! {
    /// The resources a token may reach: one of them, or all.
    pub enum ApiScope {
        Subscribers = "subscribers",
        Articles = "articles",
        Issues = "issues",
        All = "all",
    }
}

impl ApiScope {
    /// Whether a token of this scope may reach `resource`.
    pub fn covers(self, resource: ApiScope) -> bool {
        self == ApiScope::All || self == resource
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_and_others_do_not() {
        let token = ApiToken::generate();
        assert_eq!(ApiToken::parse(token.as_str()), Some(token.clone()));
        assert_eq!(ApiToken::parse(&token.as_str()[3..]), None, "the prefix is part of it");
        assert_eq!(ApiToken::parse(&format!("{} ", token.as_str())), None);
        assert_eq!(ApiToken::parse("gz_short"), None);
        assert!(!format!("{token:?}").contains(&token.as_str()[3..]));
    }

    #[test]
    fn all_covers_every_resource_and_the_others_their_own() {
        assert!(ApiScope::All.covers(ApiScope::Issues));
        assert!(ApiScope::Articles.covers(ApiScope::Articles));
        assert!(!ApiScope::Subscribers.covers(ApiScope::Articles));
    }
}
