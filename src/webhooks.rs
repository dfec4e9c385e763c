//! The webhook sender role: a loop beside the delivery worker (in
//! `gazette serve` and `gazette worker`) that fans new events out to the
//! endpoints that want them, claims the due deliveries with a lease, posts
//! each signed the Standard Webhooks way and records the outcome:
//! claim → sign → post → record.
//!
//! 2xx is done; 410 Gone disables the endpoint; anything else (another
//! status, a refused address, a timeout, no connection) is retried after
//! `webhooks.retry_base_seconds` × 2^(attempt − 1), until
//! `webhooks.give_up_hours` after the delivery was queued, then failed.
//! A sender that dies leaves its claims `sending` until their lease runs
//! out; any sender then puts them back in the queue.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::sync::watch;
use url::Url;
use uuid::Uuid;

use crate::config::{Settings, WebhookSettings};
use crate::db::Db;
use crate::db::webhooks::{self, Attempted, Claimed};
use crate::digest::fetch::{FetchError, FetchPolicy, Fetcher};
use crate::domain::{WebhookOutcome, WebhookSecret};

/// Deliveries claimed at once.
const BATCH: i64 = 32;
/// How often an idle sender looks for new events.
const IDLE: Duration = Duration::from_millis(250);
/// The longest a backoff grows to.
const MAX_BACKOFF_SECONDS: u64 = 6 * 3600;

pub struct Sender {
    db: Db,
    fetcher: Fetcher,
    settings: WebhookSettings,
    /// Names this sender's claims.
    id: Uuid,
}

impl Sender {
    pub fn from_settings(db: Db, settings: &Settings) -> Self {
        let policy = FetchPolicy::new(settings.feeds.allow_private_addresses);
        let timeout = Duration::from_secs(settings.webhooks.timeout_seconds.max(1));
        Self {
            db,
            fetcher: Fetcher::for_webhooks(policy, timeout),
            settings: settings.webhooks.clone(),
            id: Uuid::now_v7(),
        }
    }

    /// Runs until `stop` turns true; a batch in flight is finished first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!("webhook sender: posting events to the registered endpoints");
        loop {
            if *stop.borrow() {
                return;
            }
            let busy = match self.round().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::error!(error = %e, "webhook sender: cannot read or record the deliveries");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(IDLE) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// One round: fan out, claim, send, record. Returns how many deliveries
    /// it settled.
    pub async fn round(&self) -> Result<usize, sqlx::Error> {
        let now = Utc::now();
        webhooks::fan_out(&self.db, now, now + self.give_up_after()).await?;
        let timeout = chrono::Duration::seconds(self.settings.timeout_seconds.max(1) as i64);
        // The lease outlasts the slowest request of the batch with room to
        // record its outcome.
        let lease_until = now + timeout + chrono::Duration::seconds(60);
        let claimed = webhooks::claim_due(&self.db, now, lease_until, BATCH, self.id).await?;
        let count = claimed.len();
        let results = futures_util::future::join_all(claimed.iter().map(|c| self.deliver(c))).await;
        for result in results {
            result?;
        }
        Ok(count)
    }

    fn give_up_after(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.settings.give_up_hours))
    }

    async fn deliver(&self, claimed: &Claimed) -> Result<(), sqlx::Error> {
        let message_id = message_id(claimed.event_id);
        let result = if claimed.endpoint_status == crate::domain::WebhookEndpointStatus::Disabled {
            Err(Failure::Disabled)
        } else {
            self.post(claimed, &message_id).await
        };
        let now = Utc::now();
        let (outcome, status_code, error, next_attempt_at) = match &result {
            Ok(status) if status.is_success() => (WebhookOutcome::Delivered, Some(status.as_u16()), None, None),
            Ok(status) if *status == reqwest::StatusCode::GONE => (
                WebhookOutcome::Disabled,
                Some(status.as_u16()),
                Some("410 Gone: the endpoint is disabled".to_owned()),
                None,
            ),
            Ok(status) => self.retry_or_fail(claimed, now, Some(status.as_u16()), format!("HTTP status {status}")),
            Err(Failure::Disabled) => (
                WebhookOutcome::Failed,
                None,
                Some("the endpoint is disabled".to_owned()),
                None,
            ),
            Err(Failure::Request(e)) => self.retry_or_fail(claimed, now, None, e.to_string()),
        };
        match outcome {
            WebhookOutcome::Delivered => tracing::info!(
                webhook_id = %message_id, event = %claimed.kind, endpoint = %claimed.endpoint_id,
                url = %claimed.url, attempt = claimed.attempts, status = status_code,
                "webhook delivered"
            ),
            WebhookOutcome::Retry => tracing::warn!(
                webhook_id = %message_id, event = %claimed.kind, endpoint = %claimed.endpoint_id,
                url = %claimed.url, attempt = claimed.attempts, status = status_code,
                error = error.as_deref().unwrap_or(""), next_attempt_at = ?next_attempt_at,
                "webhook not delivered: will retry"
            ),
            WebhookOutcome::Failed => tracing::error!(
                webhook_id = %message_id, event = %claimed.kind, endpoint = %claimed.endpoint_id,
                url = %claimed.url, attempt = claimed.attempts, status = status_code,
                error = error.as_deref().unwrap_or(""),
                "webhook given up"
            ),
            WebhookOutcome::Disabled => tracing::warn!(
                webhook_id = %message_id, event = %claimed.kind, endpoint = %claimed.endpoint_id,
                url = %claimed.url, attempt = claimed.attempts,
                "webhook endpoint answered 410 Gone: it is disabled and sent nothing more"
            ),
        }
        webhooks::record_attempt(
            &self.db,
            &Attempted {
                event_id: claimed.event_id,
                endpoint_id: claimed.endpoint_id,
                attempt: claimed.attempts,
                outcome,
                status_code,
                error: error.as_deref(),
                next_attempt_at,
            },
            now,
        )
        .await
    }

    /// A retry after the backoff, unless that would be past the delivery's
    /// last day: then failed.
    fn retry_or_fail(
        &self,
        claimed: &Claimed,
        now: DateTime<Utc>,
        status: Option<u16>,
        error: String,
    ) -> (WebhookOutcome, Option<u16>, Option<String>, Option<DateTime<Utc>>) {
        let at = now + backoff(self.settings.retry_base_seconds, claimed.attempts);
        if at > claimed.give_up_at {
            (WebhookOutcome::Failed, status, Some(error), None)
        } else {
            (WebhookOutcome::Retry, status, Some(error), Some(at))
        }
    }

    async fn post(&self, claimed: &Claimed, message_id: &str) -> Result<reqwest::StatusCode, Failure> {
        let url = Url::parse(&claimed.url).map_err(|_| Failure::Request(FetchError::NotWeb(claimed.url.clone())))?;
        // A secret that does not parse was not written by this code; say so
        // without showing it.
        let secret = WebhookSecret::parse(&claimed.secret).ok_or(Failure::Disabled)?;
        let body = body(claimed);
        let timestamp = Utc::now().timestamp();
        let signature = secret.sign(message_id, timestamp, &body);
        let mut headers = HeaderMap::new();
        let value = |v: &str| HeaderValue::from_str(v).expect("ids, numbers and base64 are header-safe");
        headers.insert("webhook-id", value(message_id));
        headers.insert("webhook-timestamp", value(&timestamp.to_string()));
        headers.insert("webhook-signature", value(&signature));
        self.fetcher.post(&url, headers, body).await.map_err(Failure::Request)
    }
}

