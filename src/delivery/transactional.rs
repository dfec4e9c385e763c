//! The lane for transactional mail (confirmations): small batches, sent as
//! soon as they are queued, on their own so a large issue never delays them.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::{Sent, Shared};
use crate::db::outgoing_mail::{self, QueuedMail};
use crate::mail::{Composed, is_hard_bounce};

/// Messages claimed at once; transactional mail comes a few at a time.
const BATCH: i64 = 32;
/// Sent at once in this lane.
const CONCURRENCY: usize = 4;

pub(super) async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        let now = Utc::now();
        match outgoing_mail::claim_due(&shared.db, now, shared.lease_until(now), BATCH).await {
            Ok(batch) if batch.is_empty() => shared.idle_or_woken(&mut shutdown).await,
            Ok(batch) => {
                futures_util::stream::iter(batch)
                    .for_each_concurrent(CONCURRENCY, |mail| deliver(&shared, mail))
                    .await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim mail from the database; trying again shortly");
                shared.idle(&mut shutdown, Duration::from_secs(1)).await;
            }
        }
    }
}

async fn deliver(shared: &Shared, mail: QueuedMail) {
    // A test send's draft lives in its own table; read it first.
    let rendered = match mail.test_send_id {
        Some(id) => render_test_send(shared, &mail, id).await,
        None => render(shared, &mail),
    };
    let composed = match rendered {
        Ok(composed) => composed,
        Err(why) => {
            tracing::error!(mail_id = %mail.id, kind = %mail.kind, error = %why, "cannot render message; giving it up");
            record_failed(shared, &mail, &why, None).await;
            return;
        }
    };
    match shared.send(&composed, mail.attempts).await {
        Sent::Delivered => {
            let message_id = &composed.message_id;
            tracing::info!(mail_id = %mail.id, kind = %mail.kind, %message_id, "mail sent");
            if let Err(e) = outgoing_mail::mark_sent(&shared.db, mail.id, message_id, Utc::now()).await {
                // The message left; if this write is lost the lease runs
                // out and the reader may get it twice, never zero times.
                tracing::error!(mail_id = %mail.id, error = %e, "mail sent but not recorded");
            }
        }
        Sent::Retry(reply) => {
            tracing::warn!(mail_id = %mail.id, kind = %mail.kind, attempt = mail.attempts, %reply, "mail not sent; will retry");
            let next = shared.next_attempt_at(mail.attempts);
            if let Err(e) = outgoing_mail::schedule_retry(&shared.db, mail.id, mail.attempts, next, &reply).await {
                tracing::error!(mail_id = %mail.id, error = %e, "cannot record the outcome; the lease will return the message to the queue");
            }
        }
        Sent::Failed(reply) => {
            tracing::warn!(mail_id = %mail.id, kind = %mail.kind, attempt = mail.attempts, %reply, "mail refused for good");
            // A hard bounce marks the reader `bounced` with the failure, so
            // later issues skip them; any other refusal leaves them be.
            let bounced = mail.subscriber_id.filter(|_| is_hard_bounce(&reply));
            if let Some(reader) = bounced {
                tracing::info!(%reader, %reply, "the address bounced; the reader is marked bounced");
            }
            record_failed(shared, &mail, &reply, bounced).await;
        }
    }
}

async fn record_failed(shared: &Shared, mail: &QueuedMail, error: &str, bounced: Option<uuid::Uuid>) {
    if let Err(e) = outgoing_mail::mark_failed(&shared.db, mail.id, mail.attempts, error, bounced).await {
        tracing::error!(mail_id = %mail.id, error = %e, "cannot record the outcome; the lease will return the message to the queue");
    }
}

fn render(shared: &Shared, mail: &QueuedMail) -> Result<Composed, String> {
    match mail.kind.as_str() {
        "confirmation" => {
            let token = mail.token.as_deref().ok_or("confirmation without a token")?;
            shared
                .composer
                .confirmation(&mail.recipient, token)
                .map_err(|e| e.to_string())
        }
        other => Err(format!("unknown kind of mail `{other}`")),
    }
}

/// A draft issue a staff member sent to themselves (`digest_test`).
async fn render_test_send(shared: &Shared, mail: &QueuedMail, id: uuid::Uuid) -> Result<Composed, String> {
    let draft = crate::db::test_sends::find(&shared.db, id)
        .await
        .map_err(|e| format!("cannot read the test send: {e}"))?
        .ok_or("the test send's draft is gone")?;
    shared
        .composer
        .digest_test(&mail.recipient, &draft)
        .map_err(|e| e.to_string())
}
