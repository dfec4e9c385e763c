//! The delivery worker: claim → render → send → record, in a loop.
//!
//! Messages wait in the database, never in memory, so a crash loses
//! nothing: a claimed message carries a lease, and when the worker that
//! claimed it dies, the lease runs out and another claim picks it up.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::config::DeliverySettings;
use crate::db::Db;
use crate::db::deliveries::{self, ClaimedDelivery, DeliveryOutcome};
use crate::db::issues::{self, StoredSnapshot};
use crate::db::outgoing_mail::{self, QueuedMail};
use crate::db::subscribers;
use crate::domain::{SubscriberStatus, UnsubscribeToken};
use crate::mail::{Composed, Composer, IssueSnapshot, Mailer, SendError, is_hard_bounce};

/// How long a claim holds a message before another worker may take it.
/// Longer than any one SMTP exchange can take.
const LEASE: Duration = Duration::from_secs(300);

pub struct Worker {
    db: Db,
    mailer: Mailer,
    composer: Composer,
    settings: DeliverySettings,
    wakeup: Arc<Notify>,
    rate: Option<DefaultDirectRateLimiter>,
}

/// What became of a message that did not leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Retry,
    Failed,
}

/// The result of handing a message to the transport.
enum Sent {
    Delivered(String),
    Not(Outcome, String),
}

impl Worker {
    pub fn new(db: Db, mailer: Mailer, composer: Composer, settings: DeliverySettings, wakeup: Arc<Notify>) -> Self {
        let rate = NonZeroU32::new(settings.rate_per_second).map(|r| RateLimiter::direct(Quota::per_second(r)));
        Self {
            db,
            mailer,
            composer,
            settings,
            wakeup,
            rate,
        }
    }