enum Failure {
    Disabled,
    Request(FetchError),
}

/// The wait before the attempt after `attempt` (1 for the first):
/// `base` × 2^(attempt − 1) seconds, at most six hours.
pub fn backoff(base_seconds: u64, attempt: i32) -> chrono::Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(30);
    let seconds = base_seconds.saturating_mul(1u64 << doublings).min(MAX_BACKOFF_SECONDS);
    chrono::Duration::seconds(seconds as i64)
}

/// The `webhook-id` of an event: the same on every attempt, so receivers
/// can tell a retry from a new event.
pub fn message_id(event_id: Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

/// The JSON body of an event, from what was stored when it happened: the
/// same bytes on every attempt.
pub fn body(claimed: &Claimed) -> Vec<u8> {
    let data = match (claimed.subscriber_id, claimed.issue_id) {
        (Some(id), _) => serde_json::json!({ "subscriber": { "id": id.to_string(), "email": claimed.email } }),
        (None, Some(id)) => serde_json::json!({ "issue": { "id": id.to_string(), "week": claimed.week } }),
        (None, None) => serde_json::json!({}),
    };
    serde_json::to_vec(&serde_json::json!({
        "type": claimed.kind.as_str(),
        "timestamp": claimed.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    }))
    .expect("a JSON value serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_growing() {
        assert_eq!(backoff(30, 1), chrono::Duration::seconds(30));
        assert_eq!(backoff(30, 2), chrono::Duration::seconds(60));
        assert_eq!(backoff(30, 4), chrono::Duration::seconds(240));
        assert_eq!(backoff(30, 40), chrono::Duration::seconds(MAX_BACKOFF_SECONDS as i64));
        assert_eq!(backoff(1, 0), chrono::Duration::seconds(1));
    }
}

/// Why an endpoint could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("the address must be an http:// or https:// URL")]
    BadUrl,
    #[error(
        "the address is on this machine, a private network or a special-use address; webhooks go to public \
         addresses only (feeds.allow_private_addresses)"
    )]
    Refused,
    #[error("choose at least one event")]
    NoEvents,
    #[error("unknown event `{0}`")]
    UnknownEvent(String),
}

/// The longest endpoint URL accepted.
const MAX_URL_CHARS: usize = 2000;

/// Registers an endpoint for `events` (their words) at `url`, after the
/// address rules of the feed fetcher (`policy`); returns its id and its
/// secret, which is shown once.
pub async fn register(
    db: &Db,
    policy: FetchPolicy,
    url: &str,
    events: &[String],
    by: &str,
) -> Result<Result<(Uuid, WebhookSecret), RegisterError>, sqlx::Error> {
    let url = url.trim();
    let parsed = match Url::parse(url) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https") && u.host().is_some() && url.chars().count() <= MAX_URL_CHARS =>
        {
            u
        }
        _ => return Ok(Err(RegisterError::BadUrl)),
    };
    let mut wanted = Vec::new();
    for word in events {
        match crate::domain::WebhookEvent::parse(word.trim()) {
            Some(event) if !wanted.contains(&event) => wanted.push(event),
            Some(_) => {}
            None => return Ok(Err(RegisterError::UnknownEvent(word.clone()))),
        }
    }
    if wanted.is_empty() {
        return Ok(Err(RegisterError::NoEvents));
    }
    match Fetcher::for_webhooks(policy, Duration::from_secs(10))
        .check_address(&parsed)
        .await
    {
        Ok(()) => {}
        Err(FetchError::RefusedAddress(_)) => return Ok(Err(RegisterError::Refused)),
        Err(_) => return Ok(Err(RegisterError::BadUrl)),
    }
    let secret = WebhookSecret::generate();
    let id = webhooks::create(db, parsed.as_str(), secret.as_str(), &wanted, by, Utc::now()).await?;
    tracing::info!(endpoint = %id, url = %parsed, events = ?wanted.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        by, "webhook endpoint registered");
    Ok(Ok((id, secret)))
}
