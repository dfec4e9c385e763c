//! Outbound webhooks as the Standard Webhooks specification has them: the
//! events an endpoint may ask for, its signing secret (`whsec_` + base64
//! of random bytes) and the signature over `id.timestamp.body`
//! (`v1,` + base64 of HMAC-SHA256, keyed with the secret's decoded bytes).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

stored_as_text! {
    /// What an endpoint can be told about.
    pub enum WebhookEvent {
        /// A new reader is on the list (signup form, API, import).
        SubscriberCreated = "subscriber.created",
        /// A reader confirmed their address (or was confirmed through the
        /// API or an import with consent given elsewhere).
        SubscriberConfirmed = "subscriber.confirmed",
        /// A reader left: link, one-click, preferences page, mail to the
        /// unsubscribe address, API or staff.
        SubscriberUnsubscribed = "subscriber.unsubscribed",
        /// A reader's address refused mail for good.
        SubscriberBounced = "subscriber.bounced",
        /// A reader reported an issue as spam (and is unsubscribed).
        SubscriberComplained = "subscriber.complained",
        /// Every copy of an issue is settled (sent or given up).
        IssueSent = "issue.sent",
    }
}

stored_as_text! {
    /// Whether an endpoint is sent its events.
    pub enum WebhookEndpointStatus {
        Enabled = "enabled",
        /// By staff, or because it answered 410 Gone.
        Disabled = "disabled",
    }
}

stored_as_text! {
    /// A webhook delivery (one event to one endpoint) in the ledger.
    pub enum WebhookDeliveryStatus {
        Queued = "queued",
        Sending = "sending",
        /// The endpoint answered 2xx.
        Delivered = "delivered",
        /// Given up: retries ran out, the endpoint is disabled, or it
        /// answered 410.
        Failed = "failed",
    }
}

stored_as_text! {
    /// What came of one attempt.
    pub enum WebhookOutcome {
        /// A 2xx answer.
        Delivered = "delivered",
        /// Failed; tried again later.
        Retry = "retry",
        /// Failed, and the last try.
        Failed = "failed",
        /// 410 Gone: the endpoint is disabled.
        Disabled = "disabled",
    }
}

const SECRET_PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 32;

/// An endpoint's signing secret, as given to the receiver. Kept out of
/// `Debug` output, and so out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

impl WebhookSecret {
    /// 32 random bytes (the specification asks for 24 to 64).
    pub fn generate() -> Self {
        let mut key = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut key);
        Self {
            text: format!("{SECRET_PREFIX}{}", STANDARD.encode(&key)),
            key,
        }
    }

    /// A stored secret; `None` unless it is `whsec_` + base64 of 24 to 64
    /// bytes.
    pub fn parse(raw: &str) -> Option<Self> {
        let key = STANDARD.decode(raw.strip_prefix(SECRET_PREFIX)?).ok()?;
        (24..=64).contains(&key.len()).then(|| Self {
            text: raw.to_owned(),
            key,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The `webhook-signature` header's value for message `id` sent at
    /// `timestamp` (Unix seconds) with `body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.key);
        let mut context = ring::hmac::Context::with_key(&key);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference
    /// libraries (svix's test suite).
    #[test]
    fn signs_as_the_specification_example() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid secret");
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn generated_secrets_parse_and_hide() {
        let secret = WebhookSecret::generate();
        assert!(secret.as_str().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(secret.as_str()), Some(secret.clone()));
        assert_eq!(format!("{secret:?}"), "WebhookSecret(***)");
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_none());
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none());
    }
}