    /// Delivers until `shutdown` turns true; a batch in flight is finished.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(concurrency = self.settings.concurrency, "delivery worker started");
        while !*shutdown.borrow() {
            match self.deliver_due().await {
                Ok(0) => {
                    tokio::select! {
                        _ = self.wakeup.notified() => {}
                        _ = tokio::time::sleep(self.settings.poll_interval()) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim mail from the database; trying again shortly");
                    tokio::select! {
                        _ = tokio::time::sleep(self.settings.poll_interval().max(Duration::from_secs(1))) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        tracing::info!("delivery worker stopped");
    }

    /// Claims one batch of due messages and delivers it; returns its size.
    /// Claims one batch of due messages and delivers it; returns its size.
    /// Transactional mail goes first, so a confirmation never waits behind
    /// a digest; digests go out when no transactional mail is due.
    pub async fn deliver_due(&self) -> Result<usize, sqlx::Error> {
        let now = Utc::now();
        let limit = (self.settings.concurrency * 4) as i64;
        let lease_until = now + chrono::Duration::from_std(LEASE).expect("lease fits");
        let batch = outgoing_mail::claim_due(&self.db, now, lease_until, limit).await?;
        if !batch.is_empty() {
            let claimed = batch.len();
            futures_util::stream::iter(batch)
                .for_each_concurrent(self.settings.concurrency, |mail| self.deliver(mail))
                .await;
            return Ok(claimed);
        }
        let digests = deliveries::claim_due(&self.db, now, lease_until, limit).await?;
        let claimed = digests.len();
        if claimed > 0 {
            // Each issue's snapshot is read once per batch, not per reader.
            let mut snapshots: HashMap<Uuid, Option<StoredSnapshot>> = HashMap::new();
            for delivery in &digests {
                if let Entry::Vacant(slot) = snapshots.entry(delivery.issue_id) {
                    slot.insert(issues::snapshot(&self.db, delivery.issue_id).await?);
                }
            }
            let snapshots = &snapshots;
            futures_util::stream::iter(digests)
                .for_each_concurrent(self.settings.concurrency, |delivery| async move {
                    let snapshot = snapshots.get(&delivery.issue_id).and_then(Option::as_ref);
                    self.deliver_digest(delivery, snapshot).await
                })
                .await;
            let finished = issues::mark_finished(&self.db).await?;
            if finished > 0 {
                tracing::info!(issues = finished, "issue delivered to every reader");
            }
        }
        Ok(claimed)
    }

    async fn deliver(&self, mail: QueuedMail) {
        // A test send's draft lives in its own table; read it first.
        let rendered = match mail.test_send_id {
            Some(id) => self.render_test_send(&mail, id).await,
            None => self.render(&mail),
        };
        let composed = match rendered {
            Ok(composed) => composed,
            Err(why) => {
                tracing::error!(mail_id = %mail.id, kind = %mail.kind, error = %why, "cannot render message; giving it up");
                self.record(&mail, Outcome::Failed, &why).await;
                return;
            }
        };
        match self.send(composed, mail.attempts).await {
            Sent::Delivered(message_id) => {
                tracing::info!(mail_id = %mail.id, kind = %mail.kind, %message_id, "mail sent");
                if let Err(e) = outgoing_mail::mark_sent(&self.db, mail.id, &message_id, Utc::now()).await {
                    // The message left; if this write is lost the lease runs
                    // out and the reader may get it twice, never zero times.
                    tracing::error!(mail_id = %mail.id, error = %e, "mail sent but not recorded");
                }
            }
            Sent::Not(outcome, reply) => {
                tracing::warn!(mail_id = %mail.id, kind = %mail.kind, attempt = mail.attempts, %reply, ?outcome, "mail not sent");
                self.record(&mail, outcome.clone(), &reply).await;
                if let (Outcome::Failed, Some(reader)) = (outcome, mail.subscriber_id) {
                    self.note_bounce(reader, &reply).await;
                }
            }
        }
    }

    /// One reader's copy of an issue; a reader who left since the issue was
    /// queued is skipped, not mailed.
    async fn deliver_digest(&self, delivery: ClaimedDelivery, snapshot: Option<&StoredSnapshot>) {
        let now = Utc::now();
        let reader = delivery.subscriber_id;
        let Some(snapshot) = snapshot else {
            tracing::error!(issue = %delivery.issue_id, %reader, "the issue of a delivery is missing; giving it up");
            let error = "the issue is missing";
            self.record_delivery(&delivery, DeliveryOutcome::Failed { error }, now)
                .await;
            return;
        };
        let week = snapshot.week.as_str();
        if delivery.subscriber_status != SubscriberStatus::Confirmed.as_str() {
            let reason = format!("the reader is {} now", delivery.subscriber_status);
            self.record_delivery(&delivery, DeliveryOutcome::Skipped { reason: &reason }, now)
                .await;
            return;
        }
        let composed = UnsubscribeToken::from_parts(delivery.subscriber_id, &delivery.unsubscribe_secret)
            .ok_or_else(|| "the reader has no unsubscribe secret".to_owned())
            .and_then(|token| {
                let snapshot = IssueSnapshot {
                    week,
                    subject: &snapshot.subject,
                    html: &snapshot.html,
                    text: &snapshot.text,
                };
                self.composer
                    .digest(&delivery.email, &delivery.name, &token, &snapshot)
                    .map_err(|e| e.to_string())
            });
        let composed = match composed {
            Ok(composed) => composed,
            Err(why) => {
                tracing::error!(%week, %reader, error = %why, "cannot render a digest; giving it up");
                self.record_delivery(&delivery, DeliveryOutcome::Failed { error: &why }, now)
                    .await;
                return;
            }
        };
        match self.send(composed, delivery.attempts).await {
            Sent::Delivered(message_id) => {
                tracing::debug!(%week, %reader, %message_id, "digest sent");
                self.record_delivery(
                    &delivery,
                    DeliveryOutcome::Sent {
                        message_id: &message_id,
                    },
                    Utc::now(),
                )
                .await;
            }
            Sent::Not(Outcome::Retry, reply) => {
                tracing::warn!(%week, %reader, attempt = delivery.attempts, %reply, "digest not sent; will retry");
                let at = self.next_attempt_at(delivery.attempts);
                self.record_delivery(&delivery, DeliveryOutcome::Retry { at, error: &reply }, Utc::now())
                    .await;
            }
            Sent::Not(_, reply) => {
                tracing::warn!(%week, %reader, %reply, "digest refused for good");
                self.record_delivery(&delivery, DeliveryOutcome::Failed { error: &reply }, Utc::now())
                    .await;
                self.note_bounce(reader, &reply).await;
            }
        }
    }

    /// A hard bounce marks the reader `bounced`, so later issues skip them;
    /// any other refusal leaves the reader as they are.
    async fn note_bounce(&self, reader: Uuid, reply: &str) {
        if !is_hard_bounce(reply) {
            return;
        }
        match subscribers::mark_bounced(&self.db, reader).await {
            Ok(true) => tracing::info!(%reader, %reply, "the address bounced; the reader is marked bounced"),
            Ok(false) => {}
            Err(e) => tracing::error!(%reader, error = %e, "cannot mark a bounced reader"),
        }
    }

    async fn record_delivery(&self, delivery: &ClaimedDelivery, outcome: DeliveryOutcome<'_>, now: DateTime<Utc>) {
        if let Err(e) = deliveries::record(&self.db, delivery, outcome, now).await {
            tracing::error!(issue = %delivery.issue_id, reader = %delivery.subscriber_id, error = %e,
                "cannot record a delivery; its lease will return it to the queue");
        }
    }

    /// Sends one message (within the rate limit) and sorts the result: a
    /// 5xx reply is final, anything else is retried until `max_attempts`.
    async fn send(&self, composed: Composed, attempts: i32) -> Sent {
        if let Some(rate) = &self.rate {
            rate.until_ready().await;
        }
        let message_id = composed.message_id.clone();
        match self.mailer.send(composed.message).await {
            Ok(()) => Sent::Delivered(message_id),
            Err(SendError::Permanent(reply)) => Sent::Not(Outcome::Failed, reply),
            Err(SendError::Transient(reply)) if attempts >= self.settings.max_attempts as i32 => {
                Sent::Not(Outcome::Failed, reply)
            }
            Err(SendError::Transient(reply)) => Sent::Not(Outcome::Retry, reply),
        }
    }

    fn render(&self, mail: &QueuedMail) -> Result<Composed, String> {
        match mail.kind.as_str() {
            "confirmation" => {
                let token = mail.token.as_deref().ok_or("confirmation without a token")?;
                self.composer
                    .confirmation(&mail.recipient, &mail.recipient_name, token)
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("unknown kind of mail `{other}`")),
        }
    }

    /// A draft issue a staff member sent to themselves (`digest_test`).
    async fn render_test_send(&self, mail: &QueuedMail, id: Uuid) -> Result<Composed, String> {
        let draft = crate::db::test_sends::find(&self.db, id)
            .await
            .map_err(|e| format!("cannot read the test send: {e}"))?
            .ok_or("the test send's draft is gone")?;
        self.composer
            .digest_test(&mail.recipient, &draft.subject, &draft.html, &draft.text)
            .map_err(|e| e.to_string())
    }

    async fn record(&self, mail: &QueuedMail, outcome: Outcome, error: &str) {
        let result = match outcome {
            Outcome::Retry => {
                let next = self.next_attempt_at(mail.attempts);
                outgoing_mail::schedule_retry(&self.db, mail.id, mail.attempts, next, error).await
            }
            Outcome::Failed => outgoing_mail::mark_failed(&self.db, mail.id, mail.attempts, error).await,
        };
        if let Err(e) = result {
            tracing::error!(mail_id = %mail.id, error = %e, "cannot record the outcome; the lease will return the message to the queue");
        }
    }

    fn next_attempt_at(&self, attempts: i32) -> DateTime<Utc> {
        let delay = retry_delay(&self.settings, attempts);
        Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1))
    }
}

/// Exponential backoff with jitter: the base delay after the first attempt,
/// doubling after each, capped, and spread by ±20 % so retries from one
/// outage do not arrive together.
pub fn retry_delay(settings: &DeliverySettings, attempts: i32) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 30);
    let delay = (settings.retry_base_seconds * 2f64.powi(exponent)).min(settings.retry_max_seconds);
    let jitter = rand::rng().random_range(0.8..=1.2);
    Duration::from_secs_f64(delay * jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeliverySettings {
        DeliverySettings {
            concurrency: 1,
            rate_per_second: 0,
            max_attempts: 5,
            retry_base_seconds: 10.0,
            retry_max_seconds: 3600.0,
            poll_interval_ms: 100,
        }
    }

    #[test]
    fn retry_delay_doubles_within_jitter_and_is_capped() {
        let s = settings();
        for (attempts, base) in [(1, 10.0), (2, 20.0), (3, 40.0), (20, 3600.0)] {
            let d = retry_delay(&s, attempts).as_secs_f64();
            assert!(d >= base * 0.8 && d <= base * 1.2, "attempt {attempts}: {d}");
        }
    }
}
