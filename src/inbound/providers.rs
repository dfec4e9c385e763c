//! Provider webhooks (Amazon SES through SNS, Postmark, Mailgun): their
//! signatures, and their JSON read into a [`Report`].
//! Issue 15: filled in by the `imap-webhooks` work.

use crate::domain::InboundSource;

use super::report::Report;

/// Reads a provider's stored post (its body as it came).
pub fn report(_source: InboundSource, _body: &[u8]) -> Report {
    Report::unknown(Vec::new())
}

/// Mailgun's webhook signature: hex HMAC-SHA256 of `timestamp` followed by
/// `token`, under the webhook signing key; compared in constant time.
pub fn mailgun_signature_ok(signing_key: &[u8], timestamp: &str, token: &str, signature: &str) -> bool {
    let Some(tag) = hex_bytes(signature.trim()) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, signing_key);
    let mut data = Vec::with_capacity(timestamp.len() + token.len());
    data.extend_from_slice(timestamp.as_bytes());
    data.extend_from_slice(token.as_bytes());
    ring::hmac::verify(&key, &data, &tag).is_ok()
}

/// Postmark's webhooks carry HTTP Basic credentials: whether the
/// `Authorization` header names `username` and `password`. Both are compared
/// through an HMAC under a random key, so in constant time.
pub fn postmark_credentials_ok(authorization: Option<&str>, username: &str, password: &str) -> bool {
    use base64::Engine;
    let Some(encoded) = authorization.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
    }) else {
        return false;
    };
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let expected = format!("{username}:{password}");
    let rng = ring::rand::SystemRandom::new();
    let Ok(key) = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng) else {
        return false;
    };
    let tag = ring::hmac::sign(&key, expected.as_bytes());
    ring::hmac::verify(&key, &given, tag.as_ref()).is_ok()
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The expected values were computed with Python's hmac and base64.
    #[test]
    fn a_mailgun_signature_is_checked_against_timestamp_and_token() {
        let good = "630460d97afb5ee3316160c5ccc9c70b26eff90bd0c8bf1a497de0311d3451ce";
        assert!(mailgun_signature_ok(b"key-3ax6", "1700000000", "c0ffee", good));
        assert!(mailgun_signature_ok(
            b"key-3ax6",
            "1700000000",
            "c0ffee",
            &good.to_uppercase()
        ));
        assert!(!mailgun_signature_ok(b"key-3ax7", "1700000000", "c0ffee", good));
        assert!(!mailgun_signature_ok(b"key-3ax6", "1700000001", "c0ffee", good));
        assert!(!mailgun_signature_ok(b"key-3ax6", "1700000000", "c0ffee", &good[..62]));
        assert!(!mailgun_signature_ok(b"key-3ax6", "1700000000", "c0ffee", "zz"));
        assert!(!mailgun_signature_ok(b"key-3ax6", "1700000000", "c0ffee", ""));
    }

    #[test]
    fn postmark_basic_credentials_must_match_exactly() {
        let header = "Basic Z2F6ZXR0ZTpww6Rzczp3b3Jk"; // gazette:päss:word
        assert!(postmark_credentials_ok(Some(header), "gazette", "päss:word"));
        assert!(postmark_credentials_ok(
            Some("basic  Z2F6ZXR0ZTpww6Rzczp3b3Jk "),
            "gazette",
            "päss:word"
        ));
        assert!(!postmark_credentials_ok(Some(header), "gazette", "päss:wor"));
        assert!(!postmark_credentials_ok(Some(header), "gazett", "päss:word"));
        assert!(!postmark_credentials_ok(
            Some("Bearer Z2F6ZXR0ZTpww6Rzczp3b3Jk"),
            "gazette",
            "päss:word"
        ));
        assert!(!postmark_credentials_ok(Some("Basic !!!"), "gazette", "päss:word"));
        assert!(!postmark_credentials_ok(None, "gazette", "päss:word"));
    }
}
